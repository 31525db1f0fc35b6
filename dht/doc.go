// Package dht is a BitTorrent DHT node (BEP 5) that runs on any transport.Transport: UDP
// for the mainline DHT, WebRTC data channels for the WebTorrent DHT, or the in-memory
// network of package transport/memory for tests and simulations.
//
// A Node keeps a Kademlia routing table (K nodes per bucket, a replacement cache per
// bucket, the bucket holding our own ID splitting as it fills), answers ping, find_node,
// get_peers and announce_peer, and runs iterative lookups with Alpha queries in flight.
// Write tokens are an HMAC of the querier's IP and the target under a secret that rotates
// every TokenPeriod, and are accepted for two rotations. Announced peers expire after 30
// minutes and are capped per infohash and in total. Nodes that query us enter the table
// only after they answer a ping of ours; questionable nodes are pinged and evicted after
// repeated timeouts. A Node costs one goroutine (the KRPC read loop) and one timer when
// idle, so a process can hold very many of them.
//
// Lookups stream their results: GetPeers calls a function with each peer as answers
// arrive. State and Config.State save and restore the node ID and the good nodes.
package dht
