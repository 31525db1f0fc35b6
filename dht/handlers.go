package dht

import (
	"context"
	"net/netip"
	"time"

	akrpc "github.com/anacrolix/dht/v2/krpc"

	"github.com/wdht/wdht/krpc"
)

func (n *Node) newReturn() *krpc.Return {
	return &krpc.Return{Return: akrpc.Return{ID: n.ID()}}
}

func (n *Node) handlePing(_ context.Context, q *krpc.Query) (*krpc.Response, error) {
	return n.pong.Load(), nil // the same for every ping; the server only reads it
}

// setNodes fills a response's nodes and nodes6 with the K closest nodes to target that
// answered us, by BEP 32: the families the query wants, else the querier's own.
func (n *Node) setNodes(r *krpc.Return, q *krpc.Query, target ID) {
	v4, v6 := false, false
	for _, w := range q.Args.Want {
		v4 = v4 || w == akrpc.WantNodes
		v6 = v6 || w == akrpc.WantNodes6
	}
	if !v4 && !v6 {
		v4 = q.From.Addr().Unmap().Is4()
		v6 = !v4
	}
	var buf [16]NodeInfo
	n.mu.Lock()
	if v4 {
		r.Nodes = compactNodes(n.closestNodes(buf[:0], target, n.cfg.K, true, true, false))
	}
	if v6 {
		r.Nodes6 = compactNodes(n.closestNodes(buf[:0], target, n.cfg.K, true, false, true))
	}
	n.mu.Unlock()
}

func (n *Node) handleFindNode(_ context.Context, q *krpc.Query) (*krpc.Response, error) {
	if !q.Args.HasTarget() {
		return nil, krpc.ProtocolError("find_node: missing target")
	}
	r := n.newReturn()
	n.setNodes(r, q, q.Args.Target)
	return &krpc.Response{Return: r}, nil
}

func (n *Node) handleGetPeers(_ context.Context, q *krpc.Query) (*krpc.Response, error) {
	ih := q.Args.InfoHash
	if !q.Args.HasInfoHash() {
		return nil, krpc.ProtocolError("get_peers: missing info_hash")
	}
	r := n.newReturn()
	tok := n.tok.create(q.From.Addr(), ih, time.Now())
	r.Token = &tok
	for _, p := range n.peers.PeersFor(ih, n.cfg.MaxValues, n.cfg.ServePeer) {
		var na akrpc.NodeAddr
		na.FromAddrPort(p)
		r.Values = append(r.Values, na)
	}
	n.setNodes(r, q, ih)
	return &krpc.Response{Return: r}, nil
}

func (n *Node) handleAnnounce(_ context.Context, q *krpc.Query) (*krpc.Response, error) {
	a := q.Args
	if !a.HasInfoHash() {
		return nil, krpc.ProtocolError("announce_peer: missing info_hash")
	}
	if !n.tok.valid(a.Token, q.From.Addr(), a.InfoHash, time.Now()) {
		return nil, krpc.ProtocolError("announce_peer: bad token")
	}
	port := q.From.Port()
	if !a.ImpliedPort {
		if a.Port == nil || *a.Port <= 0 || *a.Port > 65535 {
			return nil, krpc.ProtocolError("announce_peer: missing or invalid port")
		}
		port = uint16(*a.Port)
	}
	peer := netip.AddrPortFrom(q.From.Addr(), port)
	n.peers.AddFrom(a.InfoHash, peer, PeerOrigin{Network: n.cfg.Network, ImpliedPort: a.ImpliedPort})
	n.peerAnnounced(a.InfoHash, peer, NodeInfo{ID: a.ID, Addr: q.From})
	return &krpc.Response{Return: n.newReturn()}, nil
}
