package dht

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	akrpc "github.com/anacrolix/dht/v2/krpc"
	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/internal/rtt"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport"
)

// maxVerifying bounds the pings in flight to nodes that queried us before they may enter
// the routing table.
const maxVerifying = 16

var (
	// ErrNoNodes is returned by lookups and Bootstrap when there is no node to start
	// from or none answered.
	ErrNoNodes = errors.New("dht: no nodes answered")
	// ErrClosed is returned once the Node is closed. It wraps net.ErrClosed.
	ErrClosed = krpc.ErrClosed
)

// Node is a DHT node (BEP 5) on one Transport. All methods are safe for concurrent use.
type Node struct {
	idp   atomic.Pointer[ID] // changes when BEP 42 makes us take a secure ID
	cfg   Config
	log   hclog.Logger
	t     transport.Transport
	srv   *krpc.Server
	tok   *tokens
	peers *PeerStore
	items *ItemStore
	pong  atomic.Pointer[krpc.Response] // the answer to every ping
	// reliable: the transport loses no message on an open connection (transport.Reliable)
	reliable bool

	ctx    context.Context
	cancel context.CancelFunc

	mu             sync.Mutex // guards everything below
	closed         bool
	wg             sync.WaitGroup
	tables         [2]*table // by address family (IPv4, IPv6); nil for a family the transport lacks
	fams           [2]bool   // which tables exist (fixed at New; readable without mu)
	verifying      map[netip.AddrPort]struct{}
	timer          *time.Timer
	bootstrap      []netip.AddrPort // from Config and saved state
	bootstrapNames []string         // saved "host:port" with names, resolved or dialled at Bootstrap
	sample         sampler          // BEP 51
	votes          bep42Votes       // what responders say our IP is
	externalIP     netip.Addr       // what enough of them agreed on
	dials          dialLog          // which signalling servers answered a dial (own lock)

	lookups, lookupQueries atomic.Uint64
	lookupTimes            lookupTimes

	rtt    rtt.Estimate // round-trip time of every answered query (guarded by mu)
	failed failedAddrs  // addresses whose queries timed out lately (guarded by mu)

	events  *events       // nil without hooks
	joining atomic.Bool   // a Join loop runs
	ready   chan struct{} // closed once a bootstrap succeeded
	once    sync.Once     // closes ready
}

// New starts a node on t. cfg may be nil. The node answers queries at once; call Bootstrap
// to join a network. The caller keeps ownership of t and closes it after Close.
func New(t transport.Transport, cfg *Config) (*Node, error) {
	if t == nil {
		return nil, errors.New("dht: New: nil transport")
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	n := &Node{cfg: c, t: t, tok: newTokens(c.TokenPeriod), verifying: make(map[netip.AddrPort]struct{}), ready: make(chan struct{})}
	if r, ok := t.(transport.Reliable); ok {
		n.reliable = r.Reliable()
	}
	n.events = newEvents(c.Events)
	id := c.ID
	if id == (ID{}) && c.State != nil {
		id = c.State.ID
	}
	if id == (ID{}) {
		id = RandomID()
	}
	n.idp.Store(&id)
	n.log = c.Logger.Named("dht")
	n.pong.Store(&krpc.Response{Return: n.newReturn()})
	n.peers = c.Peers
	if n.peers == nil {
		n.peers, _ = NewPeerStore(nil)
	}
	n.items = c.Items
	if n.items == nil {
		n.items, _ = NewItemStore(nil)
	}
	now := time.Now()
	v4, v6 := families(t.LocalAddr())
	n.fams = [2]bool{v4, v6}
	for fam, on := range n.fams {
		if on {
			n.tables[fam] = newTable(id, c.K, c.MaxFailures, now)
			n.tables[fam].enforce = c.EnforceSecureIDs
			if k, ok := t.(transport.Keeper); ok {
				n.tables[fam].keep = func(addr netip.AddrPort, in bool) { k.Keep(addr, in) }
			}
			if n.events != nil {
				n.tables[fam].notify = n.nodeChanged
			}
		}
	}
	n.bootstrap = c.Bootstrap
	n.bootstrapNames = append(n.bootstrapNames, c.BootstrapHosts...)
	if c.State != nil {
		for _, sn := range c.State.Nodes {
			if tb := n.tableFor(sn.Addr); tb != nil && usableAddr(sn.Addr) && sn.ID != (ID{}) {
				tb.insert(sn)
			}
		}
		for _, it := range c.State.Items[:min(len(c.State.Items), MaxStateItems)] {
			if it != nil && it.Verify() == nil {
				n.items.Put(it.clone(), nil) // an older version than one stored is refused: fine
			}
		}
		n.dials.saved = slices.Sorted(slices.Values(c.State.Bootstrap[:min(len(c.State.Bootstrap), MaxStateServers)]))
		for _, hp := range n.dials.saved {
			if ap, err := netip.ParseAddrPort(hp); err == nil {
				n.bootstrap = append(n.bootstrap, transport.Unmap(ap))
			} else {
				n.bootstrapNames = append(n.bootstrapNames, hp)
			}
		}
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	if n.events != nil {
		n.spawn(func() { n.events.run(n.ctx.Done()) })
	}
	h := nodeHandler{n: n}
	for _, e := range c.KRPC.Extensions {
		if a, ok := e.(interface{ AttachNode(*Node) }); ok {
			a.AttachNode(n) // before the server starts: the extension may answer at once
		}
	}
	srv, err := krpc.NewServer(t, h, &c.KRPC)
	if err != nil {
		return nil, err
	}
	n.srv = srv
	if cn, ok := t.(transport.ClosedNotifier); ok {
		cn.NotifyClosed(n.peerClosed)
	}
	if c.MaintenanceInterval > 0 {
		n.mu.Lock()
		n.timer = time.AfterFunc(n.jitter(c.MaintenanceInterval), n.maintain)
		n.mu.Unlock()
	}
	n.log.Debug("node started", "id", id, "addr", t.LocalAddr())
	return n, nil
}

// nodeHandler answers the node's queries. None of its methods block (they only read and
// update memory), so the KRPC server may run them on its read loop.
type nodeHandler struct {
	n *Node
}

// nodeMethods are the node's handlers by method: one table for every node (a krpc.Mux
// of method values would cost each node a map and seven closures).
var nodeMethods = map[string]func(*Node, context.Context, *krpc.Query) (*krpc.Response, error){
	krpc.MethodPing:         (*Node).handlePing,
	krpc.MethodFindNode:     (*Node).handleFindNode,
	krpc.MethodGetPeers:     (*Node).handleGetPeers,
	krpc.MethodAnnouncePeer: (*Node).handleAnnounce,
	krpc.MethodGet:          (*Node).handleGet,
	krpc.MethodPut:          (*Node).handlePut,

	krpc.MethodSampleInfohashes: (*Node).handleSample,
}

func (h nodeHandler) ServeKRPC(ctx context.Context, q *krpc.Query) (*krpc.Response, error) {
	h.n.sawQuery(q)
	h.n.queryReceived(q.Method, NodeInfo{ID: q.Args.ID, Addr: q.From})
	if m, ok := nodeMethods[q.Method]; ok {
		return m(h.n, ctx, q)
	}
	return nil, krpc.ErrMethodUnknown
}

func (h nodeHandler) Inline(method string) bool {
	_, ok := nodeMethods[method]
	return ok
}

// ID returns the node's ID.
func (n *Node) ID() ID { return *n.idp.Load() }

// Addr returns the node's transport address (zero when the transport has none).
func (n *Node) Addr() netip.AddrPort { return n.t.LocalAddr() }

// Server returns the KRPC server the node runs on, for extensions and tools that send
// their own queries.
func (n *Node) Server() *krpc.Server { return n.srv }

// Close stops the node: it stops maintenance, ends lookups in progress, stops answering
// and waits for its goroutines. The transport stays open. Close is idempotent.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	if n.timer != nil {
		n.timer.Stop()
	}
	n.mu.Unlock()
	n.cancel()
	err := n.srv.Close()
	n.wg.Wait()
	for _, e := range n.cfg.KRPC.Extensions {
		if a, ok := e.(interface{ AttachNode(*Node) }); ok {
			if c, ok := a.(interface{ Close() error }); ok {
				c.Close() // the extensions attached to the node end with it
			}
		}
	}
	return err
}

// peerClosed forgets the node whose connection closed (connection-based transports).
func (n *Node) peerClosed(addr netip.AddrPort) {
	n.mu.Lock()
	removed := false
	if tb := n.tableFor(addr); tb != nil {
		removed = tb.removeAddr(addr)
	}
	n.mu.Unlock()
	if removed && n.log.IsDebug() {
		n.log.Debug("connection closed: node forgotten", "addr", addr)
	}
}

// spawn runs f on a goroutine that Close waits for; it does nothing once the node is closed.
func (n *Node) spawn(f func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

func (n *Node) jitter(d time.Duration) time.Duration {
	return d - d/10 + rand.N(d/5+1)
}

// query sends one query and records the outcome in the routing table. id is the node we
// believe is at addr (nil when unknown, as for bootstrap addresses).
func (n *Node) query(ctx context.Context, addr netip.AddrPort, id *ID, method string, args *krpc.Args) (*krpc.Response, error) {
	args.ID = n.ID()
	sent := time.Now()
	resp, err := n.srv.Call(ctx, addr, &krpc.Query{Method: method, Args: args})
	if err != nil {
		if r, ok := n.t.(transport.Resolver); ok {
			addr = r.Resolve(addr)
		}
		var ke *krpc.Error
		switch {
		case errors.As(err, &ke):
			// It answered, if only with an error: it is alive.
			if id != nil {
				n.mu.Lock()
				if tb := n.tableFor(addr); tb != nil {
					tb.responded(NodeInfo{ID: *id, Addr: addr}, time.Now())
				}
				n.mu.Unlock()
			}
		case id != nil && ctx.Err() == nil && !errors.Is(err, ErrClosed):
			n.mu.Lock()
			if tb := n.tableFor(addr); tb != nil {
				tb.failed(*id)
			}
			if errors.Is(err, krpc.ErrTimeout) {
				n.failed.add(addr, time.Now())
			}
			n.mu.Unlock()
		}
		return nil, err
	}
	rid := resp.Return.ID
	if rid == (ID{}) {
		return nil, fmt.Errorf("dht: %s response from %v without a node id: %w", method, addr, krpc.ErrMalformed)
	}
	// resp.From is where the answer came from: the peer behind an alias (a WebRTC
	// bootstrap address), which is the address the node is reached at.
	rtt := time.Since(sent)
	if resp.Resent {
		rtt = 0 // answered after a retry or a resend: which send it answers is unknown (Karn)
	}
	n.sawResponse(NodeInfo{ID: rid, Addr: resp.From}, id, rtt)
	if resp.IP.IsValid() {
		n.noteExternalIP(resp.IP.Addr(), resp.From.Addr())
	}
	return resp, nil
}

// queryDialing is query for an address that may need a connection first: when the
// transport is a Dialer and finds no route to addr, it dials addr and tries again.
func (n *Node) queryDialing(ctx context.Context, addr netip.AddrPort, id *ID, method string, args *krpc.Args) (*krpc.Response, error) {
	resp, err := n.query(ctx, addr, id, method, args)
	d, ok := n.t.(transport.Dialer)
	if err == nil || !ok || !errors.Is(err, transport.ErrUnreachable) {
		return resp, err
	}
	_, derr := d.Dial(ctx, addr.String())
	n.dials.note(addr.String(), derr == nil)
	if derr != nil {
		return nil, fmt.Errorf("dht: dialling %v: %w", addr, derr)
	}
	return n.query(ctx, addr, id, method, args)
}

// sawResponse adds or refreshes a node that answered us, rtt after our query (0: not
// measured).
func (n *Node) sawResponse(ni NodeInfo, expected *ID, rtt time.Duration) {
	if ni.ID == n.ID() {
		return
	}
	n.mu.Lock()
	n.failed.clear(ni.Addr)
	if rtt > 0 {
		n.rtt.Add(rtt)
	}
	tb := n.tableFor(ni.Addr)
	if tb == nil {
		n.mu.Unlock()
		return
	}
	if expected != nil && *expected != ni.ID {
		tb.failed(*expected) // whoever was there is gone
	}
	_, ping := tb.responded(ni, time.Now())
	if rtt > 0 {
		tb.sampleRTT(ni.ID, rtt)
	}
	n.mu.Unlock()
	if ping != nil {
		n.pingLiveness(*ping)
	}
}

// noteExternalIP counts a responder's claim that our IP is ip (BEP 42). Once enough agree
// on an IP our ID does not match, the node takes a secure ID for it (unless Config says
// to keep the ID), rebuilds its routing table around it and looks itself up anew.
func (n *Node) noteExternalIP(ip, reporter netip.Addr) {
	n.mu.Lock()
	ext, ok := n.votes.add(ip, reporter)
	if !ok || n.closed {
		n.mu.Unlock()
		return
	}
	n.externalIP = ext
	old := n.ID()
	if n.cfg.KeepID || n.cfg.ID != (ID{}) || ExemptIP(ext) || VerifyID(old, ext) {
		n.mu.Unlock()
		return
	}
	id := SecureID(ext)
	n.idp.Store(&id)
	for fam, tb := range n.tables {
		if tb != nil {
			n.tables[fam] = tb.rebased(id, time.Now())
		}
	}
	n.pong.Store(&krpc.Response{Return: n.newReturn()})
	n.mu.Unlock()
	n.log.Info("took a node ID that matches our external IP (BEP 42)", "ip", ext, "old", old, "new", id)
	n.spawn(func() { // within MaxLookupDuration, like maintenance lookups
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.MaxLookupDuration)
		defer cancel()
		n.Bootstrap(ctx)
	})
}

// sawQuery records a query; an unknown querier is pinged before it may enter the table.
func (n *Node) sawQuery(q *krpc.Query) {
	if q.ReadOnly || q.Args.ID == n.ID() || !usableAddr(q.From) {
		return // BEP 43: read-only nodes never enter the table
	}
	from := q.From // q is the server's, and reused once we return
	ni := NodeInfo{ID: q.Args.ID, Addr: from}
	n.mu.Lock()
	verify := false
	if tb := n.tableFor(from); tb != nil {
		verify = tb.queried(ni, time.Now())
	}
	if verify {
		if _, busy := n.verifying[from]; busy || len(n.verifying) >= maxVerifying {
			verify = false
		} else {
			n.verifying[from] = struct{}{}
		}
	}
	n.mu.Unlock()
	if !verify {
		return
	}
	ok := n.spawn(func() {
		defer func() {
			n.mu.Lock()
			delete(n.verifying, from)
			n.mu.Unlock()
		}()
		n.query(n.ctx, from, &ni.ID, krpc.MethodPing, &krpc.Args{}) // a timeout evicts it
	})
	if !ok {
		n.mu.Lock()
		delete(n.verifying, from)
		n.mu.Unlock()
	}
}

// pingLiveness pings a questionable node in the background; an answer refreshes it and a
// timeout counts towards its eviction.
func (n *Node) pingLiveness(ni NodeInfo) {
	ok := n.spawn(func() {
		n.query(n.ctx, ni.Addr, &ni.ID, krpc.MethodPing, &krpc.Args{})
		n.pingDone(ni)
	})
	if !ok {
		n.pingDone(ni)
	}
}

func (n *Node) pingDone(ni NodeInfo) {
	n.mu.Lock()
	if tb := n.tableFor(ni.Addr); tb != nil {
		tb.pingDone(ni.ID)
	}
	n.mu.Unlock()
}

// maintain runs every MaintenanceInterval: liveness pings, bucket refreshes, peer
// expiry. A table short of K good nodes gets a lookup of our own ID (from the bootstrap
// nodes too when it is empty); otherwise buckets unchanged for RefreshInterval are
// refreshed, and so is one bucket with room left, at most once per RefreshInterval/15
// (a minute by default): that is how a node finds the nodes that joined after it.
func (n *Node) maintain() {
	now := time.Now()
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return
	}
	var stale []NodeInfo
	var refresh []ID
	bootstrap := false
	for _, tb := range n.tables {
		if tb == nil {
			continue
		}
		stale = append(stale, tb.questionable(now, n.cfg.K)...)
		_, good, _ := tb.counts(now)
		if good < n.cfg.K {
			bootstrap = true
			continue
		}
		if r := tb.staleBuckets(now, n.cfg.RefreshInterval, 2); len(r) > 0 {
			refresh = append(refresh, r...)
		} else if target, ok := tb.thinBucket(now, n.cfg.RefreshInterval/15, n.cfg.RefreshInterval); ok {
			refresh = append(refresh, target)
		}
	}
	n.timer.Reset(n.jitter(n.cfg.MaintenanceInterval))
	n.mu.Unlock()

	for _, ni := range stale {
		n.pingLiveness(ni)
	}
	// Maintenance lookups end within MaxLookupDuration, like every lookup; the deadline
	// also bounds resolving and dialling saved bootstrap nodes.
	if bootstrap {
		n.spawn(func() {
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.MaxLookupDuration)
			defer cancel()
			n.Bootstrap(ctx)
		})
	}
	for _, target := range refresh {
		n.spawn(func() {
			ctx, cancel := context.WithTimeout(n.ctx, n.cfg.MaxLookupDuration)
			defer cancel()
			n.FindNode(ctx, target)
		})
	}
	n.verifyServer()
	swept := n.peers.Sweep() + n.items.Sweep()
	if swept > 0 && n.log.IsDebug() {
		n.log.Debug("expired peers and items", "count", swept)
	}
}

// families returns the address families a node on a transport with local address la
// keeps routing tables for: IPv4, IPv6, or both for a dual-stack socket ([::]) and for
// transports without an address of their own.
func families(la netip.AddrPort) (v4, v6 bool) {
	ip := la.Addr().Unmap()
	switch {
	case ip.Is4():
		return true, false
	case ip.Is6() && !ip.IsUnspecified():
		return false, true
	}
	return true, true
}

// tableFor returns the routing table for a's address family, or nil when the node has
// none for it. n.mu must be held.
func (n *Node) tableFor(a netip.AddrPort) *table { return n.tables[family(a)] }

// family returns 0 for an IPv4 address, 1 for IPv6.
func family(a netip.AddrPort) int {
	if a.Addr().Unmap().Is4() {
		return 0
	}
	return 1
}

// closestNodes returns the k nodes closest to target from the tables of the families
// asked for (both when v4 and v6 are set), nearest first. n.mu must be held.
func (n *Node) closestNodes(dst []NodeInfo, target ID, k int, confirmed, v4, v6 bool) []NodeInfo {
	start := len(dst)
	for fam, on := range []bool{v4, v6} {
		if tb := n.tables[fam]; on && tb != nil {
			dst = tb.closest(dst, target, k, confirmed)
		}
	}
	if v4 && v6 && n.fams[0] && n.fams[1] {
		sortByDistance(dst[start:], target)
		dst = dst[:start+min(k, len(dst)-start)]
	}
	return dst
}

// want returns the BEP 32 "want" of our queries: both families on a dual-stack node,
// nothing (the querier's own family) otherwise.
func (n *Node) want() []akrpc.Want {
	if n.fams[0] && n.fams[1] {
		return []akrpc.Want{akrpc.WantNodes, akrpc.WantNodes6}
	}
	return nil
}

// usableAddr reports whether a is an address a node can be reached at.
func usableAddr(a netip.AddrPort) bool {
	ip := a.Addr()
	return a.Port() != 0 && ip.IsValid() && !ip.IsUnspecified() && !ip.IsMulticast()
}

// toNodeInfos converts compact node infos, dropping unusable ones and ourselves.
func (n *Node) toNodeInfos(dst []NodeInfo, ns []akrpc.NodeInfo) []NodeInfo {
	for i := range ns {
		ip, ok := netip.AddrFromSlice(ns[i].Addr.IP)
		if !ok || ns[i].Addr.Port <= 0 || ns[i].Addr.Port > 65535 {
			continue
		}
		ni := NodeInfo{ID: ns[i].ID, Addr: netip.AddrPortFrom(ip.Unmap(), uint16(ns[i].Addr.Port))}
		if ni.ID == n.ID() || !usableAddr(ni.Addr) || !n.fams[family(ni.Addr)] {
			continue
		}
		dst = append(dst, ni)
	}
	return dst
}

// compactNodes converts NodeInfos to anacrolix's compact form for a response.
func compactNodes(ns []NodeInfo) []akrpc.NodeInfo {
	if len(ns) == 0 {
		return nil
	}
	out := make([]akrpc.NodeInfo, len(ns))
	for i, ni := range ns {
		out[i].ID = ni.ID
		out[i].Addr.FromAddrPort(ni.Addr)
	}
	return out
}
