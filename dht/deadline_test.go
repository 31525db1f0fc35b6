package dht

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wdht/wdht/internal/bubble"
	"github.com/wdht/wdht/transport/memory"
)

// hangingDial is a transport whose dials never answer: they end only with their context.
type hangingDial struct {
	*memory.Transport
	mu            sync.Mutex
	started, done int
	unbounded     int // dials whose context had no deadline
}

func (h *hangingDial) Dial(ctx context.Context, addr string) (netip.AddrPort, error) {
	h.mu.Lock()
	h.started++
	if _, ok := ctx.Deadline(); !ok {
		h.unbounded++
	}
	h.mu.Unlock()
	<-ctx.Done()
	h.mu.Lock()
	h.done++
	h.mu.Unlock()
	return netip.AddrPort{}, ctx.Err()
}

func (h *hangingDial) counts() (started, done, unbounded int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.started, h.done, h.unbounded
}

// TestBackgroundLookupsHaveDeadlines: the lookups a node starts by itself (maintenance,
// when its table is short; the re-bootstrap after a BEP 42 change of ID) end within
// MaxLookupDuration, dialling saved bootstrap servers included, even when those never
// answer.
func TestBackgroundLookupsHaveDeadlines(t *testing.T) {
	for _, tc := range []struct {
		name string
		kick func(n *Node) // starts the background lookup
		wait time.Duration // until it has started
	}{
		{"maintenance", func(*Node) {}, DefaultMaintenanceInterval * 2},
		{"BEP 42 change of ID", func(n *Node) {
			for _, r := range []string{"198.51.100.1", "198.51.101.1", "198.51.102.1"} {
				n.noteExternalIP(netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr(r))
			}
		}, time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mem := memory.NewNetwork(nil)
				tr, err := mem.Listen(netip.MustParseAddrPort("203.0.113.10:6881"))
				if err != nil {
					t.Fatal(err)
				}
				defer tr.Close()
				h := &hangingDial{Transport: tr}
				n, err := New(h, &Config{State: &State{Bootstrap: []string{"hang.example:1"}}, MaxLookupDuration: 10 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				defer n.Close()
				gtr, err := mem.Listen(netip.AddrPort{})
				if err != nil {
					t.Fatal(err)
				}
				defer gtr.Close()
				good, err := New(gtr, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer good.Close()
				synctest.Wait()
				goroutines := bubble.Goroutines()
				old := n.ID()
				tc.kick(n)
				for end := time.Now().Add(tc.wait); ; { // until a dial hangs
					time.Sleep(time.Millisecond)
					synctest.Wait()
					if s, d, _ := h.counts(); s > d {
						break
					}
					if time.Now().After(end) {
						t.Fatal("no background bootstrap dialled the saved server")
					}
				}
				started, _, unbounded := h.counts()
				// While the dial hangs, the node answers a well-behaved node's ping.
				if _, err := good.Ping(t.Context(), n.Addr()); err != nil {
					t.Fatalf("a well-behaved node's ping while a background lookup hangs: %v", err)
				}
				if s, d, _ := h.counts(); d == s {
					t.Fatal("the dial ended before the ping: the ping was not made during it")
				}
				if unbounded != 0 {
					t.Fatalf("%d background dials without a deadline", unbounded)
				}
				time.Sleep(10 * time.Second)
				synctest.Wait()
				if s, d, _ := h.counts(); d < started {
					t.Fatalf("%d of %d dials still hang after MaxLookupDuration", s-d, s)
				}
				if tc.name != "maintenance" && n.ID() == old {
					t.Fatal("setup: the node kept its ID")
				}
				atBaseline(t, n, goroutines)
			})
		})
	}
}
