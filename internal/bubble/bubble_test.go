package bubble

import (
	"testing"
	"testing/synctest"
)

// Goroutines counts a bubble's goroutines: those started in it, while they run, and
// not the goroutines outside it.
func TestGoroutines(t *testing.T) {
	outside := make(chan struct{})
	go func() { <-outside }()
	defer close(outside)
	synctest.Test(t, func(t *testing.T) {
		synctest.Wait()
		base := Goroutines()
		if base == 0 {
			t.Fatal("the test's own goroutine is not counted")
		}
		stop := make(chan struct{})
		for range 3 {
			go func() { <-stop }()
		}
		synctest.Wait()
		if got := Goroutines(); got != base+3 {
			t.Fatalf("%d goroutines with 3 started, want %d", got, base+3)
		}
		close(stop)
		synctest.Wait()
		if got := Goroutines(); got != base {
			t.Fatalf("%d goroutines once they ended, want %d", got, base)
		}
	})
}
