package bridge

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/transport/memory"
)

// TestFallbackConcurrency: gets that all need a fallback at once run at most
// FallbackConcurrency lookups on the other network; the rest are answered from the
// store alone (Skipped), and the slots are all free once the lookups end.
func TestFallbackConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, &Config{FallbackConcurrency: 2, FallbackRate: 1000}, 3, 6)
		// The mainline network is slow: every fallback runs until FallbackTimeout.
		for _, n := range w.mainline {
			w.main.SetLink(w.bridge.Mainline.Addr().Addr(), n.Addr().Addr(), memory.LinkConfig{Delay: time.Second})
		}
		var wg sync.WaitGroup
		for _, n := range w.webNodes {
			wg.Go(func() { n.Get(t.Context(), dht.RandomID(), nil) })
		}
		time.Sleep(500 * time.Millisecond) // every get reached the bridge; no fallback ended
		synctest.Wait()
		running, st := len(w.bridge.toMainline.slots), w.bridge.Stats().ToMainline
		if running != 2 || st.Skipped == 0 || st.Found+st.NotFound != 0 {
			t.Fatalf("6 gets at once: %d fallbacks running, %+v; want 2 running and the others skipped", running, st)
		}
		wg.Wait()
		if n := len(w.bridge.toMainline.slots); n != 0 {
			t.Fatalf("%d fallback slots still held after every get ended", n)
		}
	})
}
