package main

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSimulation runs a small simulation with the defaults' delay, loss and churn, and
// checks that the lookups succeed.
func TestSimulation(t *testing.T) {
	cfg, _, err := parseFlags([]string{"-n", "300", "-lookups", "100", "-batch", "64"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if testing.Short() {
		cfg.Nodes, cfg.Lookups = 100, 30
	}
	var res *Result
	synctest.Test(t, func(t *testing.T) {
		res, err = Run(t.Context(), cfg)
	})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	res.Print(&out)
	t.Log("\n" + out.String())

	if res.Bootstrapped != cfg.Nodes {
		t.Errorf("%d of %d nodes bootstrapped", res.Bootstrapped, cfg.Nodes)
	}
	if res.Announced != cfg.Lookups {
		t.Errorf("%d of %d announces stored", res.Announced, cfg.Lookups)
	}
	if want := cfg.churned(); res.Left != want || res.Joined+res.JoinFailed != want {
		t.Errorf("%d left, %d joined, %d failed to join; want %d each", res.Left, res.Joined, res.JoinFailed, want)
	}
	if res.Lookups != cfg.Lookups || len(res.Latency) != cfg.Lookups {
		t.Errorf("%d lookups, %d measured; want %d", res.Lookups, len(res.Latency), cfg.Lookups)
	}
	if rate := res.SuccessRate(); rate < 0.95 {
		t.Errorf("success rate %.1f%%, want at least 95%%", 100*rate)
	}
	if p50, _ := percentile(res.Rounds, 0.5); p50 < 1 || p50 > 5 {
		t.Errorf("median rounds %d, want 1 to 5", p50)
	}
	// Simulated time: the bootstrap, the settle time and the run window, at least.
	if min := cfg.Settle + cfg.Window; res.SimTime < min {
		t.Errorf("simulated time %v, want at least %v", res.SimTime, min)
	}
	for _, want := range []string{"success", "rounds", "latency (whole lookup)", "simulated", "KiB per node"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q", want)
		}
	}
}

func TestFlags(t *testing.T) {
	cfg, quiet, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Nodes: 10_000, Lookups: 500, Churn: 0.05, Loss: 0.01, Delay: 20 * time.Millisecond,
		Jitter: 20 * time.Millisecond, Tick: time.Millisecond, K: 8, Alpha: 3, Settle: 5 * time.Minute, Window: 2 * time.Minute,
		Batch: 0, Seed: 1}
	if cfg != want || quiet {
		t.Errorf("defaults = %+v (quiet %v), want %+v", cfg, quiet, want)
	}
	for _, args := range [][]string{
		{"-n", "1"}, {"-churn", "1"}, {"-loss", "1"}, {"-k", "0"}, {"-delay", "-1s"}, {"-tick", "-1ms"},
		{"-lookups", "0"}, {"-batch", "-1"}, {"-n", "2", "-churn", "0.5"}, {"extra"}, {"-nonsense"}, {"-memlimit", "-1"},
	} {
		if _, _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) = nil error", args)
		}
	}
	// A scenario presets flags; flags given too win.
	cfg, _, err = parseFlags([]string{"-scenario", "churn", "-lookups", "7"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want = Config{Nodes: 10_000, Lookups: 7, Churn: 0.2, Loss: 0.02, Delay: 25 * time.Millisecond,
		Jitter: 0, Tick: time.Millisecond, K: 8, Alpha: 3, Settle: 5 * time.Minute, Window: 2 * time.Minute, Batch: 0, Seed: 1}
	if cfg != want {
		t.Errorf("-scenario churn = %+v, want %+v", cfg, want)
	}
	cfg, _, err = parseFlags([]string{"-churn", "0.1", "-scenario", "calm"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Churn != 0.1 || cfg.Loss != 0 || cfg.Jitter != 0 || cfg.Delay != 25*time.Millisecond {
		t.Errorf("-churn 0.1 -scenario calm = %+v", cfg)
	}
	if _, _, err := parseFlags([]string{"-scenario", "nope"}, io.Discard); err == nil || !strings.Contains(err.Error(), "calm, churn") {
		t.Errorf("-scenario nope: %v, want an error naming the scenarios", err)
	}
	if _, _, err := parseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
}

func TestPercentile(t *testing.T) {
	xs := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		p    float64
		want int
	}{{0, 1}, {0.5, 5}, {0.9, 9}, {0.99, 10}, {1, 10}} {
		if got, ok := percentile(xs, tc.p); !ok || got != tc.want {
			t.Errorf("percentile(1..10, %v) = %d, %v; want %d", tc.p, got, ok, tc.want)
		}
	}
	if _, ok := percentile([]int(nil), 0.5); ok {
		t.Error("percentile of nothing reported a value")
	}
	if got, _ := percentile([]int{7}, 0.99); got != 7 {
		t.Errorf("percentile([7], 0.99) = %d", got)
	}
}

// TestSchedule checks the bootstrap batches: every node after the first bootstraps once,
// no batch outgrows the network already up, and with the default largest batch a network
// of 100,000 nodes takes few more batches than one of 10,000 (the work of a bootstrap is
// the maintenance of the nodes up during each batch, so a fixed batch would make it
// quadratic).
func TestSchedule(t *testing.T) {
	for _, tc := range []struct {
		nodes, batch, batches int
	}{
		{10_000, 0, 19}, {100_000, 0, 60}, {100_000, 1024, 107}, {2, 0, 1}, {300, 64, 10},
	} {
		c := Config{Nodes: tc.nodes, Batch: tc.batch}
		sizes := c.schedule()
		up := 1
		for i, b := range sizes {
			if b < 1 || b > up {
				t.Fatalf("n %d, batch %d: batch %d has %d nodes with %d up", tc.nodes, tc.batch, i, b, up)
			}
			up += b
		}
		if up != tc.nodes || len(sizes) != tc.batches {
			t.Errorf("n %d, batch %d: %d batches bring up %d nodes; want %d batches, %d nodes", tc.nodes, tc.batch, len(sizes), up, tc.batches, tc.nodes)
		}
	}
}
