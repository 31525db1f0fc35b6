package signals

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
)

// gatedOffer is an Offer whose Connect blocks until its gate opens, then connects to
// addr, or fails when addr is invalid.
type gatedOffer struct {
	gate     chan struct{}
	addr     netip.AddrPort
	connects atomic.Int32
	closed   atomic.Bool
}

func (o *gatedOffer) SDP() string { return "gated" }
func (o *gatedOffer) Connect(ctx context.Context, _ string) (netip.AddrPort, error) {
	o.connects.Add(1)
	select {
	case <-o.gate:
	case <-ctx.Done():
		return netip.AddrPort{}, ctx.Err()
	}
	if !o.addr.IsValid() {
		return netip.AddrPort{}, errors.New("gated offer: no connection")
	}
	return o.addr, nil
}
func (o *gatedOffer) Close() error { o.closed.Store(true); return nil }

// Two nodes a query went to in parallel both relayed our offers to node X, which answered
// both. A JS node destroys the second connection of one node ID (js-wire-protocol §7.2),
// so only one answer is completed: the other waits and shares its connection, and
// completes its own only when the first failed.
func TestOneDialPerNode(t *testing.T) {
	x := idOf(0x42)
	for _, c := range []struct {
		name      string
		firstFail bool
	}{{"first connects", false}, {"first fails", true}} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				e, err := New(NewFakeNetwork(nil).Signaler(netip.AddrPort{}), nil)
				if err != nil {
					t.Fatal(err)
				}
				defer e.Close()
				firstAddr := netip.MustParseAddrPort("10.0.0.1:1")
				if c.firstFail {
					firstAddr = netip.AddrPort{}
				}
				first := &gatedOffer{gate: make(chan struct{}), addr: firstAddr}
				second := &gatedOffer{gate: make(chan struct{}), addr: netip.MustParseAddrPort("10.0.0.2:2")}
				close(second.gate)
				var wg sync.WaitGroup
				var got [2]netip.AddrPort
				var ok [2]bool
				wg.Go(func() { got[0], ok[0] = e.dial(t.Context(), x, first, "a") })
				synctest.Wait() // the first is connecting
				wg.Go(func() { got[1], ok[1] = e.dial(t.Context(), x, second, "b") })
				synctest.Wait()
				if n := second.connects.Load(); n != 0 {
					t.Fatalf("the second answer was completed while the first was: %d connects", n)
				}
				close(first.gate)
				wg.Wait()
				if c.firstFail {
					if ok[0] || !ok[1] || got[1] != second.addr || second.connects.Load() != 1 {
						t.Fatalf("after the first failed: results %v %v, second connects %d; want the second's own connection", got, ok, second.connects.Load())
					}
				} else {
					if !ok[0] || !ok[1] || got[0] != firstAddr || got[1] != firstAddr {
						t.Fatalf("results %v %v, want both on the first's connection %v", got, ok, firstAddr)
					}
					if second.connects.Load() != 0 || !second.closed.Load() {
						t.Fatalf("second offer: %d connects, closed %v; want none and closed", second.connects.Load(), second.closed.Load())
					}
				}
				e.mu.Lock()
				left := len(e.dialing)
				e.mu.Unlock()
				if left != 0 {
					t.Fatalf("%d dials still recorded", left)
				}
			})
		})
	}
}
