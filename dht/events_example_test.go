package dht_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/transport/memory"
)

// Event hooks and BEP 44: a node reports the item put to it and the peer announced to it;
// the item is read back with Get.
func ExampleEvents() {
	network := memory.NewNetwork(nil)
	done := make(chan string, 2)
	trA, _ := network.Listen(netip.AddrPort{})
	defer trA.Close()
	a, err := dht.New(trA, &dht.Config{Events: dht.Events{
		ItemStored:    func(it *dht.Item, from dht.NodeInfo) { done <- fmt.Sprintf("stored %s from %v", it.V, from.Addr) },
		PeerAnnounced: func(ih dht.ID, peer netip.AddrPort, _ dht.NodeInfo) { done <- fmt.Sprintf("peer %v", peer) },
	}})
	if err != nil {
		panic(err)
	}
	defer a.Close()
	trB, _ := network.Listen(netip.AddrPort{})
	defer trB.Close()
	b, _ := dht.New(trB, nil)
	defer b.Close()

	ctx := context.Background()
	if _, err := b.AddNode(ctx, a.Addr()); err != nil {
		panic(err)
	}
	it, _ := dht.NewImmutableItem("hello")
	if _, err := b.Put(ctx, it, nil); err != nil {
		panic(err)
	}
	fmt.Println(<-done)
	if _, err := b.Announce(ctx, dht.RandomID(), 4242); err != nil {
		panic(err)
	}
	fmt.Println(<-done)
	got, err := b.Get(ctx, it.Target(), nil)
	if err != nil {
		panic(err)
	}
	fmt.Printf("got %s\n", got.Item.V)
	// Output:
	// stored 5:hello from 10.0.0.2:6881
	// peer 10.0.0.2:4242
	// got 5:hello
}
