//go:build !js

package webrtc_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	akrpc "github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
	"github.com/coder/websocket"

	"github.com/wdht/wdht/internal/testenv"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport"
	"github.com/wdht/wdht/transport/webrtc"
)

var methods = []webrtc.Signalling{webrtc.WebSocket, webrtc.HTTP}

// pinger is a KRPC server answering ping with its ID.
func pinger(t testing.TB, tr transport.Transport, id krpc.ID) *krpc.Server {
	t.Helper()
	h := krpc.Mux{krpc.MethodPing: krpc.HandlerFunc(func(ctx context.Context, q *krpc.Query) (*krpc.Response, error) {
		return &krpc.Response{Return: &krpc.Return{Return: akrpc.Return{ID: id}}}, nil
	})}
	s, err := krpc.NewServer(tr, h, &krpc.Config{Timeout: 5 * time.Second, Attempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ping(ctx context.Context, s *krpc.Server, from krpc.ID, to netip.AddrPort) (*krpc.Response, error) {
	a := &krpc.Args{}
	a.ID = from
	return s.Call(ctx, to, &krpc.Query{Method: krpc.MethodPing, Args: a})
}

var idA, idB = krpc.ID{'a'}, krpc.ID{'b'}

// Go to Go through each signalling method, then a KRPC ping each way: to the signalling
// address (the alias), to the peer address, and back.
func TestPingThroughSignalling(t *testing.T) {
	for _, method := range methods {
		t.Run(method.String(), func(t *testing.T) {
			a := newTransport(t, "a", &webrtc.Config{DialOrder: []webrtc.Signalling{method}})
			b := newTransport(t, "b", nil)
			_, srvAddr := serve(t, b, nil)
			sa, sb := pinger(t, a, idA), pinger(t, b, idB)
			ab, ba := dial(t, a, b, srvAddr)
			ctx := ctxFor(t, 20*time.Second)

			alias := netip.MustParseAddrPort(srvAddr)
			if got := a.Resolve(alias); got != ab {
				t.Errorf("Resolve(%v) = %v, want the peer address %v", alias, got, ab)
			}
			for _, to := range []netip.AddrPort{alias, ab} {
				r, err := ping(ctx, sa, idA, to)
				if err != nil {
					t.Fatalf("ping %v: %v", to, err)
				}
				if r.Return.ID != idB || r.From != ab {
					t.Errorf("ping %v: answered by %x from %v, want %x from %v", to, r.Return.ID, r.From, idB, ab)
				}
			}
			r, err := ping(ctx, sb, idB, ba)
			if err != nil || r.Return.ID != idA {
				t.Fatalf("ping back: %+v, %v", r, err)
			}
			if got := a.SignallingServers(); !slices.Equal(got, []string{srvAddr}) {
				t.Errorf("a.SignallingServers() = %v, want [%s] (the server's announcement)", got, srvAddr)
			}
			if got := b.SignallingServers(); len(got) != 0 {
				t.Errorf("b.SignallingServers() = %v, want none (a has no server)", got)
			}
		})
	}
}

// recorder wraps a handler and records how clients came.
type recorder struct {
	h     http.Handler
	ws    atomic.Int32
	posts atomic.Int32
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Header.Get("Upgrade") != "" {
		r.ws.Add(1)
	} else if req.Method == http.MethodPost {
		r.posts.Add(1)
	}
	r.h.ServeHTTP(w, req)
}

// Dial falls back to the other method: from WebSocket to HTTP against a server that
// refuses upgrades (as a JS 0.18 server does, with 400), from HTTP to WebSocket against
// one that refuses POSTs (as the JS 0.17 server does, with 426).
func TestDialFallback(t *testing.T) {
	for _, tc := range []struct {
		name   string
		order  []webrtc.Signalling
		refuse func(*http.Request) (int, bool)
		failed uint64 // offers abandoned by the refused attempt
	}{
		{"websocket-to-http", nil, func(r *http.Request) (int, bool) {
			return http.StatusBadRequest, r.Method != http.MethodPost
		}, 0},
		{"http-to-websocket", []webrtc.Signalling{webrtc.HTTP, webrtc.WebSocket}, func(r *http.Request) (int, bool) {
			return http.StatusUpgradeRequired, r.Header.Get("Upgrade") == ""
		}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newTransport(t, "a", &webrtc.Config{DialOrder: tc.order})
			b := newTransport(t, "b", nil)
			srv, err := webrtc.NewServer(b, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			rec := &recorder{h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if code, refuse := tc.refuse(r); refuse {
					w.WriteHeader(code)
					return
				}
				srv.ServeHTTP(w, r)
			})}
			hs := &http.Server{Handler: rec}
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { hs.Serve(l); close(done) }()
			defer func() { hs.Close(); <-done }()

			dial(t, a, b, l.Addr().String())
			if rec.ws.Load() != 1 || rec.posts.Load() != 1 {
				t.Errorf("%d WebSocket and %d POST requests, want one of each", rec.ws.Load(), rec.posts.Load())
			}
			if a.Stats().Failed != tc.failed {
				t.Errorf("Stats.Failed = %d, want %d (offers of the refused attempt)", a.Stats().Failed, tc.failed)
			}
		})
	}
}

func TestDialErrors(t *testing.T) {
	a := newTransport(t, "a", nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := l.Addr().String()
	l.Close()
	for _, addr := range []string{closedAddr, "127.0.0.1", "127.0.0.1:0", ":80"} {
		if _, err := a.Dial(ctxFor(t, 10*time.Second), addr); err == nil {
			t.Errorf("Dial(%q) succeeded", addr)
		}
	}
	if s := a.Stats(); s.Pending != 0 || s.Conns != 0 {
		t.Errorf("after failed dials: %+v", s)
	}
}

// Sending to an address without a connection fails at once, before and after the
// connection exists; closing is reported to both sides and removes the alias.
func TestUnreachableAndNotifyClosed(t *testing.T) {
	a := newTransport(t, "a", nil)
	b := newTransport(t, "b", nil)
	_, srvAddr := serve(t, b, nil)
	alias := netip.MustParseAddrPort(srvAddr)
	if err := a.Send(alias, []byte("d1:q4:pinge")); !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("Send before Dial = %v, want ErrUnreachable", err)
	}
	closedA, closedB := make(chan netip.AddrPort, 1), make(chan netip.AddrPort, 1)
	a.NotifyClosed(func(p netip.AddrPort) { closedA <- p })
	b.NotifyClosed(func(p netip.AddrPort) { closedB <- p })
	ab, ba := dial(t, a, b, srvAddr)
	if ps := a.Peers(); len(ps) != 1 || !slices.Equal(ps[0].Aliases, []netip.AddrPort{alias}) || ps[0].Server != srvAddr {
		t.Errorf("a.Peers() = %+v", ps)
	}

	if !b.Disconnect(ba) || b.Disconnect(ba) {
		t.Error("Disconnect: want true, then false")
	}
	for _, c := range []struct {
		ch   chan netip.AddrPort
		want netip.AddrPort
	}{{closedB, ba}, {closedA, ab}} {
		select {
		case got := <-c.ch:
			if got != c.want {
				t.Errorf("NotifyClosed(%v), want %v", got, c.want)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("closing not reported")
		}
	}
	for _, to := range []netip.AddrPort{ab, alias} {
		if err := a.Send(to, []byte("x")); !errors.Is(err, transport.ErrUnreachable) {
			t.Errorf("Send(%v) after close = %v, want ErrUnreachable", to, err)
		}
	}
	if got := a.Resolve(alias); got != alias {
		t.Errorf("Resolve(%v) after close = %v, want itself", alias, got)
	}
	if s := a.Stats(); s.Conns != 0 || s.Opened != 1 || s.Closed != 1 {
		t.Errorf("a.Stats() = %+v", s)
	}
}

// pair connects a and b directly with NewOffer and NewAnswer (as the DHT relay will).
func pair(t testing.TB, a, b *webrtc.Transport) (ab, ba netip.AddrPort) {
	t.Helper()
	ab, ba, err := connect(ctxFor(t, 20*time.Second), a, b)
	if err != nil {
		t.Fatal(err)
	}
	return ab, ba
}

func connect(ctx context.Context, a, b *webrtc.Transport) (ab, ba netip.AddrPort, err error) {
	o, err := a.NewOffer(ctx)
	if err != nil {
		return ab, ba, err
	}
	ans, err := b.NewAnswer(ctx, o.SDP(), netip.Addr{})
	if err != nil {
		o.Close()
		return ab, ba, err
	}
	type res struct {
		addr netip.AddrPort
		err  error
	}
	waited := make(chan res, 1)
	go func() {
		addr, err := ans.Wait(ctx)
		waited <- res{addr, err}
	}()
	ab, err = o.Connect(ctx, ans.SDP())
	r := <-waited
	return ab, r.addr, errors.Join(err, r.err)
}

// Offers and answers exchanged by hand, as the DHT extension will relay them; the
// announcement follows Config.Advertise.
func TestOfferAnswer(t *testing.T) {
	a := newTransport(t, "a", &webrtc.Config{ReadyDelay: -1})
	b := newTransport(t, "b", &webrtc.Config{ReadyDelay: -1, Advertise: "dht.example.com:443"})
	ab, ba := pair(t, a, b)
	if !strings.HasPrefix(ab.String(), "127.0.0.1:") || !strings.HasPrefix(ba.String(), "127.0.0.1:") {
		t.Errorf("addresses %v and %v, want 127.0.0.1", ab, ba)
	}
	msg := []byte("d1:ad2:id20:aaaaaaaaaaaaaaaaaaaae1:q4:ping1:t2:aa1:y1:qe")
	if err := b.Send(ba, msg); err != nil {
		t.Fatal(err)
	}
	p, err := a.Receive(ctxFor(t, 10*time.Second))
	if err != nil || p.From != ab || !bytes.Equal(p.Data, msg) {
		t.Fatalf("Receive: %v %q %v (the announcement must not be delivered)", p.From, p.Data, err)
	}
	if got := a.SignallingServers(); !slices.Equal(got, []string{"dht.example.com:443"}) {
		t.Errorf("SignallingServers() = %v", got)
	}

	o, err := a.NewOffer(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Connect(t.Context(), "v=0"); err == nil {
		t.Error("Connect after Close succeeded")
	}
	if _, err := b.NewAnswer(t.Context(), "not an sdp", netip.Addr{}); err == nil {
		t.Error("NewAnswer of garbage succeeded")
	}
	if s := a.Stats(); s.Pending != 0 || s.Conns != 1 {
		t.Errorf("a.Stats() = %+v", s)
	}
}

// Offers and answers that do not connect are closed after the timeout.
func TestPendingTimeout(t *testing.T) {
	a := newTransport(t, "a", &webrtc.Config{Timeout: 200 * time.Millisecond})
	b := newTransport(t, "b", &webrtc.Config{Timeout: 200 * time.Millisecond})
	ctx := ctxFor(t, 10*time.Second)
	o, ans := offerAnswer(t, ctx, a, b)
	// The answer is never applied.
	for _, ended := range []<-chan struct{}{o.Ended(), ans.Ended()} {
		select {
		case <-ended:
		case <-ctx.Done():
			t.Fatal("not closed after the timeout")
		}
	}
	if _, err := ans.Wait(ctx); err == nil {
		t.Error("Wait on a timed-out answer succeeded")
	}
	if _, err := o.Connect(ctx, ans.SDP()); err == nil {
		t.Error("Connect on a timed-out offer succeeded")
	}
	if sa, sb := a.Stats(), b.Stats(); sa.Pending != 0 || sb.Pending != 0 || sa.Failed != 1 || sb.Failed != 1 {
		t.Errorf("stats %+v, %+v", sa, sb)
	}
}

// A connection that is not kept is closed once idle for the timeout; a kept one stays,
// until it is no longer kept.
func TestIdleTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	a := newTransport(t, "a", &webrtc.Config{IdleTimeout: timeout, ReadyDelay: -1})
	b := newTransport(t, "b", &webrtc.Config{ReadyDelay: -1})
	closed := make(chan netip.AddrPort, 2)
	a.NotifyClosed(func(p netip.AddrPort) { closed <- p })
	kept, _ := pair(t, a, b)
	if !a.Keep(kept, true) {
		t.Fatal("Keep: no connection")
	}
	start := time.Now()
	unkept, _ := pair(t, a, b)
	select {
	case got := <-closed:
		if got != unkept {
			t.Fatalf("closed %v, want the unkept %v", got, unkept)
		}
		if d := time.Since(start); d < timeout {
			t.Errorf("closed after %v, before the timeout %v", d, timeout)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the idle connection was not closed")
	}
	// kept has been idle longer than unkept.
	if ps := a.Peers(); len(ps) != 1 || ps[0].Addr != kept || !ps[0].Kept {
		t.Fatalf("after the idle close: %+v, want only the kept %v", ps, kept)
	}
	a.Keep(kept, false)
	select {
	case got := <-closed:
		if got != kept {
			t.Fatalf("closed %v, want %v", got, kept)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the connection no longer kept was not closed")
	}
	if a.Keep(kept, true) {
		t.Error("Keep of a closed connection = true")
	}
}

func TestCaps(t *testing.T) {
	ctx := ctxFor(t, 20*time.Second)
	t.Run("MaxPending", func(t *testing.T) {
		a := newTransport(t, "a", &webrtc.Config{MaxPending: 2})
		for range 2 {
			if _, err := a.NewOffer(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := a.NewOffer(ctx); !errors.Is(err, webrtc.ErrTooManyPending) {
			t.Fatalf("third offer: %v, want ErrTooManyPending", err)
		}
	})
	t.Run("MaxPendingPerIP", func(t *testing.T) {
		a := newTransport(t, "a", nil)
		b := newTransport(t, "b", &webrtc.Config{MaxPendingPerIP: 1})
		o, err := a.NewOffer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ip1, ip2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
		if _, err := b.NewAnswer(ctx, o.SDP(), ip1); err != nil {
			t.Fatal(err)
		}
		if _, err := b.NewAnswer(ctx, o.SDP(), ip1); !errors.Is(err, webrtc.ErrTooManyPending) {
			t.Fatalf("second answer for %v: %v, want ErrTooManyPending", ip1, err)
		}
		if _, err := b.NewAnswer(ctx, o.SDP(), ip2); err != nil {
			t.Fatalf("answer for %v: %v", ip2, err)
		}
		// The server refuses the same way, with 503 and Retry-After.
		b2 := newTransport(t, "b2", &webrtc.Config{MaxPendingPerIP: 1})
		_, srv2 := serve(t, b2, nil)
		for i, want := range []int{http.StatusOK, http.StatusServiceUnavailable} {
			resp, err := http.Post("http://"+srv2+"/", "text/plain", strings.NewReader(offerJSON(o.SDP())))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want || (want != http.StatusOK && resp.Header.Get("Retry-After") == "") {
				t.Errorf("POST %d from 127.0.0.1: %s, want %d (with Retry-After if refused)", i+1, resp.Status, want)
			}
		}
	})
	t.Run("MaxConns", func(t *testing.T) {
		a := newTransport(t, "a", &webrtc.Config{MaxConns: 1, ReadyDelay: -1})
		b := newTransport(t, "b", &webrtc.Config{ReadyDelay: -1})
		pair(t, a, b)
		if _, err := a.NewOffer(ctx); !errors.Is(err, webrtc.ErrTooManyConnections) {
			t.Fatalf("offer beyond MaxConns: %v", err)
		}
	})
}

func offerJSON(sdp string) string {
	b, _ := json.Marshal(map[string]any{"type": "offer", "sdp": sdp, "extensions": []string{}})
	return string(b)
}

// Send refuses messages once the data channel holds SendBuffer bytes, rather than
// queueing without bound; what it accepted arrives. While one connection's buffer is
// full, another peer's ping is answered: the cap is per connection.
func TestBackpressure(t *testing.T) {
	a := newTransport(t, "a", &webrtc.Config{SendBuffer: webrtc.MaxMessageSize, ReadyDelay: -1})
	b := newTransport(t, "b", &webrtc.Config{QueueLen: 4096, ReadyDelay: -1})
	c := newTransport(t, "c", &webrtc.Config{ReadyDelay: -1})
	ab, _ := pair(t, a, b)
	ca, _ := pair(t, c, a)
	pinger(t, a, idA)
	sc := pinger(t, c, idB)
	msg := make([]byte, 32<<10)
	var sent, refused int
	var flood sync.WaitGroup
	stop := make(chan struct{})
	full := make(chan struct{})
	flood.Go(func() { // until the ping is done, keeping ab's buffer full
		for {
			select {
			case <-stop:
				return
			default:
			}
			err := a.Send(ab, msg)
			switch {
			case err == nil:
				sent++
			case errors.Is(err, webrtc.ErrSendBufferFull):
				if refused++; refused == 1 {
					close(full)
				}
				time.Sleep(time.Millisecond)
			default:
				t.Error(err)
				return
			}
		}
	})
	select {
	case <-full:
	case <-time.After(10 * time.Second):
		close(stop)
		flood.Wait()
		t.Fatalf("%d messages of 32 KiB sent with a 64 KiB buffer: nothing refused", sent)
	}
	if _, err := ping(ctxFor(t, 10*time.Second), sc, idB, ca); err != nil {
		t.Errorf("another peer's ping with one connection's buffer full: %v", err)
	}
	close(stop)
	flood.Wait()
	if refused == 0 {
		t.Fatalf("32 KiB messages sent at once with a 64 KiB buffer: nothing refused")
	}
	if s := a.Stats(); s.BufferFull != uint64(refused) {
		t.Errorf("Stats.BufferFull = %d, want %d", s.BufferFull, refused)
	}
	ctx := ctxFor(t, 20*time.Second)
	for range sent {
		if _, err := b.Receive(ctx); err != nil {
			t.Fatalf("received fewer than the %d messages sent: %v", sent, err)
		}
	}
}

// The HTTP side of the server: any path and content type, CORS, and errors.
func TestServerHTTP(t *testing.T) {
	a := newTransport(t, "a", nil)
	b := newTransport(t, "b", &webrtc.Config{Extensions: []string{"ext1"}})
	_, srvAddr := serve(t, b, &webrtc.ServerConfig{MaxBodySize: 8 << 10})
	base := "http://" + srvAddr
	ctx := ctxFor(t, 20*time.Second)

	o, err := a.NewOffer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(base+"/some/path?x=1", "application/x-anything", strings.NewReader(offerJSON(o.SDP())))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("POST: %s %v", resp.Status, resp.Header)
	}
	var answer map[string]any
	if err := json.Unmarshal(body, &answer); err != nil || answer["type"] != "answer" || answer["sdp"] == "" {
		t.Fatalf("answer %s: %v", body, err)
	}
	if ext, _ := answer["extensions"].([]any); len(ext) != 1 || ext[0] != "ext1" {
		t.Errorf("answer extensions %v, want [ext1]", answer["extensions"])
	}
	peer, err := o.Connect(ctx, answer["sdp"].(string))
	if err != nil {
		t.Fatalf("connecting with the POSTed answer: %v", err)
	}
	// The offerer's side can be connected before the answerer's is (it nominates the
	// pair as soon as a check succeeds): b receiving a message shows its side is up.
	if err := a.Send(peer, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Receive(ctx); err != nil {
		t.Fatalf("b received nothing over the POSTed offer's connection: %v", err)
	}

	for _, tc := range []struct {
		method, body string
		want         int
	}{
		{http.MethodGet, "", http.StatusMethodNotAllowed},
		{http.MethodPut, "", http.StatusMethodNotAllowed},
		{http.MethodOptions, "", http.StatusNoContent},
		{http.MethodPost, "", http.StatusBadRequest},
		{http.MethodPost, "{not json", http.StatusBadRequest},
		{http.MethodPost, `{"type":"answer","sdp":"v=0"}`, http.StatusBadRequest},
		{http.MethodPost, `{"type":"offer","sdp":""}`, http.StatusBadRequest},
		{http.MethodPost, `{"type":"offer","sdp":"garbage"}`, http.StatusBadRequest},
		{http.MethodPost, `{"type":"offer","sdp":"` + strings.Repeat("a", 9<<10) + `"}`, http.StatusRequestEntityTooLarge},
	} {
		req, _ := http.NewRequest(tc.method, base+"/", strings.NewReader(tc.body))
		if tc.method == http.MethodOptions {
			req.Header.Set("Origin", "https://example.com")
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s %.40q: %s, want %d", tc.method, tc.body, resp.Status, tc.want)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: no Access-Control-Allow-Origin", tc.method)
		}
		if tc.method == http.MethodOptions && !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
			t.Errorf("OPTIONS: Access-Control-Allow-Methods %q", resp.Header.Get("Access-Control-Allow-Methods"))
		}
	}
	if s := b.Stats(); s.Pending != 0 || s.Conns != 1 {
		t.Errorf("b.Stats() = %+v, want the POSTed offer's connection and nothing pending", s)
	}
}

// The WebSocket side of the server, driven by hand: the offer's encoding, and a garbage
// answer closing the WebSocket and the offer.
func TestServerWebSocket(t *testing.T) {
	b := newTransport(t, "b", &webrtc.Config{Extensions: []string{"ext1"}})
	_, srvAddr := serve(t, b, nil)
	ctx := ctxFor(t, 20*time.Second)
	ws, _, err := websocket.Dial(ctx, "ws://"+srvAddr+"/any", &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"https://example.com"}}, // any origin is accepted
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	typ, msg, err := ws.Read(ctx)
	if err != nil || typ != websocket.MessageBinary {
		t.Fatalf("Read: %v %v", typ, err)
	}
	var offer map[string]any
	if err := bencode.Unmarshal(msg, &offer); err != nil {
		t.Fatal(err)
	}
	if offer["type"] != "offer" || !strings.HasPrefix(offer["sdp"].(string), "v=0") || len(offer["extensions"].([]any)) != 1 {
		t.Errorf("offer %v", offer)
	}
	if !bytes.HasPrefix(msg, []byte("d10:extensionsl4:ext1e3:sdp")) {
		t.Errorf("offer not bencoded with sorted keys: %.40q", msg)
	}
	if b.Stats().Pending != 1 {
		t.Errorf("Pending = %d, want 1", b.Stats().Pending)
	}
	if err := ws.Write(ctx, websocket.MessageBinary, []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ws.Read(ctx); err == nil {
		t.Fatal("the server did not close the WebSocket after a garbage answer")
	}
	if b.Stats().Pending != 0 {
		t.Errorf("Pending = %d after a garbage answer, want 0", b.Stats().Pending)
	}
}

func TestServerTLS(t *testing.T) {
	certFile, keyFile, roots := testenv.SelfSigned(t)
	for _, method := range methods {
		t.Run(method.String(), func(t *testing.T) {
			a := newTransport(t, "a", &webrtc.Config{
				DialOrder: []webrtc.Signalling{method},
				TLSConfig: &tls.Config{RootCAs: roots},
			})
			b := newTransport(t, "b", nil)
			_, srvAddr := serve(t, b, &webrtc.ServerConfig{CertFile: certFile, KeyFile: keyFile})
			_, port, _ := net.SplitHostPort(srvAddr)
			// TLSAuto: a host name is tried with TLS first.
			dial(t, a, b, "localhost:"+port)
			if got := a.Resolve(netip.MustParseAddrPort("127.0.0.1:" + port)); got != peerOf(t, a) {
				t.Errorf("the resolved address of localhost is not an alias: %v", got)
			}
		})
	}
	a := newTransport(t, "a", &webrtc.Config{DialTLS: webrtc.TLSAlways})
	b := newTransport(t, "b", nil)
	_, plain := serve(t, b, nil)
	if _, err := a.Dial(ctxFor(t, 10*time.Second), plain); err == nil {
		t.Error("TLSAlways dialled a plain server")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []webrtc.Config{
		{Timeout: -1},
		{IdleTimeout: -1},
		{MaxConns: -1},
		{SendBuffer: 100},
		{QueueLen: -1},
		{Advertise: "nohost"},
		{Advertise: "h:0"},
		{Advertise: ":80"},
		{DialOrder: []webrtc.Signalling{webrtc.HTTP, webrtc.HTTP}},
		{DialOrder: []webrtc.Signalling{7}},
		{DialTLS: 9},
		{ICEServers: []webrtc.ICEServer{{}}},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: valid", c)
		}
		if _, err := webrtc.New(&c); err == nil {
			t.Errorf("New(%+v) succeeded", c)
		}
	}
	var nilCfg *webrtc.Config
	if err := nilCfg.Validate(); err != nil {
		t.Error(err)
	}
	for _, c := range []webrtc.ServerConfig{{CertFile: "x"}, {MaxBodySize: -1}, {HandshakeTimeout: -1}, {MaxClients: -1}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: valid", c)
		}
	}
	// New copies the Config: changing it afterwards changes nothing.
	ext := []string{"a"}
	cfg := &webrtc.Config{Extensions: ext, Loopback: true}
	tr, err := webrtc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if cfg.Timeout != 0 || cfg.Logger != nil {
		t.Error("New changed the caller's Config")
	}
}

func TestCloseWithEverything(t *testing.T) {
	a := newTransport(t, "a", nil)
	b := newTransport(t, "b", nil)
	_, srvAddr := serve(t, b, nil)
	dial(t, a, b, srvAddr)
	ctx := ctxFor(t, 10*time.Second)
	if _, err := a.NewOffer(ctx); err != nil {
		t.Fatal(err)
	}
	notified := atomic.Int32{}
	a.NotifyClosed(func(netip.AddrPort) { notified.Add(1) })
	blocked := make(chan error, 1)
	go func() {
		_, err := a.Receive(context.Background())
		blocked <- err
	}()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-blocked; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Receive pending at Close: %v", err)
	}
	if notified.Load() != 0 {
		t.Error("NotifyClosed called for connections closed by Close")
	}
	if _, err := a.NewOffer(ctx); !errors.Is(err, net.ErrClosed) {
		t.Errorf("NewOffer after Close: %v", err)
	}
	if _, err := a.Dial(ctx, srvAddr); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Dial after Close: %v", err)
	}
	if s := a.Stats(); s.Conns != 0 || s.Pending != 0 {
		t.Errorf("after Close: %+v", s)
	}
}

// Between two of ours, neither side waits Config.ReadyDelay: the offer's label tells the
// answerer the offerer is ours, and the answerer's ready message tells the offerer. The
// ready message is not delivered. With an hour's ReadyDelay, a wait would outlast ctx.
func TestOursReadyAtOnce(t *testing.T) {
	a := newTransport(t, "a", &webrtc.Config{ReadyDelay: time.Hour})
	b := newTransport(t, "b", &webrtc.Config{ReadyDelay: time.Hour})
	ab, ba, err := connect(ctxFor(t, 20*time.Second), a, b)
	if err != nil {
		t.Fatalf("connecting two of ours waited for ReadyDelay: %v", err)
	}
	msg := []byte("d1:t2:aa1:y1:qe")
	if err := a.Send(ab, msg); err != nil {
		t.Fatal(err)
	}
	p, err := b.Receive(ctxFor(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if p.From != ba || !bytes.Equal(p.Data, msg) {
		t.Errorf("b received %q from %v, want %q from %v (the ready message must not be delivered)", p.Data, p.From, msg, ba)
	}
	if err := b.Send(ba, msg); err != nil {
		t.Fatal(err)
	}
	if p, err = a.Receive(ctxFor(t, 10*time.Second)); err != nil || !bytes.Equal(p.Data, msg) {
		t.Errorf("a received %q, %v; want %q", p.Data, err, msg)
	}
}
