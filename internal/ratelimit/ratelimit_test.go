package ratelimit

import (
	"context"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"
)

func TestBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBucket(10, 5)
		for i := range 5 {
			if !b.Allow() {
				t.Fatalf("token %d refused from a full bucket", i)
			}
		}
		if b.Allow() {
			t.Fatal("empty bucket allowed")
		}
		time.Sleep(100 * time.Millisecond) // fake time: one token
		if !b.Allow() || b.Allow() {
			t.Fatal("refill after 100ms should give exactly one token")
		}
		start := time.Now()
		if err := b.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 100*time.Millisecond {
			t.Fatalf("Wait took %v, want 100ms", got)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		defer cancel()
		if err := b.Wait(ctx); err == nil {
			t.Fatal("Wait returned before a token was due")
		}
	})
}

func TestUnlimited(t *testing.T) {
	var b *Bucket = NewBucket(-1, 0)
	var p *PerSource = NewPerSource(-1, 0, 0)
	for range 1000 {
		if !b.Allow() || !p.Allow(netip.MustParseAddr("1.2.3.4")) {
			t.Fatal("unlimited limiter refused")
		}
	}
}

func TestPerSourceIsolatesSources(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := NewPerSource(1, 3, 100)
		flood, quiet := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
		allowed := 0
		for range 1000 {
			if p.Allow(flood) {
				allowed++
			}
		}
		if allowed != 3 {
			t.Fatalf("flooding source got %d packets through, want the burst of 3", allowed)
		}
		if !p.Allow(quiet) {
			t.Fatal("a flood from one source starved another")
		}
	})
}

func TestPerSourceBounded(t *testing.T) {
	p := NewPerSource(1, 1, 100)
	for i := range 100_000 {
		p.Allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	if n := p.Len(); n > 100 {
		t.Fatalf("tracking %d sources, want at most 100", n)
	}
	// A recently limited source is remembered across one generation change.
	src := netip.MustParseAddr("192.0.2.1")
	p.Allow(src)
	for i := range 10 {
		p.Allow(netip.AddrFrom4([4]byte{11, 0, 0, byte(i)}))
	}
	if p.Allow(src) {
		t.Fatal("source forgotten too early")
	}
}

func TestSourceKey(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"},
		{"2001:db8:1:2::1", "2001:db8:1:2::"},
		{"fe80::1%eth0", "fe80::"},
	} {
		if got := SourceKey(netip.MustParseAddr(tc.in)); got != netip.MustParseAddr(tc.want) {
			t.Errorf("SourceKey(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if SourceKey(netip.Addr{}).IsValid() {
		t.Error("SourceKey of the zero Addr is valid")
	}
}

// A limited source must not get a fresh burst back by being pushed out of the table: a
// flood of new sources that rotates the generations quickly makes a forgotten source
// start with one packet, while sources arriving slowly still start with the full burst.
// A well-behaved source's packet passes in every round of the flood, and the table
// stays within MaxSources.
func TestPerSourceRotationNoFreshBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const burst = 50
		p := NewPerSource(10, burst, 100) // generations of 50 sources
		src := netip.MustParseAddr("192.0.2.1")
		for range burst {
			if !p.Allow(src) {
				t.Fatal("burst refused")
			}
		}
		if p.Allow(src) {
			t.Fatal("limited source allowed")
		}
		for round := range 5 {
			// MaxSources/2 new sources, twice: the limited source is in neither generation.
			for i := range 100 {
				p.Allow(netip.AddrFrom4([4]byte{10, byte(round), 0, byte(i)}))
			}
			got := 0
			for range burst {
				if p.Allow(src) {
					got++
				}
			}
			if got > 1 {
				t.Fatalf("round %d: a limited source forgotten under pressure came back with %d packets, want at most 1", round, got)
			}
			// A well-behaved source, one packet a round, forgotten or not, passes.
			if !p.Allow(netip.MustParseAddr("192.0.2.9")) {
				t.Fatalf("round %d: a well-behaved source's one packet was refused during the rotation", round)
			}
		}
		// Without pressure a new source starts full: a generation dropped long ago (more
		// than burst/rate) forgets nothing a source could not have regained.
		time.Sleep(burst / 10 * time.Second)
		fresh := netip.MustParseAddr("192.0.2.2")
		got := 0
		for range 2 * burst {
			if p.Allow(fresh) {
				got++
			}
		}
		if got != burst {
			t.Fatalf("a new source after a quiet period got %d packets, want the burst of %d", got, burst)
		}
		if n := p.Len(); n > 100 {
			t.Fatalf("tracking %d sources, want at most 100", n)
		}
	})
}
