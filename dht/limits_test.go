package dht

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wdht/wdht/transport/memory"
)

// TestVerifyingBounded: 100 unknown nodes that query a node and never answer its pings
// get at most maxVerifying pings in flight from it; a well-behaved node is still
// answered meanwhile, and once the pings time out no verification is left pending.
func TestVerifyingBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		x := c.add(unlimited())
		silent := make([]*memory.Transport, 100)
		for i := range silent {
			silent[i] = c.listen()
			id := RandomID()
			q := fmt.Sprintf("d1:ad2:id20:%se1:q4:ping1:t2:aa1:y1:qe", id[:])
			if err := silent[i].Send(x.Addr(), []byte(q)); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		good := c.add(nil)
		if _, err := good.Ping(t.Context(), x.Addr()); err != nil {
			t.Fatalf("a well-behaved node's ping during the flood: %v", err)
		}
		pinged := 0
		done, cancel := context.WithCancel(t.Context())
		cancel()
		for _, s := range silent {
			for {
				p, err := s.Receive(done) // what is queued, without waiting
				if err != nil {
					break
				}
				if bytes.Contains(p.Data, []byte("1:q4:ping")) {
					pinged++
					break
				}
			}
		}
		x.mu.Lock()
		pending := len(x.verifying)
		x.mu.Unlock()
		if pinged != maxVerifying || pending != maxVerifying {
			t.Fatalf("100 unknown queriers: %d pinged, %d verifications pending; want %d", pinged, pending, maxVerifying)
		}
		time.Sleep(time.Minute) // the pings time out
		synctest.Wait()
		x.mu.Lock()
		pending = len(x.verifying)
		x.mu.Unlock()
		if pending != 0 {
			t.Fatalf("%d verifications still pending after the pings timed out", pending)
		}
	})
}
