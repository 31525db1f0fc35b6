package dht_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/transport/memory"
)

// Three nodes on an in-memory network: one announces an infohash, another finds it.
func Example() {
	network := memory.NewNetwork(nil)
	var nodes []*dht.Node
	for range 3 {
		tr, err := network.Listen(netip.AddrPort{}) // the next free address, 10.0.0.x:6881
		if err != nil {
			panic(err)
		}
		defer tr.Close()
		n, err := dht.New(tr, nil)
		if err != nil {
			panic(err)
		}
		defer n.Close()
		nodes = append(nodes, n)
	}
	ctx := context.Background()
	for _, n := range nodes[1:] {
		if _, err := n.Bootstrap(ctx, nodes[0].Addr()); err != nil {
			panic(err)
		}
	}

	infohash, _ := dht.ParseID("c12fe1c06bba254a9dc9f519b335aa7c1367a88a")
	if _, err := nodes[1].Announce(ctx, infohash, 6881); err != nil {
		panic(err)
	}
	_, err := nodes[2].GetPeers(ctx, infohash, func(peer netip.AddrPort, _ dht.NodeInfo) bool {
		fmt.Println("peer:", peer)
		return true
	})
	if err != nil {
		panic(err)
	}
	// Output:
	// peer: 10.0.0.2:6881
}
