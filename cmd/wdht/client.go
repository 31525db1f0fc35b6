package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/udp"
)

// defaultBootstrap is where client commands bootstrap from by default: a local wdht node.
const defaultBootstrap = "127.0.0.1:6881"

// clientFlags are the flags every client command (ping, lookup, announce, put, get,
// sample) takes.
type clientFlags struct {
	addr      string
	bootstrap addrList
	timeout   time.Duration
	json      bool
}

// clientFlagSet returns a flag set for a client command, with the client flags.
func clientFlagSet(name string) (*flag.FlagSet, *clientFlags) {
	fs := newFlagSet(name)
	f := &clientFlags{bootstrap: addrList{addrs: []string{defaultBootstrap}}}
	fs.StringVar(&f.addr, "addr", "", "")
	fs.Var(&f.bootstrap, "bootstrap", "")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "")
	fs.BoolVar(&f.json, "json", false, "")
	return fs, f
}

// clientFlagsHelp describes the client flags in every client command's help.
const clientFlagsHelp = `  --addr IP:PORT
        address to listen on (default: 127.0.0.1:0 when every node to reach is on
        IPv4 loopback, [::1]:0 for IPv6 loopback, else every interface; port 0
        picks a free port)
  --bootstrap HOST:PORT,...
        nodes to start from; comma-separated, may be repeated; host names are
        resolved (default 127.0.0.1:6881, a local 'wdht node')
  --timeout DURATION
        give up after this long in all (default 30s)
  --json
        print JSON instead of text
`

// check validates the flags that need no network; needBootstrap says whether the
// command needs a bootstrap address.
func (f *clientFlags) check(needBootstrap bool) error {
	if needBootstrap && len(f.bootstrap.addrs) == 0 {
		return badUsage("no bootstrap address: give --bootstrap HOST:PORT")
	}
	if f.timeout <= 0 {
		return badInput("--timeout %v: want a positive duration", f.timeout)
	}
	if f.addr != "" {
		if _, err := parseListenAddr(f.addr); err != nil {
			return err
		}
	}
	return nil
}

// client is an ephemeral node that client commands run their queries from.
type client struct {
	node      *dht.Node
	tr        *udp.Transport
	bootstrap []netip.AddrPort
}

// startClient resolves the bootstrap addresses and starts a client node able to reach
// them and the extra targets. A client node is read-only (BEP 43): it asks, never
// answers, so that nodes do not put it in their routing tables.
func startClient(ctx context.Context, e *env, f *clientFlags, targets ...netip.AddrPort) (*client, error) {
	boot, err := resolveAll(ctx, f.bootstrap.addrs)
	if err != nil {
		return nil, err
	}
	laddr := clientListenAddr(slices.Concat(targets, boot))
	if f.addr != "" {
		laddr, _ = parseListenAddr(f.addr) // checked by check
	}
	tr, err := udp.Listen(laddr, &udp.Config{Logger: e.log.Named("udp")})
	if err != nil {
		return nil, err
	}
	node, err := dht.New(tr, &dht.Config{
		Bootstrap:           boot,
		MaintenanceInterval: -1,
		KRPC:                krpc.Config{ReadOnly: true},
		Logger:              e.log,
	})
	if err != nil {
		tr.Close()
		return nil, err
	}
	return &client{node: node, tr: tr, bootstrap: boot}, nil
}

// close stops the node and its transport.
func (c *client) close() {
	c.node.Close()
	c.tr.Close()
}

// join bootstraps the client node.
func (c *client) join(ctx context.Context, timeout time.Duration) error {
	res, err := c.node.Bootstrap(ctx, c.bootstrap...)
	if err == nil {
		return nil
	}
	if (res == nil || res.Responses == 0) && (errors.Is(err, dht.ErrNoNodes) || errors.Is(err, context.DeadlineExceeded)) {
		return fmt.Errorf("no bootstrap node answered (tried %s)", joinAddrs(c.bootstrap))
	}
	return fmt.Errorf("bootstrap: %w", opError(err, timeout))
}

// opError rewords the errors of an operation cut short by its context.
func opError(err error, timeout time.Duration) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("timed out after %v", timeout)
	case errors.Is(err, context.Canceled):
		return errors.New("interrupted")
	case errors.Is(err, krpc.ErrTimeout):
		return errors.New("timed out")
	}
	return err
}

// ms returns d in milliseconds.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
