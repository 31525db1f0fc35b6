package signals

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/anacrolix/torrent/bencode"

	"github.com/wdht/wdht/krpc"
)

// SetPeers and plainPeers round-trip IPv4 and IPv6 addresses; malformed input from a
// responder gives no addresses (or skips the bad entries), never a panic; a querier
// takes at most MaxPeers.
func TestPlainPeers(t *testing.T) {
	peers := []netip.AddrPort{
		netip.MustParseAddrPort("1.2.3.4:6881"),
		netip.MustParseAddrPort("[2001:db8::1]:51413"),
		netip.MustParseAddrPort("[::ffff:5.6.7.8]:80"), // sent as IPv4
	}
	r := &krpc.Return{}
	SetPeers(r, peers)
	got := plainPeers(r.Extra[PeersKey])
	want := []netip.AddrPort{peers[0], peers[1], netip.MustParseAddrPort("5.6.7.8:80")}
	if !slices.Equal(got, want) {
		t.Errorf("round trip: %v, want %v", got, want)
	}
	SetPeers(r, nil)
	if _, ok := r.Extra[PeersKey]; ok {
		t.Error("SetPeers(nil) left the key")
	}

	many := make([]netip.AddrPort, 3*MaxPeers)
	for i := range many {
		many[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 1000)
	}
	SetPeers(r, many)
	if got := plainPeers(r.Extra[PeersKey]); len(got) != MaxPeers {
		t.Errorf("SetPeers of %d peers: %d decoded, want %d", len(many), len(got), MaxPeers)
	}
	long := []byte{'l'}
	for range 3 * MaxPeers {
		long = append(long, "6:\x0a\x00\x00\x01\x00\x50"...)
	}
	if got := plainPeers(append(long, 'e')); len(got) != MaxPeers {
		t.Errorf("a response with %d peers: %d taken, want %d", 3*MaxPeers, len(got), MaxPeers)
	}

	for _, tc := range []struct {
		name string
		raw  string
		want int
	}{
		{"absent", "", 0},
		{"not a list", "6:\x01\x02\x03\x04\x00\x50", 0},
		{"truncated", "l6:\x01\x02\x03", 0},
		{"a dictionary", "d1:a6:\x01\x02\x03\x04\x00\x50e", 0},
		{"a list with a non-string", "l5:\x01\x02\x03\x04\x00" + "6:\x01\x02\x03\x04\x00\x50" + "i1ee", 0},
		{"bad lengths and ports skipped", "l5:\x01\x02\x03\x04\x00" + "6:\x01\x02\x03\x04\x00\x50" + "6:\x01\x02\x03\x04\x00\x00" + "6:\x00\x00\x00\x00\x00\x50e", 1},
	} {
		if got := plainPeers(bencode.Bytes(tc.raw)); len(got) != tc.want {
			t.Errorf("%s: %v, want %d addresses", tc.name, got, tc.want)
		}
	}
}

// FuzzPlainPeers: whatever a responder puts under PeersKey, decoding never panics, takes
// at most MaxPeers usable addresses, and what it takes encodes and decodes unchanged.
func FuzzPlainPeers(f *testing.F) {
	r := &krpc.Return{}
	SetPeers(r, []netip.AddrPort{netip.MustParseAddrPort("1.2.3.4:6881"), netip.MustParseAddrPort("[2001:db8::1]:1")})
	f.Add([]byte(r.Extra[PeersKey]))
	f.Add([]byte("l5:\x01\x02\x03\x04\x006:\x00\x00\x00\x00\x00\x50i1ee"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got := plainPeers(bencode.Bytes(raw))
		if len(got) > MaxPeers {
			t.Fatalf("%d addresses taken, more than %d", len(got), MaxPeers)
		}
		for _, p := range got {
			if p.Port() == 0 || !p.Addr().IsValid() || p.Addr().IsUnspecified() || p.Addr().Is4In6() {
				t.Fatalf("unusable address %v taken", p)
			}
		}
		r := &krpc.Return{}
		SetPeers(r, got)
		if again := plainPeers(r.Extra[PeersKey]); !slices.Equal(again, got) {
			t.Fatalf("re-encoded %v, decoded %v", got, again)
		}
	})
}
