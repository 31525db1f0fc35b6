package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/krpc"
)

// lookupCommand is "wdht lookup".
func lookupCommand() *command {
	return &command{
		name:  "lookup",
		short: "find the peers of an infohash",
		help: `Usage: wdht lookup [flags] INFOHASH

Lookup starts from the --bootstrap nodes and runs a get_peers lookup
for INFOHASH (40 hex characters, or a magnet URI with xt=urn:btih: and 40 hex
or 32 base32 characters). It prints each peer to stdout as it arrives:

	peer 1.2.3.4:5678

then a summary to stderr:

	found 1 peers from 8 nodes in 3 rounds, 24 queries, 152ms

With --json, stdout holds one JSON object per line: one per peer, as it
arrives, then a summary (the line with "infohash"):

	{"peer":"1.2.3.4:5678"}
	{"infohash":"<40 hex>","peers":["1.2.3.4:5678"],"queries":24,"responses":8,
	 "rounds":3,"stalled":1,"duration_ms":152.3,"closest":[{"id":"<40 hex>","addr":"5.6.7.8:6881"}]}

"stalled" counts the queries that passed their soft deadline: the lookup went
on without waiting for them (a dead or slow node); the text summary gives it
as "(1 stalled)" after the queries when there were any.
The time in the summary (duration_ms in JSON) is the real time the command
took, from the client's start. The lookup starts straight from the
--bootstrap nodes (over WebRTC, from the nodes behind the signalling servers),
without a lookup of the client's own ID first.

Finding no peers is not an error. Exit status 1 when no node answered or the
lookup ran out of --timeout (the summary then describes what was found).

Over WebRTC (--transport webrtc), the nodes relay an offer to each peer they
return and the client connects to those that answer, as the WebTorrent DHT
does: the peers printed are the client's connections to them, and peers that
cannot be reached over WebRTC (announced over UDP to a bridge) are not found.

Flags:
` + clientFlagsHelp,
		flags: func() *flag.FlagSet { fs, _ := clientFlagSet("lookup"); return fs },
		run:   runLookup,
	}
}

// nodeJSON is a node in JSON output.
type nodeJSON struct {
	ID   string `json:"id"`
	Addr string `json:"addr"`
}

// lookupSummary is lookup's final JSON object.
type lookupSummary struct {
	Infohash   string     `json:"infohash"`
	Peers      []string   `json:"peers"`
	Queries    int        `json:"queries"`
	Responses  int        `json:"responses"`
	Rounds     int        `json:"rounds"`
	Stalled    int        `json:"stalled"`
	DurationMs float64    `json:"duration_ms"`
	Closest    []nodeJSON `json:"closest"`
}

// parseInfohashArg parses the one INFOHASH argument of lookup and announce.
func parseInfohashArg(pos []string) (dht.ID, error) {
	switch len(pos) {
	case 0:
		return dht.ID{}, badUsage("missing INFOHASH")
	case 1:
		return parseInfohash(pos[0])
	}
	return dht.ID{}, badUsage("want one INFOHASH, got %d arguments: %q", len(pos), pos)
}

func runLookup(ctx context.Context, e *env, args []string) error {
	fs, f := clientFlagSet("lookup")
	return runInfohashClient(ctx, e, fs, f, args, nil, func(ctx context.Context, c *client, ih dht.ID) error {
		return lookup(ctx, e, f, c, ih)
	})
}

// runInfohashClient parses args (one INFOHASH) with fs, runs check (when not nil) on the
// flags, starts a client node, joins the DHT through --bootstrap and runs fn, all within
// --timeout.
func runInfohashClient(ctx context.Context, e *env, fs *flag.FlagSet, f *clientFlags, args []string,
	check func() error, fn func(ctx context.Context, c *client, ih dht.ID) error) error {
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	ih, err := parseInfohashArg(pos)
	if err != nil {
		return err
	}
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	return runJoined(ctx, e, f, func(ctx context.Context, c *client) error {
		return fn(ctx, c, ih)
	})
}

// runJoined checks the client flags, starts a client node, joins the DHT through
// --bootstrap and runs fn, all within --timeout.
func runJoined(ctx context.Context, e *env, f *clientFlags, fn func(ctx context.Context, c *client) error) error {
	if err := f.check(true); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	c, err := startClient(ctx, e, f)
	if err != nil {
		return err
	}
	defer c.close()
	if err := c.join(ctx, f.timeout); err != nil {
		return err
	}
	return fn(ctx, c)
}

// lookup runs the get_peers lookup of `wdht lookup`, printing peers as they arrive.
func lookup(ctx context.Context, e *env, f *clientFlags, c *client, ih dht.ID) error {
	var peers []netip.AddrPort
	prog := e.showProgress(c, "looking up", true)
	res, err := c.node.GetPeers(ctx, ih, func(p netip.AddrPort, _ dht.NodeInfo) bool {
		prog.add()
		peers = append(peers, p)
		printPeer(e, f.json, p)
		return true
	})
	prog.stop()
	if res != nil && (err == nil || res.Responses > 0) {
		res.Duration = c.elapsed() // the summary reports the real time the command took
		printLookupSummary(e, f.json, ih, peers, res)
	}
	switch {
	case err == nil:
		return nil
	case (res == nil || res.Responses == 0) && (errors.Is(err, dht.ErrNoNodes) || errors.Is(err, context.DeadlineExceeded)):
		return c.noAnswer("lookup", res)
	}
	return opError(err, f.timeout)
}

// printPeer prints one peer found.
func printPeer(e *env, asJSON bool, p netip.AddrPort) {
	if asJSON {
		json.NewEncoder(e.stdout).Encode(struct {
			Peer string `json:"peer"`
		}{p.String()})
		return
	}
	fmt.Fprintf(e.stdout, "peer %v\n", p)
}

// printLookupSummary prints what a lookup found: JSON to stdout, text to stderr.
func printLookupSummary(e *env, asJSON bool, ih dht.ID, peers []netip.AddrPort, res *dht.LookupResult) {
	if !asJSON {
		stalled := ""
		if res.Stalled > 0 {
			stalled = fmt.Sprintf(" (%d stalled)", res.Stalled)
		}
		fmt.Fprintf(e.stderr, "found %d peers from %d nodes in %d rounds, %d queries%s, %v\n",
			len(peers), res.Responses, res.Rounds, res.Queries, stalled, res.Duration.Round(time.Millisecond))
		return
	}
	s := lookupSummary{
		Infohash:   ih.String(),
		Peers:      make([]string, len(peers)),
		Queries:    res.Queries,
		Responses:  res.Responses,
		Rounds:     res.Rounds,
		Stalled:    res.Stalled,
		DurationMs: ms(res.Duration),
		Closest:    nodesJSON(res.Closest),
	}
	for i, p := range peers {
		s.Peers[i] = p.String()
	}
	json.NewEncoder(e.stdout).Encode(s)
}

// nodesJSON converts nodes for JSON output.
func nodesJSON(ns []dht.NodeInfo) []nodeJSON {
	out := make([]nodeJSON, len(ns))
	for i, n := range ns {
		out[i] = nodeJSON{ID: n.ID.String(), Addr: n.Addr.String()}
	}
	return out
}

// progressInterval is how often the progress line is redrawn.
const progressInterval = 250 * time.Millisecond

// progress shows a lookup's progress on stderr while it runs, when stderr is a terminal:
// one line, redrawn in place and cleared at the end.
type progress struct {
	peers atomic.Int64
	done  chan struct{}
	wg    sync.WaitGroup
}

// showProgress starts showing the progress of c's lookup, labelled with what it does
// ("looking up", "announcing", "getting", "putting"); with countPeers, the line counts
// the peers found, for which call add. Call stop when the lookup ends.
func (e *env) showProgress(c *client, what string, countPeers bool) *progress {
	return e.progressOf(what, countPeers, func() krpc.Stats { return c.node.Stats().KRPC })
}

// progressOf is showProgress with the node's counters read by stats.
func (e *env) progressOf(what string, countPeers bool, stats func() krpc.Stats) *progress {
	p := &progress{done: make(chan struct{})}
	if !e.stderrTTY {
		return p
	}
	p.wg.Go(func() {
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				fmt.Fprint(e.stderr, "\r\x1b[K")
				return
			case <-t.C:
				s := stats()
				peers := ""
				if countPeers {
					peers = fmt.Sprintf("%d peers, ", p.peers.Load())
				}
				fmt.Fprintf(e.stderr, "\r\x1b[K%s: %s%d queries sent, %d answers", what, peers, s.QueriesOut, s.ResponsesIn)
			}
		}
	})
	return p
}

// add counts a peer found.
func (p *progress) add() { p.peers.Add(1) }

// stop stops showing progress and clears the progress line.
func (p *progress) stop() {
	close(p.done)
	p.wg.Wait()
}
