// Command bridge shows package bridge at work: a mainline (UDP) DHT node and a
// WebTorrent (WebRTC) DHT node in one process, sharing one peer store and one BEP 44
// item store, so that nodes that speak only WebRTC (browsers) reach what lives on the
// mainline DHT.
//
// Everything runs in this process, on loopback:
//
//  1. a small mainline DHT of three UDP nodes, one of which puts an item;
//  2. the bridge: a UDP transport, a WebRTC transport with its signalling server
//     (WebSocket and HTTP on one TCP port), bridge.New, and Bootstrap into the
//     mainline DHT;
//  3. a WebRTC-only node, standing in for a browser, that dials the bridge's
//     signalling server and gets the item: the bridge has no copy, and answers its get
//     from a lookup on the mainline side;
//  4. the bridge's own API: Put writes to both networks, Announce too, and GetPeers
//     asks both.
//
// Usage:
//
//	go run ./examples/bridge [-timeout 30s]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wdht/wdht/bridge"
	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/extensions/signals"
	"github.com/wdht/wdht/transport/udp"
	"github.com/wdht/wdht/transport/webrtc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bridge:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// loopback is where every node of the demo listens.
var loopback = netip.MustParseAddr("127.0.0.1")

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("bridge", flag.ContinueOnError)
	fs.SetOutput(stdout)
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if *timeout <= 0 {
		return fmt.Errorf("%w: -timeout %v: want a positive duration", errUsage, *timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var cleanup []func()
	defer func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}()

	// 1. A small mainline DHT: three UDP nodes, each joining through every node before
	// it (through the first alone, the third would know the second only if the first
	// had already verified it).
	var mainline []*dht.Node
	var joined []netip.AddrPort
	for i := range 3 {
		tr, err := udp.Listen(netip.AddrPortFrom(loopback, 0), nil)
		if err != nil {
			return err
		}
		cleanup = append(cleanup, func() { tr.Close() })
		n, err := dht.New(tr, nil)
		if err != nil {
			return err
		}
		cleanup = append(cleanup, func() { n.Close() })
		if i > 0 {
			if _, err := n.Bootstrap(ctx, joined...); err != nil {
				return fmt.Errorf("mainline node %d: bootstrap: %w", i, err)
			}
		}
		mainline = append(mainline, n)
		joined = append(joined, n.Addr())
	}
	item, err := dht.NewImmutableItem("hello from the mainline DHT")
	if err != nil {
		return err
	}
	put, err := mainline[2].Put(ctx, item, nil)
	if err != nil {
		return fmt.Errorf("mainline put: %w", err)
	}
	fmt.Fprintf(stdout, "mainline DHT: 3 UDP nodes; item %v put on %d of them\n", item.Target(), put.Stored)

	// 2. The bridge. Its UDP node joins the mainline DHT; its WebRTC node is reached
	// through the signalling server, whose address it announces to every WebRTC peer.
	utr, err := udp.Listen(netip.AddrPortFrom(loopback, 0), nil)
	if err != nil {
		return err
	}
	cleanup = append(cleanup, func() { utr.Close() })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	signalAddr := l.Addr().String()
	// Loopback: ICE candidates on 127.0.0.1 only, for nodes on one machine. On a real
	// host, leave it out and set Advertise to the public host:port of the server.
	wtr, err := webrtc.New(&webrtc.Config{Loopback: true, Advertise: signalAddr})
	if err != nil {
		l.Close()
		return err
	}
	cleanup = append(cleanup, func() { wtr.Close() })
	b, err := bridge.New(utr, wtr, signals.WebRTC(wtr), nil)
	if err != nil {
		l.Close()
		return err
	}
	cleanup = append(cleanup, func() { b.Close() })
	srv, err := webrtc.NewServer(wtr, nil) // with a certificate for browsers on https pages
	if err != nil {
		l.Close()
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	cleanup = append(cleanup, func() {
		srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(stdout, "signalling server:", err)
		}
	})
	// The WebRTC side has nothing to join yet: only the mainline side bootstraps.
	if err := b.Bootstrap(ctx, []netip.AddrPort{mainline[0].Addr()}, nil); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "bridge: UDP node %v, WebRTC node behind the signalling server %s\n", b.Mainline.Addr(), signalAddr)

	// 3. A WebRTC-only node, as a browser is: it dials the bridge's signalling server,
	// joins through it, and gets the item, which only the mainline nodes hold.
	btr, err := webrtc.New(&webrtc.Config{Loopback: true})
	if err != nil {
		return err
	}
	cleanup = append(cleanup, func() { btr.Close() })
	browser, err := signals.NewNode(btr, signals.WebRTC(btr), nil, nil)
	if err != nil {
		return err
	}
	cleanup = append(cleanup, func() { browser.Close() })
	peer, err := btr.Dial(ctx, signalAddr)
	if err != nil {
		return fmt.Errorf("dialling the bridge: %w", err)
	}
	if _, err := browser.Bootstrap(ctx, peer); err != nil {
		return fmt.Errorf("WebRTC node: bootstrap: %w", err)
	}
	fmt.Fprintf(stdout, "WebRTC-only node: connected to the bridge's WebRTC node at %v\n", peer)
	if _, ok := b.Items().Get(item.Target()); ok {
		return errors.New("the bridge already holds the item")
	}
	got, err := browser.Get(ctx, item.Target(), nil)
	if err != nil {
		return fmt.Errorf("WebRTC node: get: %w", err)
	}
	var value string
	if err := got.Item.Value(&value); err != nil {
		return err
	}
	_, cached := b.Items().Get(item.Target())
	fmt.Fprintf(stdout, "WebRTC-only node: got %q from the mainline DHT through the bridge (cached there: %v)\n", value, cached)

	// 4. The bridge's own lookups and writes span both networks.
	both, err := dht.NewImmutableItem("written to both networks")
	if err != nil {
		return err
	}
	pm, pw, err := b.Put(ctx, both, nil)
	if err != nil {
		return fmt.Errorf("bridge put: %w", err)
	}
	fmt.Fprintf(stdout, "bridge: put %v on %d mainline and %d WebRTC nodes\n", both.Target(), stored(pm), stored(pw))
	if _, err := mainline[1].Get(ctx, both.Target(), nil); err != nil {
		return fmt.Errorf("mainline get: %w", err)
	}
	if _, err := browser.Get(ctx, both.Target(), nil); err != nil {
		return fmt.Errorf("WebRTC get: %w", err)
	}
	fmt.Fprintln(stdout, "mainline and WebRTC-only nodes: both get it")

	infohash, _ := dht.ParseID("c12fe1c06bba254a9dc9f519b335aa7c1367a88a")
	if _, err := mainline[1].Announce(ctx, infohash, 6999); err != nil {
		return fmt.Errorf("mainline announce: %w", err)
	}
	var peers []netip.AddrPort
	if _, err := b.GetPeers(ctx, infohash, func(p netip.AddrPort, _ dht.NodeInfo) bool { peers = append(peers, p); return true }); err != nil {
		return fmt.Errorf("bridge get_peers: %w", err)
	}
	fmt.Fprintf(stdout, "bridge: get_peers %v on both networks: %v\n", infohash, peers)
	return nil
}

// stored counts the nodes a put stored on, when it ran.
func stored(r *dht.PutResult) int {
	if r == nil {
		return 0
	}
	return r.Stored
}
