//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/extensions/signals"
	"github.com/wdht/wdht/transport/webrtc"
)

// nodeEnv, set in the environment, makes the program the node under load instead of the
// load generator: the generator starts itself again with it, so that the node's CPU and
// memory are a process of their own.
const nodeEnv = "WDHT_WEBRTCLOAD_NODE"

// runNode runs the node under load as `wdht node --transports webrtc --limits=false`
// builds it (a WebRTC transport with loopback candidates, signals.NewNode with its
// defaults, a signalling server on 127.0.0.1), with the connection caps from the flags.
// It prints a LISTENING line with the signalling address, then answers each line
// "stats SEQ" on its standard input with a NODESTATS line, until its input closes.
func runNode(args []string) error {
	fs := flag.NewFlagSet("webrtcload node", flag.ContinueOnError)
	maxConns := fs.Int("max-conns", 0, "webrtc.Config.MaxConns")
	maxPending := fs.Int("max-pending", 0, "webrtc.Config.MaxPending")
	maxPendingPerIP := fs.Int("max-pending-per-ip", 0, "webrtc.Config.MaxPendingPerIP")
	memProfile := fs.String("memprofile", "", "write a heap profile here, and a goroutine dump beside it (.goroutines), at every stats command")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *memProfile != "" {
		runtime.MemProfileRate = 4096 // fine enough to see what one connection holds
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	tr, err := webrtc.New(&webrtc.Config{
		Loopback:        true,
		Advertise:       addr,
		MaxConns:        *maxConns,
		MaxPending:      *maxPending,
		MaxPendingPerIP: *maxPendingPerIP,
	})
	if err != nil {
		l.Close()
		return err
	}
	defer tr.Close()
	cfg := &dht.Config{}
	cfg.KRPC.SourceRate = -1 // as --limits=false: every peer comes from 127.0.0.1
	cfg.KRPC.QueryRate = -1
	n, err := signals.NewNode(tr, signals.WebRTC(tr), cfg, nil)
	if err != nil {
		l.Close()
		return err
	}
	defer n.Close()
	// Every peer signals from 127.0.0.1: the per-source cap on signalling connections
	// would count them as one host.
	srv, err := webrtc.NewServer(tr, &webrtc.ServerConfig{MaxClientsPerIP: webrtc.DefaultMaxClients})
	if err != nil {
		l.Close()
		return err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	defer func() {
		srv.Close()
		<-done
	}()
	fmt.Printf("LISTENING impl=wdht version=webrtcload addr=%s id=%v pid=%d\n", addr, n.ID(), os.Getpid())

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) != 2 || f[0] != "stats" {
			fmt.Printf("ERROR unknown command %q\n", in.Text())
			continue
		}
		seq, _ := strconv.Atoi(f[1])
		st := sample(context.Background())
		if *memProfile != "" {
			if err := writeProfile("heap", *memProfile, 0); err != nil {
				fmt.Printf("ERROR %v\n", err)
			}
			if err := writeProfile("goroutine", *memProfile+".goroutines", 1); err != nil {
				fmt.Printf("ERROR %v\n", err)
			}
		}
		ts := tr.Stats()
		ks := n.Server().Stats()
		fmt.Printf("NODESTATS seq=%d rss=%d heap=%d stacks=%d goroutines=%d cpu_ns=%d conns=%d opened=%d failed=%d queries=%d free=%d\n",
			seq, st.rss, st.heap, st.stacks, st.goroutines, st.cpu, ts.Conns, ts.Opened, ts.Failed, ks.QueriesIn, st.free)
	}
	return in.Err()
}

// procStats is what a process costs now.
type procStats struct {
	rss        int64 // resident set, bytes
	heap       int64 // heap in use after a collection (runtime.MemStats.HeapInuse), bytes
	stacks     int64 // goroutine stacks (runtime.MemStats.StackInuse), bytes
	free       int64 // freed heap the runtime has not yet returned to the system (HeapIdle - HeapReleased), bytes
	goroutines int
	cpu        int64 // user + system CPU time since the start, ns
}

// sample measures this process, after a garbage collection.
func sample(context.Context) procStats {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return procStats{
		rss:        currentRSS(),
		heap:       int64(m.HeapInuse),
		stacks:     int64(m.StackInuse),
		free:       int64(m.HeapIdle - m.HeapReleased),
		goroutines: runtime.NumGoroutine(),
		cpu:        ru.Utime.Nano() + ru.Stime.Nano(),
	}
}

// currentRSS returns this process's resident set now (VmRSS), in bytes, or 0.
func currentRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// writeProfile writes the runtime/pprof profile name to path, at the given debug level.
func writeProfile(name, path string, debug int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup(name).WriteTo(f, debug); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

var errNoStats = errors.New("the node printed no NODESTATS line")
