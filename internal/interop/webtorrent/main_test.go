//go:build linux

package webtorrent_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/wdht/wdht/internal/interop"
)

// netnsEnv is set in the test binary re-executed inside the network namespace.
const netnsEnv = "WDHT_TEST_NETNS"

// TestMain re-executes the test binary in a new network namespace whose only interface
// is lo, so that every ICE candidate, ours and theirs, is 127.0.0.1. Without root or
// unshare the tests run here and skip (fail under CI).
func TestMain(m *testing.M) {
	if os.Getenv(netnsEnv) == "" {
		code, err := interop.RerunInNetns(netnsEnv)
		if err == nil {
			os.Exit(code)
		}
		os.Stderr.WriteString("webtorrent: not in a network namespace: " + err.Error() + "\n")
	}
	goleak.VerifyTestMain(m)
}
