//go:build !js

package webrtc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wdht/wdht/transport/webrtc"
)

// stalled are requests that never finish (the body is cut short, or the headers) or
// whose answers are never read.
var stalled = []struct {
	name string
	req  string
}{
	{"GET, stalled body", "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial"},
	{"OPTIONS, stalled body", "OPTIONS / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial"},
	{"DELETE, stalled body", "DELETE / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npartial"},
	{"POST, stalled body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"type\":\"offer\""},
	{"POSTs pipelined, answers never read", strings.Repeat("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 31\r\n\r\n{\"type\":\"offer\",\"sdp\":\"junk\"}\r\n", 8)},
	{"stalled headers", "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"},
}

// One address holding 1,100 connections, with stalled bodies or headers or unread
// answers, cannot keep a fresh client from joining (over HTTP and over WebSocket): the
// connections beyond MaxClientsPerIP are closed at once, and every one of them is closed
// within the handshake timeout of its acceptance. Afterwards the server holds nothing.
func TestSignallingLockout(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 1,100 connections")
	}
	const ht = 5 * time.Second
	const grace = 1500 * time.Millisecond // scheduling on a loaded machine
	b := newTransport(t, "b", nil)
	srv, srvAddr := serve(t, b, &webrtc.ServerConfig{HandshakeTimeout: ht})
	base := runtime.NumGoroutine()

	const n = 1100
	type held struct {
		conn   net.Conn
		kind   int
		opened time.Time
	}
	conns := make([]held, n)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	run(n, 50, func(i int) {
		c, err := d.Dial("tcp", srvAddr)
		if err != nil {
			t.Errorf("dial %d: %v", i, err)
			return
		}
		kind := i % len(stalled)
		conns[i] = held{c, kind, time.Now()}
		io.WriteString(c, stalled[kind].req) // a refused connection may be closed already
	})
	if t.Failed() {
		t.FailNow()
	}

	// A fresh client joins meanwhile, both ways, before any of the 1,100 connections
	// reaches its handshake timeout.
	start := time.Now()
	first := start
	for _, h := range conns {
		if h.opened.Before(first) {
			first = h.opened
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), first.Add(ht))
	defer cancel()
	for _, method := range methods {
		a := newTransport(t, "a-"+method.String(), &webrtc.Config{DialOrder: []webrtc.Signalling{method}})
		if _, err := a.Dial(ctx, srvAddr); err != nil {
			t.Fatalf("a fresh client (%v) with one address holding %d connections: %v", method, n, err)
		}
	}
	t.Logf("both fresh clients joined in %v (under load: go test -race, shared machine)", time.Since(start).Round(time.Millisecond))
	// The address holds no more than MaxClientsPerIP of its 1,100 connections: the
	// others were closed as soon as they were accepted.
	if most := srv.MaxConnsPerSource(); most > webrtc.DefaultMaxClientsPerIP {
		t.Errorf("one address holds %d connections, over MaxClientsPerIP %d", most, webrtc.DefaultMaxClientsPerIP)
	}

	// Every connection is closed by opened+ht (checked with some grace): reading finds
	// the end (after an answer, maybe) or a reset, never the read deadline.
	var mu sync.Mutex
	open := map[string]int{}
	var closed atomic.Int32
	run(n, 100, func(i int) {
		h := conns[i]
		defer h.conn.Close()
		h.conn.SetReadDeadline(h.opened.Add(ht + grace))
		_, err := io.Copy(io.Discard, h.conn)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			mu.Lock()
			open[stalled[h.kind].name]++
			mu.Unlock()
			return
		}
		closed.Add(1)
	})
	if len(open) > 0 {
		t.Errorf("connections still open %v after their acceptance: %v", ht+grace, open)
	}
	t.Logf("%d of %d connections closed within the handshake timeout (%v, with %v grace)", closed.Load(), n, ht, grace)

	// Nothing is left: no source counted, goroutines back to their baseline.
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, r := srv.Sources()
		g := runtime.NumGoroutine()
		if c == 0 && r == 0 && g <= base+slackGoroutines {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the flood: %d sources with connections, %d with requests, %d goroutines (baseline %d)", c, r, g, base)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// MaxClients: beyond it, clients wait in the listen queue until a connection closes.
// Stalled connections from as many addresses as MaxClients keep a third client out,
// but a fresh client no longer than the handshake timeout: queued meanwhile, it joins
// once the server closed them (the test never does). Afterwards the server holds
// nothing and goroutines are back to their baseline.
func TestMaxClients(t *testing.T) {
	const ht = 2 * time.Second
	const max = 4
	b := newTransport(t, "b", nil)
	srv, srvAddr := serve(t, b, &webrtc.ServerConfig{MaxClients: max, HandshakeTimeout: ht})
	a := newTransport(t, "a", &webrtc.Config{DialOrder: []webrtc.Signalling{webrtc.HTTP}})
	base := runtime.NumGoroutine()
	var holders []net.Conn
	for i := range max {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(fmt.Sprintf("127.0.0.%d", 2+i))}}
		c, err := d.Dial("tcp", srvAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, stalled[len(stalled)-1].req)
		holders = append(holders, c)
	}
	opened := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodOptions, "http://"+srvAddr+"/", nil)
	if resp, err := from("127.0.0.99").Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a client was served with MaxClients %d held: %s", max, resp.Status)
	}
	// A fresh client joins: its request waits until the stalled connections are closed.
	if _, err := a.Dial(ctxFor(t, 20*time.Second), srvAddr); err != nil {
		t.Fatalf("a fresh client with MaxClients held by stalled connections: %v", err)
	}
	t.Logf("the fresh client joined %v after the %d stalled connections opened (handshake timeout %v)", time.Since(opened).Round(time.Millisecond), max, ht)
	for _, c := range holders {
		c.SetReadDeadline(opened.Add(ht + 1500*time.Millisecond))
		if _, err := io.Copy(io.Discard, c); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("a stalled connection still open %v after it opened", ht+1500*time.Millisecond)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, r := srv.Sources()
		g := runtime.NumGoroutine()
		if c == 0 && r == 0 && g <= base+slackGoroutines {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("afterwards: %d sources with connections, %d with requests, %d goroutines (baseline %d)", c, r, g, base)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The per-source cap on requests in progress goes by client(r): requests mounted on any
// server, from addresses of one IPv6 /64, count together.
func TestMaxClientsPerIPRequests(t *testing.T) {
	b := newTransport(t, "b", nil)
	srv, err := webrtc.NewServer(b, &webrtc.ServerConfig{MaxClientsPerIP: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	post := func(remote string, body io.Reader) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/", body)
		req.RemoteAddr = remote
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		return w
	}
	var wg sync.WaitGroup
	var pipes []*io.PipeWriter
	for i := range 2 {
		pr, pw := io.Pipe()
		pipes = append(pipes, pw)
		wg.Add(1)
		go func() {
			defer wg.Done()
			post(fmt.Sprintf("[2001:db8::%d]:1000", i+1), pr) // blocks on its body
		}()
	}
	// Wait until both are in progress.
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, r := srv.Sources(); r == 1 {
			if w := post("[2001:db8::3]:1000", strings.NewReader("x")); w.Code == http.StatusServiceUnavailable {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("a third request from the same /64 was not refused")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if w := post("[2001:db8:0:1::1]:1000", strings.NewReader("x")); w.Code != http.StatusBadRequest {
		t.Errorf("another /64: %d, want 400 (a bad offer)", w.Code)
	}
	for _, pw := range pipes {
		pw.CloseWithError(io.ErrUnexpectedEOF)
	}
	wg.Wait()
	if w := post("[2001:db8::3]:1000", bytes.NewReader(nil)); w.Code != http.StatusBadRequest {
		t.Errorf("after the two finished: %d, want 400", w.Code)
	}
	if c, r := srv.Sources(); c != 0 || r != 0 {
		t.Errorf("sources left: %d, %d", c, r)
	}
}
