package dht

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wdht/wdht/internal/bubble"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/memory"
)

// know puts ni in n's routing table as a node that answered rtt after a query.
func know(n *Node, ni NodeInfo, rtt time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	tb := n.tableFor(ni.Addr)
	tb.responded(ni, time.Now())
	if rtt > 0 {
		tb.sampleRTT(ni.ID, rtt)
		n.rtt.Add(rtt)
	}
}

func inTable(n *Node, id ID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, tb := range n.tables {
		if tb != nil && tb.contains(id) {
			return true
		}
	}
	return false
}

// A lookup whose closest node never answers ends by its soft deadlines: it does not wait
// for the query's KRPC timeout (2 × 2 s by default), and it still finds the live nodes.
func TestLookupDoesNotWaitForDeadNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, &memory.Config{Link: memory.LinkConfig{Delay: 10 * time.Millisecond}})
		nodes := make([]*Node, 8)
		for i := range nodes {
			nodes[i] = c.add(nil)
		}
		for _, n := range nodes[1:] {
			if _, err := n.Bootstrap(t.Context(), nodes[0].Addr()); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		a, dead := nodes[1], nodes[7]
		if !inTable(a, dead.ID()) {
			know(a, NodeInfo{ID: dead.ID(), Addr: dead.Addr()}, 20*time.Millisecond)
		}
		dead.Close() // its transport stays open: queries to it are never answered
		res, err := a.FindNode(t.Context(), dead.ID())
		if err != nil {
			t.Fatal(err)
		}
		if res.Duration >= krpc.DefaultTimeout {
			t.Errorf("the lookup took %v: it waited for the dead node (KRPC timeout %v)", res.Duration, krpc.DefaultTimeout)
		}
		if res.Stalled == 0 {
			t.Error("no query stalled: the dead node was not asked")
		}
		if slices.ContainsFunc(res.Closest, func(ni NodeInfo) bool { return ni.ID == dead.ID() }) {
			t.Error("the dead node is among the closest that answered")
		}
		if len(res.Closest) != 6 {
			t.Errorf("%d closest nodes, want the 6 live others", len(res.Closest))
		}
		// The stalled query runs on to its timeout in the background and counts as a
		// failure: the next lookup skips the address.
		time.Sleep(5 * time.Second)
		synctest.Wait()
		a.mu.Lock()
		failed := a.failed.failed(dead.Addr(), time.Now())
		a.mu.Unlock()
		if !failed {
			t.Error("the dead node's timeout was not recorded")
		}
		res, err = a.FindNode(t.Context(), dead.ID())
		if err != nil {
			t.Fatal(err)
		}
		if res.Stalled != 0 {
			t.Errorf("%d stalled queries in the second lookup: the dead node was asked again", res.Stalled)
		}
	})
}

// slowAndDead builds a node a whose table holds a slow node s (its link to a has a
// one-way delay of 300 ms: it answers after the soft deadline but well before the
// KRPC timeout) and two dead nodes; s knows four more fast nodes.
func slowAndDead(t *testing.T) (a, s *Node, dead []*Node, c *cluster) {
	c = newCluster(t, &memory.Config{Link: memory.LinkConfig{Delay: 5 * time.Millisecond}})
	a, s = c.add(nil), c.add(nil)
	for range 4 {
		f := c.add(nil)
		if _, err := f.Bootstrap(t.Context(), s.Addr()); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		d := c.add(nil)
		dead = append(dead, d)
		know(a, NodeInfo{ID: d.ID(), Addr: d.Addr()}, 10*time.Millisecond)
		d.Close()
	}
	know(a, NodeInfo{ID: s.ID(), Addr: s.Addr()}, 10*time.Millisecond)
	if err := c.net.SetLink(a.Addr().Addr(), s.Addr().Addr(), memory.LinkConfig{Delay: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
	return a, s, dead, c
}

// A query past its soft deadline still counts when its answer comes: the slow node's
// answer (a peer, and the nodes it knows) is used, and the lookup does not wait for the
// dead nodes' timeouts.
func TestLookupUsesLateAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, s, _, _ := slowAndDead(t)
		ih := s.ID()
		peer := netip.MustParseAddrPort("192.0.2.7:6881")
		s.Peers().Add(ih, peer)
		var got []netip.AddrPort
		res, err := a.GetPeers(t.Context(), ih, func(p netip.AddrPort, _ NodeInfo) bool {
			got = append(got, p)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(got, peer) {
			t.Errorf("peers %v: the slow node's peer is missing", got)
		}
		if res.Stalled < 3 {
			t.Errorf("%d stalled queries, want the slow node's and the two dead nodes'", res.Stalled)
		}
		if !slices.ContainsFunc(res.Closest, func(ni NodeInfo) bool { return ni.ID == s.ID() }) {
			t.Error("the slow node is not among the closest that answered")
		}
		if res.Responses != 5 {
			t.Errorf("%d responses, want the slow node and the 4 nodes it returned", res.Responses)
		}
		if res.Duration >= krpc.DefaultTimeout {
			t.Errorf("the lookup took %v: it waited for the dead nodes", res.Duration)
		}
	})
}

// With K=2 (the JS's), a lookup waits for a stalled query to a node among the 4 nearest
// (minLookupWidth), up to MaxQueryDeadline after it was sent: the slow node (a query that
// waits on relays on the WebTorrent DHT) is among the result, not left out of it. On this
// datagram network a dead node there costs that wait (over WebRTC its connection closes
// and the query fails at once), not a KRPC timeout. With K=8 the 8 nearest that did not
// stall have answered first, and the lookup does not wait, unless the transport is
// reliable (transport.Reliable, as WebRTC): a query there is slow, never lost.
func TestSmallKWaitsForNearerStalled(t *testing.T) {
	for _, tc := range []struct {
		k        int
		reliable bool
		dead     bool
		wantSlow bool
	}{
		{k: 2, wantSlow: true},
		{k: 2, dead: true},
		{k: 8},
		{k: 8, reliable: true, wantSlow: true},
	} {
		t.Run(fmt.Sprintf("K=%d reliable=%v dead=%v", tc.k, tc.reliable, tc.dead), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCluster(t, &memory.Config{Link: memory.LinkConfig{Delay: 5 * time.Millisecond}})
				cfg := &Config{K: tc.k}
				a, s := nearestAndOthers(t, c, cfg, tc.reliable)
				// s answers after 600 ms: past its soft deadline (50 ms) and the 8 soft
				// deadlines a lookup with too few answers waits, before MaxQueryDeadline
				// (1 s).
				if err := c.net.SetLink(a.Addr().Addr(), s.Addr().Addr(), memory.LinkConfig{Delay: 300 * time.Millisecond}); err != nil {
					t.Fatal(err)
				}
				res, gotSlow := findNearest(t, a, s, tc.dead)
				if gotSlow != tc.wantSlow {
					t.Errorf("slow node first among the closest: %v, want %v (closest %v, %v)", gotSlow, tc.wantSlow, res.Closest, res.Duration)
				}
				if tc.dead && res.Duration > DefaultMaxQueryDeadline+50*time.Millisecond {
					t.Errorf("the lookup took %v: it waited for the dead node past MaxQueryDeadline", res.Duration)
				}
				if !tc.wantSlow && !tc.dead && res.Duration >= 600*time.Millisecond {
					t.Errorf("the lookup took %v: it waited for the slow node", res.Duration)
				}
			})
		})
	}
}

// A lookup that holds for a stalled query to one of the nearest nodes (K=2, or a
// reliable transport) holds only while the node shows it is alive: it pings the node when
// the query stalls. A responder that answers the ping at once and the query late (on the
// WebTorrent DHT, one waiting on relays) is waited for and among the result; a node that
// vanished without closing its connection (its transport stays open, nothing answers)
// costs the ping's wait, probeMinWait here, not MaxQueryDeadline or the KRPC timeout.
func TestHoldEndsWithoutProbeAnswer(t *testing.T) {
	for _, tc := range []struct {
		k        int
		reliable bool
		vanished bool
	}{
		{k: 2}, {k: 2, vanished: true},
		{k: 8, reliable: true}, {k: 8, reliable: true, vanished: true},
	} {
		t.Run(fmt.Sprintf("K=%d reliable=%v vanished=%v", tc.k, tc.reliable, tc.vanished), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const delay, late = 5 * time.Millisecond, 2 * time.Second
				c := newCluster(t, &memory.Config{Link: memory.LinkConfig{Delay: delay}})
				cfg := &Config{K: tc.k, MaxQueryDeadline: 5 * time.Second} // as signals.NewNode's
				a, s := nearestAndOthers(t, c, cfg, tc.reliable)
				// s answers find_node queries late (it holds its responses), and pings at once.
				var mu sync.Mutex
				var held sync.WaitGroup
				defer held.Wait()
				slow := map[string]bool{} // transaction IDs of find_node queries to s: held or passed
				c.net.SetFilter(func(d *memory.Datagram) bool {
					var m krpc.Msg
					if m.UnmarshalBinary(d.Data) != nil {
						return true
					}
					mu.Lock()
					defer mu.Unlock()
					switch {
					case d.To == s.Addr() && m.Y == krpc.TypeQuery && m.Q == krpc.MethodFindNode:
						slow[m.T] = false
					case d.From == s.Addr() && m.Y == krpc.TypeResponse:
						if passed, ok := slow[m.T]; ok && !passed {
							slow[m.T] = true
							held.Go(func() { time.Sleep(late); c.net.Inject(d.From, d.To, d.Data) })
							return false
						}
					}
					return true
				})
				res, gotSlow := findNearest(t, a, s, tc.vanished)
				if gotSlow == tc.vanished {
					t.Errorf("s first among the closest: %v (closest %v, %v)", gotSlow, res.Closest, res.Duration)
				}
				// s's query stalls at its soft deadline (MinQueryDeadline, 50 ms, for these
				// round trips), and the ping sent then is awaited for probeMinWait.
				if tc.vanished && res.Duration > DefaultMinQueryDeadline+probeMinWait+10*delay {
					t.Errorf("the lookup took %v: it held for the vanished node past the ping's wait", res.Duration)
				}
				if tc.vanished && res.Duration < probeMinWait {
					t.Errorf("the lookup took %v: it did not wait for the ping", res.Duration)
				}
				if !tc.vanished && res.Duration < late {
					t.Errorf("the lookup took %v: it did not wait for the slow responder", res.Duration)
				}
			})
		})
	}
}

// On a datagram transport a lookup that holds for a stalled query to one of the nearest
// nodes (K=2) and sees the node answer its ping sends the query again at once
// (krpc.WithResend): the query was likely lost, and the KRPC retry would come only after
// the 2 s timeout. Here s loses the first find_node it is sent; the lookup has s first
// among the closest a few round trips after the stall, not after the retry.
func TestLostQueryAskedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay = 5 * time.Millisecond
		c := newCluster(t, &memory.Config{Link: memory.LinkConfig{Delay: delay}})
		a, s := nearestAndOthers(t, c, &Config{K: 2}, false)
		var lost atomic.Bool
		c.net.SetFilter(func(d *memory.Datagram) bool {
			var m krpc.Msg
			if d.To != s.Addr() || m.UnmarshalBinary(d.Data) != nil || m.Q != krpc.MethodFindNode {
				return true
			}
			return !lost.CompareAndSwap(false, true)
		})
		res, first := findNearest(t, a, s, false)
		if !first || !lost.Load() {
			t.Fatalf("s first among the closest: %v, its query lost: %v (closest %v)", first, lost.Load(), res.Closest)
		}
		// The stall at MinQueryDeadline, the ping's round trip, the query's.
		if want := DefaultMinQueryDeadline + 4*delay; res.Duration > want {
			t.Errorf("the lookup took %v, want at most %v: it waited for the KRPC retry", res.Duration, want)
		}
		// The answer to a query sent twice is no round-trip sample (Karn's rule): s's
		// estimate holds only 10 ms round trips (know's and the ping's), not the ~70 ms
		// from the first send to the answer.
		a.mu.Lock()
		e := a.tableFor(s.Addr()).rttOf(s.ID())
		a.mu.Unlock()
		if d := e.Deadline(0, time.Hour); d > 30*time.Millisecond {
			t.Errorf("s's soft deadline is %v after the resent query, want at most 30ms: the resent answer was sampled", d)
		}
	})
}

// nearestAndOthers starts a node a (on a reliable transport if asked), a node s, and 9
// others, all with cfg. a knows s and the others, and the others know each other but not
// s, each at a 10 ms round trip: a lookup from a hears of enough nodes to end without s.
func nearestAndOthers(t *testing.T, c *cluster, cfg *Config, isReliable bool) (a, s *Node) {
	t.Helper()
	const rtt = 10 * time.Millisecond
	if isReliable {
		tr, err := c.net.Listen(netip.AddrPort{})
		if err != nil {
			t.Fatal(err)
		}
		if a, err = New(reliable{tr}, cfg); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close(); tr.Close() })
	} else {
		a = c.add(cfg)
	}
	s = c.add(cfg)
	know(a, NodeInfo{ID: s.ID(), Addr: s.Addr()}, rtt)
	var others []*Node
	for range 9 {
		o := c.add(cfg)
		know(a, NodeInfo{ID: o.ID(), Addr: o.Addr()}, rtt)
		others = append(others, o)
	}
	for _, o := range others {
		for _, p := range others {
			if o != p {
				know(o, NodeInfo{ID: p.ID(), Addr: p.Addr()}, rtt)
			}
		}
	}
	if !inTable(a, s.ID()) {
		t.Fatal("s is not in a's table")
	}
	return a, s
}

// findNearest closes s first when gone is set (its transport stays open: nothing answers
// there), then runs a's lookup of s's ID, s being the nearest node there is, which must
// see some query stall. It reports whether s came first among the closest that answered.
func findNearest(t *testing.T, a, s *Node, gone bool) (*LookupResult, bool) {
	t.Helper()
	if gone {
		s.Close()
	}
	synctest.Wait()
	res, err := a.FindNode(t.Context(), s.ID())
	if err != nil {
		t.Fatal(err)
	}
	if res.Stalled == 0 {
		t.Fatalf("no query stalled: %+v", res)
	}
	return res, len(res.Closest) > 0 && res.Closest[0].ID == s.ID()
}

// reliable is a memory transport that says it is reliable (transport.Reliable), as a
// WebRTC one does.
type reliable struct{ *memory.Transport }

func (reliable) Reliable() bool { return true }

// A node slower than the soft deadline but faster than the KRPC timeout stays in the
// routing table however many lookups stall on it; dead nodes leave it.
func TestSlowNodeNotEvicted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, s, dead, _ := slowAndDead(t)
		for i := range 4 {
			res, err := a.FindNode(t.Context(), RandomID())
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 && res.Stalled == 0 {
				t.Fatal("no query stalled")
			}
			time.Sleep(5 * time.Second) // the stalled queries end
			synctest.Wait()
		}
		if !inTable(a, s.ID()) {
			t.Error("the slow node was evicted")
		}
		a.mu.Lock()
		bi, i := a.tables[0].locate(&[]ID{s.ID()}[0])
		fails := a.tables[0].buckets[bi].nodes[max(i, 0)].failures
		a.mu.Unlock()
		if i >= 0 && fails != 0 {
			t.Errorf("the slow node has %d failures", fails)
		}
		// The dead nodes failed once (lookups then skip their addresses); maintenance
		// pings them, a node that failed being questionable, and they go.
		time.Sleep(2 * DefaultMaintenanceInterval)
		synctest.Wait()
		for _, d := range dead {
			if inTable(a, d.ID()) {
				t.Errorf("dead node %v still in the table", d.Addr())
			}
		}
		if !inTable(a, s.ID()) {
			t.Error("the slow node was evicted by maintenance")
		}
	})
}

// fakeResponder answers, on the network's filter, every query sent to an address in
// 172.16.0.0/12 as a node whose ID is the address's, returning K new nodes, each at a
// new address in that range and each closer to the target than any before: a lookup
// that followed them would never end.
type fakeResponder struct {
	net   *memory.Network
	mu    sync.Mutex
	ids   map[netip.AddrPort]ID
	count uint32
}

var fakeNet = netip.MustParsePrefix("172.16.0.0/12")

func (f *fakeResponder) fake(target ID) NodeInfo {
	f.count++
	var dist ID
	binary.BigEndian.PutUint64(dist[12:], 1<<62-uint64(f.count))
	var id ID
	for i := range id {
		id[i] = target[i] ^ dist[i]
	}
	a := netip.AddrFrom4([4]byte{172, 16 + byte(f.count>>16), byte(f.count >> 8), byte(f.count)})
	ni := NodeInfo{ID: id, Addr: netip.AddrPortFrom(a, 6881)}
	f.ids[ni.Addr] = id
	return ni
}

func (f *fakeResponder) filter(d *memory.Datagram) bool {
	if !fakeNet.Contains(d.To.Addr()) {
		return true
	}
	var m krpc.Msg
	if m.UnmarshalBinary(d.Data) != nil || m.Y != krpc.TypeQuery || m.A == nil {
		return false
	}
	target := m.A.Target
	if m.Q == krpc.MethodGetPeers {
		target = m.A.InfoHash
	}
	f.mu.Lock()
	self := f.ids[d.To]
	var ns []NodeInfo
	for range 8 {
		ns = append(ns, f.fake(target))
	}
	f.mu.Unlock()
	tok := "tok"
	r := krpc.Msg{T: m.T, Y: krpc.TypeResponse, R: &krpc.Return{}}
	r.R.ID = self
	r.R.Nodes = compactNodes(ns)
	r.R.Token = &tok
	b, err := r.AppendBinary(nil)
	if err != nil {
		panic(err)
	}
	from, to := d.To, d.From
	go f.net.Inject(from, to, b)
	return false
}

// A lookup led on by responders that return ever-closer fake nodes ends within its caps:
// MaxLookupQueries queries, or MaxLookupDuration. While it runs, the node answers a
// well-behaved node's ping; once it ended, the node is back at its baseline.
func TestLookupCapsEverCloserFakes(t *testing.T) {
	for _, tc := range []struct {
		name        string
		maxQueries  int
		maxDuration time.Duration
		delay       time.Duration
	}{
		{"query cap", 50, 0, 5 * time.Millisecond},
		{"default query cap", 0, 0, 5 * time.Millisecond},
		{"duration cap", 100000, 3 * time.Second, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCluster(t, &memory.Config{Link: memory.LinkConfig{Delay: tc.delay}})
				f := &fakeResponder{net: c.net, ids: make(map[netip.AddrPort]ID)}
				c.net.SetFilter(f.filter)
				a := c.add(&Config{MaxLookupQueries: tc.maxQueries, MaxLookupDuration: tc.maxDuration})
				good := c.add(nil)
				target := RandomID()
				f.mu.Lock()
				entry := f.fake(target)
				f.mu.Unlock()
				know(a, entry, 2*tc.delay)
				synctest.Wait()
				goroutines := bubble.Goroutines()
				var res *LookupResult
				var err error
				done := make(chan struct{})
				go func() { defer close(done); res, err = a.FindNode(t.Context(), target) }()
				time.Sleep(4 * tc.delay) // the lookup is under way
				if _, err := good.Ping(t.Context(), a.Addr()); err != nil {
					t.Fatalf("a well-behaved node's ping during the lookup: %v", err)
				}
				select {
				case <-done:
					t.Fatal("the lookup ended before the ping did: the ping was not made during it")
				default:
				}
				<-done
				if err != nil {
					t.Fatal(err)
				}
				if !res.Capped {
					t.Error("the lookup did not report hitting a cap")
				}
				wantQ, wantD := tc.maxQueries, tc.maxDuration
				if wantQ == 0 {
					wantQ = DefaultMaxLookupQueries
				}
				if wantD == 0 {
					wantD = DefaultMaxLookupDuration
				}
				if res.Queries > wantQ {
					t.Errorf("%d queries, above the cap of %d", res.Queries, wantQ)
				}
				if res.Duration > wantD {
					t.Errorf("the lookup took %v, above the cap of %v", res.Duration, wantD)
				}
				if tc.maxDuration > 0 && res.Duration < tc.maxDuration {
					t.Errorf("the lookup ended after %v and %d queries, before the duration cap", res.Duration, res.Queries)
				}
				t.Logf("%d queries, %d responses, %v", res.Queries, res.Responses, res.Duration)
				time.Sleep(time.Second) // answers still in flight land
				atBaseline(t, a, goroutines)
			})
		})
	}
}

// silentFakes is a fakeResponder three in four of whose fake nodes never answer.
type silentFakes struct{ *fakeResponder }

func silent(a netip.AddrPort) bool { return fakeNet.Contains(a.Addr()) && a.Addr().As4()[3]%4 != 0 }

func (f silentFakes) filter(d *memory.Datagram) bool {
	if silent(d.To) {
		return false
	}
	return f.fakeResponder.filter(d)
}

// TestFailedAddrsFlood: lookups led through ever-closer fake nodes, three in four of
// which never answer, make the node remember at most maxFailedAddrs addresses as failed, however
// many time out; the node answers a well-behaved node's ping meanwhile, and is back at
// its baseline once the queries the lookups left behind timed out.
func TestFailedAddrsFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, &memory.Config{Link: memory.LinkConfig{Delay: 5 * time.Millisecond}})
		f := silentFakes{&fakeResponder{net: c.net, ids: make(map[netip.AddrPort]ID)}}
		c.net.SetFilter(f.filter)
		quiet := &Config{MaintenanceInterval: time.Hour} // no maintenance lookup within the test
		a, good := c.add(quiet), c.add(quiet)
		synctest.Wait()
		goroutines := bubble.Goroutines()
		for i := range 20 {
			target := RandomID()
			f.mu.Lock()
			entry := f.fake(target)
			for silent(entry.Addr) { // an entry that answers
				entry = f.fake(target)
			}
			f.mu.Unlock()
			know(a, entry, 10*time.Millisecond)
			done := make(chan struct{})
			go func() {
				defer close(done)
				if _, err := a.FindNode(t.Context(), target); err != nil {
					t.Error(err)
				}
			}()
			if i == 0 {
				time.Sleep(50 * time.Millisecond)
				if _, err := good.Ping(t.Context(), a.Addr()); err != nil {
					t.Fatalf("a well-behaved node's ping during the lookups: %v", err)
				}
			}
			<-done
		}
		a.mu.Lock()
		failed := len(a.failed.at)
		a.mu.Unlock()
		timeouts := a.Stats().KRPC.Timeouts
		t.Logf("%d query attempts timed out, %d addresses remembered as failed", timeouts, failed)
		if timeouts <= maxFailedAddrs {
			t.Fatalf("only %d timeouts: the lookups did not exceed the cap of %d", timeouts, maxFailedAddrs)
		}
		if failed > maxFailedAddrs || failed == 0 {
			t.Fatalf("%d addresses remembered as failed, want 1 to %d", failed, maxFailedAddrs)
		}
		time.Sleep(time.Minute) // the queries the lookups left to silent nodes time out
		atBaseline(t, a, goroutines)
	})
}

func TestFailedAddrsBounded(t *testing.T) {
	now := time.Now()
	var f failedAddrs
	addr := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 6881)
	}
	for i := range 3 * maxFailedAddrs {
		f.add(addr(i), now)
		if i%3 == 0 {
			f.clear(addr(i))
		}
	}
	if len(f.at) > maxFailedAddrs || len(f.order) > 2*maxFailedAddrs {
		t.Errorf("%d addresses, %d in order: above %d", len(f.at), len(f.order), maxFailedAddrs)
	}
	last := addr(3*maxFailedAddrs - 1)
	if !f.failed(last, now) {
		t.Error("the newest address was dropped")
	}
	if f.failed(addr(1), now) {
		t.Error("the oldest address was kept")
	}
	if f.failed(last, now.Add(failedAddrTTL)) {
		t.Error("an address is remembered past failedAddrTTL")
	}
}
