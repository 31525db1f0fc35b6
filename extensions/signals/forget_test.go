package signals

import (
	"net/netip"
	"testing"
)

// Two connections to one node (two responders relayed our offers to it at once, before
// either opened): when one of them closes, the other still counts as our connection to
// that node, for the shortcuts we answer and those we accept.
func TestForgetKeepsOtherConnection(t *testing.T) {
	e, err := New(NewFakeNetwork(nil).Signaler(netip.AddrPort{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := idOf(0x42)
	a1, a2 := netip.MustParseAddrPort("127.0.0.1:1001"), netip.MustParseAddrPort("127.0.0.1:1002")
	e.learn(id, a1, true)
	e.learn(id, a2, true)
	e.forget(a2)
	if addr, ok := e.connected(id); !ok || addr != a1 {
		t.Fatalf("after the second connection closed: connected = %v %v, want %v", addr, ok, a1)
	}
	e.forget(a1)
	if addr, ok := e.connected(id); ok {
		t.Fatalf("after both closed: still connected at %v", addr)
	}
	// An address taken over by another node: the old node's other connection stays.
	other := idOf(0x43)
	e.learn(id, a1, true)
	e.learn(id, a2, true)
	e.learn(other, a2, true)
	if addr, ok := e.connected(id); !ok || addr != a1 {
		t.Fatalf("after %v went to another node: connected = %v %v, want %v", a2, addr, ok, a1)
	}
}
