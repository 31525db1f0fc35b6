package memory_test

import (
	"net/netip"
	"testing"

	"go.uber.org/goleak"

	"github.com/wdht/wdht/transport"
	"github.com/wdht/wdht/transport/memory"
	"github.com/wdht/wdht/transport/transporttest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// listen returns a transport on n at addr (zero: allocated), closed when the test ends.
func listen(t testing.TB, n *memory.Network, addr netip.AddrPort) *memory.Transport {
	t.Helper()
	tr, err := n.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func TestConformance(t *testing.T) {
	transporttest.Run(t, func(t *testing.T) (a, b transport.Transport) {
		n := memory.NewNetwork(nil)
		return listen(t, n, netip.AddrPort{}), listen(t, n, netip.AddrPort{})
	}, transporttest.Options{})
}

func TestConformanceIPv6(t *testing.T) {
	transporttest.Run(t, func(t *testing.T) (a, b transport.Transport) {
		n := memory.NewNetwork(nil)
		return listen(t, n, netip.MustParseAddrPort("[2001:db8::1]:6881")),
			listen(t, n, netip.MustParseAddrPort("[2001:db8::2]:6881"))
	}, transporttest.Options{})
}

func TestConformanceLinked(t *testing.T) {
	transporttest.Run(t, func(t *testing.T) (a, b transport.Transport) {
		n := memory.NewNetwork(&memory.Config{Linked: true})
		ta, tb := listen(t, n, netip.AddrPort{}), listen(t, n, netip.AddrPort{})
		listen(t, n, netip.MustParseAddrPort("10.9.9.9:6881")) // listening, never linked
		if err := n.Link(ta.LocalAddr(), tb.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		return ta, tb
	}, transporttest.Options{Unreachable: netip.MustParseAddrPort("10.9.9.9:6881")})
}

// With a delay, packets go through time.AfterFunc rather than straight into the queue.
func TestConformanceDelayed(t *testing.T) {
	transporttest.Run(t, func(t *testing.T) (a, b transport.Transport) {
		n := memory.NewNetwork(&memory.Config{Link: memory.LinkConfig{Delay: 50_000, Jitter: 200_000}})
		return listen(t, n, netip.AddrPort{}), listen(t, n, netip.AddrPort{})
	}, transporttest.Options{})
}
