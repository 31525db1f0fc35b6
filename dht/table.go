package dht

import (
	"cmp"
	"math"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/wdht/wdht/internal/rtt"
)

// questionableAfter is BEP 5's limit: a node that has not answered for this long is
// questionable and gets pinged before it is trusted again.
const questionableAfter = 15 * time.Minute

// entry is a node in the routing table or in a replacement cache.
//
// Its fields are ordered, its address packed (19 bytes and a zone index, where a
// netip.AddrPort takes 32), failures an int32, rtt two int32s and lastResponse a stamp (8
// bytes, where a time.Time takes 24), so that an entry is 64 bytes: a simulation holds
// some 150 of them per node (table and replacement caches). (It kept the time of the
// node's last query to us too, which nothing read.)
type entry struct {
	ID           ID
	addr         packedAddr
	secure       bool // its ID matches its IP under BEP 42
	pinging      bool // a liveness ping is in flight
	zone         uint16
	failures     int32 // consecutive queries it left unanswered
	rtt          rtt.Estimate
	lastResponse stamp // last answer to one of our queries; never: none yet
}

// packedAddr is a netip.AddrPort without its zone (the entry keeps an index of it).
type packedAddr struct {
	ip   [16]byte
	port uint16
	kind uint8 // 0: the zero address; 4: IPv4; 6: IPv6
}

// setAddr stores a in e.
func (e *entry) setAddr(a netip.AddrPort) {
	ip := a.Addr()
	e.addr = packedAddr{ip: ip.As16(), port: a.Port()}
	e.zone = 0
	switch {
	case ip.Is4():
		e.addr.kind = 4
	case ip.Is6():
		e.addr.kind = 6
		if z := ip.Zone(); z != "" {
			e.zone = zones.index(z)
		}
	default:
		e.addr.ip = [16]byte{}
	}
}

// Addr returns the node's address.
func (e *entry) Addr() netip.AddrPort {
	var ip netip.Addr
	switch e.addr.kind {
	case 4:
		ip = netip.AddrFrom16(e.addr.ip).Unmap()
	case 6:
		ip = netip.AddrFrom16(e.addr.ip)
		if e.zone != 0 {
			ip = ip.WithZone(zones.name(e.zone))
		}
	default:
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ip, e.addr.port)
}

// info returns the node's ID and address.
func (e *entry) info() NodeInfo { return NodeInfo{ID: e.ID, Addr: e.Addr()} }

// zones interns the IPv6 zones of the addresses in routing tables (the names of local
// network interfaces, which only the transport's source addresses carry: compact node
// infos have none), so that an entry keeps a zone in two bytes.
var zones zoneTable

type zoneTable struct {
	mu     sync.Mutex
	names  []string // index i+1 is names[i]
	byName map[string]uint16
}

// index returns z's index (never 0). A process has as many zones as it has network
// interfaces; past 65,535 of them the last index is reused.
func (zt *zoneTable) index(z string) uint16 {
	zt.mu.Lock()
	defer zt.mu.Unlock()
	if i, ok := zt.byName[z]; ok {
		return i
	}
	if len(zt.names) == math.MaxUint16 {
		return math.MaxUint16
	}
	if zt.byName == nil {
		zt.byName = make(map[string]uint16)
	}
	zt.names = append(zt.names, z)
	i := uint16(len(zt.names))
	zt.byName[z] = i
	return i
}

func (zt *zoneTable) name(i uint16) string {
	zt.mu.Lock()
	defer zt.mu.Unlock()
	return zt.names[i-1]
}

// stamp is a time in a table, as nanoseconds since the table's base time: the
// monotonic clock's difference when the times have it, as time.Time.Sub computes it.
type stamp int64

// never is the stamp of an event that has not happened.
const never stamp = math.MinInt64

// answered reports whether the node ever answered one of our queries.
func (e *entry) answered() bool { return e.lastResponse != never }

func (e *entry) good(now stamp) bool {
	return e.failures == 0 && e.answered() && now-e.lastResponse < stamp(questionableAfter)
}

type bucket struct {
	nodes     []entry
	repl      []entry       // replacement cache: nodes that answered while the bucket was full, newest last
	changed   time.Time     // last time a node was added to the bucket or answered us
	refreshed time.Time     // last time maintenance looked up a target in the bucket
	thinWait  time.Duration // how long a bucket with room waits between refreshes
}

func (b *bucket) find(id *ID) int {
	for i := range b.nodes {
		if b.nodes[i].ID == *id {
			return i
		}
	}
	return -1
}

// table is a Kademlia routing table in the BEP 5 shape: bucket i holds the nodes whose IDs
// share exactly i leading bits with ours, except the last bucket, which holds all nodes
// sharing at least len(buckets)-1 bits and is the only one that splits. Not safe for
// concurrent use (Node guards it).
type table struct {
	self        ID
	k           int
	maxFailures int
	enforce     bool      // BEP 42: refuse nodes whose IDs do not match their IPs
	base        time.Time // the entries' stamps count from it
	buckets     []bucket
	// keep, when set, is told when a node enters (true) or leaves (false) the table, so
	// that a connection-based transport keeps the connections of the nodes in it.
	keep func(addr netip.AddrPort, in bool)
	// notify, when set, is told the same with the node's ID (the node's event hooks).
	notify func(n NodeInfo, in bool)
}

// changed reports a node entering or leaving the table.
func (t *table) changed(n NodeInfo, in bool) {
	if t.keep != nil {
		t.keep(n.Addr, in)
	}
	if t.notify != nil {
		t.notify(n, in)
	}
}

// newEntry returns the table entry for n.
func newEntry(n NodeInfo) entry {
	e := entry{ID: n.ID, secure: n.secure(), lastResponse: never}
	e.setAddr(n.Addr)
	return e
}

// stamp returns now as a stamp of t's entries.
func (t *table) stamp(now time.Time) stamp { return max(stamp(now.Sub(t.base)), never+1) }

// refused reports whether enforcement keeps n out of the table.
func (t *table) refused(n NodeInfo) bool {
	return t.enforce && !n.secure() && !ExemptIP(n.Addr.Addr())
}

func newTable(self ID, k, maxFailures int, now time.Time) *table {
	return &table{self: self, k: k, maxFailures: maxFailures, base: now, buckets: []bucket{{changed: now}}}
}

func (t *table) index(id *ID) int {
	return min(commonPrefixLen(&t.self, id), len(t.buckets)-1)
}

// locate returns the bucket index and position of id, or -1 as position.
func (t *table) locate(id *ID) (int, int) {
	bi := t.index(id)
	return bi, t.buckets[bi].find(id)
}

// split divides the last bucket in two: nodes sharing exactly len-1 bits with us stay, the
// closer ones move to a new last bucket.
func (t *table) split() {
	last := len(t.buckets) - 1
	old := &t.buckets[last]
	var stay, move bucket
	stay.changed, move.changed = old.changed, old.changed
	stay.refreshed, move.refreshed = old.refreshed, old.refreshed
	for _, e := range old.nodes {
		if commonPrefixLen(&t.self, &e.ID) == last {
			stay.nodes = append(stay.nodes, e)
		} else {
			move.nodes = append(move.nodes, e)
		}
	}
	for _, e := range old.repl {
		if commonPrefixLen(&t.self, &e.ID) == last {
			stay.repl = append(stay.repl, e)
		} else {
			move.repl = append(move.repl, e)
		}
	}
	t.buckets[last] = stay
	t.buckets = append(t.buckets, move)
}

// canSplit reports whether bucket bi may split to make room.
func (t *table) canSplit(bi int) bool {
	return bi == len(t.buckets)-1 && len(t.buckets) < 160
}

// room makes room in id's bucket by splitting if it can and returns the bucket index and
// whether the bucket has room.
func (t *table) room(id *ID) (int, bool) {
	for {
		bi := t.index(id)
		b := &t.buckets[bi]
		if len(b.nodes) < t.k {
			return bi, true
		}
		if !t.canSplit(bi) {
			return bi, false
		}
		t.split()
	}
}

// responded records that n answered one of our queries. It adds n when there is room (or a
// failed node to replace); otherwise n goes to the bucket's replacement cache and the
// stalest questionable node of the bucket is returned for a liveness ping.
func (t *table) responded(n NodeInfo, now time.Time) (added bool, ping *NodeInfo) {
	if n.ID == t.self || t.refused(n) {
		return false, nil
	}
	bi, i := t.locate(&n.ID)
	b := &t.buckets[bi]
	if i >= 0 {
		e := &b.nodes[i]
		e.setAddr(n.Addr)
		e.lastResponse, e.failures, e.pinging = t.stamp(now), 0, false
		b.changed = now
		return false, nil
	}
	bi, ok := t.room(&n.ID)
	b = &t.buckets[bi]
	e := newEntry(n)
	e.lastResponse = t.stamp(now)
	if ok {
		b.nodes = append(b.nodes, e)
		b.changed = now
		t.changed(e.info(), true)
		return true, nil
	}
	for j := range b.nodes {
		if int(b.nodes[j].failures) >= t.maxFailures || (b.nodes[j].failures > 0 && !b.nodes[j].answered()) {
			t.changed(b.nodes[j].info(), false)
			b.nodes[j] = e
			b.changed = now
			t.changed(e.info(), true)
			return true, nil
		}
	}
	if e.secure { // BEP 42: a secure node takes the place of an insecure one
		if j := b.insecure(); j >= 0 {
			t.changed(b.nodes[j].info(), false)
			b.addReplacement(b.nodes[j], t.k)
			b.nodes[j] = e
			b.changed = now
			t.changed(e.info(), true)
			return true, nil
		}
	}
	b.addReplacement(e, t.k)
	return false, b.stalest(t.stamp(now))
}

// insecure returns the index of the node, among those whose IDs do not match their
// (non-exempt) IPs, that answered longest ago; -1 if there is none.
func (b *bucket) insecure() int {
	best := -1
	for j := range b.nodes {
		e := &b.nodes[j]
		if e.secure || ExemptIP(e.Addr().Addr()) {
			continue
		}
		if best < 0 || e.lastResponse < b.nodes[best].lastResponse {
			best = j
		}
	}
	return best
}

// addReplacement puts e at the newest end of the replacement cache.
func (b *bucket) addReplacement(e entry, limit int) {
	b.repl = slices.DeleteFunc(b.repl, func(r entry) bool { return r.ID == e.ID })
	if len(b.repl) >= limit {
		b.repl = slices.Delete(b.repl, 0, len(b.repl)-limit+1)
	}
	b.repl = append(b.repl, e)
}

// stalest returns the questionable node that answered longest ago and is not being pinged
// already, marking it as being pinged; nil if every node is good.
func (b *bucket) stalest(ts stamp) *NodeInfo {
	best := -1
	for j := range b.nodes {
		e := &b.nodes[j]
		if e.pinging || e.good(ts) {
			continue
		}
		if best < 0 || e.lastResponse < b.nodes[best].lastResponse {
			best = j
		}
	}
	if best < 0 {
		return nil
	}
	b.nodes[best].pinging = true
	n := b.nodes[best].info()
	return &n
}

// queried records a query from n. An unknown node enters the table unconfirmed when its
// bucket has room: we use it in our own lookups, but do not hand it to others until it
// answers one of our queries (liveness pings ask it soon). It reports whether the caller
// should ping n now: it is unconfirmed, or its bucket holds nodes that are not good.
func (t *table) queried(n NodeInfo, now time.Time) (verify bool) {
	ts := t.stamp(now)
	if n.ID == t.self || t.refused(n) {
		return false
	}
	bi, i := t.locate(&n.ID)
	b := &t.buckets[bi]
	if i >= 0 {
		return !b.nodes[i].answered() && !b.nodes[i].pinging
	}
	if bi, ok := t.room(&n.ID); ok {
		e := newEntry(n)
		t.buckets[bi].nodes = append(t.buckets[bi].nodes, e)
		t.changed(e.info(), true)
		return true
	}
	for j := range b.nodes {
		if !b.nodes[j].good(ts) {
			return true
		}
	}
	return false
}

// failed records that a query to id went unanswered (until its KRPC timeout: a slow answer
// is not a failure). The node is evicted, and the newest replacement takes its place,
// after maxFailures in a row; or at its first failure when it never answered us or when
// a replacement is waiting (one that answered recently is better than one that just
// failed: stale entries are what makes lookups slow). It reports whether id was evicted.
func (t *table) failed(id ID) bool {
	bi, i := t.locate(&id)
	if i < 0 {
		b := &t.buckets[bi]
		b.repl = slices.DeleteFunc(b.repl, func(r entry) bool { return r.ID == id })
		return false
	}
	b := &t.buckets[bi]
	e := &b.nodes[i]
	e.failures++
	e.pinging = false
	if int(e.failures) < t.maxFailures && e.answered() && len(b.repl) == 0 {
		return false
	}
	t.evict(bi, i)
	return true
}

// evict removes node i of bucket bi, promoting the newest replacement.
func (t *table) evict(bi, i int) {
	b := &t.buckets[bi]
	t.changed(b.nodes[i].info(), false)
	if n := len(b.repl); n > 0 {
		b.nodes[i] = b.repl[n-1]
		b.repl = b.repl[:n-1]
		t.changed(b.nodes[i].info(), true)
		return
	}
	b.nodes = slices.Delete(b.nodes, i, i+1)
}

// remove drops id from the table (for example when its connection closed).
func (t *table) remove(id ID) bool {
	bi, i := t.locate(&id)
	if i < 0 {
		b := &t.buckets[bi]
		b.repl = slices.DeleteFunc(b.repl, func(r entry) bool { return r.ID == id })
		return false
	}
	t.evict(bi, i)
	return true
}

// removeAddr drops the node at addr (its connection closed) and reports whether there was one.
func (t *table) removeAddr(addr netip.AddrPort) bool {
	for bi := range t.buckets {
		b := &t.buckets[bi]
		b.repl = slices.DeleteFunc(b.repl, func(r entry) bool { return r.Addr() == addr })
		for i := range b.nodes {
			if b.nodes[i].Addr() == addr {
				t.evict(bi, i)
				return true
			}
		}
	}
	return false
}

// insert adds n as a node that has not answered yet (from saved state), if there is room.
func (t *table) insert(n NodeInfo) bool {
	if n.ID == t.self || t.refused(n) {
		return false
	}
	if _, i := t.locate(&n.ID); i >= 0 {
		return false
	}
	bi, ok := t.room(&n.ID)
	if !ok {
		return false
	}
	t.buckets[bi].nodes = append(t.buckets[bi].nodes, newEntry(n))
	t.changed(n, true)
	return true
}

// rebased returns a table around a new ID of ours holding the same nodes, with what we
// know of each; the nodes that answered most recently get the room first.
func (t *table) rebased(self ID, now time.Time) *table {
	nt := newTable(self, t.k, t.maxFailures, now)
	nt.base = t.base // the entries keep their stamps
	nt.enforce, nt.keep, nt.notify = t.enforce, t.keep, t.notify
	var all []entry
	for bi := range t.buckets {
		all = append(all, t.buckets[bi].nodes...)
		all = append(all, t.buckets[bi].repl...)
	}
	slices.SortFunc(all, func(a, b entry) int { return cmp.Compare(b.lastResponse, a.lastResponse) })
	for _, e := range all {
		if e.ID == self {
			continue
		}
		e.pinging = false
		bi, ok := nt.room(&e.ID)
		if ok {
			nt.buckets[bi].nodes = append(nt.buckets[bi].nodes, e)
			continue
		}
		if e.answered() {
			nt.buckets[bi].addReplacement(e, nt.k)
		}
		if t.contains(e.ID) {
			nt.changed(e.info(), false) // it was in the table, and is not any more
		}
	}
	return nt
}

// sampleRTT records a round-trip time measured to id.
func (t *table) sampleRTT(id ID, r time.Duration) {
	if bi, i := t.locate(&id); i >= 0 {
		t.buckets[bi].nodes[i].rtt.Add(r)
	}
}

// rttOf returns the round-trip estimate of id; the zero estimate when id is not in the
// table or was never measured.
func (t *table) rttOf(id ID) rtt.Estimate {
	if bi, i := t.locate(&id); i >= 0 {
		return t.buckets[bi].nodes[i].rtt
	}
	return rtt.Estimate{}
}

// pingDone clears the in-flight mark set by stalest or questionable.
func (t *table) pingDone(id ID) {
	if bi, i := t.locate(&id); i >= 0 {
		t.buckets[bi].nodes[i].pinging = false
	}
}

// closest appends to dst the (at most) k nodes closest to target that have no failures
// (and, when confirmed is set, that have answered us), nearest first. Buckets are
// visited in an order that makes the result exact: nodes of the target's own bucket are
// closer than those of any deeper bucket, which in turn are closer than those of any
// shallower bucket, nearest shallow bucket first.
func (t *table) closest(dst []NodeInfo, target ID, k int, confirmed bool) []NodeInfo {
	start := len(dst)
	usable := func(e *entry) bool { return e.failures == 0 && (!confirmed || e.answered()) }
	// The target's bucket and the deeper ones: only the k nearest are kept, in order, so
	// that dst never grows past k (a handler's buffer holds K), however many they hold.
	keep := func(b *bucket) {
		for j := range b.nodes {
			e := &b.nodes[j]
			if !usable(e) {
				continue
			}
			n := len(dst) - start
			if n == k && cmpDistance(&target, &e.ID, &dst[len(dst)-1].ID) >= 0 {
				continue // no nearer than the farthest kept
			}
			if n < k {
				dst = append(dst, NodeInfo{})
			}
			i := len(dst) - 1 // shift the farther ones down, drop the farthest when full
			for ; i > start && cmpDistance(&target, &e.ID, &dst[i-1].ID) < 0; i-- {
				dst[i] = dst[i-1]
			}
			dst[i] = e.info()
		}
	}
	ti := t.index(&target)
	keep(&t.buckets[ti])
	if len(dst)-start < k { // the deeper buckets are not in order among themselves: all of them
		for bi := ti + 1; bi < len(t.buckets); bi++ {
			keep(&t.buckets[bi])
		}
	}
	// Shallower buckets, nearest first, each farther than all before it.
	for bi := ti - 1; bi >= 0 && len(dst)-start < k; bi-- {
		n := len(dst)
		for j := range t.buckets[bi].nodes {
			if e := &t.buckets[bi].nodes[j]; usable(e) {
				dst = append(dst, e.info())
			}
		}
		sortByDistance(dst[n:], target)
	}
	if len(dst)-start > k {
		dst = dst[:start+k]
	}
	return dst
}

func sortByDistance(ns []NodeInfo, target ID) {
	slices.SortFunc(ns, func(a, b NodeInfo) int { return cmpDistance(&target, &a.ID, &b.ID) })
}

// questionable returns up to max nodes that have not answered for questionableAfter (or
// never did), stalest first, and marks them as being pinged.
func (t *table) questionable(now time.Time, max int) []NodeInfo {
	ts := t.stamp(now)
	var cands []*entry
	for bi := range t.buckets {
		for j := range t.buckets[bi].nodes {
			e := &t.buckets[bi].nodes[j]
			if !e.pinging && !e.good(ts) {
				cands = append(cands, e)
			}
		}
	}
	slices.SortFunc(cands, func(a, b *entry) int { return cmp.Compare(a.lastResponse, b.lastResponse) })
	var out []NodeInfo
	for _, e := range cands[:min(max, len(cands))] {
		e.pinging = true
		out = append(out, e.info())
	}
	return out
}

// refreshTarget returns a random ID in bucket bi (ourselves for the last bucket, which
// covers every deeper prefix) and marks the bucket refreshed.
func (t *table) refreshTarget(bi int, now time.Time) ID {
	t.buckets[bi].refreshed = now
	if bi == len(t.buckets)-1 {
		return t.self
	}
	return randomIDWithPrefix(t.self, bi)
}

// staleBuckets returns a refresh target in each bucket (up to max) that has not changed
// for d (BEP 5's 15 minutes) nor been refreshed since.
func (t *table) staleBuckets(now time.Time, d time.Duration, max int) []ID {
	var out []ID
	for bi := range t.buckets {
		if len(out) >= max {
			break
		}
		b := &t.buckets[bi]
		if now.Sub(b.changed) >= d && now.Sub(b.refreshed) >= d {
			out = append(out, t.refreshTarget(bi, now))
		}
	}
	return out
}

// thinBucket returns a refresh target in the bucket with room left that waited longest
// for one, if it has waited long enough: d at first, doubling (up to max) each time a
// refresh found nothing new, back to d when one did. Refreshing buckets with room is how
// a node finds the nodes that joined after it; the backoff keeps a settled node (whose
// buckets nearest its own ID never fill) from looking up every d forever.
func (t *table) thinBucket(now time.Time, d, max time.Duration) (ID, bool) {
	best := -1
	for bi := range t.buckets {
		b := &t.buckets[bi]
		if b.thinWait < d {
			b.thinWait = d
		}
		if len(b.nodes) >= t.k || now.Sub(b.refreshed) < b.thinWait {
			continue
		}
		if best < 0 || b.refreshed.Before(t.buckets[best].refreshed) {
			best = bi
		}
	}
	if best < 0 {
		return ID{}, false
	}
	b := &t.buckets[best]
	if !b.refreshed.IsZero() && !b.changed.After(b.refreshed) {
		b.thinWait = min(2*b.thinWait, max)
	} else {
		b.thinWait = d
	}
	return t.refreshTarget(best, now), true
}

// nodes appends every node in the table to dst.
func (t *table) nodes(dst []NodeInfo, goodOnly bool, now time.Time) []NodeInfo {
	ts := t.stamp(now)
	for bi := range t.buckets {
		for j := range t.buckets[bi].nodes {
			if e := &t.buckets[bi].nodes[j]; !goodOnly || e.good(ts) {
				dst = append(dst, e.info())
			}
		}
	}
	return dst
}

// counts returns the number of nodes, of good nodes and of replacements.
func (t *table) counts(now time.Time) (nodes, good, repl int) {
	ts := t.stamp(now)
	for bi := range t.buckets {
		b := &t.buckets[bi]
		nodes += len(b.nodes)
		repl += len(b.repl)
		for j := range b.nodes {
			if b.nodes[j].good(ts) {
				good++
			}
		}
	}
	return
}

// contains reports whether id is in the table.
func (t *table) contains(id ID) bool {
	_, i := t.locate(&id)
	return i >= 0
}

// addrOf returns the address the table has for id.
func (t *table) addrOf(id ID) (netip.AddrPort, bool) {
	bi, i := t.locate(&id)
	if i < 0 {
		return netip.AddrPort{}, false
	}
	return t.buckets[bi].nodes[i].Addr(), true
}
