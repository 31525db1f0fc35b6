package webrtc

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Defaults for Config fields left zero.
const (
	// DefaultTimeout is how long an offer or answer may stay unconnected, and (unless
	// Config.IdleTimeout says otherwise) how long an unkept connection may stay idle,
	// before it is closed: the JS implementation's peer_connection_timeout.
	DefaultTimeout = 30 * time.Second
	// DefaultReadyDelay is how long Connect, Wait and Dial wait after a data channel opens
	// for the peer's first message before they report the connection ready (see
	// Config.ReadyDelay).
	DefaultReadyDelay = 500 * time.Millisecond
	// DefaultMaxConns caps the open connections. An open connection costs the node 125 to
	// 145 KiB of resident memory and 10 goroutines (bench/webrtcload), so the cap holds a
	// node at about 150 MiB, and about 185 MiB after traffic, with the freed heap the Go
	// runtime keeps at GOGC=100.
	DefaultMaxConns = 1024
	// DefaultMaxPending caps the offers and answers waiting to connect, in each of the
	// three budgets (the signalling server's, relayed offers', the node's own).
	DefaultMaxPending = 64
	// DefaultMaxPendingPerIP caps the offers and answers waiting to connect in one budget
	// that one source asked for (a signalling client, or the node relaying an offer): an
	// IPv4 address, or an IPv6 /64.
	DefaultMaxPendingPerIP = 32
	// DefaultSendBuffer is how many bytes a connection may have queued, unsent, before Send
	// refuses more with ErrSendBufferFull.
	DefaultSendBuffer = 1 << 20
	// DefaultQueueLen is how many received messages wait for Receive before more are
	// dropped.
	DefaultQueueLen = 1024
	// DefaultMDNSTimeout bounds the resolution of a peer's mDNS (.local) candidates.
	DefaultMDNSTimeout = 2 * time.Second
	// DefaultMaxMDNSQueries caps the mDNS resolutions running at once.
	DefaultMaxMDNSQueries = 16
	// DefaultTotalSendBuffer caps the bytes queued, unsent, on all connections together.
	DefaultTotalSendBuffer = 32 << 20
)

// MaxMessageSize is the largest message the transport carries: one SCTP message of the
// default size every WebRTC stack accepts (64 KiB). It is above transport.MaxMessageSize.
const MaxMessageSize = 64 << 10

// Signalling is a bootstrap signalling method.
type Signalling int

const (
	// WebSocket is the signalling of webtorrent-dht up to 0.17: the server offers over a
	// WebSocket, bencoded, and the client answers the same way.
	WebSocket Signalling = iota + 1
	// HTTP is the signalling of webtorrent-dht 0.18: the client POSTs a JSON offer and the
	// server replies with a JSON answer.
	HTTP
)

// String returns "websocket" or "http".
func (s Signalling) String() string {
	switch s {
	case WebSocket:
		return "websocket"
	case HTTP:
		return "http"
	}
	return "Signalling(" + strconv.Itoa(int(s)) + ")"
}

// TLSMode says whether Dial uses TLS (wss://, https://) to reach a signalling server.
type TLSMode int

const (
	// TLSAuto tries TLS first and then plain text for host names, and plain text only for
	// IP literals (for which public certificates are rare), as webtorrent-dht 0.17 does.
	TLSAuto TLSMode = iota
	// TLSAlways uses TLS only.
	TLSAlways
	// TLSNever uses plain text only.
	TLSNever
)

// ICEServer is a STUN or TURN server.
type ICEServer struct {
	// URLs are the server's URLs, such as "stun:stun.l.google.com:19302" or
	// "turn:turn.example.com:3478?transport=udp".
	URLs []string
	// Username and Credential authenticate to a TURN server.
	Username, Credential string
}

// Config configures a Transport. The zero value (or a nil *Config) is ready for production
// use with the documented defaults; tests on one machine set Loopback.
type Config struct {
	// ICEServers are the STUN and TURN servers used to gather candidates (ParseICEServer
	// reads the one-URL form "turn:USER:PASSWORD@HOST:PORT"); a TURN server needs a
	// Username and Credential. Default none: host candidates only, which works on a LAN
	// and with peers that have public addresses, and never contacts a third party. A node
	// behind a NAT needs a STUN server to be reached from outside (it logs a warning when
	// it gathers only private host candidates and has none), and a TURN server when the
	// NAT maps each destination to a new port (symmetric) and the peer's does too. The JS
	// implementation (simple-peer) uses public STUN servers by default.
	ICEServers []ICEServer
	// RelayOnly gathers and uses relay (TURN) candidates only, WebRTC's
	// iceTransportPolicy "relay": peers see the TURN server's address, never ours. It
	// needs a TURN server in ICEServers.
	RelayOnly bool

	// Loopback sets the transport up for tests on one machine, including inside a network
	// namespace whose only interface is lo: loopback candidates are gathered, only on
	// 127.0.0.0/8 (and ::1 with IPv6) unless InterfaceFilter or IPFilter say otherwise,
	// and peers' mDNS candidates are dropped rather than resolved.
	Loopback bool

	// InterfaceFilter, when set, limits candidate gathering to the interfaces whose name it
	// accepts. IPFilter, when set, limits it to the local addresses it accepts.
	InterfaceFilter func(name string) bool
	IPFilter        func(ip netip.Addr) bool

	// IPv6 also gathers and pairs IPv6 candidates. By default only IPv4 is used: the JS
	// implementation encodes node addresses as IPv4 only, and a JS peer whose selected
	// candidate pair is IPv6 breaks.
	IPv6 bool

	// NoMDNS drops peers' mDNS host candidates (names ending in ".local", what Chromium
	// gathers by default) instead of resolving them with a multicast DNS query on the
	// local network. Loopback implies it.
	NoMDNS bool
	// MDNSTimeout bounds the resolution of one offer's or answer's mDNS candidates;
	// candidates still unresolved are dropped. Default 2 s.
	MDNSTimeout time.Duration
	// MaxMDNSQueries caps the mDNS resolutions (each a multicast query on the local
	// network) running at once in the transport, whatever the number of SDPs being
	// prepared; a name that finds no room within MDNSTimeout is dropped. Each SDP has at
	// most 8 distinct names resolved. Default 16.
	MaxMDNSQueries int

	// Timeout is how long an offer or answer may wait to connect before it is closed.
	// Default 30 s, the JS implementation's peer_connection_timeout.
	Timeout time.Duration
	// IdleTimeout is how long an open connection that is not kept (see Transport.Keep)
	// may go without receiving a message before it is closed. Default Timeout.
	IdleTimeout time.Duration

	// ReadyDelay bounds how long a new connection holds what is sent on it until the peer
	// shows it is ready. A JS peer drops messages that reach it before its own side
	// reports the connection (its "connect" event, some time after the channel opened),
	// and a message from the peer proves that its side is ready (JS signalling servers
	// send one at once). Until then, sends are held (Send still returns at once) and the
	// peer is probed with a KRPC ping (carrying the first held query's node ID) on a
	// timer derived from the connection's round-trip time; its answer, or any message,
	// releases the held messages at once. ReadyDelay after the channel opened they are
	// released anyway. Not for a peer that is one of ours, which sends a message first.
	// Dial waits, up to ReadyDelay, for the server's first message. Default 500 ms;
	// negative: send at once, hold nothing.
	ReadyDelay time.Duration

	// MaxConns caps the open connections plus those being set up; beyond it new offers and
	// answers fail with ErrTooManyConnections. Default 1024.
	MaxConns int
	// MaxPending caps the offers and answers waiting to connect in each of three separate
	// budgets, so that a flood of one kind cannot starve the others: the signalling
	// server's (answers and WebSocket offers to its clients), the relayed offers'
	// (NewAnswer: offers peers relay in peer_connection and signals) and the node's own
	// (NewOffer, for its lookups, and Dial). When a budget is full, an offer or answer for
	// a source holding fewer than another takes the room of that source's oldest
	// unconnected one (closed, counted in Stats.Evicted); otherwise it fails with
	// ErrTooManyPending. Default 64.
	MaxPending int
	// MaxPendingPerIP caps the offers and answers waiting to connect in one budget that
	// were made on behalf of one source: the signalling server's client, or the node that
	// relayed an offer (see NewAnswer). A source is an IPv4 address, or an IPv6 /64 (one
	// host routinely has a whole /64). Many users behind one NAT (a carrier NAT, a
	// campus, every client of one TURN server) are one source: 20 nodes behind one NAT
	// joining at once need more than 8 (internal/natlab TestCrowdBehindOneNAT), and a
	// full budget is shared between sources by eviction anyway. Default 32.
	MaxPendingPerIP int

	// SendBuffer is how many bytes a connection may have queued and unsent (the data
	// channel's buffered amount) before Send refuses more with ErrSendBufferFull rather
	// than queueing without bound. Default 1 MiB.
	SendBuffer int
	// TotalSendBuffer caps the bytes queued and unsent on all connections together
	// (without it, MaxConns x SendBuffer: 512 MiB by default); beyond it Send refuses
	// with ErrSendBufferFull too. Default 32 MiB.
	TotalSendBuffer int
	// QueueLen is how many received messages may wait for Receive; beyond it messages
	// are dropped (and counted in Stats.Dropped), as a full UDP socket buffer drops
	// datagrams. Default 1024.
	QueueLen int

	// Extensions are the strings sent in the "extensions" list of our signalling offers
	// and answers. Default none.
	Extensions []string

	// Advertise is the public address ("host:port") of our signalling server, announced to
	// every peer as the first message on every connection (JSON http_server, or bencoded
	// ws_server on connections made over WebSocket signalling) so that peers can
	// bootstrap from us later. Empty: connections made by a Server announce the local
	// address the signalling request arrived on, and other connections announce nothing
	// (a WebRTC-only node). Set it when the public address differs from the bind address,
	// and to a name matching the certificate when the Server uses TLS.
	Advertise string

	// DialOrder is the order in which Dial tries the signalling methods. Default
	// WebSocket, then HTTP.
	DialOrder []Signalling
	// DialTLS says whether Dial uses TLS. Default TLSAuto.
	DialTLS TLSMode
	// TLSConfig is the TLS client configuration Dial uses (for example RootCAs). Nil:
	// the system's defaults.
	TLSConfig *tls.Config

	// Logger receives the transport's logs (connections opening and closing at Debug,
	// per-message events never) and pion's, named "pion" and one level lower than pion
	// logs them (pion reports routine events as warnings and errors). Nil discards them.
	Logger hclog.Logger
}

// Validate reports the first problems found in c. A nil Config is valid.
func (c *Config) Validate() error {
	if c == nil {
		return nil
	}
	var errs []error
	neg := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("webrtc: negative %s %d", name, v))
		}
	}
	neg("MDNSTimeout", int64(c.MDNSTimeout))
	neg("MaxMDNSQueries", int64(c.MaxMDNSQueries))
	neg("TotalSendBuffer", int64(c.TotalSendBuffer))
	neg("Timeout", int64(c.Timeout))
	neg("IdleTimeout", int64(c.IdleTimeout))
	neg("MaxConns", int64(c.MaxConns))
	neg("MaxPending", int64(c.MaxPending))
	neg("MaxPendingPerIP", int64(c.MaxPendingPerIP))
	neg("SendBuffer", int64(c.SendBuffer))
	neg("QueueLen", int64(c.QueueLen))
	if c.TotalSendBuffer > 0 && c.TotalSendBuffer < MaxMessageSize {
		errs = append(errs, fmt.Errorf("webrtc: TotalSendBuffer %d is below MaxMessageSize %d", c.TotalSendBuffer, MaxMessageSize))
	}
	if c.SendBuffer > 0 && c.SendBuffer < MaxMessageSize {
		errs = append(errs, fmt.Errorf("webrtc: SendBuffer %d is below MaxMessageSize %d", c.SendBuffer, MaxMessageSize))
	}
	for i, s := range c.ICEServers {
		if len(s.URLs) == 0 {
			errs = append(errs, fmt.Errorf("webrtc: ICEServers[%d] has no URLs", i))
		}
	}
	errs = append(errs, c.validateICE()...)
	if c.Advertise != "" {
		if _, _, err := splitHostPort(c.Advertise); err != nil {
			errs = append(errs, fmt.Errorf("webrtc: Advertise: %w", err))
		}
	}
	seen := map[Signalling]bool{}
	for _, s := range c.DialOrder {
		if s != WebSocket && s != HTTP {
			errs = append(errs, fmt.Errorf("webrtc: DialOrder: unknown %v", s))
		} else if seen[s] {
			errs = append(errs, fmt.Errorf("webrtc: DialOrder: %v twice", s))
		}
		seen[s] = true
	}
	if c.DialTLS < TLSAuto || c.DialTLS > TLSNever {
		errs = append(errs, fmt.Errorf("webrtc: unknown DialTLS %d", c.DialTLS))
	}
	return errors.Join(errs...)
}

// withDefaults returns a copy of c (which may be nil) with every zero field set to its
// default. Slices are copied, so that the caller may change its Config afterwards.
func (c *Config) withDefaults() Config {
	var d Config
	if c != nil {
		d = *c
	}
	d.ICEServers = append([]ICEServer(nil), d.ICEServers...)
	for i := range d.ICEServers {
		d.ICEServers[i].URLs = append([]string(nil), d.ICEServers[i].URLs...)
	}
	d.Extensions = append([]string{}, d.Extensions...) // non-nil: sent as a list
	d.DialOrder = append([]Signalling(nil), d.DialOrder...)
	if d.TLSConfig != nil {
		d.TLSConfig = d.TLSConfig.Clone()
	}
	if d.MDNSTimeout == 0 {
		d.MDNSTimeout = DefaultMDNSTimeout
	}
	if d.MaxMDNSQueries == 0 {
		d.MaxMDNSQueries = DefaultMaxMDNSQueries
	}
	if d.TotalSendBuffer == 0 {
		d.TotalSendBuffer = DefaultTotalSendBuffer
	}
	if d.Timeout == 0 {
		d.Timeout = DefaultTimeout
	}
	if d.IdleTimeout == 0 {
		d.IdleTimeout = d.Timeout
	}
	if d.ReadyDelay == 0 {
		d.ReadyDelay = DefaultReadyDelay
	}
	if d.MaxConns == 0 {
		d.MaxConns = DefaultMaxConns
	}
	if d.MaxPending == 0 {
		d.MaxPending = DefaultMaxPending
	}
	if d.MaxPendingPerIP == 0 {
		d.MaxPendingPerIP = DefaultMaxPendingPerIP
	}
	if d.SendBuffer == 0 {
		d.SendBuffer = DefaultSendBuffer
	}
	if d.QueueLen == 0 {
		d.QueueLen = DefaultQueueLen
	}
	if len(d.DialOrder) == 0 {
		d.DialOrder = []Signalling{WebSocket, HTTP}
	}
	if d.Logger == nil {
		d.Logger = hclog.NewNullLogger()
	}
	return d
}

// splitHostPort splits "host:port" and checks that host is not empty and port is in
// 1..65535.
func splitHostPort(s string) (string, int, error) {
	host, ps, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(ps)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port in %q", s)
	}
	if host == "" {
		return "", 0, fmt.Errorf("no host in %q", s)
	}
	return host, port, nil
}
