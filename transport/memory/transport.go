package memory

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/wdht/wdht/transport"
)

var errClosed = fmt.Errorf("memory: transport closed: %w", net.ErrClosed)

// shrinkCap is the capacity above which an emptied receive queue gives its memory back,
// so that a burst does not leave every idle transport holding a large array.
const shrinkCap = 64

// Transport is one endpoint of a Network. It implements transport.Transport and owns no
// goroutine.
type Transport struct {
	net  *Network
	addr netip.AddrPort
	sent atomic.Uint64

	// closed is written with mu held (so enqueue sees a stable value) and read anywhere.
	closed atomic.Bool

	mu       sync.Mutex
	queue    []transport.Packet // packets waiting for Receive are queue[head:]
	head     int
	notify   chan struct{} // 1-buffered: "the queue may be non-empty"; closed by Close
	received uint64
	dropped  uint64

	peers map[netip.AddrPort]struct{} // linked mode: who reaches us; guarded by net.mu
}

var _ transport.Transport = (*Transport)(nil)

// TransportStats counts one transport's packets.
type TransportStats struct {
	Sent      uint64 // Send calls that returned nil
	Received  uint64 // packets put in the receive queue
	QueueFull uint64 // packets dropped because the receive queue was full
}

// Send sends a copy of b to the transport listening at `to`, after the link's delay (at
// once, into the receiver's queue, when the delay is zero). It returns an error
// satisfying errors.Is(err, transport.ErrUnreachable) for an invalid address (zero, port
// 0, unspecified IP) and, in linked mode, for an address that is not linked or is
// partitioned away; errors.Is(err, transport.ErrMessageTooLarge) for more than
// transport.MaxMessageSize bytes; and errors.Is(err, net.ErrClosed) after Close.
// Outside linked mode a packet to an address nobody listens on is silently dropped.
func (t *Transport) Send(to netip.AddrPort, b []byte) error {
	if t.closed.Load() {
		return errClosed
	}
	if err := t.net.send(t.addr, to, b); err != nil {
		return err
	}
	t.sent.Add(1)
	return nil
}

// Receive returns the next packet in the receive queue, waiting for one if it is empty.
// It returns ctx.Err() when ctx is done first, and an error satisfying
// errors.Is(err, net.ErrClosed) once the transport is closed.
func (t *Transport) Receive(ctx context.Context) (transport.Packet, error) {
	for {
		t.mu.Lock()
		if t.closed.Load() {
			t.mu.Unlock()
			return transport.Packet{}, errClosed
		}
		if t.head < len(t.queue) {
			p := t.queue[t.head]
			t.queue[t.head] = transport.Packet{}
			t.head++
			if t.head == len(t.queue) {
				if cap(t.queue) > shrinkCap {
					t.queue = nil
				} else {
					t.queue = t.queue[:0]
				}
				t.head = 0
			} else {
				// More are waiting: wake another receiver, if there is one.
				select {
				case t.notify <- struct{}{}:
				default:
				}
			}
			t.mu.Unlock()
			return p, nil
		}
		t.mu.Unlock()
		select {
		case <-t.notify:
		case <-ctx.Done():
			return transport.Packet{}, ctx.Err()
		}
	}
}

type enqueueResult int8

const (
	enqueued enqueueResult = iota
	queueFull
	closed
)

func (t *Transport) enqueue(p transport.Packet) enqueueResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed.Load() {
		return closed
	}
	if len(t.queue)-t.head >= t.net.queueLen {
		t.dropped++
		return queueFull
	}
	if t.head > 0 && len(t.queue) == cap(t.queue) {
		// Slide the waiting packets to the front rather than grow the array.
		n := copy(t.queue, t.queue[t.head:])
		clear(t.queue[n:])
		t.queue = t.queue[:n]
		t.head = 0
	}
	t.queue = append(t.queue, p)
	t.received++
	select {
	case t.notify <- struct{}{}:
	default:
	}
	return enqueued
}

// LocalAddr returns the address the transport listens at.
func (t *Transport) LocalAddr() netip.AddrPort { return t.addr }

// Close stops the transport: pending and later Receive calls return net.ErrClosed,
// queued packets are discarded, its links (in linked mode) are removed, and its address
// is free for Listen again. It is idempotent and always returns nil.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed.Load() {
		t.mu.Unlock()
		return nil
	}
	t.closed.Store(true)
	t.queue, t.head = nil, 0
	close(t.notify)
	t.mu.Unlock()

	n := t.net
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.nodes[t.addr] == t {
		delete(n.nodes, t.addr)
	}
	for p := range t.peers {
		if pt := n.nodes[p]; pt != nil {
			delete(pt.peers, t.addr)
		}
	}
	t.peers = nil
	return nil
}

// Stats returns a snapshot of the transport's counters.
func (t *Transport) Stats() TransportStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return TransportStats{Sent: t.sent.Load(), Received: t.received, QueueFull: t.dropped}
}

// addPeerLocked records that peer is linked to t. t.net.mu is held for writing.
func (t *Transport) addPeerLocked(peer netip.AddrPort) {
	if t.peers == nil {
		t.peers = make(map[netip.AddrPort]struct{})
	}
	t.peers[peer] = struct{}{}
}
