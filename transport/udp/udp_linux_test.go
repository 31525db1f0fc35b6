package udp_test

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"

	"github.com/wdht/wdht/transport/udp"
)

// recvErrSocket returns a transport whose socket reports ICMP errors (IP_RECVERR), so
// that a read fails with ECONNREFUSED after a send to a dead port, and that dead port.
func recvErrSocket(t *testing.T, cfg *udp.Config) (*udp.Transport, netip.AddrPort) {
	b := listen(t, ap("127.0.0.1:0"), cfg)
	rc, err := udp.RawConn(b)
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_RECVERR, 1)
	}); err != nil || serr != nil {
		t.Skipf("cannot set IP_RECVERR: %v %v", err, serr)
	}
	dead, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.LocalAddr().(*net.UDPAddr).AddrPort()
	dead.Close()
	return b, deadAddr
}

// TestReadErrorResilience makes the kernel report ICMP errors to the socket
// (IP_RECVERR), so that a read fails with ECONNREFUSED after a send to a dead port:
// Receive must count the error and keep reading.
func TestReadErrorResilience(t *testing.T) {
	logger, lines := watchLog("read error")
	b, deadAddr := recvErrSocket(t, &udp.Config{Logger: logger})
	a := listen(t, ap("127.0.0.1:0"), nil)
	for i := range 3 {
		if err := b.Send(deadAddr, []byte("anyone?")); err != nil {
			t.Fatalf("Send to a dead port: %v", err)
		}
		if err := a.Send(b.LocalAddr(), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		// The kernel reports the pending error before the queued datagram: Receive
		// meets ECONNREFUSED, counts it, and reads on.
		if p := mustReceive(t, b); len(p.Data) != 1 || p.Data[0] != byte(i) {
			t.Fatalf("received %v, want [%d]", p.Data, i)
		}
		line := waitLog(t, lines, "read error")
		if i == 0 {
			t.Logf("logged: %s", line)
		}
		if s := b.Stats(); s.ReadErrors != uint64(i+1) || s.Received != uint64(i+1) {
			t.Errorf("Stats = %+v, want %d read errors and %d received", s, i+1, i+1)
		}
	}
}

// TestKernelDrops overflows a small socket buffer: the kernel's drop count reaches Stats.
func TestKernelDrops(t *testing.T) {
	b := listen(t, ap("127.0.0.1:0"), &udp.Config{ReadBuffer: 4096})
	a := listen(t, ap("127.0.0.1:0"), nil)
	for range 200 {
		if err := a.Send(b.LocalAddr(), []byte("burst")); err != nil {
			t.Fatal(err)
		}
	}
	// Drain, sending a marker after each read: markers are dropped while the buffer is
	// full, and the first one that gets in carries the drop count.
	for i := 0; ; i++ {
		if i > 1000 {
			t.Fatal("no marker arrived")
		}
		if p := mustReceive(t, b); string(p.Data) == "marker" {
			break
		}
		if err := a.Send(b.LocalAddr(), []byte("marker")); err != nil {
			t.Fatal(err)
		}
	}
	s := b.Stats()
	t.Logf("Stats = %+v", s)
	if s.KernelDrops == 0 {
		t.Error("Stats.KernelDrops = 0 after overflowing the socket buffer")
	}
}

// TestReadErrorStreak floods ICMP errors: after a streak of them Receive pauses (and
// says so) instead of spinning, then goes on.
func TestReadErrorStreak(t *testing.T) {
	// Cleanups run last-registered first: stop the flood, close b (which ends the
	// Receive), then wait for both goroutines.
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait)
	logger, lines := watchLog("pausing")
	b, deadAddr := recvErrSocket(t, &udp.Config{Logger: logger})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	wg.Go(func() {
		for ctx.Err() == nil {
			b.Send(deadAddr, []byte("x"))
		}
	})
	got := make(chan []byte, 1)
	wg.Go(func() {
		p, err := b.Receive(context.Background())
		if err != nil {
			t.Errorf("Receive: %v", err)
		}
		got <- p.Data
	})
	waitLog(t, lines, "pausing")
	cancel()
	a := listen(t, ap("127.0.0.1:0"), nil)
	if err := a.Send(b.LocalAddr(), []byte("after")); err != nil {
		t.Fatal(err)
	}
	if d := <-got; string(d) != "after" {
		t.Errorf("received %q, want \"after\"", d)
	}
	if s := b.Stats(); s.ReadErrors < 100 {
		t.Errorf("Stats = %+v, want at least 100 read errors", s)
	}
}
