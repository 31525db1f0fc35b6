package webrtc_test

import (
	"net"
	"strings"
	"testing"

	"github.com/pion/mdns"
	"golang.org/x/net/ipv4"

	"github.com/wdht/wdht/transport/webrtc"
)

// A real multicast DNS exchange: a responder publishes a name, as a browser does for its
// host candidates, and the transport resolves it in a peer's SDP.
func TestMDNSResolution(t *testing.T) {
	l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(224, 0, 0, 0), Port: 5353})
	if err != nil {
		t.Skipf("no multicast DNS socket: %v", err)
	}
	const name = "0c3b8e46-7d1f-4b8e-9e4a-5d1d2b7c9f10.local"
	responder, err := mdns.Server(ipv4.NewPacketConn(l), &mdns.Config{LocalNames: []string{name}})
	if err != nil {
		l.Close()
		t.Skipf("no multicast DNS responder: %v", err)
	}
	defer responder.Close()
	tr, err := webrtc.New(&webrtc.Config{Logger: testLogger("mdns")})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	got := tr.PrepareRemoteSDP(t.Context(), "v=0\r\na=candidate:1 1 udp 2113937151 "+name+" 5000 typ host\r\n")
	if strings.Contains(got, ".local") || !strings.Contains(got, "a=candidate:1 1 udp 2113937151 ") {
		if !strings.Contains(got, "a=candidate") {
			t.Skipf("the name did not resolve (no multicast route here?): %q", got)
		}
		t.Fatalf("not resolved: %q", got)
	}
	t.Logf("resolved: %q", got)
}
