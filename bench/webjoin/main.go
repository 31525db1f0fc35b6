//go:build linux

// Command webjoin measures, side by side in one run, how long a WebRTC-only node takes
// from its start to its first successful get_peers (a peer found, and checked to be the
// announcer) when it joins a network of WebRTC DHT nodes: ours joining a network of ours,
// and the JS webtorrent-dht 0.18.6 (Node.js, unmodified) joining a network of JS nodes.
// The mixed pairs (ours joining theirs and theirs joining ours) are measured too.
//
//	go run ./bench/webjoin [-runs 5] [-nodes 20] [-cross=true]
//
// Each network is -nodes nodes: one signalling node and the others bootstrapping from it
// all at once, with the default K (2, as the JS). Each run announces a fresh infohash from
// a random node of the network and starts a fresh joiner, which bootstraps from the
// signalling node and then runs get_peers (again, up to 5 times, while it finds nothing);
// the runs of the kinds alternate. Times are from the joiner's start (our transport and
// node created; the JS DHT constructed, Node.js's own start-up not included, which the
// "process" column adds) to the first peer; "bootstrap" is the part up to the end of the
// bootstrap (the JS's "ready").
//
// Everything runs on loopback in a network namespace whose only interface is lo: as root,
// the program re-executes itself under `unshare -n` (as the tests of
// internal/interop/webtorrent do); -netns=false runs it where it is. The JS side needs the
// shared harness (npm ci in ../shared/interop/js-webtorrent-dht).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/extensions/signals"
	"github.com/wdht/wdht/internal/interop"
	"github.com/wdht/wdht/transport/webrtc"
)

const netnsEnv = "WDHT_WEBJOIN_NETNS"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "webjoin:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("webjoin", flag.ContinueOnError)
	runs := fs.Int("runs", 5, "measured joins per kind")
	size := fs.Int("nodes", 20, "nodes in each network")
	cross := fs.Bool("cross", true, "also measure ours joining theirs and theirs joining ours")
	netns := fs.Bool("netns", true, "run in a new network namespace with only lo (needs root and unshare)")
	verbose := fs.Bool("v", false, "print every run")
	fs.DurationVar(&readyDelay, "ready-delay", 0, "our nodes' webrtc.Config.ReadyDelay (0: the default, 500ms; negative: none)")
	debug := fs.Bool("debug", false, "log our joiners' debug logs to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *debug {
		joinerLog = hclog.New(&hclog.LoggerOptions{Name: "joiner", Level: hclog.Debug, Output: os.Stderr, TimeFormat: "15:04:05.000"})
	}
	if *netns && os.Getenv(netnsEnv) == "" {
		return reexec()
	}
	dir, err := interop.WebtorrentDir(interop.Webtorrent)
	if err != nil {
		return err
	}
	drv, err := interop.WebtorrentDriver("dht.js")
	if err != nil {
		return err
	}
	b := &bench{dir: dir, driver: drv, verbose: *verbose}
	defer b.close()

	t0 := time.Now()
	gonet, err := b.goNetwork(ctx, *size)
	if err != nil {
		return fmt.Errorf("our network: %w", err)
	}
	fmt.Printf("network of %d of our nodes built in %v\n", *size, time.Since(t0).Round(time.Millisecond))
	t0 = time.Now()
	jsnet, err := b.jsNetwork(ctx, *size)
	if err != nil {
		return fmt.Errorf("JS network: %w", err)
	}
	fmt.Printf("network of %d JS nodes built in %v\n", *size, time.Since(t0).Round(time.Millisecond))

	kinds := []kind{{"ours", gonet}, {"JS", jsnet}}
	if *cross {
		kinds = append(kinds, kind{"ours", jsnet}, kind{"JS", gonet})
	}
	results := make([][]sample, len(kinds))
	for r := range *runs {
		for i, k := range kinds {
			s := b.join(ctx, k)
			results[i] = append(results[i], s)
			if b.verbose || s.err != nil {
				fmt.Printf("run %d: %s joining %s: %v\n", r+1, k.joiner, k.net.name, s)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}

	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "joiner\tnetwork of "+strconv.Itoa(*size)+"\truns\tfound\tstart→peer median\tmin\tmax\tbootstrap median\tget_peers median\tprocess median\t")
	med := make([]time.Duration, len(kinds))
	for i, k := range kinds {
		var total, boot, look, proc []time.Duration
		for _, s := range results[i] {
			if s.err == nil {
				total, boot, look = append(total, s.total), append(boot, s.boot), append(look, s.total-s.boot)
				if s.process > 0 {
					proc = append(proc, s.process)
				}
			}
		}
		med[i] = median(total)
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", k.joiner, k.net.name, len(results[i]), len(total),
			ms(med[i]), ms(minOf(total)), ms(maxOf(total)), ms(median(boot)), ms(median(look)), ms(median(proc)))
	}
	w.Flush()
	rd := "the default, 500ms"
	if readyDelay != 0 {
		rd = readyDelay.String()
	}
	fmt.Printf("\n(our nodes' webrtc.Config.ReadyDelay: %s)\n", rd)
	if med[0] > 0 && med[1] > 0 {
		fmt.Printf("ours/JS (medians, each in its own network): %.2f (target: under 0.5)\n", float64(med[0])/float64(med[1]))
	}
	var failed []string
	for i, k := range kinds {
		if med[i] == 0 {
			failed = append(failed, k.joiner+" joining "+k.net.name)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("no join found its peer: %s", strings.Join(failed, ", "))
	}
	return nil
}

type kind struct {
	joiner string // "ours" or "JS"
	net    *network
}

type sample struct {
	total, boot, process time.Duration
	tries                int
	err                  error
}

func (s sample) String() string {
	if s.err != nil {
		return "failed: " + s.err.Error()
	}
	p := ""
	if s.process > 0 {
		p = fmt.Sprintf(" (process %v)", ms(s.process))
	}
	return fmt.Sprintf("first peer after %v (bootstrap %v, %d get_peers)%s", ms(s.total), ms(s.boot), s.tries, p)
}

// network is a network under test: ours (in this process) or a JS process.
type network struct {
	name    string
	addr    string // the signalling node's host:port
	nodes   []*goNode
	js      *interop.Peer
	jsNames []string
	jsIDs   map[string]dht.ID
}

type goNode struct {
	tr   *webrtc.Transport
	n    *dht.Node
	srv  *webrtc.Server
	done chan error
}

func (g *goNode) close() {
	if g.srv != nil {
		g.srv.Close()
		<-g.done
	}
	g.n.Close()
	g.tr.Close()
}

type bench struct {
	dir, driver string
	verbose     bool
	closers     []func()
}

func (b *bench) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

// newGoNode starts one of our WebRTC-only nodes with signals.NewNode's defaults, on
// loopback; signalling adds a signalling server on a free port of 127.0.0.1.
var (
	readyDelay time.Duration
	joinerLog  hclog.Logger
)

func newGoNode(signalling bool) (*goNode, string, error) {
	return newGoNodeLog(signalling, nil)
}

func newGoNodeLog(signalling bool, lg hclog.Logger) (*goNode, string, error) {
	tr, err := webrtc.New(&webrtc.Config{
		Loopback:   true,
		ReadyDelay: readyDelay,
		Logger:     lg,
		// Everything comes from 127.0.0.1 here: the per-IP caps would count every node
		// as one.
		MaxPendingPerIP: 1024,
		MaxPending:      1024,
	})
	if err != nil {
		return nil, "", err
	}
	cfg := &dht.Config{Logger: lg}
	cfg.KRPC.SourceRate = -1
	n, err := signals.NewNode(tr, signals.WebRTC(tr), cfg, nil)
	if err != nil {
		tr.Close()
		return nil, "", err
	}
	g := &goNode{tr: tr, n: n}
	if !signalling {
		return g, "", nil
	}
	// As above: the per-source connection cap would count the network as one host.
	g.srv, err = webrtc.NewServer(tr, &webrtc.ServerConfig{MaxClientsPerIP: 1024})
	if err == nil {
		var l net.Listener
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err == nil {
			g.done = make(chan error, 1)
			go func() { g.done <- g.srv.Serve(l) }()
			return g, l.Addr().String(), nil
		}
	}
	n.Close()
	tr.Close()
	return nil, "", err
}

func (b *bench) goNetwork(ctx context.Context, size int) (*network, error) {
	s, addr, err := newGoNode(true)
	if err != nil {
		return nil, err
	}
	nw := &network{name: "ours", addr: addr, nodes: []*goNode{s}}
	b.closers = append(b.closers, func() {
		for _, g := range nw.nodes {
			g.close()
		}
	})
	for range size - 1 {
		g, _, err := newGoNode(false)
		if err != nil {
			return nil, err
		}
		nw.nodes = append(nw.nodes, g)
	}
	errs := make(chan error, size)
	for _, g := range nw.nodes[1:] {
		go func() {
			_, err := g.n.Bootstrap(ctx, netip.MustParseAddrPort(addr))
			errs <- err
		}()
	}
	for range size - 1 {
		if err := <-errs; err != nil {
			return nil, err
		}
	}
	return nw, nil
}

var nodeRE = regexp.MustCompile(`^NODE (\S+) id=([0-9a-f]{40})`)

func (b *bench) jsNetwork(ctx context.Context, size int) (*network, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // in our own namespace, nothing takes it meanwhile
	p, err := interop.StartCommand(ctx, "webtorrent-dht network", []string{"node", b.driver, "--modules", b.dir,
		"--nodes", strconv.Itoa(size), "--listen", strconv.Itoa(port), "--duration", "3600"},
		interop.Options{Stdin: true, ReadyTimeout: time.Minute})
	if err != nil {
		return nil, err
	}
	b.closers = append(b.closers, func() { p.Stop() })
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := p.WaitFunc(wctx, func(s string) bool { return strings.HasPrefix(s, "NETWORK ") }); err != nil {
		return nil, err
	}
	nw := &network{name: "JS", addr: fmt.Sprintf("127.0.0.1:%d", port), js: p, jsIDs: map[string]dht.ID{}}
	for _, l := range p.Lines() {
		if m := nodeRE.FindStringSubmatch(l.Text); m != nil {
			id, _ := dht.ParseID(m[2])
			nw.jsIDs[m[1]] = id
			if m[1] != "n0" {
				nw.jsNames = append(nw.jsNames, m[1])
			}
		}
	}
	return nw, nil
}

// announce announces a fresh infohash from a random node of nw (not its signalling node)
// and returns it with the announcer's ID.
func (b *bench) announce(ctx context.Context, nw *network) (dht.ID, dht.ID, error) {
	ih := dht.RandomID()
	if nw.js == nil {
		g := nw.nodes[1+rand.IntN(len(nw.nodes)-1)]
		r, err := g.n.Announce(ctx, ih, 0)
		if err == nil && r.Stored == 0 {
			err = errors.New("stored on no node")
		}
		return ih, g.n.ID(), err
	}
	name := nw.jsNames[rand.IntN(len(nw.jsNames))]
	fmt.Fprintf(nw.js.Stdin, `{"cmd":"announce","name":%q,"ih":"%v"}`+"\n", name, ih)
	prefix := fmt.Sprintf("RESULT announce %s ih=%v ", name, ih)
	l, err := nw.js.WaitFunc(ctx, func(s string) bool { return strings.HasPrefix(s, prefix) })
	if err == nil && !strings.Contains(l, " ok ") {
		err = errors.New(l)
	}
	return ih, nw.jsIDs[name], err
}

const maxTries = 5

func (b *bench) join(ctx context.Context, k kind) sample {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	// A JS node whose bootstrap lost its first message (§11 B4 of the protocol notes)
	// may know no node yet: then another one announces.
	var ih, announcer dht.ID
	var err error
	for range 3 {
		if ih, announcer, err = b.announce(ctx, k.net); err == nil {
			break
		}
		if b.verbose {
			fmt.Printf("announce in %s: %v\n", k.net.name, err)
		}
	}
	if err != nil {
		if nw := k.net; nw.js != nil {
			select {
			case <-nw.js.Exited():
				lines := nw.js.Lines()
				lines = lines[max(0, len(lines)-30):]
				var tail []string
				for _, l := range lines {
					tail = append(tail, l.Text)
				}
				err = fmt.Errorf("%w; its last lines:\n%s", err, strings.Join(tail, "\n"))
			default:
			}
		}
		return sample{err: fmt.Errorf("announce: %w", err)}
	}
	if k.joiner == "JS" {
		return b.joinJS(ctx, k.net, ih, announcer)
	}
	return b.joinGo(ctx, k.net, ih, announcer)
}

func (b *bench) joinGo(ctx context.Context, nw *network, ih, announcer dht.ID) sample {
	start := time.Now()
	g, _, err := newGoNodeLog(false, joinerLog)
	if err != nil {
		return sample{err: err}
	}
	defer g.close()
	var s sample
	if _, err := g.n.Bootstrap(ctx, netip.MustParseAddrPort(nw.addr)); err != nil {
		return sample{err: fmt.Errorf("bootstrap: %w", err)}
	}
	s.boot = time.Since(start)
	var peer netip.AddrPort
	for s.tries < maxTries && !peer.IsValid() && ctx.Err() == nil {
		s.tries++
		g.n.GetPeers(ctx, ih, func(p netip.AddrPort, _ dht.NodeInfo) bool { peer = p; return false })
	}
	s.total = time.Since(start)
	if !peer.IsValid() {
		return sample{err: fmt.Errorf("no peer after %d get_peers", s.tries)}
	}
	if id, err := g.n.Ping(ctx, peer); err != nil || id != announcer {
		return sample{err: fmt.Errorf("found %v, node %v (%v), not the announcer %v", peer, id, err, announcer)}
	}
	return s
}

var (
	readyRE  = regexp.MustCompile(`^READY j ms=(\d+)`)
	peerRE   = regexp.MustCompile(`^RESULT peer j .* since_start=(\d+)`)
	peerIDRE = regexp.MustCompile(`^RESULT peerid j .* (id=([0-9a-f]{40})|error=.*)`)
	lookupRE = regexp.MustCompile(`^RESULT lookup j .*`)
)

func (b *bench) joinJS(ctx context.Context, nw *network, ih, announcer dht.ID) sample {
	cmd := fmt.Sprintf(`{"cmd":"node","name":"j","bootstrap":[%q],"lookup":"%v","retries":%d}`, nw.addr, ih, maxTries-1)
	start := time.Now()
	p, err := interop.StartCommand(ctx, "webtorrent-dht joiner", []string{"node", b.driver, "--modules", b.dir,
		"--node", cmd, "--duration", "90"}, interop.Options{ReadyTimeout: time.Minute})
	if err != nil {
		return sample{err: err}
	}
	defer p.Stop()
	var s sample
	m, err := p.WaitLine(ctx, readyRE)
	if err != nil {
		return sample{err: err}
	}
	boot, _ := strconv.Atoi(m[1])
	s.boot = time.Duration(boot) * time.Millisecond
	first := func(line string) bool { return peerRE.MatchString(line) || lookupRE.MatchString(line) }
	l, err := p.WaitFunc(ctx, first)
	if err != nil {
		return sample{err: err}
	}
	s.process = time.Since(start)
	m = peerRE.FindStringSubmatch(l)
	if m == nil {
		return sample{err: fmt.Errorf("no peer: %s", l)}
	}
	total, _ := strconv.Atoi(m[1])
	s.total = time.Duration(total) * time.Millisecond
	m, err = p.WaitLine(ctx, peerIDRE)
	if err != nil {
		return sample{err: err}
	}
	if m[2] != announcer.String() {
		return sample{err: fmt.Errorf("found %s, not the announcer %v", m[1], announcer)}
	}
	if l, err := p.WaitLine(ctx, lookupRE); err == nil {
		if i := strings.Index(l[0], "visited="); i >= 0 {
			s.tries = 1 // the JS reports lookups, not tries; the time says enough
		}
	}
	return s
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func minOf(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return slices.Min(d)
}

func maxOf(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return slices.Max(d)
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// reexec runs this program again, with the same arguments, in a network namespace with
// only lo, and exits with its status.
func reexec() error {
	code, err := interop.RerunInNetns(netnsEnv)
	if err != nil {
		return fmt.Errorf("%w (or run with -netns=false)", err)
	}
	os.Exit(code)
	return nil
}
