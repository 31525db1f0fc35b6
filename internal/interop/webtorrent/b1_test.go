//go:build linux

package webtorrent_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/internal/interop"
)

// A JS node that stores more peers for an infohash than a get_peers query carries offers
// throws in its response (js-wire-protocol §11 B1: `response.values(0, n)` calls an
// array), which kills a Node.js process. Our get_peers to such a node must not: three of
// our nodes announce one infohash to a JS signalling node, and then one of ours, connected
// to that node only, looks it up there. The JS node neither throws nor stops answering,
// and the lookup finds the announcers through its relays.
func TestJSNodeStoringManyPeers(t *testing.T) {
	t.Parallel()
	dir := webtorrentDir(t, interop.Webtorrent)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	js := startJS(t, dir)
	defer js.p.Stop() // before our nodes close (§11 B7)

	ih := idWith(0x5a)
	rid := ih
	rid[19] ^= 1 // R is the closest node to ih: every announce reaches it
	port := freePort(t)
	js.node(ctx, jsNode{Name: "r", Listen: port, ID: hexID(rid)})
	if _, err := js.wait(ctx, "READY r "); err != nil {
		t.Fatal(err)
	}
	rAddr := netip.MustParseAddrPort(fmt.Sprintf("127.0.0.1:%d", port))

	var announcers []dht.ID
	for i := range 3 {
		g := newGoNode(t, fmt.Sprintf("t%d", i), goOpts{id: idWith(0xa0 + byte(i))})
		if _, err := g.n.Bootstrap(ctx, rAddr); err != nil {
			t.Fatalf("t%d bootstrap: %v", i, err)
		}
		if ar, err := g.n.Announce(ctx, ih, 0); err != nil || ar.Stored < 1 {
			t.Fatalf("t%d announce: %+v %v", i, ar, err)
		}
		announcers = append(announcers, g.n.ID())
	}

	q := newGoNode(t, "q", goOpts{id: idWith(0x10)})
	if id, err := q.n.Ping(ctx, rAddr); err != nil || id != rid {
		t.Fatalf("ping R: %v %v", id, err)
	}
	start := time.Now()
	var peers []netip.AddrPort
	lr, err := q.n.GetPeers(ctx, ih, func(p netip.AddrPort, _ dht.NodeInfo) bool { peers = append(peers, p); return true })
	t.Logf("get_peers: %d peers %v in %v (%+v, %v)", len(peers), peers, time.Since(start).Round(time.Millisecond), lr, err)
	if l, ok := uncaught(js); ok {
		t.Fatalf("the JS node threw (upstream would crash): %s", l)
	}
	if len(peers) == 0 {
		t.Fatal("get_peers found none of the 3 announcers")
	}
	for _, p := range peers {
		id, err := q.n.Ping(ctx, p)
		if err != nil || !slices.Contains(announcers, id) {
			t.Errorf("peer %v: node %v (%v), not one of the announcers %v", p, id, err, announcers)
		}
	}
	if id, err := q.n.Ping(ctx, rAddr); err != nil || id != rid {
		t.Errorf("the JS node no longer answers: %v %v", id, err)
	}
}

// uncaught returns the first line where a JS host reported an exception that would have
// crashed upstream.
func uncaught(h *jsHost) (string, bool) {
	for _, l := range h.p.Lines() {
		if strings.HasPrefix(l.Text, "UNCAUGHT") {
			return l.Text, true
		}
	}
	return "", false
}
