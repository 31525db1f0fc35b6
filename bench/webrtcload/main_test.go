//go:build linux

package main

import (
	"errors"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/wdht/wdht/internal/interop"
)

// TestMain runs the node under load when the benchmark starts this test binary as one,
// and otherwise re-executes the test binary in a network namespace whose only interface
// is lo, as the program itself does; without root or unshare the test skips (fails on CI).
func TestMain(m *testing.M) {
	if os.Getenv(nodeEnv) != "" {
		if err := runNode(os.Args[1:]); err != nil {
			os.Stderr.WriteString("webrtcload node: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(netnsEnv) == "" {
		if code, err := interop.RerunInNetns(netnsEnv); err == nil {
			os.Exit(code)
		}
	}
	goleak.VerifyTestMain(m)
}

// The benchmark runs end to end with a few peers: every peer connects to the node (a
// process of its own) and has its ping answered, the node reports the connections open,
// queries are answered during the query phase, and the table prints.
func TestWebrtcloadSmall(t *testing.T) {
	if os.Getenv(netnsEnv) == "" {
		skipOrFail(t, errors.New("not in a lo-only network namespace (needs root and unshare)"))
	}
	const peers = 12
	var out strings.Builder
	res, err := run(t.Context(), []string{"-peers", "12", "-concurrency", "4", "-duration", "2s", "-idle", "500ms"}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if res.connected != peers || res.failed != 0 || len(res.connectTimes) != peers {
		t.Errorf("%d connected, %d failed, %d connect times; want %d, 0, %d", res.connected, res.failed, len(res.connectTimes), peers, peers)
	}
	if res.pinged != peers {
		t.Errorf("%d pings answered, want %d", res.pinged, peers)
	}
	if res.open.conns < peers || res.base.conns != 0 {
		t.Errorf("the node had %d connections before and %d with the peers connected; want 0 and at least %d", res.base.conns, res.open.conns, peers)
	}
	if res.open.rss <= res.base.rss || res.open.heap <= res.base.heap || res.open.stacks <= res.base.stacks || res.open.goroutines <= res.base.goroutines {
		t.Errorf("the node did not grow with its connections: before %+v, after %+v", res.base, res.open)
	}
	if res.answered == 0 || res.answered > res.queries || res.queryCPU <= 0 {
		t.Errorf("%d of %d queries answered, node CPU %v", res.answered, res.queries, res.queryCPU)
	}
	if res.end.queries < res.open.queries+uint64(res.answered) {
		t.Errorf("the node counted %d queries in the query phase, the peers %d answers", res.end.queries-res.open.queries, res.answered)
	}
	for _, want := range []string{"connected", "connect time", "per connection", "per query"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q", want)
		}
	}
}

func skipOrFail(t *testing.T, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("must run on CI: %v", err)
	}
	t.Skipf("cannot run here (set CI to make this a failure): %v", err)
}
