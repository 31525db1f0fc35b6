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

	"github.com/anacrolix/torrent/bencode"

	"github.com/wdht/wdht/transport"
)

// conn is an open connection: a stack (peer_native.go, peer_js.go) whose one data
// channel is open.
type conn struct {
	t      *Transport
	pe     *peer
	rwc    channel
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

	// Until the peer shows it is ready (see hold), guarded by wmu:
	holding   bool          // sends are held: the peer may not be ready yet
	held      [][]byte      // the messages held, in order
	heldBytes int           // their total size
	probe     []byte        // the readiness probe, built from the first held query
	probeWait time.Duration // the wait before the next probe
	holdTimer *time.Timer   // runs holdTick; nil when not armed
	probed    atomic.Bool   // a probe was sent: answers to it are not delivered
}

// Holding messages until the peer is ready. A JS peer drops what reaches it before its
// own side reports the connection (js-wire-protocol §4), some time after the channel
// opened; a message from the peer proves it is ready. Rather than wait a fixed delay,
// a connection whose peer has not proved it yet holds what is sent to it and probes the
// peer with a KRPC ping carrying the node ID of the first held query (a ping needs no
// signals, so a JS node answers it at once, and pings are idempotent): the first probe
// goes out after a round trip, the next ones on a timer that starts at two round trips
// and grows by half each time. The peer's first message (the probe's answer, or anything
// else) releases the held messages, in order; since the data channel is ordered, they
// reach the peer after the message that proved it ready. Config.ReadyDelay after the
// channel opened, the held messages are released anyway (the peer may answer no ping).
// No message is sent twice, and no message is sent before the peer proved ready unless
// ReadyDelay passed: a message the JS would drop is never sent.
const (
	probeMinWait = 2 * time.Millisecond   // the first probe's wait, at least
	probeMaxWait = 100 * time.Millisecond // no probe waits longer than this
	probeMinStep = 10 * time.Millisecond  // the timer between probes starts at least here
)

// probeTID is the transaction ID of the readiness probes: five bytes, so that it never
// matches one of our KRPC queries (four bytes, krpc) nor a JS node's (two).
var probeTID = []byte("wdrdy")

// hold sets c up to hold its sends until the peer is ready (called by open, with c.wmu
// held, before the connection is visible). Not for a peer that is one of ours (it never
// drops early messages), nor when Config.ReadyDelay is negative.
func (c *conn) hold() {
	c.holding = !c.ours && c.t.cfg.ReadyDelay >= 0
}

// release sends the held messages and stops holding: the peer sent its first message, or
// Config.ReadyDelay passed. The caller holds c.wmu.
func (c *conn) releaseLocked() {
	if !c.holding {
		return
	}
	c.holding = false
	if c.holdTimer != nil {
		c.holdTimer.Stop()
		c.holdTimer = nil
	}
	held := c.held
	c.held, c.heldBytes, c.probe = nil, 0, nil
	select {
	case <-c.closed:
		return
	default:
	}
	for _, b := range held {
		if err := c.writeLocked(b); err != nil {
			c.t.stats.sendErrors.Add(1)
			if c.t.log.IsDebug() {
				c.t.log.Debug("sending a held message failed", "peer", c.addr, "error", err)
			}
		}
	}
}

// release is releaseLocked for a caller that does not hold c.wmu.
func (c *conn) release() {
	c.wmu.Lock()
	c.releaseLocked()
	c.wmu.Unlock()
}

// holdLocked keeps b until the peer is ready, and arms the probe timer for the first
// held message. The caller holds c.wmu and c.holding is true.
func (c *conn) holdLocked(b []byte) error {
	if c.heldBytes+len(b) > c.t.cfg.SendBuffer {
		return fmt.Errorf("webrtc: send to %v (%d bytes held until the peer is ready): %w", c.addr, c.heldBytes, ErrSendBufferFull)
	}
	c.held = append(c.held, bytes.Clone(b))
	c.heldBytes += len(b)
	if c.probe == nil {
		c.probe = probeFor(b)
	}
	if c.holdTimer == nil {
		rtt := c.pe.rtt()
		first := min(max(rtt, probeMinWait), probeMaxWait)
		c.probeWait = min(max(2*rtt, probeMinStep), probeMaxWait)
		if left := time.Until(c.opened.Add(c.t.cfg.ReadyDelay)); first > left {
			first = max(left, 0)
		}
		c.holdTimer = time.AfterFunc(first, c.holdTick)
	}
	return nil
}

// holdTick runs on the hold timer: it releases the held messages once Config.ReadyDelay
// has passed since the channel opened, and otherwise sends a probe and re-arms the timer.
func (c *conn) holdTick() {
	t := c.t
	if !t.enter() {
		return
	}
	defer t.wg.Done()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.holding || c.holdTimer == nil {
		return
	}
	select {
	case <-c.closed:
		return
	default:
	}
	left := time.Until(c.opened.Add(t.cfg.ReadyDelay))
	if left <= 0 {
		if t.log.IsDebug() {
			t.log.Debug("the peer did not show it is ready: sending the held messages", "peer", c.addr, "held", len(c.held))
		}
		c.releaseLocked()
		return
	}
	if c.probe != nil {
		c.probed.Store(true)
		if _, err := c.rwc.WriteDataChannel(c.probe, false); err == nil {
			t.stats.probes.Add(1)
			t.stats.messagesOut.Add(1)
			t.stats.bytesOut.Add(uint64(len(c.probe)))
		}
	}
	next := min(c.probeWait, left)
	c.probeWait = min(c.probeWait*3/2, probeMaxWait)
	c.holdTimer.Reset(next)
}

// probeFor returns the readiness probe for a connection whose first held message is b: a
// KRPC ping with b's querying node ID (so the peer learns nothing it would not learn from
// b), or nil when b is not a query with an ID.
func probeFor(b []byte) []byte {
	var m struct {
		Y string `bencode:"y"`
		A struct {
			ID string `bencode:"id"`
		} `bencode:"a"`
	}
	if bencode.Unmarshal(b, &m) != nil || m.Y != "q" || len(m.A.ID) != 20 {
		return nil
	}
	p, err := bencode.Marshal(map[string]any{
		"t": string(probeTID), "y": "q", "q": "ping",
		"a": map[string]any{"id": m.A.ID},
	})
	if err != nil {
		return nil
	}
	return p
}

// isProbeAnswer reports whether b answers one of our readiness probes (a response or an
// error with probeTID).
func isProbeAnswer(b []byte) bool {
	if !bytes.Contains(b, probeTID) {
		return false
	}
	var m struct {
		T string `bencode:"t"`
		Y string `bencode:"y"`
	}
	if bencode.Unmarshal(b, &m) != nil {
		return false
	}
	return m.T == string(probeTID) && (m.Y == "r" || m.Y == "e")
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
	if c.holding {
		if time.Since(c.opened) < c.t.cfg.ReadyDelay {
			return c.holdLocked(b)
		}
		c.releaseLocked()
	}
	return c.writeLocked(b)
}

// writeLocked writes b as one binary message, unless the channel already holds
// Config.SendBuffer bytes. The caller holds c.wmu.
func (c *conn) writeLocked(b []byte) error {
	buffered := c.rwc.BufferedAmount()
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
			c.setBuffered(int64(c.rwc.BufferedAmount()))
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
			c.release()                               // the peer is ready: send what waited
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
		if c.probed.Load() && isProbeAnswer(buf[:n]) {
			continue // ours, not the DHT's
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
		c.pe.close()
		c.wmu.Lock() // a send in progress has counted its bytes
		t.sendQueued.Add(-c.buffered.Swap(0))
		if c.holdTimer != nil {
			c.holdTimer.Stop()
			c.holdTimer = nil
		}
		c.held, c.heldBytes = nil, 0
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
