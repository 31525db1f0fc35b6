// Package natlab holds the tests of WebRTC through NATs: our nodes, the JS
// webtorrent-dht in Node.js and Chromium, each behind a NAT router of the network lab
// (internal/netlab), joining through a public `wdht node` bridge, with coturn as the
// STUN and TURN server. The tests run as root with nftables and coturn installed; they
// skip elsewhere, except under CI, where a missing piece is a failure.
//
// Each of our nodes behind a NAT is this test binary run again inside its host's
// namespace (WDHT_NATLAB_NODE holds its configuration), a WebRTC DHT node driven by
// JSON commands on its standard input, one reply line each on its standard output.
package natlab
