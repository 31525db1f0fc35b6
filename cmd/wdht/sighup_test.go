//go:build !js

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/coder/websocket"

	"github.com/wdht/wdht/internal/testenv"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/webrtc"
)

// TestSIGHUPReload runs a WebRTC node with TLS and --state as a process, opens a data
// channel and a WebSocket signalling session (offer received, not yet answered), then
// replaces the certificate files and sends SIGHUP: new TLS handshakes get the new
// certificate, the WebSocket session completes (its data channel opens), the first data
// channel still carries a ping, and the state file was written.
func TestSIGHUPReload(t *testing.T) {
	testenv.NeedWebRTC(t)
	cert, key, roots1 := testenv.SelfSigned(t)
	cert2, key2, roots2 := testenv.SelfSigned(t)
	state := filepath.Join(t.TempDir(), "state.json")
	p := startProcess(t, "--transports", "webrtc", "--signal-addr", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key,
		"--state", state, "--status", "0")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	// A data channel, through the TLS signalling server.
	tr1, err := webrtc.New(&webrtc.Config{Loopback: true, DialTLS: webrtc.TLSAlways, TLSConfig: &tls.Config{RootCAs: roots1}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr1.Close()
	peer, err := tr1.Dial(ctx, p.signal)
	if err != nil {
		t.Fatalf("dial %s: %v", p.signal, err)
	}

	// A WebSocket session: the server's offer arrives; the answer goes after SIGHUP.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots1}}}
	ws, _, err := websocket.Dial(ctx, "wss://"+p.signal+"/", &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	_, msg, err := ws.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var offer struct {
		Type string `bencode:"type"`
		SDP  string `bencode:"sdp"`
	}
	if err := bencode.Unmarshal(msg, &offer); err != nil || offer.Type != "offer" {
		t.Fatalf("WebSocket offer %q: %v", msg, err)
	}

	if _, err := os.Stat(state); err == nil {
		t.Fatal("the state file exists before SIGHUP")
	}
	for _, c := range [][2]string{{cert2, cert}, {key2, key}} {
		b, err := os.ReadFile(c[0])
		if err != nil {
			t.Fatal(err)
		}
		// As certbot does: write aside, then rename over.
		if err := os.WriteFile(c[1]+".new", b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(c[1]+".new", c[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.out.await(t, 0, regexp.MustCompile(`^RELOADED state=saved cert=reloaded$`), 10*time.Second)

	// New handshakes see the new certificate.
	conn, err := tls.Dial("tcp", p.signal, &tls.Config{RootCAs: roots2})
	if err != nil {
		t.Fatalf("TLS handshake trusting only the new certificate: %v", err)
	}
	got := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	newPEM, _ := os.ReadFile(cert2)
	want := parsePEMCert(t, newPEM)
	if !bytes.Equal(got.Raw, want.Raw) {
		t.Error("a handshake after SIGHUP got another certificate than the new one")
	}
	if c, err := tls.Dial("tcp", p.signal, &tls.Config{RootCAs: roots1}); err == nil {
		c.Close()
		t.Error("a handshake after SIGHUP still verifies with the old certificate")
	}

	// The WebSocket session survived: answer it, and its data channel opens.
	tr2, err := webrtc.New(&webrtc.Config{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr2.Close()
	ans, err := tr2.NewAnswer(ctx, offer.SDP, netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := bencode.Marshal(map[string]any{"type": "answer", "sdp": ans.SDP(), "extensions": []string{}})
	if err := ws.Write(ctx, websocket.MessageBinary, b); err != nil {
		t.Fatalf("the WebSocket opened before SIGHUP is gone: %v", err)
	}
	if _, err := ans.Wait(ctx); err != nil {
		t.Fatalf("the WebSocket session begun before SIGHUP did not connect: %v", err)
	}

	// The data channel opened before SIGHUP still carries queries.
	ping := krpc.Msg{T: "hu", Y: krpc.TypeQuery, Q: krpc.MethodPing, A: &krpc.Args{}}
	ping.A.ID = krpc.ID{1}
	pb, err := ping.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr1.Send(peer, pb); err != nil {
		t.Fatalf("send on the first data channel: %v", err)
	}
	for {
		pkt, err := tr1.Receive(ctx)
		if err != nil {
			t.Fatalf("no answer to a ping on the first data channel: %v", err)
		}
		var m krpc.Msg
		if m.UnmarshalBinary(pkt.Data) == nil && m.T == "hu" && m.Y == krpc.TypeResponse {
			break
		}
	}

	sf, err := loadState(state)
	if err != nil || sf == nil || sf.Web == nil || sf.Web.ID.String() != p.webID {
		b, _ := os.ReadFile(state)
		t.Errorf("state file after SIGHUP: %+v, %v; want the WebRTC node's ID %s\n%s", sf, err, p.webID, b)
	}
	p.stop(t, syscall.SIGTERM)
}

func parsePEMCert(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("not a PEM certificate")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
