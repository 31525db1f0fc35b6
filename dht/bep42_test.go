package dht

import (
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wdht/wdht/internal/bubble"
)

// The example table of BEP 42.
func TestBEP42Vectors(t *testing.T) {
	for _, c := range []struct{ ip, id string }{
		{"124.31.75.21", "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"},
		{"21.75.31.124", "5a3ce9c14e7a08645677bbd1cfe7d8f956d53256"},
		{"65.23.51.170", "a5d43220bc8f112a3d426c84764f8c2a1150e616"},
		{"84.124.73.14", "1b0321dd1bb1fe518101ceef99462b947a01ff41"},
		{"43.213.53.83", "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"},
	} {
		ip := netip.MustParseAddr(c.ip)
		id, err := ParseID(c.id)
		if err != nil {
			t.Fatal(err)
		}
		if !VerifyID(id, ip) {
			t.Errorf("%s: the BEP's ID %s does not verify", c.ip, c.id)
		}
		// Our derivation gives the same 21 bits for the same r.
		crc := bep42Prefix(ip, id[19])
		if id[0] != byte(crc>>24) || id[1] != byte(crc>>16) || id[2]&0xf8 != byte(crc>>8)&0xf8 {
			t.Errorf("%s: prefix %08x does not match %s", c.ip, crc, c.id)
		}
		other := netip.MustParseAddr("203.0.113.9")
		if VerifyID(id, other) {
			t.Errorf("%s's ID verifies for %s too", c.ip, other)
		}
	}
}

func TestSecureID(t *testing.T) {
	for _, s := range []string{"203.0.113.9", "198.51.100.200", "2001:db8::1", "2a00:1450:4001:81b::200e"} {
		ip := netip.MustParseAddr(s)
		for range 20 {
			id := SecureID(ip)
			if !VerifyID(id, ip) {
				t.Fatalf("SecureID(%s) = %v does not verify", ip, id)
			}
		}
	}
	for _, s := range []string{"10.1.2.3", "127.0.0.1", "192.168.1.1", "172.20.0.1", "169.254.1.1", "::1", "fd00::1", "fe80::1"} {
		ip := netip.MustParseAddr(s)
		if !ExemptIP(ip) || VerifyID(SecureID(ip), ip) {
			t.Errorf("%s should be exempt", ip)
		}
	}
	if ExemptIP(netip.MustParseAddr("8.8.8.8")) {
		t.Error("8.8.8.8 exempt")
	}
}

func TestIPVotes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		votes  []string // "reporter said", the last decides or not
		decide string   // what the last vote decides ("": nothing)
	}{
		{"one reporter repeating itself", []string{"198.51.100.1 203.0.113.9", "198.51.100.1 203.0.113.9", "198.51.100.1 203.0.113.9"}, ""},
		{"three reporters of one /24", []string{"198.51.100.1 203.0.113.9", "198.51.100.2 203.0.113.9", "198.51.100.3 203.0.113.9"}, ""},
		{"three addresses of one IPv6 /64", []string{"2001:db8::1 203.0.113.9", "2001:db8::2 203.0.113.9", "2001:db8::3 203.0.113.9"}, ""},
		{"three /24s", []string{"198.51.100.1 203.0.113.9", "198.51.101.1 203.0.113.9", "198.51.102.1 203.0.113.9"}, "203.0.113.9"},
		{"three /64s", []string{"2001:db8:0:1::1 203.0.113.9", "2001:db8:0:2::1 203.0.113.9", "2001:db8:0:3::1 203.0.113.9"}, "203.0.113.9"},
		{"three /24s against two", []string{"198.51.100.1 192.0.2.200", "198.51.101.1 192.0.2.200", "198.51.110.1 203.0.113.9", "198.51.111.1 203.0.113.9", "198.51.112.1 203.0.113.9"}, ""},
		{"three /24s against one", []string{"198.51.100.1 192.0.2.200", "198.51.110.1 203.0.113.9", "198.51.111.1 203.0.113.9", "198.51.112.1 203.0.113.9"}, "203.0.113.9"},
		{"a /24 changes its vote", []string{"198.51.100.1 203.0.113.9", "198.51.101.1 203.0.113.9", "198.51.102.1 203.0.113.9", "198.51.100.1 192.0.2.200", "198.51.101.1 192.0.2.200", "198.51.102.2 192.0.2.200"}, "192.0.2.200"},
	} {
		var v bep42Votes
		var got netip.Addr
		var ok bool
		for _, vote := range tc.votes {
			f := strings.Fields(vote)
			got, ok = v.add(netip.MustParseAddr(f[1]), netip.MustParseAddr(f[0]))
		}
		if want := tc.decide; (want == "") == ok || ok && got.String() != want {
			t.Errorf("%s: decided %v %v, want %q", tc.name, got, ok, want)
		}
	}
	// The votes kept are bounded, whatever the number of networks voting.
	var v bep42Votes
	for i := range 1000 {
		v.add(netip.MustParseAddr("203.0.113.9"), netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}))
	}
	if len(v.voters) > maxVoters || cap(v.voters) > maxVoters {
		t.Fatalf("%d votes kept (room for %d), want at most %d", len(v.voters), cap(v.voters), maxVoters)
	}
	checkVotes(t, &v)
}

// checkVotes checks bep42Votes' bookkeeping: every claimed IP has voters, and its count
// is the number of voters whose index points at it.
func checkVotes(t *testing.T, v *bep42Votes) {
	t.Helper()
	counts := make([]int, len(v.claimed))
	for _, x := range v.voters {
		if int(x.ip) >= len(counts) {
			t.Fatalf("voter %+v points past the %d claimed IPs", x, len(v.claimed))
		}
		counts[x.ip]++
	}
	for i, c := range v.claimed {
		if c.voters != counts[i] || c.voters == 0 {
			t.Fatalf("claimed %v counts %d voters, %d point at it", c.ip, c.voters, counts[i])
		}
	}
}

// TestIPVotesModel checks the packed votes against a map from network to claim (what
// they replaced), over random votes of up to maxVoters networks of both families (an
// IPv4 /24 and an IPv6 /64 of the same 64-bit value are different networks) for a few
// IPs.
func TestIPVotesModel(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	ips := []netip.Addr{netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("192.0.2.200"), netip.MustParseAddr("2001:db8::9")}
	for range 200 {
		var v bep42Votes
		model := map[netip.Prefix]netip.Addr{}
		for range 300 {
			var reporter netip.Addr
			n := r.IntN(maxVoters / 2)
			if r.IntN(2) == 0 { // 198.51.n.x and ::c6:33nn:0:0:x: /24 and /64 of the same bits
				reporter = netip.AddrFrom4([4]byte{198, 51, byte(n), byte(r.IntN(256))})
			} else {
				reporter = netip.AddrFrom16([16]byte{5: 198, 6: 51, 7: byte(n), 15: byte(r.IntN(256))})
			}
			ip := ips[r.IntN(len(ips))]
			got, ok := v.add(ip, reporter)
			bits := 64
			if reporter.Is4() {
				bits = 24
			}
			model[netip.PrefixFrom(reporter, bits).Masked()] = ip
			agree := 0
			for _, said := range model {
				if said == ip {
					agree++
				}
			}
			want := agree >= ipVotesNeeded && 3*agree >= 2*len(model)
			if ok != want || ok && got != ip {
				t.Fatalf("add(%v, %v) = %v %v, want %v (model %v)", ip, reporter, got, ok, want, model)
			}
			if len(v.voters) != len(model) {
				t.Fatalf("%d voters, the model has %d", len(v.voters), len(model))
			}
			checkVotes(t, &v)
		}
	}
}

// A node with a random ID on a public address takes a secure one once three nodes tell it
// its address, keeps its table, and stays reachable under the new ID.
func TestNodeTakesSecureID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		var peers []*Node
		for i := range 4 {
			tr, err := c.net.Listen(netip.MustParseAddrPort(fmt.Sprintf("198.51.%d.1:6881", 100+i))) // four /24s
			if err != nil {
				t.Fatal(err)
			}
			n, err := New(tr, &Config{KeepID: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { n.Close(); tr.Close() })
			peers = append(peers, n)
		}
		for _, p := range peers[1:] {
			p.Bootstrap(t.Context(), peers[0].Addr())
		}
		synctest.Wait()
		tr, err := c.net.Listen(netip.MustParseAddrPort("203.0.113.10:6881"))
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		x, err := New(tr, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		old := x.ID()
		if _, err := x.Bootstrap(t.Context(), peers[0].Addr()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		st := x.Stats()
		if st.ExternalIP != netip.MustParseAddr("203.0.113.10") || !st.SecureID || st.ID == old {
			t.Fatalf("after bootstrap: external IP %v, secure %v, id %v (was %v)", st.ExternalIP, st.SecureID, st.ID, old)
		}
		if got := len(x.Nodes()); got != 4 {
			t.Fatalf("table after the change of ID holds %d nodes, want 4", got)
		}
		if id, err := peers[2].Ping(t.Context(), x.Addr()); err != nil || id != x.ID() {
			t.Fatalf("ping to the node under its new ID: %v, %v", id, err)
		}
		// The peers kept their IDs (KeepID), and a node on a private address never changes.
		for _, p := range peers {
			if p.Stats().SecureID {
				t.Fatal("a KeepID node changed its ID")
			}
		}
	})
}

// Four nodes of one /24 that tell a node its address, 50 times each, do not make it
// change its ID: they are one vote. Meanwhile the node answers a well-behaved node's
// ping under its ID, keeps one vote per network, and is back at its baseline after.
func TestOneNetworkCannotChangeID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		var peers []*Node
		for i := range 4 {
			tr, err := c.net.Listen(netip.MustParseAddrPort(fmt.Sprintf("198.51.100.%d:6881", i+1)))
			if err != nil {
				t.Fatal(err)
			}
			n, err := New(tr, &Config{KeepID: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { n.Close(); tr.Close() })
			peers = append(peers, n)
		}
		for _, p := range peers[1:] {
			p.Bootstrap(t.Context(), peers[0].Addr())
		}
		synctest.Wait()
		tr, err := c.net.Listen(netip.MustParseAddrPort("203.0.113.10:6881"))
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		x, err := New(tr, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		gtr, err := c.net.Listen(netip.MustParseAddrPort("192.0.2.77:6881"))
		if err != nil {
			t.Fatal(err)
		}
		defer gtr.Close()
		good, err := New(gtr, &Config{KeepID: true})
		if err != nil {
			t.Fatal(err)
		}
		defer good.Close()
		old := x.ID()
		if _, err := x.Bootstrap(t.Context(), peers[0].Addr()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		goroutines := bubble.Goroutines()
		for range 50 {
			for _, p := range peers { // every one of them answers a query of x
				if _, err := x.Ping(t.Context(), p.Addr()); err != nil {
					t.Fatal(err)
				}
			}
			if id, err := good.Ping(t.Context(), x.Addr()); err != nil || id != old {
				t.Fatalf("a well-behaved node's ping during the reports: %v %v, want the ID %v", id, err, old)
			}
		}
		synctest.Wait()
		if st := x.Stats(); st.ID != old || st.ExternalIP.IsValid() {
			t.Fatalf("reporters of one /24 changed the node's ID to %v (was %v), external IP %v", st.ID, old, st.ExternalIP)
		}
		x.mu.Lock()
		votes := len(x.votes.voters)
		x.mu.Unlock()
		if votes != 2 { // x verified the well-behaved node with a ping: its answer votes too
			t.Fatalf("%d votes kept, want one for the reporters' /24 and one for the well-behaved node's", votes)
		}
		atBaseline(t, x, goroutines)
	})
}

func TestPrivateAddressKeepsID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		nodes := []*Node{c.add(nil), c.add(nil), c.add(nil), c.add(nil)}
		ids := make([]ID, len(nodes))
		for i, n := range nodes {
			ids[i] = n.ID()
			if i > 0 {
				n.Bootstrap(t.Context(), nodes[0].Addr())
			}
		}
		synctest.Wait()
		for i, n := range nodes {
			if n.ID() != ids[i] {
				t.Fatalf("node %d on %v changed its ID", i, n.Addr())
			}
		}
	})
}

func TestTablePrefersSecureIDs(t *testing.T) {
	now := time.Now()
	self := RandomID()
	tb := newTable(self, 2, 2, now)
	tb.split() // bucket 0 no longer splits
	public := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 6881)
	}
	farID := func(id ID) ID { // force the first bit away from ours: bucket 0
		id[0] = id[0]&0x7f | ^self[0]&0x80
		return id
	}
	a := NodeInfo{ID: farID(RandomID()), Addr: public(1)}
	b := NodeInfo{ID: farID(RandomID()), Addr: public(2)}
	tb.responded(a, now)
	tb.responded(b, now.Add(time.Second))
	var sec NodeInfo
	for { // a secure ID for 198.51.100.3 that falls in bucket 0
		sec = NodeInfo{ID: SecureID(netip.MustParseAddr("198.51.100.3")), Addr: public(3)}
		if commonPrefixLen(&self, &sec.ID) == 0 {
			break
		}
	}
	if added, _ := tb.responded(sec, now.Add(2*time.Second)); !added {
		t.Fatal("a secure node did not displace an insecure one from a full bucket")
	}
	if tb.contains(a.ID) || !tb.contains(b.ID) {
		t.Fatal("the wrong insecure node was displaced (want the one that answered longest ago)")
	}
	if len(tb.buckets[0].repl) != 1 || tb.buckets[0].repl[0].ID != a.ID {
		t.Fatal("the displaced node is not in the replacement cache")
	}

	enf := newTable(self, 8, 2, now)
	enf.enforce = true
	if added, _ := enf.responded(NodeInfo{ID: RandomID(), Addr: public(9)}, now); added {
		t.Fatal("enforcement let an insecure node in")
	}
	if added, _ := enf.responded(NodeInfo{ID: RandomID(), Addr: netip.MustParseAddrPort("10.0.0.9:6881")}, now); !added {
		t.Fatal("enforcement refused a node on an exempt address")
	}
	if added, _ := enf.responded(sec, now); !added {
		t.Fatal("enforcement refused a secure node")
	}
}
