package udp

import (
	"encoding/binary"
	"net"
	"syscall"
)

// enableDropCount asks the kernel to report, with each datagram read after a drop, how
// many datagrams the socket has dropped for lack of buffer space (SO_RXQ_OVFL).
func enableDropCount(conn *net.UDPConn) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RXQ_OVFL, 1)
	}); err != nil {
		return err
	}
	return serr
}

// oobSize is the room for the drop counter's control message.
var oobSize = syscall.CmsgSpace(4)

// parseDropCount returns the socket's drop counter from the control messages of a read.
// The kernel sends it only once the count is non-zero, so this (allocating) parse runs
// only on sockets that have dropped datagrams.
func parseDropCount(oob []byte) (uint32, bool) {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level == syscall.SOL_SOCKET && m.Header.Type == syscall.SO_RXQ_OVFL && len(m.Data) >= 4 {
			return binary.NativeEndian.Uint32(m.Data), true
		}
	}
	return 0, false
}
