package krpc

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	akrpc "github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"

	"github.com/wdht/wdht/transport"
	"github.com/wdht/wdht/transport/memory"
)

// getPeersResponse is a typical get_peers response: 8 compact nodes, 8 values and a token.
func getPeersResponse(b testing.TB) []byte {
	var nodes strings.Builder
	for i := range 8 {
		nodes.WriteString(strings.Repeat(string(rune('a'+i)), 20) + "\x7f\x00\x00\x01\x1a\xe1")
	}
	var values []any
	for i := range 8 {
		values = append(values, "\x0a\x00\x00"+string(rune(i+1))+"\x1a\xe1")
	}
	return benc(b, map[string]any{"t": "abcd", "y": "r", "ip": "\x7f\x00\x00\x01\x1a\xe1", "v": "LT\x02\x08",
		"r": map[string]any{"id": id2, "nodes": nodes.String(), "token": "12345678", "values": values}})
}

func BenchmarkDecodeGetPeersResponse(b *testing.B) {
	in := getPeersResponse(b)
	b.Run("wdht", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			var m Msg
			if err := m.UnmarshalBinary(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("anacrolix-krpc.Msg", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			var m akrpc.Msg
			if err := bencode.Unmarshal(in, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkEncodeGetPeersResponse(b *testing.B) {
	in := getPeersResponse(b)
	var m Msg
	if err := m.UnmarshalBinary(in); err != nil {
		b.Fatal(err)
	}
	b.Run("wdht", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			var err error
			if buf, err = m.AppendBinary(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("anacrolix-krpc.Msg", func(b *testing.B) {
		b.ReportAllocs()
		km := akrpc.Msg{T: m.T, Y: m.Y, R: &m.R.Return, ClientId: m.Version}
		km.IP.FromAddrPort(m.IP)
		for b.Loop() {
			if _, err := bencode.Marshal(km); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDecodePing(b *testing.B) {
	in := canonicalMessages(b)["ping query"]
	b.ReportAllocs()
	for b.Loop() {
		var m Msg
		if err := m.UnmarshalBinary(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkServePing is the server's whole path for one ping query that an inline handler
// answers: rate limit, decode, dispatch, handler, encoding into the reply batch.
func BenchmarkServePing(b *testing.B) {
	n := memory.NewNetwork(nil)
	tr, _ := n.Listen(netip.AddrPort{})
	defer tr.Close()
	pong := &Response{Return: &Return{Return: akrpc.Return{ID: idB}}}
	s, err := NewServer(tr, inlineMux{Mux{MethodPing: HandlerFunc(func(ctx context.Context, q *Query) (*Response, error) {
		return &Response{Return: &Return{Return: akrpc.Return{ID: idB}}}, nil
	})}}, &Config{SourceRate: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	_ = pong
	in := canonicalMessages(b)["ping query"]
	from := netip.MustParseAddrPort("10.1.2.3:6881")
	out := &outbox{arena: make([]byte, 0, 16<<10)}
	b.ReportAllocs()
	for b.Loop() {
		data := make([]byte, len(in)) // what the transport hands over
		copy(data, in)
		s.handlePacket(transport.Packet{From: from, Data: data}, out)
		out.msgs, out.arena = out.msgs[:0], out.arena[:0]
	}
}
