// Command simulation runs a wdht DHT of many nodes on an in-memory network with delay,
// jitter, loss and churn, and prints how its lookups fared:
//
//	go run ./examples/simulation [-n 10000] [-lookups 500] [-churn 0.05] [-loss 0.01]
//	    [-delay 20ms] [-jitter 20ms] [-k 8] [-alpha 3] [-settle 5m] [-window 2m] [-seed 1]
//
// It bootstraps the nodes, lets maintenance run for the settle time, announces infohashes
// from random nodes, then, during the run window, looks each one up from another random
// node while a fraction of the nodes leave and as many new ones join.
//
// # The clock
//
// The whole simulation runs inside a testing/synctest bubble, on simulated time: the
// network's delays, the KRPC timeouts, the nodes' maintenance timers and the run's
// schedule all use the bubble's fake clock, which jumps ahead whenever every goroutine
// waits. Ten minutes of a 10,000-node network then take only the CPU its messages cost.
// synctest.Test needs a *testing.T, which a program gets by running itself as a test:
// main calls testing.Main (kept, its documentation says, for programs that simulate "go
// test") with one test that calls synctest.Test. Latencies in the table are simulated
// time; the run's wall time and memory are real.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func main() {
	cfg, quiet, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "simulation:", err)
		os.Exit(2)
	}
	if !quiet {
		cfg.Progress = os.Stderr
	}
	// The nodes' routing tables are most of the heap, and they live to the end: a
	// collector that lets the heap grow to twice the live data (GOGC=100) would double the
	// peak memory. A lower target costs some CPU and keeps large networks in memory.
	debug.SetGCPercent(gcPercent)
	if memLimit > 0 {
		// A soft limit (as GOMEMLIMIT): near it the collector runs more often and the
		// runtime returns freed pages to the system sooner, whatever -gcpercent says.
		debug.SetMemoryLimit(memLimit << 20)
	}
	if memProfile != "" {
		f, err := os.Create(memProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "simulation:", err)
			os.Exit(1)
		}
		defer f.Close()
		cfg.HeapProfile = f
	}

	// testing.Main registers the testing flags and parses the command line unless it is
	// parsed already: mark it parsed, so that our flags are not taken for its own.
	testing.Init()
	if err := flag.CommandLine.Parse(nil); err != nil {
		panic(err)
	}
	stdout := os.Stdout
	os.Stdout = os.Stderr // the testing package's own lines, on failure
	simulation := func(t *testing.T) {
		start := time.Now() // real time: outside the bubble
		if cpuProfile != "" {
			f, err := os.Create(cpuProfile)
			if err != nil {
				t.Fatal(err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			defer pprof.StopCPUProfile()
		}
		var res *Result
		var err error
		synctest.Test(t, func(t *testing.T) {
			res, err = Run(t.Context(), cfg)
		})
		if err != nil {
			t.Fatal(err)
		}
		res.Wall = time.Since(start)
		res.PeakRSS = peakRSS()
		res.Print(stdout)
		pprof.StopCPUProfile()
		os.Exit(0) // done: skip the testing package's PASS line
	}
	testing.Main(func(pat, str string) (bool, error) { return true, nil },
		[]testing.InternalTest{{Name: "simulation", F: simulation}}, nil, nil)
}

// cpuProfile and memProfile are the files -cpuprofile and -memprofile name.
var cpuProfile, memProfile string

// gcPercent is -gcpercent: the garbage collector's target (runtime/debug.SetGCPercent).
var gcPercent int

// memLimit is -memlimit, in MiB: the runtime's soft memory limit (runtime/debug.SetMemoryLimit); 0 for none.
var memLimit int64

func parseFlags(args []string, output io.Writer) (cfg Config, quiet bool, err error) {
	fs := flag.NewFlagSet("simulation", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprintln(output, "usage: simulation [flags]\n\n"+
			"Runs a DHT of -n nodes on a memory network, on simulated time, and prints how its lookups fared.\n\nFlags:")
		fs.PrintDefaults()
	}
	fs.IntVar(&cfg.Nodes, "n", 10_000, "nodes that bootstrap before the run")
	fs.IntVar(&cfg.Lookups, "lookups", 500, "infohashes announced and looked up")
	fs.Float64Var(&cfg.Churn, "churn", 0.05, "fraction of the nodes that leave during the run (as many new nodes join)")
	fs.Float64Var(&cfg.Loss, "loss", 0.01, "probability that a packet is lost")
	fs.DurationVar(&cfg.Delay, "delay", 20*time.Millisecond, "one-way latency of every link")
	fs.DurationVar(&cfg.Jitter, "jitter", 20*time.Millisecond, "random extra latency per packet, uniform in [0, jitter)")
	fs.DurationVar(&cfg.Tick, "tick", time.Millisecond, "packets arrive on multiples of this, so that those arriving together run in parallel (0: at their exact times, one at a time)")
	fs.IntVar(&cfg.K, "k", 8, "bucket size (K)")
	fs.IntVar(&cfg.Alpha, "alpha", 3, "lookup parallelism (alpha)")
	fs.DurationVar(&cfg.Settle, "settle", 5*time.Minute, "maintenance time between the bootstrap and the run")
	fs.DurationVar(&cfg.Window, "window", 2*time.Minute, "the run: lookups, departures and arrivals are spread over it")
	fs.IntVar(&cfg.Batch, "batch", 0, "the largest number of nodes that bootstrap at once (0: 1024, or n/50 when larger)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the network's loss and jitter and of every random choice of the run")
	fs.BoolVar(&quiet, "q", false, "no progress lines on stderr")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	fs.IntVar(&gcPercent, "gcpercent", 25, "garbage collection target percentage (as GOGC); the nodes' tables are long-lived, so 100 would double the peak memory")
	fs.Int64Var(&memLimit, "memlimit", 0, "soft memory limit of the Go runtime in MiB, as GOMEMLIMIT (0: none): near it the collector runs more often")
	fs.StringVar(&memProfile, "memprofile", "", "write a heap profile, taken after the run with every node still up, to this file")
	scenario := fs.String("scenario", "", "a preset of the flags above (flags given too override it): "+scenarioNames())
	if err := fs.Parse(args); err != nil {
		return cfg, false, err
	}
	if fs.NArg() > 0 {
		return cfg, false, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if memLimit < 0 {
		return cfg, false, fmt.Errorf("-memlimit %d: want a size in MiB, or 0 for none", memLimit)
	}
	if *scenario != "" {
		preset, ok := scenarios[*scenario]
		if !ok {
			return cfg, false, fmt.Errorf("-scenario %q: want one of %s", *scenario, scenarioNames())
		}
		set := make(map[string]bool)
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for _, kv := range preset {
			if !set[kv[0]] {
				if err := fs.Set(kv[0], kv[1]); err != nil {
					panic(err) // the presets are ours
				}
			}
		}
	}
	return cfg, quiet, cfg.validate()
}

// scenarios are the -scenario presets: flag names and values.
var scenarios = map[string][][2]string{
	// The figure of the lookup-latency issue: 10,000 nodes, 25 ms one-way, no jitter, 2 %
	// loss and 20 % churn.
	"churn": {{"n", "10000"}, {"delay", "25ms"}, {"jitter", "0"}, {"loss", "0.02"}, {"churn", "0.2"}, {"k", "8"}, {"alpha", "3"}},
	// The same network with no loss and no churn: lookups then take rounds × RTT.
	"calm": {{"n", "10000"}, {"delay", "25ms"}, {"jitter", "0"}, {"loss", "0"}, {"churn", "0"}, {"k", "8"}, {"alpha", "3"}},
}

func scenarioNames() string {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
