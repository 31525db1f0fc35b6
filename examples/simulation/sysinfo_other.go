//go:build !unix

package main

import "time"

// wallNow would return the real time inside a synctest bubble; here it is unknown.
func wallNow() time.Time { return time.Time{} }

// peakRSS would return the peak resident set size; here it is unknown.
func peakRSS() int64 { return 0 }

// currentRSS would return the resident set size now; here it is unknown.
func currentRSS() int64 { return 0 }
