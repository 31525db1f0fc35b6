//go:build linux

package webrtc

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident returns the pages of b the kernel holds in memory.
func resident(t *testing.T, b []byte) int {
	t.Helper()
	page := unix.Getpagesize()
	vec := make([]byte, (len(b)+page-1)/page)
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		t.Fatal(errno)
	}
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
}

// TestReadBufferResident checks that a connection's read buffer costs memory only for
// the pages its messages touch, and gives back those of a large message.
func TestReadBufferResident(t *testing.T) {
	buf, release, free := newReadBuffer()
	defer free()
	if len(buf) != MaxMessageSize {
		t.Fatalf("read buffer of %d bytes, want %d", len(buf), MaxMessageSize)
	}
	if n := resident(t, buf); n != 0 {
		t.Errorf("%d pages resident in a fresh buffer, want 0", n)
	}
	copy(buf, "d1:ad2:id20:")
	release(12)
	if n := resident(t, buf); n != 1 {
		t.Errorf("%d pages resident after a small message, want 1", n)
	}
	for i := range buf {
		buf[i] = byte(i)
	}
	if n, all := resident(t, buf), len(buf)/unix.Getpagesize(); n != all {
		t.Errorf("%d pages resident after a full message, want %d", n, all)
	}
	release(len(buf))
	if n := resident(t, buf); n != 0 {
		t.Errorf("%d pages resident after a large message was released, want 0", n)
	}
}
