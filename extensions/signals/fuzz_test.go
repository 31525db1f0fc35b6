package signals

import (
	"bytes"
	"slices"
	"testing"

	"github.com/anacrolix/torrent/bencode"

	"github.com/wdht/wdht/dht"
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
