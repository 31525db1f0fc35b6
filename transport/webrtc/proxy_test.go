//go:build !js

package webrtc_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wdht/wdht/transport/webrtc"
)

// TestTrustedProxy runs the signalling server behind a reverse proxy
// (httputil.ReverseProxy, which appends the client's address to X-Forwarded-For) with
// MaxPendingPerIP 1: with the proxy trusted, the cap applies per real client, and a
// client's own forged X-Forwarded-For entry does not change its address; without it,
// every client is the proxy, and a forged header sent straight to the server is ignored.
func TestTrustedProxy(t *testing.T) {
	c := newTransport(t, "c", nil)
	o, err := c.NewOffer(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	body := offerJSON(o.SDP())
	post := func(t *testing.T, url, fromIP, xff string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := from(fromIP).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	behindProxy := func(t *testing.T, cfg *webrtc.ServerConfig) (proxy string, srv *webrtc.Server, direct string) {
		b := newTransport(t, "b", &webrtc.Config{MaxPendingPerIP: 1})
		srv, addr := serve(t, b, cfg)
		target, _ := url.Parse("http://" + addr)
		ps := httptest.NewServer(httputil.NewSingleHostReverseProxy(target)) // on 127.0.0.1
		t.Cleanup(ps.Close)
		return ps.URL + "/", srv, "http://" + addr + "/"
	}

	t.Run("trusted", func(t *testing.T) {
		proxy, _, _ := behindProxy(t, &webrtc.ServerConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}})
		for _, c := range []struct {
			from, xff string
			want      int
		}{
			{"127.0.0.2", "", http.StatusOK},
			{"127.0.0.3", "", http.StatusOK},                             // another client: its own cap
			{"127.0.0.2", "", http.StatusServiceUnavailable},             // the first again: over its cap
			{"127.0.0.2", "198.51.100.9", http.StatusServiceUnavailable}, // forging does not help
			{"127.0.0.4", "127.0.0.3", http.StatusOK},                    // nor frame another
		} {
			if got := post(t, proxy, c.from, c.xff); got != c.want {
				t.Errorf("from %s (X-Forwarded-For %q): %d, want %d", c.from, c.xff, got, c.want)
			}
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		proxy, _, direct := behindProxy(t, nil)
		if got := post(t, proxy, "127.0.0.2", ""); got != http.StatusOK {
			t.Fatalf("first client: %d", got)
		}
		if got := post(t, proxy, "127.0.0.3", ""); got != http.StatusServiceUnavailable {
			t.Errorf("second client through an untrusted proxy: %d, want 503 (both are the proxy)", got)
		}
		if got := post(t, direct, "127.0.0.1", "203.0.113.5"); got != http.StatusServiceUnavailable {
			t.Errorf("a forged X-Forwarded-For from the proxy's address: %d, want 503", got)
		}
	})
	// A trusted proxy holds many clients' connections: the per-source connection cap,
	// applied when a connection is accepted (before any header), leaves it out.
	t.Run("connection cap", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			trusted []netip.Prefix
			ok      bool
		}{
			{"trusted", []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, true},
			{"untrusted", nil, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				b := newTransport(t, "b", nil)
				_, addr := serve(t, b, &webrtc.ServerConfig{MaxClientsPerIP: 1, TrustedProxies: tc.trusted})
				held, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}}).Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				defer held.Close()
				time.Sleep(50 * time.Millisecond) // accepted and counted before the next one
				req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/", strings.NewReader(body))
				req.Header.Set("X-Forwarded-For", "192.0.2.7")
				resp, err := from("127.0.0.1").Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if got := err == nil && resp.StatusCode == http.StatusOK; got != tc.ok {
					t.Errorf("a second connection from the proxy's address: answered %v (%v), want %v", got, err, tc.ok)
				}
			})
		}
	})
	t.Run("forwarded", func(t *testing.T) {
		b := newTransport(t, "b", &webrtc.Config{MaxPendingPerIP: 1})
		_, addr := serve(t, b, &webrtc.ServerConfig{
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/30")},
			ProxyHeader:    webrtc.HeaderForwarded,
		})
		u := "http://" + addr + "/"
		send := func(fwd, xff string) int {
			req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
			req.Header.Set("Forwarded", fwd)
			if xff != "" {
				req.Header.Set("X-Forwarded-For", xff)
			}
			resp, err := from("127.0.0.2").Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if got := send(`for="[2001:db8::1]:4711";proto=https`, ""); got != http.StatusOK {
			t.Errorf("first: %d", got)
		}
		if got := send(`for=192.0.2.60;proto=http, for=127.0.0.3`, "192.0.2.99"); got != http.StatusOK {
			t.Errorf("another client behind two trusted proxies: %d", got)
		}
		if got := send(`for=192.0.2.60`, ""); got != http.StatusServiceUnavailable {
			t.Errorf("the same client again: %d, want 503", got)
		}
	})
}

func TestServerConfigProxyValidate(t *testing.T) {
	for _, cfg := range []webrtc.ServerConfig{
		{TrustedProxies: []netip.Prefix{{}}},
		{ProxyHeader: "X-Real-IP"},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("%+v: valid", cfg)
		}
	}
}
