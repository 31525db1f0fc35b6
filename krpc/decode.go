package krpc

import (
	"bytes"
	"net"
	"net/netip"

	akrpc "github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
)

// Unmarshal decodes one KRPC message from b, which must hold exactly one bencoded
// dictionary. It never panics, whatever b holds.
//
// When the bencode is valid but a known key has the wrong type or length, Unmarshal keeps
// decoding the other keys (so that T, Y and Q are known and a query can be answered with a
// protocol error) and returns the first such problem. Every error wraps ErrMalformed.
// m does not reference b afterwards.
func (m *Msg) UnmarshalBinary(b []byte) error { return m.unmarshal(b, nil) }

// unmarshal is UnmarshalBinary, decoding "a" into args when it is not nil (which the
// server recycles) instead of a new Args.
func (m *Msg) unmarshal(b []byte, args *Args) error {
	*m = Msg{}
	d := decoder{b: b}
	if len(b) == 0 || b[0] != 'd' {
		return syntaxErr(0, "a message must be a dictionary")
	}
	i := 1
	for {
		if i >= len(b) {
			return syntaxErr(i, "unterminated dictionary")
		}
		if b[i] == 'e' {
			i++
			break
		}
		key, next, err := scanString(b, i)
		if err != nil {
			return err
		}
		i = next
		switch string(key) {
		case "t":
			if s, ok := d.str("t", &i); ok {
				m.T = string(s)
			}
		case "y":
			if s, ok := d.str("y", &i); ok {
				m.Y = internType(s)
			}
		case "q":
			if s, ok := d.str("q", &i); ok {
				m.Q = internMethod(s)
			}
		case "a":
			if d.expect("a", i, 'd') {
				if m.A = args; m.A == nil {
					m.A = new(Args)
				} else {
					*m.A = Args{}
				}
				i = d.args(i+1, m.A)
			} else {
				i = d.skip(i, 2)
			}
		case "r":
			if d.expect("r", i, 'd') {
				m.R = new(Return)
				i = d.ret(i+1, m.R)
			} else {
				i = d.skip(i, 2)
			}
		case "e":
			m.E = new(Error)
			i = d.errBody(i, m.E)
		case "ip":
			// Advisory (BEP 42): a value that is not a compact address is ignored.
			if s, ok := d.str("", &i); ok {
				m.IP = compactAddr(s)
			}
		case "ro":
			if v, ok := d.integer("", &i); ok {
				m.ReadOnly = v != 0
			}
		case "v":
			if s, ok := d.str("", &i); ok {
				m.Version = string(s)
			}
		default:
			i = d.extra(&m.Extra, key, i, 2)
		}
		if d.syntax != nil {
			return d.syntax
		}
	}
	if i != len(b) {
		return syntaxErr(i, "trailing bytes after the message")
	}
	if m.Y == TypeError && m.E == nil {
		m.E = &Error{Code: ErrorCodeGeneric}
	}
	return d.field
}

// UnmarshalBencode implements bencode.Unmarshaler, so a Msg can be decoded as part of a
// larger structure with anacrolix's bencode package.
func (m *Msg) UnmarshalBencode(b []byte) error { return m.UnmarshalBinary(b) }

// decoder carries the input and the first errors through one Unmarshal.
type decoder struct {
	b      []byte
	syntax error // invalid bencode: decoding stops
	field  error // first known key of the wrong type or length: decoding goes on
}

func (d *decoder) fail(key string, off int, what string) {
	if d.field == nil {
		d.field = &decodeError{off: off, key: key, what: what}
	}
}

// skip steps over the value at i, recording a syntax error if it is not bencode.
func (d *decoder) skip(i, depth int) int {
	next, err := skipValue(d.b, i, depth)
	if err != nil && d.syntax == nil {
		d.syntax = err
	}
	return next
}

func (d *decoder) expect(key string, i int, c byte) bool {
	if i < len(d.b) && d.b[i] == c {
		return true
	}
	what := "expected a dictionary"
	if c == 'l' {
		what = "expected a list"
	}
	d.fail(key, i, what)
	return false
}

// str decodes a string value at *i. A value of another type is skipped; it is a field
// error unless key is "" (a lenient field).
func (d *decoder) str(key string, i *int) ([]byte, bool) {
	if *i < len(d.b) && isDigit(d.b[*i]) {
		s, next, err := scanString(d.b, *i)
		if err != nil {
			d.syntax = err
			return nil, false
		}
		*i = next
		return s, true
	}
	if key != "" {
		d.fail(key, *i, "expected a string")
	}
	*i = d.skip(*i, 2)
	return nil, false
}

// fixed decodes a string value of exactly len(dst) bytes into dst.
func (d *decoder) fixed(key string, i *int, dst []byte) bool {
	off := *i
	s, ok := d.str(key, i)
	if !ok {
		return false
	}
	if len(s) != len(dst) {
		d.fail(key, off, "wrong length")
		return false
	}
	copy(dst, s)
	return true
}

// integer decodes an integer value at *i. A value of another type is skipped; it is a
// field error unless key is "" (a lenient field).
func (d *decoder) integer(key string, i *int) (int64, bool) {
	if *i < len(d.b) && d.b[*i] == 'i' {
		v, next, err := scanInt(d.b, *i)
		if err != nil {
			d.syntax = err
			return 0, false
		}
		*i = next
		return v, true
	}
	if key != "" {
		d.fail(key, *i, "expected an integer")
	}
	*i = d.skip(*i, 2)
	return 0, false
}

// raw returns a copy of the value at *i, checked to be bencode.
func (d *decoder) raw(i *int, depth int) bencode.Bytes {
	start := *i
	*i = d.skip(*i, depth)
	if d.syntax != nil {
		return nil
	}
	return bytes.Clone(d.b[start:*i])
}

func (d *decoder) extra(ex *Extra, key []byte, i, depth int) int {
	v := d.raw(&i, depth)
	if v != nil {
		if *ex == nil {
			*ex = make(Extra, 2)
		}
		(*ex)[string(key)] = v
	}
	return i
}

// dictKeys walks a dictionary body starting after its 'd', calling f with each key and the
// index of its value; f returns the index after the value. It returns the index after the
// closing 'e'.
func (d *decoder) dictKeys(i int, f func(key []byte, i int) int) int {
	for d.syntax == nil {
		if i >= len(d.b) {
			d.syntax = syntaxErr(i, "unterminated dictionary")
			break
		}
		if d.b[i] == 'e' {
			return i + 1
		}
		key, next, err := scanString(d.b, i)
		if err != nil {
			d.syntax = err
			break
		}
		i = f(key, next)
	}
	return i
}

func (d *decoder) args(i int, a *Args) int {
	return d.dictKeys(i, func(key []byte, i int) int {
		switch string(key) {
		case "id":
			d.fixed("id", &i, a.ID[:])
		case "info_hash":
			a.InfoHashSet = d.fixed("info_hash", &i, a.InfoHash[:])
		case "target":
			a.TargetSet = d.fixed("target", &i, a.Target[:])
		case "token":
			if s, ok := d.str("token", &i); ok {
				a.Token = string(s)
			}
		case "port":
			if v, ok := d.integer("port", &i); ok {
				p := int(v)
				a.Port = &p
			}
		case "implied_port":
			if v, ok := d.integer("implied_port", &i); ok {
				a.ImpliedPort = v != 0
			}
		case "want":
			i = d.want(i, a)
		case "noseed":
			if v, ok := d.integer("noseed", &i); ok {
				a.NoSeed = int(v)
			}
		case "scrape":
			if v, ok := d.integer("scrape", &i); ok {
				a.Scrape = int(v)
			}
		case "v":
			if v := d.raw(&i, 3); v != nil {
				a.V = v
			}
		case "seq":
			if v, ok := d.integer("seq", &i); ok {
				a.Seq = &v
			}
		case "cas":
			if v, ok := d.integer("cas", &i); ok {
				a.Cas, a.CasSet = v, true
			}
		case "k":
			d.fixed("k", &i, a.K[:])
		case "salt":
			if s, ok := d.str("salt", &i); ok {
				a.Salt = bytes.Clone(s)
			}
		case "sig":
			d.fixed("sig", &i, a.Sig[:])
		default:
			i = d.extra(&a.Extra, key, i, 3)
		}
		return i
	})
}

// listItems walks the list at i (a field error if it is not one), calling f with the
// index of each item; f returns the index after it. It returns the index after the list.
func (d *decoder) listItems(key string, i int, f func(i int) int) int {
	if !d.expect(key, i, 'l') {
		return d.skip(i, 3)
	}
	i++
	for d.syntax == nil {
		if i >= len(d.b) {
			d.syntax = syntaxErr(i, "unterminated list")
			break
		}
		if d.b[i] == 'e' {
			return i + 1
		}
		i = f(i)
	}
	return i
}

func (d *decoder) want(i int, a *Args) int {
	return d.listItems("want", i, func(i int) int {
		if s, ok := d.str("want", &i); ok {
			switch string(s) {
			case "n4":
				a.Want = append(a.Want, akrpc.WantNodes)
			case "n6":
				a.Want = append(a.Want, akrpc.WantNodes6)
			default:
				a.Want = append(a.Want, akrpc.Want(s))
			}
		}
		return i
	})
}

func (d *decoder) ret(i int, r *Return) int {
	return d.dictKeys(i, func(key []byte, i int) int {
		switch string(key) {
		case "id":
			d.fixed("id", &i, r.ID[:])
		case "nodes":
			if s, ok := d.str("nodes", &i); ok {
				r.Nodes = compactNodes(s, net.IPv4len)
			}
		case "nodes6":
			if s, ok := d.str("nodes6", &i); ok {
				r.Nodes6 = compactNodes(s, net.IPv6len)
			}
		case "token":
			if s, ok := d.str("token", &i); ok {
				t := string(s)
				r.Token = &t
			}
		case "values":
			i = d.values(i, r)
		case "BFsd":
			r.BFsd = new(akrpc.ScrapeBloomFilter)
			if !d.fixed("BFsd", &i, r.BFsd[:]) {
				r.BFsd = nil
			}
		case "BFpe":
			r.BFpe = new(akrpc.ScrapeBloomFilter)
			if !d.fixed("BFpe", &i, r.BFpe[:]) {
				r.BFpe = nil
			}
		case "interval":
			if v, ok := d.integer("interval", &i); ok {
				r.Interval = &v
			}
		case "num":
			if v, ok := d.integer("num", &i); ok {
				r.Num = &v
			}
		case "samples":
			if s, ok := d.str("samples", &i); ok {
				ih := make(akrpc.CompactInfohashes, len(s)/20)
				for j := range ih {
					copy(ih[j][:], s[j*20:])
				}
				r.Samples = &ih
			}
		case "v":
			r.V = d.raw(&i, 3)
		case "k":
			d.fixed("k", &i, r.K[:])
		case "sig":
			d.fixed("sig", &i, r.Sig[:])
		case "seq":
			if v, ok := d.integer("seq", &i); ok {
				r.Seq = &v
			}
		default:
			i = d.extra(&r.Extra, key, i, 3)
		}
		return i
	})
}

// values decodes the list of compact peer addresses, skipping entries that are not
// 6 or 18 byte strings (a 1-byte entry crashes anacrolix's decoder).
func (d *decoder) values(i int, r *Return) int {
	return d.listItems("values", i, func(i int) int {
		s, ok := d.str("", &i)
		if ok && (len(s) == 6 || len(s) == 18) {
			ip := make(net.IP, len(s)-2)
			copy(ip, s)
			r.Values = append(r.Values, akrpc.NodeAddr{IP: ip, Port: int(s[len(s)-2])<<8 | int(s[len(s)-1])})
		}
		return i
	})
}

// errBody decodes "e": a list [code, message], or (leniently) a bare message string.
func (d *decoder) errBody(i int, e *Error) int {
	e.Code = ErrorCodeGeneric
	if i < len(d.b) && isDigit(d.b[i]) {
		s, _ := d.str("", &i)
		e.Msg = string(s)
		return i
	}
	if i >= len(d.b) || d.b[i] != 'l' {
		return d.skip(i, 2)
	}
	end, err := skipValue(d.b, i, 2)
	if err != nil {
		d.syntax = err
		return end
	}
	i++
	if i < end && d.b[i] == 'i' {
		v, next, _ := scanInt(d.b, i)
		e.Code = int(v)
		i = next
	}
	if i < end && isDigit(d.b[i]) {
		s, _, _ := scanString(d.b, i)
		e.Msg = string(s)
	}
	return end
}

// compactNodes decodes concatenated compact node infos (20-byte ID, IP, 2-byte port). A
// trailing partial entry is ignored. All IPs share one backing array.
func compactNodes(s []byte, ipLen int) []akrpc.NodeInfo {
	size := 20 + ipLen + 2
	n := len(s) / size
	if n == 0 {
		return nil
	}
	nodes := make([]akrpc.NodeInfo, n)
	ips := make([]byte, n*ipLen)
	for j := range nodes {
		e := s[j*size : (j+1)*size]
		copy(nodes[j].ID[:], e)
		ip := ips[j*ipLen : (j+1)*ipLen : (j+1)*ipLen]
		copy(ip, e[20:])
		nodes[j].Addr = akrpc.NodeAddr{IP: ip, Port: int(e[size-2])<<8 | int(e[size-1])}
	}
	return nodes
}

// compactAddr decodes a 6 or 18 byte compact address; anything else gives the zero value.
func compactAddr(s []byte) netip.AddrPort {
	switch len(s) {
	case 6:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(s[:4])), uint16(s[4])<<8|uint16(s[5]))
	case 18:
		a := netip.AddrFrom16([16]byte(s[:16])).Unmap()
		return netip.AddrPortFrom(a, uint16(s[16])<<8|uint16(s[17]))
	}
	return netip.AddrPort{}
}

func internType(s []byte) string {
	switch string(s) {
	case TypeQuery:
		return TypeQuery
	case TypeResponse:
		return TypeResponse
	case TypeError:
		return TypeError
	}
	return string(s)
}

// Method names, interned when decoding so that a query costs no allocation for them.
const (
	MethodPing             = "ping"
	MethodFindNode         = "find_node"
	MethodGetPeers         = "get_peers"
	MethodAnnouncePeer     = "announce_peer"
	MethodGet              = "get"
	MethodPut              = "put"
	MethodSampleInfohashes = "sample_infohashes"
)

func internMethod(s []byte) string {
	switch string(s) {
	case MethodPing:
		return MethodPing
	case MethodFindNode:
		return MethodFindNode
	case MethodGetPeers:
		return MethodGetPeers
	case MethodAnnouncePeer:
		return MethodAnnouncePeer
	case MethodGet:
		return MethodGet
	case MethodPut:
		return MethodPut
	case MethodSampleInfohashes:
		return MethodSampleInfohashes
	}
	return string(s)
}
