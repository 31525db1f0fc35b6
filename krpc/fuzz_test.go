package krpc

import (
	"bytes"
	"testing"
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
