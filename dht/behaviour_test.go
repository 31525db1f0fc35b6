package dht

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	akrpc "github.com/anacrolix/dht/v2/krpc"

	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/memory"
)

// A node that dies is evicted from the others' tables by liveness pings once it has been
// silent long enough to be questionable.
func TestDeadNodeEvicted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, &memory.Config{Link: memory.LinkConfig{Delay: 5 * time.Millisecond}})
		nodes := make([]*Node, 6)
		for i := range nodes {
			nodes[i] = c.add(nil)
		}
		for _, n := range nodes[1:] {
			if _, err := n.Bootstrap(t.Context(), nodes[0].Addr()); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		victim := nodes[5]
		holders := 0
		for _, n := range nodes[:5] {
			if containsNode(n.Nodes(), victim.ID()) {
				holders++
			}
		}
		if holders == 0 {
			t.Fatal("nobody knows the victim")
		}
		victim.Close()
		// Keep the others talking to each other so they stay good.
		time.Sleep(30 * time.Minute)
		synctest.Wait()
		for i, n := range nodes[:5] {
			if containsNode(n.Nodes(), victim.ID()) {
				t.Errorf("node %d still holds the dead node after 30 minutes", i)
			}
			if len(n.Nodes()) != 4 {
				t.Errorf("node %d has %d live nodes, want 4", i, len(n.Nodes()))
			}
		}
	})
}

func containsNode(ns []NodeInfo, id ID) bool {
	for _, n := range ns {
		if n.ID == id {
			return true
		}
	}
	return false
}

func TestRestartFromState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		a, b, d := c.add(nil), c.add(nil), c.add(nil)
		b.Bootstrap(t.Context(), a.Addr())
		synctest.Wait() // a verifies b before d asks a for nodes
		d.Bootstrap(t.Context(), a.Addr())
		synctest.Wait()
		st := d.State()
		if len(st.Nodes) != 2 || st.ID != d.ID() {
			t.Fatalf("state %+v", st)
		}
		d.Close()
		d2 := c.add(&Config{State: &st})
		if d2.ID() != st.ID || len(d2.Nodes()) != 2 {
			t.Fatalf("restarted node: id %v, table %v", d2.ID(), d2.Nodes())
		}
		if _, err := d2.Bootstrap(t.Context()); err != nil {
			t.Fatalf("bootstrap from saved state: %v", err)
		}
	})
}

// Read-only (BEP 43) queriers never enter the table.
func TestReadOnlyNotAdded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		a := c.add(nil)
		ro := c.add(&Config{KRPC: krpc.Config{ReadOnly: true}})
		if _, err := ro.Bootstrap(t.Context(), a.Addr()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if len(a.Nodes()) != 0 {
			t.Fatalf("a read-only node entered the table: %v", a.Nodes())
		}
		if len(ro.Nodes()) != 1 {
			t.Fatal("the read-only node should still learn the nodes it queried")
		}
	})
}

// A node that bootstraps from its own address has not joined anything.
func TestBootstrapFromSelf(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		a := c.add(nil)
		if _, err := a.Bootstrap(t.Context(), a.Addr()); !errors.Is(err, ErrNoNodes) {
			t.Fatalf("bootstrap from ourselves: %v, want ErrNoNodes", err)
		}
		silent := c.listen()
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		if _, err := a.Bootstrap(ctx, silent.LocalAddr()); !errors.Is(err, ErrNoNodes) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("bootstrap cut short by its context: %v, want ErrNoNodes and DeadlineExceeded", err)
		}
	})
}

// With an empty table, lookups start from Config.Bootstrap.
func TestLookupFallsBackOnBootstrap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		a := c.add(nil)
		b := c.add(&Config{Bootstrap: []netip.AddrPort{a.Addr()}})
		res, err := b.FindNode(t.Context(), RandomID())
		if err != nil || res.Responses != 1 {
			t.Fatalf("FindNode on an empty table: %+v, %v", res, err)
		}
	})
}

func TestImpliedPort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		a, b := c.add(nil), c.add(nil)
		b.Bootstrap(t.Context(), a.Addr())
		ih := RandomID()
		if _, err := b.Announce(t.Context(), ih, 0); err != nil {
			t.Fatal(err)
		}
		if got := a.Peers().Peers(ih, 10); len(got) != 1 || got[0] != b.Addr() {
			t.Fatalf("implied port: stored %v, want %v", got, b.Addr())
		}
		if _, err := b.Announce(t.Context(), ih, 70000); err == nil {
			t.Fatal("port 70000 accepted")
		}
	})
}

// Queries with bad arguments get a 203 error and the node keeps answering.
func TestBadArguments(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		a := c.add(nil)
		srv, err := krpc.NewServer(c.listen(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		call := func(method string, mod func(*krpc.Args)) error {
			args := &krpc.Args{}
			args.ID = RandomID()
			mod(args)
			_, err := srv.Call(t.Context(), a.Addr(), &krpc.Query{Method: method, Args: args})
			return err
		}
		zero, big := 0, 70000
		for _, tc := range []struct {
			method string
			mod    func(*krpc.Args)
		}{
			// A missing target or info_hash: TestZeroAndMissingIDs (krpc always sends one).
			{"announce_peer", func(a *krpc.Args) {}},
			{"announce_peer", func(a *krpc.Args) { a.InfoHash = RandomID(); a.Token = "x" }},
			{"announce_peer", func(a *krpc.Args) { a.InfoHash = RandomID(); a.Port = &zero }},
			{"announce_peer", func(a *krpc.Args) { a.InfoHash = RandomID(); a.Port = &big }},
		} {
			var ke *krpc.Error
			if err := call(tc.method, tc.mod); !errors.As(err, &ke) || ke.Code != krpc.ErrorCodeProtocol {
				t.Errorf("%s with bad args: %v, want a 203 error", tc.method, err)
			}
		}
		if err := call("vote", func(*krpc.Args) {}); err == nil || !strings.Contains(err.Error(), "204") {
			t.Errorf("unknown method: %v", err)
		}
		if err := call("ping", func(*krpc.Args) {}); err != nil {
			t.Fatalf("ping after bad queries: %v", err)
		}
	})
}

func (c *cluster) listen() *memory.Transport {
	c.t.Helper()
	tr, err := c.net.Listen(netip.AddrPort{})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { tr.Close() })
	return tr
}

// A hostile node answers lookups with poison (1-byte values, a bogus ip, nodes pointing at
// nowhere and at ourselves); the lookup still finds the real peer and nothing panics.
func TestHostileResponder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, &memory.Config{Link: memory.LinkConfig{Delay: time.Millisecond}})
		good := c.add(nil)
		victim := c.add(&Config{KRPC: krpc.Config{Timeout: 200 * time.Millisecond}})
		evilT := c.listen()
		evil, err := krpc.NewServer(evilT, krpc.HandlerFunc(func(ctx context.Context, q *krpc.Query) (*krpc.Response, error) {
			r := &krpc.Return{Return: akrpc.Return{ID: RandomID()}}
			tok := "t"
			r.Token = &tok
			r.Values = []akrpc.NodeAddr{{IP: net.IP{1}, Port: 1}, {IP: net.IPv4(0, 0, 0, 0), Port: 0}}
			r.Nodes = []akrpc.NodeInfo{
				{ID: victim.ID(), Addr: akrpc.NodeAddr{IP: net.IPv4(10, 99, 0, 1), Port: 1}},
				{ID: RandomID(), Addr: akrpc.NodeAddr{IP: net.IPv4(10, 99, 0, 2), Port: 1}},
				{ID: RandomID(), Addr: akrpc.NodeAddr{IP: net.IPv4(0, 0, 0, 0), Port: 0}},
			}
			return &krpc.Response{Return: r}, nil
		}), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer evil.Close()
		ih := RandomID()
		good.Peers().Add(ih, netip.MustParseAddrPort("192.0.2.7:1234"))
		var found []netip.AddrPort
		res, err := victim.GetPeers(t.Context(), ih, func(p netip.AddrPort, _ NodeInfo) bool { found = append(found, p); return true })
		_ = res
		if !errors.Is(err, ErrNoNodes) {
			t.Fatalf("lookup with an empty table: %v", err)
		}
		victim.Bootstrap(t.Context(), evilT.LocalAddr(), good.Addr())
		res, err = victim.GetPeers(t.Context(), ih, func(p netip.AddrPort, _ NodeInfo) bool { found = append(found, p); return true })
		if err != nil {
			t.Fatal(err)
		}
		if len(found) != 1 || found[0] != netip.MustParseAddrPort("192.0.2.7:1234") {
			t.Fatalf("found %v", found)
		}
		if _, err := victim.Ping(t.Context(), good.Addr()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCloseEndsLookups(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, &memory.Config{Link: memory.LinkConfig{Delay: time.Second}})
		a, b := c.add(nil), c.add(nil)
		errc := make(chan error)
		go func() {
			_, err := a.Bootstrap(context.Background(), b.Addr())
			errc <- err
		}()
		synctest.Wait()
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("lookup during Close: %v, want net.ErrClosed", err)
		}
		if err := a.Close(); err != nil {
			t.Fatal("second Close:", err)
		}
		if _, err := a.Ping(t.Context(), b.Addr()); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Ping after Close: %v", err)
		}
	})
}

func TestConfig(t *testing.T) {
	tr := newCluster(t, nil).listen()
	for _, cfg := range []*Config{
		{K: -1}, {Alpha: -1}, {TokenPeriod: -time.Second},
		{Bootstrap: []netip.AddrPort{{}}}, {KRPC: krpc.Config{Timeout: -1}},
	} {
		if n, err := New(tr, cfg); err == nil {
			n.Close()
			t.Errorf("config %+v accepted", cfg)
		}
	}
	cfg := &Config{}
	n, err := New(tr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.Close()
	if cfg.K != 0 || cfg.Logger != nil {
		t.Fatal("New changed the caller's Config")
	}
	if _, err := New(nil, nil); err == nil {
		t.Fatal("nil transport accepted")
	}
}

// Nodes find the nodes that joined after them, through maintenance, even when those never
// query them: two halves joined by one bridging node become one network.
func TestMaintenanceFindsLaterNodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, &memory.Config{Link: memory.LinkConfig{Delay: 10 * time.Millisecond}})
		n := make([]*Node, 5)
		for i := range n {
			n[i] = c.add(nil)
		}
		n[1].Bootstrap(t.Context(), n[0].Addr())
		n[3].Bootstrap(t.Context(), n[2].Addr())
		n[4].Bootstrap(t.Context(), n[0].Addr(), n[2].Addr())
		synctest.Wait()
		if containsNode(n[1].Nodes(), n[3].ID()) {
			t.Fatal("test setup: the halves already know each other")
		}
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		for i, x := range n {
			if got := len(x.Nodes()); got != 4 {
				t.Errorf("node %d knows %d nodes after 5 minutes, want 4: %v", i, got, x.Nodes())
			}
		}
	})
}

func TestThinBucketRefresh(t *testing.T) {
	now := time.Now()
	self := RandomID()
	tb := newTable(self, 2, 2, now)
	for i := range 5 {
		tb.responded(NodeInfo{ID: idWithPrefix(self, i%3), Addr: addrN(i)}, now)
	}
	// Buckets 0 and 1 are full (2 each); the last bucket has room.
	target, ok := tb.thinBucket(now, time.Minute, 15*time.Minute)
	if !ok || tb.index(&target) != len(tb.buckets)-1 {
		t.Fatalf("thin bucket target %v (ok %v) is not in the bucket with room", target, ok)
	}
	if _, ok := tb.thinBucket(now.Add(30*time.Second), time.Minute, 15*time.Minute); ok {
		t.Fatal("refreshed again within a minute")
	}
	// Refreshes that find nothing new back off: 1, 2, 4, 8, then 15 minutes (the max).
	at := now
	for _, wait := range []time.Duration{1, 2, 4, 8, 15, 15} {
		if _, ok := tb.thinBucket(at.Add(wait*time.Minute-time.Second), time.Minute, 15*time.Minute); ok {
			t.Fatalf("refreshed before %d minutes", wait)
		}
		at = at.Add(wait * time.Minute)
		if _, ok := tb.thinBucket(at, time.Minute, 15*time.Minute); !ok {
			t.Fatalf("not refreshed after %d minutes", wait)
		}
	}
	// A new node in the bucket resets the wait to a minute.
	last := len(tb.buckets) - 1
	for tb.buckets[last].nodes != nil && len(tb.buckets[last].nodes) >= 2 {
		last--
	}
	tb.buckets[last].changed = at.Add(time.Second)
	at = at.Add(15 * time.Minute)
	tb.thinBucket(at, time.Minute, 15*time.Minute)
	if _, ok := tb.thinBucket(at.Add(time.Minute), time.Minute, 15*time.Minute); !ok {
		t.Fatal("a refresh that found something new did not reset the wait")
	}
}

// notifying is a transport that reports closed connections and records which it is
// asked to keep, as WebRTC does.
type notifying struct {
	*memory.Transport
	closed func(netip.AddrPort)
	mu     sync.Mutex // Keep runs on the node's goroutines, isKept on the test's
	kept   map[netip.AddrPort]bool
}

func (n *notifying) NotifyClosed(f func(netip.AddrPort)) { n.closed = f }

func (n *notifying) Keep(addr netip.AddrPort, keep bool) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.kept == nil {
		n.kept = make(map[netip.AddrPort]bool)
	}
	n.kept[addr] = keep
	return true
}

func (n *notifying) isKept(addr netip.AddrPort) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.kept[addr]
}

// A node whose connection closes is forgotten at once.
func TestClosedPeerForgotten(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		a := c.add(nil)
		tr := &notifying{Transport: c.listen()}
		b, err := New(tr, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if _, err := b.Bootstrap(t.Context(), a.Addr()); err != nil {
			t.Fatal(err)
		}
		if len(b.Nodes()) != 1 || tr.closed == nil {
			t.Fatalf("setup: table %v, notifier registered %v", b.Nodes(), tr.closed != nil)
		}
		if !tr.isKept(a.Addr()) {
			t.Fatal("the connection of a node in the table is not kept")
		}
		tr.closed(a.Addr())
		if len(b.Nodes()) != 0 {
			t.Fatalf("closed peer still in the table: %v", b.Nodes())
		}
		if tr.isKept(a.Addr()) {
			t.Fatal("the connection of a node that left the table is still kept")
		}
	})
}

// dialing is a transport on a linked memory network that reaches a node only after
// dialling it, and knows signalling servers, as a WebRTC transport does.
type dialing struct {
	*memory.Transport
	net       *memory.Network
	mu        sync.Mutex
	dialed    []string
	announced []string // what SignallingServers returns; nil means signal.example:16881
}

func (d *dialing) Dial(ctx context.Context, addr string) (netip.AddrPort, error) {
	d.mu.Lock()
	d.dialed = append(d.dialed, addr)
	d.mu.Unlock()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return ap, d.net.Link(d.LocalAddr(), ap)
}

func (d *dialing) dials() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.dialed)
}

func (d *dialing) SignallingServers() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.announced == nil {
		return []string{"signal.example:16881"}
	}
	return slices.Clone(d.announced)
}

// Bootstrap dials a seed it has no route to; the state of such a node lists its
// signalling servers rather than node addresses: those that answered a dial, never one
// a peer merely announced.
func TestBootstrapDials(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memory.NewNetwork(&memory.Config{Linked: true})
		listen := func() *Node {
			tr, _ := mem.Listen(netip.AddrPort{})
			t.Cleanup(func() { tr.Close() })
			n, err := New(tr, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { n.Close() })
			return n
		}
		a, e := listen(), listen()
		trB, _ := mem.Listen(netip.AddrPort{})
		defer trB.Close()
		d := &dialing{Transport: trB, net: mem}
		b, err := New(d, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if _, err := b.Bootstrap(t.Context(), a.Addr()); err != nil {
			t.Fatalf("bootstrap through a dial: %v", err)
		}
		if got := d.dials(); len(got) != 1 || got[0] != a.Addr().String() {
			t.Fatalf("dialled %v", got)
		}
		if _, err := b.Ping(t.Context(), a.Addr()); err != nil || len(d.dials()) != 1 {
			t.Fatalf("ping over the open link: %v (dials %v)", err, d.dials())
		}
		// The server dialled (it answered); not the one the peer announced, not dialled yet.
		if st := b.State(); len(st.Nodes) != 0 || !slices.Equal(st.Bootstrap, []string{a.Addr().String()}) {
			t.Fatalf("state of a WebRTC-like node: %+v", st)
		}
		// Maintenance dials the announced server; it does not answer, so it is not saved.
		// (A maintenance run comes every DefaultMaintenanceInterval ± 10 %.)
		const run = DefaultMaintenanceInterval*11/10 + time.Second
		time.Sleep(run)
		synctest.Wait()
		if got := d.dials(); !slices.Contains(got, "signal.example:16881") {
			t.Fatalf("maintenance did not dial the announced server: dials %v", got)
		}
		if st := b.State(); !slices.Equal(st.Bootstrap, []string{a.Addr().String()}) {
			t.Fatalf("state after the announced server failed its dial: %v", st.Bootstrap)
		}
		// An announced server that answers is saved after the next maintenance.
		d.mu.Lock()
		d.announced = []string{"signal.example:16881", e.Addr().String()}
		d.mu.Unlock()
		time.Sleep(run)
		synctest.Wait()
		want := []string{a.Addr().String(), e.Addr().String()}
		slices.Sort(want)
		if st := b.State(); !slices.Equal(st.Bootstrap, want) {
			t.Fatalf("state after an announced server answered: %v, want %v (dials %v)", st.Bootstrap, want, d.dials())
		}
		// A node restarted from a state keeps its servers even before it connects; the
		// server its peers announce is not among them.
		trC, _ := mem.Listen(netip.AddrPort{})
		defer trC.Close()
		c, err := New(&dialing{Transport: trC, net: mem}, &Config{State: &State{Bootstrap: []string{a.Addr().String(), "other.example:1"}}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := c.State().Bootstrap; len(got) != 2 {
			t.Fatalf("restarted node's servers: %v", got)
		}
	})
}

// With K=2 a lookup still waits for more than the first two nodes that answer
// (minLookupWidth): L knows A and B, close to the target but knowing nothing closer,
// and C, farther, which knows D, the target itself. A lookup that ended once A and B
// answered would miss D.
func TestLookupWiderThanSmallK(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		target := RandomID()
		at := func(x byte) ID { id := target; id[19] ^= x; return id } // distance x from target
		cfg := func(id ID) *Config { return &Config{ID: id, K: 2} }
		// Relative to L, A and B share a bucket and C has its own, so L's K=2 table holds
		// all three; D is not in L's table.
		l := c.add(cfg(at(6)))
		a, b, cc, d := c.add(cfg(at(1))), c.add(cfg(at(2))), c.add(cfg(at(4))), c.add(cfg(at(0)))
		for _, n := range []*Node{a, b, cc} {
			if _, err := l.Ping(t.Context(), n.Addr()); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := cc.Ping(t.Context(), d.Addr()); err != nil { // C learns D (it answered)
			t.Fatal(err)
		}
		if got := len(l.Nodes()); got != 3 {
			t.Fatalf("L's table holds %d nodes, want A, B and C", got)
		}
		res, err := l.FindNode(t.Context(), target)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Closest) == 0 || res.Closest[0].ID != d.ID() {
			t.Fatalf("the lookup ended at %v, want D %v first", res.Closest, d.ID())
		}
		if len(res.Closest) != 2 {
			t.Errorf("%d closest nodes returned, want K=2", len(res.Closest))
		}
	})
}
