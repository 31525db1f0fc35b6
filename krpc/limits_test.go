package krpc

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	akrpc "github.com/anacrolix/dht/v2/krpc"

	"github.com/wdht/wdht/internal/bubble"
	"github.com/wdht/wdht/transport/memory"
)

func rawPing(t string) []byte {
	b, _ := (&Msg{T: t, Y: TypeQuery, Q: MethodPing, A: &Args{MsgArgs: akrpc.MsgArgs{ID: idA}}}).MarshalBinary()
	return b
}

// floodAddr is the i-th of many distinct flooding sources.
func floodAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 99, byte(i >> 8), byte(i)}), 1)
}

// settled fails t unless s is back at its idle baseline after a flood: no query
// outstanding or awaited, no transaction left, the per-source limiter within MaxSources,
// and no more goroutines in the test's synctest bubble than the goroutines counted
// (bubble.Goroutines) before the flood.
func settled(t *testing.T, s *Server, goroutines int) {
	t.Helper()
	synctest.Wait()
	s.mu.Lock()
	awaiting, txns := len(s.awaiting), len(s.txns)
	s.mu.Unlock()
	if st := s.Stats(); st.OutstandingNow != 0 || awaiting != 0 || txns != 0 {
		t.Errorf("after the flood: %d queries outstanding, %d addresses awaited, %d transactions", st.OutstandingNow, awaiting, txns)
	}
	if l := s.inLimit.Len(); l > s.cfg.MaxSources {
		t.Errorf("the per-source limiter tracks %d sources, more than MaxSources %d", l, s.cfg.MaxSources)
	}
	if g := bubble.Goroutines(); g > goroutines {
		t.Errorf("%d goroutines after the flood, %d before", g, goroutines)
	}
}

// The answers to our own queries are matched before the inbound limits: a flood that
// empties both the responder's per-source bucket and the global one does not make us
// drop the answer we wait for. Queries from that responder still pay the limits.
func TestAnswersSkipInboundLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork(&memory.Config{QueueLen: 1 << 14})
		s := newServer(t, n, pingHandler(idB), &Config{SourceRate: 1, SourceBurst: 1, InboundRate: 10, InboundBurst: 10})
		peer := listen(t, n)
		to := s.Transport().LocalAddr()
		synctest.Wait()
		goroutines := bubble.Goroutines()
		for i := range 1000 { // the peer's own bucket, then the global one
			n.Inject(peer.LocalAddr(), to, rawPing("p"))
			n.Inject(floodAddr(i), to, rawPing("f"))
		}
		synctest.Wait()
		base := s.Stats()
		if base.RateLimited == 0 || base.Throttled == 0 {
			t.Fatalf("the flood did not reach the limits: %+v", base)
		}
		// The peer answers our query, after sending queries of its own.
		go func() {
			var q Msg
			for q.Y != TypeQuery { // skip the replies to the flood's queries
				p, err := peer.Receive(t.Context())
				if err != nil || q.UnmarshalBinary(p.Data) != nil {
					return
				}
			}
			for range 5 {
				peer.Send(to, rawPing("x"))
			}
			r, _ := (&Msg{T: q.T, Y: TypeResponse, R: &Return{Return: akrpc.Return{ID: idB}}}).MarshalBinary()
			peer.Send(to, r)
		}()
		resp, err := s.Call(t.Context(), peer.LocalAddr(), pingQuery())
		if err != nil {
			t.Fatalf("the answer to our query was dropped by the inbound limits: %v", err)
		}
		if resp.Return.ID != idB {
			t.Fatalf("answer %+v", resp.Return)
		}
		synctest.Wait()
		st := s.Stats()
		if got := st.RateLimited + st.Throttled - base.RateLimited - base.Throttled; got != 5 {
			t.Fatalf("%d of the 5 queries the responder sent with its answer were limited, want 5", got)
		}
		if st.ResponsesIn != 1 {
			t.Fatalf("ResponsesIn %d, want 1", st.ResponsesIn)
		}
		settled(t, s, goroutines)
	})
}

// The global inbound limit holds against a flood from many sources, each within its
// own limit; during it the server's own query to a well-behaved node is answered; the
// server's state returns to its baseline after.
func TestGlobalInboundLimitFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork(&memory.Config{QueueLen: 1 << 14})
		s := newServer(t, n, pingHandler(idB), &Config{InboundRate: 100, InboundBurst: 50, MaxSources: 1024})
		good := newServer(t, n, pingHandler(idA), nil)
		to := s.Transport().LocalAddr()
		synctest.Wait()
		goroutines := bubble.Goroutines()
		for i := range 5000 {
			n.Inject(floodAddr(i), to, rawPing("f"))
		}
		if _, err := s.Call(t.Context(), good.Transport().LocalAddr(), pingQuery()); err != nil {
			t.Fatalf("our ping to a well-behaved node failed during the flood: %v", err)
		}
		synctest.Wait()
		st := s.Stats()
		if st.QueriesIn != 50 || st.Throttled != 5000-50 {
			t.Fatalf("stats %+v: want the burst of 50 queries handled, the rest throttled", st)
		}
		time.Sleep(time.Second) // fake time: 100 tokens
		for i := range 1000 {
			n.Inject(floodAddr(5000+i), to, rawPing("f"))
		}
		synctest.Wait()
		if got := s.Stats().QueriesIn - st.QueriesIn; got != 50 {
			// The bucket holds at most its burst of 50, whatever the time elapsed.
			t.Fatalf("%d queries handled a second later, want the burst of 50", got)
		}
		settled(t, s, goroutines)
	})
}

// MaxOutstanding caps the queries awaiting answers: with 100 queries to silent nodes
// started at once, 3 wait and the others fail at once with ErrTooManyQueries; the
// server still answers a well-behaved node's ping meanwhile; the slots come back when
// the queries time out, and nothing is left after.
func TestMaxOutstanding(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork(nil)
		s := newServer(t, n, pingHandler(idA), &Config{MaxOutstanding: 3, Attempts: 1})
		silent := listen(t, n) // receives and never answers
		good := newServer(t, n, pingHandler(idB), nil)
		synctest.Wait()
		goroutines := bubble.Goroutines()
		const flood = 100
		errs := make(chan error, flood)
		for range flood {
			go func() { _, err := s.Call(t.Context(), silent.LocalAddr(), pingQuery()); errs <- err }()
		}
		synctest.Wait()
		if got := s.Stats().OutstandingNow; got != 3 {
			t.Fatalf("%d outstanding, want 3", got)
		}
		start := time.Now()
		if _, err := s.Call(t.Context(), silent.LocalAddr(), pingQuery()); !errors.Is(err, ErrTooManyQueries) {
			t.Fatalf("one more query: %v, want ErrTooManyQueries", err)
		}
		if time.Since(start) != 0 {
			t.Fatal("the refused query waited")
		}
		// Answers are not queries of ours: a well-behaved node's ping is answered.
		if r, err := good.Call(t.Context(), s.Transport().LocalAddr(), pingQuery()); err != nil || r.Return.ID != idA {
			t.Fatalf("a well-behaved node's ping with MaxOutstanding reached: %v", err)
		}
		var refused, timedOut int
		for range flood {
			switch err := <-errs; {
			case errors.Is(err, ErrTooManyQueries):
				refused++
			case errors.Is(err, ErrTimeout):
				timedOut++
			default:
				t.Fatalf("a query: %v, want ErrTimeout or ErrTooManyQueries", err)
			}
		}
		if timedOut != 3 || refused != flood-3 {
			t.Fatalf("%d queries timed out and %d were refused, want 3 and %d", timedOut, refused, flood-3)
		}
		if _, err := s.Call(t.Context(), good.Transport().LocalAddr(), pingQuery()); err != nil {
			t.Fatalf("a query after the others timed out: %v", err)
		}
		settled(t, s, goroutines)
	})
}

// The outbound budget paces Calls at the server: QueryBurst at once, then QueryRate a
// second. Calls with WithOwnBudget do not spend it. With the budget spent and calls
// waiting for it, the server still answers a well-behaved node's ping at once, and
// nothing is left after.
func TestOutboundBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork(nil)
		s := newServer(t, n, pingHandler(idA), &Config{QueryRate: 10, QueryBurst: 5})
		good := newServer(t, n, pingHandler(idB), nil)
		synctest.Wait()
		goroutines := bubble.Goroutines()
		start := time.Now()
		for i := range 25 {
			if _, err := s.Call(t.Context(), good.Transport().LocalAddr(), pingQuery()); err != nil {
				t.Fatal(err)
			}
			want := time.Duration(max(0, i+1-5)) * 100 * time.Millisecond
			if got := time.Since(start); got != want {
				t.Fatalf("call %d done after %v, want %v (burst 5, then 10/s)", i+1, got, want)
			}
		}
		// The budget is spent; calls paid by a budget of their own are not held up.
		own := WithOwnBudget(t.Context())
		mark := time.Now()
		for range 20 {
			if _, err := s.Call(own, good.Transport().LocalAddr(), pingQuery()); err != nil {
				t.Fatal(err)
			}
		}
		if d := time.Since(mark); d != 0 {
			t.Fatalf("calls with their own budget waited %v", d)
		}
		// A call whose context ends while it waits for budget fails with ctx's error.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		defer cancel()
		if _, err := s.Call(ctx, good.Transport().LocalAddr(), pingQuery()); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a call with no budget left: %v", err)
		}
		// 50 calls wait for the budget (5 s of it); meanwhile a ping to us is answered at once.
		waiting := make(chan error, 50)
		for range 50 {
			go func() { _, err := s.Call(t.Context(), good.Transport().LocalAddr(), pingQuery()); waiting <- err }()
		}
		synctest.Wait()
		mark = time.Now()
		if r, err := good.Call(t.Context(), s.Transport().LocalAddr(), pingQuery()); err != nil || r.Return.ID != idA {
			t.Fatalf("a well-behaved node's ping with the budget spent: %v", err)
		}
		if d := time.Since(mark); d != 0 {
			t.Fatalf("the answer to a ping waited %v for the outbound budget", d)
		}
		for range 50 {
			if err := <-waiting; err != nil {
				t.Fatal(err)
			}
		}
		settled(t, s, goroutines)
	})
}
