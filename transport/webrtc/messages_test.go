//go:build !js

package webrtc_test

import (
	"bytes"
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/transport/webrtc"
)

func TestAnnouncementEncoding(t *testing.T) {
	// Byte for byte what the JS sends (js-wire-protocol §2.3, §10).
	if got, want := string(webrtc.EncodeHTTPAnnouncement("127.0.0.1", 16881)), `{"http_server":{"host":"127.0.0.1","port":16881}}`; got != want {
		t.Errorf("http_server: %s, want %s", got, want)
	}
	if got, want := string(webrtc.EncodeWSAnnouncement("127.0.0.1", 16881)), "d9:ws_serverd4:host9:127.0.0.14:porti16881eee"; got != want {
		t.Errorf("ws_server: %s, want %s", got, want)
	}
}

func TestParseAnnouncement(t *testing.T) {
	for _, tc := range []struct {
		in     string
		server string
		ok     bool
	}{
		{`{"http_server":{"host":"127.0.0.1","port":16881}}`, "127.0.0.1:16881", true},
		{`{"http_server":{"port":443,"host":"dht.example.com"}}`, "dht.example.com:443", true},
		{`{"http_server":{"host":"::1","port":"80"}}`, "[::1]:80", true},
		{"d9:ws_serverd4:host9:127.0.0.14:porti16881eee", "127.0.0.1:16881", true},
		{`{"http_server":{"host":"127.0.0.1","port":0}}`, "", true},
		{`{"http_server":{"host":"","port":1}}`, "", true},
		{`{"http_server":{"host":"a b","port":1}}`, "", true},
		{`{"http_server":{"host":5,"port":1}}`, "", true},
		{`{"http_server":{"host":"` + strings.Repeat("a", 300) + `","port":1}}`, "", true},
		{"d9:ws_serverd4:host1:x4:porti70000eee", "", true},
		{"d9:ws_server3:badee", "", true},
		{`{"other":1}`, "", false},
		{`{not json`, "", false},
		{"d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:aa1:y1:qe", "", false},
		{"", "", false},
	} {
		server, ok := webrtc.ParseAnnouncement([]byte(tc.in))
		if server != tc.server || ok != tc.ok {
			t.Errorf("%.60q: %q, %v; want %q, %v", tc.in, server, ok, tc.server, tc.ok)
		}
	}
}

// A WebSocket-signalled connection announces in the bencoded form, an HTTP one in JSON;
// both are swallowed and parsed.
func TestAnnouncementPerMethod(t *testing.T) {
	for _, method := range methods {
		t.Run(method.String(), func(t *testing.T) {
			a := newTransport(t, "a", &webrtc.Config{DialOrder: []webrtc.Signalling{method}, Advertise: "client.example:1"})
			b := newTransport(t, "b", &webrtc.Config{Advertise: "server.example:2"})
			_, srvAddr := serve(t, b, nil)
			dial(t, a, b, srvAddr)
			if got := a.SignallingServers(); len(got) != 1 || got[0] != "server.example:2" {
				t.Errorf("a learnt %v", got)
			}
			// b learns a's announcement once it arrives; a KRPC message from a after it
			// proves it has.
			ab := peerOf(t, a)
			if err := a.Send(ab, []byte("d1:y1:qe")); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Receive(ctxFor(t, 10*time.Second)); err != nil {
				t.Fatal(err)
			}
			if got := b.SignallingServers(); len(got) != 1 || got[0] != "client.example:1" {
				t.Errorf("b learnt %v", got)
			}
		})
	}
}

const chromeOffer = "v=0\r\n" +
	"o=- 1 2 IN IP4 127.0.0.1\r\n" +
	"a=candidate:1 1 udp 2113937151 3b8c1a9e-2f6d-4c1b-9a77-0123456789ab.local 54400 typ host generation 0 network-cost 999\r\n" +
	"a=candidate:2 1 udp 2113939711 fd00::2 54401 typ host generation 0\r\n" +
	"a=candidate:3 1 udp 2113937151 unknown-uuid.local 54402 typ host\r\n" +
	"a=candidate:4 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active\r\n" +
	"a=candidate:5 1 udp 1677729535 203.0.113.7 54403 typ srflx raddr 0.0.0.0 rport 0\r\n" +
	"a=end-of-candidates\r\n"

// A peer's mDNS candidates are resolved to IPs before pion sees them (and dropped when
// they do not resolve); IPv6 candidates are dropped unless IPv6 is on.
func TestPrepareRemoteSDP(t *testing.T) {
	tr, err := webrtc.New(nil) // production settings: mDNS on
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var mu sync.Mutex
	var asked []string
	tr.SetResolver(func(ctx context.Context, name string) (netip.Addr, bool) {
		mu.Lock()
		asked = append(asked, name)
		mu.Unlock()
		if name == "3b8c1a9e-2f6d-4c1b-9a77-0123456789ab.local" {
			return netip.MustParseAddr("192.168.1.20"), true
		}
		return netip.Addr{}, false
	})
	got := tr.PrepareRemoteSDP(t.Context(), chromeOffer)
	want := "v=0\r\n" +
		"o=- 1 2 IN IP4 127.0.0.1\r\n" +
		"a=candidate:1 1 udp 2113937151 192.168.1.20 54400 typ host generation 0 network-cost 999\r\n" +
		"a=candidate:4 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active\r\n" +
		"a=candidate:5 1 udp 1677729535 203.0.113.7 54403 typ srflx raddr 0.0.0.0 rport 0\r\n" +
		"a=end-of-candidates\r\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if len(asked) != 2 {
		t.Errorf("resolved %v, want both names", asked)
	}

	// Loopback (like NoMDNS) drops names without asking.
	lo := newTransport(t, "lo", nil)
	lo.SetResolver(func(context.Context, string) (netip.Addr, bool) {
		t.Error("resolver called with Loopback")
		return netip.Addr{}, false
	})
	if got := lo.PrepareRemoteSDP(t.Context(), chromeOffer); strings.Contains(got, ".local") || strings.Contains(got, "fd00::2") {
		t.Errorf("loopback kept names or IPv6:\n%s", got)
	}
	// Unix line ends survive too.
	if got := lo.PrepareRemoteSDP(t.Context(), "v=0\na=candidate:1 1 udp 1 x.local 1 typ host\na=x\n"); got != "v=0\na=x\n" {
		t.Errorf("LF-only SDP: %q", got)
	}
}

// pion's logs reach the hclog logger, one level lower.
func TestPionLogBridge(t *testing.T) {
	buf := &syncBuffer{}
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: buf})
	a := newTransport(t, "a", &webrtc.Config{Logger: log, ReadyDelay: -1})
	b := newTransport(t, "b", &webrtc.Config{ReadyDelay: -1})
	pair(t, a, b)
	a.Close()
	out := buf.String()
	for _, want := range []string{"[DEBUG] webrtc.pion.ice:", "[TRACE] webrtc.pion.", "[DEBUG] webrtc: connection open"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in the log:\n%.3000s", want, out)
		}
	}
	if strings.Contains(out, "[INFO]") {
		t.Errorf("pion logged at Info (its Info should be Debug):\n%.3000s", out)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
