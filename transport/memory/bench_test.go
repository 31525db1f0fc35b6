package memory_test

import (
	"context"
	"net/netip"
	"runtime"
	"testing"

	"github.com/wdht/wdht/transport/memory"
)

// BenchmarkSendReceive measures one message through a zero-delay network: Send, then
// Receive on the other side.
func BenchmarkSendReceive(b *testing.B) {
	n := memory.NewNetwork(nil)
	x, y := listen(b, n, netip.AddrPort{}), listen(b, n, netip.AddrPort{})
	msg := make([]byte, 100)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := x.Send(y.LocalAddr(), msg); err != nil {
			b.Fatal(err)
		}
		if _, err := y.Receive(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSendReceiveParallel measures throughput with a receiving goroutine per
// transport and GOMAXPROCS senders spread over 64 transports.
func BenchmarkSendReceiveParallel(b *testing.B) {
	n := memory.NewNetwork(&memory.Config{QueueLen: 1 << 16})
	const nodes = 64
	ts := make([]*memory.Transport, nodes)
	for i := range ts {
		ts[i] = listen(b, n, netip.AddrPort{})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	for _, tr := range ts {
		go func() {
			for {
				if _, err := tr.Receive(ctx); err != nil {
					done <- struct{}{}
					return
				}
			}
		}()
	}
	msg := make([]byte, 100)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if err := ts[i%nodes].Send(ts[(i*7+1)%nodes].LocalAddr(), msg); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	cancel()
	for range ts {
		<-done
	}
}

// idleBytesPerTransport listens count transports and returns the heap growth per transport.
func idleBytesPerTransport(tb testing.TB, count int) float64 {
	n := memory.NewNetwork(nil)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ts := make([]*memory.Transport, count)
	for i := range ts {
		tr, err := n.Listen(netip.AddrPort{})
		if err != nil {
			tb.Fatal(err)
		}
		ts[i] = tr
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perTransport := float64(after.HeapAlloc-before.HeapAlloc)/float64(count) - 8 // minus ts's slot
	for _, tr := range ts {
		tr.Close()
	}
	runtime.KeepAlive(n)
	return perTransport
}

// TestIdleMemory logs what an idle transport costs, and fails if it grows far beyond
// what the design promises (a few hundred bytes).
func TestIdleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	got := idleBytesPerTransport(t, 10_000)
	t.Logf("idle memory: %.0f bytes per transport (10,000 transports)", got)
	if got > 1024 {
		t.Errorf("an idle transport costs %.0f bytes, want under 1 KiB", got)
	}
}

// BenchmarkIdleMemory reports the heap cost of 100,000 idle transports.
func BenchmarkIdleMemory(b *testing.B) {
	for b.Loop() {
		b.ReportMetric(idleBytesPerTransport(b, 100_000), "bytes/transport")
	}
}
