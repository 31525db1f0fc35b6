package krpc

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	akrpc "github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
)

// benc builds canonical bencode from Go values (maps are sorted by the encoder).
func benc(t testing.TB, v any) []byte {
	t.Helper()
	b, err := bencode.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	id1   = strings.Repeat("\x01", 20)
	id2   = strings.Repeat("\x02", 20)
	node1 = id2 + "\x7f\x00\x00\x01\x1a\xe1"
)

func canonicalMessages(t testing.TB) map[string][]byte {
	offer := map[string]any{"id": id1, "type": "offer", "sdp": "v=0\r\n", "extensions": []any{}}
	return map[string][]byte{
		"ping query":    benc(t, map[string]any{"t": "aa", "y": "q", "q": "ping", "a": map[string]any{"id": id1}}),
		"ping response": benc(t, map[string]any{"t": "aa", "y": "r", "r": map[string]any{"id": id2}, "ip": "\x7f\x00\x00\x01\x1a\xe1", "v": "LT\x02\x08"}),
		"find_node":     benc(t, map[string]any{"t": "\x00\x01", "y": "q", "q": "find_node", "a": map[string]any{"id": id1, "target": id2, "want": []any{"n4", "n6"}}}),
		"get_peers response": benc(t, map[string]any{"t": "xy", "y": "r", "r": map[string]any{
			"id": id2, "nodes": node1 + node1, "token": "tok", "values": []any{"\x7f\x00\x00\x01\x00\x50", strings.Repeat("\x00", 15) + "\x01\x00\x51"},
			"p": int64(6881), // libtorrent's extra key
		}}),
		"announce_peer":  benc(t, map[string]any{"t": "ab", "y": "q", "q": "announce_peer", "a": map[string]any{"id": id1, "info_hash": id2, "port": 6881, "implied_port": 1, "token": "tok"}}),
		"error":          benc(t, map[string]any{"t": "ab", "y": "e", "e": []any{204, "Method Unknown"}}),
		"readonly query": benc(t, map[string]any{"t": "ab", "y": "q", "q": "get_peers", "ro": 1, "a": map[string]any{"id": id1, "info_hash": id2}}),
		"put mutable": benc(t, map[string]any{"t": "ab", "y": "q", "q": "put", "a": map[string]any{
			"id": id1, "cas": 3, "k": strings.Repeat("k", 32), "salt": "foobar", "seq": 4, "sig": strings.Repeat("s", 64), "token": "tok", "v": map[string]any{"x": []any{1, "y"}},
		}}),
		"get response":               benc(t, map[string]any{"t": "ab", "y": "r", "r": map[string]any{"id": id2, "k": strings.Repeat("k", 32), "seq": 0, "sig": strings.Repeat("s", 64), "token": "tok", "v": "hello", "nodes6": id1 + strings.Repeat("\x00", 15) + "\x01\x1a\xe1"}}),
		"sample_infohashes response": benc(t, map[string]any{"t": "ab", "y": "r", "r": map[string]any{"id": id2, "interval": 21600, "num": 2, "samples": id1 + id2}}),
		"scrape response":            benc(t, map[string]any{"t": "ab", "y": "r", "r": map[string]any{"id": id2, "BFsd": strings.Repeat("\x00", 256), "BFpe": strings.Repeat("\x01", 256)}}),
		"js find_node with signals": benc(t, map[string]any{"t": "\x00\x07", "y": "q", "q": "find_node", "a": map[string]any{
			"id": id1, "target": id2, "signals": []any{offer, offer},
		}}),
		"peer_connection":       benc(t, map[string]any{"t": "\x00\x08", "y": "q", "q": "peer_connection", "a": map[string]any{"id": id1, "signal": offer}}),
		"unknown top-level key": benc(t, map[string]any{"t": "aa", "y": "q", "q": "ping", "a": map[string]any{"id": id1}, "zz": map[string]any{"deep": []any{1, 2}}}),
	}
}

func TestRoundTripByteExact(t *testing.T) {
	for name, in := range canonicalMessages(t) {
		t.Run(name, func(t *testing.T) {
			var m Msg
			if err := m.UnmarshalBinary(in); err != nil {
				t.Fatalf("decode: %v", err)
			}
			out, err := m.MarshalBinary()
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			if !bytes.Equal(in, out) {
				t.Fatalf("round trip differs\n in: %q\nout: %q", in, out)
			}
		})
	}
}

// The typed fields must agree with anacrolix's own decoder on every message it can decode.
func TestDecodeMatchesAnacrolix(t *testing.T) {
	for name, in := range canonicalMessages(t) {
		t.Run(name, func(t *testing.T) {
			var want akrpc.Msg
			if err := bencode.Unmarshal(in, &want); err != nil {
				t.Skipf("anacrolix cannot decode it: %v", err)
			}
			var m Msg
			if err := m.UnmarshalBinary(in); err != nil {
				t.Fatal(err)
			}
			got := akrpc.Msg{Q: m.Q, T: m.T, Y: m.Y, ReadOnly: m.ReadOnly, ClientId: m.Version}
			if m.E != nil {
				got.E = &akrpc.Error{Code: m.E.Code, Msg: m.E.Msg}
			}
			if m.IP.IsValid() {
				got.IP.FromAddrPort(m.IP)
			}
			if m.A != nil {
				got.A = &m.A.MsgArgs
			}
			if m.R != nil {
				got.R = &m.R.Return
			}
			// Normalise representations that differ but mean the same thing.
			if want.A != nil && want.A.V != nil {
				want.A.V = benc(t, want.A.V)
			}
			norm := func(m *akrpc.Msg) {
				if m.IP.IP != nil {
					m.IP.IP = m.IP.IP.To16()
				}
				if m.R != nil {
					for i := range m.R.Values {
						m.R.Values[i].IP = m.R.Values[i].IP.To16()
					}
					for i := range m.R.Nodes {
						m.R.Nodes[i].Addr.IP = m.R.Nodes[i].Addr.IP.To16()
					}
				}
			}
			if got.A != nil && got.A.V != nil {
				got.A.V = []byte(got.A.V.(bencode.Bytes))
			}
			norm(&want)
			norm(&got)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("mismatch\n got: %+v\nwant: %+v", got, want)
			}
		})
	}
}

func TestExtraKept(t *testing.T) {
	in := canonicalMessages(t)["js find_node with signals"]
	var m Msg
	if err := m.UnmarshalBinary(in); err != nil {
		t.Fatal(err)
	}
	sig, ok := m.A.Extra["signals"]
	if !ok {
		t.Fatal("signals dropped")
	}
	var offers []map[string]any
	if err := bencode.Unmarshal(sig, &offers); err != nil || len(offers) != 2 || offers[0]["type"] != "offer" {
		t.Fatalf("signals = %q (%v)", sig, err)
	}
	if m.A.Target != ID([]byte(id2)) {
		t.Fatal("target lost")
	}
}

func TestMalformed(t *testing.T) {
	long := "1048576:" + strings.Repeat("x", 100)
	deep := strings.Repeat("l", 100) + strings.Repeat("e", 100)
	cases := []struct {
		name   string
		in     string
		syntax bool // not bencode at all
		check  func(*testing.T, *Msg)
	}{
		{name: "empty", in: "", syntax: true},
		{name: "not a dict", in: "li1ee", syntax: true},
		{name: "truncated", in: "d1:ad2:id20:" + id1[:10], syntax: true},
		{name: "truncated after key", in: "d1:t2:aa1:y", syntax: true},
		{name: "trailing bytes", in: "d1:t2:aa1:y1:re" + "xyz", syntax: true},
		{name: "non-canonical int", in: "d2:roi01e1:t2:aa1:y1:qe", syntax: true},
		{name: "negative zero", in: "d2:roi-0e1:t2:aa1:y1:qe", syntax: true},
		{name: "int overflow", in: "d2:roi99999999999999999999e1:t2:aa1:y1:qe", syntax: true},
		{name: "string length leading zero", in: "d1:t02:aa1:y1:qe", syntax: true},
		{name: "huge string claim", in: "d1:t" + long + "e", syntax: true},
		{name: "deep nesting", in: "d1:t2:aa1:y1:q1:x" + deep + "e", syntax: true},
		{name: "dict key not a string", in: "di1ei2ee", syntax: true},
		{name: "short id", in: "d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe", check: func(t *testing.T, m *Msg) {
			if m.T != "aa" || m.Q != "ping" || m.Y != "q" {
				t.Fatalf("t/q/y not decoded: %+v", m)
			}
		}},
		{name: "long id", in: "d1:ad2:id25:" + id1 + "abcdee1:q4:ping1:t2:aa1:y1:qe"},
		{name: "a is a string", in: "d1:a3:abc1:q4:ping1:t2:aa1:y1:qe", check: func(t *testing.T, m *Msg) {
			if m.A != nil || m.T != "aa" {
				t.Fatalf("%+v", m)
			}
		}},
		{name: "t is an int", in: "d1:ti5e1:y1:qe"},
		{name: "port is a string", in: "d1:ad2:id20:" + id1 + "4:port4:6881e1:q13:announce_peer1:t2:aa1:y1:qe"},
		{name: "want is a string", in: "d1:ad2:id20:" + id1 + "4:want2:n4e1:q9:find_node1:t2:aa1:y1:qe"},
		{name: "k too short", in: "d1:ad2:id20:" + id1 + "1:k3:abce1:q3:put1:t2:aa1:y1:qe"},
		{name: "values not a list", in: "d1:rd2:id20:" + id1 + "6:values6:abcdefe1:t2:aa1:y1:re"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m Msg
			err := m.UnmarshalBinary([]byte(c.in))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if got := isSyntaxError(err); got != c.syntax {
				t.Fatalf("syntax error = %v, want %v (%v)", got, c.syntax, err)
			}
			if c.check != nil {
				c.check(t, &m)
			}
		})
	}
}

// Inputs that crash anacrolix's decoder or server are decoded without error and without
// the poisonous entries.
func TestHostileButValid(t *testing.T) {
	cases := []struct {
		name  string
		in    string
		check func(*testing.T, *Msg)
	}{
		{"1-byte ip", "d2:ip1:x1:t2:aa1:y1:re", func(t *testing.T, m *Msg) {
			if m.IP.IsValid() {
				t.Fatal("ip accepted")
			}
		}},
		{"1-byte value", "d1:rd2:id20:" + id1 + "6:valuesl1:x6:\x7f\x00\x00\x01\x00\x50ee1:t2:aa1:y1:re", func(t *testing.T, m *Msg) {
			if len(m.R.Values) != 1 || !m.R.Values[0].IP.Equal(net.IPv4(127, 0, 0, 1)) || m.R.Values[0].Port != 80 {
				t.Fatalf("values = %v", m.R.Values)
			}
		}},
		{"announce_peer without a", "d1:q13:announce_peer1:t2:aa1:y1:qe", func(t *testing.T, m *Msg) {
			if m.A != nil || m.Q != MethodAnnouncePeer {
				t.Fatalf("%+v", m)
			}
		}},
		{"nodes with a partial entry", "d1:rd2:id20:" + id1 + "5:nodes30:" + node1 + "abcde1:t2:aa1:y1:re", func(t *testing.T, m *Msg) {
			if len(m.R.Nodes) != 1 || m.R.Nodes[0].Addr.Port != 6881 {
				t.Fatalf("nodes = %v", m.R.Nodes)
			}
		}},
		{"bare string error", "d1:e5:oops!1:t2:aa1:y1:ee", func(t *testing.T, m *Msg) {
			if m.E == nil || m.E.Msg != "oops!" || m.E.Code != ErrorCodeGeneric {
				t.Fatalf("%+v", m.E)
			}
		}},
		{"error without e", "d1:t2:aa1:y1:ee", func(t *testing.T, m *Msg) {
			if m.E == nil {
				t.Fatal("no error body")
			}
		}},
		{"unsorted keys", "d1:y1:q1:t2:aa1:q4:ping1:ad2:id20:" + id1 + "ee", func(t *testing.T, m *Msg) {
			if m.Q != "ping" || m.T != "aa" {
				t.Fatalf("%+v", m)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var m Msg
			if err := m.UnmarshalBinary([]byte(c.in)); err != nil {
				t.Fatal(err)
			}
			c.check(t, &m)
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	m := &Msg{T: "aa", Y: TypeQuery, Q: "ping", A: &Args{Extra: Extra{"id": bencode.Bytes("i1e")}}}
	if _, err := m.MarshalBinary(); err == nil || !strings.Contains(err.Error(), `"a.id"`) {
		t.Fatalf("modelled key in Extra: %v", err)
	}
	m = &Msg{T: "aa", Y: TypeQuery, Q: "ping", Extra: Extra{"zz": bencode.Bytes("i1")}}
	if _, err := m.MarshalBinary(); err == nil {
		t.Fatal("invalid raw value accepted")
	}
	m = &Msg{T: "aa", Y: TypeResponse, R: &Return{Return: akrpc.Return{Values: []akrpc.NodeAddr{{IP: net.IP{1, 2, 3}, Port: 1}}}}}
	if _, err := m.MarshalBinary(); err == nil {
		t.Fatal("3-byte IP accepted")
	}
}

func TestEncodeIP(t *testing.T) {
	for _, ap := range []string{"1.2.3.4:5", "[2001:db8::1]:6881"} {
		m := &Msg{T: "aa", Y: TypeResponse, R: &Return{}, IP: netip.MustParseAddrPort(ap)}
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var back Msg
		if err := back.UnmarshalBinary(b); err != nil || back.IP != m.IP {
			t.Fatalf("%s: got %v (%v)", ap, back.IP, err)
		}
	}
}
