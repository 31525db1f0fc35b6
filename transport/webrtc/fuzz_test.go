package webrtc

import (
	"strings"
	"testing"
)

// The signalling messages from the network: HTTP (JSON) and WebSocket (bencode) offers
// and answers, and the first-message announcement. No input panics; what decodes
// re-encodes to something that decodes the same.
func FuzzSignalMessages(f *testing.F) {
	f.Add([]byte(`{"type":"offer","sdp":"v=0\r\n","extensions":["x"]}`))
	f.Add([]byte(`d10:extensionsl4:ext1e3:sdp3:v=04:type5:offere`))
	f.Add([]byte(`{"http_server":{"host":"127.0.0.1","port":"80"}}`))
	f.Add([]byte(`d9:ws_serverd4:host9:127.0.0.14:porti80eee`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, want := range []string{"offer", "answer"} {
			if s, err := decodeJSONSignal(b, want); err == nil {
				if s2, err := decodeJSONSignal(s.json(), want); err != nil || s2.SDP != s.SDP {
					t.Fatalf("JSON re-decoding %q: %v", b, err)
				}
			}
			if s, err := decodeBencodeSignal(b, want); err == nil {
				if s2, err := decodeBencodeSignal(s.bencode(), want); err != nil || s2.SDP != s.SDP {
					t.Fatalf("bencode re-decoding %q: %v", b, err)
				}
			}
		}
		if srv, ok := parseAnnouncement(b); ok && srv != "" {
			host, port, err := splitHostPort(srv)
			if err != nil || !validHost(host) || port < 1 || port > 65535 {
				t.Fatalf("announcement %q gave %q", b, srv)
			}
		}
	})
}

// SDP preparation: no input panics, the caps hold, and no .local name is left.
func FuzzPrepareRemoteSDP(f *testing.F) {
	f.Add("v=0\r\na=candidate:1 1 udp 2113937151 a.local 54400 typ host\r\na=candidate:2 1 udp 1 192.0.2.1 1 typ host\r\n")
	f.Add("a=candidate:1 1 UDP 1 fd00::1 5 typ host\na=candidate:1 1 udp 1 fd00::1 5 typ host\n")
	f.Add("a=candidate:")
	f.Fuzz(func(t *testing.T, sdp string) {
		tr, err := New(&Config{Loopback: true})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		got := tr.prepareRemoteSDP(t.Context(), sdp)
		n := 0
		for _, l := range strings.Split(got, "\n") {
			if a, _, _, ok := candidateAddr(strings.TrimSuffix(l, "\r")); ok {
				n++
				if isMDNSName(a) {
					t.Fatalf("name left: %q", l)
				}
			}
		}
		if n > maxRemoteCandidates {
			t.Fatalf("%d candidates kept", n)
		}
	})
}
