//go:build !js

package webrtc_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/wdht/wdht/transport/webrtc"
)

// Set-up time of one connection, offer and answer exchanged in process (as the DHT relay
// will carry them), until both channels are open.
func BenchmarkConnect(b *testing.B) {
	x := newTransport(b, "x", &webrtc.Config{ReadyDelay: -1})
	y := newTransport(b, "y", &webrtc.Config{ReadyDelay: -1})
	for b.Loop() {
		xy, _ := pair(b, x, y)
		x.Disconnect(xy)
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/conn")
}

// Set-up time through the signalling server, over loopback TCP: Dial until the server's
// announcement arrived.
func BenchmarkDial(b *testing.B) {
	for _, method := range methods {
		b.Run(method.String(), func(b *testing.B) {
			x := newTransport(b, "x", &webrtc.Config{DialOrder: []webrtc.Signalling{method}})
			y := newTransport(b, "y", nil)
			_, addr := serve(b, y, nil)
			for b.Loop() {
				xy, err := x.Dial(context.Background(), addr)
				if err != nil {
					b.Fatal(err)
				}
				x.Disconnect(xy)
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/conn")
		})
	}
}

// stream sends n messages of size bytes over the connection x→xy, keeping at most window
// in flight, and returns when y has received them all.
func stream(b testing.TB, x, y *webrtc.Transport, xy netip.AddrPort, n, size, window int) {
	msg := make([]byte, size)
	credit := make(chan struct{}, window)
	done := make(chan error, 1)
	go func() {
		for range n {
			if _, err := y.Receive(context.Background()); err != nil {
				done <- err
				return
			}
			<-credit
		}
		done <- nil
	}()
	for range n {
		credit <- struct{}{}
		for {
			err := x.Send(xy, msg)
			if err == nil {
				break
			}
			if !isBufferFull(err) {
				b.Fatal(err)
			}
			runtime.Gosched()
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// Messages per second one way on one connection: 300-byte messages (a KRPC query with a
// few nodes), at most 64 in flight.
func BenchmarkMessages(b *testing.B) {
	x := newTransport(b, "x", &webrtc.Config{ReadyDelay: -1})
	y := newTransport(b, "y", &webrtc.Config{ReadyDelay: -1})
	xy, _ := pair(b, x, y)
	b.SetBytes(300 * 100) // per batch
	b.ReportAllocs()
	const batch = 100
	for b.Loop() {
		stream(b, x, y, xy, batch, 300, 64)
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/msg")
}

// Request/response round trip on one connection.
func BenchmarkRoundTrip(b *testing.B) {
	x := newTransport(b, "x", &webrtc.Config{ReadyDelay: -1})
	y := newTransport(b, "y", &webrtc.Config{ReadyDelay: -1})
	xy, yx := pair(b, x, y)
	msg := make([]byte, 300)
	ctx := context.Background()
	go func() {
		for {
			if _, err := y.Receive(ctx); err != nil {
				return
			}
			y.Send(yx, msg)
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		if err := x.Send(xy, msg); err != nil {
			b.Fatal(err)
		}
		if _, err := x.Receive(ctx); err != nil {
			b.Fatal(err)
		}
	}
	y.Close()
}

// 200 open connections between two transports in this process: set-up time, memory,
// goroutines and file descriptors per connection (both ends together, and per end), and
// the message rate with every connection busy.
func BenchmarkOpen200(b *testing.B) {
	const conns = 200
	for b.Loop() {
		b.StopTimer()
		x := newTransport(b, "x", &webrtc.Config{ReadyDelay: -1, QueueLen: 1 << 14})
		y := newTransport(b, "y", &webrtc.Config{ReadyDelay: -1, QueueLen: 1 << 14})
		before := measure()
		fds0 := openFDs()
		b.StartTimer()

		start := time.Now()
		addrs := make([]netip.AddrPort, conns)
		var failed error
		var mu sync.Mutex
		run(conns, 8, func(i int) {
			var err error
			if addrs[i], _, err = connect(context.Background(), x, y); err != nil {
				mu.Lock()
				failed = err
				mu.Unlock()
			}
		})
		setup := time.Since(start)
		if failed != nil {
			b.Fatal(failed)
		}

		after := measure()
		fds := openFDs() - fds0
		perPair := float64(after.heap-before.heap) / conns
		b.ReportMetric(float64(setup.Microseconds())/1000/conns, "setup-ms/conn")
		b.ReportMetric(perPair, "heap-B/conn")
		b.ReportMetric(perPair/2, "heap-B/end")
		b.ReportMetric(float64(after.goroutines-before.goroutines)/conns/2, "goroutines/end")
		b.ReportMetric(float64(fds)/conns/2, "fds/end")

		// Every connection streams 100 messages of 300 bytes at once.
		const each = 100
		start = time.Now()
		var wg sync.WaitGroup
		received := make(chan struct{})
		go func() {
			for range conns * each {
				if _, err := y.Receive(context.Background()); err != nil {
					return
				}
			}
			close(received)
		}()
		msg := make([]byte, 300)
		for _, a := range addrs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					for x.Send(a, msg) != nil {
						runtime.Gosched()
					}
				}
			}()
		}
		wg.Wait()
		<-received
		d := time.Since(start)
		b.ReportMetric(float64(conns*each)/d.Seconds(), "msgs/s-all")
		b.ReportMetric(float64(each)/d.Seconds(), "msgs/s-per-conn")
		if s := y.Stats(); s.Dropped > 0 {
			b.Errorf("%d messages dropped", s.Dropped)
		}
		b.StopTimer()
		x.Close()
		y.Close()
		b.StartTimer()
	}
}

func isBufferFull(err error) bool {
	return errors.Is(err, webrtc.ErrSendBufferFull)
}

// openFDs counts this process's open file descriptors (Linux), or 0.
func openFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}
