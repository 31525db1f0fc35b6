//go:build unix

// Command nodeload drives DHT nodes on loopback with one Go load generator and prints,
// side by side, the queries each answers per second and the CPU time each node process
// spends per query.
//
//	go run ./bench/nodeload [-queries 200000] [-inflight 64] [-runs 3] [-method ping] [impl ...]
//
// impl is any of wdht, libtorrent, bittorrent-dht, anacrolix, nullkrpc (default: all).
// wdht is the `wdht node` command of this module with its rate limits off; the others are
// the unmodified reference peers of ../shared/interop/udp-peers, started through their
// scripts with the harness limits lifted. nullkrpc is a do-nothing Go responder that
// shows the cost of the UDP round trip alone. Everything runs on 127.0.0.1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/wdht/wdht/internal/interop"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:])
	if builtWDHT != "" {
		os.Remove(builtWDHT)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nodeload:", err)
		os.Exit(1)
	}
}

var allImpls = []string{"wdht", "libtorrent", "bittorrent-dht", "anacrolix", "nullkrpc"}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("nodeload", flag.ContinueOnError)
	queries := fs.Int("queries", 200_000, "queries per run")
	inflight := fs.Int("inflight", 64, "queries outstanding at once")
	runs := fs.Int("runs", 3, "measured runs per implementation (after a warm-up)")
	method := fs.String("method", "ping", "query: ping, find_node, get_peers, or a comma-separated list")
	timeout := fs.Duration("timeout", 2*time.Second, "per-query timeout")
	maxTime := fs.Duration("max-time", 60*time.Second, "upper bound of one run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	impls := fs.Args()
	if len(impls) == 0 {
		impls = allImpls
	}
	for _, impl := range impls {
		if !slices.Contains(allImpls, impl) {
			return fmt.Errorf("unknown implementation %q (want one of %s)", impl, strings.Join(allImpls, ", "))
		}
	}
	methods := strings.Split(*method, ",")
	var rows []row
	for _, m := range methods {
		rows = append(rows, measure(ctx, impls, m, *queries, *inflight, *runs, *timeout, *maxTime)...)
	}

	fmt.Printf("\n%d queries per run, %d in flight, %d runs round-robin, one Go load generator on 127.0.0.1, %d CPUs\n\n", *queries, *inflight, *runs, numCPU())
	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "implementation\tquery\tanswered/s (median)\tanswered\tp50 ms\tp99 ms\tnode CPU µs/query (median)\tRSS MiB\t")
	for _, r := range rows {
		if r.err != nil {
			fmt.Fprintf(tw, "%s\t%s\terror: %v\t\t\t\t\t\t\n", r.impl, r.method, r.err)
			continue
		}
		rates, cpus := []float64{}, []float64{}
		answered, sent := 0, 0
		var p50, p99 []time.Duration
		for i, res := range r.res {
			rates = append(rates, res.rate())
			cpus = append(cpus, float64(r.cpu[i].Microseconds())/float64(max(1, res.Answered)))
			answered += res.Answered
			sent += res.Sent
			p50, p99 = append(p50, res.P50), append(p99, res.P99)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.2f%%\t%.3f\t%.3f\t%.2f\t%.1f\t\n", r.impl, r.method, medianF(rates),
			100*float64(answered)/float64(max(1, sent)), ms(medianD(p50)), ms(medianD(p99)), medianF(cpus), float64(r.rss)/1024)
	}
	return tw.Flush()
}

type row struct {
	impl, method string
	res          []loadResult
	cpu          []time.Duration
	rss          int
	err          error
}

// measure starts a fresh process of each implementation for one query type (so that one
// query type cannot change how the next is answered), warms each up with a tenth of the
// queries, then runs the measured runs round-robin, one implementation after the other,
// so that a change in the machine's load affects them all alike.
func measure(ctx context.Context, impls []string, method string, queries, inflight, runs int, timeout, maxTime time.Duration) []row {
	rows := make([]row, len(impls))
	peers := make([]*interop.Peer, len(impls))
	defer func() {
		for _, p := range peers {
			if p != nil {
				p.Stop()
			}
		}
	}()
	cfg := func(p *interop.Peer, n int) loadConfig {
		return loadConfig{target: p.Addr, queries: n, inflight: inflight, method: method, timeout: timeout, maxTime: maxTime}
	}
	for i, impl := range impls {
		rows[i] = row{impl: impl, method: method}
		if peers[i], rows[i].err = start(ctx, impl); rows[i].err != nil {
			continue
		}
		_, rows[i].err = runLoad(ctx, cfg(peers[i], queries/10))
	}
	for range runs {
		for i, p := range peers {
			r := &rows[i]
			if r.err != nil {
				continue
			}
			c0, err := cpu(p.PID)
			if err != nil {
				r.err = err
				continue
			}
			res, err := runLoad(ctx, cfg(p, queries))
			if err != nil {
				r.err = err
				continue
			}
			c1, _ := cpu(p.PID)
			r.res = append(r.res, res)
			r.cpu = append(r.cpu, c1-c0)
			r.rss = rssKiB(p.PID)
		}
	}
	fmt.Fprintf(os.Stderr, "%s done\n", method)
	return rows
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func medianF(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func medianD(xs []time.Duration) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
