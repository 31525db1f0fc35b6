package webrtc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/wdht/wdht/internal/ratelimit"
)

var (
	errTimeout     = errors.New("webrtc: not connected within the timeout")
	errAbandoned   = errors.New("webrtc: offer or answer closed")
	errFailed      = errors.New("webrtc: connection failed")
	errConnClosed  = errors.New("webrtc: connection closed")
	errAppliedOnce = errors.New("webrtc: Connect called twice")
	// errEvicted ends an unconnected offer or answer whose budget was full when one came
	// from a source holding fewer of them (see pool.victim).
	errEvicted = fmt.Errorf("%w: evicted for a source that held fewer", ErrTooManyPending)
)

// Offer is an outgoing connection being set up: a connection with its data channel,
// and the offer (with every candidate in it) to send to the peer. Connect applies the
// peer's answer. An Offer that does not connect is closed after Config.Timeout; Close
// abandons it sooner.
type Offer struct{ p *pending }

// Answer is an incoming connection being set up from a peer's offer: the answer to send
// back, and Wait for the connection to open. An Answer that does not connect is closed
// after Config.Timeout; Close abandons it sooner.
type Answer struct{ p *pending }

// NewOffer creates a connection and its data channel (ordered, reliable, with a
// random label, as the JS implementation makes it) and returns once ICE gathering has
// completed, so that the offer's SDP holds every candidate (no trickle). It fails with
// ErrTooManyConnections or ErrTooManyPending when a cap is reached.
func (t *Transport) NewOffer(ctx context.Context) (*Offer, error) {
	p, err := t.newPending(ctx, poolOwn, true, "", netip.Addr{}, t.defaultStyle(), "", 0)
	if err != nil {
		return nil, err
	}
	return &Offer{p}, nil
}

// SDP returns the offer's session description, to send to the peer as
// {"type":"offer","sdp":...}.
func (o *Offer) SDP() string { return o.p.sdp }

// Connect applies the peer's answer and waits until the data channel is open, then
// returns the peer's address (what is sent before the peer is ready waits for it, see
// Config.ReadyDelay). If ctx ends first, Connect
// returns ctx's error and the connection attempt goes on: it becomes an ordinary
// connection if it opens, and is closed at the timeout otherwise (Close abandons it).
// Connect may be called once.
func (o *Offer) Connect(ctx context.Context, answer string) (netip.AddrPort, error) {
	if !o.p.applied.CompareAndSwap(false, true) {
		return netip.AddrPort{}, errAppliedOnce
	}
	if err := o.p.applyAnswer(ctx, answer); err != nil {
		return netip.AddrPort{}, err
	}
	addr, err := o.p.wait(ctx)
	return addr, o.p.explain(err) // ice.go
}

// applyAnswer applies the peer's answer to an offer; on failure the offer is closed.
func (p *pending) applyAnswer(ctx context.Context, answer string) error {
	if err := p.endedErr(); err != nil {
		return err
	}
	if len(answer) > maxSDPSize {
		p.close(errSignal)
		return fmt.Errorf("%w: answer of %d bytes", errSignal, len(answer))
	}
	sdp := p.t.prepareRemoteSDP(ctx, answer)
	if err := p.pe.applyAnswer(sdp); err != nil {
		p.close(err)
		return err
	}
	return nil
}

// Close abandons the offer if it has not connected; a connection it opened belongs to
// the transport (see Transport.Disconnect). It is idempotent and returns nil.
func (o *Offer) Close() error {
	o.p.close(errAbandoned)
	return nil
}

// NewAnswer applies a peer's offer (its SDP, with every candidate in it), creates the
// connection that answers it and returns once ICE gathering has completed, so that
// the answer's SDP holds every candidate. It counts against the budget of relayed
// offers (see Config.MaxPending), apart from the signalling server's and the node's own
// offers. remote is the IP address the answer is made on behalf of, the node that relayed
// the offer, counted (by its source: an IPv4 address, or an IPv6 /64) against
// Config.MaxPendingPerIP; the zero Addr is counted only in the total. The peer's data
// channel is accepted whatever its label. NewAnswer fails with ErrTooManyConnections or
// ErrTooManyPending when a cap is reached.
func (t *Transport) NewAnswer(ctx context.Context, offer string, remote netip.Addr) (*Answer, error) {
	p, err := t.newPending(ctx, poolRelayed, false, offer, remote, t.defaultStyle(), "", 0)
	if err != nil {
		return nil, err
	}
	return &Answer{p}, nil
}

// SDP returns the answer's session description, to send to the peer as
// {"type":"answer","sdp":...}.
func (a *Answer) SDP() string { return a.p.sdp }

// Wait waits until the data channel is open and returns the peer's address (what is sent
// before the peer is ready waits for it, see Config.ReadyDelay). If ctx ends first, Wait returns ctx's error and the answer stays
// pending until it connects or times out.
func (a *Answer) Wait(ctx context.Context) (netip.AddrPort, error) {
	addr, err := a.p.wait(ctx)
	return addr, a.p.explain(err) // ice.go
}

// Close abandons the answer if it has not connected; a connection it opened belongs to
// the transport (see Transport.Disconnect). It is idempotent and returns nil.
func (a *Answer) Close() error {
	a.p.close(errAbandoned)
	return nil
}

// pending is an offer or answer: a connection waiting for its data channel to open.
// Its state is guarded by the transport's mutex, so that opening (adopt) and closing
// are decided atomically with the transport's maps.
type pending struct {
	t       *Transport
	offerer bool
	kind    poolKind   // the budget it counts against
	src     netip.Addr // its source (ratelimit.SourceKey), counted in its pool when valid
	seq     uint64     // order of reservation: the oldest is evicted first
	first   []byte     // the announcement to send first, or nil
	pe      *peer      // its stack (peer_native.go, peer_js.go); set under t.mu by newPending
	sdp     string
	timer   *time.Timer

	applied atomic.Bool // Connect was called
	ours    bool        // an answer to an offer of ours (see ourLabelPrefix); set before open

	opened chan struct{} // closed when c is set
	ended  chan struct{} // closed when it closed without opening; err says why

	// Guarded by t.mu.
	state pendingState
	c     *conn
	err   error
}

type pendingState int

const (
	pendingActive pendingState = iota
	pendingOpen
	pendingClosed
)

// newPending creates an offer (offerer) or the answer to remote (the peer's offer),
// with the announcement style of the signalling that makes it and, when Config.Advertise
// is empty, the server address to announce.
func (t *Transport) newPending(ctx context.Context, kind poolKind, offerer bool, remote string, ip netip.Addr,
	style announceStyle, host string, port int) (*pending, error) {
	if !offerer && len(remote) > maxSDPSize {
		return nil, fmt.Errorf("%w: offer of %d bytes", errSignal, len(remote))
	}
	p := &pending{
		t:       t,
		offerer: offerer,
		kind:    kind,
		src:     sourceKey(ip),
		first:   t.announcement(style, host, port),
		opened:  make(chan struct{}),
		ended:   make(chan struct{}),
	}
	if err := t.reserve(p); err != nil {
		return nil, err
	}
	cert, err := t.certificate()
	var pe *peer
	if err == nil {
		pe, err = t.newPeer(p.offerer, cert, p.open, p.stateChanged)
	}
	if err != nil {
		p.close(err)
		return nil, fmt.Errorf("webrtc: new connection: %w", err)
	}
	timer := time.AfterFunc(t.cfg.Timeout, func() {
		if t.enter() {
			defer t.wg.Done()
			p.close(errTimeout)
		}
	})
	t.mu.Lock()
	p.pe, p.timer = pe, timer
	ended, why := p.state != pendingActive, p.err
	t.mu.Unlock()
	if ended { // evicted (or the transport closed) while the stack was made
		timer.Stop()
		pe.close()
		return nil, why
	}
	if err := p.negotiate(ctx, remote); err != nil {
		p.close(err)
		return nil, err
	}
	return p, nil
}

// negotiate creates the local description and waits for ICE gathering to complete.
func (p *pending) negotiate(ctx context.Context, remote string) error {
	if !p.offerer {
		remote = p.t.prepareRemoteSDP(ctx, remote)
	}
	sdp, err := p.pe.negotiate(ctx, remote, p.ended)
	if err != nil {
		if e := p.endedErr(); e != nil {
			return e
		}
		return err
	}
	p.sdp = sdp
	p.t.candidateNote(p.sdp) // ice.go
	return nil
}

// poolKind is one of the separate budgets of offers and answers waiting to connect, so
// that no one kind of signalling can starve another: a flood of offers at the signalling
// server leaves room for the offers peers relay and for the node's own lookups.
type poolKind int

const (
	poolOwn     poolKind = iota // the node's own: NewOffer (lookups), Dial (bootstrap)
	poolRelayed                 // NewAnswer: offers relayed by peers (peer_connection, signals)
	poolServer                  // the signalling server's answers and offers to its clients
	numPools
)

var poolNames = [numPools]string{"own", "relayed", "server"}

// pool is one budget: at most Config.MaxPending offers and answers, at most
// Config.MaxPendingPerIP of them for one source. Guarded by t.mu.
type pool struct {
	entries map[*pending]struct{}
	sources map[netip.Addr]int // per valid source, > 0
}

// victim returns the offer or answer to evict from a full pool so that one for src may
// enter, or nil: the oldest of those of the source holding the most, provided that it
// holds more than src does. Max-min fairness: a newcomer always finds room while some
// source holds two or more, whatever the others renew; a source can only take room from
// one holding more than itself, so a well-behaved client's one entry is evicted only when
// the pool holds as many sources as entries. Entries without a source are never evicted.
func (pl *pool) victim(src netip.Addr) *pending {
	if !src.IsValid() {
		return nil
	}
	most := 0
	for _, n := range pl.sources {
		most = max(most, n)
	}
	if most <= pl.sources[src] {
		return nil
	}
	var v *pending
	for p := range pl.entries {
		if p.src.IsValid() && pl.sources[p.src] == most && (v == nil || p.seq < v.seq) {
			v = p
		}
	}
	return v
}

// reserve counts p against the caps, evicting an unconnected offer or answer of a source
// that holds more when p's pool is full, or says which cap is reached.
func (t *Transport) reserve(p *pending) error {
	t.mu.Lock()
	victim, err := t.capped(p.kind, p.src)
	if err != nil {
		t.mu.Unlock()
		return err
	}
	var end pendingEnd
	if victim != nil {
		end = victim.endLocked(errEvicted)
		t.stats.evicted.Add(1)
	}
	t.seq++
	p.seq = t.seq
	t.pending[p] = struct{}{}
	pl := &t.pools[p.kind]
	pl.entries[p] = struct{}{}
	if p.src.IsValid() {
		pl.sources[p.src]++
	}
	t.mu.Unlock()
	if victim != nil {
		victim.finish(end)
	}
	return nil
}

// canReserve reports which cap, if any, would refuse an offer or answer of the signalling
// server for ip now.
func (t *Transport) canReserve(ip netip.Addr) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, err := t.capped(poolServer, sourceKey(ip))
	return err
}

// capped says which cap refuses one more offer or answer of kind for the source src, or
// which one to evict to make room for it. The caller holds t.mu.
func (t *Transport) capped(kind poolKind, src netip.Addr) (*pending, error) {
	pl := &t.pools[kind]
	switch {
	case t.closed:
		return nil, errClosed
	case src.IsValid() && pl.sources[src] >= t.cfg.MaxPendingPerIP:
		return nil, fmt.Errorf("%w (%d for %v)", ErrTooManyPending, t.cfg.MaxPendingPerIP, src)
	case len(pl.entries) >= t.cfg.MaxPending:
		if v := pl.victim(src); v != nil {
			return v, nil // replaces v: the total is unchanged
		}
		return nil, fmt.Errorf("%w (%d %s)", ErrTooManyPending, t.cfg.MaxPending, poolNames[kind])
	case len(t.conns)+len(t.pending) >= t.cfg.MaxConns:
		return nil, fmt.Errorf("%w (%d)", ErrTooManyConnections, t.cfg.MaxConns)
	}
	return nil, nil
}

// unreserve removes p from the transport's pending set. The caller holds t.mu.
func (t *Transport) unreserve(p *pending) {
	delete(t.pending, p)
	pl := &t.pools[p.kind]
	delete(pl.entries, p)
	if p.src.IsValid() {
		if pl.sources[p.src]--; pl.sources[p.src] <= 0 {
			delete(pl.sources, p.src)
		}
	}
}

// pendingEnd is what closing an offer or answer leaves to do outside t.mu.
type pendingEnd struct {
	err   error
	timer *time.Timer
	pe    *peer
}

// endLocked marks p closed, unless it opened or ended already, and releases its place in
// the caps; finish does the rest. The caller holds t.mu.
func (p *pending) endLocked(err error) pendingEnd {
	p.state, p.err = pendingClosed, err
	p.t.unreserve(p)
	return pendingEnd{err, p.timer, p.pe}
}

// finish completes closing p, outside t.mu.
func (p *pending) finish(e pendingEnd) {
	t := p.t
	t.stats.failed.Add(1)
	close(p.ended)
	if e.timer != nil {
		e.timer.Stop()
	}
	if e.pe != nil {
		e.pe.close()
	}
	if t.log.IsDebug() && e.err != errClosed {
		t.log.Debug("offer or answer closed", "offerer", p.offerer, "reason", e.err)
	}
}

// close ends p unless it opened or ended already, releasing its stack.
func (p *pending) close(err error) {
	t := p.t
	t.mu.Lock()
	if p.state != pendingActive {
		t.mu.Unlock()
		return
	}
	e := p.endLocked(err)
	t.mu.Unlock()
	p.finish(e)
}

// endedErr returns why p ended without opening, or nil.
func (p *pending) endedErr() error {
	select {
	case <-p.ended:
		return p.err
	default:
		return nil
	}
}

// stateChanged runs when the stack failed or closed, why when it knows: it ends the
// offer or answer, or closes its connection.
func (p *pending) stateChanged(why error) {
	t := p.t
	t.track(func() {
		t.mu.Lock()
		c := p.c
		t.mu.Unlock()
		switch {
		case c != nil:
			c.close(true)
		case why != nil:
			p.close(fmt.Errorf("%w: %w", errFailed, why))
		default:
			p.close(errFailed)
		}
	})
}

// open runs when the data channel opens (on a goroutine of the stack's): it learns the
// peer's address from the selected candidate pair, sends our announcement first, and
// hands the connection to the transport. label is the channel's: an answerer's peer is
// one of ours when it begins with ourLabelPrefix.
func (p *pending) open(rwc channel, label string) {
	t := p.t
	if !t.enter() {
		rwc.Close()
		return // Close is closing p
	}
	defer t.wg.Done()
	pe := p.pe // set before the stack could open (newPending)
	if !p.offerer {
		p.ours = strings.HasPrefix(label, ourLabelPrefix)
	}
	addr, err := pe.remoteAddr()
	if err != nil {
		rwc.Close()
		p.close(err)
		return
	}
	c := &conn{
		t:      t,
		pe:     pe,
		rwc:    rwc,
		addr:   addr,
		opened: time.Now(),
		ready:  make(chan struct{}),
		closed: make(chan struct{}),
		ours:   p.ours,
		pair:   pe.pairTypes(),
	}
	// The announcement goes first, before any message of ours: a JS peer recognises it
	// only as the first message on the channel (and handles it even before its own side
	// reports the connection). Holding the write lock from before the connection is
	// visible makes every Send wait for it; writing it after, makes the peer's receiving
	// it prove that we have adopted the connection.
	c.wmu.Lock()
	c.hold() // conn.go
	if !t.adopt(p, c) {
		c.wmu.Unlock()
		rwc.Close()
		return
	}
	first := p.first
	if len(first) == 0 && p.ours {
		first = readyMessage
	}
	if len(first) > 0 {
		if _, err := rwc.WriteDataChannel(first, false); err == nil {
			t.stats.messagesOut.Add(1)
			t.stats.bytesOut.Add(uint64(len(first)))
		}
	}
	c.wmu.Unlock()
	if t.log.IsDebug() {
		t.log.Debug("connection open", "peer", addr, "offerer", p.offerer)
	}
	close(p.opened)
}

// sdpCandidateIP returns the IP address of the UDP candidates of sdp whose port is port,
// when they all have the same one.
func sdpCandidateIP(sdp string, port uint16) (netip.Addr, bool) {
	var found netip.Addr
	for _, l := range strings.Split(sdp, "\n") {
		l = strings.TrimSuffix(l, "\r")
		a, _, _, ok := candidateAddr(l)
		if !ok {
			continue
		}
		f := strings.Fields(l)
		ip, err := netip.ParseAddr(a)
		if err != nil || len(f) < 6 || !strings.EqualFold(f[2], "udp") || f[5] != strconv.Itoa(int(port)) {
			continue
		}
		ip = ip.Unmap().WithZone("")
		if found.IsValid() && found != ip {
			return netip.Addr{}, false
		}
		found = ip
	}
	return found, found.IsValid()
}

// adopt makes c, the connection p opened, one of the transport's connections, unless p
// was closed meanwhile. A connection already open to the same address is replaced (and
// closed without a NotifyClosed, since the address stays reachable; its aliases and Keep
// pass to c): with pion's one socket per connection, and the JS's, this only happens when
// a peer reconnects from the same port.
func (t *Transport) adopt(p *pending, c *conn) bool {
	t.mu.Lock()
	if t.closed || p.state != pendingActive {
		t.mu.Unlock()
		return false
	}
	p.state, p.c = pendingOpen, c
	t.unreserve(p)
	old := t.conns[c.addr]
	if old != nil {
		c.kept.Store(old.kept.Load()) // the address stays what the DHT keeps
	}
	t.conns[c.addr] = c
	c.idle = time.AfterFunc(t.cfg.IdleTimeout, c.checkIdle)
	t.wg.Add(1)
	timer := p.timer
	t.mu.Unlock()
	t.stats.opened.Add(1)
	timer.Stop()
	go c.readLoop()
	if old != nil {
		if t.log.IsDebug() {
			t.log.Debug("new connection replaces the one to the same address", "peer", c.addr)
		}
		old.close(false)
	}
	return true
}

// wait waits for p to open. What is sent before the peer is ready is held (conn.go).
func (p *pending) wait(ctx context.Context) (netip.AddrPort, error) {
	c, err := p.waitOpen(ctx)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return c.addr, nil
}

// waitOpen waits for p's data channel to open and returns its connection.
func (p *pending) waitOpen(ctx context.Context) (*conn, error) {
	select {
	case <-p.opened:
	case <-p.ended:
		return nil, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.t.done:
		return nil, errClosed
	}
	p.t.mu.Lock()
	defer p.t.mu.Unlock()
	return p.c, nil
}

func randomLabel() string {
	var b [18]byte
	rand.Read(b[:])
	return ourLabelPrefix + hex.EncodeToString(b[:])
}

// ourLabelPrefix begins the label of the data channels we offer (the JS's are 40 hex
// digits, and any label is accepted), so that an answerer of ours knows the offerer is
// one of ours too: it then neither holds its sends (see Config.ReadyDelay) nor lets the
// offerer hold its own for long, and sends readyMessage first when it has no announcement
// to send.
const ourLabelPrefix = "wdht-"

// readyMessage is the first message an answerer of ours sends an offerer of ours (known
// by its label) when it announces no signalling server: it proves at once what a JS peer
// can prove only by its first message, that its side of the connection is ready. It is
// never sent to another peer, and is not a KRPC message (those begin with 'd').
var readyMessage = []byte("wdht-ready")

// poolSizes returns, per budget, how many offers and answers it holds and for how many
// sources (tests).
func (t *Transport) poolSizes() [numPools][2]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out [numPools][2]int
	for i, pl := range t.pools {
		out[i] = [2]int{len(pl.entries), len(pl.sources)}
	}
	return out
}

// sourceKey is the key under which every per-source cap of the package counts ip: the
// IPv4 address, or the IPv6 /64 (ratelimit.SourceKey).
func sourceKey(ip netip.Addr) netip.Addr { return ratelimit.SourceKey(ip) }
