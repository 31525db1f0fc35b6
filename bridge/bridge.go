// Package bridge runs a mainline (UDP) DHT node and a WebTorrent (WebRTC) DHT node in one
// process, so that browsers, which can only join the WebTorrent DHT, reach data that
// lives on the mainline DHT.
//
// The two nodes keep their own routing tables and node IDs (an address only means
// something on the transport it was learned on; BEP 45's one node ID per address), and
// share one peer store and one BEP 44 item store, as go-libp2p-kad-dht's "dual" DHT does.
// The Bridge's GetPeers and Get ask both networks and merge the answers; Announce and Put
// write to both. A get query that reaches one node for an item neither holds is answered
// from a lookup on the other network, within a time, concurrency and rate bound: a
// browser reads BEP 44 items that exist only on the mainline DHT.
//
// # Which peers each network is served
//
// Every peer in the shared store is tagged with the network it was announced on
// (dht.PeerOrigin: "mainline" or "web") and whether the announce used implied_port. Each
// node answers get_peers only with peers its network can use:
//
//   - a peer announced over WebRTC with implied_port goes only to the WebTorrent
//     network: its address is that of a WebRTC data channel (an ephemeral port of a
//     browser's connection), which no mainline client can connect to;
//   - a peer announced over WebRTC with an explicit port goes to both: the announcer
//     named a port, as a hybrid client listening for BitTorrent connections does;
//   - a peer announced on the mainline DHT goes to both, but to WebRTC queriers not
//     among the "values": on the WebTorrent wire a get_peers value is not handed over
//     as an address, the responder relays the querier's WebRTC offer to it
//     (peer_connection) and only the peers that answer reach the querier, so a mainline
//     peer, which has no WebRTC connection, would take one of the querier's few offers
//     (two with the JS's K=2) from a WebRTC peer that could answer. Mainline peers go
//     instead under the response key signals.PeersKey ("peers", at most
//     signals.MaxPeers), as plain addresses no offer is relayed to. A wdht WebRTC node
//     (signals.NewNode) adds them to the peers its GetPeers returns, after the WebRTC
//     peers it connected to: a program that also speaks BitTorrent over TCP or uTP (a
//     hybrid client) can use them. A JS webtorrent-dht querier ignores the key (it
//     keeps only the values it connected to), as it would have to: a browser cannot
//     open a connection to a mainline peer.
//
// Peers stored without an origin (dht.PeerStore.Add) go to both as values. The bridge's
// own GetPeers, for Go programs, returns peers of every origin.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/extensions/signals"
	"github.com/wdht/wdht/internal/ratelimit"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport"
)

// Defaults for Config fields left zero.
const (
	DefaultFallbackTimeout     = 1500 * time.Millisecond
	DefaultFallbackConcurrency = 8
	DefaultFallbackRate        = 20
)

// Config configures a Bridge. The zero value is ready to use.
type Config struct {
	// Mainline configures the UDP node (K defaults to 8). Its Peers, Items, Network and
	// ServePeer are ignored: the bridge shares its own stores and sets the rule.
	Mainline dht.Config
	// Web configures the WebRTC node (K defaults to 2, like the JS). Its Peers, Items,
	// Network and ServePeer are ignored likewise.
	Web dht.Config
	// Signals configures the WebTorrent extension of the WebRTC node.
	Signals signals.Config
	// Peers and Items are the shared stores. Default: new stores with default settings.
	Peers *dht.PeerStore
	Items *dht.ItemStore
	// FallbackTimeout bounds the lookup on the other network that answers a get for an
	// item neither node holds. It must leave a JS querier (who gives up after 2 s) time
	// to receive the answer. Default 1.5 s.
	FallbackTimeout time.Duration
	// FallbackConcurrency caps such lookups running at once; a get beyond it is answered
	// from the local store alone. Default 8.
	FallbackConcurrency int
	// FallbackRate caps such lookups per second (bursts of as many). A negative rate
	// turns fallbacks off. Default 20.
	FallbackRate float64
	// Logger receives the bridge's logs; it is also the nodes' default Logger.
	Logger hclog.Logger
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.FallbackTimeout < 0:
		return fmt.Errorf("bridge: Config.FallbackTimeout %v is negative", c.FallbackTimeout)
	case c.FallbackConcurrency < 0:
		return fmt.Errorf("bridge: Config.FallbackConcurrency %d is negative", c.FallbackConcurrency)
	}
	if err := c.Mainline.Validate(); err != nil {
		return fmt.Errorf("bridge: Mainline: %w", err)
	}
	if err := c.Web.Validate(); err != nil {
		return fmt.Errorf("bridge: Web: %w", err)
	}
	return c.Signals.Validate()
}

// The networks the bridge tags stored peers with (dht.PeerOrigin.Network).
const (
	NetworkMainline = "mainline"
	NetworkWeb      = "web"
)

// ServeMainline is the rule by which the bridge's mainline node picks the stored peers
// it returns: all but those announced over WebRTC with implied_port (see the package
// documentation).
func ServeMainline(o dht.PeerOrigin) bool { return !(o.Network == NetworkWeb && o.ImpliedPort) }

// ServeWeb is the rule by which the bridge's WebTorrent node picks the stored peers it
// returns as get_peers values, to which offers are relayed: all but the peers announced
// on the mainline DHT, which go under signals.PeersKey instead (see the package
// documentation).
func ServeWeb(o dht.PeerOrigin) bool { return o.Network != NetworkMainline }

// isMainline picks the peers announced on the mainline DHT.
func isMainline(o dht.PeerOrigin) bool { return o.Network == NetworkMainline }

// plainPeers is the krpc.Extension of the WebTorrent node that adds the mainline peers
// of an infohash to its get_peers responses under signals.PeersKey.
type plainPeers struct{ peers *dht.PeerStore }

func (p plainPeers) WrapCaller(next krpc.Caller) krpc.Caller { return next }
func (p plainPeers) Methods() map[string]krpc.Handler        { return nil }

func (p plainPeers) WrapHandler(next krpc.Handler) krpc.Handler {
	return &plainPeersHandler{peers: p.peers, next: next}
}

type plainPeersHandler struct {
	peers *dht.PeerStore
	next  krpc.Handler
}

func (h *plainPeersHandler) ServeKRPC(ctx context.Context, q *krpc.Query) (*krpc.Response, error) {
	if q.Method != krpc.MethodGetPeers {
		return h.next.ServeKRPC(ctx, q)
	}
	ih := q.Args.InfoHash // q is the server's: read it before anything else
	resp, err := h.next.ServeKRPC(ctx, q)
	if err == nil && resp != nil && resp.Return != nil {
		signals.SetPeers(resp.Return, h.peers.PeersFor(ih, signals.MaxPeers, isMainline))
	}
	return resp, err
}

// Inline keeps the node's methods where the node runs them: get_peers reads the store
// only.
func (h *plainPeersHandler) Inline(method string) bool {
	in, ok := h.next.(krpc.InlineHandler)
	return ok && in.Inline(method)
}

// Bridge is a mainline node and a WebTorrent node sharing their stores.
type Bridge struct {
	// Mainline is the UDP node; Web the WebRTC node.
	Mainline, Web *dht.Node

	peers *dht.PeerStore
	items *dht.ItemStore
	log   hclog.Logger

	toWeb, toMainline *fallback // for Stats
}

// New starts the two nodes: the mainline one on mainline (a UDP transport) and the
// WebTorrent one on web with the extension negotiating connections through sig (for a
// WebRTC transport, signals.WebRTC(web)). cfg may be nil; it is not changed. The caller
// keeps the transports and closes them after Close.
func New(mainline, web transport.Transport, sig signals.Signaler, cfg *Config) (*Bridge, error) {
	if mainline == nil || web == nil || sig == nil {
		return nil, errors.New("bridge: New: nil transport or Signaler")
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.FallbackTimeout == 0 {
		c.FallbackTimeout = DefaultFallbackTimeout
	}
	if c.FallbackConcurrency == 0 {
		c.FallbackConcurrency = DefaultFallbackConcurrency
	}
	if c.FallbackRate == 0 {
		c.FallbackRate = DefaultFallbackRate
	}
	b := &Bridge{peers: c.Peers, items: c.Items, log: c.Logger.Named("bridge")}
	var err error
	if b.peers == nil {
		if b.peers, err = dht.NewPeerStore(nil); err != nil {
			return nil, err
		}
	}
	if b.items == nil {
		if b.items, err = dht.NewItemStore(nil); err != nil {
			return nil, err
		}
	}
	limit := ratelimit.NewBucket(c.FallbackRate, max(1, int(c.FallbackRate)))
	slots := make(chan struct{}, c.FallbackConcurrency)

	// Each node's get falls back on the other node; the pointers are set once both exist.
	var toWeb, toMainline fallback
	b.toWeb, b.toMainline = &toWeb, &toMainline
	for _, f := range []*fallback{&toWeb, &toMainline} {
		f.items, f.timeout, f.limit, f.slots, f.log = b.items, c.FallbackTimeout, limit, slots, b.log
	}

	mc := c.Mainline
	mc.Peers, mc.Items = b.peers, b.items
	mc.Network, mc.ServePeer = NetworkMainline, ServeMainline
	if mc.Logger == nil {
		mc.Logger = c.Logger.Named("mainline")
	}
	mc.KRPC.Extensions = append(append([]krpc.Extension(nil), mc.KRPC.Extensions...), &toWeb)
	if b.Mainline, err = dht.New(mainline, &mc); err != nil {
		return nil, err
	}

	wc := c.Web
	wc.Peers, wc.Items = b.peers, b.items
	wc.Network, wc.ServePeer = NetworkWeb, ServeWeb
	if wc.Logger == nil {
		wc.Logger = c.Logger.Named("web")
	}
	wc.KRPC.Extensions = append(append([]krpc.Extension(nil), wc.KRPC.Extensions...), &toMainline, plainPeers{b.peers})
	if b.Web, err = signals.NewNode(web, sig, &wc, &c.Signals); err != nil {
		b.Mainline.Close()
		return nil, err
	}
	if c.FallbackRate >= 0 {
		// Both nodes already answer queries: the links are published atomically.
		toWeb.other.Store(b.Web)
		toMainline.other.Store(b.Mainline)
	}
	return b, nil
}

// Close closes both nodes; the transports stay open.
func (b *Bridge) Close() error {
	return errors.Join(b.Web.Close(), b.Mainline.Close())
}

// Peers returns the shared peer store; Items the shared item store.
func (b *Bridge) Peers() *dht.PeerStore { return b.peers }

// Items returns the shared BEP 44 item store.
func (b *Bridge) Items() *dht.ItemStore { return b.items }

// Bootstrap bootstraps both nodes, from the given addresses (and their configured ones).
// It fails only when both fail.
func (b *Bridge) Bootstrap(ctx context.Context, mainline, web []netip.AddrPort) error {
	var wg sync.WaitGroup
	var em, ew error
	wg.Add(2)
	go func() { defer wg.Done(); _, em = b.Mainline.Bootstrap(ctx, mainline...) }()
	go func() { defer wg.Done(); _, ew = b.Web.Bootstrap(ctx, web...) }()
	wg.Wait()
	if em != nil && ew != nil {
		return fmt.Errorf("bridge: bootstrap: mainline: %w; web: %w", em, ew)
	}
	return nil
}

// GetPeers looks infohash up on both networks at once, with the shape of
// dht.Node.GetPeers: fn sees each peer once, on the calling goroutine, in the order they
// arrive, with the node that returned it (from; its address is one of the network the
// peer was found on: b.Mainline's or b.Web's). The result merges both lookups: their
// counts added, Rounds the larger, Closest both networks' closest nodes nearest first.
// It fails only when both lookups fail.
func (b *Bridge) GetPeers(ctx context.Context, infohash dht.ID, fn func(peer netip.AddrPort, from dht.NodeInfo) bool) (*dht.LookupResult, error) {
	start := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type found struct {
		peer netip.AddrPort
		from dht.NodeInfo
	}
	type done struct {
		res *dht.LookupResult
		err error
	}
	foundc := make(chan found)
	donec := make(chan done, 2)
	for _, n := range []*dht.Node{b.Mainline, b.Web} {
		go func() {
			res, err := n.GetPeers(ctx, infohash, func(p netip.AddrPort, from dht.NodeInfo) bool {
				select {
				case foundc <- found{p, from}:
					return true
				case <-ctx.Done():
					return false
				}
			})
			donec <- done{res, err}
		}()
	}
	seen := make(map[netip.AddrPort]bool)
	out := &dht.LookupResult{Target: infohash}
	var failed []error
	for finished := 0; finished < 2; {
		select {
		case f := <-foundc:
			if !seen[f.peer] {
				seen[f.peer] = true
				if fn != nil && !fn(f.peer, f.from) {
					cancel()
				}
			}
		case d := <-donec:
			finished++
			if d.err != nil {
				failed = append(failed, d.err)
			}
			if r := d.res; r != nil {
				out.Queries += r.Queries
				out.Responses += r.Responses
				out.Rounds = max(out.Rounds, r.Rounds)
				out.Closest = append(out.Closest, r.Closest...)
			}
		}
	}
	slices.SortStableFunc(out.Closest, func(a, c dht.NodeInfo) int {
		for i := range infohash {
			if x, y := a.ID[i]^infohash[i], c.ID[i]^infohash[i]; x != y {
				return int(x) - int(y)
			}
		}
		return 0
	})
	out.Duration = time.Since(start)
	if len(failed) == 2 && ctx.Err() == nil {
		return out, fmt.Errorf("bridge: get_peers: %w", errors.Join(failed...))
	}
	return out, nil
}

// Announce announces infohash on both networks: on the mainline one with port (0 for
// implied_port), on the WebTorrent one with implied_port (a port means nothing over
// WebRTC). It fails only when both fail.
func (b *Bridge) Announce(ctx context.Context, infohash dht.ID, port int) (mainline, web *dht.AnnounceResult, err error) {
	var wg sync.WaitGroup
	var em, ew error
	wg.Add(2)
	go func() { defer wg.Done(); mainline, em = b.Mainline.Announce(ctx, infohash, port) }()
	go func() { defer wg.Done(); web, ew = b.Web.Announce(ctx, infohash, 0) }()
	wg.Wait()
	if em != nil && ew != nil {
		return mainline, web, fmt.Errorf("bridge: announce: mainline: %w; web: %w", em, ew)
	}
	return mainline, web, nil
}

// Get looks the item up on both networks and returns the newest valid version found.
func (b *Bridge) Get(ctx context.Context, target dht.ID, opts *dht.GetOptions) (*dht.GetResult, error) {
	var wg sync.WaitGroup
	var rm, rw *dht.GetResult
	var em, ew error
	wg.Add(2)
	go func() { defer wg.Done(); rm, em = b.Mainline.Get(ctx, target, opts) }()
	go func() { defer wg.Done(); rw, ew = b.Web.Get(ctx, target, opts) }()
	wg.Wait()
	switch {
	case em != nil && ew != nil:
		if errors.Is(em, dht.ErrNotFound) && errors.Is(ew, dht.ErrNotFound) {
			return rm, dht.ErrNotFound
		}
		return rm, fmt.Errorf("bridge: get: mainline: %w; web: %w", em, ew)
	case em != nil:
		return rw, nil
	case ew != nil:
		return rm, nil
	case rw.Item.Seq > rm.Item.Seq:
		return rw, nil
	}
	return rm, nil
}

// Put stores the item on both networks. It fails only when both fail.
func (b *Bridge) Put(ctx context.Context, it *dht.Item, opts *dht.PutOptions) (mainline, web *dht.PutResult, err error) {
	var wg sync.WaitGroup
	var em, ew error
	wg.Add(2)
	go func() { defer wg.Done(); mainline, em = b.Mainline.Put(ctx, it, opts) }()
	go func() { defer wg.Done(); web, ew = b.Web.Put(ctx, it, opts) }()
	wg.Wait()
	if em != nil && ew != nil {
		return mainline, web, fmt.Errorf("bridge: put: mainline: %w; web: %w", em, ew)
	}
	return mainline, web, nil
}

// fallback is the krpc.Extension that answers a get for an item missing from the shared
// store with a lookup on the other node's network.
type fallback struct {
	other   atomic.Pointer[dht.Node] // set by New once both nodes exist
	items   *dht.ItemStore
	timeout time.Duration
	limit   *ratelimit.Bucket
	slots   chan struct{}
	log     hclog.Logger
	counts  fallbackCounters
}

func (f *fallback) WrapCaller(next krpc.Caller) krpc.Caller { return next }
func (f *fallback) Methods() map[string]krpc.Handler        { return nil }

func (f *fallback) WrapHandler(next krpc.Handler) krpc.Handler {
	return &fallbackHandler{f: f, next: next}
}

type fallbackHandler struct {
	f    *fallback
	next krpc.Handler
}

func (h *fallbackHandler) ServeKRPC(ctx context.Context, q *krpc.Query) (*krpc.Response, error) {
	if q.Method != krpc.MethodGet || !q.Args.HasTarget() {
		return h.next.ServeKRPC(ctx, q)
	}
	target, seq := q.Args.Target, q.Args.Seq // q is the server's: read it before anything else
	relay := h.f.fetch(ctx, target, seq)
	resp, err := h.next.ServeKRPC(ctx, q)
	if err == nil && relay != nil && len(resp.Return.V) == 0 {
		// A salted mutable item the bridge cannot check: passed on for the querier to check.
		r := resp.Return
		s := relay.Seq
		r.V, r.K, r.Sig, r.Seq = relay.V, relay.K, relay.Sig, &s
	}
	return resp, err
}

// Inline keeps the node's other methods on the read loop; get may wait for a lookup.
func (h *fallbackHandler) Inline(method string) bool {
	in, ok := h.next.(krpc.InlineHandler)
	return ok && method != krpc.MethodGet && in.Inline(method)
}

// fetch looks target up on the other network when the shared store lacks it (or holds
// no version newer than seq), within the bounds. An item it can check (immutable, or
// mutable without salt) goes into the shared store, from which the node answers; a
// mutable item with a salt, which only a querier knowing the salt can check, is returned
// for this answer alone and never stored.
func (f *fallback) fetch(ctx context.Context, target dht.ID, seq *int64) *dht.Item {
	if it, ok := f.items.Get(target); ok && (seq == nil || it.Seq > *seq) {
		return nil
	}
	other := f.other.Load()
	if other == nil {
		return nil
	}
	if !f.limit.Allow() {
		f.counts.skipped.Add(1)
		return nil
	}
	select {
	case f.slots <- struct{}{}:
		defer func() { <-f.slots }()
	default:
		f.counts.skipped.Add(1)
		return nil // busy: answer from what we have
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	res, err := other.Get(ctx, target, &dht.GetOptions{Seq: seq, Unchecked: true})
	if err != nil {
		f.counts.notFound.Add(1)
		if f.log.IsDebug() {
			f.log.Debug("fallback get found nothing", "target", target, "error", err)
		}
		return nil
	}
	f.counts.found.Add(1)
	if res.Item.Target() == target && res.Item.Verify() == nil {
		if err := f.items.Put(res.Item, nil); err != nil && f.log.IsDebug() {
			f.log.Debug("fallback item not stored", "target", target, "error", err)
		}
		return nil
	}
	return res.Item
}
