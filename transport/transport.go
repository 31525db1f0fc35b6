// Package transport defines the seam between the KRPC/DHT core and the networks it runs on.
//
// A Transport moves whole KRPC messages (one bencoded dictionary each) between addresses. It
// does not know about KRPC: it neither parses nor retries. Three implementations ship with
// wdht: UDP (the mainline DHT), WebRTC data channels (the WebTorrent DHT) and an in-memory
// network for tests and simulations. Every implementation must pass the conformance suite in
// package transporttest.
//
// Addresses are netip.AddrPort values. Implementations report IPv4 peers as plain IPv4
// addresses (never IPv4-mapped IPv6), so two addresses for the same peer compare equal.
package transport

import (
	"context"
	"errors"
	"net/netip"
)

// MaxMessageSize is the largest message every Transport must carry: the largest payload of a
// UDP datagram over IPv4 (65,535 minus the IP and UDP headers). Transports may carry more.
const MaxMessageSize = 65507

// ErrUnreachable is returned by Send, at once, when the transport has no route to the
// destination: an address family the transport cannot reach, a memory-network address
// that is not linked or is partitioned away, a WebRTC peer with no open connection.
// Callers match it with errors.Is.
var ErrUnreachable = errors.New("transport: destination unreachable")

// ErrMessageTooLarge is returned by Send when a message exceeds what the transport carries.
var ErrMessageTooLarge = errors.New("transport: message too large")

// Packet is one received message.
type Packet struct {
	// From is the address the message came from; a reply sent to From reaches the sender.
	From netip.AddrPort
	// Data is the message. It belongs to the receiver: the transport does not touch it
	// again after Receive returns.
	Data []byte
}

// Transport sends and receives whole messages. All methods are safe for concurrent use.
type Transport interface {
	// Send queues b for delivery to the given address and returns without waiting for it
	// to arrive; delivery is not guaranteed (as with UDP). Send does not keep b after it
	// returns. It returns ErrUnreachable (wrapped) when there is no route, and an error
	// satisfying errors.Is(err, net.ErrClosed) after Close.
	Send(to netip.AddrPort, b []byte) error

	// Receive blocks until a message arrives, ctx is done (it returns ctx.Err()), or the
	// transport is closed (it returns an error satisfying errors.Is(err, net.ErrClosed)).
	// Pending Receive calls return when Close is called.
	Receive(ctx context.Context) (Packet, error)

	// LocalAddr is the address peers reach this transport at, or the zero AddrPort when it
	// has none of its own (a WebRTC transport is reached only through connections).
	LocalAddr() netip.AddrPort

	// Close releases the transport's resources and waits for its goroutines to exit.
	// It is idempotent: later calls return nil.
	Close() error
}

// Unmap returns a with an IPv4-mapped IPv6 address turned into plain IPv4. Transports use it
// so that the same peer always has the same address.
func Unmap(a netip.AddrPort) netip.AddrPort {
	if a.Addr().Is4In6() {
		return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	}
	return a
}

// Message is a message to send with SendBatch.
type Message struct {
	To   netip.AddrPort
	Data []byte
}

// Batcher is an optional interface of transports that move several messages per system
// call (the UDP transport uses recvmmsg and sendmmsg). The KRPC server uses it when it is
// there, which lowers the CPU cost per message under load.
type Batcher interface {
	// ReceiveBatch is Receive for several packets: it blocks until at least one arrives
	// (with Receive's errors), then fills as many of ps as are ready without blocking
	// and returns how many it filled.
	ReceiveBatch(ctx context.Context, ps []Packet) (int, error)
	// SendBatch sends the messages in order, each as Send would. It returns how many
	// were sent and the error that stopped it, if any.
	SendBatch(ms []Message) (int, error)
}

// Resolver is an optional interface of transports that reach some addresses through
// others: a WebRTC transport that bootstrapped through a signalling server at host:port
// sends messages for host:port over the data channel it opened, whose peer address is
// another one. Resolve returns the address the messages sent to `to` actually go to (and
// that replies come from), or `to` itself. The KRPC server matches responses against it.
type Resolver interface {
	Resolve(to netip.AddrPort) netip.AddrPort
}

// ClosedNotifier is an optional interface of connection-based transports (WebRTC): the
// DHT registers f to forget a peer as soon as its connection closes, instead of waiting
// for queries to it to time out. f runs on the transport's goroutine and must not block.
type ClosedNotifier interface {
	NotifyClosed(f func(peer netip.AddrPort))
}

// Reliable is an optional interface of transports that deliver every message sent on an
// open connection, in order (WebRTC data channels): a query there that has not been
// answered yet is slow, not lost, and a DHT lookup waits for one to a node near its
// target (see package dht). Transports without it are taken to lose packets, as UDP does.
type Reliable interface {
	Reliable() bool
}

// Keeper is an optional interface of connection-based transports that close idle
// connections nobody needs: the DHT marks the connections of the nodes in its routing
// table as kept (and unmarks them when the nodes leave), as the JS WebTorrent DHT does.
// Keep reports whether there is a connection to addr. It must not block.
type Keeper interface {
	Keep(addr netip.AddrPort, keep bool) bool
}

// Dialer is an optional interface of transports that must open a connection before
// they can send to an address (WebRTC, through a signalling server). Dial connects to
// the node at addr ("host:port"; a name is allowed) and returns the peer's address; the
// transport then also sends messages for addr over that connection (see Resolver). The
// DHT dials its bootstrap nodes when sending to them finds no route.
type Dialer interface {
	Dial(ctx context.Context, addr string) (netip.AddrPort, error)
}
