package signals

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	akrpc "github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"
	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/internal/ratelimit"
	"github.com/wdht/wdht/internal/rtt"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport"
)

// MethodPeerConnection is the query that relays an offer to its target.
const MethodPeerConnection = "peer_connection"

// Signaler makes the connections the extension negotiates: the WebRTC transport (see
// WebRTC) or, for tests and simulations, a FakeNetwork's signalers.
type Signaler interface {
	// NewOffer prepares an outgoing connection and returns its offer.
	NewOffer(ctx context.Context) (Offer, error)
	// NewAnswer accepts an offer relayed by the node at from and returns the answer; the
	// connection opens in the background.
	NewAnswer(ctx context.Context, offer string, from netip.Addr) (Answer, error)
}

// Offer is an outgoing connection waiting for its answer.
type Offer interface {
	SDP() string
	// Connect applies the answer and waits until the connection is open; it returns the
	// peer's address.
	Connect(ctx context.Context, answer string) (netip.AddrPort, error)
	// Close discards an offer that will not be used.
	Close() error
}

// Answer is an incoming connection being opened.
type Answer interface {
	SDP() string
	Wait(ctx context.Context) (netip.AddrPort, error)
	Close() error
}

// Defaults for Config fields left zero.
const (
	DefaultK              = 2
	DefaultRelayTimeout   = 1500 * time.Millisecond
	DefaultConnectTimeout = 10 * time.Second
	DefaultPeerSignals    = 100
	DefaultMaxRelays      = 8
	DefaultRelayRate      = 100
	DefaultRelayBurst     = 200
	DefaultSourceRelays   = 10
	DefaultSourceBurst    = 20
	// maxRelaySources bounds the sources the per-source relay limit remembers.
	maxRelaySources = 4096
	// DefaultMaxQueryDeadline is the dht.Config.MaxQueryDeadline NewNode sets when the
	// caller's is zero (see NewNode).
	DefaultMaxQueryDeadline = 5 * time.Second
)

// Config configures the extension. The zero value is ready to use.
type Config struct {
	// K is the node's bucket size; it sets the default number of offers. Default 2, the
	// JS WebTorrent DHT's K.
	K int
	// Offers is how many offers find_node, get_peers and get carry. Default
	// max(2, floor(log2 K)), as the JS does.
	Offers int
	// Extensions are the names sent in our offers and answers. Default none.
	Extensions []string
	// RelayTimeout bounds the peer_connection relays of a response: a JS querier gives
	// up on its query after 2 to 2.5 s. Once one relay answered, the others are waited
	// for RelayTimeout/3 more at most, and a target that does not answer a ping sent with
	// its relay is given up sooner (see the package doc). Default 1.5 s.
	RelayTimeout time.Duration
	// ConnectTimeout bounds how long a querier waits for a connection to open once it
	// has the answer. Default 10 s.
	ConnectTimeout time.Duration
	// PeerSignals is how many entries the "signals" of our get_peers queries hold: the
	// offers, then as many entries {id: <the responder's ID>} as it takes. A JS responder
	// (webtorrent-dht 0.18) returns every peer it stores for the infohash and throws when
	// they outnumber the signals (`response.values(0, n)` calls an array: a Node.js
	// process dies), so a get_peers carrying only our offers crashes any JS node storing
	// three peers or more. It relays each entry to one of its peers with peer_connection,
	// and a peer answers an entry naming a node it is connected to, as it is to the relaying
	// responder, with the shortcut {id} at once (ours and the JS alike); the peer's ID
	// comes back, and we use the peer when we are connected to it. Entries are added only
	// when the responder's ID is known (it answered us before) and it is not one of ours
	// (whose responses carry krpc.Version's "WD" as "v"). Default 100
	// (DefaultPeerSignals); negative, or at most Offers: the offers alone.
	PeerSignals int
	// Logger receives the extension's logs. Default: none.
	Logger hclog.Logger
	// MaxRelays caps the offers of one incoming query that are relayed with
	// peer_connection; the others get no answer. The JS sends max(2, floor(log2 K))
	// offers. Default 8.
	MaxRelays int
	// RelayRate is the node's budget of relays a second, with bursts of up to
	// RelayBurst; an offer beyond it is not relayed. Relays spend this budget, not the
	// KRPC outbound budget (krpc.Config.QueryRate): queries carrying offers cannot
	// starve the node's own lookups. A negative RelayRate turns it off. Defaults 100/s
	// and 200.
	RelayRate  float64
	RelayBurst int
	// SourceRelayRate is how many offers a second one source (a querier's IPv4 address,
	// or its IPv6 /64) may have relayed, with bursts of up to SourceRelayBurst. A
	// negative SourceRelayRate turns it off. Defaults 10/s and 20.
	SourceRelayRate  float64
	SourceRelayBurst int
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.K < 0:
		return fmt.Errorf("signals: Config.K %d is negative", c.K)
	case c.Offers < 0:
		return fmt.Errorf("signals: Config.Offers %d is negative", c.Offers)
	case c.RelayTimeout < 0:
		return fmt.Errorf("signals: Config.RelayTimeout %v is negative", c.RelayTimeout)
	case c.ConnectTimeout < 0:
		return fmt.Errorf("signals: Config.ConnectTimeout %v is negative", c.ConnectTimeout)
	case c.MaxRelays < 0:
		return fmt.Errorf("signals: Config.MaxRelays %d is negative", c.MaxRelays)
	case c.RelayBurst < 0:
		return fmt.Errorf("signals: Config.RelayBurst %d is negative", c.RelayBurst)
	case c.SourceRelayBurst < 0:
		return fmt.Errorf("signals: Config.SourceRelayBurst %d is negative", c.SourceRelayBurst)
	}
	return nil
}

// Extension is the WebTorrent DHT extension (krpc.Extension). Pass it in the node's
// Config.KRPC.Extensions; the node attaches itself (AttachNode) when it starts.
type Extension struct {
	sig  Signaler
	cfg  Config
	log  hclog.Logger
	node *dht.Node
	call krpc.Caller // the chain below us, for peer_connection relays

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // answers waiting to connect

	relays    *ratelimit.Bucket    // the node's relay budget
	srcRelays *ratelimit.PerSource // each source's
	relayed   atomic.Uint64        // offers relayed
	refused   atomic.Uint64        // offers not relayed: beyond a cap, or not the querier's

	mu      sync.Mutex
	closed  bool
	byID    map[dht.ID]netip.AddrPort // open connections whose node ID we know
	byAddr  map[netip.AddrPort]dht.ID
	hearsay map[netip.AddrPort]struct{} // connections whose ID came from a relayed signal only
	ours    map[netip.AddrPort]struct{} // connections whose node answered with our "v"
	dialing map[dht.ID]*dial            // answers being completed, by the answering node's ID
	// Round trips of plain queries (not signalled ones, whose answers wait on
	// connections): per open connection whose node we know, and over all of them.
	trips map[netip.AddrPort]rtt.Estimate
	trip  rtt.Estimate
}

// A dial is the completion of an answer to one of our offers, which others answering for
// the same node wait for (see Extension.connect).
type dial struct {
	done chan struct{}
	addr netip.AddrPort // once done: the connection, or invalid when it failed
}

var _ krpc.Extension = (*Extension)(nil)

// New returns the extension negotiating connections with sig. cfg may be nil. When sig
// implements transport.ClosedNotifier, closed connections are forgotten at once.
func New(sig Signaler, cfg *Config) (*Extension, error) {
	if sig == nil {
		return nil, errors.New("signals: New: nil Signaler")
	}
	var c Config
	if cfg != nil {
		c = *cfg
		c.Extensions = append([]string(nil), cfg.Extensions...)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.K == 0 {
		c.K = DefaultK
	}
	if c.Offers == 0 {
		c.Offers = max(2, bits.Len(uint(c.K))-1) // floor(log2 K)
	}
	if c.RelayTimeout == 0 {
		c.RelayTimeout = DefaultRelayTimeout
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.PeerSignals == 0 {
		c.PeerSignals = DefaultPeerSignals
	}
	if c.MaxRelays == 0 {
		c.MaxRelays = DefaultMaxRelays
	}
	if c.RelayRate == 0 {
		c.RelayRate = DefaultRelayRate
	}
	if c.RelayBurst == 0 {
		c.RelayBurst = DefaultRelayBurst
	}
	if c.SourceRelayRate == 0 {
		c.SourceRelayRate = DefaultSourceRelays
	}
	if c.SourceRelayBurst == 0 {
		c.SourceRelayBurst = DefaultSourceBurst
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	e := &Extension{sig: sig, cfg: c, log: c.Logger.Named("signals"),
		byID: make(map[dht.ID]netip.AddrPort), byAddr: make(map[netip.AddrPort]dht.ID),
		hearsay: make(map[netip.AddrPort]struct{}), ours: make(map[netip.AddrPort]struct{}),
		dialing: make(map[dht.ID]*dial), trips: make(map[netip.AddrPort]rtt.Estimate),
		relays:    ratelimit.NewBucket(c.RelayRate, c.RelayBurst),
		srcRelays: ratelimit.NewPerSource(c.SourceRelayRate, c.SourceRelayBurst, maxRelaySources)}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	if cn, ok := sig.(transport.ClosedNotifier); ok {
		cn.NotifyClosed(e.forget)
	}
	return e, nil
}

// Close stops the extension's background work (answers waiting for their connections to
// open) and waits for it. The node closes the extensions attached to it; Close is
// idempotent.
func (e *Extension) Close() error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	return nil
}

// background runs f on a goroutine that Close waits for, unless the extension is closed.
func (e *Extension) background(f func(ctx context.Context)) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		f(e.ctx)
	}()
}

// AttachNode gives the extension its node; dht.New calls it.
func (e *Extension) AttachNode(n *dht.Node) { e.node = n }

// lossy reports whether the node's transport may lose packets (it is not
// transport.Reliable), so that a relay is sent again when its target answers the probe
// (see probe).
func (e *Extension) lossy() bool {
	if e.node == nil || e.node.Server() == nil {
		return false
	}
	r, ok := e.node.Server().Transport().(transport.Reliable)
	return !ok || !r.Reliable()
}

func (e *Extension) self() dht.ID {
	if e.node == nil {
		return dht.ID{}
	}
	return e.node.ID()
}

// learn records that the node id is at addr (an open connection), as the node there said
// itself in a query or a response (self), or as a relayed signal said (hearsay: an
// offer's or an answer's id, which a relaying node chose).
//
// A claim never takes an ID from another open connection whose node said it itself:
// else any node could, with one query carrying a victim's ID, have our lookups use its
// connection in the victim's place. A node's own word displaces hearsay, and hearsay
// never changes the ID of a connection that has one.
func (e *Extension) learn(id dht.ID, addr netip.AddrPort, self bool) {
	if id == (dht.ID{}) || !addr.IsValid() {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if cur, ok := e.byID[id]; ok && cur != addr {
		if _, weak := e.hearsay[cur]; !self || !weak {
			return
		}
		delete(e.byAddr, cur) // what was said of cur was wrong
		delete(e.hearsay, cur)
		delete(e.byID, id)
	}
	old, had := e.byAddr[addr]
	switch {
	case had && old != id && !self:
		return
	case had && old != id:
		delete(e.ours, addr)
		e.byAddr[addr] = id
		e.unmap(old, addr)
	}
	e.byID[id] = addr
	e.byAddr[addr] = id
	if self {
		delete(e.hearsay, addr)
	} else if !had {
		e.hearsay[addr] = struct{}{}
	}
}

// unmap makes id no longer reached at addr: it is reached at another of its connections,
// if it has one (two relays can open two connections to one node), else not at all.
// e.mu must be held, and byAddr no longer give id for addr.
func (e *Extension) unmap(id dht.ID, addr netip.AddrPort) {
	if e.byID[id] != addr {
		return
	}
	delete(e.byID, id)
	for a, other := range e.byAddr {
		if other == id {
			e.byID[id] = a
			return
		}
	}
}

// learnResponse is learn for the node that sent resp, and notes whether it is one of ours
// (its "v" is krpc.Version's "WD"), which never needs get_peers padding.
func (e *Extension) learnResponse(resp *krpc.Response) {
	e.learn(resp.Return.ID, resp.From, true)
	if resp.Return.ID == (dht.ID{}) || !resp.From.IsValid() {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if strings.HasPrefix(resp.Version, krpc.Version[:2]) {
		e.ours[resp.From] = struct{}{}
	} else {
		delete(e.ours, resp.From)
	}
}

// forget drops a closed connection.
func (e *Extension) forget(addr netip.AddrPort) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.ours, addr)
	delete(e.hearsay, addr)
	delete(e.trips, addr)
	if id, ok := e.byAddr[addr]; ok {
		delete(e.byAddr, addr)
		e.unmap(id, addr)
	}
}

// padWith returns the ID of the node at addr when our get_peers to it should be padded:
// we know its ID, and it has not shown to be one of ours.
func (e *Extension) padWith(addr netip.AddrPort) (dht.ID, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	id, ok := e.byAddr[addr]
	if _, ours := e.ours[addr]; ours {
		return id, false
	}
	return id, ok
}

// padding returns how many entries {id: responder} follow n offers in a get_peers.
func (e *Extension) padding(n int) int { return max(0, e.cfg.PeerSignals-n) }

// connected returns the address of our connection to the node id, if there is one.
func (e *Extension) connected(id dht.ID) (netip.AddrPort, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	addr, ok := e.byID[id]
	return addr, ok
}

// signalled reports whether a query carries signals: find_node, get_peers and get.
func signalled(method string) bool {
	return method == krpc.MethodFindNode || method == krpc.MethodGetPeers || method == krpc.MethodGet
}

// Methods adds peer_connection.
func (e *Extension) Methods() map[string]krpc.Handler {
	return map[string]krpc.Handler{MethodPeerConnection: krpc.HandlerFunc(e.handlePeerConnection)}
}

// WrapCaller adds offers to our find_node, get_peers and get queries, and turns the
// answers in their responses into connections: the nodes and values the lookup then
// sees are the addresses of our own connections.
func (e *Extension) WrapCaller(next krpc.Caller) krpc.Caller {
	e.call = next
	return krpc.CallerFunc(func(ctx context.Context, to netip.AddrPort, q *krpc.Query) (*krpc.Response, error) {
		if !signalled(q.Method) {
			sent := time.Now()
			resp, err := next.Call(ctx, to, q)
			if err == nil {
				e.learnResponse(resp)
				if !resp.Resent {
					e.sample(resp.From, time.Since(sent))
				}
			}
			return resp, err
		}
		offers := e.prepare(ctx)
		own := e.self()
		sigs := make([]bencode.Bytes, len(offers))
		for i, o := range offers {
			sigs[i] = encodeFull("offer", o.SDP(), own, e.cfg.Extensions)
		}
		if q.Method == krpc.MethodGetPeers {
			// Enough entries for a JS responder's peers (see Config.PeerSignals); their
			// slots in offers stay nil.
			if rid, ok := e.padWith(to); ok {
				pad := encodeShortcut(rid)
				for range e.padding(len(sigs)) {
					sigs = append(sigs, pad)
					offers = append(offers, nil)
				}
			}
		}
		defer func() {
			for _, o := range offers {
				if o != nil {
					o.Close()
				}
			}
		}()
		if q.Args.Extra == nil {
			q.Args.Extra = krpc.Extra{}
		}
		q.Args.Extra["signals"] = encodeList(sigs)
		resp, err := next.Call(ctx, to, q)
		if err != nil {
			return resp, err
		}
		e.learnResponse(resp)
		e.connect(ctx, resp.Return, offers, own)
		return resp, nil
	})
}

// prepare makes the offers of one query; those that fail are left out.
func (e *Extension) prepare(ctx context.Context) []Offer {
	offers := make([]Offer, e.cfg.Offers)
	var wg sync.WaitGroup
	for i := range offers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, err := e.sig.NewOffer(ctx)
			if err != nil {
				e.log.Debug("cannot make an offer", "error", err)
				return
			}
			offers[i] = o
		}()
	}
	wg.Wait()
	out := offers[:0]
	for _, o := range offers {
		if o != nil {
			out = append(out, o)
		}
	}
	return out
}

// connect applies the answers of a response to our offers and rewrites its nodes or
// values to the addresses of our connections. Offers it uses are set to nil in offers;
// nil slots (entries without an offer) accept only the shortcut of a node we are
// connected to.
func (e *Extension) connect(ctx context.Context, r *krpc.Return, offers []Offer, own dht.ID) {
	raw, ok := r.Extra["signals"]
	delete(r.Extra, "signals")
	plain := plainPeers(r.Extra[PeersKey])
	delete(r.Extra, PeersKey)
	if !ok {
		return // a responder without the extension: its addresses mean nothing to us
	}
	if len(plain) > 0 {
		// Peers that are not WebRTC peers go after those we connect to (see PeersKey).
		defer func() {
			for _, p := range plain {
				var na akrpc.NodeAddr
				na.FromAddrPort(p)
				r.Values = append(r.Values, na)
			}
		}()
	}
	sigs := decodeList(raw)
	if len(sigs) > len(offers) {
		sigs = sigs[:len(offers)] // a responder may not answer more offers than we made
	}
	useValues := len(r.Values) > 0
	type result struct {
		id   dht.ID
		addr netip.AddrPort
	}
	results := make([]result, len(sigs))
	ctx, cancel := context.WithTimeout(ctx, e.cfg.ConnectTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, raw := range sigs {
		s := decodeSignal(raw)
		if s == nil {
			continue
		}
		id, _ := s.id()
		if id == own {
			continue // ourselves, or a placeholder keeping the offers aligned
		}
		// The offer relayed to a node is the one at that node's position among the nodes:
		// find it by ID, which also survives a JS responder's misaligned signals (§11 B2).
		j := i
		if !useValues {
			if j = indexOf(r.Nodes, id, i); j < 0 || j >= len(offers) {
				continue
			}
		}
		if addr, ok := e.connected(id); ok {
			results[i] = result{id, addr}
			continue
		}
		if s.Type != "answer" || s.SDP == "" || offers[j] == nil {
			continue
		}
		o := offers[j]
		offers[j] = nil // in use: not closed by the caller
		wg.Add(1)
		go func() {
			defer wg.Done()
			if addr, ok := e.dial(ctx, id, o, s.SDP); ok {
				results[i] = result{id, addr}
			}
		}()
	}
	wg.Wait()
	var nodes []akrpc.NodeInfo
	var values []akrpc.NodeAddr
	for _, res := range results {
		if !res.addr.IsValid() {
			continue
		}
		var na akrpc.NodeAddr
		na.FromAddrPort(res.addr)
		if useValues {
			values = append(values, na)
		} else {
			nodes = append(nodes, akrpc.NodeInfo{ID: res.id, Addr: na})
		}
	}
	if useValues {
		r.Values = values
	} else {
		r.Nodes, r.Nodes6 = nodes, nil
	}
}

// dial completes the offer o with the answer sdp from the node id, and returns the
// connection. Two nodes a query went to in parallel can both relay our offers to the
// same node, which then answers both; a JS node keeps the first connection of a node ID
// and destroys the second when it connects (js-wire-protocol §7.2), and a query sent over
// the second is lost. So only one answer per node is completed at a time: a later one
// waits for it and uses its connection, and completes its own only if that one failed.
func (e *Extension) dial(ctx context.Context, id dht.ID, o Offer, sdp string) (netip.AddrPort, bool) {
	for {
		e.mu.Lock()
		if addr, ok := e.byID[id]; ok {
			e.mu.Unlock()
			o.Close()
			return addr, true
		}
		d, busy := e.dialing[id]
		if !busy {
			d = &dial{done: make(chan struct{})}
			e.dialing[id] = d
		}
		e.mu.Unlock()
		if busy {
			select {
			case <-d.done:
			case <-ctx.Done():
				o.Close()
				return netip.AddrPort{}, false
			}
			if d.addr.IsValid() {
				o.Close()
				return d.addr, true
			}
			continue // it failed: complete ours
		}
		addr, err := o.Connect(ctx, sdp)
		if err != nil {
			e.log.Debug("relayed connection failed", "id", id, "error", err)
			o.Close()
		} else {
			e.learn(id, addr, false) // the answer's id: the responder relayed it
			d.addr = addr
		}
		e.mu.Lock()
		delete(e.dialing, id)
		e.mu.Unlock()
		close(d.done)
		return addr, err == nil
	}
}

// indexOf returns the position of id in nodes, preferring want; -1 when it is absent.
func indexOf(nodes []akrpc.NodeInfo, id dht.ID, want int) int {
	if want < len(nodes) && nodes[want].ID == id {
		return want
	}
	for j := range nodes {
		if nodes[j].ID == id {
			return j
		}
	}
	return -1
}

// WrapHandler relays the offers of an incoming find_node, get_peers or get to the nodes
// (or peers) of our response with peer_connection, and attaches their answers as
// "signals", one to one. It also learns the node ID behind every connection.
func (e *Extension) WrapHandler(next krpc.Handler) krpc.Handler {
	return krpc.HandlerFunc(func(ctx context.Context, q *krpc.Query) (*krpc.Response, error) {
		e.learn(q.Args.ID, q.From, true)
		raw, ok := q.Args.Extra["signals"]
		if !signalled(q.Method) || !ok {
			return next.ServeKRPC(ctx, q)
		}
		offers := decodeList(raw)
		querier := q.Args.ID
		from := q.From
		resp, err := next.ServeKRPC(ctx, q)
		if err != nil || resp == nil || resp.Return == nil {
			return resp, err
		}
		r := resp.Return
		if q.Method == krpc.MethodGet && len(r.V) > 0 {
			// The item itself: no nodes to connect to (the JS answers the same way).
			r.Nodes, r.Nodes6 = nil, nil
			return resp, nil
		}
		e.relay(ctx, r, offers, querier, from)
		return resp, nil
	})
}

// target is a node or peer of our response that an offer is relayed to.
type target struct {
	node akrpc.NodeInfo // for nodes
	addr netip.AddrPort
}

// relay sends offer i to the i-th node (or peer) of r and rewrites r to hold, at position
// i, that node and its answer. A target that fails or times out leaves a placeholder (the
// querier itself and the shortcut {id: querier}, which a querier drops) when a later one
// succeeded, so that answer i still belongs to offer i; trailing failures are cut. No
// null entry is ever sent (bencode would drop it and misalign the rest), and there are
// never more entries than offers.
func (e *Extension) relay(ctx context.Context, r *krpc.Return, offers []bencode.Bytes, querier dht.ID, from netip.AddrPort) {
	useValues := len(r.Values) > 0
	var targets []target
	if useValues {
		for _, v := range r.Values {
			ip, ok := netip.AddrFromSlice(v.IP)
			if a := netip.AddrPortFrom(ip.Unmap(), uint16(v.Port)); ok && a != from {
				targets = append(targets, target{addr: a})
			}
		}
	} else {
		for _, n := range append(r.Nodes, r.Nodes6...) {
			ip, ok := netip.AddrFromSlice(n.Addr.IP)
			if a := netip.AddrPortFrom(ip.Unmap(), uint16(n.Addr.Port)); ok && n.ID != querier {
				targets = append(targets, target{node: n, addr: a})
			}
		}
	}
	if len(offers) > e.cfg.MaxRelays {
		e.refused.Add(uint64(len(offers) - e.cfg.MaxRelays))
	}
	targets = targets[:min(len(targets), len(offers), e.cfg.MaxRelays)]
	answers := make([]bencode.Bytes, len(targets))
	// Relays spend the extension's budgets, not the node's outbound query budget.
	ctx, cancel := context.WithTimeout(krpc.WithOwnBudget(ctx), e.cfg.RelayTimeout)
	defer cancel()
	ended := make(chan bool, len(targets)) // one per relay: whether it brought an answer
	running := 0
	own := e.self()
	lossy := e.lossy()
	for i, t := range targets {
		if !relayable(decodeSignal(offers[i]), querier, own) || !e.srcRelays.Allow(from.Addr()) || !e.relays.Allow() {
			e.refused.Add(1)
			continue
		}
		e.relayed.Add(1)
		running++
		go func() {
			ok := false
			defer func() { ended <- ok }()
			ctx, giveUp := context.WithCancel(ctx)
			defer giveUp()
			var resend chan struct{}
			if lossy {
				resend = make(chan struct{}, 1)
				ctx = krpc.WithResend(ctx, resend)
			}
			defer e.probe(t.addr, giveUp, resend)()
			a := &krpc.Args{Extra: krpc.Extra{"signal": offers[i]}}
			a.ID = own
			resp, err := e.call.Call(ctx, t.addr, &krpc.Query{Method: MethodPeerConnection, Args: a})
			if err != nil {
				e.log.Debug("peer_connection relay failed", "to", t.addr, "error", err)
				return
			}
			if s := resp.Return.Extra["signal"]; decodeSignal(s) != nil {
				answers[i] = s
				ok = true
			}
		}()
	}
	// Once one target answered, the others get RelayTimeout/3 more: a relay lost on the
	// way would otherwise hold the whole response for RelayTimeout, and a querier's
	// lookup waits on a late answer from a node near its target (dht's lookup with K=2).
	// The answers that came make the response; a target left out is left out as it
	// would be at RelayTimeout. Each relay writes its answer before it sends on ended,
	// so once every end is received the answers are all there.
	graced := false
	for ; running > 0; running-- {
		if ok := <-ended; ok && !graced && running > 1 {
			graced = true
			defer time.AfterFunc(e.cfg.RelayTimeout/3, cancel).Stop()
		}
	}
	last := -1
	for i := range answers {
		if answers[i] != nil {
			last = i
		}
	}
	var qna akrpc.NodeAddr
	qna.FromAddrPort(from)
	sigs := make([]bencode.Bytes, 0, last+1)
	var nodes []akrpc.NodeInfo
	var values []akrpc.NodeAddr
	for i := 0; i <= last; i++ {
		t := targets[i]
		if answers[i] == nil { // placeholder: keeps answer i+1 at position i+1
			sigs = append(sigs, encodeShortcut(querier))
			t = target{node: akrpc.NodeInfo{ID: querier, Addr: qna}, addr: from}
		} else {
			sigs = append(sigs, answers[i])
		}
		if useValues {
			var na akrpc.NodeAddr
			na.FromAddrPort(t.addr)
			values = append(values, na)
		} else {
			nodes = append(nodes, t.node)
		}
	}
	if useValues {
		r.Values, r.Nodes, r.Nodes6 = values, nil, nil
	} else {
		r.Nodes, r.Nodes6 = nodes, nil
	}
	if r.Extra == nil {
		r.Extra = krpc.Extra{}
	}
	r.Extra["signals"] = encodeList(sigs)
}

// minProbeWait is the least a relay waits for its target to answer the probe ping.
const minProbeWait = 100 * time.Millisecond

// probe pings addr, the target of a relay just sent, and gives the relay up (giveUp)
// unless the ping is answered, even with an error, within the probe wait: twice the soft
// deadline of addr's round trips (rtt.Estimate.Deadline; the network-wide one when addr
// has none yet), within [minProbeWait, RelayTimeout/3], and RelayTimeout/3 with no
// estimate at all. A target answers a peer_connection only once its answer is ready (a
// JS one after its ICE gathering, so a relay needs RelayTimeout), but it answers a ping
// at once: one that answers neither has vanished (a browser that lost its network keeps
// its connections for seconds), and waiting RelayTimeout on it held the whole response,
// and with it the querier's lookup, which waits for its nearest responders. A live target
// whose ping is lost is left out of this one response. On a transport that loses packets
// (not transport.Reliable), a relay still unanswered at the end of the wait though its
// target answered the ping is sent again (resend, see krpc.WithResend): it, or its
// answer, may have been lost. The ping runs on to its own timeout. The returned stop ends
// the wait once the relay is over.
func (e *Extension) probe(addr netip.AddrPort, giveUp context.CancelFunc, resend chan<- struct{}) (stop func()) {
	answered := make(chan struct{})
	t := time.AfterFunc(e.probeWait(addr), func() {
		select {
		case <-answered:
			if resend != nil {
				resend <- struct{}{} // buffered, and sent once
			}
		default:
			giveUp()
		}
	})
	e.background(func(ctx context.Context) {
		a := &krpc.Args{}
		a.ID = e.self()
		sent := time.Now()
		resp, err := e.call.Call(krpc.WithOwnBudget(ctx), addr, &krpc.Query{Method: krpc.MethodPing, Args: a})
		if _, refused := errors.AsType[*krpc.Error](err); err == nil || refused {
			close(answered)
		}
		if err == nil && !resp.Resent {
			e.sample(resp.From, time.Since(sent))
		}
	})
	return func() { t.Stop() }
}

// probeWait returns how long a relay waits for its target to answer the probe (see
// probe).
func (e *Extension) probeWait(addr netip.AddrPort) time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	est, ok := e.trips[addr]
	if !ok {
		est = e.trip
	}
	most := e.cfg.RelayTimeout / 3
	if !est.Known() {
		return most
	}
	return min(max(2*est.Deadline(0, most), minProbeWait), most)
}

// sample records the round trip d of a plain query answered from addr (sent once:
// krpc.Response.Resent), unless it is so long that it made a connection.
func (e *Extension) sample(addr netip.AddrPort, d time.Duration) {
	if d >= e.cfg.RelayTimeout {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.trip.Add(d)
	if _, ok := e.byAddr[addr]; ok { // an open connection: forget drops it
		est := e.trips[addr]
		est.Add(d)
		e.trips[addr] = est
	}
}

// relayable reports whether a signal of a query from querier may be relayed: an offer
// must be the querier's own (its id is the querier's ID, which the target binds to the
// connection it opens); a shortcut {id} must name the querier or us (the entries a
// querier pads get_peers with); anything else is not relayed.
func relayable(s *signal, querier, own dht.ID) bool {
	if s == nil {
		return false
	}
	id, _ := s.id()
	switch s.Type {
	case "offer":
		return id == querier && s.SDP != ""
	case "":
		return id == querier || id == own
	}
	return false
}

// handlePeerConnection answers an offer relayed to us: the shortcut {id} when the offer
// is our own or we are already connected to its originator, else an answer, after which
// the connection opens in the background. Failure is KRPC error 201.
func (e *Extension) handlePeerConnection(ctx context.Context, q *krpc.Query) (*krpc.Response, error) {
	e.learn(q.Args.ID, q.From, true)
	own := e.self()
	s := decodeSignal(q.Args.Extra["signal"])
	if s == nil {
		return nil, krpc.ProtocolError("peer_connection: missing or malformed signal")
	}
	reply := func(sig bencode.Bytes) *krpc.Response {
		r := &krpc.Return{Extra: krpc.Extra{"signal": sig}}
		r.ID = own
		return &krpc.Response{Return: r}
	}
	origin, _ := s.id()
	if _, ok := e.connected(origin); ok || origin == own {
		return reply(encodeShortcut(own)), nil
	}
	if s.Type != "offer" || s.SDP == "" {
		return nil, krpc.ProtocolError("peer_connection: the signal is not an offer")
	}
	a, err := e.sig.NewAnswer(ctx, s.SDP, q.From.Addr())
	if err != nil {
		if errors.Is(err, net.ErrClosed) {
			return nil, krpc.ErrNoReply
		}
		return nil, &krpc.Error{Code: krpc.ErrorCodeGeneric, Msg: "peer_connection: " + err.Error()}
	}
	// Once the connection opens we know who is behind it, as its offerer knows us; then
	// later offers from that node get the shortcut.
	e.background(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, e.cfg.ConnectTimeout)
		defer cancel()
		if addr, err := a.Wait(ctx); err == nil {
			e.learn(origin, addr, false) // the offer's id: the relaying node vouches for it
		}
	})
	return reply(encodeFull("answer", a.SDP(), own, e.cfg.Extensions)), nil
}
