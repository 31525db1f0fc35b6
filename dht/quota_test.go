package dht

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wdht/wdht/krpc"
)

// TestPeerStoreSourceQuota: one IPv4 address, or the addresses of one IPv6 /64, cannot
// hold more than MaxPerSource peers (default MaxPeers/100); other sources still add
// theirs, a source at its quota still refreshes its own, and once its peers expire the
// store forgets the source.
func TestPeerStoreSourceQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := NewPeerStore(&PeerStoreConfig{TTL: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		const quota = 100_000 / 100 // the default
		v4 := netip.MustParseAddr("198.51.100.7")
		ihs := make([]ID, 2*quota)
		for i := range ihs {
			ihs[i] = RandomID()
			s.Add(ihs[i], netip.AddrPortFrom(v4, uint16(1000+i%1000)))
		}
		if _, n := s.Len(); n != quota {
			t.Fatalf("one IPv4 address holds %d peers, want the quota %d", n, quota)
		}
		for i := range 2 * quota { // 2,000 addresses of one /64
			ip := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, byte(i >> 8), byte(i)})
			s.Add(ihs[i], netip.AddrPortFrom(ip, 6881))
		}
		if _, n := s.Len(); n != 2*quota {
			t.Fatalf("one IPv6 /64 brought the store to %d peers, want %d (its quota more)", n, 2*quota)
		}
		other := netip.AddrPortFrom(netip.MustParseAddr("203.0.113.9"), 6881)
		s.Add(ihs[0], other)
		if !containsAddr(s.Peers(ihs[0], 500), other) {
			t.Fatal("another source cannot add a peer while one is at its quota")
		}
		// The source at its quota refreshes its first peer; the rest expire.
		time.Sleep(50 * time.Second)
		first := netip.AddrPortFrom(v4, 1000)
		s.Add(ihs[0], first)
		time.Sleep(20 * time.Second)
		s.Sweep()
		if got := s.Peers(ihs[0], 500); !containsAddr(got, first) {
			t.Fatalf("the refreshed peer expired: %v", got)
		}
		// The others left: the source may add again, and the store counts it right.
		s.Add(ihs[1], netip.AddrPortFrom(v4, 2))
		if _, n := s.Len(); n != 2 {
			t.Fatalf("%d peers after expiry and one new, want 2", n)
		}
		time.Sleep(2 * time.Minute)
		s.Sweep()
		if len(s.sources) != 0 {
			t.Fatalf("an empty store still counts %d sources", len(s.sources))
		}
	})
}

// TestItemStoreSourceQuota: one address, or one IPv6 /64, cannot put more than
// MaxPerSource new items (default MaxItems/100); the put beyond is refused with
// ErrSourceQuota, updates of stored items still pass, other sources and local puts
// are not limited, and expiry frees the quota.
func TestItemStoreSourceQuota(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := NewItemStore(&ItemStoreConfig{TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		const quota = 10_000 / 100 // the default
		item := func(i int) *Item {
			it, err := NewImmutableItem(fmt.Sprintf("item %d", i))
			if err != nil {
				t.Fatal(err)
			}
			return it
		}
		src := netip.MustParseAddr("2001:db8:1:2::1")
		refused := 0
		for i := range 2 * quota {
			from := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, byte(i)})
			if err := s.PutFrom(item(i), nil, from); errors.Is(err, ErrSourceQuota) {
				refused++
			} else if err != nil {
				t.Fatal(err)
			}
		}
		if n, _ := s.Len(); n != quota || refused != quota {
			t.Fatalf("one /64 stored %d items (%d refused), want the quota %d", n, refused, quota)
		}
		if err := s.PutFrom(item(0), nil, src); err != nil {
			t.Fatalf("a source at its quota cannot refresh a stored item: %v", err)
		}
		if err := s.PutFrom(item(10_000), nil, netip.MustParseAddr("198.51.100.1")); err != nil {
			t.Fatalf("another source: %v", err)
		}
		if err := s.Put(item(10_001), nil); err != nil {
			t.Fatalf("a local put: %v", err)
		}
		time.Sleep(2 * time.Hour)
		s.Sweep()
		if err := s.PutFrom(item(5000), nil, src); err != nil {
			t.Fatalf("the quota is not freed once the items expired: %v", err)
		}
		if len(s.sources) != 1 {
			t.Fatalf("the store counts %d sources, want the one with an item", len(s.sources))
		}
	})
}

// TestPutSourceQuotaOverKRPC: a put over the quota is answered with a 202 error.
func TestPutSourceQuotaOverKRPC(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		items, err := NewItemStore(&ItemStoreConfig{MaxPerSource: 2})
		if err != nil {
			t.Fatal(err)
		}
		a := c.add(&Config{Items: items})
		cli := c.add(nil)
		var codes []int
		for i := range 3 {
			it, _ := NewImmutableItem(i)
			args := &krpc.Args{}
			args.Target = it.Target()
			r, err := cli.query(t.Context(), a.Addr(), nil, krpc.MethodGet, args)
			if err != nil {
				t.Fatal(err)
			}
			_, err = cli.query(t.Context(), a.Addr(), nil, krpc.MethodPut, putArgs(it, *r.Return.Token))
			var ke *krpc.Error
			code := 0
			if errors.As(err, &ke) {
				code = ke.Code
			} else if err != nil {
				t.Fatal(err)
			}
			codes = append(codes, code)
		}
		if fmt.Sprint(codes) != "[0 0 202]" {
			t.Fatalf("puts answered %v, want [0 0 202]", codes)
		}
	})
}
