package webrtc

import (
	"bufio"
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

	"github.com/hashicorp/go-hclog"
)

// Proxy headers ServerConfig.ProxyHeader may name.
const (
	HeaderXForwardedFor = "X-Forwarded-For"
	HeaderForwarded     = "Forwarded"
)

// Signalling request kinds, as ServerStats counts them.
const (
	RequestWebSocket = "websocket" // a WebSocket upgrade (webtorrent-dht up to 0.17)
	RequestPost      = "post"      // a POSTed offer (webtorrent-dht 0.18)
	RequestOptions   = "options"   // a CORS preflight
	RequestOther     = "other"     // any other method, refused with 405
)

// RequestCount is the number of signalling requests of one kind answered with one HTTP
// status (101 for a WebSocket upgrade that succeeded).
type RequestCount struct {
	Kind   string // RequestWebSocket, RequestPost, RequestOptions or RequestOther
	Status int
	Count  uint64
}

// ServerStats are a Server's counters.
type ServerStats struct {
	// Requests counts the requests answered, by kind and status, sorted by kind then
	// status.
	Requests []RequestCount
	// CertReloads counts the times the TLS certificate was loaded again (files changed,
	// or ReloadCertificate); CertReloadErrors the attempts that failed, which keep the
	// previous certificate.
	CertReloads, CertReloadErrors uint64
}

// requestKey is a RequestCount's key.
type requestKey struct {
	kind   string
	status int
}

// serverCounters are a Server's counters.
type serverCounters struct {
	mu       sync.Mutex
	requests map[requestKey]uint64
}

func (c *serverCounters) count(kind string, status int) {
	c.mu.Lock()
	if c.requests == nil {
		c.requests = make(map[requestKey]uint64)
	}
	c.requests[requestKey{kind, status}]++
	c.mu.Unlock()
}

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	var st ServerStats
	s.counts.mu.Lock()
	for k, n := range s.counts.requests {
		st.Requests = append(st.Requests, RequestCount{Kind: k.kind, Status: k.status, Count: n})
	}
	s.counts.mu.Unlock()
	sortRequests(st.Requests)
	if s.certs != nil {
		st.CertReloads, st.CertReloadErrors = s.certs.counts()
	}
	return st
}

func sortRequests(r []RequestCount) {
	for i := 1; i < len(r); i++ {
		for j := i; j > 0 && (r[j].Kind < r[j-1].Kind || r[j].Kind == r[j-1].Kind && r[j].Status < r[j-1].Status); j-- {
			r[j], r[j-1] = r[j-1], r[j]
		}
	}
}

// requestKind returns the kind of a signalling request.
func requestKind(r *http.Request) string {
	switch {
	case isUpgrade(r):
		return RequestWebSocket
	case r.Method == http.MethodPost:
		return RequestPost
	case r.Method == http.MethodOptions:
		return RequestOptions
	}
	return RequestOther
}

// statusWriter records the status a handler answers with. It passes Hijack (the
// WebSocket upgrade, counted as 101) and the http.ResponseController methods through.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("webrtc: the ResponseWriter cannot be hijacked")
	}
	c, rw, err := hj.Hijack()
	if err == nil && w.status == 0 {
		w.status = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// clientKey is the request context key of the client address ServeHTTP worked out.
type clientKey struct{}

// clientAddr returns the address of the client that sent r: the connection's peer, or,
// when that peer is a trusted proxy, the address the proxy header gives (the last one
// not itself a trusted proxy). An invalid result means none could be worked out.
func (s *Server) clientAddr(r *http.Request) netip.Addr {
	var peer netip.Addr
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		peer = ap.Addr().Unmap()
	}
	if !s.trusted(peer) {
		return peer
	}
	var hops []string
	if s.cfg.ProxyHeader == HeaderForwarded {
		hops = forwardedFor(r.Header.Values(HeaderForwarded))
	} else {
		for _, v := range r.Header.Values(HeaderXForwardedFor) {
			hops = append(hops, strings.Split(v, ",")...)
		}
	}
	addr := peer
	for i := len(hops) - 1; i >= 0; i-- {
		ip, ok := parseHop(hops[i])
		if !ok {
			break // an address we cannot read: the last proxy's is what we know
		}
		addr = ip
		if !s.trusted(ip) {
			break
		}
	}
	return addr
}

// trusted reports whether ip is in ServerConfig.TrustedProxies.
func (s *Server) trusted(ip netip.Addr) bool { return inPrefixes(s.cfg.TrustedProxies, ip) }

// inPrefixes reports whether ip is in one of ps.
func inPrefixes(ps []netip.Prefix, ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	for _, p := range ps {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// forwardedFor returns the for= values of Forwarded headers (RFC 7239), in order.
func forwardedFor(values []string) []string {
	var out []string
	for _, v := range values {
		for elem := range strings.SplitSeq(v, ",") {
			found := ""
			for pair := range strings.SplitSeq(elem, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
					found = strings.Trim(strings.TrimSpace(val), `"`)
				}
			}
			out = append(out, found) // "" when the element has none: unreadable
		}
	}
	return out
}

// parseHop parses one proxy hop: an IP, ip:port, [ipv6] or [ipv6]:port.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}

// withClient returns r with its client address (see clientAddr) in its context, where
// client finds it.
func (s *Server) withClient(r *http.Request) *http.Request {
	if len(s.cfg.TrustedProxies) == 0 {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), clientKey{}, s.clientAddr(r)))
}

// certReloader holds the server's TLS certificate and loads it again when its files
// change (checked at each handshake, by modification time and size) or when asked.
type certReloader struct {
	certFile, keyFile string
	log               hclog.Logger

	mu              sync.Mutex
	cert            *tls.Certificate
	stamp           [2]fileStamp // of the files last tried
	reloads, errors uint64
}

// fileStamp identifies a version of a file.
type fileStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.ModTime(), fi.Size()}
}

// newCertReloader loads the certificate.
func newCertReloader(certFile, keyFile string, log hclog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := c.load(); err != nil {
		return nil, fmt.Errorf("webrtc: loading the TLS certificate: %w", err)
	}
	c.reloads = 0
	return c, nil
}

// load reads the files; on failure the previous certificate stays. c.mu must be held or
// c not yet shared.
func (c *certReloader) load() error {
	c.stamp = [2]fileStamp{stampOf(c.certFile), stampOf(c.keyFile)}
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		c.errors++
		return err
	}
	c.cert = &cert
	c.reloads++
	return nil
}

// get is tls.Config.GetCertificate.
func (c *certReloader) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := [2]fileStamp{stampOf(c.certFile), stampOf(c.keyFile)}; now != c.stamp {
		if err := c.load(); err != nil {
			c.log.Warn("cannot reload the TLS certificate, keeping the previous one", "cert", c.certFile, "key", c.keyFile, "error", err)
		} else {
			c.log.Info("TLS certificate reloaded", "cert", c.certFile)
		}
	}
	return c.cert, nil
}

// reload loads the files now.
func (c *certReloader) reload() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.load()
}

func (c *certReloader) counts() (reloads, errs uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reloads, c.errors
}

// ReloadCertificate loads the TLS certificate and key files again (as the server also
// does by itself when they change): later handshakes use the new certificate, open
// connections keep theirs. On failure the previous certificate stays in use. It returns
// nil for a server without TLS.
func (s *Server) ReloadCertificate() error {
	if s.certs == nil {
		return nil
	}
	if err := s.certs.reload(); err != nil {
		return fmt.Errorf("webrtc: reloading the TLS certificate: %w", err)
	}
	return nil
}

// unmapPrefix turns an IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) into its IPv4 form,
// which is how client addresses are compared.
func unmapPrefix(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked()
	}
	return p.Masked()
}
