package udp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/wdht/wdht/transport"
	"github.com/wdht/wdht/transport/transporttest"
	"github.com/wdht/wdht/transport/udp"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var ap = netip.MustParseAddrPort

// listen returns a transport at addr, closed when the test ends.
func listen(t testing.TB, addr netip.AddrPort, cfg *udp.Config) *udp.Transport {
	t.Helper()
	tr, err := udp.Listen(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tr
}

// hasIPv6Loopback reports whether [::1] can be bound.
func hasIPv6Loopback() bool {
	c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func mustReceive(t testing.TB, tr transport.Transport) transport.Packet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := tr.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	return p
}

func TestConformanceIPv4(t *testing.T) {
	transporttest.Run(t, func(t *testing.T) (a, b transport.Transport) {
		return listen(t, ap("127.0.0.1:0"), nil), listen(t, ap("127.0.0.1:0"), nil)
	}, transporttest.Options{Unreachable: ap("[::1]:6881")})
}

func TestConformanceIPv6(t *testing.T) {
	if !hasIPv6Loopback() {
		t.Skip("no IPv6 loopback")
	}
	transporttest.Run(t, func(t *testing.T) (a, b transport.Transport) {
		return listen(t, ap("[::1]:0"), nil), listen(t, ap("[::1]:0"), nil)
	}, transporttest.Options{Unreachable: ap("127.0.0.1:6881")})
}

// Two dual-stack sockets talking IPv4: every From is an IPv4-mapped address in the
// kernel, and must come out unmapped.
func TestConformanceDualStack(t *testing.T) {
	if !hasIPv6Loopback() {
		t.Skip("no IPv6 loopback")
	}
	transporttest.Run(t, func(t *testing.T) (a, b transport.Transport) {
		a, b = listen(t, netip.AddrPort{}, nil), listen(t, netip.AddrPort{}, nil)
		if !a.LocalAddr().Addr().Is6() {
			t.Skipf("no dual-stack socket on this system (listening at %v)", a.LocalAddr())
		}
		return a, b
	}, transporttest.Options{Addr: func(_, to transport.Transport) netip.AddrPort {
		return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), to.LocalAddr().Port())
	}})
}

// A dual-stack socket talks to both families and reports IPv4 peers unmapped.
func TestDualStack(t *testing.T) {
	if !hasIPv6Loopback() {
		t.Skip("no IPv6 loopback")
	}
	d := listen(t, netip.AddrPort{}, nil)
	if got := d.LocalAddr().Addr(); got != netip.IPv6Unspecified() {
		t.Skipf("no dual-stack socket on this system (listening at %v)", d.LocalAddr())
	}
	port := d.LocalAddr().Port()
	for _, peerAddr := range []netip.AddrPort{ap("127.0.0.1:0"), ap("[::1]:0")} {
		peer := listen(t, peerAddr, nil)
		if err := peer.Send(netip.AddrPortFrom(peerAddr.Addr(), port), []byte("hi")); err != nil {
			t.Fatal(err)
		}
		p := mustReceive(t, d)
		if p.From != peer.LocalAddr() {
			t.Errorf("From = %v, want %v (unmapped)", p.From, peer.LocalAddr())
		}
		if err := d.Send(p.From, []byte("back")); err != nil {
			t.Fatal(err)
		}
		if p := mustReceive(t, peer); string(p.Data) != "back" {
			t.Errorf("got %q", p.Data)
		}
	}
	// [::] is dual-stack too; an IPv4-mapped listen address is IPv4.
	if d2 := listen(t, ap("[::]:0"), nil); d2.Send(ap("127.0.0.1:9"), []byte("x")) != nil {
		t.Error("[::] socket cannot send to IPv4")
	}
	m := listen(t, ap("[::ffff:127.0.0.1]:0"), nil)
	if !m.LocalAddr().Addr().Is4() {
		t.Errorf("LocalAddr = %v, want IPv4", m.LocalAddr())
	}
}

func TestSendUnreachable(t *testing.T) {
	v4 := listen(t, ap("127.0.0.1:0"), nil)
	for _, to := range []netip.AddrPort{
		ap("[::1]:6881"),
		ap("[2001:db8::1]:6881"),
		ap("8.8.8.8:53"), // Linux: EINVAL from a socket bound to loopback
		{},
		ap("127.0.0.1:0"),
	} {
		if err := v4.Send(to, []byte("x")); !errors.Is(err, transport.ErrUnreachable) {
			t.Errorf("IPv4 socket: Send(%v) = %v, want ErrUnreachable", to, err)
		}
	}
	// An IPv4-mapped destination is IPv4.
	peer := listen(t, ap("127.0.0.1:0"), nil)
	mapped := netip.AddrPortFrom(netip.AddrFrom16(peer.LocalAddr().Addr().As16()), peer.LocalAddr().Port())
	if err := v4.Send(mapped, []byte("m")); err != nil {
		t.Fatalf("Send to %v: %v", mapped, err)
	}
	if p := mustReceive(t, peer); string(p.Data) != "m" || p.From != v4.LocalAddr() {
		t.Errorf("got %q from %v", p.Data, p.From)
	}
	if s := v4.Stats(); s.SendErrors != 5 || s.Sent != 1 {
		t.Errorf("Stats = %+v, want 5 send errors, 1 sent", s)
	}

	if hasIPv6Loopback() {
		v6 := listen(t, ap("[::1]:0"), nil)
		if err := v6.Send(ap("127.0.0.1:6881"), []byte("x")); !errors.Is(err, transport.ErrUnreachable) {
			t.Errorf("IPv6 socket: Send to IPv4 = %v, want ErrUnreachable", err)
		}
	}
}

// TestOversize sends datagrams from a plain socket around a lowered MaxMessageSize:
// larger ones are counted and dropped, and reception goes on.
func TestOversize(t *testing.T) {
	const limit = 1000
	b := listen(t, ap("127.0.0.1:0"), &udp.Config{MaxMessageSize: limit})
	raw, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, n := range []int{limit + 1, 5000, limit, 0, limit + 1, 10} {
		if _, err := raw.WriteToUDPAddrPort(bytes.Repeat([]byte{byte(n)}, n), b.LocalAddr()); err != nil {
			t.Fatal(err)
		}
	}
	// Datagrams on one socket are read in order, so once the 10-byte one is here the
	// oversize ones have been dropped.
	for _, want := range []int{limit, 0, 10} {
		p := mustReceive(t, b)
		if len(p.Data) != want || !bytes.Equal(p.Data, bytes.Repeat([]byte{byte(want)}, want)) {
			t.Fatalf("received %d bytes, want %d", len(p.Data), want)
		}
		if cap(p.Data) != want {
			t.Errorf("cap(Data) = %d, want exactly %d", cap(p.Data), want)
		}
	}
	if s := b.Stats(); s.Oversize != 3 || s.Received != 3 {
		t.Errorf("Stats = %+v, want 3 oversize, 3 received", s)
	}
	if err := b.Send(raw.LocalAddr().(*net.UDPAddr).AddrPort(), make([]byte, limit+1)); !errors.Is(err, transport.ErrMessageTooLarge) {
		t.Errorf("Send over the limit = %v, want ErrMessageTooLarge", err)
	}
}

// TestTruncated sends a datagram larger than any buffer the transport reads into: the
// largest UDP payload over IPv6, which the kernel truncates.
func TestTruncated(t *testing.T) {
	if !hasIPv6Loopback() {
		t.Skip("no IPv6 loopback")
	}
	b := listen(t, ap("[::1]:0"), nil)
	raw, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	const ipv6MaxPayload = 65535 - 8
	if _, err := raw.WriteToUDPAddrPort(make([]byte, ipv6MaxPayload), b.LocalAddr()); err != nil {
		t.Skipf("cannot send a %d-byte datagram: %v", ipv6MaxPayload, err)
	}
	if _, err := raw.WriteToUDPAddrPort([]byte("next"), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if p := mustReceive(t, b); string(p.Data) != "next" {
		t.Fatalf("received %d bytes, want \"next\"", len(p.Data))
	}
	if s := b.Stats(); s.Oversize != 1 {
		t.Errorf("Stats = %+v, want 1 oversize", s)
	}
}

// logWatcher is an hclog output that signals each line containing a substring.
type logWatcher struct {
	substr string
	lines  chan string
}

func (w *logWatcher) Write(p []byte) (int, error) {
	if s := string(p); strings.Contains(s, w.substr) {
		select {
		case w.lines <- s:
		default:
		}
	}
	return len(p), nil
}

func watchLog(substr string) (hclog.Logger, <-chan string) {
	w := &logWatcher{substr: substr, lines: make(chan string, 100)}
	return hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: w}), w.lines
}

func waitLog(t *testing.T, lines <-chan string, what string) string {
	t.Helper()
	select {
	case l := <-lines:
		return l
	case <-time.After(10 * time.Second):
		t.Fatalf("no %q log line within 10s", what)
		return ""
	}
}

func TestListenErrors(t *testing.T) {
	for _, c := range []udp.Config{
		{ReadBuffer: -1}, {WriteBuffer: -1},
		{MaxMessageSize: -1}, {MaxMessageSize: transport.MaxMessageSize + 1},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: Validate = nil", c)
		}
		if tr, err := udp.Listen(ap("127.0.0.1:0"), &c); err == nil {
			tr.Close()
			t.Errorf("%+v: Listen succeeded", c)
		}
	}
	a := listen(t, ap("127.0.0.1:0"), nil)
	if tr, err := udp.Listen(a.LocalAddr(), nil); err == nil {
		tr.Close()
		t.Error("Listen on an address in use succeeded")
	}
	if _, err := udp.Listen(ap("192.0.2.123:0"), nil); err == nil {
		t.Error("Listen on a foreign address succeeded")
	}
}

func TestConfigBuffers(t *testing.T) {
	cfg := &udp.Config{ReadBuffer: 1 << 20, WriteBuffer: 1 << 20, Logger: hclog.New(&hclog.LoggerOptions{Output: io.Discard, Level: hclog.Trace})}
	saved := *cfg
	a := listen(t, ap("127.0.0.1:0"), cfg)
	b := listen(t, ap("127.0.0.1:0"), cfg)
	if *cfg != saved {
		t.Error("Listen changed the caller's Config")
	}
	if err := a.Send(b.LocalAddr(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	mustReceive(t, b)
}

// Close must wait for the reader goroutine even while datagrams pour in.
func TestCloseUnderLoad(t *testing.T) {
	b, err := udp.Listen(ap("127.0.0.1:0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := listen(t, ap("127.0.0.1:0"), nil)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				a.Send(b.LocalAddr(), []byte("flood"))
			}
		}
	})
	mustReceive(t, b)
	if err := b.Close(); err != nil {
		t.Error(err)
	}
	close(stop)
	wg.Wait()
	if _, err := b.Receive(context.Background()); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Receive after Close = %v", err)
	}
}
