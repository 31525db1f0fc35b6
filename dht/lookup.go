package dht

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/wdht/wdht/internal/rtt"
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
	// Stalled counts the queries that passed their soft deadline (the lookup went on
	// without them; some still answered in time to be used).
	Stalled int
	// Capped reports that the lookup ended at Config.MaxLookupQueries or
	// MaxLookupDuration rather than by converging.
	Capped bool
	// Duration is how long the lookup took.
	Duration time.Duration
	// Refused counts the nodes that answered with a KRPC error; Refusal is the last of
	// those answers (nil when none), which says why when no node answered otherwise.
	Refused int
	Refusal *NodeError
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

// stalledWaitFactor is how many soft deadlines a lookup with too few answers waits for a
// stalled query (within MaxQueryDeadline).
const stalledWaitFactor = 8

// A lookup that holds for a stalled query (candidate.holdTo) pings its node and, until
// the ping is answered, holds only for probeWaitFactor of the node's soft deadlines, and
// at least probeMinWait, after sending the ping: a node that answers neither is taken
// for gone. probeMinWait is a retransmission timeout (RFC 6298's, and SCTP's RTO.Min):
// on a reliable transport a ping can wait behind a lost packet's retransmission.
const (
	probeWaitFactor = 4
	probeMinWait    = time.Second
)

type candidate struct {
	NodeInfo
	state    candState
	depth    int
	token    string    // from get_peers (or get) responses
	deadline time.Time // soft deadline, while in flight
	giveUp   time.Time // until when a stalled query may still be awaited (see awaiting)
	holdTo   time.Time // the same, for one among the nearest (K < minLookupWidth, or reliable)
	heldTo   time.Time // holdTo once a ping showed the node alive (see probe)
	stalled  bool      // in flight past its soft deadline
	probed   bool      // pinged when its query stalled
	// resend makes the query go out again (krpc.WithResend) when the ping shows the node
	// alive; only on a datagram transport, where the query or its answer may be lost.
	resend chan struct{}
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

// candidateIndex holds a lookup's candidates in order of distance and indexed by ID and
// by address.
type candidateIndex struct {
	cands  []*candidate
	byID   map[ID]*candidate
	byAddr map[netip.AddrPort]*candidate
}

var candidateIndexPool = sync.Pool{New: func() any {
	return &candidateIndex{
		cands:  make([]*candidate, 0, 65),
		byID:   make(map[ID]*candidate, 64),
		byAddr: make(map[netip.AddrPort]*candidate, 64),
	}
}}

// release empties the index, keeping its room, and returns it to the pool.
func (x *candidateIndex) release() {
	clear(x.cands[:cap(x.cands)])
	x.cands = x.cands[:0]
	clear(x.byID)
	clear(x.byAddr)
	candidateIndexPool.Put(x)
}

type lookupResult struct {
	c    *candidate
	resp *krpc.Response
	err  error
}

// probeResult says whether a stalled query's node answered the lookup's ping.
type probeResult struct {
	c     *candidate
	alive bool
}

// lookup runs an iterative Kademlia lookup (the package doc's "Lookups" has the whole
// algorithm): it keeps Alpha queries in flight to the closest nodes not yet queried,
// learns closer nodes from every answer, stops counting a query that passed its soft
// deadline (it may still answer), and ends when the width closest nodes it knows of
// that neither failed nor stalled have all answered. It returns the responded
// candidates nearest first (with their tokens). Queries still in flight when it returns
// run on to their KRPC timeout in the background (until ctx ends), so that the routing
// table learns whether their nodes are alive.
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

	var seeds []*candidate // unknown IDs, queried in order
	limit := max(8*k, 64)
	// The indexes come from a pool, sized for a typical lookup, which knows a few dozen
	// nodes: growing them from empty, and a candidate allocated each, made a sixth of a
	// simulation's garbage, and a new set for each lookup a tenth. Nothing uses them
	// once the lookup returns.
	idx := candidateIndexPool.Get().(*candidateIndex)
	defer idx.release()
	cands := idx.cands                   // known IDs, nearest first
	defer func() { idx.cands = cands }() // keep the room it grew to (runs before release)
	byID, byAddr := idx.byID, idx.byAddr
	var slab []candidate // candidates are allocated in chunks, never moved
	newCandidate := func(c candidate) *candidate {
		if len(slab) == cap(slab) {
			slab = make([]candidate, 0, 16)
		}
		slab = append(slab, c)
		return &slab[len(slab)-1]
	}

	insert := func(ni NodeInfo, depth int) *candidate {
		if byID[ni.ID] != nil || byAddr[ni.Addr] != nil || ni.ID == self || n.cfg.EnforceSecureIDs && !ni.secure() && !ExemptIP(ni.Addr.Addr()) {
			return nil
		}
		// The ID by value: a pointer into ni made ni escape, an allocation per node heard of.
		i, _ := slices.BinarySearchFunc(cands, ni.ID, func(a *candidate, id ID) int { return cmpDistance(&spec.target, &a.ID, &id) })
		if i >= limit {
			return nil
		}
		c := newCandidate(candidate{NodeInfo: ni, depth: depth})
		cands = slices.Insert(cands, i, c)
		byID[ni.ID], byAddr[ni.Addr] = c, c
		if len(cands) > limit {
			// Drop the farthest node not in flight. One not yet queried is forgotten
			// (it may come back); one that answered or failed stays in byID and
			// byAddr, so that it is never asked again (MaxLookupQueries bounds them).
			for j := len(cands) - 1; j >= 0; j-- {
				if d := cands[j]; d.state != candInFlight {
					if d.state == candNew {
						delete(byID, d.ID)
						delete(byAddr, d.Addr)
					}
					cands = slices.Delete(cands, j, j+1)
					break
				}
			}
		}
		return c
	}

	n.mu.Lock()
	start0 := n.closestNodes(nil, spec.target, 2*k, false, true, true)
	start0 = n.dropFailed(start0)
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
			c := newCandidate(candidate{NodeInfo: NodeInfo{Addr: a}, depth: 1})
			byAddr[a] = c
			seeds = append(seeds, c)
		}
	}
	if len(cands) == 0 && len(seeds) == 0 {
		return res, nil, ErrNoNodes
	}

	// counted reports whether c counts among the closest: it has not failed, and is not
	// a query past its soft deadline.
	counted := func(c *candidate) bool {
		return c.state != candFailed && !(c.state == candInFlight && c.stalled)
	}

	// next returns the closest unqueried node among the width closest counted ones, then
	// any seed.
	next := func() *candidate {
		live := 0
		for _, c := range cands {
			if !counted(c) {
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

	// awaiting returns the earliest time until which a stalled query the lookup waits for
	// is awaited, or the zero time when it waits for none. It waits while fewer than
	// width nodes answered: on a network smaller than the width a slow node (a loaded
	// host, a long path) cannot be replaced by another, and a put or announce that left
	// it out would store on fewer nodes than exist. Such a query is awaited up to
	// stalledWaitFactor soft deadlines after it was sent (at most MaxQueryDeadline), or
	// longer where the measured round trips are longer than MaxQueryDeadline: a dead node
	// then costs 400 ms on loopback, not a KRPC timeout.
	//
	// When K is below minLookupWidth (the JS's K=2) it also waits for a stalled query to
	// a node among the width nearest that did not fail, up to MaxQueryDeadline after it
	// was sent (or the measured deadline, when longer): the result is then so few nodes
	// that leaving out one that is merely slow changes it (a get_peers misses the nodes
	// holding the peers, an announce stores on farther ones), and on the WebTorrent DHT a
	// responder answers late whenever a relay it waits on is slow. There a dead node's
	// connection closes and its query fails at once; on a datagram transport it costs
	// that wait. On a transport.Reliable transport (WebRTC) it waits so whatever K: a
	// query there is never lost, only slow (a loaded host, a responder waiting on
	// relays), and the nearest nodes are those the lookup is for. Such a wait lasts only
	// while the node shows it is alive (see probe): a node that vanished without closing
	// its connection (a browser that lost its network) costs a few round trips, not
	// MaxQueryDeadline.
	awaiting := func(live int) time.Time {
		now := time.Now()
		var earliest time.Time
		wait := func(c *candidate, until time.Time) {
			if c.state == candInFlight && c.stalled && now.Before(until) && (earliest.IsZero() || until.Before(earliest)) {
				earliest = until
			}
		}
		if live < width {
			for _, cs := range [][]*candidate{cands, seeds} {
				for _, c := range cs {
					wait(c, c.giveUp)
				}
			}
		}
		if k < width || n.reliable {
			pos := 0 // c's position among the candidates that did not fail
			for _, c := range cands {
				if c.state == candFailed {
					continue
				}
				if pos++; pos > width {
					break
				}
				wait(c, c.holdTo)
			}
		}
		return earliest
	}

	// converged reports whether the width closest counted candidates have all answered
	// (and no seed is left to ask or waited on, and no stalled query is awaited).
	converged := func() bool {
		live := 0
		for _, c := range cands {
			if !counted(c) {
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
			if c.state == candNew || c.state == candInFlight && !c.stalled {
				return false
			}
		}
		return live > 0 && awaiting(live).IsZero()
	}
	// answered counts the responded candidates, up to width.
	answered := func() int {
		live := 0
		for _, c := range cands {
			if c.state == candResponded {
				if live++; live == width {
					break
				}
			}
		}
		return live
	}

	done := make(chan struct{}) // closed when the lookup returns: late results are dropped
	defer close(done)
	results := make(chan lookupResult)
	probes := make(chan probeResult)
	holds := k < width || n.reliable // whether awaiting holds for the nearest stalled queries
	// probe pings the node of c, a query that just stalled and that awaiting may hold
	// for, and holds for it only until probeWaitFactor of the node's soft deadlines (at
	// least probeMinWait) after the ping, unless the ping is answered (with an error,
	// even), which restores the hold: a responder waiting on relays answers a ping at
	// once; a node that is gone answers neither. On a datagram transport an answered
	// ping also sends the query again (candidate.resend).
	probe := func(c *candidate, now time.Time) {
		if !holds || c.probed || c.ID == (ID{}) {
			return
		}
		c.probed = true
		soft, _ := n.softDeadline(c.NodeInfo)
		c.heldTo = c.holdTo
		if until := now.Add(max(probeWaitFactor*soft, probeMinWait)); until.Before(c.holdTo) {
			c.holdTo = until
		}
		id, addr := c.ID, c.Addr
		n.spawn(func() {
			_, err := n.query(ctx, addr, &id, krpc.MethodPing, &krpc.Args{})
			_, refused := errors.AsType[*krpc.Error](err)
			select {
			case probes <- probeResult{c, err == nil || refused}:
			case <-done:
			}
		})
	}
	soft := time.NewTimer(time.Hour)
	soft.Stop()
	defer soft.Stop()
	hard := time.NewTimer(n.cfg.MaxLookupDuration)
	defer hard.Stop()
	var active []*candidate // in flight, not stalled
	outstanding := 0        // in flight, stalled or not
	stopped := false
	armed := time.Time{} // the soft timer's deadline; zero when stopped

	var found []NodeInfo // the nodes of the answer at hand, reused for the next one
loop:
	for {
		for !stopped && len(active) < alpha && ctx.Err() == nil {
			if res.Queries >= n.cfg.MaxLookupQueries {
				if next() != nil {
					res.Capped = true
				}
				break
			}
			c := next()
			if c == nil {
				break
			}
			c.state = candInFlight
			sent := time.Now()
			soft, measured := n.softDeadline(c.NodeInfo)
			c.deadline = sent.Add(soft)
			c.giveUp = sent.Add(max(min(stalledWaitFactor*soft, n.cfg.MaxQueryDeadline), measured))
			c.holdTo = sent.Add(max(n.cfg.MaxQueryDeadline, measured))
			res.Queries++
			var idp *ID
			if c.ID != (ID{}) {
				id := c.ID
				idp = &id
			}
			addr, args := c.Addr, spec.args()
			args.Want = want
			qctx := ctx
			if holds && !n.reliable && idp != nil {
				c.resend = make(chan struct{}, 1)
				qctx = krpc.WithResend(ctx, c.resend)
			}
			if !n.spawn(func() {
				query := n.query
				if idp == nil {
					query = n.queryDialing // a seed: it may need a connection first
				}
				r, err := query(qctx, addr, idp, spec.method, args)
				select {
				case results <- lookupResult{c, r, err}:
				case <-done:
				}
			}) {
				c.state = candFailed
				stopped = true
				break
			}
			active = append(active, c)
			outstanding++
		}
		if stopped || outstanding == 0 || ctx.Err() != nil {
			break
		}
		var wait time.Time // when only stalled queries are left: until when they are awaited
		if len(active) == 0 && res.Responses > 0 && !res.Capped {
			// Only stalled queries are left and nothing else to ask: the closest
			// nodes that answered are known (converged would say so, but for a
			// stalled seed, which never blocks an end once some node answered),
			// unless too few answered and a stalled one is still awaited.
			if wait = awaiting(answered()); wait.IsZero() {
				break
			}
		}
		if res.Capped && len(active) == 0 {
			break
		}
		// Arm the soft timer for the earliest deadline of the active queries, or for
		// the end of the wait for stalled ones.
		if len(active) > 0 || !wait.IsZero() {
			earliest := wait
			for _, c := range active {
				if earliest.IsZero() || c.deadline.Before(earliest) {
					earliest = c.deadline
				}
			}
			if !earliest.Equal(armed) {
				soft.Reset(time.Until(earliest))
				armed = earliest
			}
		} else if !armed.IsZero() {
			soft.Stop()
			armed = time.Time{}
		}
		var r lookupResult
		select {
		case <-ctx.Done():
			break loop
		case <-hard.C:
			res.Capped = true
			break loop
		case <-soft.C:
			armed = time.Time{}
			now := time.Now()
			active = slices.DeleteFunc(active, func(c *candidate) bool {
				if !c.deadline.After(now) {
					c.stalled = true
					res.Stalled++
					probe(c, now)
					return true
				}
				return false
			})
			continue
		case p := <-probes:
			if p.alive {
				p.c.holdTo = p.c.heldTo
				if p.c.resend != nil && p.c.state == candInFlight {
					// On a datagram transport the query or its answer may have been
					// lost: the node answered the ping, so ask again now rather than
					// after the KRPC timeout. A node still handling the query drops
					// the copy.
					p.c.resend <- struct{}{}
				}
			}
			continue
		case r = <-results:
		}
		outstanding--
		c := r.c
		if !c.stalled {
			active = slices.DeleteFunc(active, func(a *candidate) bool { return a == c })
		}
		c.stalled = false
		if r.err != nil {
			c.state = candFailed
			if ke, ok := errors.AsType[*krpc.Error](r.err); ok {
				res.Refused++
				res.Refusal = &NodeError{Addr: c.Addr, Err: ke}
			}
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
		found = n.toNodeInfos(found[:0], r.resp.Return.Nodes) // insert copies what it keeps
		found = n.toNodeInfos(found, r.resp.Return.Nodes6)
		if len(found) > 0 {
			n.mu.Lock()
			found = n.dropFailed(found)
			n.mu.Unlock()
		}
		for _, ni := range found {
			insert(ni, c.depth+1)
		}
		if spec.onResponse != nil && spec.onResponse(c, r.resp) {
			stopped = true
			break
		}
		if converged() {
			// The width closest nodes known have all answered: queries still in flight
			// go to farther nodes or stalled, and waiting for them (a dead one takes
			// a whole timeout) would change nothing.
			stopped = true
			break
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

// softDeadline returns how long a lookup waits for ni's answer before it asks another
// node: from ni's own round-trip estimate when the routing table has one, else from the
// node-wide one, within [MinQueryDeadline, MaxQueryDeadline]. measured is the same
// deadline not capped by MaxQueryDeadline (but at least the soft one): how long a live
// node's answer may take where round trips are long (WebRTC queries that open
// connections, a loaded host).
func (n *Node) softDeadline(ni NodeInfo) (soft, measured time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	var e rtt.Estimate
	if tb := n.tableFor(ni.Addr); tb != nil && ni.ID != (ID{}) {
		e = tb.rttOf(ni.ID)
	}
	if !e.Known() {
		e = n.rtt
	}
	soft = e.Deadline(n.cfg.MinQueryDeadline, n.cfg.MaxQueryDeadline)
	return soft, max(soft, e.Deadline(n.cfg.MinQueryDeadline, rtt.MaxSample))
}

// dropFailed removes from ns, in place, the nodes whose queries timed out lately.
// n.mu must be held.
func (n *Node) dropFailed(ns []NodeInfo) []NodeInfo {
	if len(n.failed.at) == 0 {
		return ns
	}
	now := time.Now()
	return slices.DeleteFunc(ns, func(ni NodeInfo) bool { return n.failed.failed(ni.Addr, now) })
}
