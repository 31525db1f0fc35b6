package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wdht/wdht/internal/testenv"
	"github.com/wdht/wdht/transport/webrtc"
)

// TestNodeBehindProxy runs a WebRTC node with --max-pending-per-ip 1 behind a reverse
// proxy (httputil.ReverseProxy on 127.0.0.1, which appends the client's address to
// X-Forwarded-For), clients coming from distinct loopback addresses: with
// --trusted-proxy 127.0.0.1 each client has its own cap, and forging the header does
// not escape it; without the flag every client is the proxy, and a forged header sent
// straight to the node changes nothing.
func TestNodeBehindProxy(t *testing.T) {
	testenv.NeedWebRTC(t)
	tr, err := webrtc.New(&webrtc.Config{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	o, err := tr.NewOffer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	body, _ := json.Marshal(map[string]any{"type": "offer", "sdp": o.SDP(), "extensions": []string{}})
	post := func(t *testing.T, u, fromIP, xff string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(string(body)))
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(fromIP)}}
		c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}, Timeout: 10 * time.Second}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	proxied := func(t *testing.T, args ...string) (proxy, direct string) {
		n := startNode(t, append([]string{"--transports", "webrtc", "--signal-addr", "127.0.0.1:0", "--status", "0",
			"--max-pending-per-ip", "1"}, args...)...)
		target, _ := url.Parse("http://" + n.signal)
		ps := httptest.NewServer(httputil.NewSingleHostReverseProxy(target))
		t.Cleanup(ps.Close)
		return ps.URL + "/", "http://" + n.signal + "/"
	}
	type step struct {
		from, xff string
		direct    bool
		want      int
	}
	for _, c := range []struct {
		name  string
		args  []string
		steps []step
	}{
		{"trusted", []string{"--trusted-proxy", "127.0.0.1"}, []step{
			{"127.0.0.2", "", false, 200},
			{"127.0.0.3", "", false, 200},
			{"127.0.0.2", "", false, 503},
			{"127.0.0.2", "192.0.2.1", false, 503},
		}},
		{"untrusted", nil, []step{
			{"127.0.0.2", "", false, 200},
			{"127.0.0.3", "", false, 503},
			{"127.0.0.1", "192.0.2.1", true, 503},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			proxy, direct := proxied(t, c.args...)
			for _, s := range c.steps {
				u := proxy
				if s.direct {
					u = direct
				}
				if got := post(t, u, s.from, s.xff); got != s.want {
					t.Errorf("POST from %s (X-Forwarded-For %q, direct %v): %d, want %d", s.from, s.xff, s.direct, got, s.want)
				}
			}
		})
	}
}
