package main

import (
	"context"
	"crypto/tls"
	"errors"
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
	demo      http.Handler // GET requests that are not signalling; nil: 405
	done      chan error
}

// listenSignalling opens the signalling server's TCP port and the WebRTC transport; serve
// starts answering on the port. laddr's zero IP means every interface. With
// advertise empty, a specific listen address is advertised (every interface: each
// client is told the address it reached).
func listenSignalling(e *env, laddr netip.AddrPort, advertise string, loopback bool, certFile, keyFile string) (*signalling, error) {
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
	tr, err := webrtc.New(&webrtc.Config{
		Loopback:  loopback,
		Advertise: advertise,
		Logger:    e.log, // the transport names its logs "webrtc"
	})
	if err != nil {
		l.Close()
		return nil, err
	}
	return &signalling{tr: tr, l: l, addr: addr, advertise: advertise, certFile: certFile, keyFile: keyFile}, nil
}

// serve starts the signalling server.
func (s *signalling) serve() error {
	srv, err := webrtc.NewServer(s.tr, &webrtc.ServerConfig{CertFile: s.certFile, KeyFile: s.keyFile, Fallback: s.demo})
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
func newWebTransport(e *env, loopback bool) (*webrtc.Transport, error) {
	return webrtc.New(&webrtc.Config{Loopback: loopback, Logger: e.log})
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
