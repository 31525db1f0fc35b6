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
	if err := f.check(false); err != nil {
		return err
	}
	for _, a := range pos {
		if _, _, err := splitNodeAddr(a); err != nil {
			return badInput("%v", err)
		}
	}
	fromBootstrap := len(pos) == 0
	if fromBootstrap {
		if len(f.bootstrap.addrs) == 0 {
			return badUsage("nothing to ping: give an ADDR or --bootstrap")
		}
		pos = f.bootstrap.addrs
	}
	f.bootstrap.addrs = nil // ping needs no bootstrap

	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	targets := make([][]netip.AddrPort, len(pos))
	var all []netip.AddrPort
	for i, a := range pos {
		if targets[i], err = resolveNodeAddr(ctx, a); err != nil {
			return err
		}
		all = append(all, targets[i]...)
	}
	c, err := startClient(ctx, e, f, all...)
	if err != nil {
		return err
	}
	defer c.close()

	var failed, reasons []string // the ADDRs none of whose addresses answered, and why
	for i, as := range targets {
		var err error
		for _, a := range as {
			if err = c.ping(ctx, e, a, f.json); err == nil {
				break
			}
		}
		if err != nil {
			failed = append(failed, pos[i])
			reasons = append(reasons, fmt.Sprintf("%s (%v)", pos[i], opError(err, f.timeout)))
		}
	}
	switch {
	case len(failed) == 0:
		return nil
	case fromBootstrap && len(failed) == len(pos):
		return fmt.Errorf("no bootstrap node answered (tried %s)", strings.Join(failed, ", "))
	}
	return fmt.Errorf("no answer from %s", strings.Join(reasons, ", "))
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
