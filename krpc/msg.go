package krpc

import (
	"fmt"
	"net/netip"

	akrpc "github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
)

// Message types: the values of the "y" key.
const (
	TypeQuery    = "q"
	TypeResponse = "r"
	TypeError    = "e"
)

// KRPC error codes (BEP 5 and BEP 44).
const (
	ErrorCodeGeneric       = akrpc.ErrorCodeGenericError                  // 201
	ErrorCodeServer        = akrpc.ErrorCodeServerError                   // 202
	ErrorCodeProtocol      = akrpc.ErrorCodeProtocolError                 // 203: malformed packet, invalid arguments, bad token
	ErrorCodeMethodUnknown = akrpc.ErrorCodeMethodUnknown                 // 204
	ErrorCodeValueTooBig   = akrpc.ErrorCodeMessageValueFieldTooBig       // 205 (BEP 44)
	ErrorCodeInvalidSig    = akrpc.ErrorCodeInvalidSignature              // 206 (BEP 44)
	ErrorCodeSaltTooBig    = akrpc.ErrorCodeSaltFieldTooBig               // 207 (BEP 44)
	ErrorCodeCASMismatch   = akrpc.ErrorCodeCasHashMismatched             // 301 (BEP 44)
	ErrorCodeSeqTooLow     = akrpc.ErrorCodeSequenceNumberLessThanCurrent // 302 (BEP 44)
)

// ID is a 160-bit node ID, infohash or BEP 44 target.
type ID = akrpc.ID

// Error is a KRPC error ("y":"e"), as sent by a remote node or returned by a Handler.
// Calls return remote errors as *Error; match them with errors.As, or with errors.Is
// against an *Error of the same code (such as dht.ErrSeqTooLow).
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("KRPC error %d: %s", e.Code, e.Msg) }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Extra holds dictionary keys this package does not model, as raw bencoded values. Keys
// are kept exactly as received and are written back verbatim, in sorted order with the
// modelled keys. Setting a key that the enclosing type models (for example "id" in Args)
// makes encoding fail.
type Extra map[string]bencode.Bytes

// Args are the arguments of a query (the "a" dictionary): anacrolix's MsgArgs plus any keys
// it does not model, such as the WebTorrent extension's "signals" and "signal".
//
// A decoded Args holds a BEP 44 "v" as bencode.Bytes (the exact bytes received, which is
// what a target or signature is computed over). When encoding, a V of type bencode.Bytes is
// written verbatim and any other value is bencoded.
type Args struct {
	akrpc.MsgArgs
	// CasSet says that "cas" is present, so a Cas of 0 is sent and compared (BEP 44
	// compare-and-swap on sequence number 0) rather than meaning "absent".
	CasSet bool
	// InfoHashSet and TargetSet say that "info_hash" and "target" are present, so that an
	// all-zero infohash or target is an ordinary ID rather than "absent". Decoding sets
	// them. Encoding writes the key when the ID is not zero, when the flag is set, or when
	// the query's method takes it (info_hash: get_peers, announce_peer; target:
	// find_node, get, sample_infohashes), so callers need not set them.
	InfoHashSet, TargetSet bool
	Extra                  Extra
}

// HasInfoHash reports whether the query carries "info_hash": InfoHashSet, or an
// InfoHash that is not zero.
func (a *Args) HasInfoHash() bool { return a.InfoHashSet || a.InfoHash != (ID{}) }

// HasTarget reports whether the query carries "target": TargetSet, or a Target that is
// not zero.
func (a *Args) HasTarget() bool { return a.TargetSet || a.Target != (ID{}) }

// Return is the body of a response (the "r" dictionary): anacrolix's Return plus any keys it
// does not model (for example libtorrent's "p" or the WebTorrent extension's "signals").
//
// Compact node and peer entries of an invalid length are skipped when decoding; decoded
// IPv4 addresses are 4 bytes long.
type Return struct {
	akrpc.Return
	Extra Extra
}

// Msg is one KRPC message.
//
// Unknown keys at every level are kept in the Extra maps and written back byte for byte, so
// a message decoded and encoded again is identical to the original whenever the original
// was canonical bencode (sorted keys, no redundant zero values).
type Msg struct {
	T string // transaction ID
	Y string // TypeQuery, TypeResponse or TypeError
	Q string // query method, for queries

	A *Args   // query arguments
	R *Return // response body
	E *Error  // error body

	// IP is the "ip" key (BEP 42): in a response, the querier's address as the responder
	// saw it. The zero value means absent (or not a valid compact address).
	IP netip.AddrPort
	// ReadOnly is the BEP 43 "ro" flag: the sender does not answer queries.
	ReadOnly bool
	// Version is the "v" key: a client identifier such as "LT\x02\x08".
	Version string

	Extra Extra
}

// SenderID returns the node ID the message carries (a.id in a query, r.id in a
// response) and whether it has one.
func (m *Msg) SenderID() (ID, bool) {
	switch {
	case m.Y == TypeQuery && m.A != nil:
		return m.A.ID, true
	case m.Y == TypeResponse && m.R != nil:
		return m.R.ID, true
	}
	return ID{}, false
}
