package webrtc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/transport"
)

// Errors of this package; match them with errors.Is.
var (
	// ErrTooManyConnections is returned when Config.MaxConns connections are open or being
	// set up.
	ErrTooManyConnections = errors.New("webrtc: too many connections")
	// ErrTooManyPending is returned when Config.MaxPending offers and answers of one
	// budget (or Config.MaxPendingPerIP for one source) are waiting to connect, and none
	// can be evicted for this one; and by an offer or answer evicted while it was made.
	ErrTooManyPending = errors.New("webrtc: too many pending offers and answers")
	// ErrSendBufferFull is returned by Send when the connection already has
	// Config.SendBuffer bytes queued: the peer or the path is slower than the sender.
	ErrSendBufferFull = errors.New("webrtc: send buffer full")
)

var errClosed = fmt.Errorf("webrtc: transport closed: %w", net.ErrClosed)

// Transport is a transport.Transport over WebRTC data channels: one connection (ICE,
// DTLS, SCTP) with one ordered, reliable data channel per peer, the peer's address being the remote
// address of the connection's selected ICE candidate pair. Connections are made with
// NewOffer and NewAnswer (signals relayed by the DHT), Dial (a signalling client) and
// Server (a signalling server). All methods are safe for concurrent use.
type Transport struct {
	cfg    Config
	log    hclog.Logger
	stk    stack      // what every connection shares (peer_native.go, peer_js.go)
	nom    nominators // offers' prompt nomination (nominate_native.go)
	adHost string     // Config.Advertise split; adPort 0: none
	adPort int

	certMu sync.Mutex
	cert   *dtlsCertificate

	mu      sync.Mutex
	closed  bool
	conns   map[netip.AddrPort]*conn
	aliases map[netip.AddrPort]netip.AddrPort // signalling address -> peer address
	pending map[*pending]struct{}             // every offer and answer waiting to connect
	pools   [numPools]pool                    // the same, by budget
	seq     uint64                            // numbers reservations
	notify  []func(netip.AddrPort)

	queue     chan transport.Packet
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // readers and callbacks that Close waits for

	sendQueued atomic.Int64 // bytes queued on all connections, as each last saw (conn.buffered)

	noted     atomic.Bool // candidateNote ran
	failNoted atomic.Bool // explain logged
	mdns      mdnsQuerier
	mdnsSem   chan struct{}                                             // Config.MaxMDNSQueries
	query     func(ctx context.Context, name string) (netip.Addr, bool) // queryMDNS; tests replace it
	stats     counters
}

var (
	_ transport.Transport      = (*Transport)(nil)
	_ transport.Resolver       = (*Transport)(nil)
	_ transport.ClosedNotifier = (*Transport)(nil)
	_ transport.Keeper         = (*Transport)(nil)
)

type counters struct {
	messagesIn, messagesOut, bytesIn, bytesOut atomic.Uint64
	dropped, oversize, sendErrors, bufferFull  atomic.Uint64
	probes                                     atomic.Uint64
	opened, closedConns, failed, evicted       atomic.Uint64
}

// Stats are a transport's counters.
type Stats struct {
	Conns   int // connections open now
	Pending int // offers and answers waiting to connect now

	Opened uint64 // connections opened since the start
	Closed uint64 // open connections that closed since the start
	Failed uint64 // offers and answers that never connected (timed out, closed, failed)
	// Evicted counts, among the failed, the unconnected offers and answers closed to make
	// room in a full budget for a source that held fewer (see Config.MaxPending).
	Evicted uint64

	MessagesIn, BytesIn   uint64 // messages received (and queued for Receive)
	MessagesOut, BytesOut uint64 // messages sent
	Dropped               uint64 // received messages dropped because the Receive queue was full
	Oversize              uint64 // received messages dropped for exceeding MaxMessageSize
	SendErrors            uint64 // Send calls that failed on an open transport
	BufferFull            uint64 // among them, those refused with ErrSendBufferFull
	// Probes counts the readiness pings sent to peers that had not yet shown they are
	// ready (see Config.ReadyDelay); their answers are not delivered.
	Probes uint64
}

// New returns a transport. A nil cfg means the zero Config; cfg is copied.
func New(cfg *Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	t := &Transport{
		cfg:     c,
		log:     c.Logger.Named("webrtc"),
		conns:   make(map[netip.AddrPort]*conn),
		aliases: make(map[netip.AddrPort]netip.AddrPort),
		pending: make(map[*pending]struct{}),
		queue:   make(chan transport.Packet, c.QueueLen),
		done:    make(chan struct{}),
	}
	for i := range t.pools {
		t.pools[i] = pool{entries: make(map[*pending]struct{}), sources: make(map[netip.Addr]int)}
	}
	t.query = t.queryMDNS
	t.mdnsSem = make(chan struct{}, c.MaxMDNSQueries)
	if c.Advertise != "" {
		t.adHost, t.adPort, _ = splitHostPort(c.Advertise)
	}
	if err := t.initStack(); err != nil {
		return nil, err
	}
	if _, err := t.certificate(); err != nil {
		return nil, err
	}
	t.initNominators() // nominate_native.go
	return t, nil
}

// LocalAddr returns the zero AddrPort: a WebRTC transport is reached only through
// connections, each with its own address.
func (t *Transport) LocalAddr() netip.AddrPort { return netip.AddrPort{} }

// Send sends b as one binary data-channel message on the connection to `to` (or to the
// peer an alias made by Dial stands for). It returns at once: an error satisfying
// errors.Is(err, transport.ErrUnreachable) when there is no open connection (the transport
// never opens one by itself), transport.ErrMessageTooLarge beyond MaxMessageSize,
// ErrSendBufferFull when the connection has Config.SendBuffer bytes queued, and an error
// satisfying errors.Is(err, net.ErrClosed) after Close.
func (t *Transport) Send(to netip.AddrPort, b []byte) error {
	if t.isClosed() {
		return errClosed
	}
	if len(b) > MaxMessageSize {
		t.stats.sendErrors.Add(1)
		return fmt.Errorf("webrtc: send %d bytes (limit %d): %w", len(b), MaxMessageSize, transport.ErrMessageTooLarge)
	}
	c := t.lookup(transport.Unmap(to))
	if c == nil {
		t.stats.sendErrors.Add(1)
		return fmt.Errorf("webrtc: no connection to %v: %w", to, transport.ErrUnreachable)
	}
	if err := c.send(b); err != nil {
		t.stats.sendErrors.Add(1)
		if errors.Is(err, ErrSendBufferFull) {
			t.stats.bufferFull.Add(1)
		}
		if t.isClosed() {
			return errClosed
		}
		return err
	}
	return nil
}

// lookup returns the open connection to addr, directly or through an alias.
func (t *Transport) lookup(addr netip.AddrPort) *conn {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.conns[addr]; c != nil {
		return c
	}
	if real, ok := t.aliases[addr]; ok {
		return t.conns[real]
	}
	return nil
}

// Receive returns the next message received on any connection. It returns ctx.Err() when
// ctx ends first and an error satisfying errors.Is(err, net.ErrClosed) once the transport
// is closed; messages still queued then are discarded.
func (t *Transport) Receive(ctx context.Context) (transport.Packet, error) {
	if t.isClosed() {
		return transport.Packet{}, errClosed
	}
	select {
	case p := <-t.queue:
		return p, nil
	case <-ctx.Done():
		return transport.Packet{}, ctx.Err()
	case <-t.done:
		return transport.Packet{}, errClosed
	}
}

// Resolve returns the peer address that messages sent to `to` go to: the address of the
// connection Dial made through the signalling server at `to`, or `to` itself
// (transport.Resolver).
func (t *Transport) Resolve(to netip.AddrPort) netip.AddrPort {
	to = transport.Unmap(to)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conns[to] == nil {
		if real, ok := t.aliases[to]; ok {
			return real
		}
	}
	return to
}

// NotifyClosed registers f to be called with the peer address of every open connection
// that closes while the transport is open, whatever closed it: the peer, a failure, the
// idle timeout, Disconnect (transport.ClosedNotifier). f runs on a goroutine of the
// transport, never the caller's, and must not block. Several functions may be
// registered.
func (t *Transport) NotifyClosed(f func(peer netip.AddrPort)) {
	if f == nil {
		return
	}
	t.mu.Lock()
	t.notify = append(t.notify, f)
	t.mu.Unlock()
}

// Reliable reports true (transport.Reliable): a data channel delivers every message, in
// order, for as long as its connection is open; a peer that goes away closes it.
func (t *Transport) Reliable() bool { return true }

// Keep marks the connection to addr (or to the peer an alias stands for) as kept, or not
// (transport.Keeper). A kept connection stays open however long it is idle; one that is
// not kept is closed once it has received nothing for Config.IdleTimeout. The DHT keeps the
// connections of the nodes in its routing table, as the JS implementation does. Keep
// reports whether there is such a connection; it does not block.
func (t *Transport) Keep(addr netip.AddrPort, keep bool) bool {
	c := t.lookup(transport.Unmap(addr))
	if c == nil {
		return false
	}
	c.kept.Store(keep)
	return true
}

// Disconnect closes the connection to addr (or to the peer an alias stands for), if
// there is one, and reports whether there was. The functions registered with
// NotifyClosed are called.
func (t *Transport) Disconnect(addr netip.AddrPort) bool {
	c := t.lookup(transport.Unmap(addr))
	if c == nil {
		return false
	}
	c.close(true)
	return true
}

// Peer describes an open connection.
type Peer struct {
	// Addr is the peer's address: the remote address of the selected ICE candidate pair.
	Addr netip.AddrPort
	// Aliases are the signalling addresses that Dial made stand for Addr.
	Aliases []netip.AddrPort
	// Server is the signalling server ("host:port") the peer announced in its first
	// message, or "".
	Server string
	// Kept is what Keep set.
	Kept bool
	// Candidates are the ICE candidate types of the selected pair, "local/remote", each
	// host, srflx, prflx or relay: "host/srflx" is a direct connection to a peer behind
	// a NAT, "relay/…" or "…/relay" goes through a TURN server.
	Candidates string
	// Opened is when the data channel opened; LastReceived when the last message came.
	Opened, LastReceived time.Time
}

// Peers lists the open connections, in no particular order.
func (t *Transport) Peers() []Peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Peer, 0, len(t.conns))
	idx := make(map[netip.AddrPort]int, len(t.conns))
	for addr, c := range t.conns {
		idx[addr] = len(out)
		p := Peer{Addr: addr, Kept: c.kept.Load(), Opened: c.opened, Candidates: c.pair}
		if s := c.server.Load(); s != nil {
			p.Server = *s
		}
		if n := c.lastRecv.Load(); n != 0 {
			p.LastReceived = time.Unix(0, n)
		}
		out = append(out, p)
	}
	for alias, real := range t.aliases {
		if i, ok := idx[real]; ok {
			out[i].Aliases = append(out[i].Aliases, alias)
		}
	}
	return out
}

// SignallingServers returns the signalling servers ("host:port") that the peers of the
// open connections announced, sorted and without duplicates: the nodes a later start
// can bootstrap from (a WebRTC-only node cannot be dialled).
func (t *Transport) SignallingServers() []string {
	t.mu.Lock()
	var out []string
	for _, c := range t.conns {
		if s := c.server.Load(); s != nil {
			out = append(out, *s)
		}
	}
	t.mu.Unlock()
	slices.Sort(out)
	return slices.Compact(out)
}

// Stats returns a snapshot of the transport's counters.
func (t *Transport) Stats() Stats {
	t.mu.Lock()
	conns, pend := len(t.conns), len(t.pending)
	t.mu.Unlock()
	s := &t.stats
	return Stats{
		Conns:       conns,
		Pending:     pend,
		Opened:      s.opened.Load(),
		Closed:      s.closedConns.Load(),
		Failed:      s.failed.Load(),
		Evicted:     s.evicted.Load(),
		MessagesIn:  s.messagesIn.Load(),
		BytesIn:     s.bytesIn.Load(),
		MessagesOut: s.messagesOut.Load(),
		BytesOut:    s.bytesOut.Load(),
		Dropped:     s.dropped.Load(),
		Oversize:    s.oversize.Load(),
		SendErrors:  s.sendErrors.Load(),
		BufferFull:  s.bufferFull.Load(),
		Probes:      s.probes.Load(),
	}
}

// Close closes every connection, offer and answer, makes pending and later Receive calls
// return net.ErrClosed, and waits for the transport's goroutines. The functions
// registered with NotifyClosed are not called for the connections it closes. It is
// idempotent: later calls return nil.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.closed = true
		close(t.done)
		conns := make([]*conn, 0, len(t.conns))
		for _, c := range t.conns {
			conns = append(conns, c)
		}
		pend := make([]*pending, 0, len(t.pending))
		for p := range t.pending {
			pend = append(pend, p)
		}
		t.mu.Unlock()

		// Closing a connection takes a few milliseconds (ICE, DTLS, SCTP): close
		// them a few at a time.
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for _, p := range pend {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				p.close(errClosed)
			}()
		}
		for _, c := range conns {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				c.close(false)
			}()
		}
		wg.Wait()
		t.wg.Wait()
		t.mdns.close()
		if t.log.IsDebug() {
			t.log.Debug("closed", "connections", len(conns), "pending", len(pend))
		}
	})
	return nil
}

func (t *Transport) isClosed() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// track runs f as a goroutine that Close waits for, unless the transport is closed.
func (t *Transport) track(f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
	return true
}

// enter registers a callback running on someone else's goroutine (a timer, pion) with
// Close, which waits for it; it returns false when the transport is closed. The caller
// calls t.wg.Done when it returns true.
func (t *Transport) enter() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

// announcement returns the first message for a new connection, given the style and
// address its maker chose (a Server's local address when Config.Advertise is empty).
func (t *Transport) announcement(style announceStyle, host string, port int) []byte {
	if t.adPort != 0 {
		host, port = t.adHost, t.adPort
	}
	if style == announceNone || port == 0 {
		return nil
	}
	return encodeAnnouncement(style, host, port)
}

// defaultStyle is the announcement style of connections that no signalling made: JSON
// http_server (webtorrent-dht 0.18), when we advertise a server.
func (t *Transport) defaultStyle() announceStyle {
	if t.adPort != 0 {
		return announceHTTP
	}
	return announceNone
}
