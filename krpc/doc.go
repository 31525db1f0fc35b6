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
//
// # Types from dependencies
//
// ID is anacrolix's krpc.ID, and Args and Return embed anacrolix's krpc.MsgArgs and
// krpc.Return, with their NodeInfo and NodeAddr: kept because this package is the low
// level one, for writers of extensions and tools, and those types are the Go model of
// KRPC that anacrolix/dht and anacrolix/torrent already use (field for field the keys of
// BEP 5, 33, 43, 44 and 51), so code moves between the two without conversions. Only the
// types are used: encoding and decoding are this package's own (anacrolix's decoder
// panics on some inputs, see above), and what the embedded types cannot say is added
// beside them (CasSet, InfoHashSet, TargetSet, Extra). The higher-level package dht
// exposes only ID and bencode.Bytes.
//
// The module requires github.com/anacrolix/dht/v2 at v2.23.1-0.20260525063928-ec3a9bd99456,
// not at its latest tag v2.23.0: github.com/anacrolix/torrent v1.62.0, required for
// bencode's nesting-depth limit (older versions have none), requires that pseudo-version,
// and Go's minimal version selection cannot go below it. Its krpc package, the only one
// this module builds against outside tests, is byte for byte the one tagged v2.23.0
// (diff -r of the two module versions differs only in globals.go, go.mod and go.sum).
package krpc
