// Package bubble counts the goroutines of a testing/synctest bubble, for tests that
// check a flood leaves none behind. runtime.NumGoroutine counts the runtime's own
// goroutines too, which come and go (under -race especially); the goroutines of a
// bubble are only those the code under test started in it.
package bubble

import (
	"bytes"
	"runtime"
)

// Goroutines returns how many goroutines belong to a synctest bubble now. Called from
// inside a bubble, after synctest.Wait, it counts that bubble's (tests that run
// bubbles in parallel would count each other's).
func Goroutines() int {
	buf := make([]byte, 64<<10)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Count(buf[:n], []byte(", synctest bubble "))
		}
		buf = make([]byte, 2*len(buf))
	}
}
