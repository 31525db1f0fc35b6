package dht

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"
	"unsafe"
)

func addrN(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 6881)
}

// idWithPrefix returns an ID sharing exactly n leading bits with self.
func idWithPrefix(self ID, n int) ID { return randomIDWithPrefix(self, n) }

func TestTableSplitsOwnBucketOnly(t *testing.T) {
	now := time.Now()
	self := RandomID()
	tb := newTable(self, 8, 2, now)
	// 8 far nodes fill the single bucket; a 9th far node cannot split it away
	// from... it can: the only bucket is also ours. After the split, far nodes stay in
	// bucket 0 and it never splits again.
	for i := range 20 {
		tb.responded(NodeInfo{ID: idWithPrefix(self, 0), Addr: addrN(i)}, now)
	}
	if got := len(tb.buckets[0].nodes); got != 8 {
		t.Fatalf("bucket 0 holds %d nodes, want 8", got)
	}
	if got := len(tb.buckets[0].repl); got != 8 {
		t.Fatalf("bucket 0 has %d replacements, want 8 (the cache is capped at K)", got)
	}
	nb := len(tb.buckets)
	// Close nodes keep splitting the last bucket.
	for i := range 40 {
		tb.responded(NodeInfo{ID: idWithPrefix(self, 1+i/8), Addr: addrN(100 + i)}, now)
	}
	if len(tb.buckets) <= nb {
		t.Fatalf("own bucket did not split: %d buckets", len(tb.buckets))
	}
	for bi, b := range tb.buckets {
		for _, e := range b.nodes {
			cpl := commonPrefixLen(&self, &e.ID)
			if bi < len(tb.buckets)-1 && cpl != bi || bi == len(tb.buckets)-1 && cpl < bi {
				t.Fatalf("node with prefix %d in bucket %d of %d", cpl, bi, len(tb.buckets))
			}
		}
		if len(b.nodes) > 8 {
			t.Fatalf("bucket %d holds %d nodes", bi, len(b.nodes))
		}
	}
	n, _, _ := tb.counts(now)
	if n != 8+40 {
		t.Fatalf("%d nodes in the table, want 48", n)
	}
}

func TestTableLiveness(t *testing.T) {
	start := time.Now()
	self := RandomID()
	tb := newTable(self, 2, 2, start)
	a := NodeInfo{ID: idWithPrefix(self, 0), Addr: addrN(1)}
	b := NodeInfo{ID: idWithPrefix(self, 0), Addr: addrN(2)}
	c := NodeInfo{ID: idWithPrefix(self, 0), Addr: addrN(3)}
	tb.responded(a, start)
	tb.responded(b, start.Add(time.Minute))
	// Force bucket 0 to stay a non-own bucket by splitting it once.
	tb.split()
	if added, ping := tb.responded(c, start.Add(2*time.Minute)); added || ping != nil {
		t.Fatalf("full bucket of good nodes: added=%v ping=%v", added, ping)
	}
	// 20 minutes later a and b are questionable: a new node triggers a ping of the stalest.
	later := start.Add(20 * time.Minute)
	_, ping := tb.responded(NodeInfo{ID: idWithPrefix(self, 0), Addr: addrN(4)}, later)
	if ping == nil || ping.ID != a.ID {
		t.Fatalf("ping %v, want the stalest node %v", ping, a)
	}
	// It does not answer: with a replacement waiting, one failure evicts it, and the
	// newest replacement takes its place.
	if !tb.failed(a.ID) {
		t.Fatal("not evicted after one failure, with a replacement waiting")
	}
	if tb.contains(a.ID) || !tb.contains(b.ID) {
		t.Fatal("wrong node evicted")
	}
	nodes := tb.nodes(nil, false, later)
	if len(nodes) != 2 || !slices.ContainsFunc(nodes, func(n NodeInfo) bool { return n.Addr == addrN(4) }) {
		t.Fatalf("replacement not promoted: %v", nodes)
	}
	// A node that answers again is good again.
	tb.responded(b, later)
	if _, good, _ := tb.counts(later); good != 2 {
		t.Fatalf("%d good nodes, want 2", good)
	}
	// With no replacement waiting, a node that answered before stays after one failure
	// (it may have lost a packet twice) and goes after maxFailures.
	// c still waits in the replacement cache: b goes at its first failure, c comes in.
	if !tb.failed(b.ID) || !tb.contains(c.ID) {
		t.Fatal("b not replaced by c at its first failure")
	}
	d := NodeInfo{ID: idWithPrefix(self, 0), Addr: addrN(4)}
	for _, n := range tb.nodes(nil, false, later) {
		if n.Addr == d.Addr {
			d = n
		}
	}
	if tb.failed(d.ID) {
		t.Fatal("evicted after one failure with no replacement waiting")
	}
	if !tb.failed(d.ID) || tb.contains(d.ID) {
		t.Fatal("not evicted after two failures")
	}
}

func TestTableQueriedNeedsVerification(t *testing.T) {
	now := time.Now()
	self := RandomID()
	tb := newTable(self, 8, 2, now)
	n := NodeInfo{ID: RandomID(), Addr: addrN(1)}
	if !tb.queried(n, now) {
		t.Fatal("an unknown querier with room in its bucket should be verified")
	}
	if !tb.contains(n.ID) {
		t.Fatal("a querier with room in its bucket did not enter the table unconfirmed")
	}
	if got := tb.closest(nil, n.ID, 8, true); len(got) != 0 {
		t.Fatalf("an unconfirmed node was handed out: %v", got)
	}
	if got := tb.closest(nil, n.ID, 8, false); len(got) != 1 {
		t.Fatalf("an unconfirmed node is not used for our own lookups: %v", got)
	}
	tb.responded(n, now)
	if tb.queried(n, now) {
		t.Fatal("a confirmed node needs no verification")
	}
	if got := tb.closest(nil, n.ID, 8, true); len(got) != 1 {
		t.Fatalf("a confirmed node is not handed out: %v", got)
	}
	// An unconfirmed node that fails its verification is gone.
	m := NodeInfo{ID: RandomID(), Addr: addrN(2)}
	tb.queried(m, now)
	if !tb.failed(m.ID) || tb.contains(m.ID) {
		t.Fatal("an unconfirmed node that did not answer stayed")
	}
	if tb.queried(NodeInfo{ID: self, Addr: addrN(2)}, now) {
		t.Fatal("ourselves")
	}
}

// closest must agree with sorting the whole table by distance.
func TestTableClosestExact(t *testing.T) {
	now := time.Now()
	rng := rand.New(rand.NewPCG(1, 1))
	for round := range 50 {
		self := RandomID()
		tb := newTable(self, 8, 2, now)
		for i := range 300 + round*10 {
			var id ID
			if rng.IntN(2) == 0 {
				id = idWithPrefix(self, rng.IntN(12))
			} else {
				id = RandomID()
			}
			tb.responded(NodeInfo{ID: id, Addr: addrN(i)}, now)
		}
		all := tb.nodes(nil, false, now)
		for range 20 {
			target := RandomID()
			if rng.IntN(3) == 0 {
				target = idWithPrefix(self, rng.IntN(20))
			}
			for _, k := range []int{1, 8, 20} {
				want := slices.Clone(all)
				sortByDistance(want, target)
				want = want[:min(k, len(want))]
				got := tb.closest(nil, target, k, false)
				if !slices.Equal(got, want) {
					t.Fatalf("closest(%v, %d):\n got %v\nwant %v", target, k, got, want)
				}
			}
		}
	}
}

func TestTableRemoveAndInsert(t *testing.T) {
	now := time.Now()
	self := RandomID()
	tb := newTable(self, 8, 2, now)
	n := NodeInfo{ID: RandomID(), Addr: addrN(1)}
	if !tb.insert(n) || tb.insert(n) {
		t.Fatal("insert")
	}
	if _, good, _ := tb.counts(now); good != 0 {
		t.Fatal("an inserted node is not good until it answers")
	}
	// A node from saved state that fails once is gone.
	if !tb.failed(n.ID) {
		t.Fatal("unverified node kept after a failure")
	}
	tb.responded(n, now)
	if !tb.remove(n.ID) || tb.contains(n.ID) {
		t.Fatal("remove")
	}
}

func TestStaleBuckets(t *testing.T) {
	now := time.Now()
	self := RandomID()
	tb := newTable(self, 2, 2, now)
	for i := range 10 {
		tb.responded(NodeInfo{ID: idWithPrefix(self, i%4), Addr: addrN(i)}, now)
	}
	if got := tb.staleBuckets(now.Add(time.Minute), 15*time.Minute, 10); len(got) != 0 {
		t.Fatalf("fresh buckets refreshed: %v", got)
	}
	got := tb.staleBuckets(now.Add(20*time.Minute), 15*time.Minute, 100)
	if len(got) != len(tb.buckets) {
		t.Fatalf("%d refresh targets for %d stale buckets", len(got), len(tb.buckets))
	}
	for i, target := range got[:len(got)-1] {
		if tb.index(&target) != i {
			t.Fatalf("refresh target %d falls in bucket %d", i, tb.index(&target))
		}
	}
}

func BenchmarkTableInsert(b *testing.B) {
	now := time.Now()
	self := RandomID()
	ids := make([]ID, 1<<16)
	for i := range ids {
		ids[i] = RandomID()
	}
	tb := newTable(self, 8, 2, now)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tb.responded(NodeInfo{ID: ids[i&(len(ids)-1)], Addr: addrN(i)}, now)
		i++
	}
}

func BenchmarkTableClosest(b *testing.B) {
	now := time.Now()
	self := RandomID()
	tb := newTable(self, 8, 2, now)
	for i := range 5000 {
		tb.responded(NodeInfo{ID: RandomID(), Addr: addrN(i)}, now)
		tb.responded(NodeInfo{ID: idWithPrefix(self, 1+i%20), Addr: addrN(10000 + i)}, now)
	}
	n, _, _ := tb.counts(now)
	b.Logf("table: %d nodes in %d buckets", n, len(tb.buckets))
	targets := make([]ID, 1024)
	for i := range targets {
		targets[i] = RandomID()
	}
	buf := make([]NodeInfo, 0, 32)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		buf = tb.closest(buf[:0], targets[i&1023], 8, true)
		i++
	}
}

// TestEntryAddr checks that an entry's packed address gives back the address it was
// given, zone included.
func TestEntryAddr(t *testing.T) {
	for _, s := range []string{"10.1.2.3:6881", "[2001:db8::1]:1", "[fe80::1%eth0]:65535", "[fe80::1%eth1]:2", "[::ffff:10.0.0.1]:7", "255.255.255.255:9"} {
		a := netip.MustParseAddrPort(s)
		e := newEntry(NodeInfo{ID: ID{1}, Addr: a})
		if got := e.Addr(); got != a {
			t.Errorf("entry for %v gives back %v", a, got)
		}
		if got := e.info(); got.ID != (ID{1}) || got.Addr != a {
			t.Errorf("entry for %v: info %v", a, got)
		}
	}
	if e := newEntry(NodeInfo{ID: ID{1}}); e.Addr().IsValid() {
		t.Errorf("entry for the zero address gives back %v", e.Addr())
	}
	if size := unsafe.Sizeof(entry{}); size != 64 {
		t.Errorf("an entry takes %d bytes, want 64", size)
	}
}
