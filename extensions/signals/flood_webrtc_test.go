package signals

import (
	"errors"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/internal/testenv"
	"github.com/wdht/wdht/transport/webrtc"
)

// realNode is a node of ours over real WebRTC (pion, loopback), with a signalling server
// when srvCfg is not nil.
type realNode struct {
	tr   *webrtc.Transport
	n    *dht.Node
	srv  *webrtc.Server
	addr netip.AddrPort // the signalling server's
}

func newRealNode(t *testing.T, tcfg *webrtc.Config, srvCfg *webrtc.ServerConfig) *realNode {
	t.Helper()
	c := *tcfg
	c.Loopback = true
	tr, err := webrtc.New(&c)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &dht.Config{K: 8, MaintenanceInterval: time.Hour}
	cfg.KRPC.SourceRate = -1 // every node is 127.0.0.1
	n, err := NewNode(tr, WebRTC(tr), cfg, &Config{SourceRelayRate: -1})
	if err != nil {
		tr.Close()
		t.Fatal(err)
	}
	r := &realNode{tr: tr, n: n}
	var stop func()
	if srvCfg != nil {
		if r.srv, err = webrtc.NewServer(tr, srvCfg); err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		r.addr = netip.MustParseAddrPort(ln.Addr().String())
		done := make(chan error, 1)
		go func() { done <- r.srv.Serve(ln) }()
		stop = func() {
			r.srv.Close()
			if err := <-done; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve: %v", err)
			}
		}
	}
	t.Cleanup(func() {
		if stop != nil {
			stop()
		}
		n.Close()
		tr.Close()
	})
	return r
}

// addrOf returns where a knows the node with the given ID, if it does.
func addrOf(a *dht.Node, id dht.ID) (netip.AddrPort, bool) {
	for _, ni := range a.Nodes() {
		if ni.ID == id {
			return ni.Addr, true
		}
	}
	return netip.AddrPort{}, false
}

// TestFloodOwnLookups (issue 9, Must show): during a flood of 1,000 offers from 500
// distinct IPv6 addresses of one /64 and from 64 IPv4 addresses, half POSTed to a node's
// signalling server and half relayed to it (NewAnswer, as peer_connection does), a
// well-behaved client joins through the signalling server, and the node's own lookup
// connects to a peer it had no connection to: the node's offer, relayed by a neighbour.
// The node runs its default pending budgets (MaxPending 64 each, MaxPendingPerIP 32).
func TestFloodOwnLookups(t *testing.T) {
	if testing.Short() {
		t.Skip("floods a signalling server over real WebRTC")
	}
	ctx := t.Context()
	// s is flooded: its transport has the default budgets; its server lets the nodes of
	// the test (all 127.0.0.1) hold more than 64 connections.
	s := newRealNode(t, &webrtc.Config{}, &webrtc.ServerConfig{MaxClientsPerIP: 1024})
	lift := &webrtc.Config{MaxPendingPerIP: 1024, MaxPending: 1024} // the others: all 127.0.0.1
	n1, m1 := newRealNode(t, lift, nil), newRealNode(t, lift, nil)
	for _, x := range []*realNode{n1, m1} {
		if _, err := x.n.Bootstrap(ctx, s.addr); err != nil {
			t.Fatal(err)
		}
	}
	// m1 connects to n1 (through s), then s drops its connection to m1: the only way
	// back for s is an offer of its own that n1 relays to m1.
	if _, err := m1.n.FindNode(ctx, n1.n.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := m1.n.Ping(ctx, mustAddr(t, m1.n, n1.n.ID())); err != nil {
		t.Fatalf("m1 cannot reach n1: %v", err)
	}
	if a, ok := addrOf(s.n, m1.n.ID()); ok {
		s.tr.Disconnect(a)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, ok := addrOf(s.n, m1.n.ID()); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("s still knows m1 after closing their connection")
		}
	}

	// The flood: one valid offer, over and over.
	c, err := webrtc.New(&webrtc.Config{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o, err := c.NewOffer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	offer := o.SDP()
	// The flood renews its offers, source after source, from the moment the budgets
	// are full until the checks are done and it has sent at least 1,000.
	var mu sync.Mutex
	outcomes := map[string]int{}
	var started atomic.Int32
	stop, flooded := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(flooded)
		var next atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for {
					i := int(next.Add(1)-1) % 1000
					select {
					case <-stop:
						return
					default:
					}
					started.Add(1)
					outcome := testenv.FloodOffer(ctx, s.srv, s.tr, offer, i)
					mu.Lock()
					outcomes[outcome]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}()
	for started.Load() < 200 { // the budgets are full
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()

	// A well-behaved client joins through the signalling server.
	a := newRealNode(t, lift, nil)
	if _, err := a.n.Bootstrap(ctx, s.addr); err != nil {
		t.Fatalf("a well-behaved client's join during the flood: %v", err)
	}
	if _, err := a.n.Ping(ctx, mustAddr(t, a.n, s.n.ID())); err != nil {
		t.Fatalf("the client's ping after joining during the flood: %v", err)
	}
	// The node's own lookup connects to m1, through n1.
	if _, ok := addrOf(s.n, m1.n.ID()); ok {
		t.Fatal("setup: s knows m1 before its lookup")
	}
	res, err := s.n.FindNode(ctx, m1.n.ID())
	if err != nil {
		t.Fatalf("the node's own lookup during the flood: %v", err)
	}
	if !slices.ContainsFunc(res.Closest, func(ni dht.NodeInfo) bool { return ni.ID == m1.n.ID() }) {
		t.Fatalf("the node's own lookup during the flood did not reach m1: %+v", res)
	}
	if id, err := s.n.Ping(ctx, mustAddr(t, s.n, m1.n.ID())); err != nil || id != m1.n.ID() {
		t.Fatalf("the connection s's lookup opened to m1 does not carry a ping: %v %v", id, err)
	}
	t.Logf("joined and looked up in %v, %d offers into the flood", time.Since(start).Round(time.Millisecond), started.Load())
	for started.Load() < 1000 {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	<-flooded
	t.Logf("flood outcomes: %v; evicted %d", outcomes, s.tr.Stats().Evicted)
	if outcomes["server 503"]+outcomes["relayed false"] == 0 && s.tr.Stats().Evicted == 0 {
		t.Errorf("the flood was never refused nor evicted anything (%v): it did not reach the budgets", outcomes)
	}
}

// mustAddr returns where n knows the node id, failing the test if it does not.
func mustAddr(t *testing.T, n *dht.Node, id dht.ID) netip.AddrPort {
	t.Helper()
	a, ok := addrOf(n, id)
	if !ok {
		t.Fatalf("%v does not know %v", n.ID(), id)
	}
	return a
}
