//go:build linux

package main

import (
	"errors"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/wdht/wdht/internal/interop"
)

// TestMain re-executes the test binary in a network namespace whose only interface is
// lo, as the program itself does; without root or unshare the test skips (fails on CI).
func TestMain(m *testing.M) {
	if os.Getenv(netnsEnv) == "" {
		if code, err := interop.RerunInNetns(netnsEnv); err == nil {
			os.Exit(code)
		}
	}
	goleak.VerifyTestMain(m)
}

// The benchmark runs end to end on small networks: ours joining ours and the JS joining
// the JS each find their peer at least once in three runs (run fails when a kind never
// does), and the table prints. The mixed kinds, whose joins miss more often with K=2 on
// both sides, are left to the program (and to internal/interop/webtorrent's mixed tests).
func TestWebjoinSmall(t *testing.T) {
	if os.Getenv(netnsEnv) == "" {
		skipOrFail(t, errors.New("not in a lo-only network namespace (needs root and unshare)"))
	}
	if _, err := interop.WebtorrentDir(interop.Webtorrent); err != nil {
		skipOrFail(t, err)
	}
	if testing.Short() {
		t.Skip("starts JS networks")
	}
	if err := run(t.Context(), []string{"-runs", "3", "-nodes", "5", "-cross=false"}); err != nil {
		t.Fatal(err)
	}
}

func skipOrFail(t *testing.T, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("must run on CI: %v", err)
	}
	t.Skipf("cannot run here (set CI to make this a failure): %v", err)
}
