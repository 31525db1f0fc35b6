//go:build !js

package webrtc

import (
	"crypto/sha1" //nolint:gosec // the fingerprint's algorithm under test
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

// chromeOffer is an offer as Chromium writes it for one data channel (host candidates
// already resolved from their mDNS names by prepareRemoteSDP), with the fingerprint at
// the session level, where Firefox puts it.
const chromeOffer = "v=0\r\n" +
	"o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n" +
	"s=-\r\nt=0 0\r\n" +
	"a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08\r\n" +
	"a=group:BUNDLE 0\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n" +
	"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=candidate:1467250027 1 udp 2122260223 192.0.2.10 46243 typ host generation 0 network-id 1\r\n" +
	"a=candidate:2 1 tcp 1518280447 192.0.2.10 9 typ host tcptype active generation 0 network-id 1\r\n" +
	"a=candidate:3 1 udp 1686052607 198.51.100.7 50000 typ srflx raddr 192.0.2.10 rport 46243 generation 0\r\n" +
	"a=candidate:4 1 udp 1 not-an-address typ\r\n" +
	"a=ice-ufrag:Bq7y\r\na=ice-pwd:b+K6EBwzT8CKLWrNpH0mRQbQ\r\na=ice-options:trickle\r\n" +
	"a=setup:actpass\r\na=mid:0\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n"

func TestParseRemoteDescription(t *testing.T) {
	rd, err := parseRemoteDescription(chromeOffer)
	if err != nil {
		t.Fatal(err)
	}
	if rd.ufrag != "Bq7y" || rd.pwd != "b+K6EBwzT8CKLWrNpH0mRQbQ" || rd.setup != "actpass" || rd.mid != "0" ||
		!strings.HasPrefix(rd.fingerprint, "sha-256 7B:8B:") {
		t.Errorf("parsed %+v", rd)
	}
	// The UDP host and server-reflexive candidates and the TCP one; not the broken one.
	var got []string
	for _, c := range rd.candidates {
		got = append(got, c.Type().String()+" "+c.NetworkType().NetworkShort()+" "+c.Address())
	}
	if want := "host udp 192.0.2.10,host tcp 192.0.2.10,srflx udp 198.51.100.7"; strings.Join(got, ",") != want {
		t.Errorf("candidates %q, want %q", strings.Join(got, ","), want)
	}

	for _, tc := range []struct {
		name, sdp, want string
	}{
		{"not SDP", "not an sdp", ""},
		{"no data channel", strings.Replace(chromeOffer, "m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "m=audio 9 UDP/TLS/RTP/SAVPF 111", 1), "no data channel"},
		{"no ufrag", strings.Replace(chromeOffer, "a=ice-ufrag:Bq7y\r\n", "", 1), "no ICE credentials"},
		{"no password", strings.Replace(chromeOffer, "a=ice-pwd:b+K6EBwzT8CKLWrNpH0mRQbQ\r\n", "", 1), "no ICE credentials"},
		{"no fingerprint", strings.Replace(chromeOffer, "a=fingerprint:", "a=x-fingerprint:", 1), "no DTLS fingerprint"},
	} {
		_, err := parseRemoteDescription(tc.sdp)
		if !errors.Is(err, errSignal) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want errSignal saying %q", tc.name, err, tc.want)
		}
	}
}

// An offer with media besides the data channel is answered m-line for m-line: the
// others rejected (port 0) in their places, the data channel's answered with its mid.
func TestAnswerRejectsMedia(t *testing.T) {
	offer := strings.Replace(chromeOffer, "a=group:BUNDLE 0\r\n", "a=group:BUNDLE a 1 v\r\n", 1)
	offer = strings.Replace(offer, "a=mid:0\r\n", "a=mid:1\r\n", 1)
	offer = strings.Replace(offer, "m=application", "m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\nc=IN IP4 0.0.0.0\r\na=mid:a\r\nm=application", 1)
	offer += "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:v\r\n"
	rd, err := parseRemoteDescription(offer)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := New(&Config{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	cert, err := tr.certificate()
	if err != nil {
		t.Fatal(err)
	}
	pe := &peer{t: tr, cert: cert}
	answer := pe.description("ufrag", "password-password-pwd", "active", &rd, nil)
	var d sdp.SessionDescription
	if err := d.UnmarshalString(answer); err != nil {
		t.Fatalf("our answer does not parse: %v\n%s", err, answer)
	}
	var got []string
	for _, m := range d.MediaDescriptions {
		mid, _ := m.Attribute("mid")
		got = append(got, m.MediaName.Media+":"+mid+":"+m.MediaName.Port.String())
	}
	if want := "audio:a:0,application:1:9,video:v:0"; strings.Join(got, ",") != want {
		t.Errorf("answer's m-lines %q, want %q\n%s", strings.Join(got, ","), want, answer)
	}
	if g, _ := d.Attribute("group"); g != "BUNDLE 1" {
		t.Errorf("group %q, want BUNDLE 1", g)
	}
	back, err := parseRemoteDescription(answer)
	if err != nil || back.setup != "active" || back.fingerprint != cert.fingerprint || back.mid != "1" {
		t.Errorf("our answer read back: %+v, %v", back, err)
	}
}

func TestCheckFingerprintHashes(t *testing.T) {
	der := []byte("a certificate")
	for _, tc := range []struct {
		fp   string
		want bool
	}{
		{"sha-256 " + fingerprintHex(sha256.New(), der), true},
		{"SHA-256 " + strings.ToLower(fingerprintHex(sha256.New(), der)), true},
		{"sha-1 " + fingerprintHex(sha1.New(), der), true},
		{"sha-256 " + fingerprintHex(sha256.New(), []byte("another")), false},
		{"md5 00:11", false},
		{"sha-256", false},
	} {
		if got := fingerprintMatches(der, tc.fp) == nil; got != tc.want {
			t.Errorf("fingerprint %q: match %v, want %v", tc.fp, got, tc.want)
		}
	}
}

// A peer's description from the network: no input panics, and what parses has what a
// connection needs.
func FuzzParseRemoteDescription(f *testing.F) {
	f.Add(chromeOffer)
	f.Add("v=0\r\nm=application 9 DTLS/SCTP 5000\r\na=ice-ufrag:a\r\na=ice-pwd:b\r\na=fingerprint:sha-256 00\r\n")
	f.Add("v=0\r\nm=audio 0 RTP/AVP 0\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		rd, err := parseRemoteDescription(s)
		if err != nil {
			if !errors.Is(err, errSignal) {
				t.Fatalf("error %v is not errSignal", err)
			}
			return
		}
		if rd.ufrag == "" || rd.pwd == "" || rd.fingerprint == "" || rd.mid == "" || rd.index > len(rd.rejected) {
			t.Fatalf("parsed %+v from %q", rd, s)
		}
	})
}
