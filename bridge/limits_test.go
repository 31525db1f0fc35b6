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
// store alone (Skipped). Meanwhile another WebRTC node's ping to the bridge is answered
// and its get of an item the bridge holds succeeds; the slots are all free once the
// lookups end, and no query of the bridge is left outstanding.
func TestFallbackConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, &Config{FallbackConcurrency: 2, FallbackRate: 1000}, 3, 7)
		flooders, good := w.webNodes[:6], w.webNodes[6]
		held, _ := dht.NewImmutableItem("held by the bridge")
		if err := w.bridge.Items().Put(held, nil); err != nil {
			t.Fatal(err)
		}
		// The mainline network is slow: every fallback runs until FallbackTimeout.
		for _, n := range w.mainline {
			w.main.SetLink(w.bridge.Mainline.Addr().Addr(), n.Addr().Addr(), memory.LinkConfig{Delay: time.Second})
		}
		var wg sync.WaitGroup
		for _, n := range flooders {
			wg.Go(func() { n.Get(t.Context(), dht.RandomID(), nil) })
		}
		time.Sleep(500 * time.Millisecond) // every get reached the bridge; no fallback ended
		synctest.Wait()
		running, st := len(w.bridge.toMainline.slots), w.bridge.Stats().ToMainline
		if running != 2 || st.Skipped == 0 || st.Found+st.NotFound != 0 {
			t.Fatalf("6 gets at once: %d fallbacks running, %+v; want 2 running and the others skipped", running, st)
		}
		if _, err := good.Ping(t.Context(), w.bridge.Web.Addr()); err != nil {
			t.Fatalf("a well-behaved node's ping during the fallbacks: %v", err)
		}
		if _, err := good.Get(t.Context(), held.Target(), nil); err != nil {
			t.Fatalf("a well-behaved node's get of an item the bridge holds, during the fallbacks: %v", err)
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
