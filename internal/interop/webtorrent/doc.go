// Package webtorrent holds the WebRTC interop tests: our transport/webrtc against the real
// JavaScript WebTorrent DHT, unmodified, in Node.js and in headless Chromium:
//
//   - webtorrent-dht 0.18.6 (HTTP signalling), from the shared harness
//     ../shared/interop/js-webtorrent-dht (npm ci there);
//   - webtorrent-dht 0.16.2 (WebSocket signalling), from
//     internal/interop/testdata/webtorrent-ws (npm ci there);
//   - Debian's chromium driven by playwright-core, loading each version's published
//     browser bundle.
//
// In each direction: their node bootstraps from our signalling server and pings us over
// the data channel, and we bootstrap from theirs and ping it. Then whole DHTs, with the
// WebTorrent extension (extensions/signals) relaying offers in peer_connection queries:
//
//   - TestGoNetwork30: 30 of our nodes over real WebRTC, bootstrapping from one
//     signalling node; every get_peers finds its announcer; BEP 44 put and get.
//   - TestMixedNetworks: ours and 0.18.6 in Node.js in every combination of the roles
//     querier, responder (relaying peer_connection) and target, along the nodes path
//     (find_node) and the values path (get_peers).
//   - TestJSNodeStoringManyPeers: our get_peers to a JS node storing more peers than we
//     make offers does not crash it (js-wire-protocol §11 B1).
//   - TestChromiumInOurNetwork: the published browser bundle in Chromium joins a network of
//     ours, finds a peer announced by one of our nodes, and one of ours finds its peer.
//   - TestBridgeServesMainlineItems: libtorrent puts mutable BEP 44 items on a mainline
//     network of libtorrent nodes; Chromium (dht.get, the signature checked with
//     WebCrypto) and a WebRTC-only node of ours read them through our bridge.
//
// WebRTC picks its candidate pairs among every interface, so the tests run in a network
// namespace whose only interface is lo: TestMain re-executes the test binary under
// `unshare -n` (which needs root) with lo up. Where that, node, the npm packages or
// Chromium are missing the tests skip, except when the environment variable CI is set,
// where .ci/run installs everything and a missing piece is a failure.
//
// The drivers (testdata/webtorrent/peer.js, browser.js, dht.js and browser-dht.js, the
// browser ones on chromium.js) print the LISTENING line of package interop and RESULT
// lines; interop.StartCommand runs them. dht.js runs JS DHT nodes made and driven by JSON
// commands on its stdin (bench/webjoin uses it too). WDHT_INTEROP_LOG=1 logs their whole
// output (go test -v) even when the test passes.
package webtorrent
