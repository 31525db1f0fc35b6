package main

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/dht"
)

func TestBootstrapBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var calls []time.Duration
		bootstrapLoop(t.Context(), func(context.Context) (*dht.LookupResult, error) {
			calls = append(calls, time.Since(start))
			if len(calls) <= 8 {
				return &dht.LookupResult{}, dht.ErrNoNodes
			}
			return &dht.LookupResult{Responses: 1}, nil
		}, hclog.NewNullLogger())
		// Waits of 1, 2, 4, 8, 16, 32, then 60 (the cap) seconds.
		var want []time.Duration
		for _, s := range []int{0, 1, 3, 7, 15, 31, 63, 123, 183} {
			want = append(want, time.Duration(s)*time.Second)
		}
		if !slices.Equal(calls, want) {
			t.Errorf("bootstrap called at %v; want %v", calls, want)
		}
	})
}

func TestBootstrapLoopStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		calls := 0
		done := make(chan struct{})
		go func() {
			defer close(done)
			bootstrapLoop(ctx, func(context.Context) (*dht.LookupResult, error) {
				calls++
				return &dht.LookupResult{}, dht.ErrNoNodes
			}, hclog.NewNullLogger())
		}()
		time.Sleep(2 * time.Second) // fake time: two failures, waiting for the third try
		synctest.Wait()
		cancel()
		<-done
		if calls != 2 {
			t.Errorf("bootstrap called %d times before cancel; want 2", calls)
		}
	})
}
