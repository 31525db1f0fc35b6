//go:build linux

package webtorrent_test

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/internal/interop"
)

// The bridge's rule (package bridge), asserted from libtorrent's side: one of our
// WebRTC-only nodes announces an infohash through the bridge twice, with implied_port
// (the bridge stores its data channel's address) and with an explicit port (a hybrid
// client's BitTorrent port). Unmodified libtorrent (lt_announce.py, on the harness's
// session settings) then joins the bridge's mainline node, announces the same infohash
// and runs a get_peers lookup every second: its lookups return its own announce and the
// explicit-port one, and never the data channel's address. The WebRTC node's lookup
// returns libtorrent's address, a mainline peer, from the bridge.
func TestBridgeServesUsablePeers(t *testing.T) {
	t.Parallel()
	require(t, func() error { return interop.Available(interop.Libtorrent) })
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	b, signalling := newBridge(t)
	g := newGoNode(t, "web", goOpts{})
	if _, err := g.n.Bootstrap(ctx, signalling); err != nil {
		t.Fatal(err)
	}
	ih := dht.RandomID()
	explicit := netip.MustParseAddrPort("127.0.0.1:4242")
	for _, port := range []int{0, int(explicit.Port())} {
		if res, err := g.n.Announce(ctx, ih, port); err != nil || res.Stored != 1 {
			t.Fatalf("the WebRTC node's announce (port %d) through the bridge: %+v, %v", port, res, err)
		}
	}
	stored := b.Peers().Peers(ih, 10)
	if len(stored) != 2 || !slices.Contains(stored, explicit) {
		t.Fatalf("the bridge stores %v for the WebRTC node's announces, want %v and a connection address", stored, explicit)
	}
	conn := stored[0]
	if conn == explicit {
		conn = stored[1]
	}
	t.Logf("the bridge stores the WebRTC node's implied-port announce as %v", conn)

	peers, err := interop.PeersDir()
	if err != nil {
		t.Fatal(err)
	}
	lt, err := filepath.Abs(filepath.Join("..", "testdata", "lt_announce.py"))
	if err != nil {
		t.Fatal(err)
	}
	drv, err := interop.StartProcess(ctx, "libtorrent-client",
		[]string{interop.Python, "-u", lt, "--peers-dir", peers, "--announce", ih.String()},
		interop.Options{Bootstrap: []netip.AddrPort{b.Mainline.Addr()}, MaxSeconds: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer drv.Stop()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output of %v:\n%s", drv, drv.Output())
		}
	})
	// libtorrent's lookups: its own announce and the explicit-port one come back in one
	// of them (the bridge answered with values), and then three more lookups run.
	for _, want := range []netip.AddrPort{drv.Addr, explicit} {
		re := regexp.MustCompile(fmt.Sprintf(`^FOUND infohash=%v peer=%s$`, ih, regexp.QuoteMeta(want.String())))
		if _, err := drv.WaitLine(ctx, re); err != nil {
			t.Fatalf("libtorrent's get_peers never returned %v: %v", want, err)
		}
	}
	select {
	case <-time.After(3 * time.Second): // libtorrent looks up every second
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	var found []string
	for _, l := range drv.Lines() {
		if p, ok := strings.CutPrefix(l.Text, "FOUND infohash="+ih.String()+" peer="); ok {
			found = append(found, p)
		}
	}
	t.Logf("libtorrent's get_peers returned %v", found)
	if slices.Contains(found, conn.String()) {
		t.Errorf("libtorrent's get_peers returned the WebRTC data channel's address %v", conn)
	}
	if !slices.Contains(b.Peers().Peers(ih, 10), drv.Addr) {
		t.Fatalf("the bridge does not store libtorrent's announce %v", drv.Addr)
	}

	// The WebRTC node gets libtorrent, a mainline peer, from the bridge.
	var got []netip.AddrPort
	var from []dht.NodeInfo
	if _, err := g.n.GetPeers(ctx, ih, func(p netip.AddrPort, f dht.NodeInfo) bool {
		got, from = append(got, p), append(from, f)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	t.Logf("the WebRTC node's get_peers returned %v", got)
	if i := slices.Index(got, drv.Addr); i < 0 || from[i].ID != b.Web.ID() {
		t.Errorf("the WebRTC node's get_peers returned %v from %v, want libtorrent's %v from the bridge %v", got, from, drv.Addr, b.Web.ID())
	}
}
