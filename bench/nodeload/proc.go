package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a node process under load.
type proc struct {
	impl string
	cmd  *exec.Cmd
	pid  int // the node's PID (the scripts exec their node)
	addr netip.AddrPort
}

var listening = regexp.MustCompile(`LISTENING impl=(\S+) .*addr=(\S+).* pid=(\d+)`)

// sharedDir finds ../shared/interop/udp-peers beside the module root.
func peersDir() (string, error) {
	if d := os.Getenv("WDHT_SHARED"); d != "" {
		return filepath.Join(d, "interop", "udp-peers"), nil
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("locating the module: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	d := filepath.Join(root, "..", "shared", "interop", "udp-peers")
	if _, err := os.Stat(d); err != nil {
		return "", fmt.Errorf("reference peers not found (set WDHT_SHARED): %w", err)
	}
	return d, nil
}

// command returns how to start impl on 127.0.0.1 with its rate limits lifted.
func command(impl string) (*exec.Cmd, error) {
	if impl == "wdht" {
		if b := os.Getenv("NODELOAD_WDHT_BIN"); b != "" {
			return exec.Command(b), nil
		}
		bin := filepath.Join(os.TempDir(), "nodeload-wdht")
		build := exec.Command("go", "build", "-o", bin, "./cmd/wdht")
		if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
			build.Dir = filepath.Dir(strings.TrimSpace(string(out)))
		}
		if out, err := build.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("building wdht: %v\n%s", err, out)
		}
		return exec.Command(bin, "node", "--addr", "127.0.0.1:0", "--limits=false", "--status", "0"), nil
	}
	dir, err := peersDir()
	if err != nil {
		return nil, err
	}
	if impl == "nullkrpc" {
		bin := filepath.Join(dir, "bin", "nullkrpc")
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("%s missing: run %s/install.sh", bin, dir)
		}
		return exec.Command(bin, "-addr", "127.0.0.1:0"), nil
	}
	return exec.Command(filepath.Join(dir, "start-"+impl+".sh"), "--host", "127.0.0.1", "--port", "0", "--max-seconds", "3600"), nil
}

func startImpl(ctx context.Context, impl string) (*proc, error) {
	cmd, err := command(impl)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", impl, err)
	}
	p := &proc{impl: impl, cmd: cmd}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			m := listening.FindStringSubmatch(sc.Text())
			if m == nil || p.pid != 0 {
				continue
			}
			addr, err := netip.ParseAddrPort(m[2])
			if err == nil {
				p.addr = addr
				p.pid, err = strconv.Atoi(m[3])
			}
			ready <- err
		}
		ready <- errors.New("exited before listening")
	}()
	select {
	case err := <-ready:
		if err != nil {
			p.stop()
			return nil, fmt.Errorf("%s: %w", impl, err)
		}
	case <-time.After(60 * time.Second):
		p.stop()
		return nil, fmt.Errorf("%s did not start within 60s", impl)
	case <-ctx.Done():
		p.stop()
		return nil, ctx.Err()
	}
	time.Sleep(500 * time.Millisecond) // let the node settle (libtorrent starts its DHT after listening)
	return p, nil
}

func (p *proc) stop() {
	if p.cmd.Process == nil {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// cpu returns the node process's user+system CPU time, all threads included.
func (p *proc) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks, nil
}

func (p *proc) rssKiB() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

func numCPU() int { return runtime.NumCPU() }
