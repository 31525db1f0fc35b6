//go:build !js

package webrtc_test

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pion/ice/v2"
	pwebrtc "github.com/pion/webrtc/v3"

	"github.com/wdht/wdht/transport/webrtc"
)

// The transport's own stack (ICE, DTLS, SCTP, DCEP without pion's PeerConnection) with
// pion's PeerConnection on the other side, each way, as the load generator's peers and
// every earlier version of this transport are.

// pionPeer returns a PeerConnection on loopback, closed at the end of the test. With
// media, its API knows the default codecs, so that it can offer audio.
func pionPeer(t *testing.T, media bool) *pwebrtc.PeerConnection {
	t.Helper()
	var se pwebrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]pwebrtc.NetworkType{pwebrtc.NetworkTypeUDP4})
	opts := []func(*pwebrtc.API){pwebrtc.WithSettingEngine(se)}
	if media {
		var me pwebrtc.MediaEngine
		if err := me.RegisterDefaultCodecs(); err != nil {
			t.Fatal(err)
		}
		opts = append(opts, pwebrtc.WithMediaEngine(&me))
	}
	pc, err := pwebrtc.NewAPI(opts...).NewPeerConnection(pwebrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

// setLocal sets pc's local description and waits for its candidates.
func setLocal(t *testing.T, pc *pwebrtc.PeerConnection, d pwebrtc.SessionDescription) string {
	t.Helper()
	gathered := pwebrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(d); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		t.Fatal("pion gathered no candidates in 10 s")
	}
	return pc.LocalDescription().SDP
}

// echo makes pc answer each message of every data channel with the same message, and
// reports each channel once it opens.
func echo(pc *pwebrtc.PeerConnection) <-chan *pwebrtc.DataChannel {
	opened := make(chan *pwebrtc.DataChannel, 1)
	pc.OnDataChannel(func(dc *pwebrtc.DataChannel) {
		dc.OnOpen(func() { opened <- dc })
		dc.OnMessage(func(m pwebrtc.DataChannelMessage) { dc.Send(m.Data) })
	})
	return opened
}

// roundTrip sends msg to addr and waits for it to come back.
func roundTrip(t *testing.T, tr *webrtc.Transport, addr netip.AddrPort, msg string) {
	t.Helper()
	if err := tr.Send(addr, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	p, err := tr.Receive(ctxFor(t, 10*time.Second))
	if err != nil || p.From != addr || string(p.Data) != msg {
		t.Fatalf("Receive: %v %q %v, want %q from %v", p.From, p.Data, err, msg, addr)
	}
}

func TestPeerConnectionAnswersOurOffer(t *testing.T) {
	ctx := ctxFor(t, 20*time.Second)
	a := newTransport(t, "a", &webrtc.Config{ReadyDelay: -1})
	o, err := a.NewOffer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan netip.AddrPort, 1)
	a.NotifyClosed(func(p netip.AddrPort) {
		select {
		case closed <- p:
		default:
		}
	})
	pc := pionPeer(t, false)
	opened := echo(pc)
	if err := pc.SetRemoteDescription(pwebrtc.SessionDescription{Type: pwebrtc.SDPTypeOffer, SDP: o.SDP()}); err != nil {
		t.Fatalf("pion does not take our offer: %v\n%s", err, o.SDP())
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := o.Connect(ctx, setLocal(t, pc, ans))
	if err != nil {
		t.Fatal(err)
	}
	var dc *pwebrtc.DataChannel
	select {
	case dc = <-opened:
	case <-ctx.Done():
		t.Fatal("pion's side of the channel never opened")
	}
	// Ordered and reliable, with a label of ours, as the JS makes its channels.
	if !dc.Ordered() || dc.MaxRetransmits() != nil || dc.MaxPacketLifeTime() != nil || !strings.HasPrefix(dc.Label(), "wdht-") {
		t.Errorf("channel %q: ordered %v, max retransmits %v, max lifetime %v", dc.Label(), dc.Ordered(), dc.MaxRetransmits(), dc.MaxPacketLifeTime())
	}
	roundTrip(t, a, addr, "d1:y1:qe")
	if ps := a.Peers(); len(ps) != 1 || ps[0].Addr != addr {
		t.Errorf("Peers() = %+v", ps)
	}
	// pion closing its side closes ours.
	pc.Close()
	select {
	case p := <-closed:
		if p != addr {
			t.Errorf("closed %v, want %v", p, addr)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the connection outlived pion's PeerConnection by 15 s")
	}
	if ps := a.Peers(); len(ps) != 0 {
		t.Errorf("Peers() = %+v after the close", ps)
	}
}

// answerPeerConnection has b answer pc's offer and waits until b's connection and pc's
// channel (opened) are open; it returns b's answer and pc's address.
func answerPeerConnection(t *testing.T, ctx context.Context, b *webrtc.Transport, pc *pwebrtc.PeerConnection, opened <-chan struct{}) (string, netip.AddrPort) {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	answer, err := b.NewAnswer(ctx, setLocal(t, pc, offer), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetRemoteDescription(pwebrtc.SessionDescription{Type: pwebrtc.SDPTypeAnswer, SDP: answer.SDP()}); err != nil {
		t.Fatalf("pion does not take our answer: %v\n%s", err, answer.SDP())
	}
	addr, err := answer.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-opened:
	case <-ctx.Done():
		t.Fatal("pion's channel never opened")
	}
	return answer.SDP(), addr
}

// An offer of pion's with audio besides the data channel: we answer the data channel
// and reject the audio, and pion takes the answer.
func TestWeAnswerPeerConnectionOffer(t *testing.T) {
	ctx := ctxFor(t, 20*time.Second)
	b := newTransport(t, "b", &webrtc.Config{ReadyDelay: -1})
	pc := pionPeer(t, true)
	// Receive-only: pion fails a sending transceiver whose m-line is rejected.
	recv := pwebrtc.RTPTransceiverInit{Direction: pwebrtc.RTPTransceiverDirectionRecvonly}
	if _, err := pc.AddTransceiverFromKind(pwebrtc.RTPCodecTypeAudio, recv); err != nil {
		t.Fatal(err)
	}
	dc, err := pc.CreateDataChannel("pion", nil)
	if err != nil {
		t.Fatal(err)
	}
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })
	got := make(chan string, 1)
	dc.OnMessage(func(m pwebrtc.DataChannelMessage) { got <- string(m.Data) })
	answer, addr := answerPeerConnection(t, ctx, b, pc, opened)
	if n := len(regexp.MustCompile(`(?m)^m=audio 0 `).FindAllString(answer, -1)); n != 1 {
		t.Errorf("the answer rejects %d audio m-lines, want 1:\n%s", n, answer)
	}
	if err := dc.SendText("d1:y1:re"); err != nil {
		t.Fatal(err)
	}
	p, err := b.Receive(ctx)
	if err != nil || p.From != addr || string(p.Data) != "d1:y1:re" {
		t.Fatalf("Receive: %v %q %v", p.From, p.Data, err)
	}
	if err := b.Send(addr, []byte("d1:y1:qe")); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m != "d1:y1:qe" {
			t.Errorf("pion received %q", m)
		}
	case <-ctx.Done():
		t.Fatal("pion received nothing")
	}
}

// A peer whose certificate is not the one its description names does not connect: the
// DTLS handshake completes, the fingerprint check fails, and the connection is closed.
func TestFingerprintMismatch(t *testing.T) {
	ctx := ctxFor(t, 20*time.Second)
	a := newTransport(t, "a", nil)
	b := newTransport(t, "b", nil)
	c := newTransport(t, "c", nil)
	o, ans := offerAnswer(t, ctx, a, b)
	other, err := c.NewOffer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fp := regexp.MustCompile(`a=fingerprint:[^\r\n]+`)
	forged := fp.ReplaceAllString(ans.SDP(), fp.FindString(other.SDP()))
	if forged == ans.SDP() {
		t.Fatal("no fingerprint replaced")
	}
	done := make(chan error, 1)
	go func() {
		_, err := ans.Wait(ctx)
		done <- err
	}()
	_, err = o.Connect(ctx, forged)
	if err == nil || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "fingerprint") {
		t.Fatalf("Connect with a forged fingerprint: %v, want a failure, before the deadline, naming the fingerprint", err)
	}
	if err := <-done; err == nil {
		t.Error("the answerer connected to an offerer that refused its certificate")
	}
	if len(a.Peers()) != 0 || len(b.Peers()) != 0 {
		t.Errorf("connections left: %v, %v", a.Peers(), b.Peers())
	}
}

// maxGoroutinesPerConn bounds the goroutines of one open connection, 10 now: ICE (task
// loop, connectivity checks, candidate read loop), DTLS (read loop, handshake state
// machine, two context watchers), SCTP (read and write loops) and the transport's read
// loop. pion's PeerConnection took 16: SRTP and SRTCP read loops, two undeclared-media
// processors, a mux read loop and an SCTP accept loop on top.
const maxGoroutinesPerConn = 11

func TestConnectionGoroutines(t *testing.T) {
	a := newTransport(t, "a", &webrtc.Config{ReadyDelay: -1})
	b := newTransport(t, "b", &webrtc.Config{ReadyDelay: -1})
	// settled returns the goroutine count once it has not changed for 300 ms.
	settled := func() int {
		n, since := runtime.NumGoroutine(), time.Now()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if m := runtime.NumGoroutine(); m != n {
				n, since = m, time.Now()
			} else if time.Since(since) > 300*time.Millisecond {
				break
			}
		}
		return n
	}
	pair(t, a, b) // the transports' own goroutines start with their first connection
	before := settled()
	const conns = 4
	for range conns {
		pair(t, a, b)
	}
	after := settled()
	per := float64(after-before) / (2 * conns) // both ends are in this process
	t.Logf("%d goroutines for %d connections, both ends: %.1f per end", after-before, conns, per)
	if per > maxGoroutinesPerConn {
		t.Errorf("%.1f goroutines per connection, want at most %d", per, maxGoroutinesPerConn)
	}
}

// A peer that opens more than one data channel: the first is the connection's; another
// is never accepted, and what the peer sends on it never reaches the transport.
func TestExtraChannelNotAccepted(t *testing.T) {
	ctx := ctxFor(t, 20*time.Second)
	b := newTransport(t, "b", &webrtc.Config{ReadyDelay: -1})
	pc := pionPeer(t, false)
	first, err := pc.CreateDataChannel("first", nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := pc.CreateDataChannel("second", nil)
	if err != nil {
		t.Fatal(err)
	}
	opened := make(chan struct{})
	first.OnOpen(func() { close(opened) })
	_, addr := answerPeerConnection(t, ctx, b, pc, opened)
	// pion reports the second channel open without our acknowledgement; it sends on it.
	if err := second.SendText("d1:y1:e2e"); err != nil {
		t.Logf("pion does not send on the second channel: %v", err)
	}
	if err := first.SendText("d1:y1:e1e"); err != nil {
		t.Fatal(err)
	}
	p, err := b.Receive(ctx)
	if err != nil || p.From != addr || string(p.Data) != "d1:y1:e1e" {
		t.Fatalf("Receive: %v %q %v, want the first channel's message", p.From, p.Data, err)
	}
	if len(b.Peers()) != 1 {
		t.Errorf("Peers() = %v, want the one connection", b.Peers())
	}
}
