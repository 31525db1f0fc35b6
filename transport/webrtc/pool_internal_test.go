package webrtc

import (
	"errors"
	"fmt"
	"net/netip"
	"testing"
)

// reserveFor reserves a bare offer or answer (no PeerConnection) of kind for ip.
func reserveFor(t *Transport, kind poolKind, ip string) (*pending, error) {
	var addr netip.Addr
	if ip != "" {
		addr = netip.MustParseAddr(ip)
	}
	p := &pending{t: t, kind: kind, src: sourceKey(addr), opened: make(chan struct{}), ended: make(chan struct{})}
	return p, t.reserve(p)
}

func bareTransport(t *testing.T, cfg Config) *Transport {
	t.Helper()
	cfg.Loopback = true
	tr, err := New(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func ended(p *pending) bool {
	select {
	case <-p.ended:
		return true
	default:
		return false
	}
}

// The budgets, step by step: per source (IPv4 address, IPv6 /64), per pool, and
// max-min fair eviction when a pool is full.
func TestPoolFairness(t *testing.T) {
	tr := bareTransport(t, Config{MaxPending: 4, MaxPendingPerIP: 2})
	must := func(kind poolKind, ip string) *pending {
		t.Helper()
		p, err := reserveFor(tr, kind, ip)
		if err != nil {
			t.Fatalf("reserve %s for %q: %v", poolNames[kind], ip, err)
		}
		return p
	}
	refused := func(kind poolKind, ip string) {
		t.Helper()
		if _, err := reserveFor(tr, kind, ip); !errors.Is(err, ErrTooManyPending) {
			t.Fatalf("reserve %s for %q: %v, want ErrTooManyPending", poolNames[kind], ip, err)
		}
	}
	a1, a2 := must(poolServer, "192.0.2.1"), must(poolServer, "192.0.2.1")
	refused(poolServer, "192.0.2.1") // MaxPendingPerIP
	b1 := must(poolServer, "2001:db8::1")
	b2 := must(poolServer, "2001:db8::2")     // the same /64: its second
	refused(poolServer, "2001:db8:0:0:ff::9") // a third address in the /64
	// Full. The other budgets are untouched.
	for _, kind := range []poolKind{poolOwn, poolRelayed} {
		for range 4 {
			must(kind, "")
		}
		refused(kind, "")
	}
	// A newcomer evicts the oldest entry of a source holding the most: a1.
	c1 := must(poolServer, "192.0.2.3")
	if !ended(a1) || a1.err != errEvicted || !errors.Is(a1.err, ErrTooManyPending) {
		t.Fatalf("a1 not evicted: %v", a1.err)
	}
	if ended(a2) || ended(b1) || ended(b2) {
		t.Fatal("evicted more than one")
	}
	// The source that lost one (now 1) may take from the one holding 2 (b, oldest b1).
	a3 := must(poolServer, "192.0.2.1")
	if !ended(b1) {
		t.Fatal("b1 not evicted")
	}
	// Now a:2, b:1, c:1. c (1) may take from a (2): a2 is a's oldest.
	c2 := must(poolServer, "192.0.2.3")
	if !ended(a2) || ended(a3) {
		t.Fatal("a2 not evicted, or a3 evicted")
	}
	// a:1 (a3), b:1 (b2), c:2. b may take from c; then everyone holds at most what the
	// newcomer would: a source holding 1 cannot take from sources holding 1 or 2-1.
	must(poolServer, "2001:db8::7")
	if !ended(c1) || ended(c2) {
		t.Fatal("c1 not evicted, or c2 evicted")
	}
	// a:1, b:2, c:1: a fresh source may still enter (b holds 2).
	d := must(poolServer, "198.51.100.1")
	// a:1, b:1, c:1, d:1: a source holding 1 may not evict anyone.
	refused(poolServer, "192.0.2.1")
	// A fresh source evicts the oldest of those holding 1: a3, not the newest, d.
	must(poolServer, "198.51.100.2")
	if !ended(a3) || ended(d) {
		t.Fatal("a3 not evicted, or the newest d evicted")
	}
	if got := tr.Stats().Evicted; got != 6 {
		t.Errorf("Stats.Evicted = %d, want 6", got)
	}
	sizes := tr.poolSizes()
	if sizes[poolServer] != [2]int{4, 4} || sizes[poolOwn] != [2]int{4, 0} || sizes[poolRelayed] != [2]int{4, 0} {
		t.Errorf("pool sizes %v", sizes)
	}

	// Entries without a source are never evicted; a sourced one cannot enter a pool
	// full of them.
	tr2 := bareTransport(t, Config{MaxPending: 2})
	for range 2 {
		if _, err := reserveFor(tr2, poolRelayed, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reserveFor(tr2, poolRelayed, "192.0.2.1"); !errors.Is(err, ErrTooManyPending) {
		t.Fatalf("into a pool full of unsourced entries: %v", err)
	}

	// MaxConns counts every budget.
	tr3 := bareTransport(t, Config{MaxConns: 3})
	for i := range 3 {
		if _, err := reserveFor(tr3, poolKind(i), ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := reserveFor(tr3, poolServer, "192.0.2.1"); !errors.Is(err, ErrTooManyConnections) {
		t.Fatalf("beyond MaxConns: %v", err)
	}
}

// Closing releases every count: the maps return to empty.
func TestPoolRelease(t *testing.T) {
	tr := bareTransport(t, Config{MaxPending: 64, MaxPendingPerIP: 8})
	var ps []*pending
	for i := range 300 {
		kind := poolKind(i % int(numPools))
		ip := fmt.Sprintf("2001:db8:%x::1", i%50)
		if i%3 == 0 {
			ip = fmt.Sprintf("192.0.2.%d", i%70)
		}
		if p, err := reserveFor(tr, kind, ip); err == nil {
			ps = append(ps, p)
		}
	}
	for _, p := range ps {
		p.close(errAbandoned)
	}
	for kind, s := range tr.poolSizes() {
		if s != [2]int{0, 0} {
			t.Errorf("%s pool after closing everything: %d entries, %d sources", poolNames[kind], s[0], s[1])
		}
	}
	if n := tr.Stats().Pending; n != 0 {
		t.Errorf("Pending = %d", n)
	}
}
