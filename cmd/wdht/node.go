package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/transport/udp"
)

const (
	// stateSaveInterval is how often a node with --state saves it while running.
	stateSaveInterval = 5 * time.Minute
	// bootstrapBackoffMax caps the wait between failed bootstrap attempts.
	bootstrapBackoffMax = time.Minute
	// maxSecondsLimit is the largest --max-seconds (about 31 years), well within a
	// time.Duration.
	maxSecondsLimit = 1e9
)

// nodeCommand is "wdht node".
func nodeCommand() *command {
	return &command{
		name:  "node",
		short: "run a DHT node",
		help: `Usage: wdht node [flags]

Node runs a mainline DHT node on UDP until SIGINT or SIGTERM. It prints one
line when it is listening, a status line every --status, and one line when it
stops:

	LISTENING impl=wdht version=<version> addr=<ip:port> id=<40 hex> pid=<pid>
	STATUS t=<seconds> nodes=<n> good=<n> peers=<n> infohashes=<n> q_in=<queries/s> q_out=<queries/s>
	STOPPING impl=wdht pid=<pid>

nodes and good count the routing table's nodes and its good ones, peers and
infohashes the announced peers it stores; q_in and q_out are the KRPC queries
received and sent per second since the previous status line.

With --bootstrap, the node joins through those nodes in the background,
retrying with backoff until one answers, and again whenever its routing table
empties. Without it, the node is alone until someone contacts it.

With --state, the node starts from the file when it exists (its ID and its
nodes) and saves its state there every 5 minutes and when it stops.

Flags:
  --addr IP:PORT
        address to listen on; [IP]:PORT for IPv6, :PORT for every interface,
        port 0 picks a free one (default 127.0.0.1:6881)
  --bootstrap HOST:PORT,...
        nodes to join through; comma-separated, may be repeated; host names are
        resolved (default: none, a lone node)
  --state FILE
        load state from FILE at start, save it there (JSON, as dht.State)
  --k N
        bucket size, and how many closest nodes lookups converge on (default 8)
  --status DURATION
        how often to print a STATUS line; 0 turns it off (default 10s)
  --limits=false
        turn off the per-source inbound rate limit and the outbound query
        budget (for benchmarks)
  --max-seconds N
        stop after N seconds, as on SIGTERM (default: run until signalled)
`,
		flags: func() *flag.FlagSet { fs, _ := nodeFlagSet(); return fs },
		run:   runNode,
	}
}

// nodeFlags are the flags of "wdht node".
type nodeFlags struct {
	addr       string
	bootstrap  addrList
	state      string
	k          int
	status     time.Duration
	limits     bool
	maxSeconds float64
}

// nodeFlagSet returns node's flag set.
func nodeFlagSet() (*flag.FlagSet, *nodeFlags) {
	f := &nodeFlags{}
	fs := newFlagSet("node")
	fs.StringVar(&f.addr, "addr", "127.0.0.1:6881", "")
	fs.Var(&f.bootstrap, "bootstrap", "")
	fs.StringVar(&f.state, "state", "", "")
	fs.IntVar(&f.k, "k", dht.DefaultK, "")
	fs.DurationVar(&f.status, "status", 10*time.Second, "")
	fs.BoolVar(&f.limits, "limits", true, "")
	fs.Float64Var(&f.maxSeconds, "max-seconds", 0, "")
	return fs, f
}

// parseNodeFlags parses node's arguments.
func parseNodeFlags(args []string) (*nodeFlags, error) {
	fs, f := nodeFlagSet()
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, err
	}
	switch {
	case len(pos) > 0:
		return nil, badUsage("want no arguments, got %q", pos)
	case f.k < 1:
		return nil, badInput("--k %d: want a bucket size of at least 1", f.k)
	case f.status < 0:
		return nil, badInput("--status %v: want a positive duration, or 0 for no status lines", f.status)
	case !(f.maxSeconds >= 0 && f.maxSeconds <= maxSecondsLimit): // NaN too
		return nil, badInput("--max-seconds %v: want a number of seconds from 0 (no limit) to %g", f.maxSeconds, float64(maxSecondsLimit))
	}
	return f, nil
}

func runNode(ctx context.Context, e *env, args []string) error {
	f, err := parseNodeFlags(args)
	if err != nil {
		return err
	}
	laddr, err := parseListenAddr(f.addr)
	if err != nil {
		return err
	}
	var state *dht.State
	if f.state != "" {
		if state, err = loadState(f.state); err != nil {
			return err
		}
	}
	boot, err := resolveAll(ctx, f.bootstrap.addrs)
	if err != nil {
		return err
	}
	cfg := &dht.Config{K: f.k, State: state, Bootstrap: boot, Logger: e.log}
	if !f.limits {
		cfg.KRPC.SourceRate, cfg.KRPC.QueryRate = -1, -1
	}

	tr, err := udp.Listen(laddr, &udp.Config{Logger: e.log.Named("udp")})
	if err != nil {
		return err
	}
	defer tr.Close()
	node, err := dht.New(tr, cfg)
	if err != nil {
		return err
	}
	defer node.Close()

	pid := os.Getpid()
	fmt.Fprintf(e.stdout, "LISTENING impl=wdht version=%s addr=%v id=%v pid=%d\n", version(), node.Addr(), node.ID(), pid)
	serveNode(ctx, e, f, node, len(boot) > 0 || (state != nil && len(state.Nodes) > 0))
	fmt.Fprintf(e.stdout, "STOPPING impl=wdht pid=%d\n", pid)
	if f.state != "" {
		return saveState(f.state, node.State())
	}
	return nil
}

// serveNode runs a started node until ctx ends or --max-seconds pass: it bootstraps in
// the background (when join is set), prints status lines and saves the state file.
func serveNode(ctx context.Context, e *env, f *nodeFlags, node *dht.Node, join bool) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if join {
		wg.Go(func() {
			bootstrapLoop(ctx, func(ctx context.Context) (*dht.LookupResult, error) { return node.Bootstrap(ctx) }, e.log)
		})
	}
	var stopAt, status, save <-chan time.Time
	if f.maxSeconds > 0 {
		t := time.NewTimer(time.Duration(f.maxSeconds * float64(time.Second)))
		defer t.Stop()
		stopAt = t.C
	}
	meter := newStatusMeter(time.Now(), node.Stats())
	if f.status > 0 {
		t := time.NewTicker(f.status)
		defer t.Stop()
		status = t.C
	}
	if f.state != "" {
		t := time.NewTicker(stateSaveInterval)
		defer t.Stop()
		save = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-stopAt:
			return
		case now := <-status:
			fmt.Fprintln(e.stdout, meter.line(now, node.Stats()))
		case <-save:
			if err := saveState(f.state, node.State()); err != nil {
				e.log.Warn("cannot save state", "file", f.state, "error", err)
			}
		}
	}
}

// bootstrapLoop calls bootstrap (the node's Bootstrap) until it succeeds or ctx ends,
// waiting 1s after the first failure and twice as long after each next one, up to
// bootstrapBackoffMax. Once it has succeeded, the node's maintenance bootstraps again if
// the routing table empties.
func bootstrapLoop(ctx context.Context, bootstrap func(context.Context) (*dht.LookupResult, error), log hclog.Logger) {
	wait := time.Second
	for {
		res, err := bootstrap(ctx)
		if err == nil {
			log.Info("bootstrapped", "answered", res.Responses, "queries", res.Queries, "duration", res.Duration)
			return
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("bootstrap failed, will retry", "error", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, bootstrapBackoffMax)
	}
}

// statusMeter formats STATUS lines, with query rates since the previous line.
type statusMeter struct {
	start, last     time.Time
	lastIn, lastOut uint64
}

// newStatusMeter starts measuring at now from the node's stats s.
func newStatusMeter(now time.Time, s dht.Stats) *statusMeter {
	return &statusMeter{start: now, last: now, lastIn: s.KRPC.QueriesIn, lastOut: s.KRPC.QueriesOut}
}

// line returns the STATUS line for stats s taken at now.
func (m *statusMeter) line(now time.Time, s dht.Stats) string {
	dt := now.Sub(m.last).Seconds()
	rate := func(cur, last uint64) float64 {
		if dt <= 0 || cur < last {
			return 0
		}
		return float64(cur-last) / dt
	}
	l := fmt.Sprintf("STATUS t=%.2f nodes=%d good=%d peers=%d infohashes=%d q_in=%.1f q_out=%.1f",
		now.Sub(m.start).Seconds(), s.Nodes, s.GoodNodes, s.Peers, s.Infohashes,
		rate(s.KRPC.QueriesIn, m.lastIn), rate(s.KRPC.QueriesOut, m.lastOut))
	m.last, m.lastIn, m.lastOut = now, s.KRPC.QueriesIn, s.KRPC.QueriesOut
	return l
}
