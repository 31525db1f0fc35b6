package rtt

import (
	"testing"
	"time"
)

func TestDeadline(t *testing.T) {
	var e Estimate
	lo, hi := 50*time.Millisecond, time.Second
	if got := e.Deadline(lo, hi); got != hi {
		t.Errorf("no sample: %v, want the upper bound %v", got, hi)
	}
	e.Add(100 * time.Millisecond) // srtt 100, rttvar 50: 100 + 200
	if got := e.Deadline(lo, hi); got != 300*time.Millisecond {
		t.Errorf("one sample of 100ms: %v, want 300ms", got)
	}
	for range 50 {
		e.Add(100 * time.Millisecond)
	}
	if got := e.Deadline(lo, hi); got < 150*time.Millisecond || got > 160*time.Millisecond {
		t.Errorf("steady 100ms: %v, want about 150ms (srtt + srtt/2)", got)
	}
	var fast Estimate
	fast.Add(200 * time.Microsecond)
	if got := fast.Deadline(lo, hi); got != lo {
		t.Errorf("200µs: %v, want the lower bound %v", got, lo)
	}
	var slow Estimate
	slow.Add(3 * time.Second)
	if got := slow.Deadline(lo, hi); got != hi {
		t.Errorf("3s: %v, want the upper bound %v", got, hi)
	}
	var huge Estimate
	huge.Add(time.Hour) // clamped to MaxSample, not wrapped
	if got := huge.Deadline(lo, 2*time.Hour); got < MaxSample {
		t.Errorf("1h sample: %v, want at least MaxSample %v", got, MaxSample)
	}
}
