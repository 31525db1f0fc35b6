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
// A lookup keeps Alpha queries in flight to the closest candidates not yet asked and
// learns closer ones from every answer. It never waits on a slow node while another could
// be asked: each query gets a soft deadline, srtt + max(4 × rttvar, srtt/2) of the
// round-trip estimate (RFC 6298 smoothing of the answers' round-trip times, Karn's rule:
// answers after a retry are not measured) of that node when the routing table has one,
// else of the node-wide estimate, bounded by Config.MinQueryDeadline and MaxQueryDeadline
// (50 ms and 1 s; the upper bound before any measurement). Past it the query stalls: it
// no longer counts against Alpha nor among the closest candidates, and the lookup asks
// the next one; a stalled query may still answer until its KRPC timeout, and its answer
// is then used like any other. The lookup ends as soon as the max(K, 4) closest
// candidates that neither failed nor stalled have all answered (stalled queries aside),
// or when only stalled queries remain after some node answered; with no answer at all it
// waits for them. While fewer than max(K, 4) nodes have answered (a network smaller than
// that, or a loaded host) it waits for a stalled query up to 8 soft deadlines after
// sending it (at most MaxQueryDeadline, or the uncapped deadline where measured round
// trips are longer): a node there cannot be replaced by another, and a put that left it
// out would store on fewer nodes than exist. With K below 4 (the WebTorrent DHT's K=2) it
// also waits for a stalled query to one of the 4 nearest nodes that did not fail, up to
// MaxQueryDeadline after sending it: the result is then so few nodes that one left out
// changes it, and a WebTorrent responder answers late whenever a relay it waits on is
// slow. It does so whatever K on a transport.Reliable transport (WebRTC), where a query
// is never lost, only slow, and a node that leaves closes its connection (its query
// fails at once). Such a wait lasts only while the node shows it is alive: when the
// query stalls the lookup pings the node, and until the ping is answered it waits only 4
// of the node's soft deadlines, and at least 1 s (a retransmission timeout), after
// sending it. A responder waiting on relays answers a ping at once; a node that vanished
// without closing its connection (a browser that lost its network) answers neither, and
// costs that wait, not MaxQueryDeadline or the KRPC timeout. On a transport that loses
// packets (not transport.Reliable), a node that answers the ping is sent the query again
// at once, with the same transaction (krpc.WithResend): the query or its answer was
// likely lost, and the KRPC retry would come only after its 2 s timeout; a node still
// handling the query drops the copy. Queries still in flight
// when it returns run on to their timeout in the background, so that the routing table
// learns whether their nodes are alive: a slow node is never counted as failed, a dead
// one is. An address whose query timed out is left out of lookups for 10 minutes (at most
// 256 such addresses are remembered), and a node that fails is evicted at once when its
// bucket's replacement cache holds a node to take its place (after Config.MaxFailures
// failures otherwise). Every lookup, maintenance lookups included, ends after
// Config.MaxLookupQueries queries (200) or MaxLookupDuration (30 s), with what it found
// (LookupResult.Capped); a get_peers lookup delivers at most 4,096 distinct peers.
// Announce and Put send to the K closest nodes that answered the lookup they just ran,
// with the tokens those answers carried.
//
// Nodes that query us enter the table unconfirmed and are handed to others only once
// they answer; questionable nodes are pinged and evicted after repeated timeouts; a thin
// table is refreshed with lookups. State and Config.State save and restore the node ID
// and the good nodes. A Node costs one goroutine (the KRPC read loop) and one timer when
// idle, so a process can hold very many of them.
//
// # Types from dependencies
//
// Two types of the public API come from anacrolix's packages, kept because they serve
// users: ID is anacrolix's krpc.ID (an alias, through package krpc), a [20]byte with
// String and the other methods Go BitTorrent code (anacrolix/torrent, anacrolix/dht)
// already uses, so IDs pass between them and this package without conversion, and an
// array cannot change shape under us; Item.V is anacrolix's bencode.Bytes, a []byte that
// says "these are bencoded bytes": BEP 44 hashes and signs the exact encoding, which
// NewImmutableItem and NewMutableItem take as is when given one, and []byte(it.V)
// converts for free. Package krpc explains its own (Args and Return embed anacrolix's
// MsgArgs and Return) and why anacrolix/dht/v2 is at the version go.mod names.
package dht
