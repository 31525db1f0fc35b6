package krpc

import (
	"bytes"
	"context"
	"net/netip"
	"testing"
	"time"

	akrpc "github.com/anacrolix/dht/v2/krpc"

	"github.com/wdht/wdht/transport"
	"github.com/wdht/wdht/transport/memory"
)

// FuzzUnmarshal throws arbitrary bytes at the decoder. It must never panic, and whatever it
// accepts must encode to a canonical form that decodes and encodes to the same bytes.
func FuzzUnmarshal(f *testing.F) {
	for _, m := range canonicalMessages(f) {
		f.Add(m)
	}
	f.Add([]byte("d2:ip1:x1:t2:aa1:y1:re"))
	f.Add([]byte("d1:q13:announce_peer1:t2:aa1:y1:qe"))
	f.Add([]byte("d1:rd2:id20:" + id1 + "6:valuesl1:xee1:t2:aa1:y1:re"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var m Msg
		if err := m.UnmarshalBinary(in); err != nil {
			return
		}
		enc, err := m.MarshalBinary()
		if err != nil {
			// Only values the encoder cannot represent may fail, and decoding never
			// produces those.
			t.Fatalf("decoded message does not encode: %v\ninput: %q", err, in)
		}
		var m2 Msg
		if err := m2.UnmarshalBinary(enc); err != nil {
			t.Fatalf("re-decode: %v\ninput: %q\nenc: %q", err, in, enc)
		}
		enc2, err := m2.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable\n enc: %q\nenc2: %q", enc, enc2)
		}
	})
}

// inlineMux is a Mux whose methods all run on the read loop.
type inlineMux struct{ Mux }

func (inlineMux) Inline(string) bool { return true }

// FuzzHandlePacket feeds arbitrary datagrams to a server's packet path (rate limit,
// decoding, validation, dispatch, reply) with a handler that echoes what it gets. Nothing
// may panic, and every reply the server sends must itself decode.
func FuzzHandlePacket(f *testing.F) {
	for _, m := range canonicalMessages(f) {
		f.Add(m)
	}
	f.Add([]byte("d1:q13:announce_peer1:t2:aa1:y1:qe"))
	f.Add([]byte("d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe"))
	n := memory.NewNetwork(nil)
	tr, err := n.Listen(netip.AddrPort{})
	if err != nil {
		f.Fatal(err)
	}
	peer, err := n.Listen(netip.AddrPort{})
	if err != nil {
		f.Fatal(err)
	}
	echo := HandlerFunc(func(ctx context.Context, q *Query) (*Response, error) {
		r := &Return{Return: akrpc.Return{ID: idB}, Extra: q.Args.Extra}
		r.Token = &q.Args.Token
		return &Response{Return: r}, nil
	})
	s, err := NewServer(tr, inlineMux{Mux{MethodPing: echo, MethodFindNode: echo, MethodGetPeers: echo}}, &Config{SourceRate: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close(); tr.Close(); peer.Close() })
	f.Fuzz(func(t *testing.T, in []byte) {
		s.handlePacket(transport.Packet{From: peer.LocalAddr(), Data: in}, nil)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			p, err := peer.Receive(ctx)
			cancel()
			if err != nil {
				return
			}
			var m Msg
			if err := m.UnmarshalBinary(p.Data); err != nil {
				t.Fatalf("the server sent an undecodable reply %q to input %q: %v", p.Data, in, err)
			}
		}
	})
}
