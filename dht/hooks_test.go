package dht

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wdht/wdht/transport/memory"
)

// recorder counts the events a node's hooks see.
type recorder struct {
	mu        sync.Mutex
	added     map[NodeInfo]int
	removed   map[NodeInfo]int
	announced []string
	stored    []ID
	queries   map[string]int // method -> count, from the watched node only
	total     uint64         // queries from anyone
	watch     ID
}

func (r *recorder) events() Events {
	r.added, r.removed, r.queries = map[NodeInfo]int{}, map[NodeInfo]int{}, map[string]int{}
	return Events{
		NodeAdded:   func(ni NodeInfo) { r.mu.Lock(); r.added[ni]++; r.mu.Unlock() },
		NodeRemoved: func(ni NodeInfo) { r.mu.Lock(); r.removed[ni]++; r.mu.Unlock() },
		PeerAnnounced: func(ih ID, peer netip.AddrPort, from NodeInfo) {
			r.mu.Lock()
			r.announced = append(r.announced, ih.String()+" "+peer.String()+" "+from.String())
			r.mu.Unlock()
		},
		ItemStored: func(it *Item, from NodeInfo) { r.mu.Lock(); r.stored = append(r.stored, it.Target()); r.mu.Unlock() },
		Query: func(method string, from NodeInfo) {
			r.mu.Lock()
			r.total++
			if from.ID == r.watch {
				r.queries[method]++
			}
			r.mu.Unlock()
		},
	}
}

// TestEventsOncePerEvent: every hook fires once for each event, with the right node.
func TestEventsOncePerEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		var rec recorder
		a := c.add(&Config{Events: rec.events()})
		b := c.add(nil)
		rec.mu.Lock()
		rec.watch = b.ID()
		rec.mu.Unlock()
		ctx := t.Context()
		for range 3 {
			if _, err := b.Ping(ctx, a.Addr()); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait() // a verifies b with a ping of its own, then adds it
		bi := NodeInfo{ID: b.ID(), Addr: b.Addr()}
		ih := RandomID()
		if _, err := b.Announce(ctx, ih, 4242); err != nil {
			t.Fatal(err)
		}
		it, err := NewImmutableItem("hello")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Put(ctx, it, nil); err != nil {
			t.Fatal(err)
		}
		if !a.RemoveNode(b.ID()) {
			t.Fatal("RemoveNode(b) = false, want true")
		}
		synctest.Wait()

		rec.mu.Lock()
		defer rec.mu.Unlock()
		// b pinged a three times; b's own maintenance may ping a too. Every query a
		// received is one event, once.
		if rec.queries["ping"] < 3 {
			t.Errorf("Query hook saw %d pings from b, want at least 3 (%v)", rec.queries["ping"], rec.queries)
		}
		if in := a.Stats().KRPC.QueriesIn; rec.total != in {
			t.Errorf("Query hook ran %d times for %d queries received", rec.total, in)
		}
		if rec.queries["get_peers"] != 1 || rec.queries["announce_peer"] != 1 || rec.queries["get"] != 1 || rec.queries["put"] != 1 {
			t.Errorf("Query hook saw %v from b, want one get_peers, announce_peer, get and put", rec.queries)
		}
		if rec.added[bi] != 1 || len(rec.added) != 1 {
			t.Errorf("NodeAdded saw %v, want b %v once", rec.added, bi)
		}
		if rec.removed[bi] != 1 || len(rec.removed) != 1 {
			t.Errorf("NodeRemoved saw %v, want b %v once", rec.removed, bi)
		}
		want := ih.String() + " " + netip.AddrPortFrom(b.Addr().Addr(), 4242).String() + " " + bi.String()
		if len(rec.announced) != 1 || rec.announced[0] != want {
			t.Errorf("PeerAnnounced saw %q, want [%q]", rec.announced, want)
		}
		if len(rec.stored) != 1 || rec.stored[0] != it.Target() {
			t.Errorf("ItemStored saw %v, want [%v]", rec.stored, it.Target())
		}
		if d := a.Stats().EventsDropped; d != 0 {
			t.Errorf("EventsDropped = %d, want 0", d)
		}
	})
}

// TestEventsNeverBlockReadLoop: a hook that never returns while a flood of queries
// arrives. Every query is still answered (inline, on the read loop); the events past the
// queue are dropped and counted, and after the hook returns every event not dropped is
// delivered exactly once.
func TestEventsNeverBlockReadLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const queue, flood, senders = 8, 2000, 20
		c := newCluster(t, nil)
		release := make(chan struct{})
		var mu sync.Mutex
		seen := 0
		cfg := unlimited()
		cfg.Events = Events{Queue: queue, Query: func(string, NodeInfo) {
			<-release
			mu.Lock()
			seen++
			mu.Unlock()
		}}
		a := c.add(cfg)
		var wg sync.WaitGroup
		errs := make(chan error, flood)
		for s := range senders {
			b := c.add(unlimited())
			wg.Go(func() {
				for range flood / senders {
					if _, err := b.Ping(t.Context(), a.Addr()); err != nil {
						errs <- err
					}
				}
				_ = s
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("a ping went unanswered while a hook was blocked: %v", err)
		}
		st := a.Stats()
		in := st.KRPC.QueriesIn
		if in < flood {
			t.Fatalf("QueriesIn = %d, want at least %d", in, flood)
		}
		if st.EventsDropped < in-queue-1 {
			t.Fatalf("EventsDropped = %d of %d queries with a queue of %d, want the rest dropped", st.EventsDropped, in, queue)
		}
		close(release)
		synctest.Wait()
		mu.Lock()
		defer mu.Unlock()
		// Queries after the release (a's verification pings) also count: compare totals.
		st = a.Stats()
		if uint64(seen)+st.EventsDropped != st.KRPC.QueriesIn {
			t.Fatalf("hook ran %d times, %d dropped, of %d queries: want each event delivered once or dropped", seen, st.EventsDropped, st.KRPC.QueriesIn)
		}
	})
}

// TestJoinRetries: Join keeps trying until the bootstrap node appears, then signals Ready.
func TestJoinRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		boot := netip.MustParseAddrPort("10.9.9.9:6881")
		a := c.add(&Config{Bootstrap: []netip.AddrPort{boot}})
		a.Join(t.Context())
		a.Join(t.Context()) // a second Join while one runs does nothing
		time.Sleep(30 * time.Second)
		select {
		case <-a.Ready():
			t.Fatal("Ready before any bootstrap node existed")
		default:
		}
		tr, err := c.net.Listen(boot)
		if err != nil {
			t.Fatal(err)
		}
		b, err := New(tr, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		defer b.Close()
		start := time.Now()
		select {
		case <-a.Ready():
		case <-time.After(2 * JoinBackoffMax):
			t.Fatal("not Ready two backoff maxima after the bootstrap node appeared")
		}
		if d := time.Since(start); d > JoinBackoffMax+JoinBackoffMax/10+10*time.Second {
			t.Errorf("Ready %v after the node appeared, want within one backoff", d)
		}
		synctest.Wait()
		if nodes := a.Nodes(); len(nodes) != 1 || nodes[0].ID != b.ID() {
			t.Fatalf("after Join the table holds %v, want b", nodes)
		}
	})
}

// TestJoinStopsOnClose: a Join that never succeeds ends with the node.
func TestJoinStopsOnClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		a := c.add(&Config{Bootstrap: []netip.AddrPort{netip.MustParseAddrPort("10.9.9.9:6881")}})
		a.Join(context.Background())
		time.Sleep(5 * time.Minute)
		a.Close() // waits for the Join goroutine: synctest would report it leaked otherwise
	})
}

func TestAddNodeRemoveNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		a, b := c.add(nil), c.add(nil)
		dead := netip.MustParseAddrPort("10.9.9.9:6881")
		_, err := a.AddNode(t.Context(), dead)
		if err == nil || !strings.Contains(err.Error(), "no node answered a ping at 10.9.9.9:6881") {
			t.Fatalf("AddNode(dead) = %v, want an error naming the address", err)
		}
		if len(a.Nodes()) != 0 {
			t.Fatalf("a dead address entered the table: %v", a.Nodes())
		}
		if _, err := a.AddNode(t.Context(), netip.AddrPort{}); err == nil {
			t.Fatal("AddNode of the zero address succeeded")
		}
		ni, err := a.AddNode(t.Context(), b.Addr())
		if err != nil {
			t.Fatal(err)
		}
		if want := (NodeInfo{b.ID(), b.Addr()}); ni != want {
			t.Fatalf("AddNode = %v, want %v", ni, want)
		}
		if nodes := a.Nodes(); len(nodes) != 1 || nodes[0].ID != b.ID() {
			t.Fatalf("after AddNode the table holds %v, want b", nodes)
		}
		if !a.RemoveNode(b.ID()) || len(a.Nodes()) != 0 {
			t.Fatalf("RemoveNode left %v", a.Nodes())
		}
		if a.RemoveNode(b.ID()) {
			t.Fatal("RemoveNode of an absent node = true")
		}
		if _, err := a.AddNode(t.Context(), a.Addr()); err == nil {
			t.Fatal("AddNode of the node itself succeeded")
		}
		var cfgErr error
		_, cfgErr = New(mustListen(t, c.net), &Config{BootstrapHosts: []string{"no-port"}})
		if cfgErr == nil || !errors.Is(cfgErr, cfgErr) || !strings.Contains(cfgErr.Error(), "BootstrapHosts[0]") {
			t.Fatalf("a bad BootstrapHosts entry: %v, want an error naming it", cfgErr)
		}
	})
}

func mustListen(t *testing.T, n *memory.Network) *memory.Transport {
	tr, err := n.Listen(netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// TestBootstrapHosts: a host name in Config.BootstrapHosts is resolved when the node
// bootstraps (localhost: 127.0.0.1 and ::1, both families asked for).
func TestBootstrapHosts(t *testing.T) {
	n := memory.NewNetwork(nil)
	tb, err := n.Listen(netip.MustParseAddrPort("127.0.0.1:7001"))
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	b, err := New(tb, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ta := mustListen(t, n)
	a, err := New(ta, &Config{BootstrapHosts: []string{"localhost:7001"}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Bootstrap(t.Context()); err != nil {
		t.Fatalf("Bootstrap from localhost:7001: %v", err)
	}
	if nodes := a.Nodes(); len(nodes) != 1 || nodes[0].ID != b.ID() {
		t.Fatalf("table %v, want b", nodes)
	}
	select {
	case <-a.Ready():
	default:
		t.Fatal("Ready not closed after a successful Bootstrap")
	}
}
