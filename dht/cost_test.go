package dht

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/wdht/wdht/transport/memory"
)

// heapAlloc returns the bytes of live heap objects after a full collection.
func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC() // the second one frees what finalizers of the first released
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// Bounds of what an idle node and a routing-table entry cost on the heap, with margin over
// what they cost when the bounds were set: an idle node about 5.4 KiB (5.9 before the
// node's handlers became one table for every node, a map and seven closures each); an
// entry 80 bytes, 64 of its own plus its share of the slices' spare capacity and of the
// buckets. Before the entry packed its address and kept its last answer as a stamp, it
// took 128 bytes (96 of its own), and 161 before it lost a field. A simulation of 100,000
// nodes holds about 100,000 idle nodes' worth of structures plus some 150 entries per
// node; going past these bounds is a regression its memory would show.
const (
	maxIdleNodeHeap  = 6 << 10
	maxBytesPerEntry = 88
)

// TestIdleNodeCost measures what an idle node costs, for simulations that hold very many:
// goroutines and heap bytes per node, with an empty routing table.
func TestIdleNodeCost(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 10,000 nodes")
	}
	const count = 10_000
	net := memory.NewNetwork(nil)
	nodes := make([]*Node, 0, count)
	trs := make([]*memory.Transport, 0, count)
	before := heapAlloc()
	var stack0 runtime.MemStats
	runtime.ReadMemStats(&stack0)
	g0 := runtime.NumGoroutine()
	for range count {
		tr, err := net.Listen(netip.AddrPort{})
		if err != nil {
			t.Fatal(err)
		}
		n, err := New(tr, nil)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
		trs = append(trs, tr)
	}
	after := heapAlloc()
	var stack1 runtime.MemStats
	runtime.ReadMemStats(&stack1)
	perNode := float64(after-before) / count
	stack := float64(stack1.StackInuse-stack0.StackInuse) / count
	goroutines := float64(runtime.NumGoroutine()-g0) / count
	t.Logf("idle node: %.0f heap bytes + %.0f stack bytes, %.1f goroutines", perNode, stack, goroutines)
	if goroutines > 1 {
		t.Errorf("%.1f goroutines per idle node, want at most 1 (the KRPC read loop)", goroutines)
	}
	if perNode > maxIdleNodeHeap {
		t.Errorf("%.0f heap bytes per idle node (transport included), want at most %d", perNode, maxIdleNodeHeap)
	}
	for i, n := range nodes {
		n.Close()
		trs[i].Close()
	}
}

// TestTableEntryCost fills many routing tables, buckets and replacement caches, as a
// node of a large network has them, and checks the heap they take per entry held.
func TestTableEntryCost(t *testing.T) {
	const tables, offers = 500, 3000
	r := rand.New(rand.NewPCG(1, 2))
	randomID := func() ID {
		var id ID
		for i := range id {
			id[i] = byte(r.Uint32())
		}
		return id
	}
	now := time.Unix(1e9, 0)
	ts := make([]*table, tables)
	before := heapAlloc()
	entries := 0
	for i := range ts {
		tb := newTable(randomID(), DefaultK, DefaultMaxFailures, now)
		for j := range offers {
			ip := netip.AddrFrom4([4]byte{10, byte(j >> 16), byte(j >> 8), byte(j)})
			tb.responded(NodeInfo{ID: randomID(), Addr: netip.AddrPortFrom(ip, 6881)}, now)
		}
		n, _, repl := tb.counts(now)
		entries += n + repl
		ts[i] = tb
	}
	after := heapAlloc()
	per := float64(after-before) / float64(entries)
	t.Logf("%d tables, %.0f entries each (table and replacement caches): %.1f heap bytes per entry",
		tables, float64(entries)/tables, per)
	if per > maxBytesPerEntry {
		t.Errorf("%.1f heap bytes per routing-table entry, want at most %d", per, maxBytesPerEntry)
	}
	runtime.KeepAlive(ts)
}
