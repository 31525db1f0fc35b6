package signals

import (
	"crypto/ed25519"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/transport/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// simLoss sets the link loss of TestSimulation200, to measure lookups under loss:
// go test -run TestSimulation200 -v ./extensions/signals -args -sim.loss 0.02
var simLoss = flag.Float64("sim.loss", 0, "TestSimulation200: probability that a packet is lost")

// simVanish makes TestSimulation200's nodes vanish between the announces and the lookups,
// each with this probability but for the signalling node, the announcers and the
// lookers: every packet to or from them is dropped, as for a browser that lost its
// network, whose connections stay up until ICE notices (seconds later). Like -sim.loss it
// is for measuring: a run with it may miss lookups and fail. go test -run
// TestSimulation200 -v ./extensions/signals -args -sim.vanish 0.3
var simVanish = flag.Float64("sim.vanish", 0, "TestSimulation200: probability that a node other than the signalling node, announcers and lookers vanishes before the lookups")

// webNet is a WebRTC-style network on a linked memory network: nodes reach only the
// nodes they are linked to, and link through the extension's relays.
type webNet struct {
	t     testing.TB
	mem   *memory.Network
	fake  *FakeNetwork
	k     int // the nodes' K; 2 (the JS's) when zero
	nodes []*dht.Node
}

func newWebNet(t testing.TB, link memory.LinkConfig) *webNet {
	mem := memory.NewNetwork(&memory.Config{Linked: true, Link: link, Seed: 7})
	return &webNet{t: t, mem: mem, fake: NewFakeNetwork(mem)}
}

// add starts a node with the extension, K=2 like the JS.
func (w *webNet) add() *dht.Node {
	w.t.Helper()
	tr, err := w.mem.Listen(netip.AddrPort{})
	if err != nil {
		w.t.Fatal(err)
	}
	cfg := &dht.Config{K: w.k}
	cfg.KRPC.SourceRate = -1
	n, err := NewNode(tr, w.fake.Signaler(tr.LocalAddr()), cfg, &Config{K: 2})
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { n.Close(); tr.Close() })
	w.nodes = append(w.nodes, n)
	return n
}

// join links n to the signalling node and bootstraps through it.
func (w *webNet) join(n, signalling *dht.Node) error {
	if err := w.fake.Dial(n.Addr(), signalling.Addr()); err != nil {
		return err
	}
	_, err := n.Bootstrap(w.t.Context(), signalling.Addr())
	for i := 0; err != nil && i < 2; i++ { // with -sim.loss, a lost packet must not fail the join
		_, err = n.Bootstrap(w.t.Context(), signalling.Addr())
	}
	return err
}

func median(xs []int) int {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestSimulation200 runs 200 nodes that all bootstrap from one signalling node; every
// other connection is made through the extension's relays. 40 announces run at once,
// then 40 get_peers lookups (after -sim.vanish's nodes vanished), which find every
// announced peer; BEP 44 puts and gets follow, and every item is read back.
func TestSimulation200(t *testing.T) {
	if testing.Short() {
		t.Skip("200 nodes")
	}
	synctest.Test(t, func(t *testing.T) {
		const nodes, infohashes, items = 200, 40, 20
		w := newWebNet(t, memory.LinkConfig{Delay: 10 * time.Millisecond, Jitter: 10 * time.Millisecond, Loss: *simLoss})
		signalling := w.add()
		for range nodes - 1 {
			n := w.add()
			if err := w.join(n, signalling); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(5 * time.Minute) // maintenance refreshes the tables
		synctest.Wait()
		links := make([]int, nodes)
		for i, n := range w.nodes {
			links[i] = len(n.Nodes())
		}
		t.Logf("routing table sizes: min %d, median %d, max %d", slices.Min(links), median(links), slices.Max(links))

		rng := rand.New(rand.NewPCG(1, 2))
		pick := func() (*dht.Node, *dht.Node) {
			a, b := rng.IntN(nodes), rng.IntN(nodes-1)
			if b >= a {
				b++
			}
			return w.nodes[a], w.nodes[b]
		}
		type pair struct {
			announcer, looker *dht.Node
			ih                dht.ID
			ar                *dht.AnnounceResult
		}
		pairs := make([]pair, infohashes)
		for i := range pairs {
			pairs[i].announcer, pairs[i].looker = pick()
			pairs[i].ih = dht.RandomID()
		}
		var wg sync.WaitGroup
		for i := range pairs {
			wg.Go(func() {
				p := &pairs[i]
				ar, err := p.announcer.Announce(t.Context(), p.ih, 0)
				if err != nil {
					t.Errorf("announce: %v", err)
					return
				}
				p.ar = ar
			})
		}
		wg.Wait()
		if *simVanish > 0 {
			keep := map[netip.AddrPort]bool{signalling.Addr(): true}
			for _, p := range pairs { // a vanished announcer is a peer that cannot be found
				keep[p.looker.Addr()], keep[p.announcer.Addr()] = true, true
			}
			var silent []netip.AddrPort
			for _, n := range w.nodes {
				if !keep[n.Addr()] && rng.Float64() < *simVanish {
					silent = append(silent, n.Addr())
				}
			}
			w.mem.SetFilter(func(d *memory.Datagram) bool {
				return !slices.Contains(silent, d.From) && !slices.Contains(silent, d.To)
			})
			t.Logf("%d of %d nodes vanished", len(silent), nodes)
		}
		var mu sync.Mutex
		found := 0
		var latency, timeToPeer []time.Duration // simulated
		for i := range pairs {
			p := pairs[i]
			if p.ar == nil {
				continue
			}
			wg.Go(func() {
				ok := false
				start := time.Now()
				var toPeer time.Duration
				lr, err := p.looker.GetPeers(t.Context(), p.ih, func(netip.AddrPort, dht.NodeInfo) bool {
					if !ok {
						toPeer = time.Since(start)
					}
					ok = true
					return true
				})
				if !ok && lr != nil {
					t.Logf("not found: %v announced to %v (stored on %d); the lookup ended at %v (%d queries, %d responses)",
						p.ih, p.ar.Lookup.Closest, p.ar.Stored, lr.Closest, lr.Queries, lr.Responses)
				}
				mu.Lock()
				defer mu.Unlock()
				if lr != nil {
					latency = append(latency, lr.Duration)
				}
				if err != nil {
					t.Errorf("get_peers: %v", err)
				} else if ok {
					found++
					timeToPeer = append(timeToPeer, toPeer)
				}
			})
		}
		wg.Wait()
		t.Logf("get_peers found a peer for %d of %d announced infohashes", found, infohashes)
		slices.Sort(latency)
		slices.Sort(timeToPeer)
		if len(latency) > 0 && len(timeToPeer) > 0 {
			t.Logf("simulated lookup latency p50 %v max %v; time to the peer p50 %v max %v",
				latency[len(latency)/2], latency[len(latency)-1], timeToPeer[len(timeToPeer)/2], timeToPeer[len(timeToPeer)-1])
		}
		if found != infohashes {
			t.Errorf("only %d of %d lookups found a peer", found, infohashes)
		}

		read := 0
		for i := range items {
			putter, getter := pick()
			_, key, _ := ed25519.GenerateKey(nil)
			it, _ := dht.NewMutableItem(key, []byte("s"), 1, fmt.Sprintf("item %d", i))
			if _, err := putter.Put(t.Context(), it, nil); err != nil {
				t.Errorf("put: %v", err)
				continue
			}
			gr, err := getter.Get(t.Context(), it.Target(), &dht.GetOptions{Salt: []byte("s")})
			if err != nil || string(gr.Item.V) != string(it.V) {
				t.Errorf("get: %v %v", gr, err)
				continue
			}
			read++
		}
		t.Logf("BEP 44: %d of %d mutable items read back", read, items)
	})
}
