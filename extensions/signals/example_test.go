package signals_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/extensions/signals"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/memory"
)

// Three WebRTC-style nodes on a linked memory network: the second and third only know
// the first (their "signalling server"); the third finds a peer announced by the second
// over a connection the extension opened through the first.
func Example() {
	network := memory.NewNetwork(&memory.Config{Linked: true})
	fake := signals.NewFakeNetwork(network)
	var nodes []*dht.Node
	for range 3 {
		tr, _ := network.Listen(netip.AddrPort{})
		defer tr.Close()
		ext, _ := signals.New(fake.Signaler(tr.LocalAddr()), nil)
		n, err := dht.New(tr, &dht.Config{K: 2, KRPC: krpc.Config{Extensions: []krpc.Extension{ext}}})
		if err != nil {
			panic(err)
		}
		defer n.Close()
		nodes = append(nodes, n)
	}
	ctx := context.Background()
	for _, n := range nodes[1:] {
		fake.Dial(n.Addr(), nodes[0].Addr()) // bootstrap signalling
		if _, err := n.Bootstrap(ctx, nodes[0].Addr()); err != nil {
			panic(err)
		}
	}
	ih := dht.RandomID()
	if _, err := nodes[1].Announce(ctx, ih, 0); err != nil {
		panic(err)
	}
	nodes[2].GetPeers(ctx, ih, func(peer netip.AddrPort, _ dht.NodeInfo) bool {
		fmt.Println("found", peer)
		return false
	})
	// Output: found 10.0.0.2:6881
}
