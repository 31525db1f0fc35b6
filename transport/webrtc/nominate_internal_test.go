//go:build !js

package webrtc

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/stun"
	ptransport "github.com/pion/transport/v2"
	"github.com/pion/transport/v2/stdnet"
)

// The socket tells a check's success response (signed with the peer's password) from
// everything else that reaches it: requests, a STUN server's unsigned answer, DTLS.
func TestIsCheckSuccess(t *testing.T) {
	xor := &stun.XORMappedAddress{IP: net.IPv4(192, 0, 2, 1), Port: 4000}
	integrity := stun.NewShortTermIntegrity("password")
	build := func(setters ...stun.Setter) []byte {
		m, err := stun.Build(setters...)
		if err != nil {
			t.Fatal(err)
		}
		return m.Raw
	}
	signed := build(stun.BindingSuccess, stun.TransactionID, xor, integrity, stun.Fingerprint)
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"check's success", signed, true},
		{"check's success without fingerprint", build(stun.BindingSuccess, stun.TransactionID, xor, integrity), true},
		{"STUN server's answer", build(stun.BindingSuccess, stun.TransactionID, xor, stun.Fingerprint), false},
		{"check", build(stun.BindingRequest, stun.TransactionID, stun.NewUsername("a:b"), integrity, stun.Fingerprint), false},
		{"error response", build(stun.NewType(stun.MethodBinding, stun.ClassErrorResponse), stun.TransactionID, stun.CodeRoleConflict, integrity), false},
		{"truncated", signed[:len(signed)-10], false},
		{"header only", signed[:20], false},
		{"length past the end", append(append([]byte{}, signed[:2]...), append([]byte{0xff, 0xfc}, signed[4:]...)...), false},
		{"no magic cookie", append(append([]byte{}, signed[:4]...), append([]byte{0, 0, 0, 0}, signed[8:]...)...), false},
		{"DTLS record", []byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false},
		{"empty", nil, false},
	} {
		if got := isCheckSuccess(tc.b); got != tc.want {
			t.Errorf("%s: isCheckSuccess = %v, want %v", tc.name, got, tc.want)
		}
	}
	// An attribute whose length runs past the message: not read beyond it.
	bad := append([]byte{}, signed...)
	binary.BigEndian.PutUint16(bad[22:], 0xfff0)
	if isCheckSuccess(bad) {
		t.Error("a malformed first attribute was skipped over")
	}
}

// When the nominator asks for rounds of checks: once a success response has been handled
// and at the end of each acceptance wait, only while checking, and for success responses
// at most maxSuccessKicks times.
func TestNominatorSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var at []time.Duration
		start := time.Now()
		n := &nominator{kickHook: func(int) {
			mu.Lock()
			at = append(at, time.Since(start))
			mu.Unlock()
		}}
		kicks := func() []time.Duration {
			synctest.Wait()
			mu.Lock()
			defer mu.Unlock()
			return append([]time.Duration(nil), at...)
		}
		n.succeeded() // before checking: nothing to nominate
		if k := kicks(); len(k) != 0 {
			t.Fatalf("kicked before checking started: %v", k)
		}
		n.iceState(ice.ConnectionStateChecking)
		time.Sleep(10 * time.Millisecond)
		n.succeeded()
		time.Sleep(time.Second)
		want := []time.Duration{10 * time.Millisecond}
		for _, w := range acceptanceWaits() {
			want = append(want, w+nominationMargin)
		}
		if k := kicks(); fmt.Sprint(k) != fmt.Sprint(want) {
			t.Fatalf("kicks at %v, want %v (a success, then the end of each acceptance wait)", k, want)
		}
		for range 2 * maxSuccessKicks {
			n.succeeded()
		}
		if k := kicks(); len(k) != maxSuccessKicks+len(acceptanceWaits()) {
			t.Fatalf("%d kicks, want %d by success responses and %d by the waits", len(k), maxSuccessKicks, len(acceptanceWaits()))
		}

		// Success responses spend their budget before the waits end: the waits still
		// have their rounds.
		at = nil
		start = time.Now()
		n = &nominator{kickHook: n.kickHook}
		n.iceState(ice.ConnectionStateChecking)
		for range 2 * maxSuccessKicks {
			n.succeeded()
		}
		time.Sleep(time.Second)
		want = want[1:]
		for range maxSuccessKicks {
			want = append([]time.Duration{0}, want...)
		}
		if k := kicks(); fmt.Sprint(k) != fmt.Sprint(want) {
			t.Fatalf("kicks at %v, want %v", k, want)
		}

		// Connected before the waits end: no more rounds asked for.
		at = nil
		start = time.Now()
		n = &nominator{kickHook: n.kickHook}
		n.iceState(ice.ConnectionStateChecking)
		n.succeeded()
		n.iceState(ice.ConnectionStateConnected)
		n.succeeded()
		time.Sleep(time.Second)
		if k := kicks(); len(k) != 1 || k[0] != 0 {
			t.Fatalf("kicks at %v, want one, at once", k)
		}
		n.iceState(ice.ConnectionStateChecking) // never restarts
		n.succeeded()
		time.Sleep(time.Second)
		if k := kicks(); len(k) != 1 {
			t.Fatalf("kicks at %v after the nominator ended", k)
		}
	})
}

// recordingNet is stdnet with every datagram its UDP sockets send recorded.
type recordingNet struct {
	ptransport.Net
	mu   sync.Mutex
	sent []net.Addr
	at   []time.Time
	// stun counts the binding requests sent to each address.
	stun map[string]int
}

func (r *recordingNet) ListenUDP(network string, laddr *net.UDPAddr) (ptransport.UDPConn, error) {
	c, err := r.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return &recordingConn{UDPConn: c, r: r}, nil
}

type recordingConn struct {
	ptransport.UDPConn
	r *recordingNet
}

func (c *recordingConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	c.r.mu.Lock()
	c.r.sent = append(c.r.sent, addr)
	c.r.at = append(c.r.at, time.Now())
	if len(b) >= 2 && binary.BigEndian.Uint16(b) == 0x0001 {
		c.r.stun[addr.String()]++
	}
	c.r.mu.Unlock()
	return c.UDPConn.WriteTo(b, addr)
}

func (r *recordingNet) requests(addr string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stun[addr]
}

// The candidate that asks for a round of checks makes the agent ping at once, and pairs
// with nothing: no packet goes to it, no candidate pair has it. The offer's answer points
// at a socket that never answers, so every round of the offer's agent pings it once (a
// round that finds a pair to nominate would not): the n-th kick must bring the (n+1)-th
// ping before pion's own next round, due 200 ms after the start.
func TestKickAsksForARound(t *testing.T) {
	tr := bareTransport(t, Config{})
	sink, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	sinkAddr := sink.LocalAddr().String()
	ok := false
	for attempt := 0; attempt < 3 && !ok; attempt++ {
		rec := &recordingNet{stun: map[string]int{}}
		tr.nom.baseNet = func() (ptransport.Net, error) {
			n, err := stdnet.NewNet()
			rec.Net = n
			return rec, err
		}
		var nom *nominator
		tr.nom.created = func(n *nominator) { nom = n }
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		o, err := tr.NewOffer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		answer := blackHoleAnswer(t, o.SDP(), sink.LocalAddr().(*net.UDPAddr))
		begin := time.Now()
		if err := o.p.applyAnswer(ctx, answer); err != nil {
			t.Fatal(err)
		}
		waitFor := func(n int) {
			for rec.requests(sinkAddr) < n {
				if ctx.Err() != nil {
					t.Fatalf("%d binding requests to the silent peer, want %d", rec.requests(sinkAddr), n)
				}
				time.Sleep(time.Millisecond)
			}
		}
		waitFor(1)
		const kicks = 3
		for k := 1; k <= kicks; k++ {
			c, err := ice.UnmarshalCandidate(kickCandidate(k))
			if err != nil {
				t.Fatal(err)
			}
			if err := o.p.pe.agent.AddRemoteCandidate(c); err != nil {
				t.Fatal(err)
			}
			waitFor(1 + k)
		}
		took := time.Since(begin)
		ok = took < 200*time.Millisecond
		if !ok {
			t.Logf("attempt %d: %d rounds took %v, as long as pion's own round: cannot tell them apart", attempt+1, 1+kicks, took)
		}

		// No packet went to a kick candidate, and no pair has one.
		rec.mu.Lock()
		for _, a := range rec.sent {
			if a.String() != sinkAddr {
				t.Errorf("a packet went to %v", a)
			}
		}
		rec.mu.Unlock()
		remotes := map[string]ice.CandidateStats{}
		for _, r := range o.p.pe.agent.GetRemoteCandidatesStats() {
			remotes[r.ID] = r
		}
		for _, p := range o.p.pe.agent.GetCandidatePairsStats() {
			if r, isCand := remotes[p.RemoteCandidateID]; isCand && r.Port != sink.LocalAddr().(*net.UDPAddr).Port {
				t.Errorf("a candidate pair has the remote candidate %s:%d", r.IP, r.Port)
			}
		}
		o.Close()
		cancel()
		// Closed while checking: the nominator ends with the offer, its timers stopped.
		nom.mu.Lock()
		state, timers := nom.state, len(nom.timers)
		nom.mu.Unlock()
		if state != nominatorDone || timers != 0 {
			t.Errorf("the nominator of a closed offer: state %v, %d timers", state, timers)
		}
	}
	if !ok {
		t.Fatal("three rounds of checks asked for never came before pion's 200 ms tick")
	}
}

// blackHoleAnswer returns an answer to offer (pion's, with its DTLS setup) whose only
// candidate is addr.
func blackHoleAnswer(t *testing.T, offer string, addr *net.UDPAddr) string {
	t.Helper()
	mid := regexp.MustCompile(`(?m)^a=mid:(\S+)`).FindStringSubmatch(offer)
	fp := regexp.MustCompile(`(?m)^a=fingerprint:.*$`).FindString(offer)
	if mid == nil || fp == "" {
		t.Fatalf("offer without mid or fingerprint:\n%s", offer)
	}
	lines := []string{
		"v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0",
		"a=group:BUNDLE " + mid[1],
		"m=application 9 UDP/DTLS/SCTP webrtc-datachannel", "c=IN IP4 0.0.0.0",
		"a=ice-ufrag:silentufrag", "a=ice-pwd:silentpasswordsilentpassword",
		fp, "a=setup:active", "a=mid:" + mid[1], "a=sctp-port:5000",
		fmt.Sprintf("a=candidate:1 1 udp 2130706431 %s %d typ host", addr.IP, addr.Port),
		"a=end-of-candidates",
	}
	return strings.Join(lines, "\r\n") + "\r\n"
}

// An offer between two of our transports connects with its sockets watched, and its
// nominator ends with the connection: nothing left scheduled, no more rounds asked for.
func TestNominatorEndsWhenConnected(t *testing.T) {
	a, b := bareTransport(t, Config{}), bareTransport(t, Config{})
	var n *nominator
	a.nom.created = func(x *nominator) { n = x }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	o, err := a.NewOffer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ans, err := b.NewAnswer(ctx, o.SDP(), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Connect(ctx, ans.SDP()); err != nil {
		t.Fatal(err)
	}
	if _, err := ans.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if n == nil {
		t.Fatal("the offer has no nominator")
	}
	for !n.done() {
		if ctx.Err() != nil {
			t.Fatal("the nominator did not end with the connection")
		}
		time.Sleep(time.Millisecond)
	}
	n.mu.Lock()
	timers, kicks := len(n.timers), n.kicks
	n.mu.Unlock()
	if timers != 0 {
		t.Errorf("%d timers left", timers)
	}
	n.succeeded()
	n.waitEnded()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.kicks != kicks {
		t.Errorf("rounds asked for after the connection: %d, then %d", kicks, n.kicks)
	}
}

// fakeConn returns its packets in turn, then blocks until closed.
type fakeConn struct {
	ptransport.UDPConn
	packets [][]byte
	reads   int
}

func (c *fakeConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.reads++
	if len(c.packets) == 0 {
		return 0, nil, net.ErrClosed
	}
	n := copy(b, c.packets[0])
	c.packets = c.packets[1:]
	return n, &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}, nil
}

// The socket tells the nominator of a success response when the agent comes back for the
// next packet, that is once it has handled the response; of other packets, never.
func TestWatchConnTellsAfterHandling(t *testing.T) {
	m, err := stun.Build(stun.BindingSuccess, stun.TransactionID, stun.NewShortTermIntegrity("pw"), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	req, err := stun.Build(stun.BindingRequest, stun.TransactionID, stun.NewShortTermIntegrity("pw"), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	var kickedAt []int // the read during which each kick came
	fc := &fakeConn{packets: [][]byte{req.Raw, m.Raw, req.Raw, req.Raw, m.Raw}}
	n := &nominator{}
	n.kickHook = func(int) { kickedAt = append(kickedAt, fc.reads) }
	n.iceState(ice.ConnectionStateChecking)
	defer n.stop()
	c := &watchConn{UDPConn: fc, n: n}
	buf := make([]byte, 1500)
	for range 4 {
		if _, _, err := c.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
	}
	// The 2nd read returned the response; the kick came as the 3rd read began.
	if fmt.Sprint(kickedAt) != "[2]" {
		t.Fatalf("kicks during reads %v, want [2] (as the read after the response began)", kickedAt)
	}
	n.iceState(ice.ConnectionStateConnected)
	c.ReadFrom(buf) // the 2nd response, after the connection
	c.ReadFrom(buf)
	if len(kickedAt) != 1 || !c.off.Load() {
		t.Fatalf("kicks %v after the connection; socket still watching: %v", kickedAt, !c.off.Load())
	}
}
