package dht

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport"
)

// NodeError is a KRPC error a node answered a query with. Match it with errors.As, or
// its code with errors.Is against a *krpc.Error (such as ErrSeqTooLow).
type NodeError struct {
	Addr netip.AddrPort // the node that answered
	Err  *krpc.Error
}

func (e *NodeError) Error() string { return fmt.Sprintf("node %v answered %v", e.Addr, e.Err) }

// Unwrap returns the *krpc.Error.
func (e *NodeError) Unwrap() error { return e.Err }

// Ping sends a ping to addr and returns the ID of the node that answered.
func (n *Node) Ping(ctx context.Context, addr netip.AddrPort) (ID, error) {
	if !usableAddr(addr) {
		return ID{}, fmt.Errorf("dht: Ping: %v is not a usable node address", addr)
	}
	resp, err := n.queryDialing(ctx, addr, nil, krpc.MethodPing, &krpc.Args{})
	if err != nil {
		return ID{}, err
	}
	return resp.Return.ID, nil
}

// Bootstrap joins the network: it runs a lookup of the node's own ID starting from addrs
// (or, when none are given, from Config.Bootstrap and the saved state) and from whatever
// the routing table already holds. It fails with ErrNoNodes when no node answered.
func (n *Node) Bootstrap(ctx context.Context, addrs ...netip.AddrPort) (*LookupResult, error) {
	for _, a := range addrs {
		if !usableAddr(a) {
			return nil, fmt.Errorf("dht: Bootstrap: %v is not a usable node address", a)
		}
	}
	if len(addrs) == 0 {
		// A full slice expression: concurrent Bootstraps must not append into the
		// spare capacity of the shared n.bootstrap.
		addrs = append(n.bootstrap[:len(n.bootstrap):len(n.bootstrap)], n.resolveNames(ctx)...)
	}
	self := n.ID()
	res, _, err := n.lookup(ctx, lookupSpec{
		method: krpc.MethodFindNode,
		target: self,
		args:   func() *krpc.Args { a := &krpc.Args{}; a.Target = self; return a },
		seeds:  addrs,
	})
	if err != nil {
		return res, fmt.Errorf("dht: bootstrap: %w", err)
	}
	n.setReady()
	return res, nil
}

// resolveNames turns the saved bootstrap nodes that have names into addresses: by dialling
// them on a transport that dials (WebRTC signalling, which keeps the name for TLS), else
// with DNS. Those that fail are logged and left out.
func (n *Node) resolveNames(ctx context.Context) []netip.AddrPort {
	var out []netip.AddrPort
	d, dials := n.t.(transport.Dialer)
	for _, hp := range n.bootstrapNames {
		if dials {
			peer, err := d.Dial(ctx, hp)
			n.dials.note(hp, err == nil)
			if err == nil {
				out = append(out, peer)
			} else {
				n.log.Warn("cannot dial a saved bootstrap node", "node", hp, "error", err)
			}
			continue
		}
		host, port, err := splitHostPort(hp)
		if err != nil {
			continue
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			n.log.Warn("cannot resolve a saved bootstrap node", "node", hp, "error", err)
			continue
		}
		for _, ip := range ips {
			out = append(out, netip.AddrPortFrom(ip.Unmap(), port))
		}
	}
	return out
}

// FindNode runs an iterative find_node lookup and returns the closest nodes to target.
func (n *Node) FindNode(ctx context.Context, target ID) (*LookupResult, error) {
	res, _, err := n.lookup(ctx, lookupSpec{
		method: krpc.MethodFindNode,
		target: target,
		args:   func() *krpc.Args { a := &krpc.Args{}; a.Target = target; return a },
	})
	return res, err
}

// maxLookupPeers bounds the distinct peers one get_peers lookup delivers (and remembers
// to deliver each once): responders cannot grow its memory without bound.
const maxLookupPeers = 4096

// GetPeers runs an iterative get_peers lookup for infohash. fn is called with each peer,
// once, on the calling goroutine, with the node that returned it (from): first the peers
// announced to this node itself (from is this node: its ID and Addr), then those of the
// answers as they arrive, up to 4,096 distinct peers (later ones are dropped). fn may be
// nil. When fn returns false the lookup stops early.
func (n *Node) GetPeers(ctx context.Context, infohash ID, fn func(peer netip.AddrPort, from NodeInfo) bool) (*LookupResult, error) {
	res, _, err := n.getPeers(ctx, infohash, fn)
	return res, err
}

func (n *Node) getPeers(ctx context.Context, infohash ID, fn func(netip.AddrPort, NodeInfo) bool) (*LookupResult, []*candidate, error) {
	seen := make(map[netip.AddrPort]struct{})
	// Peers announced to this node come first, as from any other node.
	self := NodeInfo{ID: n.ID(), Addr: n.Addr()}
	for _, p := range n.peers.PeersFor(infohash, n.cfg.MaxValues, n.cfg.ServePeer) {
		seen[p] = struct{}{}
		if fn != nil && !fn(p, self) {
			return &LookupResult{Target: infohash}, nil, nil
		}
	}
	return n.lookup(ctx, lookupSpec{
		method: krpc.MethodGetPeers,
		target: infohash,
		args:   func() *krpc.Args { a := &krpc.Args{}; a.InfoHash = infohash; return a },
		onResponse: func(c *candidate, r *krpc.Response) bool {
			if r.Return.Token != nil {
				c.token = *r.Return.Token
			}
			for _, v := range r.Return.Values {
				ip, ok := netip.AddrFromSlice(v.IP)
				if !ok || v.Port <= 0 || v.Port > 65535 {
					continue
				}
				p := netip.AddrPortFrom(ip.Unmap(), uint16(v.Port))
				if _, dup := seen[p]; dup || len(seen) >= maxLookupPeers {
					continue
				}
				seen[p] = struct{}{}
				if fn != nil && !fn(p, c.NodeInfo) {
					return true
				}
			}
			return false
		},
	})
}

// AnnounceResult describes an announce.
type AnnounceResult struct {
	// Lookup is the get_peers lookup that found the nodes to announce to.
	Lookup *LookupResult
	// Peers are the peers the lookup found.
	Peers []netip.AddrPort
	// Stored counts the nodes that accepted the announce.
	Stored int
}

// Announce announces that a peer for infohash runs at port on this node's IP: a get_peers
// lookup, then announce_peer, with each node's token, to the K closest nodes that
// answered. A port of 0 announces with implied_port, asking nodes to use the port our
// messages come from (the only meaningful choice over WebRTC).
func (n *Node) Announce(ctx context.Context, infohash ID, port int) (*AnnounceResult, error) {
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("dht: Announce: port %d out of range", port)
	}
	out := &AnnounceResult{}
	res, closest, err := n.getPeers(ctx, infohash, func(p netip.AddrPort, _ NodeInfo) bool {
		out.Peers = append(out.Peers, p)
		return true
	})
	out.Lookup = res
	if err != nil {
		return out, err
	}
	type result struct{ err error }
	done := make(chan result, len(closest))
	sent := 0
	for _, c := range closest {
		if c.token == "" {
			continue
		}
		a := &krpc.Args{}
		a.InfoHash, a.Token = infohash, c.token
		if port == 0 {
			a.ImpliedPort = true
			if p := int(n.t.LocalAddr().Port()); p != 0 {
				a.Port = &p // BEP 5 still wants a port; ours is as good as any
			}
		} else {
			a.Port = &port
		}
		addr, id := c.Addr, c.ID
		if n.spawn(func() {
			_, err := n.query(ctx, addr, &id, krpc.MethodAnnouncePeer, a)
			done <- result{err}
		}) {
			sent++
		}
	}
	var errs []error
	for range sent {
		if r := <-done; r.err == nil {
			out.Stored++
		} else {
			errs = append(errs, r.err)
		}
	}
	if out.Stored == 0 {
		if len(errs) == 0 {
			return out, fmt.Errorf("dht: announce: no node gave a token: %w", ErrNoNodes)
		}
		return out, fmt.Errorf("dht: announce: no node accepted it: %w", errors.Join(errs...))
	}
	return out, nil
}

// allNodes returns the nodes of every routing table (only good ones when goodOnly).
// n.mu must be held.
func (n *Node) allNodes(goodOnly bool) []NodeInfo {
	var out []NodeInfo
	for _, tb := range n.tables {
		if tb != nil {
			out = tb.nodes(out, goodOnly, time.Now())
		}
	}
	return out
}

// Nodes returns the nodes in the routing tables (one per address family on a
// dual-stack node).
func (n *Node) Nodes() []NodeInfo {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.allNodes(false)
}

// Peers returns the peer store the node answers get_peers from.
func (n *Node) Peers() *PeerStore { return n.peers }

// Items returns the BEP 44 item store the node answers get from.
func (n *Node) Items() *ItemStore { return n.items }

// Stats are a node's counters and sizes.
type Stats struct {
	ID                             ID
	Nodes, GoodNodes, Replacements int    // routing table
	Buckets                        int    // routing table buckets
	Infohashes, Peers              int    // peer store
	Items, ItemBytes               int    // BEP 44 item store
	Lookups, LookupQueries         uint64 // lookups run and the queries they sent
	// LookupDurations counts the lookups that ended by duration, in the buckets of
	// LookupBuckets (the last entry: longer than all), and LookupTime is their total
	// duration.
	LookupDurations [len(LookupBuckets) + 1]uint64
	LookupTime      time.Duration
	// NodesV4 and NodesV6 are Nodes by address family (the routing table of each).
	NodesV4, NodesV6 int
	ExternalIP       netip.Addr // our address as other nodes see it (BEP 42), once enough agree
	SecureID         bool       // our ID is the one BEP 42 ties to ExternalIP
	EventsDropped    uint64     // events dropped because the hooks' queue was full
	KRPC             krpc.Stats
}

// Stats returns the node's current counters.
func (n *Node) Stats() Stats {
	s := Stats{ID: n.ID(), KRPC: n.srv.Stats(), Lookups: n.lookups.Load(), LookupQueries: n.lookupQueries.Load()}
	n.mu.Lock()
	for fam, tb := range n.tables {
		if tb != nil {
			nodes, good, repl := tb.counts(time.Now())
			s.Nodes, s.GoodNodes, s.Replacements = s.Nodes+nodes, s.GoodNodes+good, s.Replacements+repl
			s.Buckets += len(tb.buckets)
			if fam == 0 {
				s.NodesV4 = nodes
			} else {
				s.NodesV6 = nodes
			}
		}
	}
	s.ExternalIP = n.externalIP
	n.mu.Unlock()
	s.SecureID = VerifyID(s.ID, s.ExternalIP)
	n.lookupTimes.snapshot(&s)
	s.Infohashes, s.Peers = n.peers.Len()
	s.Items, s.ItemBytes = n.items.Len()
	if n.events != nil {
		s.EventsDropped = n.events.dropped.Load()
	}
	return s
}
