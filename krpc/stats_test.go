package krpc

import (
	"context"
	"errors"
	"maps"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wdht/wdht/transport/memory"
)

// TestMethodStats checks the per-method and per-code counters of both sides of a few
// calls: a response, a KRPC error, a timeout (the handler sends nothing), a method not
// counted apart, and a malformed query.
func TestMethodStats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork(nil)
		a := newServer(t, n, nil, &Config{Timeout: time.Second, Attempts: 1})
		b := newServer(t, n, Mux{
			MethodPing:     pingHandler(idB).(Mux)[MethodPing],
			MethodGet:      HandlerFunc(func(context.Context, *Query) (*Response, error) { return nil, &Error{Code: ErrorCodeSeqTooLow} }),
			MethodPut:      HandlerFunc(func(context.Context, *Query) (*Response, error) { return nil, ErrNoReply }),
			"weird_method": HandlerFunc(func(context.Context, *Query) (*Response, error) { return nil, ProtocolError("no") }),
		}, nil)
		to := b.Transport().LocalAddr()
		call := func(method string) error {
			q := pingQuery()
			q.Method = method
			_, err := a.Call(t.Context(), to, q)
			return err
		}
		for range 2 {
			if err := call(MethodPing); err != nil {
				t.Fatal(err)
			}
		}
		if err := call(MethodGet); err == nil {
			t.Fatal("get: no error")
		}
		if err := call(MethodPut); !errors.Is(err, ErrTimeout) {
			t.Fatalf("put: %v, want a timeout", err)
		}
		if err := call("weird_method"); err == nil {
			t.Fatal("weird_method: no error")
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		q := pingQuery()
		if _, err := a.Call(ctx, to, q); err == nil {
			t.Fatal("a call with a cancelled context succeeded")
		}
		// A query without a node ID: malformed, answered with 203 and counted as a get error.
		raw := listen(t, n)
		if m := rawExchange(t, raw, to, []byte("d1:ad6:target20:aaaaaaaaaaaaaaaaaaaae1:q3:get1:t2:aa1:y1:qe")); m == nil || m.E == nil {
			t.Fatalf("malformed query: reply %+v, want an error", m)
		}

		as, bs := a.Stats(), b.Stats()
		for _, c := range []struct {
			got, want MethodStats
		}{
			{as.Method(MethodPing), MethodStats{Method: MethodPing, OutResponses: 2, OutFailed: 1}},
			{as.Method(MethodGet), MethodStats{Method: MethodGet, OutErrors: 1}},
			{as.Method(MethodPut), MethodStats{Method: MethodPut, OutTimeouts: 1}},
			{as.Method("weird_method"), MethodStats{Method: MethodOther, OutErrors: 1}},
			{bs.Method(MethodPing), MethodStats{Method: MethodPing, InResponses: 3}}, // the cancelled call was sent
			{bs.Method(MethodGet), MethodStats{Method: MethodGet, InErrors: 2}},
			{bs.Method(MethodPut), MethodStats{Method: MethodPut, InDropped: 1}},
			{bs.Method("weird_method"), MethodStats{Method: MethodOther, InErrors: 1}},
		} {
			if c.got != c.want {
				t.Errorf("got %+v\nwant %+v", c.got, c.want)
			}
		}
		if want := map[int]uint64{ErrorCodeSeqTooLow: 1, ErrorCodeProtocol: 2}; !maps.Equal(bs.ErrorCodesOut, want) {
			t.Errorf("ErrorCodesOut %v, want %v", bs.ErrorCodesOut, want)
		}
		if len(as.ErrorCodesOut) != 0 {
			t.Errorf("the caller sent errors: %v", as.ErrorCodesOut)
		}
	})
}
