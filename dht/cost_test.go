package dht

import (
	"net/netip"
	"runtime"
	"testing"

	"github.com/wdht/wdht/transport/memory"
)

// TestIdleNodeCost measures what an idle node costs, for simulations that hold very many:
// goroutines and heap bytes per node, with an empty routing table.
func TestIdleNodeCost(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 10,000 nodes")
	}
	const count = 10_000
	net := memory.NewNetwork(nil)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	g0 := runtime.NumGoroutine()
	nodes := make([]*Node, 0, count)
	var trs []*memory.Transport
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
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perNode := float64(after.HeapAlloc-before.HeapAlloc) / count
	stack := float64(after.StackInuse-before.StackInuse) / count
	goroutines := float64(runtime.NumGoroutine()-g0) / count
	t.Logf("idle node: %.0f heap bytes + %.0f stack bytes, %.1f goroutines", perNode, stack, goroutines)
	if goroutines > 2 {
		t.Errorf("%.1f goroutines per idle node, want at most 2", goroutines)
	}
	for i, n := range nodes {
		n.Close()
		trs[i].Close()
	}
}
