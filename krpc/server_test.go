package krpc

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	akrpc "github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
	"go.uber.org/goleak"

	"github.com/wdht/wdht/internal/bubble"
	"github.com/wdht/wdht/transport/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var idA, idB = ID([]byte(id1)), ID([]byte(id2))

// pingHandler answers ping with id and nothing else.
func pingHandler(id ID) Handler {
	return Mux{MethodPing: HandlerFunc(func(ctx context.Context, q *Query) (*Response, error) {
		return &Response{Return: &Return{Return: akrpc.Return{ID: id}}}, nil
	})}
}

func listen(t testing.TB, n *memory.Network) *memory.Transport {
	t.Helper()
	tr, err := n.Listen(netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func newServer(t testing.TB, n *memory.Network, h Handler, cfg *Config) *Server {
	t.Helper()
	s, err := NewServer(listen(t, n), h, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func pingQuery() *Query {
	a := &Args{}
	a.ID = idA
	return &Query{Method: MethodPing, Args: a}
}

// rawExchange sends b from a bare transport to the server and returns the reply (or nil
// if none arrives within the fake-time wait).
func rawExchange(t *testing.T, raw *memory.Transport, to netip.AddrPort, b []byte) *Msg {
	t.Helper()
	if err := raw.Send(to, b); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	p, err := raw.Receive(ctx)
	if err != nil {
		return nil
	}
	var m Msg
	if err := m.UnmarshalBinary(p.Data); err != nil {
		t.Fatalf("server sent an undecodable reply %q: %v", p.Data, err)
	}
	return &m
}

func TestCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork(nil)
		a := newServer(t, n, nil, nil)
		b := newServer(t, n, pingHandler(idB), nil)
		resp, err := a.Call(t.Context(), b.Transport().LocalAddr(), pingQuery())
		if err != nil {
			t.Fatal(err)
		}
		if resp.Return.ID != idB || resp.From != b.Transport().LocalAddr() || resp.Version != Version {
			t.Fatalf("response %+v", resp)
		}
		if resp.IP != a.Transport().LocalAddr() {
			t.Fatalf("BEP 42 ip = %v, want our address %v", resp.IP, a.Transport().LocalAddr())
		}
		// b counts its reply once sent, which may be after a has it.
		synctest.Wait()
		st := b.Stats()
		if st.QueriesIn != 1 || st.RepliesOut != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestRemoteErrors(t *testing.T) {
	n := memory.NewNetwork(nil)
	a := newServer(t, n, nil, nil)
	b := newServer(t, n, Mux{
		"boom":    HandlerFunc(func(context.Context, *Query) (*Response, error) { panic("handler bug") }),
		"fail":    HandlerFunc(func(context.Context, *Query) (*Response, error) { return nil, errors.New("internal detail") }),
		"proto":   HandlerFunc(func(context.Context, *Query) (*Response, error) { return nil, ProtocolError("bad arg") }),
		"nothing": HandlerFunc(func(context.Context, *Query) (*Response, error) { return nil, nil }),
	}, nil)
	to := b.Transport().LocalAddr()
	for _, c := range []struct {
		method string
		code   int
	}{{"ping", 204}, {"no_such_method", 204}, {"boom", 202}, {"fail", 202}, {"proto", 203}, {"nothing", 202}} {
		q := pingQuery()
		q.Method = c.method
		_, err := a.Call(t.Context(), to, q)
		var ke *Error
		if !errors.As(err, &ke) || ke.Code != c.code {
			t.Errorf("%s: error %v, want KRPC error %d", c.method, err, c.code)
		}
		if ke != nil && strings.Contains(ke.Msg, "internal detail") {
			t.Errorf("%s: internal error text leaked to the querier: %q", c.method, ke.Msg)
		}
	}
}

func TestNoReply(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork(nil)
		a := newServer(t, n, nil, &Config{Timeout: time.Second, Attempts: 1})
		b := newServer(t, n, HandlerFunc(func(context.Context, *Query) (*Response, error) { return nil, ErrNoReply }), nil)
		start := time.Now()
		_, err := a.Call(t.Context(), b.Transport().LocalAddr(), pingQuery())
		if !errors.Is(err, ErrTimeout) || time.Since(start) != time.Second {
			t.Fatalf("err %v after %v, want ErrTimeout after 1s", err, time.Since(start))
		}
	})
}

// The second attempt reuses the transaction ID, so a late answer to the first one counts.
func TestRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork(nil)
		a := newServer(t, n, nil, &Config{Timeout: 500 * time.Millisecond, Attempts: 3})
		b := newServer(t, n, pingHandler(idB), nil)
		var queries atomic.Int32
		var tids sync.Map
		n.SetFilter(func(d *memory.Datagram) bool {
			var m Msg
			if m.UnmarshalBinary(d.Data) != nil || m.Y != TypeQuery {
				return true
			}
			tids.Store(m.T, true)
			return queries.Add(1) > 2 // lose the first two attempts
		})
		start := time.Now()
		if _, err := a.Call(t.Context(), b.Transport().LocalAddr(), pingQuery()); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != time.Second {
			t.Fatalf("answered after %v, want 1s (two 500ms timeouts)", got)
		}
		ntid := 0
		tids.Range(func(any, any) bool { ntid++; return true })
		if ntid != 1 || a.Stats().QueriesOut != 3 || a.Stats().Timeouts != 2 {
			t.Fatalf("%d distinct tids, stats %+v", ntid, a.Stats())
		}

		queries.Store(-100) // lose everything
		start = time.Now()
		_, err := a.Call(t.Context(), b.Transport().LocalAddr(), pingQuery())
		if !errors.Is(err, ErrTimeout) || time.Since(start) != 1500*time.Millisecond {
			t.Fatalf("err %v after %v, want ErrTimeout after 3 x 500ms", err, time.Since(start))
		}
		if a.Stats().OutstandingNow != 0 {
			t.Fatal("transaction left behind")
		}
	})
}

func TestCallContextAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork(nil)
		a := newServer(t, n, nil, nil)
		silent := listen(t, n) // nothing answers here
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		if _, err := a.Call(ctx, silent.LocalAddr(), pingQuery()); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want DeadlineExceeded", err)
		}
		errc := make(chan error)
		go func() {
			_, err := a.Call(t.Context(), silent.LocalAddr(), pingQuery())
			errc <- err
		}()
		synctest.Wait()
		a.Close()
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("pending call after Close: %v, want net.ErrClosed", err)
		}
		if err := a.Close(); err != nil {
			t.Fatal("second Close:", err)
		}
		if _, err := a.Call(t.Context(), silent.LocalAddr(), pingQuery()); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("call after Close: %v", err)
		}
	})
}

func TestCallValidation(t *testing.T) {
	n := memory.NewNetwork(nil)
	a := newServer(t, n, nil, nil)
	if _, err := a.Call(t.Context(), netip.AddrPort{}, pingQuery()); err == nil {
		t.Fatal("zero address accepted")
	}
	if _, err := a.Call(t.Context(), netip.MustParseAddrPort("10.9.9.9:1"), &Query{Method: "ping"}); err == nil {
		t.Fatal("query without args accepted")
	}
}

// A response from another address than the one queried is not matched, even with the
// right transaction ID.
func TestSpoofedResponseIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork(nil)
		a := newServer(t, n, nil, &Config{Timeout: time.Second, Attempts: 1})
		target := listen(t, n)
		spoofer := netip.MustParseAddrPort("10.66.0.1:6881")
		go func() {
			p, err := target.Receive(t.Context())
			if err != nil {
				return
			}
			var q Msg
			q.UnmarshalBinary(p.Data)
			r := Msg{T: q.T, Y: TypeResponse, R: &Return{Return: akrpc.Return{ID: idB}}}
			b, _ := r.MarshalBinary()
			n.Inject(spoofer, p.From, b)
		}()
		if _, err := a.Call(t.Context(), target.LocalAddr(), pingQuery()); !errors.Is(err, ErrTimeout) {
			t.Fatalf("err %v: the spoofed response was accepted", err)
		}
		if a.Stats().Unmatched != 1 {
			t.Fatalf("stats %+v", a.Stats())
		}
	})
}

func TestMalformedQueries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork(nil)
		s := newServer(t, n, pingHandler(idB), nil)
		raw := listen(t, n)
		to := s.Transport().LocalAddr()
		id := strings.Repeat("\x01", 20)
		for _, c := range []struct {
			name string
			in   string
			code int // 0: no reply expected
		}{
			{"announce_peer without a", "d1:q13:announce_peer1:t2:aa1:y1:qe", 203},
			{"short id", "d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe", 203},
			{"a is a list", "d1:ali1ee1:q4:ping1:t2:aa1:y1:qe", 203},
			{"no method", "d1:ad2:id20:" + id + "e1:t2:aa1:y1:qe", 203},
			{"wrong type for port", "d1:ad2:id20:" + id + "4:porti-e1:q4:ping1:t2:aa1:y1:qe", 0},
			{"truncated", "d1:ad2:id20:" + id, 0},
			{"not a dict", "i42e", 0},
			{"no transaction id", "d1:ad2:id20:" + id + "e1:q4:ping1:y1:qe", 0},
			{"deep nesting", "d1:ad2:id20:" + id + "1:x" + strings.Repeat("l", 1000) + strings.Repeat("e", 1000) + "e1:q4:ping1:t2:aa1:y1:qe", 0},
			{"1 MiB string claim", "d1:ad2:id20:" + id + "1:x1048576:abce1:q4:ping1:t2:aa1:y1:qe", 0},
			{"1-byte ip", "d2:ip1:x1:t2:aa1:y1:re", 0},
			{"unknown y", "d1:t2:aa1:y1:ze", 0},
		} {
			reply := rawExchange(t, raw, to, []byte(c.in))
			switch {
			case c.code == 0 && reply != nil:
				t.Errorf("%s: unexpected reply %+v", c.name, reply)
			case c.code != 0 && (reply == nil || reply.E == nil || reply.E.Code != c.code || reply.T != "aa"):
				t.Errorf("%s: reply %+v, want KRPC error %d", c.name, reply, c.code)
			}
		}
		// Still alive and answering.
		b, _ := (&Msg{T: "zz", Y: TypeQuery, Q: MethodPing, A: &Args{MsgArgs: akrpc.MsgArgs{ID: idA}}}).MarshalBinary()
		if r := rawExchange(t, raw, to, b); r == nil || r.R == nil || r.R.ID != idB || r.T != "zz" {
			t.Fatalf("ping after the malformed input: %+v", r)
		}
	})
}

func TestHandlerCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork(nil)
		release := make(chan struct{})
		var running atomic.Int32
		s := newServer(t, n, HandlerFunc(func(ctx context.Context, q *Query) (*Response, error) {
			running.Add(1)
			<-release
			return nil, ErrNoReply
		}), &Config{MaxHandlers: 4})
		raw := listen(t, n)
		for i := range 10 {
			m := Msg{T: string(rune('a' + i)), Y: TypeQuery, Q: "slow", A: &Args{MsgArgs: akrpc.MsgArgs{ID: idA}}}
			b, _ := m.MarshalBinary()
			raw.Send(s.Transport().LocalAddr(), b)
		}
		synctest.Wait()
		if running.Load() != 4 || s.Stats().Overloaded != 6 {
			t.Fatalf("%d handlers running, stats %+v; want 4 running and 6 dropped", running.Load(), s.Stats())
		}
		close(release)
	})
}

// Closing the server cancels the context of running handlers and waits for them.
func TestCloseWaitsForHandlers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork(nil)
		var finished atomic.Bool
		s, err := NewServer(listen(t, n), HandlerFunc(func(ctx context.Context, q *Query) (*Response, error) {
			<-ctx.Done()
			time.Sleep(time.Second) // fake time: cleanup work after cancellation
			finished.Store(true)
			return nil, ctx.Err()
		}), nil)
		if err != nil {
			t.Fatal(err)
		}
		raw := listen(t, n)
		b, _ := (&Msg{T: "aa", Y: TypeQuery, Q: "slow", A: &Args{MsgArgs: akrpc.MsgArgs{ID: idA}}}).MarshalBinary()
		raw.Send(s.Transport().LocalAddr(), b)
		synctest.Wait()
		s.Close()
		if !finished.Load() {
			t.Fatal("Close returned before the handler finished")
		}
	})
}

// A flood from one source is cut at the rate limit while another source is still
// served, and the server is back at its baseline after.
func TestFloodDoesNotStarveOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork(&memory.Config{QueueLen: 100_000})
		s := newServer(t, n, pingHandler(idB), &Config{SourceRate: 10, SourceBurst: 20})
		flood := listen(t, n)
		other := newServer(t, n, nil, nil)
		synctest.Wait()
		goroutines := bubble.Goroutines()
		for i := range 10_000 { // each its own transaction: a repeated one is answered once
			b, _ := (&Msg{T: string([]byte{byte(i >> 8), byte(i)}), Y: TypeQuery, Q: MethodPing, A: &Args{MsgArgs: akrpc.MsgArgs{ID: idA}}}).MarshalBinary()
			flood.Send(s.Transport().LocalAddr(), b)
		}
		if _, err := other.Call(t.Context(), s.Transport().LocalAddr(), pingQuery()); err != nil {
			t.Fatalf("a well-behaved node was not answered during a flood: %v", err)
		}
		synctest.Wait()
		st := s.Stats()
		if st.RepliesOut != 21 || st.RateLimited != 10_000-20 {
			t.Fatalf("stats %+v: want 20 flood replies + 1, the rest rate limited", st)
		}
		if l := s.inLimit.Len(); l != 2 {
			t.Errorf("the per-source limiter tracks %d sources, want the flooder and the other", l)
		}
		settled(t, s, goroutines)
	})
}

func TestReadOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork(nil)
		ro := newServer(t, n, pingHandler(idA), &Config{ReadOnly: true, Timeout: time.Second, Attempts: 1})
		var sawRO atomic.Bool
		b := newServer(t, n, HandlerFunc(func(ctx context.Context, q *Query) (*Response, error) {
			sawRO.Store(q.ReadOnly)
			return &Response{Return: &Return{Return: akrpc.Return{ID: idB}}}, nil
		}), nil)
		if _, err := ro.Call(t.Context(), b.Transport().LocalAddr(), pingQuery()); err != nil || !sawRO.Load() {
			t.Fatalf("read-only query: err %v, ro seen %v", err, sawRO.Load())
		}
		if _, err := b.Call(t.Context(), ro.Transport().LocalAddr(), pingQuery()); !errors.Is(err, ErrTimeout) {
			t.Fatalf("a read-only node answered: %v", err)
		}
	})
}

// tagExtension marks outgoing queries and our responses with an extra key, and adds a method.
type tagExtension struct{ calls atomic.Int32 }

func (e *tagExtension) WrapCaller(next Caller) Caller {
	return CallerFunc(func(ctx context.Context, to netip.AddrPort, q *Query) (*Response, error) {
		e.calls.Add(1)
		if q.Args.Extra == nil {
			q.Args.Extra = Extra{}
		}
		q.Args.Extra["tag"] = bencode.Bytes("3:out")
		return next.Call(ctx, to, q)
	})
}

func (e *tagExtension) WrapHandler(next Handler) Handler {
	return HandlerFunc(func(ctx context.Context, q *Query) (*Response, error) {
		resp, err := next.ServeKRPC(ctx, q)
		if err == nil {
			if resp.Return.Extra == nil {
				resp.Return.Extra = Extra{}
			}
			resp.Return.Extra["seen"] = q.Args.Extra["tag"]
		}
		return resp, err
	})
}

func (e *tagExtension) Methods() map[string]Handler {
	return map[string]Handler{"echo": HandlerFunc(func(ctx context.Context, q *Query) (*Response, error) {
		return &Response{Return: &Return{Return: akrpc.Return{ID: idB}, Extra: Extra{"echo": q.Args.Extra["tag"]}}}, nil
	})}
}

func TestExtensionChain(t *testing.T) {
	n := memory.NewNetwork(nil)
	ea, eb := &tagExtension{}, &tagExtension{}
	a := newServer(t, n, nil, &Config{Extensions: []Extension{ea}})
	b := newServer(t, n, pingHandler(idB), &Config{Extensions: []Extension{eb}})
	resp, err := a.Call(t.Context(), b.Transport().LocalAddr(), pingQuery())
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Return.Extra["seen"]) != "3:out" || ea.calls.Load() != 1 {
		t.Fatalf("extension did not see both ends: %q, %d calls", resp.Return.Extra["seen"], ea.calls.Load())
	}
	q := pingQuery()
	q.Method = "echo"
	resp, err = a.Call(t.Context(), b.Transport().LocalAddr(), q)
	if err != nil {
		t.Fatal(err)
	}
	// The added method is wrapped too: its response carries "seen" from WrapHandler.
	if string(resp.Return.Extra["echo"]) != "3:out" || string(resp.Return.Extra["seen"]) != "3:out" {
		t.Fatalf("extension method: %+v", resp.Return.Extra)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{Timeout: -1}, {Attempts: -1}, {MaxHandlers: -2}, {Extensions: []Extension{nil}}} {
		if _, err := NewServer(memoryTransport(t), nil, &c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	cfg := &Config{Extensions: []Extension{&tagExtension{}}}
	s, err := NewServer(memoryTransport(t), nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if cfg.Timeout != 0 || cfg.Version != "" {
		t.Fatal("NewServer changed the caller's Config")
	}
}

func memoryTransport(t *testing.T) *memory.Transport { return listen(t, memory.NewNetwork(nil)) }

// aliased sends messages for alias to real, as a WebRTC transport does for the
// signalling address it bootstrapped through.
type aliased struct {
	*memory.Transport
	alias, real netip.AddrPort
}

func (a *aliased) Send(to netip.AddrPort, b []byte) error {
	if to == a.alias {
		to = a.real
	}
	return a.Transport.Send(to, b)
}

func (a *aliased) Resolve(to netip.AddrPort) netip.AddrPort {
	if to == a.alias {
		return a.real
	}
	return to
}

// A reply from the address an alias resolves to answers the query sent to the alias.
func TestCallThroughAlias(t *testing.T) {
	n := memory.NewNetwork(nil)
	b := newServer(t, n, pingHandler(idB), nil)
	alias := netip.MustParseAddrPort("192.0.2.1:16881")
	a, err := NewServer(&aliased{Transport: listen(t, n), alias: alias, real: b.Transport().LocalAddr()}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	resp, err := a.Call(t.Context(), alias, pingQuery())
	if err != nil || resp.From != b.Transport().LocalAddr() {
		t.Fatalf("call through an alias: %+v, %v", resp, err)
	}
}

// WithResend sends the query again at once: a lost first send costs the time until the
// resend, not Config.Timeout. A copy that reaches the node while its handler runs is
// handled once.
func TestCallResend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork(nil)
		var handled atomic.Int32
		s := newServer(t, n, HandlerFunc(func(ctx context.Context, q *Query) (*Response, error) {
			handled.Add(1)
			time.Sleep(100 * time.Millisecond) // long enough for a resend to arrive meanwhile
			r := &Return{}
			r.ID = idB
			return &Response{Return: r}, nil
		}), nil)
		c := newServer(t, n, nil, nil)
		var queries atomic.Int32
		n.SetFilter(func(d *memory.Datagram) bool {
			// The first query is lost.
			return d.To != s.Transport().LocalAddr() || queries.Add(1) > 1
		})
		resend := make(chan struct{}, 1)
		go func() {
			time.Sleep(300 * time.Millisecond)
			resend <- struct{}{} // recovers the lost one
			time.Sleep(50 * time.Millisecond)
			resend <- struct{}{} // arrives while the handler runs
		}()
		start := time.Now()
		resp, err := c.Call(WithResend(t.Context(), resend), s.Transport().LocalAddr(), pingQuery())
		if err != nil {
			t.Fatal(err)
		}
		if !resp.Resent {
			t.Error("Resent is false for a query sent twice")
		}
		if took := time.Since(start); took != 400*time.Millisecond {
			t.Errorf("answered after %v, want 400ms (the resend at 300ms, then the handler's 100ms)", took)
		}
		synctest.Wait()
		if got := handled.Load(); got != 1 || queries.Load() != 3 {
			t.Errorf("%d queries reached the node and %d were handled, want 3 and 1", queries.Load(), got)
		}
		if st := c.Stats(); st.QueriesOut != 3 || st.Timeouts != 0 {
			t.Errorf("client stats %+v: want 3 transmissions and no timeout", st)
		}
		if resp, err := c.Call(t.Context(), s.Transport().LocalAddr(), pingQuery()); err != nil || resp.Resent {
			t.Errorf("a query sent once: Resent %v, error %v", resp != nil && resp.Resent, err)
		}
		closed := make(chan struct{})
		close(closed) // ends the resends: the Call neither spins nor resends
		if resp, err := c.Call(WithResend(t.Context(), closed), s.Transport().LocalAddr(), pingQuery()); err != nil || resp.Resent {
			t.Errorf("with a closed resend channel: Resent %v, error %v", resp != nil && resp.Resent, err)
		}
	})
}
