package transporttest_test

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/wdht/wdht/transport"
	"github.com/wdht/wdht/transport/transporttest"
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

// Running the conformance suite on a custom transport. In a package's tests this is a
// Test function calling transporttest.Run; here testing.RunTests runs it so that the
// example can show the result. (The suite found the bug this pipe first had: Receive
// after Close returned a queued packet when the select picked it.)
func Example() {
	// RunTests logs each subtest under go test -v; quiet, the output is the same either way.
	if v := flag.Lookup("test.v"); v != nil {
		old := v.Value.String()
		v.Value.Set("false")
		defer v.Value.Set(old)
	}
	var h hub
	conformance := func(t *testing.T) {
		transporttest.Run(t, func(t *testing.T) (a, b transport.Transport) {
			pa, pb := h.listen(), h.listen()
			return pa, pb
		}, transporttest.Options{Unreachable: netip.MustParseAddrPort("127.0.0.2:1")})
	}
	ok := testing.RunTests(func(pat, str string) (bool, error) { return true, nil },
		[]testing.InternalTest{{Name: "TestPipeConformance", F: conformance}})
	fmt.Println("the pipe transport conforms:", ok)
	// Output: the pipe transport conforms: true
}
