package bridge_test

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/wdht/wdht/bridge"
	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/extensions/signals"
	"github.com/wdht/wdht/transport/memory"
)

// A bridge between a mainline network and a WebTorrent-style one, both in memory (the
// web side linked, as WebRTC is: a node reaches only the nodes it connected to). A
// mainline node announces a peer and puts an item; a WebRTC-only node, which knows only
// the bridge, finds both through it.
func Example() {
	ctx := context.Background()
	mainNet := memory.NewNetwork(nil)
	webNet := memory.NewNetwork(&memory.Config{Linked: true})
	fake := signals.NewFakeNetwork(webNet) // a Signaler per node, without pion

	mt, _ := mainNet.Listen(netip.AddrPort{})
	defer mt.Close()
	wt, _ := webNet.Listen(netip.AddrPort{})
	defer wt.Close()
	b, err := bridge.New(mt, wt, fake.Signaler(wt.LocalAddr()), nil)
	if err != nil {
		panic(err)
	}
	defer b.Close()

	// A mainline node: it announces port 6881 and puts an item.
	tr, _ := mainNet.Listen(netip.AddrPort{})
	defer tr.Close()
	m, _ := dht.New(tr, nil)
	defer m.Close()
	if _, err := m.Bootstrap(ctx, b.Mainline.Addr()); err != nil {
		panic(err)
	}
	infohash := dht.RandomID()
	if _, err := m.Announce(ctx, infohash, 6881); err != nil {
		panic(err)
	}
	it, _ := dht.NewImmutableItem("from the mainline DHT")
	if _, err := m.Put(ctx, it, nil); err != nil {
		panic(err)
	}

	// A WebRTC-only node, connected to the bridge alone.
	wtr, _ := webNet.Listen(netip.AddrPort{})
	defer wtr.Close()
	w, _ := signals.NewNode(wtr, fake.Signaler(wtr.LocalAddr()), nil, nil)
	defer w.Close()
	fake.Dial(wtr.LocalAddr(), b.Web.Addr())
	if _, err := w.Bootstrap(ctx, b.Web.Addr()); err != nil {
		panic(err)
	}
	_, err = w.GetPeers(ctx, infohash, func(peer netip.AddrPort, from dht.NodeInfo) bool {
		fmt.Printf("peer %v from the bridge: %v\n", peer, from.ID == b.Web.ID())
		return true
	})
	if err != nil {
		panic(err)
	}
	got, err := w.Get(ctx, it.Target(), nil)
	if err != nil {
		panic(err)
	}
	fmt.Printf("item %s\n", got.Item.V)
	// Output:
	// peer 10.0.0.2:6881 from the bridge: true
	// item 21:from the mainline DHT
}
