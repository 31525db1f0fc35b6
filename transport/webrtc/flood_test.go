//go:build !js

package webrtc_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/wdht/wdht/transport/webrtc"
)

// from returns an HTTP client whose connections come from the loopback address ip (all
// of 127.0.0.0/8 is local on Linux), to stand for one of many remote hosts.
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// usage samples goroutines and the heap.
type usage struct {
	goroutines int
	heap       uint64
}

func measure() usage {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return usage{runtime.NumGoroutine(), ms.HeapAlloc}
}

// peak records the largest goroutine count and pending count seen.
type peak struct{ goroutines, pending atomic.Int64 }

func (p *peak) sample(tr *webrtc.Transport) {
	for _, v := range []struct {
		max *atomic.Int64
		n   int64
	}{{&p.goroutines, int64(runtime.NumGoroutine())}, {&p.pending, int64(tr.Stats().Pending)}} {
		for {
			old := v.max.Load()
			if v.n <= old || v.max.CompareAndSwap(old, v.n) {
				break
			}
		}
	}
}

// run calls f(i) for i in [0, n) on `workers` goroutines.
func run(n, workers int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		}()
	}
	wg.Wait()
}

// Per pending answer, pion runs a few goroutines (ICE, DTLS, SCTP, operations) and holds
// some 100 KB; the bounds below allow three times what was measured.
const (
	goroutinesPerPC = 30
	heapPerPC       = 512 << 10
	slackGoroutines = 150
	slackHeap       = 16 << 20
)

// 1,000 valid offers POSTed: first 500 from one host, then 500 from 125 hosts. The
// per-source and budget caps bound the answers (and so goroutines and memory), the rest
// get 503 at once, and the server keeps answering: a client from another address
// bootstraps during the first flood, and again at the height of the second, when it
// takes the room of the source holding the most.
func TestFloodOffers(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the signalling server")
	}
	cfg := &webrtc.Config{MaxPending: 64, MaxPendingPerIP: 8}
	b := newTransport(t, "b", cfg)
	// 16 workers from one address: room for their connections, the subject here is
	// the offers (TestSignallingLockout floods connections).
	_, srvAddr := serve(t, b, &webrtc.ServerConfig{MaxClientsPerIP: 64})
	url := "http://" + srvAddr + "/"
	c := newTransport(t, "c", nil)
	o, err := c.NewOffer(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	body := offerJSON(o.SDP())
	base := measure()
	var pk peak

	flood := func(n int, ip func(i int) string) map[int]int {
		var mu sync.Mutex
		codes := map[int]int{}
		run(n, 16, func(i int) {
			resp, err := from(ip(i)).Post(url, "text/plain;charset=UTF-8", strings.NewReader(body))
			code := -1
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code = resp.StatusCode
			}
			pk.sample(b)
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
		return codes
	}

	start := time.Now()
	codes := flood(500, func(int) string { return "127.0.0.2" })
	t.Logf("500 offers from one host in %v: %v", time.Since(start).Round(time.Millisecond), codes)
	if codes[200] != 8 || codes[503] != 492 {
		t.Errorf("from one host: %v, want 8 answers (MaxPendingPerIP) and 492 refusals", codes)
	}

	// Another host bootstraps and pings meanwhile.
	a := newTransport(t, "a", &webrtc.Config{DialOrder: []webrtc.Signalling{webrtc.HTTP}})
	sa, _ := pinger(t, a, idA), pinger(t, b, idB)
	ab, _ := dial(t, a, b, srvAddr)
	if _, err := ping(ctxFor(t, 10*time.Second), sa, idA, ab); err != nil {
		t.Fatalf("ping during the flood: %v", err)
	}

	start = time.Now()
	codes = flood(500, func(i int) string { return fmt.Sprintf("127.0.1.%d", 1+i%125) })
	t.Logf("500 offers from 125 hosts in %v: %v", time.Since(start).Round(time.Millisecond), codes)
	if codes[200] < 56 || codes[200]+codes[503] != 500 {
		t.Errorf("from 125 hosts: %v, want at least 56 answers (MaxPending 64 less the 8 pending), the rest refused", codes)
	}
	if b.Stats().Evicted == 0 {
		t.Error("no eviction: the 125 hosts did not take the room of the one holding 8")
	}
	// At the height of it: a fresh client (whose address holds nothing) still joins.
	a2 := newTransport(t, "a2", &webrtc.Config{DialOrder: []webrtc.Signalling{webrtc.HTTP}})
	if _, err := a2.Dial(ctxFor(t, 20*time.Second), srvAddr); err != nil {
		t.Fatalf("a fresh client with the budget full: %v", err)
	}

	peakUse := measure()
	t.Logf("baseline %d goroutines, %.1f MB heap; with 64 pending answers %d goroutines (peak %d), %.1f MB heap; peak pending %d",
		base.goroutines, float64(base.heap)/1e6, peakUse.goroutines, pk.goroutines.Load(), float64(peakUse.heap)/1e6, pk.pending.Load())
	if pk.pending.Load() > 64 {
		t.Errorf("%d pending answers, over MaxPending 64", pk.pending.Load())
	}
	if g := pk.goroutines.Load(); g > int64(base.goroutines+64*goroutinesPerPC+slackGoroutines) {
		t.Errorf("%d goroutines at the peak, baseline %d: not bounded by the caps", g, base.goroutines)
	}
	if peakUse.heap > base.heap+64*heapPerPC+slackHeap {
		t.Errorf("heap %.1f MB, baseline %.1f MB: not bounded by the caps", float64(peakUse.heap)/1e6, float64(base.heap)/1e6)
	}
}

// 1,000 bogus WebSocket clients from 125 hosts, 50 at a time: ones that hang up at once,
// ones that answer the offer with garbage, silent ones, half-sent requests, and broken
// upgrades. Each is dealt with within the handshake timeout, goroutines and memory stay
// bounded, and a real client bootstraps afterwards.
func TestFloodWebSockets(t *testing.T) {
	if testing.Short() {
		t.Skip("floods the signalling server")
	}
	const handshake = 300 * time.Millisecond
	b := newTransport(t, "b", &webrtc.Config{MaxPending: 64, MaxPendingPerIP: 8})
	_, srvAddr := serve(t, b, &webrtc.ServerConfig{HandshakeTimeout: handshake})
	base := measure()
	var pk peak
	var mu sync.Mutex
	outcomes := map[string]int{}
	note := func(s string) {
		mu.Lock()
		outcomes[s]++
		mu.Unlock()
	}
	start := time.Now()
	run(1000, 50, func(i int) {
		defer pk.sample(b)
		ip := fmt.Sprintf("127.0.2.%d", 1+i%125)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		kind := i % 5
		if kind >= 3 { // raw TCP
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
			conn, err := d.DialContext(ctx, "tcp", srvAddr)
			if err != nil {
				note("dial error")
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			if kind == 3 { // headers never finished
				fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
			} else { // an upgrade without a key
				fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n")
			}
			line, _ := bufio.NewReader(conn).ReadString('\n')
			if line == "" {
				note("raw: closed")
			} else {
				note("raw: " + strings.TrimSpace(line))
			}
			return
		}
		ws, _, err := websocket.Dial(ctx, "ws://"+srvAddr+"/", &websocket.DialOptions{HTTPClient: from(ip)})
		if err != nil {
			note("refused")
			return
		}
		defer ws.CloseNow()
		if kind == 0 {
			note("hung up")
			return
		}
		if _, _, err := ws.Read(ctx); err != nil {
			note("no offer")
			return
		}
		if kind == 1 {
			ws.Write(ctx, websocket.MessageBinary, []byte("d4:type6:answer3:sdp7:garbagee"))
		}
		if _, _, err := ws.Read(ctx); err == nil {
			note("not closed")
		} else if kind == 1 {
			note("garbage answer: closed")
		} else {
			note("silent: closed")
		}
	})
	elapsed := time.Since(start)
	after := measure()
	t.Logf("1000 bogus clients in %v: %v", elapsed.Round(time.Millisecond), outcomes)
	t.Logf("baseline %d goroutines, %.1f MB heap; peak %d goroutines, %d pending; after %d goroutines, %.1f MB heap",
		base.goroutines, float64(base.heap)/1e6, pk.goroutines.Load(), pk.pending.Load(), after.goroutines, float64(after.heap)/1e6)
	// "no offer": the handshake timeout ran out while the offer was being made, which
	// happens on a loaded machine (go test -race with other packages).
	if outcomes["not closed"] > 0 || outcomes["dial error"] > 0 {
		t.Errorf("unexpected outcomes: %v", outcomes)
	}
	// With 125 sources for 64 places, each newcomer takes the place of an older offer
	// (possibly one still being made: "no offer"), so fewer than all get one.
	if outcomes["garbage answer: closed"]+outcomes["silent: closed"] < 100 {
		t.Errorf("fewer than a quarter of the 400 clients that wait for it got an offer: %v", outcomes)
	}
	if pk.pending.Load() > 64 {
		t.Errorf("%d pending offers, over MaxPending 64", pk.pending.Load())
	}
	if g := pk.goroutines.Load(); g > int64(base.goroutines+64*goroutinesPerPC+50*4+slackGoroutines) {
		t.Errorf("%d goroutines at the peak, baseline %d: not bounded", g, base.goroutines)
	}
	if after.heap > base.heap+64*heapPerPC+slackHeap {
		t.Errorf("heap %.1f MB after, baseline %.1f MB", float64(after.heap)/1e6, float64(base.heap)/1e6)
	}
	// A real client bootstraps.
	a := newTransport(t, "a", &webrtc.Config{DialOrder: []webrtc.Signalling{webrtc.WebSocket}})
	dial(t, a, b, srvAddr)
}
