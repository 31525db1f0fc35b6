package dht

import (
	"testing"
	"time"
)

func TestLookupTimes(t *testing.T) {
	var h lookupTimes
	for _, d := range []time.Duration{0, 50 * time.Millisecond, 51 * time.Millisecond, time.Second, time.Hour} {
		h.add(d)
	}
	var s Stats
	h.snapshot(&s)
	want := [len(LookupBuckets) + 1]uint64{0: 2, 1: 1, 4: 1, len(LookupBuckets): 1}
	if s.LookupDurations != want {
		t.Errorf("buckets %v, want %v", s.LookupDurations, want)
	}
	if wantSum := 101*time.Millisecond + time.Second + time.Hour; s.LookupTime != wantSum {
		t.Errorf("sum %v, want %v", s.LookupTime, wantSum)
	}
}
