// Package udp is the transport.Transport of the mainline DHT: one UDP socket.
//
// Send writes straight to the socket on the caller's goroutine. Receive reads straight
// from it on the caller's goroutine, into a reused buffer, and returns an exactly-sized
// copy that becomes the caller's: there is no reader goroutine and no queue between the
// socket and Receive, because handing each datagram from a reader goroutine to the
// receiving one costs a goroutine wake-up that, measured on loopback ping-pong, nearly
// doubles the CPU per query. The socket's receive buffer (Config.ReadBuffer) is the
// queue; when it is full the kernel drops datagrams, as it does for any UDP socket (on
// Linux, see RcvbufErrors in /proc/net/snmp). Concurrent Receive calls take turns
// reading the socket.
//
// Datagrams larger than Config.MaxMessageSize (including any the kernel truncated) and
// read errors (such as ICMP errors some systems report on the socket) are counted in
// Stats and skipped, never delivered; only Close stops reception.
//
// Addresses: an IPv4 listen address gives an IPv4 socket, an IPv6 one an IPv6-only
// socket, and the zero AddrPort or [::] a dual-stack socket where the system supports it.
// Received addresses are unmapped (an IPv4 peer of a dual-stack socket is reported as
// plain IPv4), and Send to an address family the socket cannot reach returns
// transport.ErrUnreachable at once.
package udp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/transport"
)

var errClosed = fmt.Errorf("udp: transport closed: %w", net.ErrClosed)

// aLongTimeAgo is a read deadline in the past: setting it wakes a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

// Transport is a transport.Transport over one UDP socket. All its methods are safe for
// concurrent use.
type Transport struct {
	conn   *net.UDPConn
	laddr  netip.AddrPort
	v4, v6 bool // address families Send can reach
	max    int
	log    hclog.Logger

	// closed is set when Close starts; Send and Receive check it first.
	closed    atomic.Bool
	done      chan struct{} // closed when Close starts
	closeOnce sync.Once

	// readTok is a one-slot semaphore: the goroutine holding it is the only one reading
	// the socket, and owns the fields up to watchers. Close takes it for good.
	readTok   chan struct{}
	buf       []byte
	oob       []byte
	errStreak int             // consecutive read errors
	watched   <-chan struct{} // Done of the context the watcher waits for; nil: none
	lastDone  <-chan struct{} // Done of the previous Receive's context
	stopWatch func() bool     // stops the current watcher
	watchers  sync.WaitGroup  // watcher callbacks registered and not yet stopped or finished

	// wmu orders the reader and the watcher, the context.AfterFunc callback that
	// interrupts a read (with a read deadline in the past) when its context is done.
	wmu         sync.Mutex
	watchGen    uint64 // generation of the current watcher
	reading     bool   // the token holder is reading, or about to
	interrupted bool   // the watcher set the deadline; the reader must clear it

	raw  syscall.RawConn
	rb   *recvBufs  // recvmmsg buffers, made at the first batch read; owned by the readTok holder
	wmuB sync.Mutex // guards wb
	wb   *sendBufs  // sendmmsg buffers, made at the first batch send

	sent, sendErrors               atomic.Uint64
	received, oversize, readErrors atomic.Uint64
	kernelDrops                    atomic.Uint32
}

var (
	_ transport.Transport = (*Transport)(nil)
	_ transport.Batcher   = (*Transport)(nil)
)

// Stats counts a transport's datagrams. Every datagram read from the socket is counted
// in exactly one of Received and Oversize.
type Stats struct {
	Sent       uint64 // datagrams written to the socket
	SendErrors uint64 // Send calls that failed on an open transport
	Received   uint64 // datagrams returned by Receive
	Oversize   uint64 // datagrams dropped for exceeding Config.MaxMessageSize
	ReadErrors uint64 // errors reading the socket (for example ICMP errors the system reports), survived

	// KernelDrops is the number of datagrams the system dropped because the socket's
	// receive buffer was full (Config.ReadBuffer), as last reported: on Linux the count
	// arrives with the next datagram read after a drop (SO_RXQ_OVFL), and wraps at 2^32;
	// elsewhere it stays zero.
	KernelDrops uint64
}

// Listen opens a UDP socket at addr. A zero port picks a free one (see LocalAddr). A nil
// cfg means the zero Config.
func Listen(addr netip.AddrPort, cfg *Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.MaxMessageSize == 0 {
		c.MaxMessageSize = transport.MaxMessageSize
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}

	addr = transport.Unmap(addr)
	network := "udp6"
	switch {
	case !addr.Addr().IsValid() || addr.Addr() == netip.IPv6Unspecified():
		network = "udp" // dual-stack where the system allows it
	case addr.Addr().Is4():
		network = "udp4"
	}
	conn, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return nil, fmt.Errorf("udp: listen %v: %w", addr, err)
	}
	if c.ReadBuffer > 0 {
		if err := conn.SetReadBuffer(c.ReadBuffer); err != nil {
			conn.Close()
			return nil, fmt.Errorf("udp: listen %v: set read buffer: %w", addr, err)
		}
	}
	if c.WriteBuffer > 0 {
		if err := conn.SetWriteBuffer(c.WriteBuffer); err != nil {
			conn.Close()
			return nil, fmt.Errorf("udp: listen %v: set write buffer: %w", addr, err)
		}
	}

	t := &Transport{
		conn:    conn,
		laddr:   transport.Unmap(conn.LocalAddr().(*net.UDPAddr).AddrPort()),
		max:     c.MaxMessageSize,
		log:     c.Logger,
		done:    make(chan struct{}),
		readTok: make(chan struct{}, 1),
		// One byte more than the largest message: a datagram that fills the buffer is
		// too large, whether or not the kernel truncated it, so no MSG_TRUNC check is
		// needed.
		buf: make([]byte, c.MaxMessageSize+1),
		oob: make([]byte, oobSize),
	}
	if t.raw, err = conn.SyscallConn(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("udp: listen %v: %w", addr, err)
	}
	if err := enableDropCount(conn); err != nil && t.log.IsDebug() {
		t.log.Debug("cannot count kernel drops", "addr", t.laddr, "error", err)
	}
	switch {
	case t.laddr.Addr().Is4():
		t.v4 = true
	case network == "udp" && t.laddr.Addr().IsUnspecified():
		t.v4, t.v6 = true, true
	default:
		t.v6 = true
	}
	if t.log.IsDebug() {
		t.log.Debug("listening", "addr", t.laddr, "ipv4", t.v4, "ipv6", t.v6)
	}
	return t, nil
}

// LocalAddr returns the socket's address; for a socket bound to a wildcard address this
// is 0.0.0.0 or [::] with the port.
func (t *Transport) LocalAddr() netip.AddrPort { return t.laddr }

// Send writes b as one datagram to `to`. It returns an error satisfying
// errors.Is(err, transport.ErrMessageTooLarge) if b exceeds Config.MaxMessageSize;
// errors.Is(err, transport.ErrUnreachable) for an invalid address (zero, port 0), an
// address family the socket cannot reach, or a destination the system has no route to;
// and errors.Is(err, net.ErrClosed) after Close.
func (t *Transport) Send(to netip.AddrPort, b []byte) error {
	if t.closed.Load() {
		return errClosed
	}
	if err := t.check(to, b); err != nil {
		return err
	}
	to = transport.Unmap(to)
	if _, err := t.conn.WriteToUDPAddrPort(b, to); err != nil {
		return t.sendError(to, err)
	}
	t.sent.Add(1)
	return nil
}

// SendBatch sends the messages in order, each as Send would (transport.Batcher), moving
// several per system call where the system allows it (sendmmsg on Linux). It stops at
// the first message that cannot be sent and returns how many were sent and why.
func (t *Transport) SendBatch(ms []transport.Message) (int, error) {
	sent := 0
	for sent < len(ms) {
		if t.closed.Load() {
			return sent, errClosed
		}
		// The longest run of sendable messages, up to one system call's worth.
		end := sent
		var bad error
		for end < len(ms) && end-sent < batchLen {
			if bad = t.check(ms[end].To, ms[end].Data); bad != nil {
				break
			}
			ms[end].To = transport.Unmap(ms[end].To)
			end++
		}
		if end > sent {
			n, err := t.writeBatch(ms[sent:end])
			sent += n
			if err != nil {
				return sent, err
			}
		}
		if bad != nil {
			return sent, bad
		}
	}
	return sent, nil
}

// check returns the error Send gives for b to `to` before it touches the socket.
func (t *Transport) check(to netip.AddrPort, b []byte) error {
	if len(b) > t.max {
		t.sendErrors.Add(1)
		return fmt.Errorf("udp: send %d bytes to %v (limit %d): %w", len(b), to, t.max, transport.ErrMessageTooLarge)
	}
	to = transport.Unmap(to)
	ip := to.Addr()
	if !ip.IsValid() || to.Port() == 0 || (ip.Is4() && !t.v4) || (ip.Is6() && !t.v6) {
		t.sendErrors.Add(1)
		return fmt.Errorf("udp: send from %v to %v: %w", t.laddr, to, transport.ErrUnreachable)
	}
	return nil
}

// sendError wraps an error from the socket, adding the sentinel of the transport
// contract that it stands for.
func (t *Transport) sendError(to netip.AddrPort, err error) error {
	if errors.Is(err, net.ErrClosed) {
		return errClosed
	}
	t.sendErrors.Add(1)
	var sentinel error
	switch {
	case errors.Is(err, syscall.EMSGSIZE):
		sentinel = transport.ErrMessageTooLarge
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EAFNOSUPPORT),
		errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM),
		// Linux: a socket bound to a loopback address sending off the host.
		errors.Is(err, syscall.EINVAL):
		sentinel = transport.ErrUnreachable
	default:
		return fmt.Errorf("udp: send to %v: %w", to, err)
	}
	return fmt.Errorf("udp: send to %v: %w: %w", to, sentinel, err)
}

// Receive reads the next datagram from the socket. It returns ctx.Err() when ctx is done
// first, and an error satisfying errors.Is(err, net.ErrClosed) once the transport is
// closed.
//
// Receive costs least when one goroutine calls it again and again with the same ctx, as
// a read loop does, or with a context that cannot be cancelled: then its only
// allocation is the returned Data. A cancellable context that changes from call to call
// costs a context.AfterFunc registration per call (a few allocations and some 100 ns).
func (t *Transport) Receive(ctx context.Context) (transport.Packet, error) {
	var p [1]transport.Packet
	_, err := t.receive(ctx, p[:])
	return p[0], err
}

// ReceiveBatch is Receive for several datagrams (transport.Batcher): it waits like
// Receive for the first, then returns as many of those already queued in the socket as
// fit in ps, read with one system call where the system allows it (recvmmsg on Linux).
func (t *Transport) ReceiveBatch(ctx context.Context, ps []transport.Packet) (int, error) {
	if len(ps) == 0 {
		return 0, nil
	}
	return t.receive(ctx, ps)
}

// receive fills ps with at least one datagram, as Receive and ReceiveBatch promise.
func (t *Transport) receive(ctx context.Context, ps []transport.Packet) (int, error) {
	if t.closed.Load() {
		return 0, errClosed
	}
	select {
	case t.readTok <- struct{}{}:
	default: // another Receive is reading: wait for our turn
		select {
		case t.readTok <- struct{}{}:
		case <-t.done:
			return 0, errClosed
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	done := ctx.Done()
	// A context used by consecutive calls (a read loop's) keeps its watcher between
	// calls. Any other loses it on return, so that cancelling it afterwards (as
	// WithTimeout's cancel does) does not start a watcher goroutine for nothing.
	reused := done == t.lastDone
	t.lastDone = done
	defer func() {
		if !reused && t.watched != nil {
			t.unwatch()
		}
		<-t.readTok
	}()
	if t.closed.Load() {
		return 0, errClosed
	}
	if done != t.watched {
		t.unwatch()
		if done != nil {
			t.watch(ctx)
		}
	}
	for {
		if done != nil {
			t.wmu.Lock()
			t.reading = true
			t.wmu.Unlock()
			// Checked after setting reading: a watcher that fires from now on
			// interrupts the read, and one that fired before has made Err non-nil.
			if err := ctx.Err(); err != nil {
				t.endRead()
				return 0, err
			}
		}
		var n int
		var err error
		if len(ps) > 1 {
			n, err = t.readBatch(ps)
		} else {
			n, err = t.readOne(&ps[0])
		}
		if done != nil {
			t.endRead()
		}
		if err == nil {
			t.errStreak = 0
			if n > 0 {
				return n, nil
			}
			continue // only oversize datagrams
		}
		if errors.Is(err, net.ErrClosed) {
			return 0, errClosed
		}
		if done != nil && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if err := t.readError(ctx, err); err != nil {
			return 0, err
		}
	}
}

// readOne reads one datagram into p; it returns 0 for a datagram it dropped as oversize.
func (t *Transport) readOne(p *transport.Packet) (int, error) {
	n, oobn, _, from, err := t.conn.ReadMsgUDPAddrPort(t.buf, t.oob)
	if err != nil {
		return 0, err
	}
	t.noteDrops(t.oob[:oobn])
	if !t.accept(n, from) {
		return 0, nil
	}
	data := make([]byte, n)
	copy(data, t.buf[:n])
	*p = transport.Packet{From: transport.Unmap(from), Data: data}
	return 1, nil
}

// accept counts a datagram of n bytes and reports whether it is small enough to deliver.
func (t *Transport) accept(n int, from netip.AddrPort) bool {
	if n <= t.max {
		t.received.Add(1)
		return true
	}
	t.oversize.Add(1)
	if t.log.IsDebug() {
		t.log.Debug("dropped oversize datagram", "addr", t.laddr, "from", from, "limit", t.max)
	}
	return false
}

// noteDrops records the kernel's drop counter from a read's control messages.
func (t *Transport) noteDrops(oob []byte) {
	if len(oob) > 0 {
		if d, ok := parseDropCount(oob); ok {
			t.kernelDrops.Store(d)
		}
	}
}

// readError counts and logs a read error that is not fatal: typically an ICMP error the
// system reports on the socket. After a streak of errorStreak it pauses for errorPause,
// so that an error that repeats forever cannot make Receive spin; it returns non-nil
// only if the transport is closed or ctx is done during that pause.
func (t *Transport) readError(ctx context.Context, err error) error {
	t.readErrors.Add(1)
	if t.log.IsDebug() {
		t.log.Debug("read error", "addr", t.laddr, "error", err)
	}
	t.errStreak++
	if t.errStreak%errorStreak != 0 {
		return nil
	}
	t.log.Warn("repeated read errors; pausing", "addr", t.laddr, "count", t.errStreak, "error", err)
	select {
	case <-t.done:
		return errClosed
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(errorPause):
		return nil
	}
}

const (
	errorStreak = 100
	errorPause  = 10 * time.Millisecond
)

// watch makes the cancellation of ctx, which has a Done channel, interrupt reads. There
// is no watcher yet. The caller holds readTok.
func (t *Transport) watch(ctx context.Context) {
	t.watched = ctx.Done()
	t.wmu.Lock()
	t.watchGen++
	gen := t.watchGen
	t.wmu.Unlock()
	t.watchers.Add(1)
	t.stopWatch = context.AfterFunc(ctx, func() {
		defer t.watchers.Done()
		t.wmu.Lock()
		defer t.wmu.Unlock()
		if t.reading && t.watchGen == gen {
			t.interrupted = true
			t.conn.SetReadDeadline(aLongTimeAgo)
		}
	})
}

// unwatch stops the current watcher, if any. The caller holds readTok.
func (t *Transport) unwatch() {
	if t.stopWatch != nil && t.stopWatch() {
		t.watchers.Done() // stopped before it ran: it never will
	}
	t.stopWatch, t.watched = nil, nil
}

// endRead records that the read is over, and clears the deadline a watcher set.
func (t *Transport) endRead() {
	t.wmu.Lock()
	t.reading = false
	if t.interrupted {
		t.interrupted = false
		t.conn.SetReadDeadline(time.Time{})
	}
	t.wmu.Unlock()
}

// Close closes the socket, which makes pending and later Receive calls return
// net.ErrClosed, and returns once no Receive is reading it any more. It is idempotent:
// calls after the first return nil.
func (t *Transport) Close() error {
	var err error // stays nil for every call but the first
	t.closeOnce.Do(func() {
		t.closed.Store(true)
		close(t.done)
		if cerr := t.conn.Close(); cerr != nil {
			err = fmt.Errorf("udp: close %v: %w", t.laddr, cerr)
		}
		// Wait for the Receive reading the socket, if any, to return, and keep the
		// token so that none reads again.
		t.readTok <- struct{}{}
		t.unwatch()
		t.watchers.Wait()
		if t.log.IsDebug() {
			t.log.Debug("closed", "addr", t.laddr)
		}
	})
	return err
}

// Stats returns a snapshot of the transport's counters.
func (t *Transport) Stats() Stats {
	return Stats{
		Sent:        t.sent.Load(),
		SendErrors:  t.sendErrors.Load(),
		Received:    t.received.Load(),
		Oversize:    t.oversize.Load(),
		ReadErrors:  t.readErrors.Load(),
		KernelDrops: uint64(t.kernelDrops.Load()),
	}
}
