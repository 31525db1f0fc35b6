//go:build linux

package natlab

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wdht/wdht/internal/netlab"
)

// crowdSize is how many of our nodes TestCrowdBehindOneNAT puts behind one NAT.
const crowdSize = 20

// TestCrowdBehindOneNAT: many users behind one NAT (a carrier NAT, or a campus) share
// its public address, which the bridge's per-source caps count as one source. Twenty of
// our nodes behind one NAT join through the public bridge at the same moment, with its
// default caps; every one of them joins and announces (stored by at least one node).
func TestCrowdBehindOneNAT(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	l := netlab.New(t)
	turn := l.PublicHost("turn").StartTURN(t, "wdht", "lab-secret")
	br := startBridge(ctx, t, l.PublicHost("bridge"))
	nat := l.NAT("cgn", netlab.NATConfig{Type: netlab.PortRestricted})
	hosts := make([]*netlab.Host, crowdSize)
	for i := range hosts {
		hosts[i] = nat.Host(fmt.Sprintf("u%d", i))
	}
	t.Logf("lab ready: %v", time.Since(start))
	nodes := make([]*labNode, crowdSize)
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Go(func() {
			nodes[i] = startNode(ctx, t, h, nodeSpec{ICE: []string{turn.STUNURL()}, Bootstrap: br.signal})
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var failed []string
	var slowest float64
	for _, n := range nodes {
		if n.joined.Err != "" {
			failed = append(failed, n.host.Name+": "+n.joined.Err)
		}
		slowest = max(slowest, n.joined.DialMS)
	}
	t.Logf("%d nodes behind one NAT joined at once; slowest dial to the bridge %.0f ms (%v)", crowdSize, slowest, time.Since(start))
	if len(failed) > 0 {
		t.Fatalf("%d of %d nodes behind one NAT did not join:\n%v", len(failed), crowdSize, failed)
	}
	// Each announces its own infohash, at once; each then looks up its neighbour's.
	tag := fmt.Sprint(time.Now().UnixNano())
	errs := make([]string, crowdSize)
	for i, n := range nodes {
		wg.Go(func() {
			if r := n.do(ctx, t, command{Op: "announce", IH: infohash(fmt.Sprint(tag, i))}); r.Err != "" || r.Stored == 0 {
				errs[i] = fmt.Sprintf("%s's announce: %+v", n.host.Name, r)
			}
		})
	}
	wg.Wait()
	t.Logf("announced: %v", time.Since(start))
	// Each looks up its neighbour's: logged, not asserted (see the README: with twenty
	// nodes joined in the same second, some lookups end without the peer).
	var found atomic.Int32
	for i, n := range nodes {
		wg.Go(func() {
			r := n.do(ctx, t, command{Op: "lookup", IH: infohash(fmt.Sprint(tag, (i+1)%crowdSize)), Timeout: lookupTimeoutMS})
			if len(r.Found) > 0 {
				found.Add(1)
			}
		})
	}
	wg.Wait()
	t.Logf("lookups that found the neighbour's peer: %d of %d", found.Load(), crowdSize)
	t.Logf("looked up: %v", time.Since(start))
	for _, e := range errs {
		if e != "" {
			t.Error(e)
		}
	}
}
