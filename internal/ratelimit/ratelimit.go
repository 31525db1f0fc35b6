// Package ratelimit has the token buckets behind wdht's inbound and outbound limits.
//
// They read the clock only when asked (no timers or goroutines), so an idle limiter costs
// nothing, and they work under testing/synctest's fake clock.
package ratelimit

import (
	"context"
	"net/netip"
	"sync"
	"time"
)

// Bucket is a token bucket: rate tokens a second, holding at most burst. The zero Bucket
// allows nothing; a nil *Bucket allows everything. Safe for concurrent use.
type Bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

// NewBucket returns a full bucket. A rate below zero means unlimited (nil).
func NewBucket(rate float64, burst int) *Bucket {
	if rate < 0 {
		return nil
	}
	return &Bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: time.Now()}
}

func (b *Bucket) refill(now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
}

// Allow takes a token if one is there.
func (b *Bucket) Allow() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refill(time.Now())
	if b.tokens >= 1 {
		b.tokens--
		return true
	}
	return false
}

// Wait takes a token, waiting for one as long as ctx allows.
func (b *Bucket) Wait(ctx context.Context) error {
	if b == nil {
		return ctx.Err()
	}
	for {
		b.mu.Lock()
		b.refill(time.Now())
		if b.tokens >= 1 {
			b.tokens--
			b.mu.Unlock()
			return nil
		}
		wait := time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
		b.mu.Unlock()
		if b.rate == 0 {
			<-ctx.Done()
			return ctx.Err()
		}
		t := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// PerSource limits each source IP with its own bucket. It tracks a bounded number of
// sources: two generations of at most max/2 entries each, the older dropped as a whole
// when the newer fills. Memory is therefore bounded whatever the number of sources.
//
// Dropping a generation must not hand a limited source a fresh burst: a source seen in
// neither generation starts with the tokens that a source forgotten at the last drop
// could have regained since, at most the burst and at least one. While sources arrive
// slowly (generations last longer than burst/rate) every new source starts full, as
// before; under pressure from many sources (generations dropped in quick succession) a
// source that was limited and forgotten comes back with one packet, not a burst. Safe
// for concurrent use.
type PerSource struct {
	mu        sync.Mutex
	rate      float64
	burst     float64
	genSize   int
	cur, prev map[netip.Addr]*state
	dropped   time.Time // when the last generation was dropped; zero: never
}

type state struct {
	tokens float64
	last   time.Time
}

// NewPerSource returns a limiter allowing rate packets a second from each source IP, with
// bursts of up to burst, remembering about maxSources sources. A rate below zero means
// unlimited (nil).
func NewPerSource(rate float64, burst, maxSources int) *PerSource {
	if rate < 0 {
		return nil
	}
	return &PerSource{rate: rate, burst: float64(burst), genSize: max(1, maxSources/2), cur: make(map[netip.Addr]*state)}
}

// Allow takes a token from the bucket of src's SourceKey if one is there.
func (p *PerSource) Allow(src netip.Addr) bool {
	if p == nil {
		return true
	}
	src = SourceKey(src)
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.cur[src]
	if s == nil {
		if s = p.prev[src]; s != nil {
			delete(p.prev, src)
		} else {
			s = &state{tokens: p.fresh(now), last: now}
		}
		if len(p.cur) >= p.genSize {
			p.prev, p.cur = p.cur, make(map[netip.Addr]*state, p.genSize)
			p.dropped = now
		}
		p.cur[src] = s
	}
	if d := now.Sub(s.last); d > 0 {
		s.tokens = min(p.burst, s.tokens+d.Seconds()*p.rate)
		s.last = now
	}
	if s.tokens >= 1 {
		s.tokens--
		return true
	}
	return false
}

// fresh returns the tokens of a source seen in neither generation (see PerSource).
func (p *PerSource) fresh(now time.Time) float64 {
	if p.dropped.IsZero() {
		return p.burst
	}
	return max(min(1, p.burst), min(p.burst, now.Sub(p.dropped).Seconds()*p.rate))
}

// Len returns the number of sources tracked.
func (p *PerSource) Len() int {
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.cur) + len(p.prev)
}

// SourceKey returns the key under which per-source caps count addr: an IPv4 address (or
// an IPv4-mapped IPv6 one) counts alone, an IPv6 address counts with its /64, since one
// host is routinely given a whole /64 and can use any address in it. Every per-source cap
// in wdht keys by SourceKey.
func SourceKey(addr netip.Addr) netip.Addr {
	addr = addr.Unmap()
	if addr.Is4() || !addr.IsValid() {
		return addr
	}
	p, _ := addr.WithZone("").Prefix(64)
	return p.Addr()
}
