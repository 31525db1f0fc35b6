package dht

import (
	"crypto/ed25519"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wdht/wdht/transport/memory"
)

// bootstrapAll starts n nodes; each bootstraps from a random node started before it,
// workers at a time.
func bootstrapAll(t *testing.T, c *cluster, n, workers int, cfg func() *Config) {
	t.Helper()
	first := c.add(cfg())
	_ = first
	for range n - 1 {
		c.add(cfg())
	}
	rng := rand.New(rand.NewPCG(1, 2))
	seeds := make([]int, n)
	for i := 1; i < n; i++ {
		seeds[i] = rng.IntN(i)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, workers)
	errs := make(chan error, n)
	for i := 1; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := c.nodes[i].Bootstrap(t.Context(), c.nodes[seeds[i]].Addr()); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("bootstrap: %v", err)
	}
}

func median(xs []int) int {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestNetwork1000 bootstraps 1,000 nodes on a memory network with 10-30 ms links, lets
// it run for five (fake) minutes of maintenance, announces 200 infohashes from random
// nodes and looks each one up from another random node.
func TestNetwork1000(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 nodes")
	}
	synctest.Test(t, testNetwork1000)
}

func testNetwork1000(t *testing.T) {
	const nodes, infohashes = 1000, 200
	c := newCluster(t, &memory.Config{Link: memory.LinkConfig{Delay: 10 * time.Millisecond, Jitter: 20 * time.Millisecond}, Seed: 1})
	bootstrapAll(t, c, nodes, 16, unlimited)
	time.Sleep(5 * time.Minute)
	synctest.Wait()
	tableSizes := make([]int, nodes)
	for i, n := range c.nodes {
		tableSizes[i] = len(n.Nodes())
		if tableSizes[i] == 0 {
			t.Fatalf("node %d has an empty routing table", i)
		}
	}
	t.Logf("routing table sizes: min %d, median %d, max %d", slices.Min(tableSizes), median(tableSizes), slices.Max(tableSizes))

	rng := rand.New(rand.NewPCG(3, 4))
	type job struct {
		ih                ID
		announcer, looker *Node
	}
	jobs := make([]job, infohashes)
	for i := range jobs {
		a, l := rng.IntN(nodes), rng.IntN(nodes-1)
		if l >= a {
			l++
		}
		jobs[i] = job{RandomID(), c.nodes[a], c.nodes[l]}
	}
	var mu sync.Mutex
	var rounds, msgs []int
	run := func(f func(j job)) {
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for _, j := range jobs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				f(j)
			}()
		}
		wg.Wait()
	}
	run(func(j job) {
		if _, err := j.announcer.Announce(t.Context(), j.ih, 5000); err != nil {
			t.Errorf("announce %v: %v", j.ih, err)
		}
	})
	found := 0
	run(func(j job) {
		want := netip.AddrPortFrom(j.announcer.Addr().Addr(), 5000)
		ok := false
		res, err := j.looker.GetPeers(t.Context(), j.ih, func(p netip.AddrPort, _ NodeInfo) bool {
			ok = ok || p == want
			return true // run each lookup to the end, so the figures describe full lookups
		})
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			t.Errorf("get_peers %v: %v", j.ih, err)
			return
		}
		if ok {
			found++
		}
		rounds = append(rounds, res.Rounds)
		msgs = append(msgs, res.Queries+res.Responses)
	})
	t.Logf("get_peers: %d/%d found the announcer; median %d rounds, median %d messages per lookup (queries+responses); max %d rounds, %d messages",
		found, infohashes, median(rounds), median(msgs), slices.Max(rounds), slices.Max(msgs))
	if found != infohashes {
		t.Fatalf("only %d of %d lookups found the announcer", found, infohashes)
	}

	// BEP 44: 100 mutable items (salted, one key each) put from random nodes and read
	// back from other random nodes, then updated with a higher seq and read again.
	const items = 100
	keys := make([]ed25519.PrivateKey, items)
	for i := range keys {
		_, keys[i], _ = ed25519.GenerateKey(nil)
	}
	salt := []byte("wdht-test")
	for seq := int64(1); seq <= 2; seq++ {
		var stored []int
		var getRounds []int
		var mu sync.Mutex
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for i := range items {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				it, err := NewMutableItem(keys[i], salt, seq, fmt.Sprintf("item %d version %d", i, seq))
				if err != nil {
					t.Error(err)
					return
				}
				putter, getter := c.nodes[rng2(i, seq, 0)%nodes], c.nodes[rng2(i, seq, 1)%nodes]
				pr, err := putter.Put(t.Context(), it, nil)
				if err != nil {
					t.Errorf("put item %d seq %d: %v", i, seq, err)
					return
				}
				gr, err := getter.Get(t.Context(), it.Target(), &GetOptions{Salt: salt})
				mu.Lock()
				defer mu.Unlock()
				stored = append(stored, pr.Stored)
				switch {
				case err != nil:
					t.Errorf("get item %d seq %d: %v", i, seq, err)
				case gr.Item.Seq != seq || string(gr.Item.V) != string(it.V):
					t.Errorf("get item %d: seq %d %q, want seq %d %q", i, gr.Item.Seq, gr.Item.V, seq, it.V)
				default:
					getRounds = append(getRounds, gr.Lookup.Rounds)
				}
			}()
		}
		wg.Wait()
		if len(getRounds) > 0 {
			t.Logf("BEP 44 seq %d: %d/%d items read back; median %d nodes stored each, median %d rounds per get",
				seq, len(getRounds), items, median(stored), median(getRounds))
		}
	}
}

// rng2 picks a deterministic pseudo-random index from (i, seq, which).
func rng2(i int, seq int64, which int) int {
	return int(rand.New(rand.NewPCG(uint64(i), uint64(seq)*2+uint64(which))).Uint32())
}
