//go:build !linux

package webrtc

// newReadBuffer returns a connection's read buffer of MaxMessageSize bytes (see
// readbuf_linux.go); here a heap buffer.
func newReadBuffer() (buf []byte, release func(n int), free func()) { return heapReadBuffer() }
