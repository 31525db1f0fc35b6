package webrtc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/wdht/wdht/extensions/signals"
	"github.com/wdht/wdht/transport/webrtc"
)

// A WebTorrent DHT node serving signalling, and a client that joins through it, over
// real WebRTC data channels on loopback: the client dials the server's signalling
// address, a data channel opens, and the two nodes find each other.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The server: a transport, a node with the WebTorrent extension, and the signalling
	// server on a TCP listener (an http.Handler too; with ServerConfig.CertFile, TLS).
	st, err := webrtc.New(&webrtc.Config{Loopback: true}) // loopback candidates only
	if err != nil {
		panic(err)
	}
	defer st.Close()
	server, err := signals.NewNode(st, signals.WebRTC(st), nil, nil)
	if err != nil {
		panic(err)
	}
	defer server.Close()
	srv, err := webrtc.NewServer(st, nil)
	if err != nil {
		panic(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	defer func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			panic(err)
		}
	}()
	signalling := netip.MustParseAddrPort(l.Addr().String())

	// The client: a transport and a node that bootstraps by dialling the server.
	ct, err := webrtc.New(&webrtc.Config{Loopback: true})
	if err != nil {
		panic(err)
	}
	defer ct.Close()
	client, err := signals.NewNode(ct, signals.WebRTC(ct), nil, nil)
	if err != nil {
		panic(err)
	}
	defer client.Close()
	if _, err := client.Bootstrap(ctx, signalling); err != nil {
		panic(err)
	}
	nodes := client.Nodes()
	fmt.Println("the client knows", len(nodes), "node; it is the server:", len(nodes) == 1 && nodes[0].ID == server.ID())
	id, err := client.Ping(ctx, nodes[0].Addr) // over the data channel
	if err != nil {
		panic(err)
	}
	fmt.Println("pong from the server:", id == server.ID(), "; data channels:", len(ct.Peers()))
	// Output:
	// the client knows 1 node; it is the server: true
	// pong from the server: true ; data channels: 1
}
