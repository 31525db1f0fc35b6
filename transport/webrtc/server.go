package webrtc

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/hashicorp/go-hclog"
)

// Defaults for ServerConfig fields left zero.
const (
	// DefaultMaxBodySize bounds an HTTP offer and a WebSocket answer.
	DefaultMaxBodySize = 64 << 10
	// DefaultHandshakeTimeout bounds reading a request and receiving the answer over a
	// WebSocket.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultMaxClients caps the TCP connections Serve holds open at once.
	DefaultMaxClients = 1024
	// DefaultMaxClientsPerIP caps the TCP connections, and the requests in progress, of one
	// source (an IPv4 address, or an IPv6 /64).
	DefaultMaxClientsPerIP = 64
)

// ServerConfig configures a Server. The zero value (or a nil *ServerConfig) is usable:
// plain HTTP, the documented limits.
type ServerConfig struct {
	// CertFile and KeyFile, when set (both), make Serve speak TLS (https:// and wss://),
	// which browsers on https pages require: they never fall back to plain http. The
	// certificate should match Config.Advertise.
	CertFile, KeyFile string
	// MaxBodySize bounds an offer POSTed over HTTP and an answer sent over a WebSocket.
	// Default 64 KiB (an offer is 1 to 5 KiB).
	MaxBodySize int64
	// HandshakeTimeout bounds a client's connection from its acceptance: reading the
	// request (headers and body, whatever the method), writing the response (a client
	// that does not read it is cut off), and the wait for a WebSocket client's answer.
	// Serve answers one request per connection (no keep-alive), so every connection that
	// is not a WebSocket waiting for its data channel is closed within it. Default 10 s.
	HandshakeTimeout time.Duration
	// MaxClients caps the TCP connections Serve accepts at once; more wait in the
	// listen queue. Default 1024.
	MaxClients int
	// MaxClientsPerIP caps the TCP connections Serve holds open for one source (an IPv4
	// address, or an IPv6 /64), so that one host cannot take the MaxClients slots:
	// beyond it a new connection is closed as soon as it is accepted. The requests in
	// progress per client (see ServeHTTP) are capped the same, beyond which they get 503.
	// TrustedProxies are not held to the connection cap (their clients are, per request).
	// Users behind one NAT are one source: a carrier NAT shares an IPv4 address between
	// tens of subscribers, each of whose joins holds a connection until its data channel
	// opens (internal/natlab TestCrowdBehindOneNAT: 20 at once). Default 64.
	MaxClientsPerIP int
	// TrustedProxies are the reverse proxies whose requests carry the real client's
	// address in ProxyHeader: for a request from one of them, the client address (for
	// the per-IP caps and the logs) is the last address in the header that is not
	// itself a trusted proxy. The header of any other peer is ignored. Default none.
	TrustedProxies []netip.Prefix
	// ProxyHeader is the header trusted proxies set: HeaderXForwardedFor (the default)
	// or HeaderForwarded (RFC 7239, its for= parameters). Only one is read, so that a
	// client cannot forge the other through a proxy that sets just one.
	ProxyHeader string
	// Fallback, when set, answers the requests that are not signalling (neither a
	// WebSocket upgrade nor a POST or OPTIONS), such as a page served on the same port.
	// Nil: they get 405 Method Not Allowed.
	Fallback http.Handler
}

// Validate reports the first problems found in c. A nil ServerConfig is valid.
func (c *ServerConfig) Validate() error {
	if c == nil {
		return nil
	}
	var errs []error
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("webrtc: ServerConfig needs both CertFile and KeyFile, or neither"))
	}
	if c.MaxBodySize < 0 {
		errs = append(errs, fmt.Errorf("webrtc: negative MaxBodySize %d", c.MaxBodySize))
	}
	if c.HandshakeTimeout < 0 {
		errs = append(errs, fmt.Errorf("webrtc: negative HandshakeTimeout %v", c.HandshakeTimeout))
	}
	if c.MaxClients < 0 {
		errs = append(errs, fmt.Errorf("webrtc: negative MaxClients %d", c.MaxClients))
	}
	if c.MaxClientsPerIP < 0 {
		errs = append(errs, fmt.Errorf("webrtc: negative MaxClientsPerIP %d", c.MaxClientsPerIP))
	}
	for _, p := range c.TrustedProxies {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("webrtc: invalid TrustedProxies prefix %v", p))
		}
	}
	if c.ProxyHeader != "" && c.ProxyHeader != HeaderXForwardedFor && c.ProxyHeader != HeaderForwarded {
		errs = append(errs, fmt.Errorf("webrtc: ProxyHeader %q: want %q or %q", c.ProxyHeader, HeaderXForwardedFor, HeaderForwarded))
	}
	return errors.Join(errs...)
}

// Server is a bootstrap signalling server speaking both variants of the WebTorrent DHT on
// one port:
//
//   - WebSocket (webtorrent-dht up to 0.17): on each WebSocket the server offers, with a
//     bencoded {type:"offer", sdp, extensions} binary message; the client answers with a
//     bencoded {type:"answer", sdp, extensions}; the server closes the WebSocket once the
//     data channel is open, and announces itself with a bencoded {ws_server:{host, port}}
//     as the channel's first message.
//   - HTTP POST (webtorrent-dht 0.18): the client POSTs a JSON {type:"offer", sdp,
//     extensions} to any path, with any content type; the server replies with the JSON
//     answer and Access-Control-Allow-Origin: *, and announces itself with a JSON
//     {"http_server":{"host","port"}} as the channel's first message.
//
// Server is an http.Handler, to mount anywhere, and Serve runs it on a listener. The
// connections it makes belong to its Transport. Everything a client controls is
// bounded: body size, handshake time, and the offers and answers pending per client IP
// and in all (Config.MaxPendingPerIP, Config.MaxPending), beyond which it answers 503.
//
// Besides POST and WebSocket upgrades it answers CORS preflight requests (OPTIONS) with
// 204, so that browser clients that send JSON with a non-simple content type work too
// (the JS sends text/plain, a simple request, and its own server answers OPTIONS with
// 400); other methods get 405.
type Server struct {
	t   *Transport
	cfg ServerConfig
	log hclog.Logger
	tls *tls.Config // nil: plain

	certs  *certReloader // nil: plain
	counts serverCounters

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // ServeHTTP calls in progress

	mu       sync.Mutex
	closed   bool
	servers  []*http.Server
	inflight map[netip.Addr]int // requests in progress per client source
	limiters []*clientLimiter
}

// NewServer returns a signalling server whose connections belong to t. A nil cfg means
// the zero ServerConfig; cfg is copied. The certificate files, if any, are loaded now.
func NewServer(t *Transport, cfg *ServerConfig) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var c ServerConfig
	if cfg != nil {
		c = *cfg
	}
	if c.MaxBodySize == 0 {
		c.MaxBodySize = DefaultMaxBodySize
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if c.MaxClients == 0 {
		c.MaxClients = DefaultMaxClients
	}
	if c.MaxClientsPerIP == 0 {
		c.MaxClientsPerIP = DefaultMaxClientsPerIP
	}
	c.TrustedProxies = append([]netip.Prefix(nil), c.TrustedProxies...)
	for i, p := range c.TrustedProxies {
		c.TrustedProxies[i] = unmapPrefix(p)
	}
	s := &Server{t: t, cfg: c, log: t.log.Named("signal"), inflight: make(map[netip.Addr]int)}
	if c.CertFile != "" {
		certs, err := newCertReloader(c.CertFile, c.KeyFile, s.log)
		if err != nil {
			return nil, err
		}
		s.certs = certs
		s.tls = &tls.Config{GetCertificate: certs.get, NextProtos: []string{"http/1.1"}}
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Serve accepts signalling clients on l (over TLS when ServerConfig has a certificate)
// until Close, and then returns http.ErrServerClosed. Serve may be called for several
// listeners.
func (s *Server) Serve(l net.Listener) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.HandshakeTimeout,
		IdleTimeout:       s.cfg.HandshakeTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          s.log.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
		// The handshake deadline counts from the connection's acceptance (see deadline).
		ConnContext: func(ctx context.Context, _ net.Conn) context.Context {
			return context.WithValue(ctx, acceptedKey{}, time.Now())
		},
	}
	// One request per connection: a signalling client makes one (a browser maybe a CORS
	// preflight first), and a connection that could carry more would outlive the
	// handshake deadline. Without keep-alive, net/http also never waits to drain the
	// unread body of a request it answered (a GET with a stalled body).
	hs.SetKeepAlivesEnabled(false)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return http.ErrServerClosed
	}
	s.servers = append(s.servers, hs)
	s.mu.Unlock()
	cl := newClientLimiter(l, s.cfg.MaxClients, s.cfg.MaxClientsPerIP, s.cfg.TrustedProxies, s.log)
	s.mu.Lock()
	s.limiters = append(s.limiters, cl)
	s.mu.Unlock()
	l = cl
	if s.tls != nil {
		l = tls.NewListener(l, s.tls)
	}
	if s.log.IsDebug() {
		s.log.Debug("serving", "addr", l.Addr(), "tls", s.tls != nil)
	}
	return hs.Serve(l)
}

// Close stops every Serve (closing their listeners and client connections), aborts the
// handshakes in progress, and waits for the handlers and connections to finish (at most
// about 2 s). Offers and answers
// already sent stay with the Transport. It is idempotent and returns nil.
func (s *Server) Close() error {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	servers := s.servers
	s.mu.Unlock()
	if already {
		return nil
	}
	s.cancel() // aborts the handshakes, so that the handlers return at once
	var wg sync.WaitGroup
	for _, hs := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Shutdown also waits for connections that net/http lingers on after an
			// unread request body (up to 500 ms), so that none outlives Close.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			hs.Shutdown(ctx)
			hs.Close()
		}()
	}
	wg.Wait()
	s.wg.Wait()
	return nil
}

// ServeHTTP answers one signalling request: a WebSocket upgrade or a POSTed offer.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	closed := s.closed
	if !closed {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if closed {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	sw := &statusWriter{ResponseWriter: w}
	defer func() { s.counts.count(requestKind(r), cmp.Or(sw.status, http.StatusOK)) }()
	w, r = sw, s.withClient(r)

	// Every path, whatever the method: the request's body and the response must pass
	// within the handshake deadline (a WebSocket upgrade clears these, and is bounded by
	// its context instead).
	deadline := s.deadline(r)
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
	remote, _, _ := client(r)
	if !s.enterClient(remote) {
		if s.log.IsDebug() {
			s.log.Debug("signalling refused: too many requests from one source", "client", remote)
		}
		w.Header().Set("Connection", "close")
		http.Error(w, "too many requests from your address", http.StatusServiceUnavailable)
		return
	}
	defer s.leaveClient(remote)

	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	switch {
	case isUpgrade(r):
		s.serveWebSocket(w, r)
	case r.Method == http.MethodPost:
		s.servePost(w, r)
	case r.Method == http.MethodOptions:
		h.Set("Access-Control-Allow-Methods", "POST")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
	case s.cfg.Fallback != nil:
		s.cfg.Fallback.ServeHTTP(w, r)
	default:
		h.Set("Allow", "GET, POST, OPTIONS")
		http.Error(w, "WebTorrent DHT signalling: POST an offer, or open a WebSocket", http.StatusMethodNotAllowed)
	}
}

func isUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

// acceptedKey is the context key of the time Serve accepted a request's connection.
type acceptedKey struct{}

// deadline returns the handshake deadline of a request: HandshakeTimeout after its
// connection was accepted (by Serve), or after now (mounted elsewhere).
func (s *Server) deadline(r *http.Request) time.Time {
	start, ok := r.Context().Value(acceptedKey{}).(time.Time)
	if !ok {
		start = time.Now()
	}
	return start.Add(s.cfg.HandshakeTimeout)
}

// enterClient counts a request in progress for the source of remote (its client, as
// client(r) finds it), unless that source has MaxClientsPerIP in progress already.
func (s *Server) enterClient(remote netip.Addr) bool {
	key := sourceKey(remote)
	if !key.IsValid() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight[key] >= s.cfg.MaxClientsPerIP {
		return false
	}
	s.inflight[key]++
	return true
}

func (s *Server) leaveClient(remote netip.Addr) {
	key := sourceKey(remote)
	if !key.IsValid() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight[key]--; s.inflight[key] <= 0 {
		delete(s.inflight, key)
	}
}

// handshakeCtx is the context of one request's handshake: the request's, ended by Close
// and at the handshake deadline.
func (s *Server) handshakeCtx(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithDeadline(r.Context(), s.deadline(r))
	stop := context.AfterFunc(s.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// client returns the remote IP of a request (for the per-IP cap) and the local address it
// arrived on (announced when Config.Advertise is empty).
func client(r *http.Request) (remote netip.Addr, host string, port int) {
	if a, ok := r.Context().Value(clientKey{}).(netip.Addr); ok {
		remote = a // worked out by ServeHTTP from a trusted proxy's header
	} else if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		remote = ap.Addr().Unmap()
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(la.String()); err == nil {
			host, port = ap.Addr().Unmap().String(), int(ap.Port())
		}
	}
	return remote, host, port
}

// refuse answers a request that cannot be served because of a cap.
func (s *Server) refuse(w http.ResponseWriter, remote netip.Addr, err error) {
	if s.log.IsDebug() {
		s.log.Debug("signalling refused", "client", remote, "reason", err)
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(s.t.cfg.Timeout/time.Second)+1))
	http.Error(w, err.Error(), http.StatusServiceUnavailable)
}

func (s *Server) servePost(w http.ResponseWriter, r *http.Request) {
	remote, host, port := client(r)
	ctx, cancel := s.handshakeCtx(r)
	defer cancel()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodySize))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			http.Error(w, "offer too large", http.StatusRequestEntityTooLarge)
		} else {
			http.Error(w, "reading the offer: "+err.Error(), http.StatusBadRequest)
		}
		return
	}
	offer, err := decodeJSONSignal(body, "offer")
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	p, err := s.t.newPending(ctx, poolServer, false, offer.SDP, remote, announceHTTP, host, port)
	switch {
	case errors.Is(err, ErrTooManyConnections), errors.Is(err, ErrTooManyPending), errors.Is(err, errClosed):
		s.refuse(w, remote, err)
		return
	case err != nil:
		if s.log.IsDebug() {
			s.log.Debug("cannot answer an HTTP offer", "client", remote, "error", err)
		}
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	answer := signal{Type: "answer", SDP: p.sdp, Extensions: s.t.cfg.Extensions}
	w.Header().Set("Content-Type", "application/json")
	if _, err := w.Write(answer.json()); err != nil {
		p.close(err)
		return
	}
	if s.log.IsDebug() {
		s.log.Debug("answered an HTTP offer", "client", remote)
	}
}

func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	remote, host, port := client(r)
	if err := s.t.canReserve(remote); err != nil {
		s.refuse(w, remote, err) // before the upgrade: a plain 503
		return
	}
	ctx, cancel := s.handshakeCtx(r)
	defer cancel()
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// Any origin: the signalling of a public DHT serves pages from anywhere, and
		// the connection carries no credentials.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		return // Accept has answered
	}
	defer ws.CloseNow()
	stopWS := context.AfterFunc(s.ctx, func() { ws.CloseNow() }) // Close aborts it all
	defer stopWS()
	ws.SetReadLimit(s.cfg.MaxBodySize)

	p, err := s.t.newPending(ctx, poolServer, true, "", remote, announceWS, host, port)
	if err != nil {
		if s.log.IsDebug() {
			s.log.Debug("cannot offer over a WebSocket", "client", remote, "error", err)
		}
		return // CloseNow (deferred): a closing handshake could wait 10 s on the client
	}
	offer := signal{Type: "offer", SDP: p.sdp, Extensions: s.t.cfg.Extensions}
	if err := ws.Write(ctx, websocket.MessageBinary, offer.bencode()); err != nil {
		p.close(err)
		return
	}
	_, msg, err := ws.Read(ctx)
	if err != nil {
		p.close(err)
		return
	}
	answer, err := decodeBencodeSignal(msg, "answer")
	if err != nil {
		p.close(err)
		if s.log.IsDebug() {
			s.log.Debug("bad answer over a WebSocket", "client", remote, "error", err)
		}
		return
	}
	// Nothing more comes over the WebSocket; keep answering its control frames until the
	// data channel opens (or the offer times out), then close it, as both JS sides do.
	ws.CloseRead(context.Background())
	p.applied.Store(true)
	if err := p.applyAnswer(ctx, answer.SDP); err != nil {
		if s.log.IsDebug() {
			s.log.Debug("cannot apply a WebSocket answer", "client", remote, "error", err)
		}
		return
	}
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	stop := context.AfterFunc(s.ctx, wcancel)
	defer stop()
	if _, err := p.waitOpen(wctx); err != nil {
		return
	}
	if s.log.IsDebug() {
		s.log.Debug("answered over a WebSocket", "client", remote)
	}
	ws.Close(websocket.StatusNormalClosure, "")
}

// clientLimiter is the listener of Serve: at most max connections open at once (more
// wait in the listen queue, as with netutil.LimitListener), and at most perIP of them
// from one source (an IPv4 address, or an IPv6 /64), beyond which a connection is closed
// as soon as it is accepted, so that one host cannot hold every slot. It keys by the TCP
// peer, and leaves the trusted proxies out of the per-source cap (all their clients
// would count as one host): behind a reverse proxy, the per-request cap of ServeHTTP (by
// client(r)) is the one that sees clients.
type clientLimiter struct {
	net.Listener
	sem     chan struct{}
	perIP   int
	trusted []netip.Prefix
	log     hclog.Logger

	done      chan struct{}
	closeOnce sync.Once

	mu    sync.Mutex
	count map[netip.Addr]int
}

func newClientLimiter(l net.Listener, max, perIP int, trusted []netip.Prefix, log hclog.Logger) *clientLimiter {
	return &clientLimiter{
		Listener: l,
		sem:      make(chan struct{}, max),
		perIP:    perIP,
		trusted:  trusted,
		log:      log,
		done:     make(chan struct{}),
		count:    make(map[netip.Addr]int),
	}
}

func (l *clientLimiter) Accept() (net.Conn, error) {
	select {
	case l.sem <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.sem
			return nil, err
		}
		var key netip.Addr
		if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil && !inPrefixes(l.trusted, ap.Addr().Unmap()) {
			key = sourceKey(ap.Addr())
		}
		l.mu.Lock()
		refuse := key.IsValid() && l.count[key] >= l.perIP
		if !refuse && key.IsValid() {
			l.count[key]++
		}
		l.mu.Unlock()
		if refuse {
			if l.log.IsDebug() {
				l.log.Debug("connection refused: too many from one source", "client", c.RemoteAddr())
			}
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, l: l, key: key}, nil
	}
}

func (l *clientLimiter) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// sources returns how many sources hold connections and requests in progress (tests).
func (s *Server) sources() (conns, requests int) {
	s.mu.Lock()
	limiters := s.limiters
	requests = len(s.inflight)
	s.mu.Unlock()
	for _, l := range limiters {
		l.mu.Lock()
		conns += len(l.count)
		l.mu.Unlock()
	}
	return conns, requests
}

type limitedConn struct {
	net.Conn
	l        *clientLimiter
	key      netip.Addr
	released sync.Once // the source's count
	semOnce  sync.Once // the MaxClients slot
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.release()
	c.semOnce.Do(func() { <-c.l.sem })
	return err
}

// CloseWrite half-closes the connection, as net/http does once it has answered (so that
// the client sees the end at once) before lingering up to 500 ms: the source's count is
// released then, the MaxClients slot at Close.
func (c *limitedConn) CloseWrite() error {
	var err error
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		err = cw.CloseWrite()
	}
	c.release()
	return err
}

func (c *limitedConn) release() {
	c.released.Do(func() {
		l := c.l
		if c.key.IsValid() {
			l.mu.Lock()
			if l.count[c.key]--; l.count[c.key] <= 0 {
				delete(l.count, c.key)
			}
			l.mu.Unlock()
		}
	})
}
