//go:build linux

// Command pagelookup measures, in headless Chromium and side by side in one run, the time
// from page load to the first lookup result of a browser page joining the WebTorrent DHT:
// the demo page of 'wdht node' (our node compiled to WebAssembly, cmd/wdht-wasm) against
// a page running the published webtorrent-dht 0.18.6 browser bundle, both in the same
// network and looking up the same infohash.
//
//	go run ./bench/pagelookup [-runs 5] [-nodes 5] [-v]
//
// The network: one 'wdht node' with WebRTC only (its signalling port serves the demo page
// and is both pages' bootstrap), -nodes of our native WebRTC nodes and one more native
// node, the announcer, all bootstrapping from it; the announcer announces one random
// infohash (implied port) before the first page loads. Then pages.js (next to this file)
// loads each page -runs times, alternately, each in a fresh browser context (an empty
// cache: ours fetches the gzipped wasm, about 4 MB, from the node every time); each page
// joins, looks the infohash up, and pings the first peer found, which must answer with the
// announcer's node ID for the run to count. The times are the page's own clock
// (performance.now(), from the navigation's start): "loaded" when the node can start,
// "joined" when its bootstrap is done, "first" when the first peer arrived; for ours also
// when wdht.js started fetching the wasm and when the module was compiled (wdht.js's
// performance marks). The program prints the medians and the ratio ours/JS of the "first"
// medians, and fails when a kind found its peer in no run.
//
// It builds the CLI with the demo (go generate ./cmd/wdht, which prints the wasm's sizes,
// then go build) unless -wdht names a binary built so. Everything runs on loopback in a
// network namespace whose only interface is lo: as root, the program re-executes itself
// under `unshare -n` (as the tests of internal/interop/webtorrent do); -netns=false runs
// it where it is. It needs Chromium and the shared harness's npm modules (npm ci in
// ../shared/interop/js-webtorrent-dht: playwright-core and the bundle).
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/extensions/signals"
	"github.com/wdht/wdht/internal/interop"
	"github.com/wdht/wdht/transport/webrtc"
)

const netnsEnv = "WDHT_PAGELOOKUP_NETNS"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pagelookup:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pagelookup", flag.ContinueOnError)
	runs := fs.Int("runs", 5, "page loads per kind")
	nodes := fs.Int("nodes", 5, "our native WebRTC nodes in the network, besides the wdht node and the announcer")
	wdhtBin := fs.String("wdht", "", "a wdht binary built with the demo (default: build one)")
	netns := fs.Bool("netns", true, "run in a new network namespace with only lo (needs root and unshare)")
	verbose := fs.Bool("v", false, "print every run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *runs < 1 || *nodes < 0 {
		return errors.New("-runs must be at least 1 and -nodes at least 0")
	}
	if *netns && os.Getenv(netnsEnv) == "" {
		code, err := interop.RerunInNetns(netnsEnv)
		if err != nil {
			return fmt.Errorf("%w (or run with -netns=false)", err)
		}
		os.Exit(code)
	}
	bundle, err := interop.WebtorrentBundle(interop.Webtorrent)
	if err != nil {
		return err
	}
	_, playwright, err := interop.Chromium()
	if err != nil {
		return err
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	bin := *wdhtBin
	if bin == "" {
		dir, err := os.MkdirTemp("", "wdht-pagelookup-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if bin, err = buildWdht(ctx, root, dir); err != nil {
			return err
		}
	}

	// The network.
	w, err := interop.StartCommand(ctx, "wdht node", []string{bin, "node", "--transports", "webrtc",
		"--signal-addr", "127.0.0.1:0", "--limits=false", "--status", "0", "--max-seconds", "3600"},
		interop.Options{ReadyTimeout: time.Minute})
	if err != nil {
		return err
	}
	defer w.Stop()
	m := regexp.MustCompile(` signal=(\S+)`).FindStringSubmatch(w.Output())
	if m == nil {
		return fmt.Errorf("no signal= in the LISTENING line of wdht node:\n%s", w.Output())
	}
	sig := m[1]
	var natives []*goNode
	defer func() {
		for _, g := range natives {
			g.close()
		}
	}()
	for range *nodes + 1 {
		g, err := newGoNode()
		if err != nil {
			return err
		}
		natives = append(natives, g)
	}
	errs := make(chan error, len(natives))
	for _, g := range natives {
		go func() { errs <- g.join(ctx, sig) }()
	}
	for range natives {
		if err := <-errs; err != nil {
			return fmt.Errorf("a native node's bootstrap: %w", err)
		}
	}
	announcer := natives[len(natives)-1]
	ih := dht.RandomID()
	ar, err := announcer.n.Announce(ctx, ih, 0)
	if err != nil || ar.Stored < 1 {
		return fmt.Errorf("the announce of %v: %+v, %v", ih, ar, err)
	}
	fmt.Printf("network: wdht node (signalling %s) + %d native WebRTC nodes + the announcer %v, which announced %v on %d nodes\n",
		sig, *nodes, announcer.n.ID(), ih, ar.Stored)

	// The pages.
	p, err := interop.StartCommand(ctx, "chromium pages", []string{"node", filepath.Join(root, "bench", "pagelookup", "pages.js"),
		"--playwright", playwright, "--bundle", bundle, "--ours", "http://" + sig + "/", "--bootstrap", sig,
		"--ih", hex.EncodeToString(ih[:]), "--runs", fmt.Sprint(*runs), "--timeout", fmt.Sprint(*runs * 2 * 90)},
		interop.Options{ReadyTimeout: 2 * time.Minute})
	if err != nil {
		return err
	}
	defer p.Stop()
	fmt.Printf("chromium %s\n", p.Version)
	results := map[string][]sample{}
	aid := announcer.n.ID()
	want := hex.EncodeToString(aid[:])
	var parseErr error
	_, err = p.WaitFunc(ctx, func(l string) bool {
		f := strings.SplitN(l, " ", 4)
		if f[0] == "DONE" || f[0] == "ERROR" || f[0] == "TIMEOUT" {
			return true
		}
		if f[0] != "RESULT" || len(f) < 4 {
			if *verbose {
				fmt.Println("  " + l)
			}
			return false
		}
		var s sample
		if err := json.Unmarshal([]byte(f[3]), &s); err != nil {
			parseErr = fmt.Errorf("%q: %w", l, err)
			return true
		}
		if s.Error == "" && s.ID != want {
			s.Error = fmt.Sprintf("the peer found, %s, answered the ping as %q (%s), not as the announcer %s", s.Peer, s.ID, s.PingError, want)
		}
		results[f[1]] = append(results[f[1]], s)
		if *verbose || s.Error != "" {
			fmt.Printf("run %s %-4s %v\n", f[2], f[1], s)
		}
		return false
	})
	if err == nil {
		err = parseErr
	}
	if err != nil {
		return fmt.Errorf("%w\n%s", err, p.Output())
	}
	if l := p.Lines(); len(l) > 0 && !strings.HasPrefix(l[len(l)-1].Text, "DONE") {
		if last := l[len(l)-1].Text; strings.HasPrefix(last, "ERROR") || strings.HasPrefix(last, "TIMEOUT") {
			return fmt.Errorf("pages.js: %s", last)
		}
	}

	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "page\truns\tfound\tload→first peer median\tmin\tmax\t→wasm fetch\t→wasm compiled\t→node loaded\t→joined\t")
	med := map[string]float64{}
	for _, k := range []struct{ key, name string }{{"ours", "ours (wasm)"}, {"js", "webtorrent-dht 0.18.6 bundle"}} {
		var first, fetch, inst, loaded, joined []float64
		for _, s := range results[k.key] {
			if s.Error == "" {
				first, loaded, joined = append(first, s.First), append(loaded, s.Loaded), append(joined, s.Joined)
				if s.Instantiated > 0 {
					fetch, inst = append(fetch, s.Fetch), append(inst, s.Instantiated)
				}
			}
		}
		med[k.key] = median(first)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", k.name, len(results[k.key]), len(first),
			ms(med[k.key]), ms(minOf(first)), ms(maxOf(first)), ms(median(fetch)), ms(median(inst)), ms(median(loaded)), ms(median(joined)))
	}
	tw.Flush()
	if med["ours"] > 0 && med["js"] > 0 {
		fmt.Printf("\n(medians, from the navigation's start; \"node loaded\": ours, the Go program started; the JS, its bundle run)\n")
		fmt.Printf("ours/JS (medians of load→first peer, same network, same infohash): %.2f\n", med["ours"]/med["js"])
	}
	var failed []string
	for _, k := range []string{"ours", "js"} {
		if med[k] == 0 {
			failed = append(failed, k)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("no page found the announcer's peer: %s", strings.Join(failed, ", "))
	}
	return nil
}

// sample is one page load, as pages.js prints it (milliseconds).
type sample struct {
	Fetch        float64 `json:"fetch"`        // ours: wdht.js starts fetching the wasm
	Instantiated float64 `json:"instantiated"` // ours: the wasm downloaded and compiled
	Loaded       float64 `json:"loaded"`
	Joined       float64 `json:"joined"`
	First        float64 `json:"first"`
	Peer         string  `json:"peer"`
	ID           string  `json:"id"`
	PingError    string  `json:"ping_error"`
	Error        string  `json:"error"`
}

func (s sample) String() string {
	if s.Error != "" {
		return "failed: " + s.Error
	}
	return fmt.Sprintf("first peer %s at %s (node loaded at %s, joined at %s)", s.Peer, ms(s.First), ms(s.Loaded), ms(s.Joined))
}

type goNode struct {
	tr *webrtc.Transport
	n  *dht.Node
}

// newGoNode starts one of our WebRTC-only nodes with signals.NewNode's defaults, on
// loopback.
func newGoNode() (*goNode, error) {
	tr, err := webrtc.New(&webrtc.Config{
		Loopback: true,
		// Everything comes from 127.0.0.1 here: the per-IP caps would count every node
		// and page as one.
		MaxPendingPerIP: 1024,
		MaxPending:      1024,
	})
	if err != nil {
		return nil, err
	}
	cfg := &dht.Config{}
	cfg.KRPC.SourceRate = -1
	n, err := signals.NewNode(tr, signals.WebRTC(tr), cfg, nil)
	if err != nil {
		tr.Close()
		return nil, err
	}
	return &goNode{tr: tr, n: n}, nil
}

// join dials the signalling server and bootstraps from the node behind it.
func (g *goNode) join(ctx context.Context, server string) error {
	peer, err := g.tr.Dial(ctx, server)
	if err != nil {
		return err
	}
	_, err = g.n.Bootstrap(ctx, peer)
	return err
}

func (g *goNode) close() {
	g.n.Close()
	g.tr.Close()
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not in the wdht module (run from its checkout)")
	}
	return filepath.Dir(mod), nil
}

// buildWdht runs cmd/wdht's go generate (the demo: the wasm node, gzipped) and builds the
// CLI into dir.
func buildWdht(ctx context.Context, root, dir string) (string, error) {
	gen := exec.CommandContext(ctx, "go", "generate", "./cmd/wdht")
	gen.Dir = root
	out, err := gen.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go generate ./cmd/wdht: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "WASM ") {
			fmt.Println("demo built:", l)
		}
	}
	bin := filepath.Join(dir, "wdht")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/wdht")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/wdht: %v\n%s", err, out)
	}
	return bin, nil
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return slices.Min(v)
}

func maxOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return slices.Max(v)
}

func ms(v float64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f ms", v)
}
