package webrtc

import (
	"net/netip"
	"testing"
)

// A browser redacts a peer-reflexive remote candidate's address; remoteAddr then finds
// the IP among the remote description's UDP candidates by the port, only when it is
// unambiguous.
func TestSDPCandidateIP(t *testing.T) {
	const sdp = "v=0\r\n" +
		"a=candidate:1 1 udp 2113937151 127.0.0.1 40000 typ host generation 0\r\n" +
		"a=candidate:2 1 udp 2113937151 10.0.0.2 40001 typ host\r\n" +
		"a=candidate:3 1 udp 1677729535 192.0.2.7 40001 typ srflx raddr 10.0.0.2 rport 40001\r\n" +
		"a=candidate:4 1 tcp 1518280447 127.0.0.2 40002 typ host tcptype passive\r\n" +
		"a=candidate:5 1 udp 2113937151 abcd.local 40003 typ host\r\n" +
		"a=candidate:6 1 udp 2113937151 ::ffff:127.0.0.3 40004 typ host\n" +
		"a=candidate:7 1 udp 2113937151 127.0.0.1 40005 typ host\r\n" +
		"a=candidate:8 2 udp 2113937150 127.0.0.1 40005 typ host\r\n"
	for _, c := range []struct {
		port uint16
		want string // "" = not found
	}{
		{40000, "127.0.0.1"},
		{40001, ""},          // two IPs use that port
		{40002, ""},          // TCP only
		{40003, ""},          // a name, not an IP
		{40004, "127.0.0.3"}, // unmapped
		{40005, "127.0.0.1"}, // two components, one IP
		{40006, ""},
	} {
		ip, ok := sdpCandidateIP(sdp, c.port)
		switch {
		case !ok && c.want != "":
			t.Errorf("port %d: not found, want %s", c.port, c.want)
		case ok && (c.want == "" || ip != netip.MustParseAddr(c.want)):
			t.Errorf("port %d: %v, want %q", c.port, ip, c.want)
		}
	}
}
