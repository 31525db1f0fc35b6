package dht

import (
	"context"
	"net/netip"
	"sync"
	"testing"

	"github.com/wdht/wdht/transport"
)

// dialling is a transport that "dials" every saved bootstrap name to one address, as a
// WebRTC transport dials a signalling server.
type dialling struct {
	transport.Transport
	to netip.AddrPort
}

func (d dialling) Dial(context.Context, string) (netip.AddrPort, error) { return d.to, nil }

// Concurrent Bootstrap calls without addresses each build their seed list from the
// configured and saved nodes; they must not write into one shared backing array (run
// under -race: it reported the appends at dht/api.go racing before the fix).
func TestConcurrentBootstrapRace(t *testing.T) {
	c := newCluster(t, nil)
	seed := c.add(nil)
	tr, err := c.net.Listen(netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	// Three saved addresses grow the seed slice to a capacity of four: room for one
	// more element that every Bootstrap would append in place.
	st := &State{Bootstrap: []string{seed.Addr().String(), "192.0.2.1:1", "192.0.2.2:1", "signal.example:443"}}
	n, err := New(dialling{tr, seed.Addr()}, &Config{State: st})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if cap(n.bootstrap) == len(n.bootstrap) {
		t.Fatalf("seed slice has no spare capacity (len %d): the test would not exercise the race", len(n.bootstrap))
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(t.Context())
			cancel() // the seeds are built before the lookup; it need not run
			n.Bootstrap(ctx)
		})
	}
	wg.Wait()
	if len(n.bootstrap) != 3 {
		t.Fatalf("Bootstrap changed the saved seeds: %v", n.bootstrap)
	}
}
