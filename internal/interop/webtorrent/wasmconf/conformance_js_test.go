//go:build js && wasm

package wasmconf_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/wdht/wdht/transport"
	"github.com/wdht/wdht/transport/transporttest"
	"github.com/wdht/wdht/transport/webrtc"
)

// The conformance suite on pairs of wasm transports in one page: a's offer, b's answer,
// exchanged in memory; each reaches the other at the remote address of that connection.
func TestConformance(t *testing.T) {
	// A warm-up pair, connected and closed: the runtime's goroutine that takes the calls
	// from JavaScript into Go (runtime.handleEvent) starts with the first such call and
	// stays; the suite's leak check would count it against the first subtest.
	a, b := newTransport(t), newTransport(t)
	connect(t, a, b)
	a.Close()
	b.Close()

	addrs := map[transport.Transport]netip.AddrPort{} // from -> the other's address
	transporttest.Run(t, func(t *testing.T) (transport.Transport, transport.Transport) {
		a, b := newTransport(t), newTransport(t)
		ab, ba := connect(t, a, b)
		clear(addrs)
		addrs[a], addrs[b] = ab, ba
		return a, b
	}, transporttest.Options{
		Unreachable:    netip.MustParseAddrPort("192.0.2.1:6881"),
		Addr:           func(from, to transport.Transport) netip.AddrPort { return addrs[from] },
		MaxMessageSize: webrtc.MaxMessageSize,
	})
}

func newTransport(t *testing.T) *webrtc.Transport {
	t.Helper()
	// The default ReadyDelay, as a node in a page has: with none (-1), a message sent the
	// moment the offerer's channel opened was lost, once in about eight runs of the suite,
	// in the answering page's channel (as a JS peer loses it: js-wire-protocol §11 B4).
	tr, err := webrtc.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// connect opens a connection from a to b through the Offer/Answer API and returns the
// address at which each reaches the other.
func connect(t *testing.T, a, b *webrtc.Transport) (ab, ba netip.AddrPort) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	o, err := a.NewOffer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	ans, err := b.NewAnswer(ctx, o.SDP(), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer ans.Close()
	type result struct {
		addr netip.AddrPort
		err  error
	}
	waited := make(chan result, 1)
	go func() {
		addr, err := ans.Wait(ctx)
		waited <- result{addr, err}
	}()
	ab, err = o.Connect(ctx, ans.SDP())
	r := <-waited
	if err != nil || r.err != nil {
		t.Fatalf("connecting: offer %v, answer %v", err, r.err)
	}
	return ab, r.addr
}
