package dht

import (
	"errors"
	"net/netip"
	"testing"
	"testing/synctest"

	"github.com/wdht/wdht/krpc"
)

func TestPingFindAnnounce(t *testing.T) { synctest.Test(t, testPingFindAnnounce) }

func testPingFindAnnounce(t *testing.T) {
	c := newCluster(t, nil)
	a, b, d := c.add(nil), c.add(nil), c.add(nil)
	ctx := t.Context()
	id, err := a.Ping(ctx, b.Addr())
	if err != nil || id != b.ID() {
		t.Fatalf("Ping = %v, %v; want %v", id, err, b.ID())
	}
	if _, err := b.Bootstrap(ctx, a.Addr()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Bootstrap(ctx, a.Addr()); err != nil {
		t.Fatal(err)
	}
	synctest.Wait() // verification pings of the new nodes
	for _, n := range []*Node{a, b, d} {
		if got := len(n.Nodes()); got != 2 {
			t.Errorf("node %v has %d nodes in its table, want 2: %v", n.ID(), got, n.Nodes())
		}
	}
	ih := RandomID()
	ar, err := d.Announce(ctx, ih, 4242)
	if err != nil {
		t.Fatal(err)
	}
	if ar.Stored != 2 {
		t.Fatalf("announce stored on %d nodes, want 2", ar.Stored)
	}
	var peers []netip.AddrPort
	var froms []NodeInfo
	res, err := b.GetPeers(ctx, ih, func(p netip.AddrPort, from NodeInfo) bool {
		peers, froms = append(peers, p), append(froms, from)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	want := netip.AddrPortFrom(d.Addr().Addr(), 4242)
	if len(peers) != 1 || peers[0] != want {
		t.Fatalf("GetPeers found %v, want [%v]", peers, want)
	}
	if self := (NodeInfo{b.ID(), b.Addr()}); froms[0] != self {
		t.Fatalf("a peer from b's own store came from %v, want b itself %v", froms[0], self)
	}
	// d stores nothing itself: the peer comes from a or b, named by ID and address.
	froms = nil
	if _, err := d.GetPeers(ctx, ih, func(p netip.AddrPort, from NodeInfo) bool { froms = append(froms, from); return true }); err != nil {
		t.Fatal(err)
	}
	if len(froms) != 1 || froms[0] != (NodeInfo{a.ID(), a.Addr()}) && froms[0] != (NodeInfo{b.ID(), b.Addr()}) {
		t.Fatalf("d's lookup got the peer from %v, want a %v or b %v", froms, a.Addr(), b.Addr())
	}
	t.Logf("lookup: %+v", res)
}

func TestAnnounceBadToken(t *testing.T) {
	c := newCluster(t, nil)
	a, b := c.add(nil), c.add(nil)
	args := &krpc.Args{}
	args.InfoHash, args.Token = RandomID(), "forged!!"
	p := 1
	args.Port = &p
	_, err := a.query(t.Context(), b.Addr(), nil, krpc.MethodAnnouncePeer, args)
	var ke *krpc.Error
	if !errors.As(err, &ke) || ke.Code != krpc.ErrorCodeProtocol {
		t.Fatalf("announce with a forged token: %v, want KRPC error 203", err)
	}
}
