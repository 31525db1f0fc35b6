package bridge

import (
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/extensions/signals"
	"github.com/wdht/wdht/transport/memory"
)

// TestFallbackConcurrency: gets that all need a fallback at once run at most
// FallbackConcurrency lookups on the other network; the rest are answered from the
// store alone (Skipped). Meanwhile a new WebRTC node's ping to the bridge is answered
// and its bootstrap through the bridge succeeds; the slots are all free once the
// fallbacks end, and no query of the bridge is left outstanding.
func TestFallbackConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, &Config{FallbackConcurrency: 2, FallbackRate: 1000}, 3, 6)
		// The mainline network is slow: every fallback runs until FallbackTimeout.
		for _, n := range w.mainline {
			w.main.SetLink(w.bridge.Mainline.Addr().Addr(), n.Addr().Addr(), memory.LinkConfig{Delay: time.Second})
		}
		var wg sync.WaitGroup
		for i, n := range w.webNodes {
			// Targets next to the bridge's ID: every get asks the bridge (with K=2, a
			// random target's lookup may not).
			target := w.bridge.Web.ID()
			target[19] ^= byte(i + 1)
			wg.Go(func() { n.Get(t.Context(), target, nil) })
		}
		time.Sleep(500 * time.Millisecond) // every get reached the bridge; no fallback ended
		synctest.Wait()
		running, st := len(w.bridge.toMainline.slots), w.bridge.Stats().ToMainline
		if running != 2 || st.Skipped == 0 || st.Found+st.NotFound != 0 {
			t.Fatalf("6 gets at once: %d fallbacks running, %+v; want 2 running and the others skipped", running, st)
		}
		// A new WebRTC node (joining now, so that the gets above did not ask it) pings
		// the bridge and bootstraps through it.
		tr, _ := w.web.Listen(netip.AddrPort{})
		good, err := signals.NewNode(tr, w.fake.Signaler(tr.LocalAddr()), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { good.Close(); tr.Close() }()
		w.fake.Dial(tr.LocalAddr(), w.bridge.Web.Addr())
		if _, err := good.Ping(t.Context(), w.bridge.Web.Addr()); err != nil {
			t.Fatalf("a well-behaved node's ping during the fallbacks: %v", err)
		}
		if r, err := good.Bootstrap(t.Context(), w.bridge.Web.Addr()); err != nil || r.Responses == 0 {
			t.Fatalf("a well-behaved node's bootstrap during the fallbacks: %v", err)
		}
		if n := len(w.bridge.toMainline.slots); n != 2 {
			t.Fatalf("%d fallbacks running after the well-behaved node's queries, want 2: they ended before", n)
		}
		wg.Wait()
		synctest.Wait()
		if n := len(w.bridge.toMainline.slots); n != 0 {
			t.Fatalf("%d fallback slots still held after every get ended", n)
		}
		for _, n := range []*dht.Node{w.bridge.Mainline, w.bridge.Web} {
			if o := n.Stats().KRPC.OutstandingNow; o != 0 {
				t.Fatalf("%d queries of the bridge still outstanding after the fallbacks", o)
			}
		}
	})
}
