package webrtc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/datachannel"
	pwebrtc "github.com/pion/webrtc/v3"

	"github.com/wdht/wdht/transport"
)

// conn is an open connection: a PeerConnection whose one data channel is open.
type conn struct {
	t      *Transport
	pc     *pwebrtc.PeerConnection
	dc     *pwebrtc.DataChannel
	rwc    datachannel.ReadWriteCloser
	addr   netip.AddrPort
	opened time.Time

	ready     chan struct{} // closed when the first message arrives
	readyOnce sync.Once
	closed    chan struct{}
	closeOnce sync.Once
	idle      *time.Timer // guarded by t.mu; set when the transport adopts the conn

	lastRecv atomic.Int64 // UnixNano of the last message received; 0: none
	kept     atomic.Bool
	server   atomic.Pointer[string] // the signalling server the peer announced
	ours     bool                   // we answered an offer of ours: the peer is ready at once
	pair     string                 // the selected pair's candidate types, "local/remote" (ice.go)

	wmu      sync.Mutex   // makes the buffered-amount check and the write one step
	buffered atomic.Int64 // queued bytes counted in t.sendQueued; written under wmu
}

// send writes b as one binary message, unless the channel already holds
// Config.SendBuffer bytes.
func (c *conn) send(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	select {
	case <-c.closed:
		return fmt.Errorf("webrtc: connection to %v closed: %w", c.addr, transport.ErrUnreachable)
	default:
	}
	buffered := c.dc.BufferedAmount()
	if buffered+uint64(len(b)) > uint64(c.t.cfg.SendBuffer) {
		return fmt.Errorf("webrtc: send to %v (%d bytes queued): %w", c.addr, buffered, ErrSendBufferFull)
	}
	c.setBuffered(int64(buffered))
	t := c.t
	if t.sendQueued.Load()+int64(len(b)) > int64(t.cfg.TotalSendBuffer) {
		// The sum of what each connection last saw may be stale (it only falls when
		// they send): count again before refusing.
		t.recountQueued(c)
		if q := t.sendQueued.Load(); q+int64(len(b)) > int64(t.cfg.TotalSendBuffer) {
			return fmt.Errorf("webrtc: send to %v (%d bytes queued on all connections): %w", c.addr, q, ErrSendBufferFull)
		}
	}
	if _, err := c.rwc.WriteDataChannel(b, false); err != nil {
		return fmt.Errorf("webrtc: send to %v: %w: %w", c.addr, transport.ErrUnreachable, err)
	}
	c.setBuffered(int64(buffered) + int64(len(b)))
	c.t.stats.messagesOut.Add(1)
	c.t.stats.bytesOut.Add(uint64(len(b)))
	return nil
}

// setBuffered records v bytes queued on c, in the transport's total too. The caller
// holds c.wmu, and c is not closed.
func (c *conn) setBuffered(v int64) {
	c.t.sendQueued.Add(v - c.buffered.Swap(v))
}

// recountQueued refreshes the queued bytes of every open connection but self (whose
// caller holds its lock and has just refreshed it), skipping those busy sending.
func (t *Transport) recountQueued(self *conn) {
	t.mu.Lock()
	conns := make([]*conn, 0, len(t.conns))
	for _, c := range t.conns {
		if c != self {
			conns = append(conns, c)
		}
	}
	t.mu.Unlock()
	for _, c := range conns {
		if !c.wmu.TryLock() {
			continue
		}
		select {
		case <-c.closed:
		default:
			c.setBuffered(int64(c.dc.BufferedAmount()))
		}
		c.wmu.Unlock()
	}
}

// readLoop delivers the connection's messages until the channel closes, then closes the
// connection. The first message is checked for a signalling-server announcement.
func (c *conn) readLoop() {
	t := c.t
	defer t.wg.Done()
	buf, release, free := newReadBuffer()
	defer free()
	first := true
	for {
		n, _, err := c.rwc.ReadDataChannel(buf)
		if err != nil {
			if errors.Is(err, io.ErrShortBuffer) {
				// A message over MaxMessageSize: SCTP has dropped it.
				t.stats.oversize.Add(1)
				release(len(buf))
				continue
			}
			if t.log.IsDebug() && !errors.Is(err, io.EOF) {
				select {
				case <-c.closed:
				default:
					t.log.Debug("connection read error", "peer", c.addr, "error", err)
				}
			}
			c.close(true)
			return
		}
		c.lastRecv.Store(time.Now().UnixNano())
		if first {
			first = false
			srv, ok := parseAnnouncement(buf[:n])
			if ok && srv != "" {
				c.server.Store(&srv)
			}
			c.readyOnce.Do(func() { close(c.ready) }) // after the announcement is known
			if !ok && bytes.Equal(buf[:n], readyMessage) {
				continue
			}
			if ok {
				if t.log.IsDebug() {
					t.log.Debug("peer announced its signalling server", "peer", c.addr, "server", srv)
				}
				continue
			}
		}
		data := make([]byte, n)
		copy(data, buf[:n])
		release(n)
		select {
		case t.queue <- transport.Packet{From: c.addr, Data: data}:
			t.stats.messagesIn.Add(1)
			t.stats.bytesIn.Add(uint64(n))
		default:
			t.stats.dropped.Add(1)
		}
	}
}

// waitReady waits until the peer sent its first message or Config.ReadyDelay passed
// since the channel opened; not at all when the peer is one of ours that offered (see
// ourLabelPrefix), which never drops early messages.
func (c *conn) waitReady(ctx context.Context) error {
	if c.ours {
		return nil
	}
	return c.waitFirst(ctx)
}

// waitFirst waits until the peer sent its first message or Config.ReadyDelay passed since
// the channel opened. Dial waits so even for a server of ours, whose first message is the
// announcement of its signalling server.
func (c *conn) waitFirst(ctx context.Context) error {
	d := c.t.cfg.ReadyDelay
	if d < 0 {
		return nil
	}
	timer := time.NewTimer(time.Until(c.opened.Add(d)))
	defer timer.Stop()
	select {
	case <-c.ready:
	case <-timer.C:
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closed:
		return fmt.Errorf("%w: %v", errConnClosed, c.addr)
	}
	return nil
}

// checkIdle runs on the idle timer: it closes the connection when it is not kept and has
// received nothing for Config.IdleTimeout, and re-arms the timer otherwise.
func (c *conn) checkIdle() {
	t := c.t
	if !t.enter() {
		return
	}
	defer t.wg.Done()
	select {
	case <-c.closed:
		return
	default:
	}
	last := c.opened
	if n := c.lastRecv.Load(); n != 0 {
		last = time.Unix(0, n)
	}
	next := t.cfg.IdleTimeout
	if !c.kept.Load() {
		idle := time.Since(last)
		if idle >= next {
			if t.log.IsDebug() {
				t.log.Debug("closing an idle connection that is not kept", "peer", c.addr, "idle", idle.Round(time.Millisecond))
			}
			c.close(true)
			return
		}
		next -= idle
	}
	t.mu.Lock()
	if c.idle != nil {
		c.idle.Reset(next)
	}
	t.mu.Unlock()
}

// close closes the connection once. notify: tell the NotifyClosed functions (not when
// the transport closes, nor for a connection that another to the same address replaced).
func (c *conn) close(notify bool) {
	c.closeOnce.Do(func() {
		t := c.t
		close(c.closed)
		t.mu.Lock()
		own := t.conns[c.addr] == c
		if own {
			delete(t.conns, c.addr)
			for alias, real := range t.aliases {
				if real == c.addr {
					delete(t.aliases, alias)
				}
			}
		}
		fs := t.notify
		tclosed := t.closed
		if c.idle != nil {
			c.idle.Stop()
			c.idle = nil
		}
		t.mu.Unlock()
		c.rwc.Close()
		c.pc.Close()
		c.wmu.Lock() // a send in progress has counted its bytes
		t.sendQueued.Add(-c.buffered.Swap(0))
		c.wmu.Unlock()
		t.stats.closedConns.Add(1)
		if t.log.IsDebug() {
			t.log.Debug("connection closed", "peer", c.addr)
		}
		if notify && own && !tclosed && len(fs) > 0 {
			// On a goroutine of ours, whoever closes (Disconnect's caller may hold
			// locks that f takes).
			t.track(func() {
				for _, f := range fs {
					f(c.addr)
				}
			})
		}
	})
}

// heapReadBuffer returns a read buffer on the Go heap, for newReadBuffer.
func heapReadBuffer() (buf []byte, release func(n int), free func()) {
	return make([]byte, MaxMessageSize), func(int) {}, func() {}
}
