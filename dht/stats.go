package dht

import (
	"sync/atomic"
	"time"
)

// LookupBuckets are the upper bounds of the buckets of Stats.LookupDurations: a lookup
// that took d is counted in the first bucket whose bound is at least d, or in the last
// entry of LookupDurations when it took longer than all of them.
var LookupBuckets = [...]time.Duration{
	50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
}

// lookupTimes is the histogram of lookup durations.
type lookupTimes struct {
	buckets [len(LookupBuckets) + 1]atomic.Uint64
	sum     atomic.Int64 // nanoseconds
}

func (h *lookupTimes) add(d time.Duration) {
	i := 0
	for i < len(LookupBuckets) && d > LookupBuckets[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sum.Add(int64(d))
}

// snapshot fills s's LookupDurations and LookupTime.
func (h *lookupTimes) snapshot(s *Stats) {
	for i := range h.buckets {
		s.LookupDurations[i] = h.buckets[i].Load()
	}
	s.LookupTime = time.Duration(h.sum.Load())
}
