package webrtc_test

import (
	"net/netip"
	"testing"

	"go.uber.org/goleak"

	"github.com/wdht/wdht/transport"
	"github.com/wdht/wdht/transport/transporttest"
	"github.com/wdht/wdht/transport/webrtc"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// The conformance suite, on pairs connected through the signalling server: a Dials b's
// server, over WebSocket or over HTTP.
func TestConformance(t *testing.T) {
	for _, method := range []webrtc.Signalling{webrtc.WebSocket, webrtc.HTTP} {
		t.Run(method.String(), func(t *testing.T) {
			addrs := map[transport.Transport]netip.AddrPort{} // from -> the other's address
			transporttest.Run(t, func(t *testing.T) (transport.Transport, transport.Transport) {
				a := newTransport(t, "a", &webrtc.Config{DialOrder: []webrtc.Signalling{method}})
				b := newTransport(t, "b", nil)
				_, srv := serve(t, b, nil)
				ab, ba := dial(t, a, b, srv)
				clear(addrs)
				addrs[a], addrs[b] = ab, ba
				return a, b
			}, transporttest.Options{
				Unreachable:    netip.MustParseAddrPort("192.0.2.1:6881"),
				Addr:           func(from, to transport.Transport) netip.AddrPort { return addrs[from] },
				MaxMessageSize: webrtc.MaxMessageSize,
			})
		})
	}
}
