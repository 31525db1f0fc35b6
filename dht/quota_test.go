package dht

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wdht/wdht/internal/bubble"
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

// TestPutSourceQuotaOverKRPC: over KRPC, one address flooding a node with 50
// announce_peer and 50 put queries gets its quotas stored (10 peers, 5 items; each put
// beyond is answered with a 202), while a well-behaved node's ping, announce and put
// during the flood are answered and stored; once the peers and items expire, the stores
// and their per-source counts are empty again and the node is back at its baseline.
func TestPutSourceQuotaOverKRPC(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ttl = 30 * time.Minute
		c := newCluster(t, nil)
		peers, err := NewPeerStore(&PeerStoreConfig{MaxPerSource: 10, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		items, err := NewItemStore(&ItemStoreConfig{MaxPerSource: 5, TTL: ttl})
		if err != nil {
			t.Fatal(err)
		}
		cfg := unlimited() // the subject is the stores' quotas, not the rate limits
		cfg.Peers, cfg.Items = peers, items
		cfg.MaintenanceInterval = time.Hour // the test sweeps
		a := c.add(cfg)
		flooder, good := c.add(nil), c.add(nil)
		synctest.Wait()
		goroutines := bubble.Goroutines()

		// announce and put each ask for a token first, as a client does.
		announce := func(n *Node, ih ID) error {
			args := &krpc.Args{}
			args.InfoHash = ih
			r, err := n.query(t.Context(), a.Addr(), nil, krpc.MethodGetPeers, args)
			if err != nil {
				return err
			}
			args = &krpc.Args{}
			port := 6881
			args.InfoHash, args.Port, args.Token = ih, &port, *r.Return.Token
			_, err = n.query(t.Context(), a.Addr(), nil, krpc.MethodAnnouncePeer, args)
			return err
		}
		put := func(n *Node, it *Item) error {
			args := &krpc.Args{}
			args.Target = it.Target()
			r, err := n.query(t.Context(), a.Addr(), nil, krpc.MethodGet, args)
			if err != nil {
				return err
			}
			_, err = n.query(t.Context(), a.Addr(), nil, krpc.MethodPut, putArgs(it, *r.Return.Token))
			return err
		}
		code := func(err error) int {
			var ke *krpc.Error
			if errors.As(err, &ke) {
				return ke.Code
			} else if err != nil {
				t.Error(err)
			}
			return 0
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		codes := map[string]int{}
		for i := range 50 {
			wg.Go(func() {
				err := announce(flooder, RandomID())
				mu.Lock()
				codes[fmt.Sprint("announce ", code(err))]++
				mu.Unlock()
			})
			wg.Go(func() {
				it, _ := NewImmutableItem(fmt.Sprint("flood ", i))
				err := put(flooder, it)
				mu.Lock()
				codes[fmt.Sprint("put ", code(err))]++
				mu.Unlock()
			})
		}
		// During the flood, a well-behaved node pings, announces and puts.
		ih := RandomID()
		it, _ := NewImmutableItem("well-behaved")
		if _, err := good.Ping(t.Context(), a.Addr()); err != nil {
			t.Fatalf("a well-behaved node's ping during the flood: %v", err)
		}
		if err := announce(good, ih); err != nil {
			t.Fatalf("a well-behaved node's announce during the flood: %v", err)
		}
		if err := put(good, it); err != nil {
			t.Fatalf("a well-behaved node's put during the flood: %v", err)
		}
		wg.Wait()
		if fmt.Sprint(codes) != "map[announce 0:50 put 0:5 put 202:45]" {
			t.Fatalf("the flood was answered %v, want every announce answered, 5 puts stored and 45 refused with 202", codes)
		}
		if _, n := peers.Len(); n != 10+1 {
			t.Fatalf("%d peers stored, want the flooder's quota of 10 and the well-behaved node's", n)
		}
		if n, _ := items.Len(); n != 5+1 {
			t.Fatalf("%d items stored, want the flooder's quota of 5 and the well-behaved node's", n)
		}
		if !containsAddr(peers.Peers(ih, 10), netip.AddrPortFrom(good.Addr().Addr(), 6881)) {
			t.Fatal("the well-behaved node's announce is not stored")
		}
		if _, ok := items.Get(it.Target()); !ok {
			t.Fatal("the well-behaved node's item is not stored")
		}

		time.Sleep(ttl + time.Minute)
		peers.Sweep()
		items.Sweep()
		if _, n := peers.Len(); n != 0 || len(peers.sources) != 0 {
			t.Fatalf("after expiry: %d peers, %d sources counted", n, len(peers.sources))
		}
		if n, _ := items.Len(); n != 0 || len(items.sources) != 0 {
			t.Fatalf("after expiry: %d items, %d sources counted", n, len(items.sources))
		}
		atBaseline(t, a, goroutines)
	})
}
