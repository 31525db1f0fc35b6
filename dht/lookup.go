package dht

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/wdht/wdht/krpc"
)

// LookupResult describes a finished iterative lookup.
type LookupResult struct {
	// Target is the ID looked up.
	Target ID
	// Closest are up to K nodes closest to Target that answered, nearest first.
	Closest []NodeInfo
	// Queries counts the nodes queried; Responses those that answered.
	Queries, Responses int
	// Rounds is the longest chain of referrals followed: 1 when only the starting nodes
	// answered, 2 when a node they returned answered, and so on.
	Rounds int
	// Duration is how long the lookup took.
	Duration time.Duration
}

// minLookupWidth is the fewest closest nodes a lookup waits to hear from.
const minLookupWidth = 4

type candState uint8

const (
	candNew candState = iota
	candInFlight
	candResponded
	candFailed
)

type candidate struct {
	NodeInfo
	state candState
	depth int
	token string // from get_peers (or get) responses
}

// lookupSpec says what a lookup asks and what it does with the answers.
type lookupSpec struct {
	method string
	target ID
	args   func() *krpc.Args
	// seeds are addresses to query whose IDs we do not know (bootstrap nodes).
	seeds []netip.AddrPort
	// onResponse sees every answer, on the lookup's goroutine; returning true stops the
	// lookup early.
	onResponse func(c *candidate, r *krpc.Response) (stop bool)
}

type lookupResult struct {
	c    *candidate
	resp *krpc.Response
	err  error
}

// lookup runs an iterative Kademlia lookup: it keeps Alpha queries in flight to the
// closest nodes not yet queried, learns closer nodes from every answer, and ends when the
// K closest nodes it knows of (at least minLookupWidth) have all answered or failed. It returns the responded
// candidates nearest first (with their tokens).
func (n *Node) lookup(ctx context.Context, spec lookupSpec) (*LookupResult, []*candidate, error) {
	start := time.Now()
	k, alpha := n.cfg.K, n.cfg.Alpha
	// width is how many of the closest known nodes must answer before the lookup ends. It
	// is K, but at least minLookupWidth: with the JS's K=2 a lookup would trust the
	// first two nodes that answered, and on a sparse network such as WebRTC's, where a
	// response carries only K nodes, it then ends short of the closest ones.
	width := max(k, minLookupWidth)
	self := n.ID()
	res := &LookupResult{Target: spec.target}
	n.lookups.Add(1)
	defer func() { n.lookupTimes.add(time.Since(start)) }() // every lookup, even one with no node to ask

	var cands []*candidate // known IDs, nearest first
	var seeds []*candidate // unknown IDs, queried in order
	byID := make(map[ID]*candidate)
	byAddr := make(map[netip.AddrPort]*candidate)
	limit := max(8*k, 64)

	insert := func(ni NodeInfo, depth int) *candidate {
		if byID[ni.ID] != nil || byAddr[ni.Addr] != nil || ni.ID == self || n.cfg.EnforceSecureIDs && !ni.secure() && !ExemptIP(ni.Addr.Addr()) {
			return nil
		}
		c := &candidate{NodeInfo: ni, depth: depth}
		i, _ := slices.BinarySearchFunc(cands, c, func(a, b *candidate) int { return cmpDistance(&spec.target, &a.ID, &b.ID) })
		if i >= limit {
			return nil
		}
		cands = slices.Insert(cands, i, c)
		byID[ni.ID], byAddr[ni.Addr] = c, c
		if len(cands) > limit { // drop the farthest node not yet queried
			for j := len(cands) - 1; j >= 0; j-- {
				if d := cands[j]; d.state == candNew {
					delete(byID, d.ID)
					delete(byAddr, d.Addr)
					cands = slices.Delete(cands, j, j+1)
					break
				}
			}
		}
		return c
	}

	n.mu.Lock()
	start0 := n.closestNodes(nil, spec.target, 2*k, false, true, true)
	want := n.want()
	n.mu.Unlock()
	if len(start0) == 0 && len(spec.seeds) == 0 {
		spec.seeds = n.bootstrap // an empty table: start from the bootstrap nodes
	}
	for _, ni := range start0 {
		insert(ni, 1)
	}
	for _, a := range spec.seeds {
		if byAddr[a] == nil && usableAddr(a) {
			c := &candidate{NodeInfo: NodeInfo{Addr: a}, depth: 1}
			byAddr[a] = c
			seeds = append(seeds, c)
		}
	}
	if len(cands) == 0 && len(seeds) == 0 {
		return res, nil, ErrNoNodes
	}

	// next returns the closest unqueried node among the width closest that have not
	// failed, then any seed.
	next := func() *candidate {
		live := 0
		for _, c := range cands {
			if c.state == candFailed {
				continue
			}
			if live++; live > width {
				break
			}
			if c.state == candNew {
				return c
			}
		}
		for _, c := range seeds {
			if c.state == candNew {
				return c
			}
		}
		return nil
	}

	// converged reports whether the width closest candidates that have not failed have
	// all answered (and no seed is left to ask).
	converged := func() bool {
		live := 0
		for _, c := range cands {
			if c.state == candFailed {
				continue
			}
			if c.state != candResponded {
				return false
			}
			if live++; live == width {
				break
			}
		}
		for _, c := range seeds {
			if c.state == candNew || c.state == candInFlight {
				return false
			}
		}
		return live > 0
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan lookupResult, alpha)
	inflight := 0
	stopped := false
	for {
		for !stopped && inflight < alpha && ctx.Err() == nil {
			c := next()
			if c == nil {
				break
			}
			c.state = candInFlight
			inflight++
			res.Queries++
			var idp *ID
			if c.ID != (ID{}) {
				id := c.ID
				idp = &id
			}
			addr, args := c.Addr, spec.args()
			args.Want = want
			if !n.spawn(func() {
				query := n.query
				if idp == nil {
					query = n.queryDialing // a seed: it may need a connection first
				}
				r, err := query(ctx, addr, idp, spec.method, args)
				results <- lookupResult{c, r, err}
			}) {
				inflight--
				c.state = candFailed
				stopped = true
			}
		}
		if inflight == 0 {
			break
		}
		r := <-results
		inflight--
		c := r.c
		if r.err != nil {
			c.state = candFailed
			continue
		}
		if r.resp.Return.ID == self { // a seed that turned out to be ourselves
			c.state = candFailed
			continue
		}
		c.state = candResponded
		res.Responses++
		res.Rounds = max(res.Rounds, c.depth)
		if c.ID == (ID{}) { // a seed: now we know who it is, and where it answers from
			c.ID, c.Addr = r.resp.Return.ID, r.resp.From
			if byID[c.ID] == nil {
				delete(byAddr, c.Addr) // the seed's own entry, when it answered from its address
				if nc := insert(c.NodeInfo, c.depth); nc != nil {
					nc.state = candResponded
					c = nc
				}
			}
		}
		var found []NodeInfo
		found = n.toNodeInfos(found, r.resp.Return.Nodes)
		found = n.toNodeInfos(found, r.resp.Return.Nodes6)
		for _, ni := range found {
			insert(ni, c.depth+1)
		}
		if spec.onResponse != nil && !stopped && spec.onResponse(c, r.resp) {
			stopped = true
			cancel()
		}
		if !stopped && converged() {
			// The K closest nodes known have all answered: queries still in flight go to
			// farther nodes, and waiting for them (a dead one takes a whole timeout) would
			// change nothing.
			stopped = true
			cancel()
		}
	}
	n.lookupQueries.Add(uint64(res.Queries))

	var closest []*candidate
	for _, c := range cands {
		if c.state == candResponded {
			closest = append(closest, c)
			res.Closest = append(res.Closest, c.NodeInfo)
			if len(closest) == k {
				break
			}
		}
	}
	res.Duration = time.Since(start)
	switch {
	case n.ctx.Err() != nil && res.Responses == 0:
		return res, nil, ErrClosed
	case ctx.Err() != nil && !stopped && res.Responses == 0:
		return res, nil, fmt.Errorf("%w: %w", ErrNoNodes, ctx.Err())
	case ctx.Err() != nil && !stopped:
		return res, closest, ctx.Err() // cut short: what was found, and why
	case res.Responses == 0:
		return res, nil, ErrNoNodes
	}
	return res, closest, nil
}
