package udp_test

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// After a Receive is interrupted by its context, the next one, with another context or
// none, must not see the interruption (a stale read deadline).
func TestReceiveAfterCancel(t *testing.T) {
	a, b := listen(t, ap("127.0.0.1:0"), nil), listen(t, ap("127.0.0.1:0"), nil)
	for i := range 50 {
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := b.Receive(ctx)
			errc <- err
		}()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Receive = %v, want context.Canceled", err)
		}
		// Alternate between no Done channel, the cancelled context's sibling and a
		// fresh one, to switch watchers every way.
		ctx2 := context.Background()
		if i%2 == 1 {
			var cancel2 context.CancelFunc
			ctx2, cancel2 = context.WithCancel(context.Background())
			defer cancel2()
		}
		if err := a.Send(b.LocalAddr(), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		p, err := b.Receive(ctx2)
		if err != nil || len(p.Data) != 1 || p.Data[0] != byte(i) {
			t.Fatalf("Receive = %v, %v; want [%d]", p.Data, err, i)
		}
	}
	if s := b.Stats(); s.ReadErrors != 0 {
		t.Errorf("Stats = %+v: interrupted reads were counted as errors", s)
	}
}

// Receivers with short, random timeouts race the arrival of datagrams: each datagram is
// received exactly once and none is lost to an interrupted read.
func TestReceiveTimeoutsStress(t *testing.T) {
	a, b := listen(t, ap("127.0.0.1:0"), nil), listen(t, ap("127.0.0.1:0"), nil)
	const (
		total     = 2000
		receivers = 4
		window    = 32
	)
	tokens := make(chan struct{}, window)
	var (
		mu   sync.Mutex
		seen = make(map[uint32]bool)
	)
	allIn := make(chan struct{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for r := range receivers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 1))
			for ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(ctx, time.Duration(rng.IntN(2000))*time.Microsecond)
				p, err := b.Receive(rctx)
				rcancel()
				if err != nil {
					if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
						t.Errorf("Receive: %v", err)
						return
					}
					continue
				}
				n := binary.BigEndian.Uint32(p.Data)
				mu.Lock()
				if seen[n] {
					t.Errorf("datagram %d received twice", n)
				}
				seen[n] = true
				if len(seen) == total {
					close(allIn)
				}
				mu.Unlock()
				<-tokens
			}
		})
	}
	to := b.LocalAddr()
	wg.Go(func() {
		for i := range total {
			select {
			case tokens <- struct{}{}:
			case <-ctx.Done():
				return
			}
			if err := a.Send(to, binary.BigEndian.AppendUint32(nil, uint32(i))); err != nil {
				t.Errorf("Send: %v", err)
				return
			}
		}
	})
	select {
	case <-allIn:
	case <-ctx.Done():
		mu.Lock()
		t.Errorf("received %d of %d datagrams", len(seen), total)
		mu.Unlock()
	}
	cancel()
	wg.Wait()
	if s := b.Stats(); s.ReadErrors != 0 || s.Received != total {
		t.Errorf("Stats = %+v, want %d received, no read errors", s, total)
	}
}
