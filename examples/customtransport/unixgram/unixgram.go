//go:build linux

package unixgram

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wdht/wdht/transport"
)

// Defaults for Config fields left zero.
const (
	DefaultQueueLen = 1024
	DefaultSendWait = 100 * time.Millisecond
)

// writeBuffer is the send buffer Listen asks for. On Linux a Unix datagram may be as
// large as the sender's send buffer (less a few bytes), and datagrams waiting in a
// receiver's queue count against their sender's buffer, so it must hold a few messages of
// transport.MaxMessageSize. The kernel caps the request at net.core.wmem_max (and then
// doubles it); the default, net.core.wmem_default, is usually 208 KiB, enough for three.
const writeBuffer = 1 << 20

var errClosed = fmt.Errorf("unixgram: transport closed: %w", net.ErrClosed)

// Config configures a Transport. The zero value (or a nil *Config) is usable.
type Config struct {
	// QueueLen bounds the packets read from the socket and not yet received; when the
	// queue is full, arriving packets are dropped and counted (Stats.QueueFull).
	// Default 1024.
	QueueLen int
	// SendWait is how long Send keeps retrying while the receiver's socket queue is
	// full before it drops the message (Stats.Dropped). A receiver that reads keeps
	// its queue nearly empty, so only a stalled process makes Send wait this long.
	// Default 100 ms (5 ms lost messages under the race detector on a busy 2-core
	// machine, where a receiver's reader may not run for that long); negative drops at once.
	SendWait time.Duration
}

// Transport is a transport.Transport on one Unix datagram socket. All its methods are
// safe for concurrent use.
type Transport struct {
	dir      string // absolute, clean
	path     string
	laddr    netip.AddrPort
	conn     *net.UnixConn
	raw      syscall.RawConn
	sendWait time.Duration

	queue     chan transport.Packet
	closed    atomic.Bool
	done      chan struct{} // closed when Close starts
	closeOnce sync.Once
	closeErr  error
	reader    sync.WaitGroup

	sent, sendErrors, dropped                            atomic.Uint64
	received, queueFull, oversize, strangers, readErrors atomic.Uint64
}

var _ transport.Transport = (*Transport)(nil)

// Stats counts a transport's datagrams.
type Stats struct {
	Sent       uint64 // datagrams written to a socket
	SendErrors uint64 // Send calls that failed on an open transport (unreachable, too large)
	Dropped    uint64 // messages Send dropped because the receiver's queue stayed full
	Received   uint64 // datagrams queued for Receive
	QueueFull  uint64 // datagrams dropped because the receive queue was full
	Oversize   uint64 // datagrams dropped for exceeding transport.MaxMessageSize
	Strangers  uint64 // datagrams dropped because their sender has no address here
	ReadErrors uint64 // errors reading the socket, survived
}

// Listen binds a socket for address addr in directory dir, which must exist and should be
// an absolute path all the processes agree on (a relative one is made absolute). The zero
// AddrPort allocates the first free address 127.0.0.1:6881, 127.0.0.2:6881, ...; an
// address with port 0 allocates the first free port from 6881 on its IP. A stale socket
// file at the address (left by a process that died) is removed and rebound; a live one
// makes Listen fail, as a port in use does. A nil cfg means the zero Config.
func Listen(dir string, addr netip.AddrPort, cfg *Config) (*Transport, error) {
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.QueueLen < 0 {
		return nil, fmt.Errorf("unixgram: negative QueueLen %d", c.QueueLen)
	}
	if c.QueueLen == 0 {
		c.QueueLen = DefaultQueueLen
	}
	switch {
	case c.SendWait == 0:
		c.SendWait = DefaultSendWait
	case c.SendWait < 0:
		c.SendWait = 0
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("unixgram: %w", err)
	}
	if fi, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("unixgram: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("unixgram: %s is not a directory", abs)
	}

	addr = unmap(addr)
	var conn *net.UnixConn
	switch {
	case addr == netip.AddrPort{}:
		conn, addr, err = allocate(abs, func(i int) (netip.AddrPort, bool) {
			// 127.0.0.1 and up, skipping addresses ending in .0 and .255.
			n := uint32(i/254)<<8 | uint32(i%254+1)
			if n >= 1<<24 {
				return netip.AddrPort{}, false
			}
			ip := netip.AddrFrom4([4]byte{127, byte(n >> 16), byte(n >> 8), byte(n)})
			return netip.AddrPortFrom(ip, DefaultPort), true
		})
	case addr.Port() == 0:
		if err := usable(netip.AddrPortFrom(addr.Addr(), 1)); err != nil {
			return nil, fmt.Errorf("unixgram: listen %v: %v", addr, err)
		}
		conn, addr, err = allocate(abs, func(i int) (netip.AddrPort, bool) {
			if i >= 65535 {
				return netip.AddrPort{}, false
			}
			port := (DefaultPort-1+i)%65535 + 1 // 6881 ... 65535, then 1 ... 6880
			return netip.AddrPortFrom(addr.Addr(), uint16(port)), true
		})
	default:
		if err := usable(addr); err != nil {
			return nil, fmt.Errorf("unixgram: listen %v: %v", addr, err)
		}
		conn, err = bind(abs, addr)
	}
	if err != nil {
		return nil, err
	}

	t := &Transport{
		dir:      abs,
		path:     Path(abs, addr),
		laddr:    addr,
		conn:     conn,
		sendWait: c.SendWait,
		queue:    make(chan transport.Packet, c.QueueLen),
		done:     make(chan struct{}),
	}
	fail := func(err error) (*Transport, error) {
		os.Remove(t.path)
		conn.Close()
		return nil, fmt.Errorf("unixgram: listen %v: %w", addr, err)
	}
	if err := conn.SetWriteBuffer(writeBuffer); err != nil {
		return fail(err)
	}
	if t.raw, err = conn.SyscallConn(); err != nil {
		return fail(err)
	}
	var sndbuf int
	var serr error
	if err := t.raw.Control(func(fd uintptr) {
		sndbuf, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
	}); err != nil {
		return fail(err)
	}
	if serr != nil {
		return fail(serr)
	}
	if sndbuf < transport.MaxMessageSize+1024 {
		return fail(fmt.Errorf("socket send buffer of %d bytes cannot hold a %d-byte message (raise net.core.wmem_max)",
			sndbuf, transport.MaxMessageSize))
	}
	t.reader.Add(1)
	go t.read()
	return t, nil
}

// allocate binds the first free address that next yields.
func allocate(dir string, next func(i int) (netip.AddrPort, bool)) (*net.UnixConn, netip.AddrPort, error) {
	for i := 0; ; i++ {
		a, ok := next(i)
		if !ok {
			return nil, netip.AddrPort{}, fmt.Errorf("unixgram: no free address in %s", dir)
		}
		conn, err := bind(dir, a)
		if err == nil {
			return conn, a, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			return nil, netip.AddrPort{}, err
		}
	}
}

// bind binds a socket at the path of a, reclaiming a stale file there. The error wraps
// syscall.EADDRINUSE when a live socket holds the address.
func bind(dir string, a netip.AddrPort) (*net.UnixConn, error) {
	path := Path(dir, a)
	if len(path) > maxPath {
		return nil, fmt.Errorf("unixgram: listen %v: socket path %s is %d bytes, longer than the %d a Unix socket allows (use a shorter directory)",
			a, path, len(path), maxPath)
	}
	ua := &net.UnixAddr{Name: path, Net: "unixgram"}
	for attempt := 0; ; attempt++ {
		conn, err := net.ListenUnixgram("unixgram", ua)
		if err == nil {
			return conn, nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) || attempt > 0 {
			return nil, fmt.Errorf("unixgram: listen %v: %w", a, err)
		}
		free, rerr := reclaim(dir, path)
		if rerr != nil {
			return nil, fmt.Errorf("unixgram: listen %v: %w (%w)", a, err, rerr)
		}
		if !free {
			return nil, fmt.Errorf("unixgram: listen %v: %w", a, err)
		}
	}
}

// LocalAddr returns the address the transport is bound to.
func (t *Transport) LocalAddr() netip.AddrPort { return t.laddr }

// Path returns the path of the transport's socket file.
func (t *Transport) Path() string { return t.path }

// Send writes b as one datagram to the socket of address `to`. It returns an error
// satisfying errors.Is(err, transport.ErrUnreachable) for an unusable address (zero,
// port 0, unspecified) and when no socket is bound at the address (ENOENT, ECONNREFUSED);
// errors.Is(err, transport.ErrMessageTooLarge) for more than transport.MaxMessageSize
// bytes; and errors.Is(err, net.ErrClosed) after Close. When the receiver's queue is full
// it retries for Config.SendWait, then drops the message and returns nil, as UDP would.
// Send does not keep b.
func (t *Transport) Send(to netip.AddrPort, b []byte) error {
	if t.closed.Load() {
		return errClosed
	}
	if len(b) > transport.MaxMessageSize {
		t.sendErrors.Add(1)
		return fmt.Errorf("unixgram: send %d bytes to %v (limit %d): %w", len(b), to, transport.MaxMessageSize, transport.ErrMessageTooLarge)
	}
	to = unmap(to)
	if err := usable(to); err != nil {
		t.sendErrors.Add(1)
		return fmt.Errorf("unixgram: send to %v: %v: %w", to, err, transport.ErrUnreachable)
	}
	sa := &syscall.SockaddrUnix{Name: Path(t.dir, to)}
	var deadline time.Time
	for attempt := 0; ; attempt++ {
		var serr error
		err := t.raw.Write(func(fd uintptr) bool {
			serr = syscall.Sendto(int(fd), b, syscall.MSG_DONTWAIT, sa)
			return true // never wait for the poller: a full receiver would block us
		})
		if err == nil {
			err = serr
		}
		if err == nil {
			t.sent.Add(1)
			return nil
		}
		if !errors.Is(err, syscall.EAGAIN) {
			return t.sendError(to, err)
		}
		// The receiver's queue (or our send buffer) is full: back off briefly, first by
		// yielding (an in-process receiver's reader may just need to run), then sleeping.
		now := time.Now()
		if attempt == 0 {
			deadline = now.Add(t.sendWait)
		}
		if !now.Before(deadline) {
			t.dropped.Add(1)
			return nil
		}
		if attempt < 4 {
			runtime.Gosched()
		} else {
			time.Sleep(min(50*time.Microsecond<<(attempt-4), time.Millisecond, deadline.Sub(now)))
		}
		if t.closed.Load() {
			return errClosed
		}
	}
}

// sendError wraps an error of sendto with the sentinel of the transport contract it
// stands for.
func (t *Transport) sendError(to netip.AddrPort, err error) error {
	if errors.Is(err, net.ErrClosed) {
		return errClosed
	}
	t.sendErrors.Add(1)
	var sentinel error
	switch {
	case errors.Is(err, syscall.EMSGSIZE):
		sentinel = transport.ErrMessageTooLarge
	case errors.Is(err, syscall.ENOENT), // no socket file
		errors.Is(err, syscall.ECONNREFUSED), // a file nobody is bound to
		errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM),
		errors.Is(err, syscall.EPROTOTYPE), // a socket of another type
		errors.Is(err, syscall.EINVAL):     // a path too long for a socket
		sentinel = transport.ErrUnreachable
	default:
		return fmt.Errorf("unixgram: send to %v: %w", to, err)
	}
	return fmt.Errorf("unixgram: send to %v: %w: %w", to, sentinel, err)
}

// Receive returns the next datagram. It returns ctx.Err() when ctx is done first, and an
// error satisfying errors.Is(err, net.ErrClosed) once the transport is closed. The
// packet's Data is exactly sized and belongs to the caller.
func (t *Transport) Receive(ctx context.Context) (transport.Packet, error) {
	if t.closed.Load() {
		return transport.Packet{}, errClosed
	}
	if err := ctx.Err(); err != nil {
		return transport.Packet{}, err // without consuming a packet
	}
	select {
	case p := <-t.queue:
		if t.closed.Load() { // Close discards what is queued
			return transport.Packet{}, errClosed
		}
		return p, nil
	case <-t.done:
		return transport.Packet{}, errClosed
	case <-ctx.Done():
		return transport.Packet{}, ctx.Err()
	}
}

// read is the reader goroutine: it moves datagrams from the socket to the queue until the
// socket is closed.
func (t *Transport) read() {
	defer t.reader.Done()
	// One byte more than the largest message: a datagram that fills the buffer is too
	// large (the kernel truncates what does not fit).
	buf := make([]byte, transport.MaxMessageSize+1)
	prefix := t.dir + string(filepath.Separator)
	streak := 0
	for {
		n, from, err := t.conn.ReadFromUnix(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			t.readErrors.Add(1)
			if streak++; streak%100 == 0 { // never spin on an error that repeats
				select {
				case <-t.done:
					return
				case <-time.After(10 * time.Millisecond):
				}
			}
			continue
		}
		streak = 0
		if n > transport.MaxMessageSize {
			t.oversize.Add(1)
			continue
		}
		// The sender's address is the name of its socket file, which must be in our
		// directory: a reply to anything else would go astray.
		fromAddr, ok := netip.AddrPort{}, false
		if from != nil {
			if name, inDir := strings.CutPrefix(from.Name, prefix); inDir {
				fromAddr, err = ParseName(name)
				ok = err == nil
			}
		}
		if !ok {
			t.strangers.Add(1)
			continue
		}
		data := make([]byte, n)
		copy(data, buf[:n])
		t.received.Add(1) // first, so that a packet Receive returned is always counted
		select {
		case t.queue <- transport.Packet{From: fromAddr, Data: data}:
		default:
			t.received.Add(^uint64(0))
			t.queueFull.Add(1)
		}
	}
}

// Close removes the socket file, closes the socket (pending and later Receive calls
// return net.ErrClosed, and queued packets are discarded) and waits for the reader
// goroutine to exit. It is idempotent: calls after the first return nil, and concurrent
// calls return once the transport is closed.
func (t *Transport) Close() error {
	first := false
	t.closeOnce.Do(func() {
		first = true
		t.closed.Store(true)
		close(t.done)
		// The file goes first: from now on senders get ENOENT, and no other process can
		// mistake the file for a stale one and rebind it before we are done.
		var errs []error
		if err := os.Remove(t.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
		if err := t.conn.Close(); err != nil {
			errs = append(errs, err)
		}
		t.reader.Wait()
		if err := errors.Join(errs...); err != nil {
			t.closeErr = fmt.Errorf("unixgram: close %v: %w", t.laddr, err)
		}
	})
	if !first {
		return nil
	}
	return t.closeErr
}

// Stats returns a snapshot of the transport's counters.
func (t *Transport) Stats() Stats {
	return Stats{
		Sent:       t.sent.Load(),
		SendErrors: t.sendErrors.Load(),
		Dropped:    t.dropped.Load(),
		Received:   t.received.Load(),
		QueueFull:  t.queueFull.Load(),
		Oversize:   t.oversize.Load(),
		Strangers:  t.strangers.Load(),
		ReadErrors: t.readErrors.Load(),
	}
}
