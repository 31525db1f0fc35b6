package signals

import (
	"net/netip"
	"strconv"

	"github.com/anacrolix/torrent/bencode"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/krpc"
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

// PeersKey is the key of a get_peers response that carries peers which are not WebRTC
// peers of the responder: compact addresses (6 or 18 bytes, as in "values") to which no
// offer is relayed, such as the mainline peers a bridge stores. A querier that can open
// BitTorrent connections (a hybrid client) uses them; the WebTorrent wire has no place
// for them, since a responder's "values" are one to one with its "signals" and a JS
// querier keeps only the values it connected to. A responder sets it with SetPeers; our
// querier adds them to the response's values after the peers it connected to.
const PeersKey = "peers"

// MaxPeers bounds the addresses a querier takes from one response's PeersKey.
const MaxPeers = 100

// SetPeers puts peers under PeersKey in r (at most MaxPeers; none removes the key).
func SetPeers(r *krpc.Return, peers []netip.AddrPort) {
	if len(peers) == 0 {
		delete(r.Extra, PeersKey)
		return
	}
	b := []byte{'l'}
	for _, p := range peers[:min(len(peers), MaxPeers)] {
		ip := p.Addr().Unmap()
		c := append(ip.AsSlice(), byte(p.Port()>>8), byte(p.Port()))
		b = append(b, strconv.Itoa(len(c))...)
		b = append(b, ':')
		b = append(b, c...)
	}
	if r.Extra == nil {
		r.Extra = krpc.Extra{}
	}
	r.Extra[PeersKey] = append(b, 'e')
}

// plainPeers decodes PeersKey: at most MaxPeers valid addresses (port not 0); malformed
// entries are skipped, a malformed list gives none.
func plainPeers(raw bencode.Bytes) []netip.AddrPort {
	var elems []string
	if len(raw) == 0 || raw[0] != 'l' || bencode.Unmarshal(raw, &elems) != nil {
		return nil
	}
	var out []netip.AddrPort
	for _, e := range elems {
		if len(out) == MaxPeers {
			break
		}
		if len(e) != 6 && len(e) != 18 {
			continue
		}
		ip, _ := netip.AddrFromSlice([]byte(e[:len(e)-2]))
		port := uint16(e[len(e)-2])<<8 | uint16(e[len(e)-1])
		if port == 0 || !ip.IsValid() || ip.IsUnspecified() {
			continue
		}
		out = append(out, netip.AddrPortFrom(ip.Unmap(), port))
	}
	return out
}
