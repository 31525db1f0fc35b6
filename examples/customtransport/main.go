//go:build linux

// Command customtransport runs wdht DHT nodes over Unix datagram sockets, with the
// transport of package unixgram: the example of a custom transport.
//
// Without flags it runs a self-contained demo in a new temporary directory: two nodes in
// this process, a third in a child process that finds them by listing the directory,
// announces an infohash and exits, and a lookup here that finds the child's peer.
//
// With -dir, the nodes of several terminals (or programs) share one directory:
//
//	customtransport -dir /tmp/wdht -serve              # a node that stays up; start several
//	customtransport -dir /tmp/wdht -announce INFOHASH  # join, announce, leave
//	customtransport -dir /tmp/wdht -lookup INFOHASH    # join, print the peers, leave
//
// A joining node bootstraps from every socket in the directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/examples/customtransport/unixgram"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "customtransport:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

type options struct {
	dir      string
	addr     netip.AddrPort
	serve    bool
	announce string
	lookup   string
	port     int
	timeout  time.Duration
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("customtransport", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var o options
	var addr string
	fs.StringVar(&o.dir, "dir", "", "the directory of the sockets (default: the self-contained demo, in a temporary directory)")
	fs.StringVar(&addr, "addr", "", "the address to listen at (default: the first free one, 127.0.0.1:6881, 127.0.0.2:6881, ...)")
	fs.BoolVar(&o.serve, "serve", false, "run a node until interrupted")
	fs.StringVar(&o.announce, "announce", "", "announce this infohash (40 hex digits), then leave")
	fs.StringVar(&o.lookup, "lookup", "", "look up the peers of this infohash, then leave")
	fs.IntVar(&o.port, "port", 0, "the port to announce (0: the port of the node's address, implied_port)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "how long -announce and -lookup may take")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if addr != "" {
		a, err := netip.ParseAddrPort(addr)
		if err != nil {
			return fmt.Errorf("%w: -addr: %v", errUsage, err)
		}
		o.addr = a
	}
	actions := 0
	for _, on := range []bool{o.serve, o.announce != "", o.lookup != ""} {
		if on {
			actions++
		}
	}
	switch {
	case o.dir == "" && actions == 0:
		return demo(ctx, stdout, o.timeout)
	case o.dir == "":
		return fmt.Errorf("%w: -serve, -announce and -lookup need -dir", errUsage)
	case actions != 1:
		return fmt.Errorf("%w: give one of -serve, -announce and -lookup", errUsage)
	}

	node, tr, err := join(ctx, o.dir, o.addr, stdout)
	if err != nil {
		return err
	}
	defer tr.Close()
	defer node.Close()
	switch {
	case o.serve:
		return serve(ctx, node, stdout)
	case o.announce != "":
		ctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		return announce(ctx, node, o.announce, o.port, stdout)
	default:
		ctx, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		return lookup(ctx, node, o.lookup, stdout)
	}
}

// join starts a node at addr in dir and bootstraps it from the other sockets there.
func join(ctx context.Context, dir string, addr netip.AddrPort, stdout io.Writer) (*dht.Node, *unixgram.Transport, error) {
	tr, err := unixgram.Listen(dir, addr, nil)
	if err != nil {
		return nil, nil, err
	}
	node, err := dht.New(tr, nil)
	if err != nil {
		tr.Close()
		return nil, nil, err
	}
	fmt.Fprintf(stdout, "node %v, socket %s\n", node.Addr(), tr.Path())
	others, err := unixgram.List(dir)
	if err != nil {
		node.Close()
		tr.Close()
		return nil, nil, err
	}
	others = removeAddr(others, node.Addr())
	if len(others) == 0 {
		fmt.Fprintln(stdout, "no other node in the directory yet")
		return node, tr, nil
	}
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := node.Bootstrap(bctx, others...)
	if err != nil {
		node.Close()
		tr.Close()
		return nil, nil, fmt.Errorf("bootstrap from the %d sockets in %s: %w", len(others), dir, err)
	}
	fmt.Fprintf(stdout, "bootstrapped from the other sockets in the directory: %d listed, %d answered\n", len(others), res.Responses)
	return node, tr, nil
}

func removeAddr(as []netip.AddrPort, a netip.AddrPort) []netip.AddrPort {
	out := as[:0]
	for _, x := range as {
		if x != a {
			out = append(out, x)
		}
	}
	return out
}

func serve(ctx context.Context, node *dht.Node, stdout io.Writer) error {
	fmt.Fprintln(stdout, "serving; interrupt to stop")
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			s := node.Stats()
			fmt.Fprintf(stdout, "%d nodes in the table, %d peers stored, %d queries answered\n",
				s.Nodes, s.Peers, s.KRPC.QueriesIn)
		}
	}
}

func announce(ctx context.Context, node *dht.Node, hex string, port int, stdout io.Writer) error {
	ih, err := dht.ParseID(hex)
	if err != nil {
		return fmt.Errorf("%w: -announce: %v", errUsage, err)
	}
	res, err := node.Announce(ctx, ih, port)
	if err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	if port == 0 {
		port = int(node.Addr().Port())
	}
	fmt.Fprintf(stdout, "announced %v as peer %v: stored on %d nodes\n", ih, netip.AddrPortFrom(node.Addr().Addr(), uint16(port)), res.Stored)
	return nil
}

func lookup(ctx context.Context, node *dht.Node, hex string, stdout io.Writer) error {
	ih, err := dht.ParseID(hex)
	if err != nil {
		return fmt.Errorf("%w: -lookup: %v", errUsage, err)
	}
	peers := 0
	res, err := node.GetPeers(ctx, ih, func(p netip.AddrPort, _ dht.NodeInfo) bool {
		peers++
		fmt.Fprintln(stdout, "peer", p)
		return true
	})
	if err != nil {
		return fmt.Errorf("lookup: %w", err)
	}
	fmt.Fprintf(stdout, "lookup of %v: %d peers, %d nodes queried, %d answered, %d rounds\n",
		ih, peers, res.Queries, res.Responses, res.Rounds)
	return nil
}

// childEnv marks the demo's child process (the tests use it to run main in their binary).
const childEnv = "WDHT_UNIXGRAM_DEMO_CHILD"

// demo runs the self-contained demo: two nodes here, one in a child process.
func demo(ctx context.Context, stdout io.Writer, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "wdht-unixgram")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(stdout, "directory %s\n", dir)

	var nodes []*dht.Node
	for range 2 {
		node, tr, err := join(ctx, dir, netip.AddrPort{}, stdout)
		if err != nil {
			return err
		}
		defer tr.Close()
		defer node.Close()
		nodes = append(nodes, node)
	}
	id, err := nodes[1].Ping(ctx, nodes[0].Addr())
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	fmt.Fprintf(stdout, "ping %v from %v: answered by node %v\n", nodes[0].Addr(), nodes[1].Addr(), id)

	// A third node in another process: it finds the others by listing the directory.
	const infohash, port = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a", 6999
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, exe, "-dir", dir, "-announce", infohash, "-port", fmt.Sprint(port))
	cmd.Env = append(os.Environ(), childEnv+"=1")
	out, err := cmd.CombinedOutput()
	fmt.Fprintf(stdout, "child process %v:\n", cmd.Args[1:])
	for line := range strings.Lines(string(out)) {
		fmt.Fprint(stdout, "    ", line)
	}
	if err != nil {
		return fmt.Errorf("child process: %w", err)
	}

	fmt.Fprintf(stdout, "looking %s up from %v:\n", infohash, nodes[0].Addr())
	return lookup(ctx, nodes[0], infohash, stdout)
}
