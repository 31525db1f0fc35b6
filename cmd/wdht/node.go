package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/bridge"
	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/extensions/signals"
	"github.com/wdht/wdht/transport/udp"
	"github.com/wdht/wdht/transport/webrtc"
)

const (
	// stateSaveInterval is how often a node with --state saves it while running.
	stateSaveInterval = 5 * time.Minute
	// bootstrapBackoffMax caps the wait between failed bootstrap attempts.
	bootstrapBackoffMax = time.Minute
	// maxSecondsLimit is the largest --max-seconds (about 31 years), well within a
	// time.Duration.
	maxSecondsLimit = 1e9
)

// defaultRouters are the mainline DHT's well-known bootstrap routers, which
// "--bootstrap default" stands for. Nothing uses them unless asked.
var defaultRouters = dht.MainlineRouters()

// nodeCommand is "wdht node".
func nodeCommand() *command {
	return &command{
		name:  "node",
		short: "run a DHT node (mainline UDP, WebRTC, or a bridge of both)",
		help: `Usage: wdht node [flags]

Node runs a DHT node until SIGINT or SIGTERM. By default it is a bridge: a
mainline node on UDP (--addr, 127.0.0.1:6881) and a WebTorrent node on WebRTC
with its signalling server, WebSocket and HTTP on one TCP port (--signal-addr,
127.0.0.1:16881), sharing one peer store and one BEP 44 item store; a get that
reaches one side for an item neither holds is answered from a lookup on the
other. --transports udp runs the mainline node alone, --transports webrtc the
WebRTC node alone.

It prints one line when it is listening, a status line every --status, and
one line when it stops:

	LISTENING impl=wdht version=<version> addr=<ip:port> id=<40 hex> signal=<ip:port> web_id=<40 hex> pid=<pid>
	STATUS t=<seconds> nodes=<n> good=<n> peers=<n> infohashes=<n> items=<n> q_in=<queries/s> q_out=<queries/s> web_nodes=<n> web_good=<n> web_conns=<n> web_q_in=<queries/s> web_q_out=<queries/s>
	STOPPING impl=wdht pid=<pid>

addr and id are the UDP node's (for a WebRTC-only node, its signalling
address and the WebRTC node's ID); signal and web_id, present when WebRTC
runs, the signalling server's address and the WebRTC node's ID. In STATUS,
nodes and good count the UDP node's routing table and its good nodes,
web_nodes and web_good the WebRTC node's; peers, infohashes and items what the
stores hold; web_conns the open WebRTC connections; q_in and q_out (web_q_in,
web_q_out) the KRPC queries received and sent per second since the previous
status line. The fields of a side that does not run are left out.

With --bootstrap (--web-bootstrap), the UDP (WebRTC) node joins through those
nodes in the background, retrying with backoff until one answers, and again
whenever its routing table empties. Without them, a node is alone until
someone contacts it. Nothing is ever contacted unless named: the mainline
DHT's routers only with --bootstrap default.

With --state, the node starts from the file when it exists (the IDs, the UDP
node's nodes, the signalling servers the WebRTC node was connected to) and
saves its state there every 5 minutes and when it stops.

Flags:
  --transports LIST
        udp, webrtc or udp,webrtc (the default: a bridge of both)
  --addr IP:PORT
        UDP address to listen on; [IP]:PORT for IPv6, :PORT for every
        interface, port 0 picks a free one (default 127.0.0.1:6881)
  --signal-addr IP:PORT
        TCP address of the signalling server (WebSocket and HTTP), in the same
        forms (default 127.0.0.1:16881)
  --advertise HOST:PORT
        the signalling server's public address, announced to every WebRTC peer
        so that it can bootstrap from us later (default: --signal-addr; with an
        unspecified IP, each client is told the address it reached); with TLS,
        a name the certificate holds
  --tls-cert FILE, --tls-key FILE
        serve signalling over TLS (wss://, https://) with this certificate and
        private key (PEM), both or neither: browsers on https pages need it
  --loopback
        gather only loopback ICE candidates, for nodes on one machine
        (default: when --signal-addr and every --web-bootstrap is on loopback;
        --loopback=false turns it off)
  --ice-server URL, --ice-username USER, --ice-credential PASSWORD,
  --ice-transport-policy all|relay
        STUN and TURN servers for the WebRTC connections; see below
  --bootstrap HOST:PORT,...
        mainline nodes to join through; comma-separated, may be repeated; host
        names are resolved at each attempt; the word "default" stands for the
        mainline routers (router.bittorrent.com:6881,
        dht.transmissionbt.com:6881, router.utorrent.com:6881,
        dht.libtorrent.org:25401), which a node on loopback cannot reach, nor
        any other IP off loopback (a usage error) (default: none, a lone node)
  --web-bootstrap HOST:PORT,...
        signalling servers the WebRTC node joins through (a name is dialled as
        it is, for TLS); comma-separated, may be repeated (default: none)
  --state FILE
        load state from FILE at start, save it there (JSON; see 'go doc
        github.com/wdht/wdht/cmd/wdht')
  --k N
        the UDP node's bucket size, and how many closest nodes its lookups
        converge on (default 8)
  --web-k N
        the same for the WebRTC node (default 2, as webtorrent-dht)
  --status DURATION
        how often to print a STATUS line; 0 turns it off (default 10s)
  --limits=false
        turn off the per-source and global inbound rate limits and the
        outbound query budget (for benchmarks)
  --max-seconds N
        stop after N seconds, as on SIGTERM (default: run until signalled)
  --no-demo
        do not serve the demo page (a wdht node in WebAssembly, see
        'go generate ./cmd/wdht') on GET requests to the signalling port
  --log-level LEVEL
        trace, debug, info, warn, error or off (default: $WDHT_LOG, else warn)

Flags for running a public node (each also from the environment: see below):
  --metrics-addr HOST:PORT
        serve /metrics (Prometheus), /healthz (200 while the process runs) and
        /readyz (200 when every routing table holds a node and the signalling
        server serves, else 503) over HTTP there; :PORT listens on loopback,
        0.0.0.0:PORT on every interface; port 0 picks one, printed as
        METRICS addr=<ip:port> before LISTENING (default: off)
  --pprof
        also serve Go's profiles under /debug/pprof/ on --metrics-addr
  --log-format FORMAT
        text or json (one JSON object per line, hclog's format) (default text)
  --trusted-proxy CIDR,...
        reverse proxies (CIDR prefixes or IPs; comma-separated, may be
        repeated) whose requests to the signalling server carry the client's
        address in --proxy-header: for those, the per-IP caps and the logs use
        the last address in the header that is not itself a trusted proxy; the
        header is ignored from anyone else (default: none)
  --proxy-header NAME
        x-forwarded-for or forwarded (RFC 7239), the one header the trusted
        proxies set (default x-forwarded-for)
  --max-conns N
        open WebRTC connections at most (default 1024)
  --max-pending N
        WebRTC offers and answers waiting to connect at most (default 64)
  --max-pending-per-ip N
        the same, per signalling client IP (default 32)
  --max-peers N, --max-peers-per-infohash N, --peer-ttl DURATION
        the peer store: peers kept in all (default 100000), per infohash
        (default 200), and how long an announced peer is kept (default 30m)
  --max-peers-per-source N
        peers kept from one source IP (an IPv6 /64) at most (default 0: a
        hundredth of --max-peers)
  --max-items N, --max-item-bytes N, --item-ttl DURATION
        the BEP 44 item store: items kept (default 10000), bytes of values and
        salts (default 16777216), how long after its last put (default 2h)
  --max-items-per-source N
        items first put by one source IP (an IPv6 /64) at most; a put beyond
        gets error 202 (default 0: a hundredth of --max-items)
  --source-rate N, --source-burst N
        the per-source inbound rate limit: queries per second each source IP
        (an IPv6 /64) may send, and the burst above it (defaults 100 and 200);
        --limits=false turns it off
  --udp-read-buffer BYTES, --udp-write-buffer BYTES
        the UDP socket's SO_RCVBUF and SO_SNDBUF (default 0: the system's; Linux
        caps them at net.core.rmem_max and wmem_max)
  --enforce-secure-ids
        the UDP node ignores nodes whose IDs do not match their IPs (BEP 42),
        except on local networks (default false)

Every flag can also be set from the environment variable WDHT_ and its name in
upper case with - as _ (--max-conns: WDHT_MAX_CONNS=1024, --pprof:
WDHT_PPROF=true); a flag on the command line wins over its variable.

SIGHUP saves the state file (with --state) and loads the TLS certificate and
key again (with --tls-cert), then prints RELOADED state=<saved|error|off>
cert=<reloaded|error|off>; open WebSockets and data channels stay up, and
later TLS handshakes see the new certificate. The server also loads the files
again by itself when they change. A certificate that does not load leaves the
previous one in use. --state is checked for writability at start; an empty
state file starts a fresh node.

Flags of a side that does not run (--signal-addr without webrtc in
--transports, --addr without udp) are a usage error.

ICE flags:
` + iceFlagsHelp,
		flags:   func() *flag.FlagSet { fs, _ := nodeFlagSet(); return fs },
		run:     runNode,
		logFlag: true,
	}
}

// nodeFlags are the flags of "wdht node".
type nodeFlags struct {
	transports      transportsFlag
	addr            string
	signalAddr      string
	advertise       string
	tlsCert, tlsKey string
	loopback        autoBool
	bootstrap       addrList
	webBootstrap    addrList
	state           string
	k, webK         int
	status          time.Duration
	limits          bool
	maxSeconds      float64
	logLevel        string
	noDemo          bool
	ops             opsFlags

	// Parsed from the flags above.
	laddr, saddr netip.AddrPort
	ice          iceFlags
}

// nodeFlagSet returns node's flag set.
func nodeFlagSet() (*flag.FlagSet, *nodeFlags) {
	f := &nodeFlags{
		transports: transportsFlag{udp: true, webrtc: true},
		bootstrap:  addrList{words: map[string][]string{"default": defaultRouters}},
	}
	fs := newFlagSet("node")
	fs.Var(&f.transports, "transports", "")
	fs.StringVar(&f.addr, "addr", "127.0.0.1:6881", "")
	fs.StringVar(&f.signalAddr, "signal-addr", defaultSignalAddr, "")
	fs.StringVar(&f.advertise, "advertise", "", "")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "")
	fs.StringVar(&f.tlsKey, "tls-key", "", "")
	fs.Var(&f.loopback, "loopback", "")
	fs.Var(&f.bootstrap, "bootstrap", "")
	fs.Var(&f.webBootstrap, "web-bootstrap", "")
	fs.StringVar(&f.state, "state", "", "")
	fs.IntVar(&f.k, "k", dht.DefaultK, "")
	fs.IntVar(&f.webK, "web-k", signals.DefaultK, "")
	fs.DurationVar(&f.status, "status", 10*time.Second, "")
	fs.BoolVar(&f.limits, "limits", true, "")
	fs.Float64Var(&f.maxSeconds, "max-seconds", 0, "")
	fs.StringVar(&f.logLevel, "log-level", "", "")
	fs.BoolVar(&f.noDemo, "no-demo", false, "")
	f.ops.define(fs)
	f.ice.register(fs)
	return fs, f
}

// Flags that only one side of the node takes.
var (
	udpOnlyFlags    = []string{"addr", "bootstrap", "k", "udp-read-buffer", "udp-write-buffer", "enforce-secure-ids"}
	webrtcOnlyFlags = append([]string{"signal-addr", "advertise", "tls-cert", "tls-key", "loopback", "web-bootstrap", "web-k",
		"max-conns", "max-pending", "max-pending-per-ip", "trusted-proxy", "proxy-header"}, iceFlagNames...)
)

// parseNodeFlags parses and checks node's arguments, without using the network.
func parseNodeFlags(args []string) (*nodeFlags, error) {
	fs, f := nodeFlagSet()
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, err
	}
	if err := applyEnv(fs); err != nil {
		return nil, err
	}
	if err := f.ops.check(); err != nil {
		return nil, err
	}
	switch {
	case len(pos) > 0:
		return nil, badUsage("want no arguments, got %q", pos)
	case f.k < 1:
		return nil, badInput("--k %d: want a bucket size of at least 1", f.k)
	case f.webK < 1:
		return nil, badInput("--web-k %d: want a bucket size of at least 1", f.webK)
	case f.status < 0:
		return nil, badInput("--status %v: want a positive duration, or 0 for no status lines", f.status)
	case !(f.maxSeconds >= 0 && f.maxSeconds <= maxSecondsLimit): // NaN too
		return nil, badInput("--max-seconds %v: want a number of seconds from 0 (no limit) to %g", f.maxSeconds, float64(maxSecondsLimit))
	}
	for _, side := range []struct {
		on    bool
		flags []string
		name  string
	}{{f.transports.udp, udpOnlyFlags, "udp"}, {f.transports.webrtc, webrtcOnlyFlags, "webrtc"}} {
		for _, name := range side.flags {
			if !side.on && wasSet(fs, name) {
				return nil, badUsage("--%s is for the %s side: add %s to --transports", name, side.name, side.name)
			}
		}
	}
	if f.transports.udp {
		if f.laddr, err = parseListenAddr(f.addr); err != nil {
			return nil, err
		}
		if err := checkNodeAddrs("--bootstrap", f.bootstrap.addrs); err != nil {
			return nil, err
		}
		if f.laddr.Addr().IsLoopback() {
			for _, a := range f.bootstrap.addrs {
				host, _, _ := splitNodeAddr(a)
				ip, err := netip.ParseAddr(host)
				if slices.Contains(defaultRouters, a) || err == nil && !ip.IsLoopback() {
					return nil, badInput("--bootstrap %s: a node on loopback (--addr %s) cannot reach it: "+
						"give --addr an address of this host that can, or :%d for every interface", a, f.addr, f.laddr.Port())
				}
			}
		}
	}
	if f.transports.webrtc {
		if err := f.checkWebRTC(); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// checkWebRTC checks the flags of the WebRTC side.
func (f *nodeFlags) checkWebRTC() error {
	var err error
	if f.saddr, err = parseListenFlag("--signal-addr", f.signalAddr); err != nil {
		return err
	}
	if f.advertise != "" {
		if _, _, err := splitNodeAddr(f.advertise); err != nil {
			return badInput("--advertise: %v", err)
		}
	}
	if err := checkNodeAddrs("--web-bootstrap", f.webBootstrap.addrs); err != nil {
		return err
	}
	if _, _, err := f.ice.config(f.webLoopback()); err != nil {
		return err
	}
	switch {
	case f.tlsCert != "" && f.tlsKey == "":
		return badUsage("--tls-cert needs --tls-key, the certificate's private key")
	case f.tlsKey != "" && f.tlsCert == "":
		return badUsage("--tls-key needs --tls-cert, the certificate it belongs to")
	case f.tlsCert == "":
		return nil
	}
	cert, err := readFlagFile("--tls-cert", f.tlsCert)
	if err != nil {
		return err
	}
	key, err := readFlagFile("--tls-key", f.tlsKey)
	if err != nil {
		return err
	}
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		return badInput("--tls-cert %q, --tls-key %q: %v", f.tlsCert, f.tlsKey, strings.TrimPrefix(err.Error(), "tls: "))
	}
	return nil
}

// webLoopback reports whether the WebRTC side gathers loopback candidates only: --loopback,
// by default when the signalling server and every --web-bootstrap are on loopback.
func (f *nodeFlags) webLoopback() bool {
	return f.loopback.value(f.saddr.Addr().IsLoopback() &&
		(len(f.webBootstrap.addrs) == 0 || allLoopback(f.webBootstrap.addrs)))
}

// readFlagFile reads the file a flag names.
func readFlagFile(flagName, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if pe, ok := errors.AsType[*fs.PathError](err); ok {
			err = pe.Err
		}
		return nil, badInput("%s %q: %v", flagName, path, err)
	}
	return b, nil
}

// withBootstrap returns st (nil: an empty state) with the addresses of extra added to its
// Bootstrap: the node dials or resolves them at each bootstrap. It returns nil when there
// is nothing to start from.
func withBootstrap(st *dht.State, extra []string) *dht.State {
	if st == nil && len(extra) == 0 {
		return nil
	}
	var out dht.State
	if st != nil {
		out = *st
	}
	out.Bootstrap = slices.Clone(out.Bootstrap)
	for _, a := range extra {
		if !slices.Contains(out.Bootstrap, a) {
			out.Bootstrap = append(out.Bootstrap, a)
		}
	}
	return &out
}

// hasSeeds reports whether st gives a node something to bootstrap from.
func hasSeeds(st *dht.State) bool {
	return st != nil && (len(st.Nodes) > 0 || len(st.Bootstrap) > 0)
}

// nodes are the DHT nodes "wdht node" runs: the mainline one, the WebRTC one, or both.
type nodes struct {
	mainline *dht.Node         // nil without UDP
	web      *dht.Node         // nil without WebRTC
	wtr      *webrtc.Transport // the WebRTC node's transport
}

// stats returns the nodes' current counters.
func (n *nodes) stats() nodeStats {
	var s nodeStats
	if n.mainline != nil {
		st := n.mainline.Stats()
		s.mainline = &st
	}
	if n.web != nil {
		st := n.web.Stats()
		s.web = &st
		s.conns = n.wtr.Stats().Conns
	}
	return s
}

// state returns sf with the running nodes' states in place of the loaded ones.
func (n *nodes) state(sf stateFile) *stateFile {
	if n.mainline != nil {
		st := n.mainline.State()
		sf.Mainline = &st
	}
	if n.web != nil {
		st := n.web.State()
		sf.Web = &st
	}
	return &sf
}

func runNode(ctx context.Context, e *env, args []string) (err error) {
	f, err := parseNodeFlags(args)
	if err != nil {
		return err
	}
	if err := e.setLogLevel(f.logLevel); err != nil {
		return err
	}
	e.log = f.ops.logger(e)
	hup, stopHUP := notifyReload()
	defer stopHUP()
	sf := &stateFile{}
	if f.state != "" {
		if err := checkStateFile(f.state); err != nil {
			return err
		}
		loaded, err := loadState(f.state)
		if err != nil {
			return err
		}
		if loaded != nil {
			sf = loaded
		}
	}
	sf.dual = sf.dual || f.transports.webrtc

	peers, items, err := f.ops.stores()
	if err != nil {
		return err
	}
	var mcfg, wcfg dht.Config
	mcfg.K, mcfg.State = f.k, withBootstrap(sf.Mainline, f.bootstrap.addrs)
	wcfg.K, wcfg.State = f.webK, withBootstrap(sf.Web, f.webBootstrap.addrs)
	mcfg.EnforceSecureIDs = f.ops.enforceSecure
	mcfg.Peers, mcfg.Items, wcfg.Peers, wcfg.Items = peers, items, peers, items
	f.ops.tuneKRPC(&mcfg.KRPC)
	f.ops.tuneKRPC(&wcfg.KRPC)
	if !f.limits {
		mcfg.KRPC.SourceRate, mcfg.KRPC.QueryRate = -1, -1
		wcfg.KRPC.SourceRate, wcfg.KRPC.QueryRate = -1, -1
		mcfg.KRPC.InboundRate, wcfg.KRPC.InboundRate = -1, -1
	}

	// Closed in reverse order: the signalling server, the nodes, the transports.
	var closers []func()
	defer func() {
		for _, c := range slices.Backward(closers) {
			c()
		}
	}()
	var ops *opsServer
	if f.ops.maddr.IsValid() {
		if ops, err = listenOps(&f.ops); err != nil {
			return err
		}
		defer ops.close() // first of all
	}
	var utr *udp.Transport
	if f.transports.udp {
		if utr, err = udp.Listen(f.laddr, f.ops.udpConfig(e.log.Named("udp"))); err != nil {
			return err
		}
		closers = append(closers, func() { utr.Close() })
	}
	var sig *signalling
	if f.transports.webrtc {
		if sig, err = listenSignalling(e, f.saddr, f.advertise, f.webLoopback(), f.tlsCert, f.tlsKey, &f.ice, f.ops.tuneWebRTC); err != nil {
			return err
		}
		sig.trusted, sig.proxyHeader = f.ops.trustedProxies.prefixes, f.ops.header()
		closers = append(closers, func() { sig.tr.Close() })
	}

	var n nodes
	var br *bridge.Bridge
	switch {
	case utr != nil && sig != nil:
		b, err := bridge.New(utr, sig.tr, signals.WebRTC(sig.tr), &bridge.Config{Mainline: mcfg, Web: wcfg, Peers: peers, Items: items, Logger: e.log})
		if err != nil {
			sig.closeServer()
			return err
		}
		closers = append(closers, func() { b.Close() })
		n, br = nodes{mainline: b.Mainline, web: b.Web, wtr: sig.tr}, b
	case utr != nil:
		mcfg.Logger = e.log
		node, err := dht.New(utr, &mcfg)
		if err != nil {
			return err
		}
		closers = append(closers, func() { node.Close() })
		n = nodes{mainline: node}
	default:
		wcfg.Logger = e.log
		node, err := signals.NewNode(sig.tr, signals.WebRTC(sig.tr), &wcfg, nil)
		if err != nil {
			sig.closeServer()
			return err
		}
		closers = append(closers, func() { node.Close() })
		n = nodes{web: node, wtr: sig.tr}
	}
	if sig != nil {
		if !f.noDemo {
			sig.demo = demoHandler(demoFiles)
		}
		if err := sig.serve(); err != nil {
			sig.closeServer()
			return err
		}
		closers = append(closers, sig.closeServer)
	}

	if ops != nil {
		ops.serve(metricsSources(&n, utr, sig, br), readiness(&n, sig), f.ops.pprof, e.log.Named("metrics"))
		fmt.Fprintf(e.stdout, "METRICS addr=%v\n", ops.l.Addr())
	}

	pid := os.Getpid()
	fmt.Fprintf(e.stdout, "LISTENING impl=wdht version=%s %s pid=%d\n", version(), listeningFields(&n, sig), pid)
	serveNode(ctx, e, f, &n, sf, hasSeeds(mcfg.State), hasSeeds(wcfg.State), hup, func() { reloadNode(e, f, &n, sf, sig) })
	if ops != nil {
		ops.stopping.Store(true)
	}
	fmt.Fprintf(e.stdout, "STOPPING impl=wdht pid=%d\n", pid)
	if f.state != "" {
		return saveState(f.state, n.state(*sf))
	}
	return nil
}

// listeningFields returns the fields of the LISTENING line that describe the nodes:
// addr and id (the UDP node's, else the WebRTC node's), then signal and web_id when
// WebRTC runs.
func listeningFields(n *nodes, sig *signalling) string {
	var fields []string
	if n.mainline != nil {
		fields = append(fields, fmt.Sprintf("addr=%v id=%v", n.mainline.Addr(), n.mainline.ID()))
	} else {
		fields = append(fields, fmt.Sprintf("addr=%v id=%v", sig.addr, n.web.ID()))
	}
	if n.web != nil {
		fields = append(fields, fmt.Sprintf("signal=%v web_id=%v", sig.addr, n.web.ID()))
	}
	return strings.Join(fields, " ")
}

// serveNode runs the started nodes until ctx ends or --max-seconds pass: it bootstraps
// each in the background (when its join is set), prints status lines and saves the
// state file.
func serveNode(ctx context.Context, e *env, f *nodeFlags, n *nodes, sf *stateFile, joinMainline, joinWeb bool,
	hup <-chan os.Signal, reload func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, side := range []struct {
		node *dht.Node
		join bool
		name string
	}{{n.mainline, joinMainline, "mainline"}, {n.web, joinWeb, "web"}} {
		if side.node != nil && side.join {
			wg.Go(func() {
				bootstrapLoop(ctx, func(ctx context.Context) (*dht.LookupResult, error) { return side.node.Bootstrap(ctx) },
					e.log.Named(side.name))
			})
		}
	}
	var stopAt, status, save <-chan time.Time
	if f.maxSeconds > 0 {
		t := time.NewTimer(time.Duration(f.maxSeconds * float64(time.Second)))
		defer t.Stop()
		stopAt = t.C
	}
	meter := newStatusMeter(time.Now(), n.stats())
	if f.status > 0 {
		t := time.NewTicker(f.status)
		defer t.Stop()
		status = t.C
	}
	if f.state != "" {
		t := time.NewTicker(stateSaveInterval)
		defer t.Stop()
		save = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-stopAt:
			return
		case now := <-status:
			fmt.Fprintln(e.stdout, meter.line(now, n.stats()))
		case <-hup:
			reload()
		case <-save:
			if err := saveState(f.state, n.state(*sf)); err != nil {
				e.log.Warn("cannot save state", "file", f.state, "error", err)
			}
		}
	}
}

// bootstrapLoop calls bootstrap (the node's Bootstrap) until it succeeds or ctx ends,
// waiting 1s after the first failure and twice as long after each next one, up to
// bootstrapBackoffMax. Once it has succeeded, the node's maintenance bootstraps again if
// the routing table empties.
func bootstrapLoop(ctx context.Context, bootstrap func(context.Context) (*dht.LookupResult, error), log hclog.Logger) {
	wait := time.Second
	for {
		res, err := bootstrap(ctx)
		if err == nil {
			log.Info("bootstrapped", "answered", res.Responses, "queries", res.Queries, "duration", res.Duration)
			return
		}
		if ctx.Err() != nil {
			return
		}
		log.Warn("bootstrap failed, will retry", "error", err, "in", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, bootstrapBackoffMax)
	}
}

// nodeStats are the counters of the nodes that run (nil for a side that does not).
type nodeStats struct {
	mainline, web *dht.Stats
	conns         int // open WebRTC connections
}

// queryCounts are the KRPC query counters of one node.
type queryCounts struct{ in, out uint64 }

func countsOf(s *dht.Stats) queryCounts {
	if s == nil {
		return queryCounts{}
	}
	return queryCounts{s.KRPC.QueriesIn, s.KRPC.QueriesOut}
}

// statusMeter formats STATUS lines, with query rates since the previous line.
type statusMeter struct {
	start, last time.Time
	main, web   queryCounts
}

// newStatusMeter starts measuring at now from the nodes' stats s.
func newStatusMeter(now time.Time, s nodeStats) *statusMeter {
	return &statusMeter{start: now, last: now, main: countsOf(s.mainline), web: countsOf(s.web)}
}

// line returns the STATUS line for stats s taken at now.
func (m *statusMeter) line(now time.Time, s nodeStats) string {
	dt := now.Sub(m.last).Seconds()
	rate := func(cur, last uint64) float64 {
		if dt <= 0 || cur < last {
			return 0
		}
		return float64(cur-last) / dt
	}
	var b strings.Builder
	fmt.Fprintf(&b, "STATUS t=%.2f", now.Sub(m.start).Seconds())
	store := s.mainline
	if store == nil {
		store = s.web
	}
	if ms := s.mainline; ms != nil {
		fmt.Fprintf(&b, " nodes=%d good=%d", ms.Nodes, ms.GoodNodes)
	}
	if store != nil {
		fmt.Fprintf(&b, " peers=%d infohashes=%d items=%d", store.Peers, store.Infohashes, store.Items)
	}
	if ms := s.mainline; ms != nil {
		c := countsOf(ms)
		fmt.Fprintf(&b, " q_in=%.1f q_out=%.1f", rate(c.in, m.main.in), rate(c.out, m.main.out))
		m.main = c
	}
	if ws := s.web; ws != nil {
		c := countsOf(ws)
		fmt.Fprintf(&b, " web_nodes=%d web_good=%d web_conns=%d web_q_in=%.1f web_q_out=%.1f",
			ws.Nodes, ws.GoodNodes, s.conns, rate(c.in, m.web.in), rate(c.out, m.web.out))
		m.web = c
	}
	m.last = now
	return b.String()
}
