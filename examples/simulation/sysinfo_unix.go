//go:build unix

package main

import (
	"runtime"
	"syscall"
	"time"
)

// wallNow returns the real time, even inside a synctest bubble, where time.Now returns
// the bubble's fake time: it asks the kernel directly.
func wallNow() time.Time {
	var tv syscall.Timeval
	if err := syscall.Gettimeofday(&tv); err != nil {
		return time.Time{}
	}
	return time.Unix(int64(tv.Sec), int64(tv.Usec)*1000)
}

// peakRSS returns the peak resident set size of the process in bytes, or 0.
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return int64(ru.Maxrss) // bytes
	}
	return int64(ru.Maxrss) * 1024 // kilobytes elsewhere
}
