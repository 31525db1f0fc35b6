//go:build unix

package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/udp"
)

// The load generator gets every query answered by a node that can keep up, and its
// template is a valid query of each kind.
func TestRunLoad(t *testing.T) {
	tr, err := udp.Listen(netip.MustParseAddrPort("127.0.0.1:0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	cfg := &dht.Config{}
	cfg.KRPC.SourceRate, cfg.KRPC.InboundRate = -1, -1 // the load is one source, and above the global limit
	n, err := dht.New(tr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for _, method := range []string{krpc.MethodPing, krpc.MethodFindNode, krpc.MethodGetPeers} {
		b, _, err := template(method)
		if err != nil {
			t.Fatal(err)
		}
		var m krpc.Msg
		if err := m.UnmarshalBinary(b); err != nil || m.Q != method {
			t.Fatalf("%s template %q: %v", method, b, err)
		}
		res, err := runLoad(t.Context(), loadConfig{target: n.Addr(), queries: 2000, inflight: 16, method: method, timeout: 2 * time.Second, maxTime: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if res.Answered != 2000 || res.Sent != 2000 || res.Errors != 0 {
			t.Fatalf("%s: %+v", method, res)
		}
	}
	if _, _, err := template("vote"); err == nil {
		t.Fatal("unknown method accepted")
	}
}
