//go:build !linux

package udp

import "net"

func enableDropCount(*net.UDPConn) error { return nil }

const oobSize = 0

func parseDropCount([]byte) (uint32, bool) { return 0, false }
