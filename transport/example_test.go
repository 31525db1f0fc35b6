package transport_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/transport"
)

// hub is an in-process network of pipe transports, addressed 127.0.0.1:1, :2, …
type hub struct {
	mu    sync.Mutex
	next  uint16
	pipes map[netip.AddrPort]*pipe
}

// pipe is a custom transport: a buffered channel of packets per address.
type pipe struct {
	hub       *hub
	addr      netip.AddrPort
	in        chan transport.Packet
	closed    chan struct{}
	closeOnce sync.Once
}

func (h *hub) listen() *pipe {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pipes == nil {
		h.pipes = make(map[netip.AddrPort]*pipe)
	}
	h.next++
	p := &pipe{hub: h, addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), h.next),
		in: make(chan transport.Packet, 256), closed: make(chan struct{})}
	h.pipes[p.addr] = p
	return p
}

func (p *pipe) Send(to netip.AddrPort, b []byte) error {
	select {
	case <-p.closed:
		return net.ErrClosed
	default:
	}
	if len(b) > transport.MaxMessageSize {
		return transport.ErrMessageTooLarge
	}
	p.hub.mu.Lock()
	dst := p.hub.pipes[transport.Unmap(to)]
	p.hub.mu.Unlock()
	if dst == nil {
		return fmt.Errorf("pipe: %v: %w", to, transport.ErrUnreachable)
	}
	select {
	case dst.in <- transport.Packet{From: p.addr, Data: append([]byte(nil), b...)}:
	default: // full: dropped, as a datagram may be
	}
	return nil
}

func (p *pipe) Receive(ctx context.Context) (transport.Packet, error) {
	select {
	case <-p.closed: // first: after Close, never a queued packet (the suite checks it)
		return transport.Packet{}, net.ErrClosed
	default:
	}
	select {
	case pk := <-p.in:
		return pk, nil
	case <-p.closed:
		return transport.Packet{}, net.ErrClosed
	case <-ctx.Done():
		return transport.Packet{}, ctx.Err()
	}
}

func (p *pipe) LocalAddr() netip.AddrPort { return p.addr }

func (p *pipe) Close() error {
	p.closeOnce.Do(func() {
		close(p.closed)
		p.hub.mu.Lock()
		delete(p.hub.pipes, p.addr)
		p.hub.mu.Unlock()
	})
	return nil
}

// A custom transport: any type with Send, Receive, LocalAddr and Close carries the DHT.
// This one is an in-process pipe (package transporttest's example runs the conformance
// suite on it); examples/customtransport has one over Unix datagram sockets.
func Example() {
	var h hub
	ta, tb := h.listen(), h.listen()
	defer ta.Close()
	defer tb.Close()
	a, err := dht.New(ta, nil)
	if err != nil {
		panic(err)
	}
	defer a.Close()
	b, _ := dht.New(tb, nil)
	defer b.Close()

	ctx := context.Background()
	id, err := b.Ping(ctx, a.Addr())
	if err != nil {
		panic(err)
	}
	fmt.Println("pong from", a.Addr(), id == a.ID())
	if _, err := b.Bootstrap(ctx, a.Addr()); err != nil {
		panic(err)
	}
	fmt.Println("a's table:", len(a.Nodes()), "node")
	// Output:
	// pong from 127.0.0.1:1 true
	// a's table: 1 node
}
