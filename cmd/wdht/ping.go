package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/wdht/wdht/krpc"
)

// pingCommand is "wdht ping".
func pingCommand() *command {
	return &command{
		name:  "ping",
		short: "ping DHT nodes",
		help: `Usage: wdht ping [flags] [ADDR...]

Ping sends a KRPC ping to each ADDR (host:port; for a host name, to its
addresses in turn until one answers), or to the --bootstrap nodes when no ADDR
is given, and prints one line per answer:

	pong from 127.0.0.1:6881 id=<40 hex> rtt=0.42ms

With --json, one object per answer:

	{"addr":"127.0.0.1:6881","id":"<40 hex>","rtt_ms":0.42}

With --transport webrtc, an ADDR (or --bootstrap node) is a signalling server:
ping dials it, which opens a WebRTC connection to the node behind it, and pings
that node; the line adds the connection's peer address and how long opening
it took:

	pong from 127.0.0.1:16881 id=<40 hex> rtt=0.42ms peer=127.0.0.1:50123 connect=11.20ms
	{"addr":"127.0.0.1:16881","id":"<40 hex>","rtt_ms":0.42,"peer":"127.0.0.1:50123","connect_ms":11.2}

The pings run at the same time, each within --timeout, so that a dead ADDR
delays no other; lines come in the order the answers do. Exit status 1 when an
ADDR did not answer.

Flags:
` + clientFlagsHelp,
		flags: func() *flag.FlagSet { fs, _ := clientFlagSet("ping"); return fs },
		run:   runPing,
	}
}

// pingResult is a ping's JSON output.
type pingResult struct {
	Addr  string  `json:"addr"`
	ID    string  `json:"id"`
	RTTms float64 `json:"rtt_ms"`
	// Over WebRTC: the peer address of the connection, and how long opening it took.
	Peer      string  `json:"peer,omitempty"`
	ConnectMs float64 `json:"connect_ms,omitempty"`
}

func runPing(ctx context.Context, e *env, args []string) error {
	fs, f := clientFlagSet("ping")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	names, fromBootstrap, err := directArgs(f, pos, "ping")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	c, targets, err := startDirect(ctx, e, f, names)
	if err != nil {
		return err
	}
	defer c.close()

	pe := *e
	pe.stdout = &syncWriter{w: e.stdout} // the pings print concurrently
	failed := c.queryEach(ctx, names, targets, f.timeout, func(t target) error {
		return c.ping(ctx, &pe, t, f.json)
	})
	if err := failed.answeredError(); err != nil {
		return err
	}
	switch {
	case len(failed) == 0:
		return nil
	case fromBootstrap && len(failed) == len(names) && c.web == nil:
		return fmt.Errorf("no bootstrap node answered (tried %s)", strings.Join(failed.names(), ", "))
	case fromBootstrap && len(failed) == len(names):
		return fmt.Errorf("no bootstrap node answered (tried %s)", failed.join(": ", "; "))
	}
	return fmt.Errorf("no answer from %s", failed)
}

// failure is a node a direct command got nothing from, and why.
type failure struct {
	name, why string
	err       error
}

// answered is the error of a direct query that a node answered with a KRPC error.
type answered struct {
	name string
	err  *krpc.Error
}

func (a *answered) Error() string { return "node " + a.name + " answered " + a.err.Error() }
func (a *answered) Unwrap() error { return a.err }

// answeredError returns the KRPC error of the only node that failed, when it answered
// with one: the command reports it as what it is.
func (fs failures) answeredError() error {
	if len(fs) == 1 {
		if a, ok := errors.AsType[*answered](fs[0].err); ok {
			return a
		}
	}
	return nil
}

// failures are the nodes a direct command got nothing from.
type failures []failure

// String lists the failures as "name (why), ...".
func (fs failures) String() string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = fmt.Sprintf("%s (%s)", f.name, f.why)
	}
	return strings.Join(s, ", ")
}

// join lists the failures as name, sep, why, separated by between.
func (fs failures) join(sep, between string) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = f.name + sep + f.why
	}
	return strings.Join(s, between)
}

// names returns the names of the failed nodes.
func (fs failures) names() []string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = f.name
	}
	return s
}

// directArgs checks the flags of a command that queries nodes directly (ping, sample)
// and returns the nodes it queries: its ADDRs, or the --bootstrap nodes when there is
// none (and then fromBootstrap is true). verb names the command in the error for
// having nothing to query.
func directArgs(f *clientFlags, pos []string, verb string) (names []string, fromBootstrap bool, err error) {
	if err := f.check(false); err != nil {
		return nil, false, err
	}
	if err := checkNodeAddrs("", pos); err != nil {
		return nil, false, err
	}
	if len(pos) > 0 {
		return pos, false, nil
	}
	if len(f.bootstrap.addrs) == 0 {
		return nil, false, badUsage("nothing to %s: give an ADDR or --bootstrap", verb)
	}
	return f.bootstrap.addrs, true, nil
}

// startDirect starts a client node able to reach the nodes a direct command queries; it
// does not join the DHT. Over UDP it resolves the nodes and returns the addresses of
// each; over WebRTC the names are dialled one by one (see queryEach).
func startDirect(ctx context.Context, e *env, f *clientFlags, names []string) (*client, [][]netip.AddrPort, error) {
	if f.webrtc() {
		c, err := startWebClient(e, f, names)
		return c, nil, err
	}
	targets := make([][]netip.AddrPort, len(names))
	var all []netip.AddrPort
	for i, a := range names {
		var err error
		if targets[i], err = resolveNodeAddr(ctx, a); err != nil {
			return nil, nil, err
		}
		all = append(all, targets[i]...)
	}
	noBoot := *f
	noBoot.bootstrap.addrs = nil // a direct query needs no bootstrap
	c, err := startClient(ctx, e, &noBoot, all...)
	if err != nil {
		return nil, nil, err
	}
	return c, targets, nil
}

// target is a node that a direct command queries.
type target struct {
	name string         // as given, for the output: an address, or over WebRTC the signalling server
	addr netip.AddrPort // where the query goes
	// Over WebRTC, how long opening the connection took (zero over UDP).
	connect time.Duration
}

// queryEach runs query on every node at the same time, each within ctx, so that a node
// that does not answer delays no other. Over UDP, it tries each address of a node in
// turn until one succeeds; over WebRTC, it dials the node's signalling server first.
// query must be safe for concurrent use. It returns the nodes that did not succeed, and
// why, in the order of names.
func (c *client) queryEach(ctx context.Context, names []string, targets [][]netip.AddrPort, timeout time.Duration,
	query func(target) error) failures {
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			var err error
			if c.web != nil {
				start := time.Now()
				var peer netip.AddrPort
				if peer, err = c.web.Dial(ctx, name); err != nil {
					errs[i] = errors.New(dialReason(err, timeout))
					return
				}
				err = query(target{name: name, addr: peer, connect: time.Since(start)})
			} else {
				for _, a := range targets[i] {
					if err = query(target{name: a.String(), addr: a}); err == nil {
						break
					}
				}
			}
			if ke, ok := errors.AsType[*krpc.Error](err); ok {
				errs[i] = &answered{name: name, err: ke}
			} else if err != nil {
				errs[i] = opError(err, timeout)
			}
		})
	}
	wg.Wait()
	var failed failures
	for i, err := range errs {
		if err != nil {
			failed = append(failed, failure{names[i], err.Error(), err})
		}
	}
	return failed
}

// syncWriter serialises the writes of concurrent queries.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// ping pings one node and prints the answer.
func (c *client) ping(ctx context.Context, e *env, t target, asJSON bool) error {
	start := time.Now()
	id, err := c.node.Ping(ctx, t.addr)
	if err != nil {
		return err
	}
	rtt := time.Since(start)
	out := pingResult{Addr: t.name, ID: id.String(), RTTms: ms(rtt)}
	if c.web != nil {
		out.Peer, out.ConnectMs = t.addr.String(), ms(t.connect)
	}
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(out)
	}
	via := ""
	if c.web != nil {
		via = fmt.Sprintf(" peer=%s connect=%.2fms", out.Peer, out.ConnectMs)
	}
	_, err = fmt.Fprintf(e.stdout, "pong from %s id=%v rtt=%.2fms%s\n", t.name, id, ms(rtt), via)
	return err
}
