package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/wdht/wdht/transport/webrtc"
)

// defaultSignalAddr is where "wdht node" runs its signalling server by default, and what
// client commands over WebRTC bootstrap from.
const defaultSignalAddr = "127.0.0.1:16881"

// signalling is a WebRTC transport and its signalling server (WebSocket and HTTP on one
// TCP port).
type signalling struct {
	tr        *webrtc.Transport
	l         net.Listener
	addr      netip.AddrPort // where the server listens
	advertise string         // what the transport announces, "" for the arrival address
	certFile  string
	keyFile   string
	srv       *webrtc.Server
	done      chan error
	// trusted and proxyHeader are the server's TrustedProxies and ProxyHeader.
	trusted     []netip.Prefix
	proxyHeader string
}

// listenSignalling opens the signalling server's TCP port and the WebRTC transport; serve
// starts answering on the port. laddr's zero IP means every interface. With
// advertise empty, a specific listen address is advertised (every interface: each
// client is told the address it reached).
func listenSignalling(e *env, laddr netip.AddrPort, advertise string, loopback bool, certFile, keyFile string, ice *iceFlags, tune func(*webrtc.Config)) (*signalling, error) {
	servers, relayOnly, err := ice.config(loopback)
	if err != nil {
		return nil, err
	}
	hp := laddr.String()
	if !laddr.Addr().IsValid() {
		hp = fmt.Sprintf(":%d", laddr.Port())
	}
	l, err := net.Listen("tcp", hp)
	if err != nil {
		return nil, fmt.Errorf("signalling server: %w", err)
	}
	addr := l.Addr().(*net.TCPAddr).AddrPort()
	addr = netip.AddrPortFrom(addr.Addr().Unmap(), addr.Port())
	if advertise == "" && laddr.Addr().IsValid() && !laddr.Addr().IsUnspecified() {
		advertise = addr.String()
	}
	wc := &webrtc.Config{
		Loopback:   loopback,
		ICEServers: servers,
		RelayOnly:  relayOnly,
		Advertise:  advertise,
		Logger:     e.log, // the transport names its logs "webrtc"
	}
	if tune != nil {
		tune(wc)
	}
	tr, err := webrtc.New(wc)
	if err != nil {
		l.Close()
		return nil, err
	}
	return &signalling{tr: tr, l: l, addr: addr, advertise: advertise, certFile: certFile, keyFile: keyFile}, nil
}

// serve starts the signalling server.
func (s *signalling) serve() error {
	srv, err := webrtc.NewServer(s.tr, &webrtc.ServerConfig{CertFile: s.certFile, KeyFile: s.keyFile,
		TrustedProxies: s.trusted, ProxyHeader: s.proxyHeader})
	if err != nil {
		return err
	}
	s.srv, s.done = srv, make(chan error, 1)
	go func() { s.done <- srv.Serve(s.l) }()
	return nil
}

// closeServer stops the signalling server (or closes its port if it never served). The
// transport stays open.
func (s *signalling) closeServer() {
	if s.srv == nil {
		s.l.Close()
		return
	}
	s.srv.Close()
	<-s.done
}

// newWebTransport returns the WebRTC transport of a client (no signalling server).
func newWebTransport(e *env, loopback bool, ice *iceFlags) (*webrtc.Transport, error) {
	servers, relayOnly, err := ice.config(loopback)
	if err != nil {
		return nil, err
	}
	return webrtc.New(&webrtc.Config{Loopback: loopback, ICEServers: servers, RelayOnly: relayOnly, Logger: e.log})
}

// dialed is the outcome of dialling one signalling server.
type dialed struct {
	name    string
	peer    netip.AddrPort // the connection's peer address, when err is nil
	connect time.Duration  // how long the dial took
	err     error
}

// dialAll dials the signalling servers at once and returns the outcomes in order.
func dialAll(ctx context.Context, tr *webrtc.Transport, names []string) []dialed {
	out := make([]dialed, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		wg.Go(func() {
			start := time.Now()
			peer, err := tr.Dial(ctx, name)
			out[i] = dialed{name: name, peer: peer, connect: time.Since(start), err: err}
		})
	}
	wg.Wait()
	return out
}

// dialReason says in a few words why a dial failed: "connection refused", "timed out
// after 5s", "cannot resolve "x": no such host", "TLS: x509: certificate signed by
// unknown authority", else the whole error.
func dialReason(err error, timeout time.Duration) string {
	if de, ok := errors.AsType[*net.DNSError](err); ok {
		return fmt.Sprintf("cannot resolve %q: %s", de.Name, de.Err)
	}
	if ce, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return "TLS: " + ce.Err.Error()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("timed out after %v", timeout)
	case errors.Is(err, context.Canceled):
		return "interrupted"
	}
	if se, ok := errors.AsType[*os.SyscallError](err); ok {
		return se.Err.Error()
	}
	if errors.Is(err, http.ErrServerClosed) {
		return "the server closed"
	}
	s := strings.TrimPrefix(err.Error(), "webrtc: ")
	return strings.ReplaceAll(s, "\n", "; ")
}

// iceFlags are the ICE flags of node and of every client command over WebRTC:
// --ice-server (repeatable), --ice-username, --ice-credential and --ice-transport-policy.
type iceFlags struct {
	servers              []string
	username, credential string
	policy               string
}

// register adds the ICE flags to fs.
func (f *iceFlags) register(fs *flag.FlagSet) {
	fs.Func("ice-server", "", func(s string) error {
		for u := range strings.SplitSeq(s, ",") {
			if u = strings.TrimSpace(u); u != "" {
				f.servers = append(f.servers, u)
			}
		}
		return nil
	})
	fs.StringVar(&f.username, "ice-username", "", "")
	fs.StringVar(&f.credential, "ice-credential", "", "")
	fs.StringVar(&f.policy, "ice-transport-policy", "all", "")
}

// iceFlagNames are the names of the ICE flags, which only the WebRTC side takes.
var iceFlagNames = []string{"ice-server", "ice-username", "ice-credential", "ice-transport-policy"}

// iceFlagsHelp describes the ICE flags.
const iceFlagsHelp = `  --ice-server URL
        a STUN or TURN server for WebRTC connections (ICE); may be repeated or
        comma-separated: stun:HOST[:PORT], turn:USER:PASSWORD@HOST[:PORT]
        [?transport=udp|tcp], turns:USER:PASSWORD@HOST[:PORT] (percent-encode
        : and @ in USER and PASSWORD). Default none: only this host's own
        addresses are offered, and no server is contacted; a node behind a
        NAT needs a STUN server to be reached from outside, and a TURN server
        when its NAT and the peer's are both symmetric
  --ice-username USER, --ice-credential PASSWORD
        the credentials of the TURN servers whose URL has none
  --ice-transport-policy all|relay
        relay: connect through the TURN server only, so that peers never see
        this host's addresses (needs a turn: server) (default all)
`

// config returns the ICE servers and whether only relay candidates are used. loopback
// says whether the transport gathers loopback candidates only: it cannot use a server
// off loopback, and must never contact one.
func (f *iceFlags) config(loopback bool) ([]webrtc.ICEServer, bool, error) {
	var out []webrtc.ICEServer
	turn := false
	for _, u := range f.servers {
		s, err := webrtc.ParseICEServer(u)
		if err != nil {
			return nil, false, badInput("--ice-server: %s", strings.TrimPrefix(err.Error(), "webrtc: "))
		}
		if strings.HasPrefix(s.URLs[0], "turn") {
			turn = true
			if s.Username == "" {
				if f.username == "" || f.credential == "" {
					return nil, false, badInput("--ice-server %s: a TURN server needs credentials: "+
						"turn:USER:PASSWORD@HOST:PORT, or --ice-username and --ice-credential", u)
				}
				s.Username, s.Credential = f.username, f.credential
			}
		}
		if host := iceHost(s.URLs[0]); loopback && !isLoopbackHost(host) {
			return nil, false, badInput("--ice-server %s: this node gathers loopback ICE candidates only "+
				"(--loopback, the default when its signalling servers are on loopback) and cannot use a server "+
				"off loopback: give --loopback=false", s.URLs[0])
		}
		out = append(out, s)
	}
	if (f.username != "" || f.credential != "") && !turn {
		return nil, false, badUsage("--ice-username and --ice-credential are for a turn: or turns: --ice-server")
	}
	switch f.policy {
	case "all":
		return out, false, nil
	case "relay":
		if !turn {
			return nil, false, badUsage("--ice-transport-policy relay needs a TURN server: --ice-server turn:USER:PASSWORD@HOST:PORT")
		}
		return out, true, nil
	}
	return nil, false, badInput("--ice-transport-policy %q: want all or relay", f.policy)
}

// iceHost returns the host of a STUN or TURN URL without credentials.
func iceHost(u string) string {
	_, rest, _ := strings.Cut(u, ":")
	rest, _, _ = strings.Cut(rest, "?")
	if host, _, err := net.SplitHostPort(rest); err == nil {
		return host
	}
	return strings.Trim(rest, "[]")
}
