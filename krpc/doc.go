// Package krpc speaks KRPC, the bencoded query/response protocol of the BitTorrent DHT
// (BEP 5), over any transport.Transport.
//
// Msg is one message. Its query arguments and response body embed anacrolix's
// krpc.MsgArgs and krpc.Return, and every key those do not model (such as the WebTorrent
// extension's "signals") is kept as raw bencode and written back byte for byte. Decoding
// is strict about syntax, lenient about advisory fields, and never panics: it survives
// the inputs that crash anacrolix's own decoder (a 1-byte "ip" or "values" entry).
//
// Server sends queries (Call) and answers them (Handler). Transaction IDs are random and
// matched on (transaction ID, remote address); each query is tried Config.Attempts times.
// A query runs on a goroutine of its own, with a concurrency cap, unless its Handler
// implements InlineHandler and reports the method as one that never blocks: those run on
// the read loop itself (the DHT node's built-in methods do).
// Unknown methods get error 204, malformed queries error 203. Incoming packets are rate
// limited per source IP before they are decoded, and outgoing queries draw on a budget.
//
// Extensions wrap outgoing calls and incoming handling, and add methods, in the manner of
// gRPC interceptors; see Extension.
package krpc
