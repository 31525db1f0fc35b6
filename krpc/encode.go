package krpc

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"

	akrpc "github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
)

// Keys each level of a message models, in sorted order. Extra must not repeat them.
var (
	msgKeys    = []string{"a", "e", "ip", "q", "r", "ro", "t", "v", "y"}
	argsKeys   = []string{"cas", "id", "implied_port", "info_hash", "k", "noseed", "port", "salt", "scrape", "seq", "sig", "target", "token", "v", "want"}
	returnKeys = []string{"BFpe", "BFsd", "id", "interval", "k", "nodes", "nodes6", "num", "samples", "seq", "sig", "token", "v", "values"}
)

// MarshalBinary encodes m as canonical bencode.
func (m *Msg) MarshalBinary() ([]byte, error) { return m.AppendBinary(make([]byte, 0, 128)) }

// MarshalBencode implements bencode.Marshaler.
func (m *Msg) MarshalBencode() ([]byte, error) { return m.MarshalBinary() }

// AppendBinary appends the canonical bencoding of m to b (keys sorted, absent and empty
// optional fields left out, Extra values written verbatim).
func (m *Msg) AppendBinary(b []byte) ([]byte, error) {
	var x extraWriter
	if err := x.init(m.Extra, msgKeys, ""); err != nil {
		return b, err
	}
	var err error
	b = append(b, 'd')
	if m.A != nil {
		b = appendString(x.before(b, "a"), "a")
		if b, err = m.A.appendBinary(b, m.Q); err != nil {
			return b, err
		}
	}
	if m.E != nil {
		b = appendString(x.before(b, "e"), "e")
		b = append(b, 'l')
		b = appendInt(b, int64(m.E.Code))
		b = append(appendString(b, m.E.Msg), 'e')
	}
	if m.IP.IsValid() {
		b = appendString(x.before(b, "ip"), "ip")
		b = appendCompactAddr(b, m.IP)
	}
	if m.Q != "" {
		b = appendString(appendString(x.before(b, "q"), "q"), m.Q)
	}
	if m.R != nil {
		b = appendString(x.before(b, "r"), "r")
		if b, err = m.R.appendBinary(b); err != nil {
			return b, err
		}
	}
	if m.ReadOnly {
		b = appendInt(appendString(x.before(b, "ro"), "ro"), 1)
	}
	b = appendString(appendString(x.before(b, "t"), "t"), m.T)
	if m.Version != "" {
		b = appendString(appendString(x.before(b, "v"), "v"), m.Version)
	}
	b = appendString(appendString(x.before(b, "y"), "y"), m.Y)
	return append(x.rest(b), 'e'), nil
}

func (a *Args) appendBinary(b []byte, method string) ([]byte, error) {
	var x extraWriter
	if err := x.init(a.Extra, argsKeys, "a."); err != nil {
		return b, err
	}
	b = append(b, 'd')
	if a.Cas != 0 || a.CasSet {
		b = appendInt(appendString(x.before(b, "cas"), "cas"), a.Cas)
	}
	b = appendID(appendString(x.before(b, "id"), "id"), &a.ID)
	if a.ImpliedPort {
		b = appendInt(appendString(x.before(b, "implied_port"), "implied_port"), 1)
	}
	if a.HasInfoHash() || method == MethodGetPeers || method == MethodAnnouncePeer {
		b = appendID(appendString(x.before(b, "info_hash"), "info_hash"), &a.InfoHash)
	}
	if a.K != ([32]byte{}) {
		b = appendBytes(appendString(x.before(b, "k"), "k"), a.K[:])
	}
	if a.NoSeed != 0 {
		b = appendInt(appendString(x.before(b, "noseed"), "noseed"), int64(a.NoSeed))
	}
	if a.Port != nil {
		b = appendInt(appendString(x.before(b, "port"), "port"), int64(*a.Port))
	}
	if len(a.Salt) > 0 {
		b = appendBytes(appendString(x.before(b, "salt"), "salt"), a.Salt)
	}
	if a.Scrape != 0 {
		b = appendInt(appendString(x.before(b, "scrape"), "scrape"), int64(a.Scrape))
	}
	if a.Seq != nil {
		b = appendInt(appendString(x.before(b, "seq"), "seq"), *a.Seq)
	}
	if a.Sig != ([64]byte{}) {
		b = appendBytes(appendString(x.before(b, "sig"), "sig"), a.Sig[:])
	}
	if a.HasTarget() || method == MethodFindNode || method == MethodGet || method == MethodSampleInfohashes {
		b = appendID(appendString(x.before(b, "target"), "target"), &a.Target)
	}
	if a.Token != "" {
		b = appendString(appendString(x.before(b, "token"), "token"), a.Token)
	}
	if a.V != nil {
		b = appendString(x.before(b, "v"), "v")
		var err error
		if b, err = appendValue(b, a.V); err != nil {
			return b, fmt.Errorf("krpc: encoding a.v: %w", err)
		}
	}
	if len(a.Want) > 0 {
		b = append(appendString(x.before(b, "want"), "want"), 'l')
		for _, w := range a.Want {
			b = appendString(b, string(w))
		}
		b = append(b, 'e')
	}
	return append(x.rest(b), 'e'), nil
}

func (r *Return) appendBinary(b []byte) ([]byte, error) {
	var x extraWriter
	if err := x.init(r.Extra, returnKeys, "r."); err != nil {
		return b, err
	}
	b = append(b, 'd')
	if r.BFpe != nil {
		b = appendBytes(appendString(x.before(b, "BFpe"), "BFpe"), r.BFpe[:])
	}
	if r.BFsd != nil {
		b = appendBytes(appendString(x.before(b, "BFsd"), "BFsd"), r.BFsd[:])
	}
	b = appendID(appendString(x.before(b, "id"), "id"), &r.ID)
	if r.Interval != nil {
		b = appendInt(appendString(x.before(b, "interval"), "interval"), *r.Interval)
	}
	if r.K != ([32]byte{}) {
		b = appendBytes(appendString(x.before(b, "k"), "k"), r.K[:])
	}
	if n := countNodes(r.Nodes, false); n > 0 {
		b = appendNodes(appendString(x.before(b, "nodes"), "nodes"), r.Nodes, n, false)
	}
	if n := countNodes(r.Nodes6, true); n > 0 {
		b = appendNodes(appendString(x.before(b, "nodes6"), "nodes6"), r.Nodes6, n, true)
	}
	if r.Num != nil {
		b = appendInt(appendString(x.before(b, "num"), "num"), *r.Num)
	}
	if r.Samples != nil {
		b = appendString(x.before(b, "samples"), "samples")
		b = strconv.AppendInt(b, int64(20*len(*r.Samples)), 10)
		b = append(b, ':')
		for _, ih := range *r.Samples {
			b = append(b, ih[:]...)
		}
	}
	if r.Seq != nil {
		b = appendInt(appendString(x.before(b, "seq"), "seq"), *r.Seq)
	}
	if r.Sig != ([64]byte{}) {
		b = appendBytes(appendString(x.before(b, "sig"), "sig"), r.Sig[:])
	}
	if r.Token != nil {
		b = appendString(appendString(x.before(b, "token"), "token"), *r.Token)
	}
	if len(r.V) > 0 {
		b = appendString(x.before(b, "v"), "v")
		var err error
		if b, err = appendValue(b, r.V); err != nil {
			return b, fmt.Errorf("krpc: encoding r.v: %w", err)
		}
	}
	if len(r.Values) > 0 {
		b = append(appendString(x.before(b, "values"), "values"), 'l')
		for _, v := range r.Values {
			ip := v.IP
			if ip4 := ip.To4(); ip4 != nil {
				ip = ip4
			}
			if (len(ip) != net.IPv4len && len(ip) != net.IPv6len) || v.Port < 0 || v.Port > 65535 {
				return b, fmt.Errorf("krpc: encoding r.values: invalid peer address %v", v)
			}
			b = strconv.AppendInt(b, int64(len(ip)+2), 10)
			b = append(b, ':')
			b = append(b, ip...)
			b = append(b, byte(v.Port>>8), byte(v.Port))
		}
		b = append(b, 'e')
	}
	return append(x.rest(b), 'e'), nil
}

// extraWriter merges Extra keys, in sorted order, between the modelled keys.
type extraWriter struct {
	ex   Extra
	keys []string
	next int
}

func (x *extraWriter) init(ex Extra, known []string, prefix string) error {
	if len(ex) == 0 {
		return nil
	}
	x.ex = ex
	x.keys = make([]string, 0, len(ex))
	for k, v := range ex {
		if _, found := slices.BinarySearch(known, k); found {
			return fmt.Errorf("krpc: Extra key %q is a modelled field; set the field instead", prefix+k)
		}
		if end, err := skipValue(v, 0, 3); err != nil || end != len(v) {
			return fmt.Errorf("krpc: Extra key %q does not hold exactly one bencoded value", prefix+k)
		}
		x.keys = append(x.keys, k)
	}
	slices.Sort(x.keys)
	return nil
}

// before writes the Extra entries whose keys sort before key.
func (x *extraWriter) before(b []byte, key string) []byte {
	for x.next < len(x.keys) && x.keys[x.next] < key {
		k := x.keys[x.next]
		b = append(appendString(b, k), x.ex[k]...)
		x.next++
	}
	return b
}

// rest writes the remaining Extra entries.
func (x *extraWriter) rest(b []byte) []byte {
	for ; x.next < len(x.keys); x.next++ {
		k := x.keys[x.next]
		b = append(appendString(b, k), x.ex[k]...)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

func appendBytes(b []byte, s []byte) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

func appendID(b []byte, id *ID) []byte {
	return append(append(b, "20:"...), id[:]...)
}

func appendInt(b []byte, v int64) []byte {
	b = append(b, 'i')
	b = strconv.AppendInt(b, v, 10)
	return append(b, 'e')
}

func appendCompactAddr(b []byte, a netip.AddrPort) []byte {
	ip := a.Addr().Unmap()
	if ip.Is4() {
		b = append(b, "6:"...)
	} else {
		b = append(b, "18:"...)
	}
	if ip.Is4() {
		a4 := ip.As4()
		b = append(b, a4[:]...)
	} else {
		a16 := ip.As16()
		b = append(b, a16[:]...)
	}
	return append(b, byte(a.Port()>>8), byte(a.Port()))
}

// countNodes counts the entries that fit the list: IPv4 addresses in "nodes", IPv6 (not
// IPv4-mapped) in "nodes6". Entries of the other family are left out.
func countNodes(nodes []akrpc.NodeInfo, v6 bool) int {
	n := 0
	for i := range nodes {
		if nodeFits(&nodes[i], v6) {
			n++
		}
	}
	return n
}

func nodeFits(n *akrpc.NodeInfo, v6 bool) bool {
	if n.Addr.Port < 0 || n.Addr.Port > 65535 {
		return false
	}
	if n.Addr.IP.To4() != nil {
		return !v6
	}
	return v6 && len(n.Addr.IP) == net.IPv6len
}

func appendNodes(b []byte, nodes []akrpc.NodeInfo, n int, v6 bool) []byte {
	size := 26
	if v6 {
		size = 38
	}
	b = strconv.AppendInt(b, int64(n*size), 10)
	b = append(b, ':')
	for i := range nodes {
		nd := &nodes[i]
		if !nodeFits(nd, v6) {
			continue
		}
		b = append(b, nd.ID[:]...)
		if v6 {
			b = append(b, nd.Addr.IP.To16()...)
		} else {
			b = append(b, nd.Addr.IP.To4()...)
		}
		b = append(b, byte(nd.Addr.Port>>8), byte(nd.Addr.Port))
	}
	return b
}

// appendValue writes an arbitrary value: bencode.Bytes verbatim (after checking it is one
// bencoded value), anything else through anacrolix's bencode encoder.
func appendValue(b []byte, v any) ([]byte, error) {
	if raw, ok := v.(bencode.Bytes); ok {
		if len(raw) == 0 {
			return b, errors.New("empty bencode.Bytes")
		}
		if end, err := skipValue(raw, 0, 3); err != nil || end != len(raw) {
			return b, errors.New("bencode.Bytes does not hold exactly one bencoded value")
		}
		return append(b, raw...), nil
	}
	enc, err := bencode.Marshal(v)
	if err != nil {
		return b, err
	}
	return append(b, enc...), nil
}
