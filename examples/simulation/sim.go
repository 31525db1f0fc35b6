package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/transport/memory"
)

// Config describes a simulation.
type Config struct {
	Nodes   int     // nodes that bootstrap before the run
	Lookups int     // infohashes announced, and get_peers lookups for them
	Churn   float64 // fraction of Nodes that leave during the run; as many new nodes join

	Delay, Jitter time.Duration // one-way latency of every link: Delay plus [0, Jitter)
	Loss          float64       // probability that a packet is lost
	// Tick rounds every packet's arrival up to a multiple of it (memory.Config.Tick), so
	// that the packets arriving within one tick run together, in parallel; 0 for exact
	// arrivals, which run one at a time.
	Tick time.Duration

	K, Alpha int // bucket size and lookup parallelism

	Settle time.Duration // maintenance time between the bootstrap and the run
	Window time.Duration // the run: lookups, departures and arrivals spread over it
	Batch  int           // the largest bootstrap batch; 0: autoBatch(Nodes)
	Seed   uint64

	Progress io.Writer // receives progress lines; nil for none

	// HeapProfile, when set, receives a heap profile (runtime/pprof) taken at the end of
	// the run, after a garbage collection, while every node is still up.
	HeapProfile io.Writer
}

func (c *Config) validate() error {
	switch {
	case c.Nodes < 2:
		return errors.New("-n must be at least 2")
	case c.Lookups < 1:
		return errors.New("-lookups must be at least 1")
	case c.Churn < 0 || c.Churn > 0.9:
		return errors.New("-churn must be between 0 and 0.9")
	case c.Loss < 0 || c.Loss >= 1:
		return errors.New("-loss must be in [0, 1)")
	case c.Delay < 0 || c.Jitter < 0 || c.Tick < 0 || c.Settle < 0 || c.Window < 0:
		return errors.New("durations must not be negative")
	case c.K < 1 || c.Alpha < 1:
		return errors.New("-k and -alpha must be positive")
	case c.Batch < 0:
		return errors.New("-batch must not be negative")
	}
	if stable := c.Nodes - c.churned(); stable < 2 {
		return errors.New("too few nodes stay for -churn: announcers and lookers need two")
	}
	return nil
}

// autoBatch is the largest bootstrap batch for n nodes when Config.Batch is 0: 1,024, or
// n/50 for more than 51,200 nodes. The nodes already up run their maintenance while each
// batch bootstraps (some simulated seconds), so with a fixed batch the bootstrap would
// cost O(n²/batch) maintenance work: batches that grow with n keep it O(n), about 25
// simulated seconds of every node's maintenance, at the price of n/50 bootstraps (and
// their goroutines) at once.
func autoBatch(n int) int { return max(1024, n/50) }

// schedule returns the sizes of the bootstrap batches: each at most as large as the
// network already up (which starts as one node), so that the network doubles with each
// until batches reach the largest batch.
func (c *Config) schedule() []int {
	largest := c.Batch
	if largest == 0 {
		largest = autoBatch(c.Nodes)
	}
	var sizes []int
	for up := 1; up < c.Nodes; {
		b := min(up, largest, c.Nodes-up)
		sizes = append(sizes, b)
		up += b
	}
	return sizes
}

// churned is the number of nodes that leave (and join) during the run.
func (c *Config) churned() int { return int(math.Round(c.Churn * float64(c.Nodes))) }

// Result is what a simulation measured. Durations are simulated time, except Wall.
type Result struct {
	Config Config

	Bootstrapped, BootstrapFailed int
	Batches                       int
	BootstrapTime                 time.Duration
	Tables                        []int  // routing table sizes after settling, sorted
	SettlePackets, SettleLookups  uint64 // packets sent and lookups run (by maintenance) while settling

	Announced, AnnounceFailed int
	Stored                    []int // nodes that stored each announce, sorted

	Left, Joined, JoinFailed int

	Lookups      int
	Found        int // lookups that found the announced peer
	LookupErrors int
	Rounds       []int           // per lookup, sorted
	Messages     []int           // queries + responses per lookup, sorted
	Stalled      []int           // queries per lookup that passed their soft deadline, sorted
	Latency      []time.Duration // duration of each lookup, to the end, sorted
	TimeToPeer   []time.Duration // from a lookup's start to the announced peer, for those that found it, sorted

	Net     memory.Stats
	SimTime time.Duration

	Wall    time.Duration // real time the run took, when known
	PeakRSS int64         // peak resident memory in bytes, when known
	Heap    uint64        // heap in use at the end of the run, before the nodes closed
}

// peer is a node and its transport.
type peer struct {
	node *dht.Node
	tr   *memory.Transport
}

func (p *peer) close() {
	p.node.Close()
	p.tr.Close()
}

type sim struct {
	cfg   Config
	net   *memory.Network
	start time.Time // simulated
	wall  time.Time // real, when known
	mu    sync.Mutex
}

// Run runs a simulation. Run it inside a testing/synctest bubble (synctest.Test), where
// the network's delays and the nodes' timeouts and maintenance timers run on the
// bubble's fake clock: a run then costs only the CPU its messages take, however much
// simulated time passes. Outside a bubble it works too, on the real clock, as slowly as
// the simulated times say.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &sim{
		cfg: cfg,
		net: memory.NewNetwork(&memory.Config{
			Link: memory.LinkConfig{Delay: cfg.Delay, Jitter: cfg.Jitter, Loss: cfg.Loss},
			Tick: cfg.Tick,
			Seed: cfg.Seed,
		}),
		start: time.Now(),
		wall:  wallNow(),
	}
	res := &Result{Config: cfg}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))

	// Every node gets its own IP (10.0.0.1 and up, never reused, so that a node that
	// joins never inherits the address of one that left) and an ID from the seeded
	// source.
	var peers []*peer
	var closeOnce sync.Once
	closeAll := func() {
		closeOnce.Do(func() {
			for _, p := range peers {
				p.close() // idempotent, also for the nodes that left
			}
		})
	}
	defer closeAll()
	newPeer := func(i int, id dht.ID) (*peer, error) {
		ip := netip.AddrFrom4([4]byte{10, byte((i + 1) >> 16), byte((i + 1) >> 8), byte(i + 1)})
		tr, err := s.net.Listen(netip.AddrPortFrom(ip, 6881))
		if err != nil {
			return nil, err
		}
		c := &dht.Config{ID: id, K: cfg.K, Alpha: cfg.Alpha}
		c.KRPC.SourceRate = -1 // a simulation has no abusers; the limits would only distort it
		c.KRPC.QueryRate = -1
		c.KRPC.InboundRate = -1
		n, err := dht.New(tr, c)
		if err != nil {
			tr.Close()
			return nil, err
		}
		return &peer{n, tr}, nil
	}
	joiners := cfg.churned()
	peers = make([]*peer, 0, cfg.Nodes+joiners)
	for i := range cfg.Nodes {
		p, err := newPeer(i, randomID(rng))
		if err != nil {
			return nil, err
		}
		peers = append(peers, p)
	}
	s.progress("started %d nodes", cfg.Nodes)

	// Bootstrap in batches, each node from a random node of the earlier batches, which
	// have finished bootstrapping. A batch is at most as large as the network that is
	// already up, so the network doubles with each until batches reach cfg.Batch.
	up := 1
	for _, b := range cfg.schedule() {
		seeds := make([]uint64, b)
		for i := range seeds {
			seeds[i] = rng.Uint64()
		}
		var wg sync.WaitGroup
		var failed int
		for i := range b {
			wg.Go(func() {
				r := rand.New(rand.NewPCG(seeds[i], 1))
				if bootstrap(ctx, peers[up+i], func() *peer { return peers[r.IntN(up)] }) != nil {
					s.mu.Lock()
					failed++
					s.mu.Unlock()
				}
			})
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res.BootstrapFailed += failed
		res.Batches++
		prev := up
		up += b
		if up == cfg.Nodes || up*10/cfg.Nodes != prev*10/cfg.Nodes {
			s.progress("bootstrapped %d of %d nodes (batch of %d)", up, cfg.Nodes, b)
		}
	}
	res.Bootstrapped = cfg.Nodes - res.BootstrapFailed
	res.BootstrapTime = time.Since(s.start)

	// Let maintenance run: pings of questionable nodes, refreshes of stale and thin
	// buckets.
	if cfg.Settle > 0 {
		s.progress("settling for %v", cfg.Settle)
		sent0, lookups0 := s.net.Stats().Sent, totalLookups(peers)
		if err := sleep(ctx, cfg.Settle); err != nil {
			return nil, err
		}
		res.SettlePackets = s.net.Stats().Sent - sent0
		res.SettleLookups = totalLookups(peers) - lookups0
	}
	for _, p := range peers {
		res.Tables = append(res.Tables, len(p.node.Nodes()))
	}
	slices.Sort(res.Tables)

	// Who leaves during the run (any of the first nodes), and who announces and looks up
	// (nodes that stay, the looker never the announcer).
	perm := rng.Perm(cfg.Nodes)
	leaving, stable := perm[:joiners], perm[joiners:]
	type job struct {
		ih                ID
		announcer, looker *peer
		at                time.Duration // when the lookup starts, from the start of the run
	}
	jobs := make([]job, cfg.Lookups)
	for i := range jobs {
		a := rng.IntN(len(stable))
		l := rng.IntN(len(stable) - 1)
		if l >= a {
			l++
		}
		jobs[i] = job{ih: randomID(rng), announcer: peers[stable[a]], looker: peers[stable[l]]}
	}

	// Announce every infohash, 64 at a time, before the run.
	s.progress("announcing %d infohashes", len(jobs))
	stored := make([]int, len(jobs))
	parallel(len(jobs), 64, func(i int) {
		actx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		// Port 0: implied_port, so the peer is the announcer's own address.
		r, err := jobs[i].announcer.node.Announce(actx, jobs[i].ih, 0)
		if err == nil {
			stored[i] = r.Stored
		}
	})
	for _, n := range stored {
		if n > 0 {
			res.Announced++
		} else {
			res.AnnounceFailed++
		}
	}
	res.Stored = slices.Sorted(slices.Values(stored))

	// The run: departures, arrivals and lookups at random times in the window.
	s.progress("run: %d lookups, %d departures and %d arrivals over %v", len(jobs), joiners, joiners, cfg.Window)
	at := func() time.Duration {
		if cfg.Window <= 0 {
			return 0
		}
		return time.Duration(rng.Int64N(int64(cfg.Window)))
	}
	for i := range jobs {
		jobs[i].at = at()
	}
	type arrival struct {
		at   time.Duration
		p    *peer
		seed uint64
	}
	arrivals := make([]arrival, joiners)
	for i := range arrivals {
		p, err := newPeer(cfg.Nodes+i, randomID(rng))
		if err != nil {
			return nil, err
		}
		peers = append(peers, p)
		arrivals[i] = arrival{at(), p, rng.Uint64()}
	}
	departures := make([]time.Duration, joiners)
	for i := range departures {
		departures[i] = at()
	}

	type outcome struct {
		res        *dht.LookupResult
		err        error
		found      bool
		timeToPeer time.Duration
	}
	outcomes := make([]outcome, len(jobs))
	var wg sync.WaitGroup
	var joinFailed int
	for i, v := range leaving {
		wg.Go(func() {
			if sleep(ctx, departures[i]) == nil {
				peers[v].close()
			}
		})
	}
	for _, a := range arrivals {
		wg.Go(func() {
			if sleep(ctx, a.at) != nil {
				return
			}
			r := rand.New(rand.NewPCG(a.seed, 2))
			if bootstrap(ctx, a.p, func() *peer { return peers[stable[r.IntN(len(stable))]] }) != nil {
				s.mu.Lock()
				joinFailed++
				s.mu.Unlock()
			}
		})
	}
	for i, j := range jobs {
		wg.Go(func() {
			if sleep(ctx, j.at) != nil {
				return
			}
			want := j.announcer.node.Addr()
			lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			start := time.Now()
			o := &outcomes[i]
			o.res, o.err = j.looker.node.GetPeers(lctx, j.ih, func(p netip.AddrPort, _ dht.NodeInfo) bool {
				if p == want && !o.found {
					o.found, o.timeToPeer = true, time.Since(start)
				}
				return true // run every lookup to the end, so that its figures describe a whole lookup
			})
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.Left, res.Joined, res.JoinFailed = joiners, joiners-joinFailed, joinFailed
	for _, o := range outcomes {
		res.Lookups++
		if o.err != nil {
			res.LookupErrors++
		}
		if o.found {
			res.Found++
			res.TimeToPeer = append(res.TimeToPeer, o.timeToPeer)
		}
		if o.res != nil {
			res.Rounds = append(res.Rounds, o.res.Rounds)
			res.Messages = append(res.Messages, o.res.Queries+o.res.Responses)
			res.Stalled = append(res.Stalled, o.res.Stalled)
			res.Latency = append(res.Latency, o.res.Duration)
		}
	}
	slices.Sort(res.Rounds)
	slices.Sort(res.Messages)
	slices.Sort(res.Stalled)
	slices.Sort(res.Latency)
	slices.Sort(res.TimeToPeer)
	res.Net = s.net.Stats()
	res.SimTime = time.Since(s.start)
	res.Heap = heapInUse()
	if cfg.HeapProfile != nil {
		runtime.GC() // the profile's in-use figures are those of the last collection
		if err := pprof.Lookup("heap").WriteTo(cfg.HeapProfile, 0); err != nil {
			return nil, fmt.Errorf("heap profile: %w", err)
		}
	}
	s.progress("done; closing the nodes")
	closeAll()
	return res, nil
}

// totalLookups returns the lookups the nodes have run.
func totalLookups(peers []*peer) uint64 {
	var n uint64
	for _, p := range peers {
		n += p.node.Stats().Lookups
	}
	return n
}

// bootstrap bootstraps p from a node that pick returns, and from another when that
// fails (a lost packet, say), three times at most.
func bootstrap(ctx context.Context, p *peer, pick func() *peer) error {
	var err error
	for range 3 {
		bctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		_, err = p.node.Bootstrap(bctx, pick().node.Addr())
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	return err
}

// ID is a node ID or infohash.
type ID = dht.ID

func randomID(r *rand.Rand) ID {
	var id ID
	for i := 0; i < len(id); i += 8 {
		v := r.Uint64()
		for j := i; j < min(i+8, len(id)); j++ {
			id[j] = byte(v)
			v >>= 8
		}
	}
	return id
}

// sleep waits for d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// parallel calls f(0) ... f(n-1), at most workers at a time.
func parallel(n, workers int, f func(i int)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, workers)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i)
		})
	}
	wg.Wait()
}

// progress prints a progress line with the real and simulated time elapsed.
func (s *sim) progress(format string, args ...any) {
	if s.cfg.Progress == nil {
		return
	}
	wall := "?"
	if now := wallNow(); !now.IsZero() && !s.wall.IsZero() {
		wall = fmt.Sprintf("%.1fs", now.Sub(s.wall).Seconds())
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	mem := fmt.Sprintf("heap %4d MiB, stacks %3d MiB, RSS %4d MiB", m.HeapInuse>>20, m.StackInuse>>20, currentRSS()>>20)
	fmt.Fprintf(s.cfg.Progress, "[wall %7s | simulated %8v | %s] %s\n", wall, time.Since(s.start).Round(time.Millisecond), mem, fmt.Sprintf(format, args...))
}
