package metrics_test

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/internal/metrics"
	"github.com/wdht/wdht/transport/memory"
)

// A node's metrics in a registry of their own, served by promhttp.HandlerFor in wdht.
func ExampleNew() {
	tr, _ := memory.NewNetwork(nil).Listen(netip.AddrPort{})
	defer tr.Close()
	node, _ := dht.New(tr, nil)
	defer node.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.New(metrics.Sources{Mainline: node.Stats}))
	n, _ := testutil.GatherAndCount(reg, "wdht_routing_table_nodes")
	fmt.Println("routing table series:", n)
	err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP wdht_lookups_total Iterative lookups run by the node (bootstrap, refresh, gets and announces of its own).
# TYPE wdht_lookups_total counter
wdht_lookups_total{node="mainline"} 0
`), "wdht_lookups_total")
	fmt.Println("lookups:", err)
	// Output:
	// routing table series: 2
	// lookups: <nil>
}
