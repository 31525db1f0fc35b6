// Package transporttest is the conformance suite that every transport.Transport
// implementation runs from its tests.
//
// A transport's test calls Run with a function that makes a fresh pair of connected
// transports:
//
//	func TestConformance(t *testing.T) {
//		transporttest.Run(t, func(t *testing.T) (a, b transport.Transport) {
//			a, err := udp.Listen(netip.MustParseAddrPort("127.0.0.1:0"), nil)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { a.Close() })
//			b, err := udp.Listen(netip.MustParseAddrPort("127.0.0.1:0"), nil)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { b.Close() })
//			return a, b
//		}, transporttest.Options{Unreachable: netip.MustParseAddrPort("[::1]:6881")})
//	}
//
// Each subtest calls newPair once, closes both transports when it ends, and then checks
// with go.uber.org/goleak that no goroutine started during the subtest is left (anything
// newPair registers with t.Cleanup runs before that check). Because the check compares
// against the goroutines alive when the subtest started, do not run Run in parallel with
// other tests of the same package.
//
// The suite never sleeps to synchronise: it waits for events, with timeouts only as
// failure guards, so it is fast on an idle machine and not flaky on a loaded one.
package transporttest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wdht/wdht/transport"
)

// Failure guards. An operation the contract calls immediate ("at once", "promptly") must
// finish within quick; a message must arrive within guard. Both are far above what a
// correct transport needs, even under -race on a loaded machine. (Variables only so
// that the suite's own tests can shorten them.)
var (
	quick = 2 * time.Second
	guard = 10 * time.Second
)

// Options adapts the suite to a transport. The zero value suits transports, such as UDP,
// whose LocalAddr is the address peers reach them at and that carry exactly
// transport.MaxMessageSize bytes.
type Options struct {
	// Unreachable is an address to which Send on the first transport of a pair returns,
	// at once, an error satisfying errors.Is(err, transport.ErrUnreachable): for example
	// an IPv6 address for a socket bound to an IPv4 address, or an address that is not
	// linked on a memory network in linked mode. The zero value skips that subtest.
	Unreachable netip.AddrPort

	// Addr returns the address at which from reaches to. Nil means to.LocalAddr(), which
	// suits transports whose local address is the one their peers see. A WebRTC transport
	// reports the remote address of the connection the pair was made with.
	Addr func(from, to transport.Transport) netip.AddrPort

	// MaxMessageSize is the largest message the transport accepts; Send must refuse
	// anything larger with transport.ErrMessageTooLarge. Zero means
	// transport.MaxMessageSize, the least every transport must carry.
	MaxMessageSize int
}

// Run runs the conformance suite as subtests of t. newPair must return two open
// transports that can reach each other; it is called once per subtest, with the
// subtest's t.
func Run(t *testing.T, newPair func(t *testing.T) (a, b transport.Transport), opts Options) {
	t.Helper()
	if opts.MaxMessageSize == 0 {
		opts.MaxMessageSize = transport.MaxMessageSize
	}
	if opts.MaxMessageSize < transport.MaxMessageSize {
		t.Fatalf("transporttest: Options.MaxMessageSize %d is below transport.MaxMessageSize %d",
			opts.MaxMessageSize, transport.MaxMessageSize)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, p *pair)
	}{
		{"Delivery", testDelivery},
		{"MaxMessageSize", testMaxMessageSize},
		{"Oversize", testOversize},
		{"DataOwnership", testDataOwnership},
		{"Concurrent", testConcurrent},
		{"ReceiveContextCanceled", testReceiveCanceled},
		{"ReceiveContextCancelWhileBlocked", testReceiveCancelWhileBlocked},
		{"ReceiveContextDeadline", testReceiveDeadline},
		{"SendInvalidAddress", testSendInvalidAddress},
		{"SendUnreachable", testSendUnreachable},
		{"CloseIdempotent", testCloseIdempotent},
		{"CloseUnblocksReceive", testCloseUnblocksReceive},
		{"UseAfterClose", testUseAfterClose},
		{"SendToClosedPeer", testSendToClosedPeer},
		{"Batch", testBatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Registered first, so it runs last: after the transports are closed by
			// the cleanup below and by whatever newPair registered.
			ignore := goleak.IgnoreCurrent()
			t.Cleanup(func() { goleak.VerifyNone(t, ignore) })

			a, b := newPair(t)
			if a == nil || b == nil {
				t.Fatal("newPair returned a nil transport")
			}
			t.Cleanup(func() {
				for _, tr := range []transport.Transport{a, b} {
					if err := tr.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
				}
			})
			p := &pair{a: a, b: b, opts: opts}
			p.addrB = p.addr(a, b)
			p.addrA = p.addr(b, a)
			tc.fn(t, p)
		})
	}
}

// pair is the fixture every subtest gets: two transports and how each reaches the other.
type pair struct {
	a, b         transport.Transport
	addrA, addrB netip.AddrPort // addrB: where a sends to reach b, and vice versa
	opts         Options
}

func (p *pair) addr(from, to transport.Transport) netip.AddrPort {
	if p.opts.Addr != nil {
		return p.opts.Addr(from, to)
	}
	return to.LocalAddr()
}

// message returns n bytes (n >= 4) that start with tag and whose content depends on it,
// so that a corrupted, truncated or misrouted message is detected.
func message(tag uint32, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(uint32(i)*31 + tag*7 + tag>>8 + tag>>16)
	}
	binary.BigEndian.PutUint32(b, tag)
	return b
}

// tagOf returns the tag of a message made by message, or an error if b is not one.
func tagOf(b []byte) (uint32, error) {
	if len(b) < 4 {
		return 0, fmt.Errorf("unexpected %d-byte message %x", len(b), b)
	}
	tag := binary.BigEndian.Uint32(b)
	if !bytes.Equal(b, message(tag, len(b))) {
		return 0, fmt.Errorf("corrupted message: %d bytes %s", len(b), abbrev(b))
	}
	return tag, nil
}

func send(t *testing.T, tr transport.Transport, to netip.AddrPort, b []byte) {
	t.Helper()
	if err := tr.Send(to, b); err != nil {
		t.Fatalf("Send(%v, %d bytes): %v", to, len(b), err)
	}
}

func receive(t *testing.T, tr transport.Transport) transport.Packet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	pkt, err := tr.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive: %v (nothing arrived within %v?)", err, guard)
	}
	return pkt
}

// expect receives one packet on tr and checks that it came from `from` and carries want.
func expect(t *testing.T, tr transport.Transport, from netip.AddrPort, want []byte) transport.Packet {
	t.Helper()
	pkt := receive(t, tr)
	if pkt.From != from {
		t.Errorf("Packet.From = %v, want %v", pkt.From, from)
	}
	if !bytes.Equal(pkt.Data, want) {
		t.Fatalf("Packet.Data = %d bytes %s, want %d bytes %s",
			len(pkt.Data), abbrev(pkt.Data), len(want), abbrev(want))
	}
	return pkt
}

func abbrev(b []byte) string {
	if len(b) > 16 {
		return fmt.Sprintf("%x...", b[:16])
	}
	return fmt.Sprintf("%x", b)
}

// within runs f on a new goroutine and fails t if it takes longer than d. On failure it
// closes the pair, which must unblock f, so that no goroutine outlives the test.
func within(t *testing.T, p *pair, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		p.a.Close()
		p.b.Close()
		select {
		case <-done:
		case <-time.After(guard):
			t.Errorf("%s still blocked %v after Close", what, guard)
		}
		t.Fatalf("%s did not return within %v", what, d)
	}
}

func testDelivery(t *testing.T, p *pair) {
	for _, tr := range []transport.Transport{p.a, p.b} {
		if la := tr.LocalAddr(); la.Addr().Is4In6() {
			t.Errorf("LocalAddr() = %v, an IPv4-mapped address; want it unmapped", la)
		}
	}

	// a -> b, then b replies to the From it saw.
	q := message(1, 100)
	send(t, p.a, p.addrB, q)
	got := expect(t, p.b, p.addrA, q)
	if got.From.Addr().Is4In6() {
		t.Errorf("Packet.From = %v, an IPv4-mapped address; want it unmapped", got.From)
	}
	r := message(2, 300)
	send(t, p.b, got.From, r)
	expect(t, p.a, p.addrB, r)

	// A burst each way, received in any order, each message exactly once.
	const n = 10
	for i := range n {
		send(t, p.a, p.addrB, message(uint32(100+i), 10+i))
		send(t, p.b, p.addrA, message(uint32(200+i), 20+i))
	}
	for _, side := range []struct {
		to   transport.Transport
		from netip.AddrPort
		base uint32
	}{{p.b, p.addrA, 100}, {p.a, p.addrB, 200}} {
		seen := map[uint32]bool{}
		for range n {
			pkt := receive(t, side.to)
			if pkt.From != side.from {
				t.Errorf("Packet.From = %v, want %v", pkt.From, side.from)
			}
			tag, err := tagOf(pkt.Data)
			if err != nil {
				t.Fatal(err)
			}
			if tag < side.base || tag >= side.base+n || seen[tag] {
				t.Fatalf("unexpected or duplicate message %d", tag)
			}
			seen[tag] = true
		}
	}
}

func testMaxMessageSize(t *testing.T, p *pair) {
	m := message(3, transport.MaxMessageSize)
	send(t, p.a, p.addrB, m)
	pkt := expect(t, p.b, p.addrA, m)
	m = message(4, transport.MaxMessageSize)
	send(t, p.b, pkt.From, m)
	expect(t, p.a, p.addrB, m)
}

func testOversize(t *testing.T, p *pair) {
	for _, n := range []int{p.opts.MaxMessageSize + 1, 1 << 20} {
		err := p.a.Send(p.addrB, make([]byte, n))
		if !errors.Is(err, transport.ErrMessageTooLarge) {
			t.Errorf("Send of %d bytes (limit %d) = %v, want an error matching transport.ErrMessageTooLarge",
				n, p.opts.MaxMessageSize, err)
		}
	}
	// None of the refused messages arrives (not even truncated), and the transport
	// still works.
	m := message(5, 50)
	send(t, p.a, p.addrB, m)
	expect(t, p.b, p.addrA, m)
}

func testDataOwnership(t *testing.T, p *pair) {
	// The sender reuses its buffer as soon as Send returns: what arrives must be what
	// was sent.
	buf := message(6, 200)
	want1 := bytes.Clone(buf)
	send(t, p.a, p.addrB, buf)
	want2 := message(7, 180)
	copy(buf, want2)
	send(t, p.a, p.addrB, buf[:len(want2)])
	for i := range buf {
		buf[i] = 0x5A
	}

	// Packets may arrive in either order.
	p1, p2 := receive(t, p.b), receive(t, p.b)
	if bytes.Equal(p1.Data, want2) {
		p1, p2 = p2, p1
	}
	if !bytes.Equal(p1.Data, want1) || !bytes.Equal(p2.Data, want2) {
		t.Fatalf("received %s and %s, want %s and %s (did the transport keep the sender's buffer?)",
			abbrev(p1.Data), abbrev(p2.Data), abbrev(want1), abbrev(want2))
	}

	// The receiver owns Data up to its capacity: scribbling over all of p1 must not
	// change p2 (no shared backing array), and later packets must not land in p1.
	full := p1.Data[:cap(p1.Data)]
	for i := range full {
		full[i] = 0xEE
	}
	if !bytes.Equal(p2.Data, want2) {
		t.Fatal("writing to one received packet changed another: their Data share memory")
	}
	want3 := message(8, 200)
	send(t, p.a, p.addrB, want3)
	expect(t, p.b, p.addrA, want3)
	for _, c := range full {
		if c != 0xEE {
			t.Fatal("the transport wrote into a packet's Data after Receive returned it")
		}
	}
}

// flow is one direction of traffic in testConcurrent.
type flow struct {
	from, to transport.Transport
	dst, src netip.AddrPort // dst: where from sends; src: the From to sees
	id       uint32
	total    int
	window   chan struct{} // one token per message in flight

	mu   sync.Mutex
	seen map[uint32]bool
	done chan struct{} // closed when all total messages arrived
}

// account records one received packet and reopens the window by one message.
func (f *flow) account(pkt transport.Packet) error {
	if pkt.From != f.src {
		return fmt.Errorf("flow %d: Packet.From = %v, want %v", f.id, pkt.From, f.src)
	}
	tag, err := tagOf(pkt.Data)
	if err != nil {
		return fmt.Errorf("flow %d: %w", f.id, err)
	}
	if tag>>24 != f.id {
		return fmt.Errorf("flow %d: received message %#x of another flow", f.id, tag)
	}
	f.mu.Lock()
	dup := f.seen[tag]
	f.seen[tag] = true
	if !dup && len(f.seen) == f.total {
		close(f.done)
	}
	f.mu.Unlock()
	if dup {
		return fmt.Errorf("flow %d: message %#x delivered twice", f.id, tag)
	}
	<-f.window // never blocks: the sender put a token in before sending this message
	return nil
}

func (f *flow) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seen)
}

// testConcurrent sends from several goroutines on both transports while several
// goroutines receive on each, and accounts for every message exactly once. A window
// bounds the messages in flight per direction, well under any reasonable receive queue
// or socket buffer, so a conforming transport has no reason to drop any.
func testConcurrent(t *testing.T, p *pair) {
	const (
		senders   = 4 // per direction: 8 sending goroutines in all
		perSender = 50
		receivers = 3 // per transport
		window    = 32
	)
	flows := []*flow{
		{from: p.a, to: p.b, dst: p.addrB, src: p.addrA, id: 1},
		{from: p.b, to: p.a, dst: p.addrA, src: p.addrB, id: 2},
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(flows)*(senders+receivers))
	for _, f := range flows {
		f.total = senders * perSender
		f.window = make(chan struct{}, window)
		f.seen = make(map[uint32]bool, f.total)
		f.done = make(chan struct{})
		for s := range senders {
			wg.Go(func() {
				for i := range perSender {
					select {
					case f.window <- struct{}{}:
					case <-ctx.Done():
						return // reported below as missing messages
					}
					tag := f.id<<24 | uint32(s)<<16 | uint32(i)
					if err := f.from.Send(f.dst, message(tag, 8+(s*perSender+i)%300)); err != nil {
						errc <- fmt.Errorf("flow %d: Send: %w", f.id, err)
						return
					}
				}
			})
		}
		for range receivers {
			wg.Go(func() {
				for {
					pkt, err := f.to.Receive(ctx)
					if err != nil {
						if ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
							errc <- fmt.Errorf("flow %d: Receive: %w", f.id, err)
						}
						return
					}
					if err := f.account(pkt); err != nil {
						errc <- err
						return
					}
				}
			})
		}
	}

	var failure error
	for _, f := range flows {
		select {
		case <-f.done:
			continue
		case failure = <-errc:
		case <-ctx.Done():
			failure = fmt.Errorf("flow %d: %d of %d messages arrived within %v", f.id, f.count(), f.total, guard)
		}
		break
	}
	cancel() // stops the receivers
	within(t, p, quick, "Receive after its context was cancelled", wg.Wait)
	close(errc)
	if failure != nil {
		t.Error(failure)
	}
	for err := range errc {
		t.Error(err)
	}
}

func testReceiveCanceled(t *testing.T, p *pair) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	within(t, p, quick, "Receive with a cancelled context", func() {
		_, err := p.a.Receive(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Receive with a cancelled context = %v, want context.Canceled", err)
		}
	})
	// Nothing was consumed, and the transport still works.
	m := message(9, 40)
	send(t, p.b, p.addrA, m)
	expect(t, p.a, p.addrB, m)
}

func testReceiveCancelWhileBlocked(t *testing.T, p *pair) {
	const n = 3
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := p.a.Receive(ctx)
			errs <- err
		}()
	}
	cancel()
	within(t, p, quick, "Receive after its context was cancelled", func() {
		for range n {
			if err := <-errs; !errors.Is(err, context.Canceled) {
				t.Errorf("Receive = %v, want context.Canceled", err)
			}
		}
	})
	// A cancelled Receive must not have swallowed anything.
	m := message(10, 40)
	send(t, p.b, p.addrA, m)
	expect(t, p.a, p.addrB, m)
}

func testReceiveDeadline(t *testing.T, p *pair) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	within(t, p, quick, "Receive with a 20ms deadline", func() {
		if _, err := p.a.Receive(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Receive = %v, want context.DeadlineExceeded", err)
		}
	})
}

func testSendInvalidAddress(t *testing.T, p *pair) {
	for _, to := range []netip.AddrPort{
		{}, // the zero AddrPort
		netip.AddrPortFrom(p.addrB.Addr(), 0),
	} {
		within(t, p, quick, "Send to an invalid address", func() {
			if err := p.a.Send(to, message(11, 20)); !errors.Is(err, transport.ErrUnreachable) {
				t.Errorf("Send(%v) = %v, want an error matching transport.ErrUnreachable", to, err)
			}
		})
	}
	m := message(12, 20)
	send(t, p.a, p.addrB, m)
	expect(t, p.b, p.addrA, m)
}

func testSendUnreachable(t *testing.T, p *pair) {
	if !p.opts.Unreachable.IsValid() {
		t.Skip("Options.Unreachable not set")
	}
	within(t, p, quick, "Send to an unreachable address", func() {
		err := p.a.Send(p.opts.Unreachable, message(13, 20))
		if !errors.Is(err, transport.ErrUnreachable) {
			t.Errorf("Send(%v) = %v, want an error matching transport.ErrUnreachable", p.opts.Unreachable, err)
		}
	})
	m := message(14, 20)
	send(t, p.a, p.addrB, m)
	expect(t, p.b, p.addrA, m)
}

func testCloseIdempotent(t *testing.T, p *pair) {
	if err := p.a.Close(); err != nil {
		t.Errorf("first Close = %v, want nil", err)
	}
	if err := p.a.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	// Concurrent Close calls all return nil, and each returns only once the transport
	// is closed.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			if err := p.b.Close(); err != nil {
				t.Errorf("concurrent Close = %v, want nil", err)
			}
			if err := p.b.Send(p.addrA, message(15, 20)); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Send after Close returned = %v, want net.ErrClosed", err)
			}
		})
	}
	within(t, p, quick, "concurrent Close", wg.Wait)
}

func testCloseUnblocksReceive(t *testing.T, p *pair) {
	const n = 3
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := p.a.Receive(context.Background())
			errs <- err
		}()
	}
	if err := p.a.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	within(t, p, quick, "Receive pending during Close", func() {
		for range n {
			if err := <-errs; !errors.Is(err, net.ErrClosed) {
				t.Errorf("pending Receive = %v, want an error matching net.ErrClosed", err)
			}
		}
	})
}

func testUseAfterClose(t *testing.T, p *pair) {
	// Leave messages pending on a: Close discards them rather than delivering them.
	for i := range 3 {
		send(t, p.b, p.addrA, message(uint32(16+i), 30))
	}
	if err := p.a.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if err := p.a.Send(p.addrB, message(20, 30)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Send after Close = %v, want an error matching net.ErrClosed", err)
	}
	if err := p.a.Send(p.addrB, make([]byte, p.opts.MaxMessageSize+1)); err == nil {
		t.Error("oversize Send after Close = nil, want an error")
	}
	within(t, p, quick, "Receive after Close", func() {
		for _, ctx := range []context.Context{context.Background(), t.Context()} {
			if _, err := p.a.Receive(ctx); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Receive after Close = %v, want an error matching net.ErrClosed", err)
			}
		}
	})
}

func testSendToClosedPeer(t *testing.T, p *pair) {
	if err := p.a.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	// Like UDP to a dead port the message may vanish (nil), or the transport may know
	// there is no route (ErrUnreachable); the sender itself is not closed.
	within(t, p, quick, "Send to a closed peer", func() {
		for i := range 3 {
			err := p.b.Send(p.addrA, message(uint32(21+i), 30))
			if err != nil && !errors.Is(err, transport.ErrUnreachable) {
				t.Errorf("Send to a closed peer = %v, want nil or transport.ErrUnreachable", err)
			}
		}
	})
}

// testBatch checks transport.Batcher, for transports that implement it: SendBatch
// delivers every message of a batch in order of arrival per sender, stops at an
// unsendable message and reports how far it got; ReceiveBatch returns several packets,
// each with its own Data and the right From; ReceiveBatch honours ctx and Close.
func testBatch(t *testing.T, p *pair) {
	ba, okA := p.a.(transport.Batcher)
	bb, okB := p.b.(transport.Batcher)
	if !okA || !okB {
		t.Skip("the transport does not implement transport.Batcher")
	}
	const n = 20
	ms := make([]transport.Message, n)
	for i := range ms {
		ms[i] = transport.Message{To: p.addrB, Data: message(uint32(1000+i), 64+i)}
	}
	if sent, err := ba.SendBatch(ms); sent != n || err != nil {
		t.Fatalf("SendBatch(%d messages) = %d, %v", n, sent, err)
	}
	got := make(map[uint32]bool)
	ps := make([]transport.Packet, 8)
	within(t, p, guard, "ReceiveBatch", func() {
		for len(got) < n {
			k, err := bb.ReceiveBatch(context.Background(), ps)
			if err != nil {
				t.Errorf("ReceiveBatch: %v", err)
				return
			}
			if k < 1 || k > len(ps) {
				t.Errorf("ReceiveBatch returned %d packets for %d slots", k, len(ps))
				return
			}
			for _, pkt := range ps[:k] {
				tag, err := tagOf(pkt.Data)
				if err != nil {
					t.Error(err)
					return
				}
				if pkt.From != p.addrA {
					t.Errorf("Packet.From = %v, want %v", pkt.From, p.addrA)
				}
				if got[tag] {
					t.Errorf("message %d delivered twice", tag)
				}
				got[tag] = true
			}
			// Every packet owns its Data: scribbling over one leaves the others intact.
			for i := range ps[:k] {
				clear(ps[i].Data[:cap(ps[i].Data)])
			}
		}
	})
	for i := range n {
		if !got[uint32(1000+i)] {
			t.Errorf("message %d lost", 1000+i)
		}
	}

	// An unsendable message in the middle: the ones before it go, and SendBatch says where it stopped.
	bad := []transport.Message{
		{To: p.addrB, Data: message(1, 16)},
		{To: netip.AddrPort{}, Data: message(2, 16)},
		{To: p.addrB, Data: message(3, 16)},
	}
	sent, err := ba.SendBatch(bad)
	if sent != 1 || !errors.Is(err, transport.ErrUnreachable) {
		t.Fatalf("SendBatch with an invalid address second = %d, %v; want 1 and ErrUnreachable", sent, err)
	}
	expect(t, p.b, p.addrA, bad[0].Data)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := bb.ReceiveBatch(ctx, ps); !errors.Is(err, context.Canceled) {
		t.Fatalf("ReceiveBatch with a cancelled context: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := bb.ReceiveBatch(context.Background(), ps)
		done <- err
	}()
	p.b.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("ReceiveBatch pending at Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(guard):
		t.Fatal("Close did not unblock ReceiveBatch")
	}
	if sent, err := bb.SendBatch(ms[:1]); sent != 0 || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("SendBatch after Close = %d, %v", sent, err)
	}
}
