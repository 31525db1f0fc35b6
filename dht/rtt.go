package dht

import (
	"net/netip"
	"time"
)

// rttEstimate is a smoothed round-trip time and its mean deviation, as TCP keeps them
// (RFC 6298): the first sample R sets srtt = R and rttvar = R/2; each later one moves
// rttvar by a quarter of |srtt - R| and srtt by an eighth of R - srtt. The zero value
// has no sample. Both are kept in microseconds in an int32 (up to 35 minutes), so that a
// routing-table entry, which holds one, stays 64 bytes.
type rttEstimate struct {
	srtt, rttvar int32 // µs
}

// maxRTTSample is the largest round-trip time an estimate holds, in microseconds.
const maxRTTSample = 1 << 31 / 2

// known reports whether the estimate has a sample.
func (e *rttEstimate) known() bool { return e.srtt > 0 }

// add records a round-trip time.
func (e *rttEstimate) add(d time.Duration) {
	r := int32(min(max(d.Microseconds(), 1), maxRTTSample)) // 0 means no sample
	if !e.known() {
		e.srtt, e.rttvar = r, r/2
		return
	}
	dev := e.srtt - r
	if dev < 0 {
		dev = -dev
	}
	e.rttvar += (dev - e.rttvar) / 4
	e.srtt += (r - e.srtt) / 8
}

// deadline returns the soft deadline of a query with this estimate: srtt plus the larger
// of 4 × rttvar and srtt/2, within [lo, hi]; hi when there is no sample.
func (e *rttEstimate) deadline(lo, hi time.Duration) time.Duration {
	if !e.known() {
		return hi
	}
	us := int64(e.srtt) + max(4*int64(e.rttvar), int64(e.srtt)/2)
	return min(max(time.Duration(us)*time.Microsecond, lo), hi)
}

// maxFailedAddrs bounds the addresses a node remembers as having failed (see failedAddrs).
const maxFailedAddrs = 256

// failedAddrTTL is how long an address that failed a query stays out of lookups.
const failedAddrTTL = 10 * time.Minute

// failedAddrs remembers the addresses of nodes that left a query unanswered until its
// hard timeout, so that lookups do not ask them again when other nodes still refer to
// them (a departed node lingers in many tables). An answer from the address clears it.
// It holds at most maxFailedAddrs, dropping the oldest first. Not safe for concurrent use
// (Node guards it).
type failedAddrs struct {
	at    map[netip.AddrPort]time.Time
	order []netip.AddrPort // insertion order, oldest first; may hold cleared addresses
}

func (f *failedAddrs) add(a netip.AddrPort, now time.Time) {
	if f.at == nil {
		f.at = make(map[netip.AddrPort]time.Time)
	}
	if _, ok := f.at[a]; !ok {
		f.order = append(f.order, a)
	}
	f.at[a] = now
	for len(f.at) > maxFailedAddrs { // the oldest goes (order may hold cleared ones)
		delete(f.at, f.order[0])
		f.order = f.order[1:]
	}
	if len(f.order) > 2*maxFailedAddrs { // drop the cleared ones from order
		kept := make([]netip.AddrPort, 0, maxFailedAddrs)
		seen := make(map[netip.AddrPort]bool, len(f.at))
		for _, o := range f.order {
			if _, ok := f.at[o]; ok && !seen[o] {
				seen[o] = true
				kept = append(kept, o)
			}
		}
		f.order = kept
	}
}

func (f *failedAddrs) clear(a netip.AddrPort) {
	delete(f.at, a)
}

// failed reports whether a failed a query within failedAddrTTL.
func (f *failedAddrs) failed(a netip.AddrPort, now time.Time) bool {
	t, ok := f.at[a]
	if ok && now.Sub(t) >= failedAddrTTL {
		delete(f.at, a)
		return false
	}
	return ok
}
