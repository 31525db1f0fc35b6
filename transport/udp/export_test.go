package udp

import "syscall"

// RawConn gives tests the socket, to set options the package does not expose.
func RawConn(t *Transport) (syscall.RawConn, error) { return t.conn.SyscallConn() }
