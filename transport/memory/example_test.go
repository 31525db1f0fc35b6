package memory_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/wdht/wdht/transport/memory"
)

func Example() {
	n := memory.NewNetwork(&memory.Config{Seed: 1})
	alice, _ := n.Listen(netip.AddrPort{}) // allocates 10.0.0.1:6881
	defer alice.Close()
	bob, _ := n.Listen(netip.MustParseAddrPort("192.0.2.7:6881"))
	defer bob.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()

	alice.Send(bob.LocalAddr(), []byte("ping"))
	p, _ := bob.Receive(ctx)
	fmt.Printf("bob got %q from %v\n", p.Data, p.From)
	bob.Send(p.From, []byte("pong"))
	p, _ = alice.Receive(ctx)
	fmt.Printf("alice got %q from %v\n", p.Data, p.From)

	// Cut bob off: packets across the partition vanish, as on a real network.
	n.Partition([]netip.Addr{bob.LocalAddr().Addr()})
	alice.Send(bob.LocalAddr(), []byte("lost"))
	n.Heal()
	fmt.Printf("%+v\n", n.Stats())
	// Output:
	// bob got "ping" from 10.0.0.1:6881
	// alice got "pong" from 192.0.2.7:6881
	// {Sent:3 Unreachable:0 Delivered:2 Filtered:0 Partitioned:1 Lost:0 QueueFull:0 NoListener:0}
}

func ExampleNetwork_Link() {
	// In linked mode, as with WebRTC, peers reach each other only once connected.
	n := memory.NewNetwork(&memory.Config{Linked: true})
	a, _ := n.Listen(netip.AddrPort{})
	defer a.Close()
	b, _ := n.Listen(netip.AddrPort{})
	defer b.Close()

	fmt.Println(a.Send(b.LocalAddr(), []byte("hello")))
	n.Link(a.LocalAddr(), b.LocalAddr())
	fmt.Println(a.Send(b.LocalAddr(), []byte("hello")))
	// Output:
	// memory: send to 10.0.0.2:6881: not linked: transport: destination unreachable
	// <nil>
}
