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
// # Lookups
//
// A lookup (FindNode, GetPeers, Get, and those behind Announce, Put and Bootstrap) keeps
// a candidate list of the nodes it knows, nearest to the target first, seeded from the
// routing table (or the bootstrap nodes), and keeps Alpha queries in flight to the
// nearest ones not yet asked among the width nearest that still count, where width is K
// but at least 4. Every answer adds the nodes it carries. Each query has a soft
// deadline: the node's smoothed round-trip time plus the larger of 4 × its deviation
// and half of it (as TCP's retransmission timer; the network-wide estimate when the node
// has none), within [Config.MinQueryDeadline, Config.MaxQueryDeadline]. A query past it
// is stalled: it no longer counts against Alpha nor among the nearest, so the lookup
// asks the next candidate, but its answer is still used if it comes before the KRPC
// timeout. The lookup ends as soon as the width nearest nodes that count have all
// answered, without waiting for stalled queries or for queries to farther nodes; while
// fewer than width nodes have answered (a network smaller than K), it does wait for a
// stalled query, up to 8 soft deadlines after sending it (at most MaxQueryDeadline, or
// the uncapped deadline where measured round trips are longer).
// Config.MaxLookupQueries and Config.MaxLookupDuration cap every lookup, so that nodes
// handing out ever-closer fake nodes cannot keep one going. Queries still in flight when
// the lookup ends run on to their timeout in the background, so the routing table learns
// who is alive: a node that times out is skipped by later lookups for 10 minutes, and
// leaves the routing table at once when its bucket's replacement cache has a node to
// take its place. Announce and Put send their writes to the K nearest nodes that
// answered the lookup they just ran, with the tokens those answers carried.
//
// Nodes that query us enter the table unconfirmed and are handed to others only once
// they answer; questionable nodes are pinged and evicted after repeated timeouts; a thin
// table is refreshed with lookups. State and Config.State save and restore the node ID
// and the good nodes. A Node costs one goroutine (the KRPC read loop) and one timer when
// idle, so a process can hold very many of them.
package dht
