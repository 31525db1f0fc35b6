package dht

import (
	"net"
	"net/netip"
	"testing"
	"time"

	akrpc "github.com/anacrolix/dht/v2/krpc"

	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/udp"
)

func udpNode(t *testing.T, addr string) *Node {
	t.Helper()
	tr, err := udp.Listen(netip.MustParseAddrPort(addr), nil)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	n, err := New(tr, &Config{KRPC: krpc.Config{SourceRate: -1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(); tr.Close() })
	return n
}

// on returns the address of n as reached over the given loopback.
func on(n *Node, lo string) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr(lo), n.Addr().Port())
}

// A dual-stack node keeps one routing table per address family and answers want n4/n6.
func TestDualStack(t *testing.T) {
	if c, err := net.ListenPacket("udp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		c.Close()
	}
	ctx := t.Context()
	d := udpNode(t, "[::]:0")
	if d.tables[0] == nil || d.tables[1] == nil {
		t.Fatal("a dual-stack node needs two routing tables")
	}
	var v4s, v6s []*Node
	for range 3 {
		n4, n6 := udpNode(t, "127.0.0.1:0"), udpNode(t, "[::1]:0")
		if n4.tables[1] != nil || n6.tables[0] != nil {
			t.Fatal("a single-family node has a table for the other family")
		}
		if _, err := n4.Bootstrap(ctx, on(d, "127.0.0.1")); err != nil {
			t.Fatal(err)
		}
		if _, err := n6.Bootstrap(ctx, on(d, "::1")); err != nil {
			t.Fatal(err)
		}
		v4s, v6s = append(v4s, n4), append(v6s, n6)
	}
	if _, err := d.Bootstrap(ctx, v4s[0].Addr(), v6s[0].Addr()); err != nil {
		t.Fatal(err)
	}
	count := func(tb *table) int { n, _, _ := tb.counts(time.Now()); return n }
	d.mu.Lock()
	n4, n6 := count(d.tables[0]), count(d.tables[1])
	for _, e := range d.tables[0].nodes(nil, false, time.Now()) {
		if !e.Addr.Addr().Is4() {
			t.Errorf("IPv6 node %v in the IPv4 table", e)
		}
	}
	for _, e := range d.tables[1].nodes(nil, false, time.Now()) {
		if e.Addr.Addr().Is4() {
			t.Errorf("IPv4 node %v in the IPv6 table", e)
		}
	}
	d.mu.Unlock()
	if n4 != 3 || n6 != 3 {
		t.Fatalf("dual-stack tables: %d IPv4 and %d IPv6 nodes, want 3 and 3", n4, n6)
	}

	findNode := func(from *Node, to netip.AddrPort, want []akrpc.Want) *krpc.Return {
		t.Helper()
		a := &krpc.Args{}
		a.Target, a.Want = RandomID(), want
		r, err := from.query(ctx, to, nil, krpc.MethodFindNode, a)
		if err != nil {
			t.Fatal(err)
		}
		return r.Return
	}
	for _, c := range []struct {
		name          string
		from          *Node
		to            netip.AddrPort
		want          []akrpc.Want
		nodes, nodes6 bool
	}{
		{"IPv4 querier, no want", v4s[1], on(d, "127.0.0.1"), nil, true, false},
		{"IPv6 querier, no want", v6s[1], on(d, "::1"), nil, false, true},
		{"IPv4 querier wants n6", v4s[1], on(d, "127.0.0.1"), []akrpc.Want{akrpc.WantNodes6}, false, true},
		{"IPv6 querier wants both", v6s[1], on(d, "::1"), []akrpc.Want{akrpc.WantNodes, akrpc.WantNodes6}, true, true},
	} {
		r := findNode(c.from, c.to, c.want)
		if (len(r.Nodes) > 0) != c.nodes || (len(r.Nodes6) > 0) != c.nodes6 {
			t.Errorf("%s: %d nodes, %d nodes6", c.name, len(r.Nodes), len(r.Nodes6))
		}
		for _, ni := range r.Nodes6 {
			if ni.Addr.IP.To4() != nil {
				t.Errorf("%s: IPv4 address %v in nodes6", c.name, ni.Addr)
			}
		}
	}
	// A peer announced over IPv4 is found over IPv6 through the dual-stack node.
	ih := RandomID()
	if _, err := v4s[2].Announce(ctx, ih, 4444); err != nil {
		t.Fatal(err)
	}
	var found []netip.AddrPort
	if _, err := v6s[2].GetPeers(ctx, ih, func(p netip.AddrPort, _ NodeInfo) bool { found = append(found, p); return true }); err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || found[0] != netip.MustParseAddrPort("127.0.0.1:4444") {
		t.Fatalf("IPv6 lookup of an IPv4 announce found %v", found)
	}
}
