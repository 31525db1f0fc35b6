package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/extensions/signals"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/udp"
	"github.com/wdht/wdht/transport/webrtc"
)

// defaultBootstrap is where client commands bootstrap from by default over UDP: a local
// wdht node. Over WebRTC it is defaultSignalAddr, the same node's signalling server.
const defaultBootstrap = "127.0.0.1:6881"

// clientFlags are the flags every client command (ping, lookup, announce, put, get,
// sample) takes.
type clientFlags struct {
	transport transportFlag
	addr      string
	bootstrap addrList
	loopback  autoBool
	timeout   time.Duration
	json      bool
	ice       iceFlags
}

// clientFlagSet returns a flag set for a client command, with the client flags.
func clientFlagSet(name string) (*flag.FlagSet, *clientFlags) {
	fs := newFlagSet(name)
	f := &clientFlags{transport: transportUDP}
	fs.Var(&f.transport, "transport", "")
	fs.StringVar(&f.addr, "addr", "", "")
	fs.Var(&f.bootstrap, "bootstrap", "")
	fs.Var(&f.loopback, "loopback", "")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "")
	fs.BoolVar(&f.json, "json", false, "")
	f.ice.register(fs)
	return fs, f
}

// clientFlagsHelp describes the client flags in every client command's help.
const clientFlagsHelp = `  --transport udp|webrtc
        udp (the default): the mainline DHT; webrtc: the WebTorrent DHT, joined
        through signalling servers
  --addr IP:PORT
        UDP address to listen on (default: 127.0.0.1:0 when every node to reach
        is on IPv4 loopback, [::1]:0 for IPv6 loopback, else every interface;
        port 0 picks a free port); not over WebRTC
  --bootstrap HOST:PORT,...
        nodes to start from; comma-separated, may be repeated; host names are
        resolved. Over WebRTC, signalling servers, dialled (a name as it is,
        for TLS). Default: a local 'wdht node', 127.0.0.1:6881 over UDP,
        127.0.0.1:16881 over WebRTC
  --loopback
        over WebRTC, gather only loopback ICE candidates (default: when every
        --bootstrap or ADDR is on loopback; --loopback=false turns it off)
  --timeout DURATION
        give up after this long in all (default 30s)
  --json
        print JSON instead of text (errors too, as {"error":...})
` + iceFlagsHelp

// webrtc reports whether the command runs over WebRTC.
func (f *clientFlags) webrtc() bool { return f.transport == transportWebRTC }

// check validates the flags that need no network; needBootstrap says whether the
// command needs a bootstrap address. It sets the default --bootstrap of the transport.
func (f *clientFlags) check(needBootstrap bool) error {
	if !f.bootstrap.set {
		f.bootstrap.addrs = []string{defaultBootstrap}
		if f.webrtc() {
			f.bootstrap.addrs = []string{defaultSignalAddr}
		}
	}
	if needBootstrap && len(f.bootstrap.addrs) == 0 {
		return badUsage("no bootstrap address: give --bootstrap HOST:PORT")
	}
	if f.timeout <= 0 {
		return badInput("--timeout %v: want a positive duration", f.timeout)
	}
	if f.webrtc() {
		if f.addr != "" {
			return badUsage("--addr is for --transport udp: a WebRTC client has no address of its own")
		}
		if err := checkNodeAddrs("--bootstrap", f.bootstrap.addrs); err != nil {
			return err
		}
		_, _, err := f.ice.config(f.loopback.value(allLoopback(f.bootstrap.addrs)))
		return err
	}
	if f.loopback.set {
		return badUsage("--loopback is for --transport webrtc")
	}
	if len(f.ice.servers) > 0 || f.ice.username != "" || f.ice.credential != "" || f.ice.policy != "all" {
		return badUsage("--ice-server and the other ICE flags are for --transport webrtc")
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
	close     func() // stops the node and its transport
	web       *webrtc.Transport
	bootstrap []netip.AddrPort // over UDP
	servers   []string         // over WebRTC: the signalling servers to dial
	start     time.Time        // when the client started: summaries report the time since
	tried     string           // the bootstrap nodes, for "no bootstrap node answered"
}

// elapsed is the real time since the client started, which summaries report.
func (c *client) elapsed() time.Duration { return time.Since(c.start) }

// noAnswer is the error of a client's operation whose lookup (res, which may be nil) no
// node answered: when a node answered with a KRPC error, that error, naming the node and
// its code (a *dht.NodeError); else, over UDP, where the client did not join first (its
// lookup starts from the bootstrap nodes), that no bootstrap node answered; what says
// which lookup otherwise.
func (c *client) noAnswer(what string, res *dht.LookupResult) error {
	if res != nil && res.Refusal != nil {
		if res.Refused > 1 {
			return fmt.Errorf("%w (and %d more nodes answered with KRPC errors)", res.Refusal, res.Refused-1)
		}
		return res.Refusal
	}
	if c.web == nil {
		return fmt.Errorf("no bootstrap node answered (tried %s)", c.tried)
	}
	return fmt.Errorf("no node answered the %s", what)
}

// startClient starts a client node: over UDP, it resolves the bootstrap addresses and
// listens where it can reach them and the extra targets; over WebRTC, it makes a
// transport that dials the bootstrap signalling servers (and those names). A client node
// is read-only (BEP 43): it asks, never answers, so that nodes do not put it in their
// routing tables.
func startClient(ctx context.Context, e *env, f *clientFlags, targets ...netip.AddrPort) (*client, error) {
	start := time.Now()
	if f.webrtc() {
		return startWebClient(e, f, f.bootstrap.addrs)
	}
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
	return &client{node: node, close: func() { node.Close(); tr.Close() }, bootstrap: boot, start: start,
		tried: joinAddrs(boot)}, nil
}

// startWebClient starts a WebRTC-only client node that will dial servers; its ICE
// candidates are loopback ones when every server is on loopback (unless --loopback
// says otherwise).
func startWebClient(e *env, f *clientFlags, servers []string) (*client, error) {
	tr, err := newWebTransport(e, f.loopback.value(allLoopback(servers)), &f.ice)
	if err != nil {
		return nil, err
	}
	node, err := signals.NewNode(tr, signals.WebRTC(tr), &dht.Config{
		MaintenanceInterval: -1,
		KRPC:                krpc.Config{ReadOnly: true},
		Logger:              e.log,
	}, nil)
	if err != nil {
		tr.Close()
		return nil, err
	}
	return &client{node: node, close: func() { node.Close(); tr.Close() }, web: tr, servers: f.bootstrap.addrs, start: time.Now(),
		tried: strings.Join(f.bootstrap.addrs, ", ")}, nil
}

// join readies the client node for its lookup without a lookup of its own ID: over UDP
// there is nothing to do, as the node's first lookup starts from the bootstrap nodes
// (Config.Bootstrap seeds a lookup on an empty table); over WebRTC, it dials the
// signalling servers and pings the nodes behind them, at once, which puts those that
// answer in its routing table to start the lookup from.
func (c *client) join(ctx context.Context, timeout time.Duration) error {
	if c.web == nil {
		return nil
	}
	var reasons []string
	var boot []netip.AddrPort
	for _, d := range dialAll(ctx, c.web, c.servers) {
		if d.err != nil {
			reasons = append(reasons, fmt.Sprintf("%s: %s", d.name, dialReason(d.err, timeout)))
			continue
		}
		boot = append(boot, d.peer)
	}
	if len(boot) == 0 {
		return fmt.Errorf("no bootstrap node answered (tried %s)", strings.Join(reasons, "; "))
	}
	errs := make([]error, len(boot))
	var wg sync.WaitGroup
	for i, a := range boot {
		wg.Go(func() { _, errs[i] = c.node.Ping(ctx, a) })
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			return nil
		}
	}
	if errors.Is(errs[0], context.DeadlineExceeded) || errors.Is(errs[0], krpc.ErrTimeout) {
		return fmt.Errorf("no bootstrap node answered (tried %s)", c.tried)
	}
	return fmt.Errorf("bootstrap: %w", opError(errs[0], timeout))
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

// lookupOf returns the lookup of an operation's result (a *dht.AnnounceResult,
// *dht.GetResult or *dht.PutResult), or nil.
func lookupOf[R interface {
	*dht.AnnounceResult | *dht.GetResult | *dht.PutResult
}](r R) *dht.LookupResult {
	if r == nil {
		return nil
	}
	switch r := any(r).(type) {
	case *dht.AnnounceResult:
		return r.Lookup
	case *dht.GetResult:
		return r.Lookup
	case *dht.PutResult:
		return r.Lookup
	}
	return nil
}
