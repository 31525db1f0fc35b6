// Package signals is the WebTorrent DHT extension: the part of the protocol that lets
// nodes reachable only over WebRTC (browsers) open connections to each other through
// the DHT itself, as the WebTorrent DHT's draft BEP describes.
//
// A querier adds "signals", a list of WebRTC offers {id, type:"offer", sdp, extensions},
// to its find_node, get_peers and get queries (Config.Offers of them, by default
// max(2, floor(log2 K)) as the JS does). The responder relays offer i to the i-th node
// (or peer) of its answer with a peer_connection query, and returns their answers in
// "signals", one to one with the nodes or values, never more than it got offers; the
// querier connects to each and rewrites the nodes and values to the addresses of its own
// connections before the lookup sees them. A target answers peer_connection with an
// answer, or with the shortcut {id} when the offer is its own or when it is already
// connected to the offer's originator.
//
// Interop with the JS implementation (webtorrent-dht 0.18): a relay that fails leaves a
// placeholder (the querier itself, with the shortcut {id: querier}) instead of a null,
// which bencode would drop, misaligning every later answer; and the querier matches the
// answers of a JS responder, which does drop them, to its offers by node ID. Relays end
// in Config.RelayTimeout, in time for a JS querier's 2 s query timeout, and once one
// target answered the others get a third of it more: a relay lost on the way does not
// hold the response for the whole RelayTimeout. Each target is also pinged as its relay
// goes out: one that answers neither within twice the soft deadline of its measured
// round trips (at least 100 ms, at most a third of RelayTimeout) has vanished, as a
// browser that lost its network does while its connections stay up for seconds, and is
// left out at once; a target that answers the ping is waited for, since a JS target
// answers a relay only after its ICE gathering; on a transport that loses packets (not
// WebRTC's) its relay is then sent again at the end of the wait. When two answers for
// one node reach a querier (two nodes it queried relayed to it), it completes one and
// the other shares its connection: a JS node destroys a second connection from the same
// node. A JS node throws (and a Node.js process dies) when it stores more peers for an
// infohash than a get_peers carries signals, so our get_peers to a known node pads its
// offers with entries {id: <that node>} up to Config.PeerSignals: the node relays them to
// its peers, which answer them with the shortcut.
//
// A responder that stores peers with no WebRTC side (a bridge's mainline peers) sends
// them under PeersKey ("peers"), as plain addresses to which no offer is relayed; our
// querier adds them to the values after the peers it connected to, and the JS ignores
// the key.
//
// The extension negotiates connections through a Signaler: the WebRTC transport (see
// WebRTC), or, for tests and simulations without pion, a FakeNetwork over the memory
// network's linked mode.
package signals
