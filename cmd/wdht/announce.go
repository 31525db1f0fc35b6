package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/wdht/wdht/dht"
)

// announceCommand is "wdht announce".
func announceCommand() *command {
	return &command{
		name:  "announce",
		short: "announce a peer for an infohash",
		help: `Usage: wdht announce [flags] INFOHASH

Announce joins the DHT through the --bootstrap nodes, looks up INFOHASH (40 hex
characters, or a magnet URI with xt=urn:btih:) and announces this host as a
peer for it to the closest nodes that answered (announce_peer with their
tokens). Without --port it announces with implied_port: nodes record the
address the announce came from. It prints

	announced <40 hex> port=6882 to 8 nodes        (or port=implied)

or with --json

	{"infohash":"<40 hex>","port":6882,"implied_port":false,"stored":8,
	 "peers":["1.2.3.4:5678"],"queries":24,"responses":8,"rounds":3,"duration_ms":201.5}

where peers are the peers the lookup found on the way, and port is the
announcing socket's port when implied_port is true (0 over WebRTC, where nodes
record the address of the connection the announce came over). Exit status 1
when no node stored the announce.

Flags:
  --port N
        the port to announce, 1 to 65535 (default: implied_port); not over
        WebRTC
` + clientFlagsHelp,
		flags: func() *flag.FlagSet { fs, _, _ := announceFlagSet(); return fs },
		run:   runAnnounce,
	}
}

// announceJSON is announce's JSON output.
type announceJSON struct {
	Infohash    string   `json:"infohash"`
	Port        int      `json:"port"`
	ImpliedPort bool     `json:"implied_port"`
	Stored      int      `json:"stored"`
	Peers       []string `json:"peers"`
	Queries     int      `json:"queries"`
	Responses   int      `json:"responses"`
	Rounds      int      `json:"rounds"`
	DurationMs  float64  `json:"duration_ms"`
}

// announceFlagSet returns announce's flag set: the client flags and --port.
func announceFlagSet() (*flag.FlagSet, *clientFlags, *portFlag) {
	fs, f := clientFlagSet("announce")
	port := &portFlag{min: 1}
	fs.Var(port, "port", "")
	return fs, f, port
}

func runAnnounce(ctx context.Context, e *env, args []string) error {
	fs, f, port := announceFlagSet()
	return runInfohashClient(ctx, e, fs, f, args, func() error {
		if f.webrtc() && port.port != 0 {
			return badUsage("--port is for --transport udp: over WebRTC, nodes record the connection's address (implied_port)")
		}
		return nil
	}, func(ctx context.Context, c *client, ih dht.ID) error {
		return announce(ctx, e, f, c, ih, port.port)
	})
}

// announce runs the announce of `wdht announce` and prints the outcome.
func announce(ctx context.Context, e *env, f *clientFlags, c *client, ih dht.ID, port int) error {
	prog := e.showProgress(c, "announcing", false)
	res, err := c.node.Announce(ctx, ih, port)
	prog.stop()
	if err != nil {
		if res == nil || res.Lookup == nil || res.Lookup.Responses == 0 {
			if errors.Is(err, dht.ErrNoNodes) || errors.Is(err, context.DeadlineExceeded) {
				return c.noAnswer("get_peers lookup", lookupOf(res))
			}
			return opError(err, f.timeout)
		}
		return fmt.Errorf("%v stored on no node (%d answered the lookup): %v", ih, res.Lookup.Responses, opError(err, f.timeout))
	}
	if res.Lookup != nil {
		res.Lookup.Duration = c.elapsed() // the JSON reports the real time the command took
	}
	printAnnounce(e, f.json, ih, port, int(c.node.Addr().Port()), res)
	return nil
}

// printAnnounce prints a successful announce of port (0: implied_port, from localPort).
func printAnnounce(e *env, asJSON bool, ih dht.ID, port, localPort int, res *dht.AnnounceResult) {
	if !asJSON {
		p := "implied"
		if port != 0 {
			p = fmt.Sprint(port)
		}
		fmt.Fprintf(e.stdout, "announced %v port=%s to %d nodes\n", ih, p, res.Stored)
		return
	}
	out := announceJSON{
		Infohash:    ih.String(),
		Port:        cmp.Or(port, localPort),
		ImpliedPort: port == 0,
		Stored:      res.Stored,
		Peers:       make([]string, len(res.Peers)),
	}
	for i, p := range res.Peers {
		out.Peers[i] = p.String()
	}
	if l := res.Lookup; l != nil {
		out.Queries, out.Responses, out.Rounds, out.DurationMs = l.Queries, l.Responses, l.Rounds, ms(l.Duration)
	}
	json.NewEncoder(e.stdout).Encode(out)
}
