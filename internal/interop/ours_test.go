//go:build unix

package interop_test

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/internal/interop"
	"github.com/wdht/wdht/krpc"
)

// TestOursQueryTheirs: one real node of each implementation, and our node queries it:
// ping, a direct find_node and get_peers (with a token), announce_peer with that token,
// then as a node: bootstrap from it, iterative find_node, Announce (get_peers lookup,
// then announce_peer with its token) and get_peers lookups that find the announced peer,
// ourselves included (implied_port).
func TestOursQueryTheirs(t *testing.T) {
	t.Parallel()
	for _, impl := range interop.Impls {
		t.Run(impl, func(t *testing.T) {
			t.Parallel()
			testOursQueryTheirs(t, impl)
		})
	}
}

func testOursQueryTheirs(t *testing.T, impl string) {
	peer := startPeer(t, impl, interop.Options{Stats: time.Second})
	// Default KRPC limits: this test sends a few dozen queries.
	n := newNode(t, "ours", nil)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	t0 := time.Now()
	call := func(method string, a *krpc.Args) (*krpc.Response, error) {
		a.ID = n.ID()
		return n.Server().Call(ctx, peer.Addr, &krpc.Query{Method: method, Args: a})
	}

	// ping, through the node and raw (for the reply's extras).
	start := time.Now()
	id, err := n.Ping(ctx, peer.Addr)
	if err != nil {
		t.Fatalf("Ping: %v", err)
	}
	t.Logf("Ping: id %v after %v", id, time.Since(start).Round(time.Microsecond))
	if peer.HasID && id != peer.ID {
		t.Errorf("Ping returned id %v, the peer printed %v", id, peer.ID)
	}
	r, err := call(krpc.MethodPing, &krpc.Args{})
	if err != nil {
		t.Fatalf("ping: %v", err)
	}
	t.Logf("ping reply: v=%q ip=%v extra keys=%v", r.Version, r.IP, keys(r.Return.Extra))
	if r.IP.IsValid() && r.IP != n.Addr() { // BEP 42: our address as they saw it
		t.Errorf("ping reply ip=%v, our address is %v", r.IP, n.Addr())
	}

	// One find_node query. A lone node knows at most us.
	a := &krpc.Args{}
	a.Target = dht.RandomID()
	r, err = call(krpc.MethodFindNode, a)
	if err != nil {
		t.Fatalf("find_node: %v", err)
	}
	found := nodeInfos(r.Return.Nodes)
	t.Logf("find_node(random target): id %v, nodes %s", r.Return.ID, fmtNodes(found))
	if r.Return.ID != id {
		t.Errorf("find_node answered with id %v, ping with %v", r.Return.ID, id)
	}
	for _, ni := range found {
		if ni.Addr != n.Addr() || ni.ID != n.ID() {
			t.Errorf("find_node from a lone node returned %v, which is not us (%v@%v)", ni, n.ID(), n.Addr())
		}
	}

	// One get_peers query: a token, no values.
	ih := dht.RandomID()
	a = &krpc.Args{}
	a.InfoHash = ih
	r, err = call(krpc.MethodGetPeers, a)
	if err != nil {
		t.Fatalf("get_peers: %v", err)
	}
	t.Logf("get_peers(random infohash): token %s, values %v, nodes %s", fmtToken(r.Return.Token), peerAddrs(r.Return.Values), fmtNodes(nodeInfos(r.Return.Nodes)))
	if r.Return.Token == nil || *r.Return.Token == "" {
		t.Fatalf("get_peers reply without a token")
	}
	if len(r.Return.Values) > 0 {
		t.Errorf("get_peers for a fresh infohash returned values %v", peerAddrs(r.Return.Values))
	}

	// announce_peer with that token, then get_peers sees the peer.
	port := 20000 + rand.IntN(40000)
	a = &krpc.Args{}
	a.InfoHash, a.Token, a.Port = ih, *r.Return.Token, &port
	if _, err := call(krpc.MethodAnnouncePeer, a); err != nil {
		t.Fatalf("announce_peer with the get_peers token: %v", err)
	}
	if got, err := storedPeers(ctx, call, ih, loopbackAddr(port)); err != nil {
		t.Fatalf("get_peers after announce_peer: %v", err)
	} else if !slices.Contains(got, loopbackAddr(port)) {
		t.Errorf("get_peers after announce_peer: values %v, want %v among them", got, loopbackAddr(port))
	}

	// As a node: bootstrap from it.
	res, err := n.Bootstrap(ctx, peer.Addr)
	if err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	t.Logf("Bootstrap: %d queries, %d responses, closest %s, in %v", res.Queries, res.Responses, fmtNodes(res.Closest), res.Duration)
	if !hasNode(n.Nodes(), peer.Addr) {
		t.Errorf("after Bootstrap our table %s lacks the peer %v", fmtNodes(n.Nodes()), peer.Addr)
	}

	// Iterative find_node.
	if res, err = n.FindNode(ctx, dht.RandomID()); err != nil {
		t.Fatalf("FindNode: %v", err)
	}
	if !hasNode(res.Closest, peer.Addr) {
		t.Errorf("FindNode: closest %s lacks the peer %v", fmtNodes(res.Closest), peer.Addr)
	}

	// Announce with an explicit port and with implied_port: the real node stores both
	// (asked directly), and our get_peers lookups find both; the implied one is our own
	// address, so our node finds itself.
	for _, tc := range []struct {
		name string
		port int
		want netip.AddrPort
	}{
		{"explicit port", 20000 + rand.IntN(40000), netip.AddrPort{}},
		{"implied_port", 0, n.Addr()},
	} {
		if tc.port != 0 {
			tc.want = loopbackAddr(tc.port)
		}
		ih := dht.RandomID()
		ar, err := n.Announce(ctx, ih, tc.port)
		if err != nil {
			t.Fatalf("Announce (%s): %v", tc.name, err)
		}
		t.Logf("Announce (%s): stored on %d node(s), lookup %d queries/%d responses", tc.name, ar.Stored, ar.Lookup.Queries, ar.Lookup.Responses)
		if ar.Stored != 1 {
			t.Errorf("Announce (%s): stored on %d nodes, want 1 (the peer)", tc.name, ar.Stored)
		}
		got, err := storedPeers(ctx, call, ih, tc.want)
		if err != nil {
			t.Fatalf("get_peers after Announce (%s): %v", tc.name, err)
		}
		if !slices.Contains(got, tc.want) {
			t.Errorf("the peer does not store our announce (%s): values %v, want %v", tc.name, got, tc.want)
		}
		peers, lr, err := getPeers(ctx, n, ih)
		if err != nil {
			t.Fatalf("GetPeers (%s): %v", tc.name, err)
		}
		t.Logf("GetPeers (%s): peers %v from %d responses", tc.name, peers, lr.Responses)
		if !slices.Contains(peers, tc.want) {
			t.Errorf("GetPeers (%s): peers %v, want %v", tc.name, peers, tc.want)
		}
	}

	// For the record: does the peer list us in its table yet (libtorrent only after its
	// 5 s refresh, anacrolix only after it pinged us)?
	pr := newProbe(t)
	if table, err := pr.table(ctx, peer.Addr, id); err == nil {
		t.Logf("after %v the peer's table (get_peers own id) is %s; lists us: %v, self-reported size %d",
			time.Since(t0).Round(time.Millisecond), fmtNodes(table), hasNode(table, n.Addr()), peer.LastStats())
	}
	t.Logf("our KRPC stats: %+v", n.Stats().KRPC)
}

// storedPeers asks the peer for the values it stores for ih until want is among them, for
// up to two seconds: anacrolix answers announce_peer before it stores the peer (it calls
// PeerStore.AddPeer on a new goroutine), so an immediate get_peers may miss it.
func storedPeers(ctx context.Context, call func(string, *krpc.Args) (*krpc.Response, error), ih dht.ID, want netip.AddrPort) ([]netip.AddrPort, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var got []netip.AddrPort
	var err error
	poll(ctx, 20*time.Millisecond, func() bool {
		a := &krpc.Args{}
		a.InfoHash = ih
		var r *krpc.Response
		if r, err = call(krpc.MethodGetPeers, a); err != nil {
			return true
		}
		got = peerAddrs(r.Return.Values)
		return slices.Contains(got, want)
	})
	return got, err
}

func keys[M ~map[string]V, V any](m M) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
