package webrtc_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/transport/webrtc"
)

// testLogger logs to stderr at $WDHT_LOG's level (for example WDHT_LOG=debug), and nowhere
// when it is unset.
func testLogger(name string) hclog.Logger {
	lvl := os.Getenv("WDHT_LOG")
	if lvl == "" {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.LevelFromString(lvl), Output: os.Stderr})
}

// newTransport returns a loopback transport closed at the end of the test. cfg may be nil.
func newTransport(t testing.TB, name string, cfg *webrtc.Config) *webrtc.Transport {
	t.Helper()
	var c webrtc.Config
	if cfg != nil {
		c = *cfg
	}
	c.Loopback = true
	if c.Logger == nil {
		c.Logger = testLogger(name)
	}
	tr, err := webrtc.New(&c)
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

// serve runs a signalling server for tr on 127.0.0.1 (a free port) until the end of the
// test, and returns its address.
func serve(t testing.TB, tr *webrtc.Transport, cfg *webrtc.ServerConfig) (*webrtc.Server, string) {
	t.Helper()
	return serveOn(t, tr, cfg, "127.0.0.1:0")
}

func serveOn(t testing.TB, tr *webrtc.Transport, cfg *webrtc.ServerConfig, addr string) (*webrtc.Server, string) {
	t.Helper()
	srv, err := webrtc.NewServer(tr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, l.Addr().String()
}

// peerOf returns the address of tr's only connection.
func peerOf(t testing.TB, tr *webrtc.Transport) netip.AddrPort {
	t.Helper()
	ps := tr.Peers()
	if len(ps) != 1 {
		t.Fatalf("%d connections, want 1: %+v", len(ps), ps)
	}
	return ps[0].Addr
}

// ctxFor returns a context that ends after d or with the test.
func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// dial connects a to b through a signalling server of b, with the given method, and
// returns b's address as a sees it and a's as b sees it.
func dial(t testing.TB, a, b *webrtc.Transport, addr string) (ab, ba netip.AddrPort) {
	t.Helper()
	ab, err := a.Dial(ctxFor(t, 20*time.Second), addr)
	if err != nil {
		t.Fatal(err)
	}
	// Dial returned after the server's announcement, which b sends once it has the
	// connection.
	return ab, peerOf(t, b)
}

// offerAnswer makes an offer of a and b's answer to it, neither applied yet.
func offerAnswer(t testing.TB, ctx context.Context, a, b *webrtc.Transport) (*webrtc.Offer, *webrtc.Answer) {
	t.Helper()
	o, err := a.NewOffer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ans, err := b.NewAnswer(ctx, o.SDP(), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	return o, ans
}
