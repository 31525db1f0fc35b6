package udp_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/wdht/wdht/transport/udp"
)

// reportCPU starts measuring the process's CPU time; the function it returns, called
// after the loop, reports it per operation as cpu-ns/op. For a ping-pong, ns/op (wall
// time) is mostly threads sleeping and waking; cpu-ns/op is what a busy node pays per
// operation, counting every goroutine and the kernel's work in system calls.
func reportCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		end := cpuTime()
		if start >= 0 && end >= 0 && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// BenchmarkSendReceive measures one datagram over loopback: Send on one transport, then
// Receive on the other (through its reader goroutine and queue).
func BenchmarkSendReceive(b *testing.B) {
	x, y := listen(b, ap("127.0.0.1:0"), nil), listen(b, ap("127.0.0.1:0"), nil)
	msg := make([]byte, 100)
	ctx := context.Background()
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if err := x.Send(y.LocalAddr(), msg); err != nil {
			b.Fatal(err)
		}
		if _, err := y.Receive(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSendReceiveContext is BenchmarkSendReceive with a cancellable context: one
// long-lived context for all calls (as a read loop uses), or a new one for every call.
func BenchmarkSendReceiveContext(b *testing.B) {
	b.Run("long-lived", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		benchSendReceive(b, func() (context.Context, context.CancelFunc) { return ctx, func() {} })
	})
	b.Run("per-call", func(b *testing.B) {
		benchSendReceive(b, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), time.Minute)
		})
	})
}

func benchSendReceive(b *testing.B, newCtx func() (context.Context, context.CancelFunc)) {
	x, y := listen(b, ap("127.0.0.1:0"), nil), listen(b, ap("127.0.0.1:0"), nil)
	msg := make([]byte, 100)
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		if err := x.Send(y.LocalAddr(), msg); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := newCtx()
		_, err := y.Receive(ctx)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPingPong measures a query and its reply as a DHT ping costs the transports:
// a responder goroutine answers every datagram it receives.
func BenchmarkPingPong(b *testing.B) {
	x, y := listen(b, ap("127.0.0.1:0"), nil), listen(b, ap("127.0.0.1:0"), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			p, err := y.Receive(ctx)
			if err != nil {
				return
			}
			y.Send(p.From, p.Data)
		}
	}()
	msg := make([]byte, 100)
	b.ReportAllocs()
	report := reportCPU(b)
	for b.Loop() {
		if err := x.Send(y.LocalAddr(), msg); err != nil {
			b.Fatal(err)
		}
		if _, err := x.Receive(ctx); err != nil {
			b.Fatal(err)
		}
	}
	report()
	cancel()
	<-done
}

// BenchmarkRawPingPong is the floor for BenchmarkPingPong: the same exchange on plain
// sockets, each side reading on its own goroutine with no copy, queue or hop.
func BenchmarkRawPingPong(b *testing.B) {
	x, y := rawSocket(b), rawSocket(b)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, from, err := y.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			y.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	to := y.LocalAddr().(*net.UDPAddr).AddrPort()
	msg, buf := make([]byte, 100), make([]byte, 65536)
	b.ReportAllocs()
	report := reportCPU(b)
	for b.Loop() {
		if _, err := x.WriteToUDPAddrPort(msg, to); err != nil {
			b.Fatal(err)
		}
		if _, _, err := x.ReadFromUDPAddrPort(buf); err != nil {
			b.Fatal(err)
		}
	}
	report()
	y.Close()
	<-done
}

func rawSocket(b *testing.B) *net.UDPConn {
	c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(ap("127.0.0.1:0")))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// BenchmarkThroughput measures a one-way stream: the sender keeps a window of datagrams
// in flight, so the reader goroutine works through a backlog, as under load.
func BenchmarkThroughput(b *testing.B) {
	x := listen(b, ap("127.0.0.1:0"), nil)
	y := listen(b, ap("127.0.0.1:0"), &udp.Config{ReadBuffer: 4 << 20})
	benchThroughput(b, x, y.LocalAddr(), y.Receive)
}

// BenchmarkRawThroughput is the floor for BenchmarkThroughput: a plain socket read on
// the benchmark's goroutine.
func BenchmarkRawThroughput(b *testing.B) {
	x := listen(b, ap("127.0.0.1:0"), nil)
	y := rawSocket(b)
	y.SetReadBuffer(4 << 20)
	buf := make([]byte, 65536)
	benchThroughput(b, x, y.LocalAddr().(*net.UDPAddr).AddrPort(), func(context.Context) (struct{}, error) {
		_, _, err := y.ReadFromUDPAddrPort(buf)
		return struct{}{}, err
	})
}

func benchThroughput[P any](b *testing.B, x *udp.Transport, to netip.AddrPort, receive func(context.Context) (P, error)) {
	const window = 64
	msg := make([]byte, 100)
	ctx := context.Background()
	sent, got := 0, 0
	b.ReportAllocs()
	defer reportCPU(b)()
	for b.Loop() {
		for sent-got < window {
			if err := x.Send(to, msg); err != nil {
				b.Fatal(err)
			}
			sent++
		}
		if _, err := receive(ctx); err != nil {
			b.Fatal(err)
		}
		got++
	}
}
