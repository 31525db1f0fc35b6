package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/wdht/wdht/bridge"
	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/udp"
	"github.com/wdht/wdht/transport/webrtc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func fakeSources() Sources {
	node := func(v uint64) func() dht.Stats {
		return func() dht.Stats {
			s := dht.Stats{NodesV4: 3, NodesV6: 1, GoodNodes: 2, Peers: 5, Infohashes: 2, Items: 1, ItemBytes: 10,
				Lookups: v, LookupTime: 1500 * time.Millisecond}
			s.LookupDurations[0], s.LookupDurations[4], s.LookupDurations[len(dht.LookupBuckets)] = 1, 1, 1
			s.KRPC = krpc.Stats{PacketsIn: 10 * v, RateLimited: 2, Malformed: 1,
				Methods:       []krpc.MethodStats{{Method: "ping", InResponses: v, OutTimeouts: 1}, {Method: krpc.MethodOther, InErrors: 1}},
				ErrorCodesOut: map[int]uint64{204: 1}}
			return s
		}
	}
	return Sources{
		Mainline: node(7), Web: node(3),
		UDP:    func() udp.Stats { return udp.Stats{Sent: 4, Received: 9, KernelDrops: 2} },
		WebRTC: func() webrtc.Stats { return webrtc.Stats{Conns: 2, Pending: 1, Opened: 3, Failed: 1} },
		Signal: func() webrtc.ServerStats {
			return webrtc.ServerStats{Requests: []webrtc.RequestCount{{Kind: "post", Status: 200, Count: 4}, {Kind: "websocket", Status: 101, Count: 1}}}
		},
		Bridge: func() bridge.Stats { return bridge.Stats{ToWeb: bridge.FallbackStats{Found: 2}} },
	}
}

// TestLint checks every metric against Prometheus' naming and help rules.
func TestLint(t *testing.T) {
	problems, err := testutil.CollectAndLint(New(fakeSources()))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestValues checks that the snapshots' numbers come out under the right names and labels.
func TestValues(t *testing.T) {
	want := `
# HELP wdht_krpc_queries_received_total KRPC queries received, by method and outcome (response, error, dropped).
# TYPE wdht_krpc_queries_received_total counter
wdht_krpc_queries_received_total{method="other",node="mainline",result="dropped"} 0
wdht_krpc_queries_received_total{method="other",node="mainline",result="error"} 1
wdht_krpc_queries_received_total{method="other",node="mainline",result="response"} 0
wdht_krpc_queries_received_total{method="other",node="web",result="dropped"} 0
wdht_krpc_queries_received_total{method="other",node="web",result="error"} 1
wdht_krpc_queries_received_total{method="other",node="web",result="response"} 0
wdht_krpc_queries_received_total{method="ping",node="mainline",result="dropped"} 0
wdht_krpc_queries_received_total{method="ping",node="mainline",result="error"} 0
wdht_krpc_queries_received_total{method="ping",node="mainline",result="response"} 7
wdht_krpc_queries_received_total{method="ping",node="web",result="dropped"} 0
wdht_krpc_queries_received_total{method="ping",node="web",result="error"} 0
wdht_krpc_queries_received_total{method="ping",node="web",result="response"} 3
# HELP wdht_lookup_duration_seconds Duration of the lookups that ended.
# TYPE wdht_lookup_duration_seconds histogram
wdht_lookup_duration_seconds_bucket{node="mainline",le="0.05"} 1
wdht_lookup_duration_seconds_bucket{node="mainline",le="0.1"} 1
wdht_lookup_duration_seconds_bucket{node="mainline",le="0.25"} 1
wdht_lookup_duration_seconds_bucket{node="mainline",le="0.5"} 1
wdht_lookup_duration_seconds_bucket{node="mainline",le="1"} 2
wdht_lookup_duration_seconds_bucket{node="mainline",le="2"} 2
wdht_lookup_duration_seconds_bucket{node="mainline",le="5"} 2
wdht_lookup_duration_seconds_bucket{node="mainline",le="10"} 2
wdht_lookup_duration_seconds_bucket{node="mainline",le="30"} 2
wdht_lookup_duration_seconds_bucket{node="mainline",le="+Inf"} 3
wdht_lookup_duration_seconds_sum{node="mainline"} 1.5
wdht_lookup_duration_seconds_count{node="mainline"} 3
wdht_lookup_duration_seconds_bucket{node="web",le="0.05"} 1
wdht_lookup_duration_seconds_bucket{node="web",le="0.1"} 1
wdht_lookup_duration_seconds_bucket{node="web",le="0.25"} 1
wdht_lookup_duration_seconds_bucket{node="web",le="0.5"} 1
wdht_lookup_duration_seconds_bucket{node="web",le="1"} 2
wdht_lookup_duration_seconds_bucket{node="web",le="2"} 2
wdht_lookup_duration_seconds_bucket{node="web",le="5"} 2
wdht_lookup_duration_seconds_bucket{node="web",le="10"} 2
wdht_lookup_duration_seconds_bucket{node="web",le="30"} 2
wdht_lookup_duration_seconds_bucket{node="web",le="+Inf"} 3
wdht_lookup_duration_seconds_sum{node="web"} 1.5
wdht_lookup_duration_seconds_count{node="web"} 3
# HELP wdht_store_peers Peers held by the peer store (shared by the bridge's two nodes).
# TYPE wdht_store_peers gauge
wdht_store_peers 5
# HELP wdht_routing_table_nodes Nodes in the routing table, by address family.
# TYPE wdht_routing_table_nodes gauge
wdht_routing_table_nodes{family="ipv4",node="mainline"} 3
wdht_routing_table_nodes{family="ipv4",node="web"} 3
wdht_routing_table_nodes{family="ipv6",node="mainline"} 1
wdht_routing_table_nodes{family="ipv6",node="web"} 1
# HELP wdht_signal_requests_total Signalling requests answered, by kind (websocket, post, options, other) and HTTP status.
# TYPE wdht_signal_requests_total counter
wdht_signal_requests_total{code="101",kind="websocket"} 1
wdht_signal_requests_total{code="200",kind="post"} 4
# HELP wdht_krpc_errors_sent_total KRPC errors sent, by code (0: a code not counted apart).
# TYPE wdht_krpc_errors_sent_total counter
wdht_krpc_errors_sent_total{code="204",node="mainline"} 1
wdht_krpc_errors_sent_total{code="204",node="web"} 1
# HELP wdht_udp_kernel_drops_total Datagrams the kernel dropped because the socket's receive buffer was full (Linux, SO_RXQ_OVFL).
# TYPE wdht_udp_kernel_drops_total counter
wdht_udp_kernel_drops_total 2
# HELP wdht_webrtc_connections_failed_total WebRTC offers and answers that never connected.
# TYPE wdht_webrtc_connections_failed_total counter
wdht_webrtc_connections_failed_total 1
`
	names := []string{"wdht_krpc_queries_received_total", "wdht_lookup_duration_seconds", "wdht_store_peers",
		"wdht_routing_table_nodes", "wdht_signal_requests_total", "wdht_krpc_errors_sent_total",
		"wdht_udp_kernel_drops_total", "wdht_webrtc_connections_failed_total"}
	if err := testutil.CollectAndCompare(New(fakeSources()), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

// TestPartial leaves out what does not run.
func TestPartial(t *testing.T) {
	src := fakeSources()
	src.Web, src.WebRTC, src.Signal, src.Bridge = nil, nil, nil, nil
	if n := testutil.CollectAndCount(New(src), "wdht_webrtc_connections_open", "wdht_signal_requests_total", "wdht_bridge_fallbacks_total"); n != 0 {
		t.Errorf("%d WebRTC metrics from a UDP-only node", n)
	}
	if n := testutil.CollectAndCount(New(src), "wdht_routing_table_nodes"); n != 2 {
		t.Errorf("%d routing table series, want 2 (one node, two families)", n)
	}
}
