// Package dht is a BitTorrent DHT node that runs on any transport.Transport: UDP for the
// mainline DHT, WebRTC data channels for the WebTorrent DHT, or the in-memory network of
// package transport/memory for tests and simulations.
//
// A Node speaks BEP 5 (ping, find_node, get_peers, announce_peer) and its extensions:
//
//   - BEP 44: Put and Get store and fetch immutable items (under the SHA-1 of their
//     value) and mutable ones (ed25519-signed, with salt, sequence numbers and
//     compare-and-swap); the ItemStore enforces the BEP's rules and error codes.
//   - BEP 42: the node learns its external IP from the "ip" key of responses and takes a
//     node ID tied to it; nodes whose IDs match their IPs are preferred in the routing
//     table, and Config.EnforceSecureIDs keeps the others out.
//   - BEP 32: a dual-stack node keeps one routing table per address family and answers
//     "want" n4/n6 with nodes and nodes6.
//   - BEP 43: with KRPC.ReadOnly the node queries with "ro":1 and answers nothing, and
//     read-only queriers never enter its table.
//   - BEP 51: sample_infohashes is answered from the peer store; SampleInfohashes asks.
//
// The routing table has K nodes per bucket, a replacement cache per bucket, and the
// bucket holding our own ID splits as it fills. Lookups are iterative with Alpha queries
// in flight and stream their results: GetPeers calls a function with each peer as
// answers arrive. Write tokens are an HMAC of the querier's IP and the target under a
// secret that rotates every TokenPeriod, accepted for two rotations. Announced peers
// expire after 30 minutes and are capped per infohash and in total.
//
// Nodes that query us enter the table unconfirmed and are handed to others only once
// they answer; questionable nodes are pinged and evicted after repeated timeouts; a thin
// table is refreshed with lookups. State and Config.State save and restore the node ID
// and the good nodes. A Node costs one goroutine (the KRPC read loop) and one timer when
// idle, so a process can hold very many of them.
package dht
