//go:build unix

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/wdht/wdht/internal/interop"
)

// start runs a fresh node of impl on 127.0.0.1 with its rate limits lifted: our `wdht
// node --transports udp` (built from this module, or $NODELOAD_WDHT_BIN), the harness's
// nullkrpc, or a reference peer through its start script.
func start(ctx context.Context, impl string) (*interop.Peer, error) {
	opts := interop.Options{MaxSeconds: time.Hour}
	switch impl {
	case "wdht":
		bin, err := wdhtBinary()
		if err != nil {
			return nil, err
		}
		// --transports udp: the mainline node alone, as the reference peers run (by
		// default `wdht node` is a bridge with a WebRTC side too).
		return interop.StartCommand(ctx, impl, []string{bin, "node", "--transports", "udp", "--addr", "127.0.0.1:0", "--limits=false", "--status", "0"}, opts)
	case "nullkrpc":
		dir, err := interop.PeersDir()
		if err != nil {
			return nil, err
		}
		bin := filepath.Join(dir, "bin", "nullkrpc")
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("%s missing: run %s/install.sh", bin, dir)
		}
		return interop.StartCommand(ctx, impl, []string{bin, "-addr", "127.0.0.1:0"}, opts)
	}
	if err := interop.Available(impl); err != nil {
		return nil, err
	}
	p, err := interop.Start(ctx, impl, opts)
	if err != nil {
		return nil, err
	}
	time.Sleep(500 * time.Millisecond) // libtorrent starts its DHT just after it prints LISTENING
	return p, nil
}

var builtWDHT string

// wdhtBinary builds ./cmd/wdht once (unless NODELOAD_WDHT_BIN names a binary).
func wdhtBinary() (string, error) {
	if b := os.Getenv("NODELOAD_WDHT_BIN"); b != "" {
		return b, nil
	}
	if builtWDHT != "" {
		return builtWDHT, nil
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("locating the module: %w", err)
	}
	bin := filepath.Join(os.TempDir(), fmt.Sprintf("nodeload-wdht-%d", os.Getpid()))
	build := exec.Command("go", "build", "-o", bin, "./cmd/wdht")
	build.Dir = filepath.Dir(strings.TrimSpace(string(out)))
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building wdht: %v\n%s", err, out)
	}
	builtWDHT = bin
	return bin, nil
}

// cpu returns a process's user+system CPU time, all threads included.
func cpu(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks, nil
}

// rssKiB returns a process's resident set size.
func rssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			if f := strings.Fields(line); len(f) > 1 {
				n, _ := strconv.Atoi(f[1])
				return n
			}
		}
	}
	return 0
}

func numCPU() int { return runtime.NumCPU() }
