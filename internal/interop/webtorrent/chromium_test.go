//go:build linux

package webtorrent_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/wdht/wdht/internal/interop"
)

// Headless Chromium running the published webtorrent-dht 0.18.6 browser bundle joins a
// network of ours: it bootstraps from our signalling node R, finds (get_peers) the peer
// that our node T announced, and announces an infohash that another node of ours, Q,
// connected to R only, then finds. Every connection but the browser's and Q's to R is
// opened by peer_connection relays.
func TestChromiumInOurNetwork(t *testing.T) {
	t.Parallel()
	var bundle, playwright string
	require(t, func() (err error) {
		if bundle, err = interop.WebtorrentBundle(interop.Webtorrent); err != nil {
			return err
		}
		_, playwright, err = interop.Chromium()
		return err
	})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Second)
	defer cancel()
	t0 := time.Now()
	step := func(format string, args ...any) {
		t.Logf("%6.2fs "+format, append([]any{time.Since(t0).Seconds()}, args...)...)
	}

	r := newGoNode(t, "r", goOpts{signalling: true})
	tg := newGoNode(t, "t", goOpts{})
	if _, err := tg.n.Bootstrap(ctx, r.addr); err != nil {
		t.Fatal(err)
	}
	ihT, ihB := idWith(0x11), idWith(0x22)
	if ar, err := tg.n.Announce(ctx, ihT, 0); err != nil || ar.Stored < 1 {
		t.Fatalf("T's announce: %+v %v", ar, err)
	}
	step("R on %v; T announced %v", r.addr, ihT)

	p := start(t, "chromium "+interop.Webtorrent, []string{"node", driver(t, "browser-dht.js"),
		"--playwright", playwright, "--bundle", bundle, "--bootstrap", r.addr.String(),
		"--announce", hexID(ihB), "--lookup", hexID(ihT), "--timeout", "95"})
	defer p.Stop() // before our nodes close
	b := &jsHost{t: t, p: p}
	l, err := b.wait(ctx, "NODE b ")
	if err != nil {
		t.Fatal(err)
	}
	bid := mustID(t, nodeLineRE.FindStringSubmatch(l)[2])
	if l, err := b.wait(ctx, "READY b "); err != nil {
		t.Fatal(err)
	} else {
		step("browser %v bootstrapped: %s", bid, l)
	}
	res, err := b.result(ctx, "announce", "b")
	if err != nil {
		t.Fatal(err)
	}
	step("browser announced: %s", res.line)
	if !res.ok() || res.int("n") < 1 {
		t.Fatalf("the browser's announce: %s", res.line)
	}

	// Q knows only R, where the browser's peer is stored: R relays Q's offer to the
	// browser, whose answer opens Q's connection to it.
	q := newGoNode(t, "q", goOpts{})
	if _, err := q.n.Ping(ctx, r.addr); err != nil {
		t.Fatal(err)
	}
	took, err := findAnnouncer(ctx, q, ihB, bid)
	if err != nil {
		t.Error(err)
	} else {
		step("Q (ours) found the browser's peer in %v", took.Round(time.Millisecond))
	}

	ids, res, err := b.lookupIDs(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	step("browser get_peers: %s", res.line)
	if !slices.Contains(ids, tg.n.ID()) {
		t.Errorf("the browser found %v, want our T %v", ids, tg.n.ID())
	}
}
