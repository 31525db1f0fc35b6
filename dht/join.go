package dht

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/wdht/wdht/krpc"
)

// Backoff of Join between failed bootstraps.
const (
	JoinBackoffMin = time.Second
	JoinBackoffMax = time.Minute
)

// AddNode pings addr and, when a node answers, puts it in the routing table as a node that
// answered (or among its bucket's replacements when the bucket is full of good nodes),
// and returns it. It fails when nothing answers at addr before ctx ends or the KRPC
// attempts run out.
func (n *Node) AddNode(ctx context.Context, addr netip.AddrPort) (NodeInfo, error) {
	if !usableAddr(addr) {
		return NodeInfo{}, fmt.Errorf("dht: AddNode: %v is not a usable node address", addr)
	}
	resp, err := n.queryDialing(ctx, addr, nil, krpc.MethodPing, &krpc.Args{})
	if err != nil {
		return NodeInfo{}, fmt.Errorf("dht: AddNode: no node answered a ping at %v: %w", addr, err)
	}
	ni := NodeInfo{ID: resp.Return.ID, Addr: resp.From}
	if ni.ID == n.ID() {
		return NodeInfo{}, fmt.Errorf("dht: AddNode: %v is this node", addr)
	}
	// query has already recorded the answer (sawResponse); a refused node (BEP 42
	// enforcement) or one of a family we lack did not enter.
	n.mu.Lock()
	tb := n.tableFor(ni.Addr)
	refused := tb == nil || tb.refused(ni)
	n.mu.Unlock()
	if refused {
		return ni, fmt.Errorf("dht: AddNode: %v answered but cannot enter the routing table", ni)
	}
	return ni, nil
}

// RemoveNode removes the node with id from the routing tables (and from the replacement
// lists) and reports whether it was in a table.
func (n *Node) RemoveNode(id ID) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	removed := false
	for _, tb := range n.tables {
		if tb != nil && tb.remove(id) {
			removed = true
		}
	}
	return removed
}

// Join bootstraps the node in the background, as the JS DHT does on creation: it runs
// Bootstrap (from Config.Bootstrap, Config.BootstrapHosts and the saved state, host names
// resolved anew each time) until one succeeds, waiting JoinBackoffMin after the first
// failure and twice as long after each further one, up to JoinBackoffMax. Ready is closed
// at the first success. Join returns at once; the attempts stop when ctx ends or the node
// closes. While a Join runs, calling it again does nothing.
func (n *Node) Join(ctx context.Context) {
	if !n.joining.CompareAndSwap(false, true) {
		return
	}
	if !n.spawn(func() { defer n.joining.Store(false); n.join(ctx) }) {
		n.joining.Store(false)
	}
}

func (n *Node) join(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(n.ctx, cancel)
	defer stop()
	backoff := JoinBackoffMin
	for attempt := 1; ; attempt++ {
		_, err := n.Bootstrap(ctx)
		if err == nil {
			return // Bootstrap closed ready
		}
		if ctx.Err() != nil || errors.Is(err, ErrClosed) {
			return
		}
		n.log.Warn("bootstrap failed; trying again", "attempt", attempt, "in", backoff, "error", err)
		t := time.NewTimer(n.jitter(backoff))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, JoinBackoffMax)
	}
}

// Ready returns a channel closed once a bootstrap (by Bootstrap or Join) has succeeded:
// the JS DHT's "ready" event.
func (n *Node) Ready() <-chan struct{} { return n.ready }

func (n *Node) setReady() { n.once.Do(func() { close(n.ready) }) }
