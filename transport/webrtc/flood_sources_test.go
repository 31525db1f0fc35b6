//go:build !js

package webrtc_test

import (
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wdht/wdht/internal/testenv"
	"github.com/wdht/wdht/transport/webrtc"
)

// 1,000 valid offers, half POSTed to the signalling server and half relayed (NewAnswer,
// as peer_connection and signals do), from 500 distinct IPv6 addresses of one /64 and
// from 64 IPv4 addresses, 16 at a time. During the flood the budgets hold (each at most
// MaxPending, each source at most MaxPendingPerIP), a well-behaved client joins through
// the signalling server, the node's own offer connects to a peer, and a relayed offer
// from a fresh node is answered; afterwards every pending offer is gone, the budgets'
// maps are empty and goroutines are back to their baseline.
func TestFloodSources(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the signalling server")
	}
	const timeout = 3 * time.Second
	const maxPending = 128
	// 65 flooding sources: with as many sources as places, max-min fairness cannot keep
	// a newcomer's place (each fresh source evicts the oldest); 128 places leave room.
	b := newTransport(t, "b", &webrtc.Config{Timeout: timeout, MaxPending: maxPending})
	srv, srvAddr := serve(t, b, nil)
	c := newTransport(t, "c", nil)
	o, err := c.NewOffer(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	offer := o.SDP()
	runtime.GC()
	base := runtime.NumGoroutine()
	// The peaks of each budget's size and of the most one source holds in it.
	var peakServer, peakRelayed, peakServerSource, peakRelayedSource atomic.Int32
	sample := func() {
		sizes, perSource := b.PoolSizes(), b.PoolMaxPerSource()
		for _, v := range []struct {
			p *atomic.Int32
			n int
		}{
			{&peakServer, sizes["server"][0]}, {&peakRelayed, sizes["relayed"][0]},
			{&peakServerSource, perSource["server"]}, {&peakRelayedSource, perSource["relayed"]},
		} {
			for {
				old := v.p.Load()
				if int32(v.n) <= old || v.p.CompareAndSwap(old, int32(v.n)) {
					break
				}
			}
		}
	}
	var mu sync.Mutex
	codes := map[string]int{}
	var started atomic.Int32
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		run(1000, 16, func(i int) {
			started.Add(1)
			outcome := testenv.FloodOffer(t.Context(), srv, b, offer, i)
			sample()
			mu.Lock()
			codes[outcome]++
			mu.Unlock()
		})
	}()
	// Once the flood is under way: the budgets are full.
	for started.Load() < 200 {
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	a := newTransport(t, "a", &webrtc.Config{DialOrder: []webrtc.Signalling{webrtc.HTTP}})
	if _, err := a.Dial(ctxFor(t, 20*time.Second), srvAddr); err != nil {
		t.Fatalf("a well-behaved client during the flood: %v", err)
	}
	own, err := b.NewOffer(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatalf("the node's own offer during the flood: %v", err)
	}
	d := newTransport(t, "d", nil)
	ans, err := d.NewAnswer(ctxFor(t, 10*time.Second), own.SDP(), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := own.Connect(ctxFor(t, 20*time.Second), ans.SDP()); err != nil {
		t.Fatalf("the node's own offer did not connect during the flood: %v", err)
	}
	e := newTransport(t, "e", nil)
	eo, err := e.NewOffer(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	relayed, err := b.NewAnswer(ctxFor(t, 10*time.Second), eo.SDP(), netip.MustParseAddr("203.0.113.9"))
	if err != nil {
		t.Fatalf("a relayed offer from a fresh node during the flood: %v", err)
	}
	if _, err := eo.Connect(ctxFor(t, 20*time.Second), relayed.SDP()); err != nil {
		t.Fatalf("the relayed offer did not connect during the flood: %v", err)
	}
	during := started.Load()
	t.Logf("joined, own offer and relayed offer connected in %v, %d offers into the flood (under go test -race on a shared machine)",
		time.Since(start).Round(time.Millisecond), during)
	<-flooded
	t.Logf("outcomes: %v; evicted %d; peak budgets: server %d, relayed %d; peak per source: server %d, relayed %d",
		codes, b.Stats().Evicted, peakServer.Load(), peakRelayed.Load(), peakServerSource.Load(), peakRelayedSource.Load())
	if during >= 1000 {
		t.Log("the flood ended before the checks did: the checks were not all made during it")
	}
	if peakServer.Load() > maxPending || peakRelayed.Load() > maxPending {
		t.Errorf("budgets over MaxPending %d: server %d, relayed %d", maxPending, peakServer.Load(), peakRelayed.Load())
	}
	// The 500 addresses of the /64 are one source: it never held more than
	// MaxPendingPerIP in a budget (keyed by address, it could have held all of one).
	if peakServerSource.Load() > webrtc.DefaultMaxPendingPerIP || peakRelayedSource.Load() > webrtc.DefaultMaxPendingPerIP {
		t.Errorf("one source held %d (server) and %d (relayed) pending at the peak, over MaxPendingPerIP %d",
			peakServerSource.Load(), peakRelayedSource.Load(), webrtc.DefaultMaxPendingPerIP)
	}
	if peakServerSource.Load() < 2 {
		t.Errorf("no source held more than %d pending in the server budget: the flood did not reach the per-source cap's range", peakServerSource.Load())
	}
	// Every server offer was answered or refused with 503 (the per-source caps, by
	// SourceKey, are also checked step by step in TestPoolFairness and TestPendingBudgets).
	if codes["server 200"]+codes["server 503"] != 500 || codes["relayed true"]+codes["relayed false"] != 500 {
		t.Errorf("outcomes %v: want every server offer answered or refused (200, 503)", codes)
	}

	// Afterwards: everything unconnected times out, and nothing is left.
	deadline := time.Now().Add(timeout + 20*time.Second)
	for {
		sizes := b.PoolSizes()
		empty := sizes["server"] == [2]int{} && sizes["relayed"] == [2]int{} && sizes["own"] == [2]int{}
		g := runtime.NumGoroutine()
		if empty && b.Stats().Pending == 0 && g <= base+4*goroutinesPerPC+slackGoroutines {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the flood: budgets %v, %d pending, %d goroutines (baseline %d)", sizes, b.Stats().Pending, g, base)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
