// Package rtt keeps round-trip-time estimates the way TCP does (RFC 6298), for the soft
// deadlines of the DHT's lookups and of the WebTorrent extension's relays.
package rtt

import "time"

// Estimate is a smoothed round-trip time and its mean deviation: the first sample R
// sets srtt = R and rttvar = R/2; each later one moves rttvar by a quarter of |srtt - R|
// and srtt by an eighth of R - srtt. The zero value has no sample. Both are kept in
// microseconds in an int32 (up to 35 minutes), so that a routing-table entry, which holds
// one, stays 64 bytes. Not safe for concurrent use.
type Estimate struct {
	srtt, rttvar int32 // µs
}

// MaxSample is the largest round-trip time an Estimate holds.
const MaxSample = (1 << 31 / 2) * time.Microsecond

// Known reports whether the estimate has a sample.
func (e *Estimate) Known() bool { return e.srtt > 0 }

// Add records a round-trip time.
func (e *Estimate) Add(d time.Duration) {
	r := int32(min(max(d.Microseconds(), 1), MaxSample.Microseconds())) // 0 means no sample
	if !e.Known() {
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

// Deadline returns how long to wait for an answer with this estimate: srtt plus the
// larger of 4 × rttvar and srtt/2, within [lo, hi]; hi when there is no sample.
func (e *Estimate) Deadline(lo, hi time.Duration) time.Duration {
	if !e.Known() {
		return hi
	}
	us := int64(e.srtt) + max(4*int64(e.rttvar), int64(e.srtt)/2)
	return min(max(time.Duration(us)*time.Microsecond, lo), hi)
}
