//go:build linux

package webrtc

import (
	"golang.org/x/sys/unix"
)

// newReadBuffer returns a connection's read buffer of MaxMessageSize bytes, and the
// function that frees it once the read loop is done with it.
//
// The buffer is an anonymous private mapping, outside the Go heap: the kernel gives a
// page memory only when a message is first written into it, so a connection whose
// messages are DHT messages (rarely over one page) keeps one page resident where a heap
// buffer would keep all 64 KiB (the allocator zeroes it). release gives back the pages of
// a large message after it has been copied out.
func newReadBuffer() (buf []byte, release func(n int), free func()) {
	b, err := unix.Mmap(-1, 0, MaxMessageSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return heapReadBuffer()
	}
	page := unix.Getpagesize()
	release = func(n int) {
		if n > page {
			_ = unix.Madvise(b, unix.MADV_DONTNEED) // the next message finds zero pages again
		}
	}
	return b, release, func() { _ = unix.Munmap(b) }
}
