package signals

import (
	"github.com/anacrolix/torrent/bencode"

	"github.com/wdht/wdht/dht"
)

// signal is one entry of "signals" or the "signal" of peer_connection: an offer
// {id, type:"offer", sdp, extensions}, an answer {id, type:"answer", sdp, extensions}, or
// the shortcut {id} ("I am that node" or "we are already connected").
type signal struct {
	ID         string   `bencode:"id"`
	Type       string   `bencode:"type,omitempty"`
	SDP        string   `bencode:"sdp,omitempty"`
	Extensions []string `bencode:"extensions,omitempty"`
}

// fullSignal is an offer or answer as the JS sends them: extensions always present.
type fullSignal struct {
	Extensions []string `bencode:"extensions"`
	ID         string   `bencode:"id"`
	SDP        string   `bencode:"sdp"`
	Type       string   `bencode:"type"`
}

func (s *signal) id() (dht.ID, bool) {
	var id dht.ID
	if len(s.ID) != len(id) {
		return id, false
	}
	copy(id[:], s.ID)
	return id, true
}

// encodeFull returns the bencoding of an offer or answer.
func encodeFull(typ, sdp string, id dht.ID, exts []string) bencode.Bytes {
	if exts == nil {
		exts = []string{}
	}
	return bencode.MustMarshal(fullSignal{Extensions: exts, ID: string(id[:]), SDP: sdp, Type: typ})
}

// encodeShortcut returns the bencoding of {id}.
func encodeShortcut(id dht.ID) bencode.Bytes {
	return bencode.MustMarshal(signal{ID: string(id[:])})
}

// decodeSignal decodes one signal; nil when it is not a dictionary of the right shape.
func decodeSignal(raw bencode.Bytes) *signal {
	var s signal
	if len(raw) == 0 || raw[0] != 'd' || bencode.Unmarshal(raw, &s) != nil {
		return nil
	}
	if _, ok := s.id(); !ok {
		return nil
	}
	return &s
}

// decodeList splits a bencoded list into its raw elements; nil when it is not a list.
func decodeList(raw bencode.Bytes) []bencode.Bytes {
	var elems []bencode.Bytes
	if len(raw) == 0 || raw[0] != 'l' || bencode.Unmarshal(raw, &elems) != nil {
		return nil
	}
	return elems
}

// encodeList bencodes raw elements as a list.
func encodeList(elems []bencode.Bytes) bencode.Bytes {
	b := []byte{'l'}
	for _, e := range elems {
		b = append(b, e...)
	}
	return append(b, 'e')
}
