package dht

import (
	"net/netip"
	"time"
)

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
