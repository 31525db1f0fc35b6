package udp

import (
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/wdht/wdht/transport"
)

// batchLen is the most datagrams one recvmmsg or sendmmsg call moves.
const batchLen = 32

// recvBufs are the recvmmsg arguments: one header, buffer, address and control buffer per
// datagram. The buffers are MaxMessageSize+1 bytes each, so batch reads lose nothing a
// single read would deliver; the memory is mostly untouched, as datagrams are small.
type recvBufs struct {
	hdrs  [batchLen]unix.Mmsghdr
	iovs  [batchLen]unix.Iovec
	names [batchLen]unix.RawSockaddrInet6
	oob   []byte // batchLen control buffers of oobSize
	buf   []byte // batchLen buffers of max+1
}

func (t *Transport) newRecvBufs() *recvBufs {
	rb := &recvBufs{oob: make([]byte, batchLen*oobSize), buf: make([]byte, batchLen*(t.max+1))}
	for i := range batchLen {
		rb.iovs[i].Base = &rb.buf[i*(t.max+1)]
		rb.iovs[i].SetLen(t.max + 1)
		h := &rb.hdrs[i].Hdr
		h.Iov = &rb.iovs[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&rb.names[i]))
		h.Control = &rb.oob[i*oobSize]
	}
	return rb
}

// readBatch reads up to len(ps) queued datagrams with one recvmmsg, waiting (through the
// runtime's poller, so read deadlines apply) until there is at least one. The caller
// holds readTok.
func (t *Transport) readBatch(ps []transport.Packet) (int, error) {
	if t.rb == nil {
		t.rb = t.newRecvBufs()
	}
	rb := t.rb
	want := min(len(ps), batchLen)
	for i := range want {
		rb.hdrs[i].Hdr.Namelen = uint32(unsafe.Sizeof(rb.names[i]))
		rb.hdrs[i].Hdr.SetControllen(oobSize)
		rb.hdrs[i].Hdr.Flags = 0
	}
	var got int
	var errno syscall.Errno
	err := t.raw.Read(func(fd uintptr) bool {
		r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&rb.hdrs[0])), uintptr(want), unix.MSG_DONTWAIT, 0, 0)
		if e == unix.EAGAIN || e == unix.EINTR {
			return false // wait for the socket to be readable
		}
		got, errno = int(r), e
		return true
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	n := 0
	for i := range got {
		h := &rb.hdrs[i]
		from := sockaddrAddr(&rb.names[i])
		t.noteDrops(rb.oob[i*oobSize : i*oobSize+int(h.Hdr.Controllen)])
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 || !t.accept(int(h.Len), from) {
			continue
		}
		data := make([]byte, h.Len)
		copy(data, rb.buf[i*(t.max+1):])
		ps[n] = transport.Packet{From: from, Data: data}
		n++
	}
	return n, nil
}

// sockaddrAddr decodes a sockaddr_in or sockaddr_in6, unmapping IPv4-mapped addresses.
func sockaddrAddr(sa *unix.RawSockaddrInet6) netip.AddrPort {
	port := func(p uint16) uint16 { b := (*[2]byte)(unsafe.Pointer(&p)); return uint16(b[0])<<8 | uint16(b[1]) }
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port(sa4.Port))
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port(sa.Port))
	}
	return netip.AddrPort{}
}

// sendBufs are the sendmmsg arguments.
type sendBufs struct {
	hdrs  [batchLen]unix.Mmsghdr
	iovs  [batchLen]unix.Iovec
	names [batchLen]unix.RawSockaddrInet6
}

// writeBatch sends ms (at most batchLen, all checked already) with sendmmsg, waiting for
// the socket to be writable if its buffer is full. It returns how many were sent and the
// error of the first that was not.
func (t *Transport) writeBatch(ms []transport.Message) (int, error) {
	t.wmuB.Lock()
	defer t.wmuB.Unlock()
	if t.wb == nil {
		t.wb = new(sendBufs)
	}
	wb := t.wb
	v6sock := !t.laddr.Addr().Is4()
	for i := range ms {
		m := &ms[i]
		if len(m.Data) > 0 {
			wb.iovs[i].Base = &m.Data[0]
		} else {
			wb.iovs[i].Base = nil
		}
		wb.iovs[i].SetLen(len(m.Data))
		h := &wb.hdrs[i].Hdr
		h.Iov = &wb.iovs[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&wb.names[i]))
		h.Namelen = putSockaddr(&wb.names[i], m.To, v6sock)
	}
	sent := 0
	for sent < len(ms) {
		var r int
		var errno syscall.Errno
		err := t.raw.Write(func(fd uintptr) bool {
			n, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&wb.hdrs[sent])), uintptr(len(ms)-sent), unix.MSG_DONTWAIT, 0, 0)
			if e == unix.EAGAIN || e == unix.EINTR {
				return false // wait for room in the socket buffer
			}
			r, errno = int(n), e
			return true
		})
		if err == nil && errno != 0 {
			err = errno
		}
		if err != nil {
			clear(wb.iovs[:len(ms)]) // drop references to the callers' buffers
			return sent, t.sendError(ms[sent].To, err)
		}
		sent += r
		t.sent.Add(uint64(r))
	}
	clear(wb.iovs[:len(ms)])
	return sent, nil
}

// putSockaddr writes a as a sockaddr for a socket of the given family and returns its length.
func putSockaddr(sa *unix.RawSockaddrInet6, a netip.AddrPort, v6sock bool) uint32 {
	p := a.Port()
	pb := (*[2]byte)(unsafe.Pointer(&sa.Port))
	pb[0], pb[1] = byte(p>>8), byte(p)
	if !v6sock {
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		sa4.Family = unix.AF_INET
		sa4.Addr = a.Addr().As4()
		sa4.Zero = [8]byte{}
		return unix.SizeofSockaddrInet4
	}
	sa.Family = unix.AF_INET6
	sa.Addr = a.Addr().As16() // IPv4 becomes IPv4-mapped, as a dual-stack socket wants
	sa.Flowinfo, sa.Scope_id = 0, 0
	return unix.SizeofSockaddrInet6
}
