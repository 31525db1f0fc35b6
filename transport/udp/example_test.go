package udp_test

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/wdht/wdht/transport/udp"
)

func Example() {
	server, err := udp.Listen(netip.MustParseAddrPort("127.0.0.1:0"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer server.Close()
	client, err := udp.Listen(netip.MustParseAddrPort("127.0.0.1:0"), nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Send(server.LocalAddr(), []byte("ping")); err != nil {
		fmt.Println(err)
		return
	}
	p, err := server.Receive(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("server got %q from the client: %v\n", p.Data, p.From == client.LocalAddr())
	server.Send(p.From, []byte("pong"))
	p, _ = client.Receive(ctx)
	fmt.Printf("client got %q\n", p.Data)

	// An IPv4 socket cannot reach IPv6 addresses: Send says so at once.
	fmt.Println(client.Send(netip.MustParseAddrPort("[2001:db8::1]:6881"), []byte("ping")) != nil)
	// Output:
	// server got "ping" from the client: true
	// client got "pong"
	// true
}
