package dht

import (
	"encoding/json"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"
)

func TestTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tk := newTokens(5 * time.Minute)
		ip, other := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
		ih, ih2 := RandomID(), RandomID()
		tok := tk.create(ip, ih, time.Now())
		for _, c := range []struct {
			name  string
			tok   string
			ip    netip.Addr
			ih    ID
			after time.Duration
			ok    bool
		}{
			{"fresh", tok, ip, ih, 0, true},
			{"other IP", tok, other, ih, 0, false},
			{"other target", tok, ip, ih2, 0, false},
			{"IPv4-mapped form of the same IP", tok, netip.AddrFrom16(ip.As16()), ih, 0, true},
			{"truncated", tok[:4], ip, ih, 0, false},
			{"after one rotation", tok, ip, ih, 5 * time.Minute, true},
			{"after two rotations", tok, ip, ih, 10 * time.Minute, false},
		} {
			if got := tk.valid(c.tok, c.ip, c.ih, time.Now().Add(c.after)); got != c.ok {
				t.Errorf("%s: valid = %v, want %v", c.name, got, c.ok)
			}
		}
	})
}

func TestPeerStoreExpiryAndCaps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := NewPeerStore(&PeerStoreConfig{TTL: time.Minute, MaxPerInfohash: 3, MaxPeers: 5})
		if err != nil {
			t.Fatal(err)
		}
		ih, ih2 := RandomID(), RandomID()
		for i := range 4 { // one over the per-infohash cap: the oldest goes
			s.Add(ih, addrN(i))
			time.Sleep(time.Second)
		}
		got := s.Peers(ih, 10)
		if len(got) != 3 || containsAddr(got, addrN(0)) {
			t.Fatalf("peers %v: want the 3 newest", got)
		}
		for i := range 4 { // over the total cap: the total stays at 5
			s.Add(ih2, addrN(10+i))
		}
		if _, n := s.Len(); n != 5 {
			t.Fatalf("%d peers stored, want the cap of 5", n)
		}
		if got := s.Peers(ih2, 2); len(got) != 2 {
			t.Fatalf("max not honoured: %v", got)
		}
		// Re-announcing refreshes; everything else expires.
		time.Sleep(50 * time.Second)
		s.Add(ih2, addrN(10))
		time.Sleep(20 * time.Second)
		if n := s.Sweep(); n != 4 {
			t.Fatalf("swept %d, want 4", n)
		}
		if ihs, n := s.Len(); ihs != 1 || n != 1 {
			t.Fatalf("after sweep: %d infohashes, %d peers", ihs, n)
		}
		if got := s.Peers(ih2, 10); len(got) != 1 || got[0] != addrN(10) {
			t.Fatalf("refreshed peer: %v", got)
		}
		if got := s.Infohashes(10); len(got) != 1 || got[0] != ih2 {
			t.Fatalf("infohashes %v", got)
		}
	})
}

func TestPeerStoreConfig(t *testing.T) {
	if _, err := NewPeerStore(&PeerStoreConfig{TTL: -1}); err == nil {
		t.Fatal("negative TTL accepted")
	}
	s, err := NewPeerStore(&PeerStoreConfig{MaxPerInfohash: 1})
	if err != nil {
		t.Fatal(err)
	}
	ih := RandomID()
	s.Add(ih, addrN(1))
	s.Add(ih, addrN(2))
	if got := s.Peers(ih, 5); len(got) != 1 || got[0] != addrN(2) {
		t.Fatalf("cap of one: %v", got)
	}
}

func containsAddr(s []netip.AddrPort, a netip.AddrPort) bool {
	for _, x := range s {
		if x == a {
			return true
		}
	}
	return false
}

func TestStateJSON(t *testing.T) {
	st := State{ID: RandomID(), Nodes: []NodeInfo{
		{ID: RandomID(), Addr: netip.MustParseAddrPort("192.0.2.1:6881")},
		{ID: RandomID(), Addr: netip.MustParseAddrPort("[2001:db8::1]:6882")},
	}}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.ID != st.ID || len(back.Nodes) != 2 || back.Nodes[0] != st.Nodes[0] || back.Nodes[1] != st.Nodes[1] {
		t.Fatalf("round trip: %+v -> %s -> %+v", st, b, back)
	}
	// bittorrent-dht's toJSON form: addresses without IDs.
	if err := json.Unmarshal([]byte(`{"nodes":[{"host":"127.0.0.1","port":16881}]}`), &back); err != nil {
		t.Fatal(err)
	}
	if back.ID != (ID{}) || len(back.Nodes) != 0 || len(back.Bootstrap) != 1 || back.Bootstrap[0] != "127.0.0.1:16881" {
		t.Fatalf("bittorrent-dht form: %+v", back)
	}
	// Bootstrap nodes with names survive a round trip.
	st = State{ID: RandomID(), Bootstrap: []string{"dht.example.org:16881", "[2001:db8::1]:6881"}}
	b, err = json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &back); err != nil || back.ID != st.ID || len(back.Bootstrap) != 2 ||
		back.Bootstrap[0] != st.Bootstrap[0] || back.Bootstrap[1] != st.Bootstrap[1] {
		t.Fatalf("bootstrap names: %s -> %+v (%v)", b, back, err)
	}
	if _, err := json.Marshal(State{Bootstrap: []string{"no-port"}}); err == nil {
		t.Fatal("a bootstrap entry without a port was saved")
	}
	nodeWithID := `{"nodes":[{"id":"` + RandomID().String() + `","host":"nope","port":1}]}`
	for _, bad := range []string{`{"id":"xyz"}`, nodeWithID, `{"nodes":[{"host":"1.2.3.4"}]}`, `{"nodes":[{"port":1}]}`, `[]`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
