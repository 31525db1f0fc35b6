package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/krpc"
)

// sampleCommand is "wdht sample".
func sampleCommand() *command {
	return &command{
		name:  "sample",
		short: "sample the infohashes nodes store (BEP 51)",
		help: `Usage: wdht sample [flags] [ADDR...]

Sample asks each ADDR (host:port; for a host name, its addresses in turn until
one answers; over WebRTC, the node behind that signalling server), or the
--bootstrap nodes when no ADDR is given, for a sample of the infohashes it
stores peers for (BEP 51 sample_infohashes). The queries go
straight to the nodes, without joining the DHT. For each answer it prints one
line, then the infohashes of the sample, one per line:

	127.0.0.1:6881 num=2 interval=5m0s samples=2
	<40 hex>
	<40 hex>

num is how many infohashes the node stores in all, interval how long it will
keep answering with this sample. With --json, one object per answer:

	{"addr":"127.0.0.1:6881","num":2,"interval_s":300,"samples":["<40 hex>","<40 hex>"],
	 "nodes":[{"id":"<40 hex>","addr":"5.6.7.8:6881"}]}

where nodes are the nodes the answer names closest to --target, to crawl on
with. The queries run at the same time, each within --timeout. The nodes
that gave no sample (no answer, or no support for sample_infohashes) are
listed on stderr; exit status 1 when none gave one.

Flags:
  --target HEX
        40 hex characters: the ID whose closest nodes the answers name
        (default: a random one)
` + clientFlagsHelp,
		flags: func() *flag.FlagSet { fs, _, _ := sampleFlagSet(); return fs },
		run:   runSample,
	}
}

// sampleFlagSet returns sample's flag set: the client flags and --target.
func sampleFlagSet() (*flag.FlagSet, *clientFlags, *string) {
	fs, f := clientFlagSet("sample")
	target := fs.String("target", "", "")
	return fs, f, target
}

// sampleJSON is one answer to sample_infohashes in JSON output.
type sampleJSON struct {
	Addr      string     `json:"addr"`
	Num       int        `json:"num"`
	IntervalS float64    `json:"interval_s"`
	Samples   []string   `json:"samples"`
	Nodes     []nodeJSON `json:"nodes"`
}

func runSample(ctx context.Context, e *env, args []string) error {
	fs, f, targetHex := sampleFlagSet()
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	sampleTarget := dht.RandomID()
	if wasSet(fs, "target") {
		if sampleTarget, err = parseHexID(*targetHex); err != nil {
			return badInput("--target %q: %v", *targetHex, err)
		}
	}
	names, _, err := directArgs(f, pos, "sample")
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

	se := *e
	se.stdout = &syncWriter{w: e.stdout} // the samples print concurrently
	failed := c.queryEach(ctx, names, targets, f.timeout, func(t target) error {
		return c.sample(ctx, &se, t, sampleTarget, f.json)
	})
	switch {
	case len(failed) == 0:
		return nil
	case len(failed) < len(names):
		// Some nodes gave a sample: say which did not, and succeed.
		fmt.Fprintf(e.stderr, "wdht: sample: no sample from %s\n", failed)
		return nil
	}
	if err := failed.answeredError(); err != nil {
		return err
	}
	return fmt.Errorf("no sample from %s", failed)
}

// sample asks the node t for a sample and prints it.
func (c *client) sample(ctx context.Context, e *env, t target, sampleTarget dht.ID, asJSON bool) error {
	res, err := c.node.SampleInfohashes(ctx, t.addr, sampleTarget)
	switch {
	case errors.Is(err, krpc.ErrMethodUnknown):
		return errors.New("it does not support sample_infohashes: method unknown")
	case errors.Is(err, dht.ErrNoSamples):
		// dht reports an answer without samples with this message, and no sentinel error.
		return errors.New("it does not support sample_infohashes: no samples in its answer")
	case err != nil:
		return err
	}
	if asJSON {
		out := sampleJSON{
			Addr:      t.name,
			Num:       res.Num,
			IntervalS: res.Interval.Seconds(),
			Samples:   make([]string, len(res.Samples)),
			Nodes:     nodesJSON(res.Nodes),
		}
		for i, ih := range res.Samples {
			out.Samples[i] = ih.String()
		}
		return json.NewEncoder(e.stdout).Encode(out)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s num=%d interval=%v samples=%d\n", t.name, res.Num, res.Interval, len(res.Samples))
	for _, ih := range res.Samples {
		fmt.Fprintf(&b, "%v\n", ih)
	}
	_, err = fmt.Fprint(e.stdout, b.String())
	return err
}
