// Package metrics exposes the counters of a wdht node (the Stats snapshots of its DHT
// nodes, transports, signalling server and bridge) as Prometheus metrics. It reads the
// snapshots when scraped, so the library packages need not know about Prometheus.
//
// Every metric is named wdht_<subsystem>_<name>, counters end in _total, durations are
// in seconds. The label node is "mainline" (the UDP node) or "web" (the WebRTC node).
package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wdht/wdht/bridge"
	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/transport/udp"
	"github.com/wdht/wdht/transport/webrtc"
)

// Sources are the snapshots a Collector reads; a nil function is a part that does not
// run, whose metrics are left out.
type Sources struct {
	Mainline func() dht.Stats // the UDP node
	Web      func() dht.Stats // the WebRTC node
	UDP      func() udp.Stats
	WebRTC   func() webrtc.Stats
	Signal   func() webrtc.ServerStats
	Bridge   func() bridge.Stats
}

// Collector is a prometheus.Collector of a node's metrics.
type Collector struct {
	src Sources
}

// New returns a Collector reading src.
func New(src Sources) *Collector { return &Collector{src: src} }

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("wdht_"+name, help, labels, nil)
}

var (
	queriesIn = desc("krpc_queries_received_total",
		"KRPC queries received, by method and outcome (response, error, dropped).", "node", "method", "result")
	queriesOut = desc("krpc_queries_sent_total",
		"KRPC queries sent (each once, however many attempts), by method and outcome (response, error, timeout, failed).", "node", "method", "result")
	transmissions = desc("krpc_query_transmissions_total",
		"KRPC query transmissions, retries included.", "node")
	errorsSent = desc("krpc_errors_sent_total",
		"KRPC errors sent, by code (0: a code not counted apart).", "node", "code")
	packetsIn = desc("krpc_packets_received_total",
		"Packets received by the KRPC layer.", "node")
	rateLimited = desc("krpc_packets_rate_limited_total",
		"Packets dropped by the per-source inbound rate limit.", "node")
	malformed = desc("krpc_packets_malformed_total",
		"Packets that were not valid KRPC messages.", "node")
	unmatched = desc("krpc_responses_unmatched_total",
		"Responses that matched no outstanding query.", "node")
	outstanding = desc("krpc_outstanding_queries",
		"Queries waiting for a response now.", "node")
	lookups = desc("lookups_total",
		"Iterative lookups run by the node (bootstrap, refresh, gets and announces of its own).", "node")
	lookupQueries = desc("lookup_queries_total",
		"Queries sent by lookups.", "node")
	lookupSeconds = desc("lookup_duration_seconds",
		"Duration of the lookups that ended.", "node")
	tableNodes = desc("routing_table_nodes",
		"Nodes in the routing table, by address family.", "node", "family")
	goodNodes = desc("routing_table_good_nodes",
		"Good nodes (answered recently) in the routing table.", "node")
	secureID = desc("node_secure_id",
		"1 when the node's ID matches its external IP under BEP 42.", "node")
	peers = desc("store_peers",
		"Peers held by the peer store (shared by the bridge's two nodes).")
	infohashes = desc("store_infohashes",
		"Infohashes with peers in the peer store.")
	items = desc("store_items",
		"BEP 44 items held by the item store.")
	itemBytes = desc("store_item_bytes",
		"Bytes of values and salts held by the item store.")
	connsOpen = desc("webrtc_connections_open",
		"Open WebRTC connections.")
	connsPending = desc("webrtc_connections_pending",
		"WebRTC offers and answers waiting to connect.")
	connsOpened = desc("webrtc_connections_opened_total",
		"WebRTC connections opened.")
	connsClosed = desc("webrtc_connections_closed_total",
		"Open WebRTC connections that closed.")
	connsFailed = desc("webrtc_connections_failed_total",
		"WebRTC offers and answers that never connected.")
	webMsgs = desc("webrtc_messages_total",
		"Data channel messages, by direction.", "direction")
	webBytes = desc("webrtc_bytes_total",
		"Data channel bytes, by direction.", "direction")
	webDropped = desc("webrtc_messages_dropped_total",
		"Received messages dropped, by reason (queue_full, oversize).", "reason")
	signalRequests = desc("signal_requests_total",
		"Signalling requests answered, by kind (websocket, post, options, other) and HTTP status.", "kind", "code")
	certReloads = desc("signal_tls_certificate_reloads_total",
		"Loads of the TLS certificate after the first, by result (ok, error).", "result")
	fallbacks = desc("bridge_fallbacks_total",
		"Lookups on the other network answering a get for a missing item, by direction (to_web, to_mainline) and result (found, not_found, skipped).", "direction", "result")
	udpDatagrams = desc("udp_datagrams_total",
		"UDP datagrams, by direction.", "direction")
	udpKernelDrops = desc("udp_kernel_drops_total",
		"Datagrams the kernel dropped because the socket's receive buffer was full (Linux, SO_RXQ_OVFL).")
	udpErrors = desc("udp_errors_total",
		"UDP socket errors, by operation (send, read), and oversize datagrams dropped.", "kind")
)

// Describe sends the descriptions of every metric the Collector may send.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queriesIn, queriesOut, transmissions, errorsSent, packetsIn, rateLimited,
		malformed, unmatched, outstanding, lookups, lookupQueries, lookupSeconds, tableNodes, goodNodes, secureID,
		peers, infohashes, items, itemBytes, connsOpen, connsPending, connsOpened, connsClosed, connsFailed,
		webMsgs, webBytes, webDropped, signalRequests, certReloads, fallbacks, udpDatagrams, udpKernelDrops, udpErrors} {
		ch <- d
	}
}

// Collect reads the snapshots and sends their metrics.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	var store *dht.Stats
	for _, n := range []struct {
		name  string
		stats func() dht.Stats
	}{{"mainline", c.src.Mainline}, {"web", c.src.Web}} {
		if n.stats == nil {
			continue
		}
		s := n.stats()
		if store == nil {
			store = &s
		}
		k := &s.KRPC
		for _, m := range k.Methods {
			counter(queriesIn, m.InResponses, n.name, m.Method, "response")
			counter(queriesIn, m.InErrors, n.name, m.Method, "error")
			counter(queriesIn, m.InDropped, n.name, m.Method, "dropped")
			counter(queriesOut, m.OutResponses, n.name, m.Method, "response")
			counter(queriesOut, m.OutErrors, n.name, m.Method, "error")
			counter(queriesOut, m.OutTimeouts, n.name, m.Method, "timeout")
			counter(queriesOut, m.OutFailed, n.name, m.Method, "failed")
		}
		for code, v := range k.ErrorCodesOut {
			counter(errorsSent, v, n.name, strconv.Itoa(code))
		}
		counter(transmissions, k.QueriesOut, n.name)
		counter(packetsIn, k.PacketsIn, n.name)
		counter(rateLimited, k.RateLimited, n.name)
		counter(malformed, k.Malformed, n.name)
		counter(unmatched, k.Unmatched, n.name)
		gauge(outstanding, float64(k.OutstandingNow), n.name)
		counter(lookups, s.Lookups, n.name)
		counter(lookupQueries, s.LookupQueries, n.name)
		buckets := make(map[float64]uint64, len(dht.LookupBuckets))
		var cum, total uint64
		for i, b := range dht.LookupBuckets {
			cum += s.LookupDurations[i]
			buckets[b.Seconds()] = cum
		}
		total = cum + s.LookupDurations[len(dht.LookupBuckets)]
		ch <- prometheus.MustNewConstHistogram(lookupSeconds, total, s.LookupTime.Seconds(), buckets, n.name)
		gauge(tableNodes, float64(s.NodesV4), n.name, "ipv4")
		gauge(tableNodes, float64(s.NodesV6), n.name, "ipv6")
		gauge(goodNodes, float64(s.GoodNodes), n.name)
		gauge(secureID, b2f(s.SecureID), n.name)
	}
	if store != nil {
		gauge(peers, float64(store.Peers))
		gauge(infohashes, float64(store.Infohashes))
		gauge(items, float64(store.Items))
		gauge(itemBytes, float64(store.ItemBytes))
	}
	if c.src.WebRTC != nil {
		s := c.src.WebRTC()
		gauge(connsOpen, float64(s.Conns))
		gauge(connsPending, float64(s.Pending))
		counter(connsOpened, s.Opened)
		counter(connsClosed, s.Closed)
		counter(connsFailed, s.Failed)
		counter(webMsgs, s.MessagesIn, "in")
		counter(webMsgs, s.MessagesOut, "out")
		counter(webBytes, s.BytesIn, "in")
		counter(webBytes, s.BytesOut, "out")
		counter(webDropped, s.Dropped, "queue_full")
		counter(webDropped, s.Oversize, "oversize")
	}
	if c.src.Signal != nil {
		s := c.src.Signal()
		for _, r := range s.Requests {
			counter(signalRequests, r.Count, r.Kind, strconv.Itoa(r.Status))
		}
		counter(certReloads, s.CertReloads, "ok")
		counter(certReloads, s.CertReloadErrors, "error")
	}
	if c.src.Bridge != nil {
		s := c.src.Bridge()
		for _, d := range []struct {
			name string
			f    bridge.FallbackStats
		}{{"to_web", s.ToWeb}, {"to_mainline", s.ToMainline}} {
			counter(fallbacks, d.f.Found, d.name, "found")
			counter(fallbacks, d.f.NotFound, d.name, "not_found")
			counter(fallbacks, d.f.Skipped, d.name, "skipped")
		}
	}
	if c.src.UDP != nil {
		s := c.src.UDP()
		counter(udpDatagrams, s.Received, "in")
		counter(udpDatagrams, s.Sent, "out")
		counter(udpKernelDrops, s.KernelDrops)
		counter(udpErrors, s.SendErrors, "send")
		counter(udpErrors, s.ReadErrors, "read")
		counter(udpErrors, s.Oversize, "oversize")
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
