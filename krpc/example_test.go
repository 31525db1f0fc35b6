package krpc_test

import (
	"context"
	"fmt"
	"net/netip"

	akrpc "github.com/anacrolix/dht/v2/krpc"

	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/memory"
)

// A server answering "ping", and a second one calling it.
func Example() {
	network := memory.NewNetwork(nil)
	ta, _ := network.Listen(netip.AddrPort{})
	tb, _ := network.Listen(netip.AddrPort{})
	defer ta.Close()
	defer tb.Close()

	var serverID krpc.ID
	copy(serverID[:], "server-id-0123456789")
	server, err := krpc.NewServer(tb, krpc.Mux{
		krpc.MethodPing: krpc.HandlerFunc(func(ctx context.Context, q *krpc.Query) (*krpc.Response, error) {
			return &krpc.Response{Return: &krpc.Return{Return: akrpc.Return{ID: serverID}}}, nil
		}),
	}, nil)
	if err != nil {
		panic(err)
	}
	defer server.Close()

	client, err := krpc.NewServer(ta, nil, nil)
	if err != nil {
		panic(err)
	}
	defer client.Close()
	args := &krpc.Args{}
	copy(args.ID[:], "client-id-0123456789")
	resp, err := client.Call(context.Background(), tb.LocalAddr(), &krpc.Query{Method: krpc.MethodPing, Args: args})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s answered; it sees us at %v\n", resp.Return.ID[:], resp.IP)
	// Output: server-id-0123456789 answered; it sees us at 10.0.0.1:6881
}

// Unknown keys survive decoding and encoding byte for byte.
func ExampleMsg_UnmarshalBinary() {
	in := []byte("d1:ad2:id20:abcdefghij01234567897:signalsle6:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe")
	var m krpc.Msg
	if err := m.UnmarshalBinary(in); err != nil {
		panic(err)
	}
	out, _ := m.MarshalBinary()
	fmt.Printf("%s %s signals=%s identical=%v\n", m.Q, m.A.Target[:], m.A.Extra["signals"], string(in) == string(out))
	// Output: find_node mnopqrstuvwxyz123456 signals=le identical=true
}
