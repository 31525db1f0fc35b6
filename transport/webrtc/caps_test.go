//go:build !js

package webrtc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wdht/wdht/transport/webrtc"
)

// An SDP's candidates are deduplicated (transport, address, port) and capped at 160; its
// distinct mDNS names at 8, each resolved once.
func TestSDPCandidateCaps(t *testing.T) {
	tr, err := webrtc.New(&webrtc.Config{Logger: testLogger("sdp")}) // mDNS on
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var mu sync.Mutex
	asked := map[string]int{}
	tr.SetResolver(func(ctx context.Context, name string) (netip.Addr, bool) {
		mu.Lock()
		defer mu.Unlock()
		asked[name]++
		return netip.AddrFrom4([4]byte{10, 0, 0, byte(len(asked))}), true
	})
	var b strings.Builder
	b.WriteString("v=0\r\n")
	for i := range 300 { // 300 distinct, each twice (the second with another foundation)
		for rep := range 2 {
			fmt.Fprintf(&b, "a=candidate:%d 1 UDP 2113937151 198.51.%d.%d %d typ host\r\n", rep, i/250, i%250, 5000+i)
		}
	}
	for i := range 50 { // 50 names, each three times in different case
		for _, n := range []string{"n%d.local", "N%d.LOCAL", "n%d.Local"} {
			fmt.Fprintf(&b, "a=candidate:9 1 udp 1 "+n+" 6000 typ host\r\n", i)
		}
	}
	got := tr.PrepareRemoteSDP(t.Context(), b.String())
	cands := strings.Count(got, "a=candidate:")
	if cands != 160 {
		t.Errorf("%d candidates kept from 300 distinct ones, want the cap, 160", cands)
	}
	seen := map[string]bool{}
	for _, l := range strings.Split(got, "\r\n") {
		if f := strings.Fields(l); len(f) > 5 && strings.HasPrefix(l, "a=candidate:") {
			k := strings.ToLower(f[2]) + " " + f[4] + " " + f[5]
			if seen[k] {
				t.Errorf("duplicate candidate kept: %s", l)
			}
			seen[k] = true
		}
	}
	if len(asked) != 8 {
		t.Errorf("%d names resolved, want 8: %v", len(asked), asked)
	}
	for n, c := range asked {
		if c != 1 {
			t.Errorf("%s resolved %d times", n, c)
		}
	}

	// A small SDP with names is kept whole: names first resolved, then candidates.
	small := "v=0\r\na=candidate:1 1 udp 1 a.local 1 typ host\r\na=candidate:1 1 udp 1 A.local 1 typ host\r\na=candidate:2 1 udp 1 192.0.2.1 1 typ host\r\n"
	if got := tr.PrepareRemoteSDP(t.Context(), small); strings.Count(got, "a=candidate:") != 2 || strings.Contains(got, ".local") {
		t.Errorf("small SDP: %q", got)
	}
}

// A flood of offers that each list the same 300 addresses as candidates, POSTed from 20
// hosts: the node sends STUN to at most 160 of them (without the cap it checks every
// one: reflection towards addresses an offer chose). Meanwhile a fresh client joins
// through the signalling server and its ping is answered; once the flood's answers time
// out, no STUN is sent any more, the budgets and the server's source counts are empty
// and goroutines are back to their baseline.
func TestFloodCandidates(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the signalling server")
	}
	const timeout = 3 * time.Second
	const listed = 300
	// The addresses the offers list: 300 sockets of the test, which count the STUN
	// binding requests each receives.
	var stunned [listed]atomic.Int32
	var lines strings.Builder
	for i := range listed {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 77)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go func() {
			buf := make([]byte, 1500)
			for {
				n, err := c.Read(buf)
				if err != nil {
					return
				}
				if n >= 20 && buf[0] == 0 && buf[1] == 1 { // a STUN binding request
					stunned[i].Add(1)
				}
			}
		}()
		fmt.Fprintf(&lines, "a=candidate:%d 1 udp 2130706431 127.0.0.77 %d typ host\r\n", 100+i, c.LocalAddr().(*net.UDPAddr).Port)
	}
	targets := func() (addrs, requests int) {
		for i := range stunned {
			if n := stunned[i].Load(); n > 0 {
				addrs++
				requests += int(n)
			}
		}
		return addrs, requests
	}

	b := newTransport(t, "b", &webrtc.Config{Timeout: timeout})
	srv, srvAddr := serve(t, b, nil)
	a := newTransport(t, "a", &webrtc.Config{DialOrder: []webrtc.Signalling{webrtc.HTTP}})
	sa, _ := pinger(t, a, idA), pinger(t, b, idB)
	c := newTransport(t, "c", nil)
	o, err := c.NewOffer(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	sdp := o.SDP()
	at := strings.Index(sdp, "a=candidate:")
	if at < 0 {
		t.Fatalf("an offer without candidates: %q", sdp)
	}
	body := offerJSON(sdp[:at] + lines.String() + sdp[at:])
	runtime.GC()
	base := runtime.NumGoroutine()

	var mu sync.Mutex
	codes := map[int]int{}
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		run(20, 4, func(i int) {
			resp, err := from(fmt.Sprintf("127.0.3.%d", 1+i)).Post("http://"+srvAddr+"/", "text/plain", strings.NewReader(body))
			code := -1
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code = resp.StatusCode
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}()
	ab, err := a.Dial(ctxFor(t, 20*time.Second), srvAddr)
	if err != nil {
		t.Fatalf("a fresh client during the flood: %v", err)
	}
	if _, err := ping(ctxFor(t, 10*time.Second), sa, idA, ab); err != nil {
		t.Fatalf("the fresh client's ping during the flood: %v", err)
	}
	<-flooded
	if codes[200] != 20 {
		t.Fatalf("the flood's offers were answered %v, want 20 answers", codes)
	}
	// The answers' ICE agents check every remote candidate they kept, again and again.
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if n, _ := targets(); n >= 160 {
			break
		}
	}
	time.Sleep(500 * time.Millisecond) // more checks, had more addresses been kept
	addrs, requests := targets()
	t.Logf("20 offers listing %d addresses: STUN to %d of them (%d requests); answers %v", listed, addrs, requests, codes)
	if addrs > 160 {
		t.Errorf("STUN sent to %d of the %d addresses the offers listed, want at most the cap of 160", addrs, listed)
	}
	if addrs == 0 {
		t.Fatal("no STUN reached the listed addresses: the flood did not reach the cap")
	}

	// Afterwards: the answers timed out, nothing is checked or held any more.
	for deadline := time.Now().Add(timeout + 20*time.Second); ; {
		sizes := b.PoolSizes()
		_, before := targets()
		time.Sleep(time.Second)
		_, after := targets()
		g := runtime.NumGoroutine()
		conns, reqs := srv.Sources()
		if sizes["server"] == [2]int{} && before == after && conns+reqs == 0 && g <= base+slackGoroutines {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the flood: budgets %v, %d STUN requests in the last second, %d signalling sources, %d goroutines (baseline %d)",
				sizes, after-before, conns+reqs, g, base)
		}
	}
}

// At most MaxMDNSQueries resolutions run at once in the whole transport, however many
// SDPs are prepared together, and at most 8 names of each SDP are resolved: 20 SDPs of
// 50 names each make 160 resolutions, 3 at a time. While the resolutions hang, an SDP
// without names is prepared whole at once; when they end, no goroutine is left.
func TestMDNSConcurrency(t *testing.T) {
	tr, err := webrtc.New(&webrtc.Config{MaxMDNSQueries: 3, MDNSTimeout: 10 * time.Second, Logger: testLogger("mdns")})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var now, peak, total atomic.Int32
	release := make(chan struct{})
	tr.SetResolver(func(ctx context.Context, name string) (netip.Addr, bool) {
		n := now.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		total.Add(1)
		<-release
		now.Add(-1)
		return netip.MustParseAddr("10.0.0.1"), true
	})
	base := runtime.NumGoroutine()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var b strings.Builder
			for j := range 50 {
				fmt.Fprintf(&b, "a=candidate:1 1 udp 1 s%d-n%d.local %d typ host\r\n", i, j, 1000+j)
			}
			tr.PrepareRemoteSDP(t.Context(), b.String())
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); now.Load() < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d resolutions running, want 3", now.Load())
		}
	}
	// A well-behaved peer's SDP without names does not wait for the hanging resolutions.
	plain := "v=0\r\na=candidate:1 1 udp 1 192.0.2.1 1 typ host\r\na=candidate:2 1 udp 1 192.0.2.2 2 typ host\r\n"
	if got := tr.PrepareRemoteSDP(t.Context(), plain); got != plain {
		t.Errorf("an SDP without names, during the flood: %q, want it whole", got)
	}
	if total.Load() != 3 {
		t.Fatalf("%d resolutions started before the flood's were released: the plain SDP did not run during it", total.Load())
	}
	close(release)
	wg.Wait()
	if peak.Load() > 3 || total.Load() != 160 {
		t.Errorf("%d resolutions at once (cap 3), %d in all (want 20 SDPs × 8 names)", peak.Load(), total.Load())
	}
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > base; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after the resolutions ended, %d before", runtime.NumGoroutine(), base)
		}
	}
}

// Send refuses once all connections together hold TotalSendBuffer bytes, though each
// holds less than its SendBuffer; once the queues drain sending works again, and the
// bytes are counted down to nothing as connections close.
func TestTotalSendBuffer(t *testing.T) {
	a := newTransport(t, "a", &webrtc.Config{SendBuffer: 1 << 20, TotalSendBuffer: 128 << 10, ReadyDelay: -1})
	b1 := newTransport(t, "b1", &webrtc.Config{QueueLen: 4096, ReadyDelay: -1})
	b2 := newTransport(t, "b2", &webrtc.Config{QueueLen: 4096, ReadyDelay: -1})
	ab1, _ := pair(t, a, b1)
	ab2, _ := pair(t, a, b2)
	msg := make([]byte, 32<<10)
	refused := 0
	for i := range 40 { // 640 KiB to each: under SendBuffer, far over the total
		to := ab1
		if i%2 == 1 {
			to = ab2
		}
		if err := a.Send(to, msg); errors.Is(err, webrtc.ErrSendBufferFull) {
			refused++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if refused == 0 {
		t.Fatal("1.25 MiB sent at once over two connections with a 128 KiB total: nothing refused")
	}
	if q := a.SendQueued(); q > 128<<10 {
		t.Fatalf("%d bytes counted as queued, over TotalSendBuffer", q)
	}
	// Once the queues drain, sending works again.
	deadline := time.Now().Add(20 * time.Second)
	for a.Send(ab1, msg) != nil {
		if time.Now().After(deadline) {
			t.Fatal("still refused after the queues drained")
		}
		time.Sleep(20 * time.Millisecond)
	}
	a.Disconnect(ab1)
	a.Disconnect(ab2)
	if q, n := a.SendQueued(), a.Stats().Conns; q != 0 || n != 0 {
		t.Fatalf("after closing every connection: %d bytes counted as queued, %d connections", q, n)
	}
}

// Messages beyond QueueLen waiting for Receive are dropped and counted. Once the reader
// took the kept ones, nothing is left queued, and another peer's ping is answered.
func TestReceiveQueueDrop(t *testing.T) {
	a := newTransport(t, "a", &webrtc.Config{ReadyDelay: -1})
	b := newTransport(t, "b", &webrtc.Config{QueueLen: 4, ReadyDelay: -1})
	c := newTransport(t, "c", &webrtc.Config{ReadyDelay: -1})
	ab, _ := pair(t, a, b)
	cb, _ := pair(t, c, b)
	for i := range 20 {
		if err := a.Send(ab, []byte(fmt.Sprintf("d1:t2:%02de", i))); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := b.Stats()
		if s.MessagesIn+s.Dropped == 20 {
			if s.MessagesIn != 4 || s.Dropped != 16 {
				t.Fatalf("MessagesIn %d, Dropped %d; want 4 and 16", s.MessagesIn, s.Dropped)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not all arrived: %+v", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for i := range 4 {
		p, err := b.Receive(ctxFor(t, 5*time.Second))
		if want := fmt.Sprintf("d1:t2:%02de", i); err != nil || string(p.Data) != want {
			t.Fatalf("message %d: %q %v, want %q (the first ones are kept)", i, p.Data, err, want)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if p, err := b.Receive(ctx); err == nil {
		t.Fatalf("a message beyond QueueLen was kept: %q", p.Data)
	}
	pinger(t, b, idB)
	if _, err := ping(ctxFor(t, 10*time.Second), pinger(t, c, idA), idA, cb); err != nil {
		t.Fatalf("another peer's ping after the drop: %v", err)
	}
}
