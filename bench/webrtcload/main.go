//go:build linux

// Command webrtcload loads one WebRTC DHT node with many concurrent data-channel peers
// and prints what each connection costs the node:
//
//	go run ./bench/webrtcload [-peers 500] [-concurrency 32] [-interval 1s] [-duration 10s] [-max-conns 0]
//
// The node runs in a process of its own (this program started again in node mode): a
// WebRTC transport with loopback candidates, signals.NewNode with its defaults (K 2) and
// a signalling server (WebSocket and HTTP) on 127.0.0.1, as `wdht node --transports
// webrtc --limits=false` builds it, with webrtc.Config.MaxConns from -max-conns (0: the
// peers plus 64) and, since every peer signals from 127.0.0.1, MaxPendingPerIP equal to
// MaxPending (-max-pending, default 64) and the signalling server's MaxClientsPerIP equal
// to its MaxClients (1,024).
//
// The generator runs -peers pion peers in its own process, each a webrtc.Transport and a
// KRPC server. They dial the node through its signalling server, -concurrency at a time;
// once all are connected (or failed), every peer pings the node once; then the node is
// left idle for -idle, to measure its idle CPU with every connection open; then every
// peer sends a find_node every -interval for -duration. It prints connections established
// per second, the connect-time percentiles (Dial: signalling, ICE, DTLS, SCTP, until the
// data channel is ready), the node's resident memory and heap per open connection (after
// a garbage collection, against the node before any peer came), its goroutines per
// connection, its CPU while idle and its CPU per query answered. The generator's own
// memory per peer is printed too.
//
// Everything runs on loopback in a network namespace whose only interface is lo: as root,
// the program re-executes itself under `unshare -n` (as bench/webjoin does); -netns=false
// runs it where it is.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/internal/interop"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/webrtc"
)

const netnsEnv = "WDHT_WEBRTCLOAD_NETNS"

func main() {
	if os.Getenv(nodeEnv) != "" {
		if err := runNode(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "webrtcload node:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "webrtcload:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(1)
	}
}

// config is the command line.
type config struct {
	peers, concurrency       int
	maxConns, maxPending     int
	interval, duration, idle time.Duration
	netns                    bool
	nodeProfile              string
}

// result is what a run measured.
type result struct {
	cfg config

	connected, failed int
	connectWall       time.Duration   // from the first dial to the last connection
	connectTimes      []time.Duration // per connected peer, sorted
	firstErr          error

	pinged, pingFailed int

	base, open, end nodeStats // the node: before any peer, all connected, after the queries
	idleCPU         time.Duration
	idleWall        time.Duration

	queries, answered int
	queryCPU          time.Duration // the node's CPU during the query phase
	queryWall         time.Duration

	genBase, genOpen procStats // the generator
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("webrtcload", flag.ContinueOnError)
	fs.IntVar(&c.peers, "peers", 500, "concurrent WebRTC peers")
	fs.IntVar(&c.concurrency, "concurrency", 32, "peers dialling at once")
	fs.IntVar(&c.maxConns, "max-conns", 0, "the node's webrtc.Config.MaxConns (0: -peers plus 64)")
	fs.IntVar(&c.maxPending, "max-pending", 64, "the node's webrtc.Config.MaxPending, and MaxPendingPerIP")
	fs.DurationVar(&c.interval, "interval", time.Second, "each peer sends a find_node this often in the query phase")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "length of the query phase")
	fs.DurationVar(&c.idle, "idle", 5*time.Second, "the node is left idle this long with every connection open")
	fs.StringVar(&c.nodeProfile, "node-memprofile", "", "the node writes a heap profile to this file, and a goroutine dump to this file plus .goroutines, each time it reports its figures (the last: after the queries)")
	fs.BoolVar(&c.netns, "netns", true, "run in a new network namespace with only lo (needs root and unshare)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case c.peers < 1:
		return c, errors.New("-peers must be at least 1")
	case c.concurrency < 1:
		return c, errors.New("-concurrency must be at least 1")
	case c.maxConns < 0 || c.maxPending < 1:
		return c, errors.New("-max-conns must not be negative, -max-pending must be positive")
	case c.interval <= 0 || c.duration < 0 || c.idle < 0:
		return c, errors.New("-interval must be positive, -duration and -idle not negative")
	}
	if c.maxConns == 0 {
		c.maxConns = c.peers + 64
	}
	return c, nil
}

// run runs the benchmark and prints its table to out. Outside the namespace (and with
// -netns) it runs itself again inside one and returns a nil result.
func run(ctx context.Context, args []string, out io.Writer) (*result, error) {
	cfg, err := parseFlags(args)
	if err != nil {
		return nil, err
	}
	if cfg.netns && os.Getenv(netnsEnv) == "" {
		code, err := interop.RerunInNetns(netnsEnv)
		if err != nil {
			return nil, fmt.Errorf("%w (or run with -netns=false)", err)
		}
		if code != 0 {
			return nil, fmt.Errorf("the run in the network namespace exited with status %d", code)
		}
		return nil, nil
	}
	res, err := measure(ctx, cfg)
	if res != nil {
		res.print(out)
	}
	return res, err
}

// node is the node under load, a child process.
type node struct {
	p    *interop.Peer
	addr string
	seq  int
}

type nodeStats struct {
	procStats
	conns, opened, failed int
	queries               uint64
}

var nodeStatsRE = regexp.MustCompile(`^NODESTATS seq=(\d+) rss=(\d+) heap=(\d+) stacks=(\d+) goroutines=(\d+) cpu_ns=(\d+) conns=(\d+) opened=(\d+) failed=(\d+) queries=(\d+) free=(\d+)`)

func startNode(ctx context.Context, cfg config) (*node, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	argv := []string{exe,
		"-max-conns", strconv.Itoa(cfg.maxConns),
		"-max-pending", strconv.Itoa(cfg.maxPending),
		"-max-pending-per-ip", strconv.Itoa(cfg.maxPending),
	}
	if cfg.nodeProfile != "" {
		argv = append(argv, "-memprofile", cfg.nodeProfile)
	}
	p, err := interop.StartCommand(ctx, "webrtcload node", argv, interop.Options{Stdin: true, Env: []string{nodeEnv + "=1"}, ReadyTimeout: time.Minute})
	if err != nil {
		return nil, err
	}
	return &node{p: p, addr: p.Addr.String()}, nil
}

// stats asks the node for its figures (it collects garbage first).
func (n *node) stats(ctx context.Context) (nodeStats, error) {
	n.seq++
	want := strconv.Itoa(n.seq)
	if _, err := fmt.Fprintf(n.p.Stdin, "stats %d\n", n.seq); err != nil {
		return nodeStats{}, fmt.Errorf("node: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	m, err := n.p.WaitLine(ctx, regexp.MustCompile(`^NODESTATS seq=`+want+` `))
	if err != nil || m == nil {
		return nodeStats{}, fmt.Errorf("%w: %v", errNoStats, err)
	}
	var line string
	for _, l := range slices.Backward(n.p.Lines()) {
		if nodeStatsRE.MatchString(l.Text) && nodeStatsRE.FindStringSubmatch(l.Text)[1] == want {
			line = l.Text
			break
		}
	}
	f := nodeStatsRE.FindStringSubmatch(line)
	if f == nil {
		return nodeStats{}, errNoStats
	}
	v := make([]int64, len(f))
	for i := 2; i < len(f); i++ {
		v[i], _ = strconv.ParseInt(f[i], 10, 64)
	}
	return nodeStats{
		procStats: procStats{rss: v[2], heap: v[3], stacks: v[4], goroutines: int(v[5]), cpu: v[6], free: v[11]},
		conns:     int(v[7]), opened: int(v[8]), failed: int(v[9]), queries: uint64(v[10]),
	}, nil
}

// peer is one load peer: a WebRTC transport with one connection, to the node, and a KRPC
// server on it.
type peer struct {
	tr   *webrtc.Transport
	srv  *krpc.Server
	id   dht.ID
	node netip.AddrPort // the node, as this peer's transport addresses it
}

func (p *peer) close() {
	if p.srv != nil {
		p.srv.Close()
	}
	p.tr.Close()
}

func (p *peer) query(ctx context.Context, method string, args *krpc.Args) error {
	args.ID = p.id
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := p.srv.Call(ctx, p.node, &krpc.Query{Method: method, Args: args})
	return err
}

func measure(ctx context.Context, cfg config) (*result, error) {
	res := &result{cfg: cfg}
	n, err := startNode(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("starting the node: %w", err)
	}
	defer n.p.Stop()
	if res.base, err = n.stats(ctx); err != nil {
		return nil, err
	}
	res.genBase = sample(ctx)

	// Connect every peer, cfg.concurrency at a time.
	peers := make([]*peer, cfg.peers)
	defer func() {
		var wg sync.WaitGroup
		for _, p := range peers {
			if p != nil {
				wg.Go(p.close)
			}
		}
		wg.Wait()
	}()
	times := make([]time.Duration, cfg.peers)
	errs := make([]error, cfg.peers)
	sem := make(chan struct{}, cfg.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	var last atomic.Int64
	for i := range peers {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			p, d, err := connect(ctx, n.addr)
			peers[i], times[i], errs[i] = p, d, err
			if err == nil {
				last.Store(int64(time.Since(start)))
			}
		})
	}
	wg.Wait()
	res.connectWall = time.Duration(last.Load())
	for i := range peers {
		if errs[i] != nil {
			res.failed++
			if res.firstErr == nil {
				res.firstErr = errs[i]
			}
			continue
		}
		res.connected++
		res.connectTimes = append(res.connectTimes, times[i])
	}
	slices.Sort(res.connectTimes)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	// Every connected peer pings the node once.
	var pinged, pingFailed atomic.Int64
	each(peers, func(p *peer) {
		if p.query(ctx, krpc.MethodPing, &krpc.Args{}) == nil {
			pinged.Add(1)
		} else {
			pingFailed.Add(1)
		}
	})
	res.pinged, res.pingFailed = int(pinged.Load()), int(pingFailed.Load())

	// Idle: every connection open, nothing sent.
	if res.open, err = n.stats(ctx); err != nil {
		return res, err
	}
	res.genOpen = sample(ctx)
	if cfg.idle > 0 {
		t0 := time.Now()
		if err := sleep(ctx, cfg.idle); err != nil {
			return res, err
		}
		s, err := n.stats(ctx)
		if err != nil {
			return res, err
		}
		res.idleWall = time.Since(t0)
		res.idleCPU = time.Duration(s.cpu - res.open.cpu)
		res.open.cpu = s.cpu
	}

	// Queries: every peer sends a find_node every interval, starting at a random offset.
	var queries, answered atomic.Int64
	t0 := time.Now()
	qctx, cancel := context.WithTimeout(ctx, cfg.duration)
	each(peers, func(p *peer) {
		if sleep(qctx, rand.N(cfg.interval)) != nil {
			return
		}
		tick := time.NewTicker(cfg.interval)
		defer tick.Stop()
		for {
			queries.Add(1)
			if p.query(ctx, krpc.MethodFindNode, findNodeArgs()) == nil {
				answered.Add(1)
			}
			select {
			case <-tick.C:
			case <-qctx.Done():
				return
			}
		}
	})
	cancel()
	res.queryWall = time.Since(t0)
	res.queries, res.answered = int(queries.Load()), int(answered.Load())
	if res.end, err = n.stats(ctx); err != nil {
		return res, err
	}
	res.queryCPU = time.Duration(res.end.cpu - res.open.cpu)

	switch {
	case res.failed > 0:
		return res, fmt.Errorf("%d of %d peers did not connect; the first: %w", res.failed, cfg.peers, res.firstErr)
	case res.pingFailed > 0:
		return res, fmt.Errorf("%d of %d pings unanswered", res.pingFailed, res.connected)
	}
	return res, nil
}

// findNodeArgs returns find_node arguments for a random target.
func findNodeArgs() *krpc.Args {
	a := &krpc.Args{}
	a.Target = dht.RandomID()
	return a
}

// connect makes a peer and dials the node's signalling server with it.
func connect(ctx context.Context, addr string) (*peer, time.Duration, error) {
	tr, err := webrtc.New(&webrtc.Config{Loopback: true})
	if err != nil {
		return nil, 0, err
	}
	p := &peer{tr: tr, id: dht.RandomID()}
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	start := time.Now()
	p.node, err = tr.Dial(dctx, addr)
	d := time.Since(start)
	if err != nil {
		tr.Close()
		return nil, 0, err
	}
	// The node queries its new peers (to verify them before they enter its table): a
	// KRPC server answers its pings.
	p.srv, err = krpc.NewServer(tr, krpc.Mux{krpc.MethodPing: krpc.HandlerFunc(p.pong)},
		&krpc.Config{SourceRate: -1, QueryRate: -1})
	if err != nil {
		tr.Close()
		return nil, 0, err
	}
	return p, d, nil
}

func (p *peer) pong(context.Context, *krpc.Query) (*krpc.Response, error) {
	r := &krpc.Response{Return: &krpc.Return{}}
	r.Return.ID = p.id
	return r, nil
}

// each runs f on every non-nil peer at once and waits.
func each(peers []*peer, f func(*peer)) {
	var wg sync.WaitGroup
	for _, p := range peers {
		if p != nil {
			wg.Go(func() { f(p) })
		}
	}
	wg.Wait()
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// perConn divides a growth by the open connections.
func perConn(after, before int64, conns int) string {
	if conns <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f KiB", float64(after-before)/float64(conns)/1024)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func (r *result) print(w io.Writer) {
	c := r.cfg
	fmt.Fprintf(w, "webrtcload: %d peers, %d dialling at once; node MaxConns %d, MaxPending %d (per IP too); %s, loopback, GOMAXPROCS %d\n\n",
		c.peers, c.concurrency, c.maxConns, c.maxPending, netnsNote(), runtime.GOMAXPROCS(0))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	rate := "-"
	if r.connectWall > 0 {
		rate = fmt.Sprintf("%.0f/s", float64(r.connected)/r.connectWall.Seconds())
	}
	fmt.Fprintf(tw, "connect\t%d of %d connected (%d failed) in %v: %s\n", r.connected, c.peers, r.failed, r.connectWall.Round(time.Millisecond), rate)
	ct := r.connectTimes
	fmt.Fprintf(tw, "connect time\tp50 %v, p90 %v, p99 %v, max %v\n", ms(percentile(ct, 0.5)), ms(percentile(ct, 0.9)), ms(percentile(ct, 0.99)), ms(percentile(ct, 1)))
	fmt.Fprintf(tw, "ping\t%d of %d connected peers answered\n", r.pinged, r.connected)
	conns := r.open.conns
	fmt.Fprintf(tw, "node memory\t%d connections open: RSS %s (%s before), %s per connection; heap %s (%s before), %s per connection; stacks %s (%s before), %s per connection; freed heap not yet returned %s\n",
		conns, mib(r.open.rss), mib(r.base.rss), perConn(r.open.rss, r.base.rss, conns),
		mib(r.open.heap), mib(r.base.heap), perConn(r.open.heap, r.base.heap, conns),
		mib(r.open.stacks), mib(r.base.stacks), perConn(r.open.stacks, r.base.stacks, conns), mib(r.open.free))
	gpc := "-"
	if conns > 0 {
		gpc = fmt.Sprintf("%.1f", float64(r.open.goroutines-r.base.goroutines)/float64(conns))
	}
	fmt.Fprintf(tw, "node goroutines\t%d (%d before): %s per connection\n", r.open.goroutines, r.base.goroutines, gpc)
	if r.idleWall > 0 {
		fmt.Fprintf(tw, "node idle CPU\t%.1f%% of one core over %v with every connection open\n",
			100*r.idleCPU.Seconds()/r.idleWall.Seconds(), r.idleWall.Round(time.Millisecond))
	}
	if r.queryWall > 0 {
		per := "-"
		if r.answered > 0 {
			per = fmt.Sprintf("%.0f µs", float64(r.queryCPU.Microseconds())/float64(r.answered))
		}
		fmt.Fprintf(tw, "queries\t%d find_node sent in %v, %d answered (%.0f/s); the node's CPU %.2fs: %s per query, %.0f%% of one core\n",
			r.queries, r.queryWall.Round(time.Millisecond), r.answered, float64(r.answered)/r.queryWall.Seconds(),
			r.queryCPU.Seconds(), per, 100*r.queryCPU.Seconds()/r.queryWall.Seconds())
		e := r.end
		fmt.Fprintf(tw, "node after\t%d connections open: RSS %s, %s per connection; heap %s, %s per connection; stacks %s, %s per connection; freed heap not yet returned %s; %d goroutines\n",
			e.conns, mib(e.rss), perConn(e.rss, r.base.rss, e.conns), mib(e.heap), perConn(e.heap, r.base.heap, e.conns),
			mib(e.stacks), perConn(e.stacks, r.base.stacks, e.conns), mib(e.free), e.goroutines)
	}
	fmt.Fprintf(tw, "generator\t%d peers in this process: RSS %s, heap %s, %s per peer\n",
		r.connected, mib(r.genOpen.rss), mib(r.genOpen.heap), perConn(r.genOpen.rss, r.genBase.rss, r.connected))
	tw.Flush()
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0fms", float64(d.Microseconds())/1000) }

func netnsNote() string {
	if os.Getenv(netnsEnv) != "" {
		return "lo-only network namespace"
	}
	return "host network namespace"
}
