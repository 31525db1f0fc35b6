package signals

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/krpc"
)

// FuzzSignalsWire throws arbitrary bytes at the signals wire format: one signal (an
// entry of "signals", or the "signal" of peer_connection) and a "signals" list. Nothing
// may panic; a signal that decodes has a 20-byte id and survives encoding as the JS
// sends it (offer, answer or shortcut); a list that decodes re-encodes to elements that
// decode the same.
func FuzzSignalsWire(f *testing.F) {
	var id dht.ID
	copy(id[:], "abcdefghij0123456789")
	offer := encodeFull("offer", "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n", id, []string{"webtorrent"})
	answer := encodeFull("answer", "v=0\r\n", id, nil)
	short := encodeShortcut(id)
	for _, seed := range [][]byte{
		offer, answer, short,
		encodeList([]bencode.Bytes{offer, short, answer}),
		encodeList(nil),
		[]byte("d2:id3:abce"),
		[]byte("d2:id20:abcdefghij01234567894:typei1ee"),
		[]byte("l" + "d2:id20:abcdefghij0123456789e" + "i1e" + "le" + "e"),
		[]byte("ld2:id20:abcdefghij0123456789e"),
		[]byte("d10:extensionsl1:xe2:id20:abcdefghij01234567893:sdp0:4:type5:offere"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if s := decodeSignal(in); s != nil {
			got, ok := s.id()
			if !ok {
				t.Fatalf("decoded signal %q has a bad id", in)
			}
			// As an offer or answer, extensions and all; as the shortcut, the id alone.
			full := encodeFull(s.Type, s.SDP, got, s.Extensions)
			back := decodeSignal(full)
			if back == nil || back.ID != s.ID || back.Type != s.Type || back.SDP != s.SDP || !slices.Equal(back.Extensions, s.Extensions) && len(s.Extensions)+len(back.Extensions) > 0 {
				t.Fatalf("signal %q re-encoded as %q decodes as %+v, want %+v", in, full, back, s)
			}
			if short := decodeSignal(encodeShortcut(got)); short == nil || short.ID != s.ID || short.Type != "" || short.SDP != "" {
				t.Fatalf("the shortcut of %q decodes as %+v", in, short)
			}
		}
		elems := decodeList(in)
		if elems == nil {
			return
		}
		for _, e := range elems {
			decodeSignal(e) // must not panic
		}
		again := decodeList(encodeList(elems))
		if len(again) != len(elems) {
			t.Fatalf("list %q re-encoded has %d elements, want %d", in, len(again), len(elems))
		}
		for i := range elems {
			if !bytes.Equal(again[i], elems[i]) {
				t.Fatalf("list %q element %d re-encoded as %q, want %q", in, i, again[i], elems[i])
			}
		}
	})
}

// fuzzOffer stands for an offer of the querier's in FuzzSignalsQueries: each is replaced
// by the bencoded SDP of a fresh offer (the fake signaler accepts only offers it made).
const fuzzOffer = "5:OFFER"

// FuzzSignalsQueries sends a responder with the extension, which knows ten targets, a
// query of each signalled method (and peer_connection) whose arguments after the id are
// arbitrary: offers in "signals", a "signal", junk. Nothing may panic; every message the
// responder sends back is valid KRPC; one query is relayed to at most MaxRelays targets;
// and the responder still answers a ping after it.
func FuzzSignalsQueries(f *testing.F) {
	methods := []string{krpc.MethodFindNode, krpc.MethodGetPeers, krpc.MethodGet, MethodPeerConnection, krpc.MethodPing}
	offer := "d10:extensionsle2:id20:" + string(qID[:]) + "3:sdp" + fuzzOffer + "4:type5:offere"
	for m := range methods {
		for _, args := range []string{
			"",
			"7:signalsl" + offer + offer + offer + "e6:target20:" + string(qID[:]),
			"9:info_hash20:" + string(qID[:]) + "7:signalsl" + offer + "d2:id20:" + string(qID[:]) + "ee",
			"7:signalsl" + strings.Repeat(offer, 20) + "e6:target20:" + string(qID[:]),
			"7:signalsld2:id3:abceli1eei7ee",
			"7:signals3:abc",
			"6:signal" + offer,
			"6:signald2:id20:" + string(qID[:]) + "e",
			"6:signald2:id20:" + string(qID[:]) + "3:sdp5:junk!4:type6:answere",
			"6:signali1e",
		} {
			f.Add(uint8(m), []byte(args))
		}
	}
	f.Fuzz(func(t *testing.T, method uint8, args []byte) {
		m := methods[int(method)%len(methods)]
		synctest.Test(t, func(t *testing.T) {
			s := newRelaySetup(t, 10, nil, nil)
			raw, err := s.w.mem.Listen(netip.AddrPort{})
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			s.w.fake.Dial(raw.LocalAddr(), s.r.Addr())
			sig := s.w.fake.Signaler(raw.LocalAddr())
			a := string(args)
			for strings.Contains(a, fuzzOffer) {
				o, _ := sig.NewOffer(t.Context())
				a = strings.Replace(a, fuzzOffer, fmt.Sprintf("%d:%s", len(o.SDP()), o.SDP()), 1)
			}
			q := fmt.Sprintf("d1:ad2:id20:%s%se1:q%d:%s1:t2:aa1:y1:qe", qID[:], a, len(m), m)
			ping := fmt.Sprintf("d1:ad2:id20:%se1:q4:ping1:t2:zz1:y1:qe", qID[:])
			if err := raw.Send(s.r.Addr(), []byte(q)); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			if err := raw.Send(s.r.Addr(), []byte(ping)); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			for {
				p, err := raw.Receive(ctx)
				if err != nil {
					t.Fatalf("no answer to a ping after %s %q: %v", m, a, err)
				}
				var msg krpc.Msg
				if err := msg.UnmarshalBinary(p.Data); err != nil {
					t.Fatalf("the responder sent invalid KRPC %q after %s %q: %v", p.Data, m, a, err)
				}
				if msg.Y != krpc.TypeQuery && msg.T != "aa" && msg.T != "zz" {
					t.Fatalf("an answer under transaction %q: %q", msg.T, p.Data)
				}
				if msg.T == "zz" && msg.Y == krpc.TypeResponse {
					break
				}
			}
			if n := s.relays.Load(); n > DefaultMaxRelays {
				t.Fatalf("one %s query made %d relays, above MaxRelays %d", m, n, DefaultMaxRelays)
			}
		})
	})
}
