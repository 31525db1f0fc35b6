package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"strings"
	"time"
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

The pings run one after another, within --timeout in all. Exit status 1 when an
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

	failed, reasons := queryEach(names, targets, f.timeout, func(a netip.AddrPort) error {
		return c.ping(ctx, e, a, f.json)
	})
	switch {
	case len(failed) == 0:
		return nil
	case fromBootstrap && len(failed) == len(names):
		return fmt.Errorf("no bootstrap node answered (tried %s)", strings.Join(failed, ", "))
	}
	return fmt.Errorf("no answer from %s", strings.Join(reasons, ", "))
}

// directArgs checks the flags of a command that queries nodes directly (ping, sample)
// and returns the nodes it queries: its ADDRs, or the --bootstrap nodes when there is
// none (and then fromBootstrap is true). verb names the command in the error for
// having nothing to query.
func directArgs(f *clientFlags, pos []string, verb string) (names []string, fromBootstrap bool, err error) {
	if err := f.check(false); err != nil {
		return nil, false, err
	}
	for _, a := range pos {
		if _, _, err := splitNodeAddr(a); err != nil {
			return nil, false, badInput("%v", err)
		}
	}
	if len(pos) > 0 {
		return pos, false, nil
	}
	if len(f.bootstrap.addrs) == 0 {
		return nil, false, badUsage("nothing to %s: give an ADDR or --bootstrap", verb)
	}
	return f.bootstrap.addrs, true, nil
}

// startDirect resolves the nodes a direct command queries and starts a client node able
// to reach them; it does not join the DHT. It returns the addresses of each node.
func startDirect(ctx context.Context, e *env, f *clientFlags, names []string) (*client, [][]netip.AddrPort, error) {
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

// queryEach runs query on the addresses of each node in turn until one succeeds, one
// node after another. It returns the nodes none of whose addresses succeeded, and
// for each "name (why)".
func queryEach(names []string, targets [][]netip.AddrPort, timeout time.Duration,
	query func(a netip.AddrPort) error) (failed, reasons []string) {
	for i, as := range targets {
		var err error
		for _, a := range as {
			if err = query(a); err == nil {
				break
			}
		}
		if err != nil {
			failed = append(failed, names[i])
			reasons = append(reasons, fmt.Sprintf("%s (%v)", names[i], opError(err, timeout)))
		}
	}
	return failed, reasons
}

// ping pings one address and prints the answer.
func (c *client) ping(ctx context.Context, e *env, a netip.AddrPort, asJSON bool) error {
	start := time.Now()
	id, err := c.node.Ping(ctx, a)
	if err != nil {
		return err
	}
	rtt := time.Since(start)
	if asJSON {
		return json.NewEncoder(e.stdout).Encode(pingResult{Addr: a.String(), ID: id.String(), RTTms: ms(rtt)})
	}
	_, err = fmt.Fprintf(e.stdout, "pong from %v id=%v rtt=%.2fms\n", a, id, ms(rtt))
	return err
}
