package dht

import (
	"net/netip"
	"sync/atomic"
)

// DefaultEventQueue is the number of events a node holds for its hooks when
// Events.Queue is zero.
const DefaultEventQueue = 1024

// Events are hooks a node calls when something happens to it: the Go form of the JS
// DHT's "node", "announce", "put" and "query" events. Every hook may be nil.
//
// Hooks never block the node. The read loop (which answers the node's own queries) only
// puts an event in a queue of Queue events and moves on; one goroutine of the node's own
// takes the events out in order and calls the hooks, one at a time. A slow hook
// therefore delays only later hooks; when the queue is full the event is dropped and
// counted in Stats.EventsDropped, never waited for. Each event that is not dropped is
// delivered once. A hook may call the node's methods (a lookup from a hook delays the
// hooks after it, nothing else). The goroutine ends with Close; events still queued then
// are dropped.
type Events struct {
	// NodeAdded is called when a node enters the routing table; NodeRemoved when one
	// leaves it (evicted, replaced, removed with RemoveNode, or its connection closed).
	NodeAdded, NodeRemoved func(NodeInfo)
	// PeerAnnounced is called when a node announces a peer for infohash to us
	// (announce_peer), after the peer is stored. from is the node that announced it.
	PeerAnnounced func(infohash ID, peer netip.AddrPort, from NodeInfo)
	// ItemStored is called when a node puts a BEP 44 item to us, after it is stored.
	// it must not be modified.
	ItemStored func(it *Item, from NodeInfo)
	// Query is called for every query the node receives, before it is answered: its
	// method and the node that sent it.
	Query func(method string, from NodeInfo)
	// Queue bounds the events waiting for their hooks. Default DefaultEventQueue.
	Queue int
}

func (e *Events) any() bool {
	return e.NodeAdded != nil || e.NodeRemoved != nil || e.PeerAnnounced != nil || e.ItemStored != nil || e.Query != nil
}

// events is a node's queue of events and the goroutine that calls the hooks.
type events struct {
	h       Events
	q       chan func()
	dropped atomic.Uint64
}

// newEvents returns nil when no hook is set: emitting is then free.
func newEvents(h Events) *events {
	if !h.any() {
		return nil
	}
	if h.Queue <= 0 {
		h.Queue = DefaultEventQueue
	}
	return &events{h: h, q: make(chan func(), h.Queue)}
}

// emit queues f without ever waiting.
func (e *events) emit(f func()) {
	select {
	case e.q <- f:
	default:
		e.dropped.Add(1)
	}
}

// run calls the hooks until done is closed.
func (e *events) run(done <-chan struct{}) {
	for {
		select {
		case f := <-e.q:
			f()
		case <-done:
			return
		}
	}
}

func (n *Node) nodeChanged(ni NodeInfo, in bool) {
	e := n.events
	if e == nil {
		return
	}
	if in && e.h.NodeAdded != nil {
		e.emit(func() { e.h.NodeAdded(ni) })
	} else if !in && e.h.NodeRemoved != nil {
		e.emit(func() { e.h.NodeRemoved(ni) })
	}
}

func (n *Node) queryReceived(method string, from NodeInfo) {
	if e := n.events; e != nil && e.h.Query != nil {
		e.emit(func() { e.h.Query(method, from) })
	}
}

func (n *Node) peerAnnounced(ih ID, peer netip.AddrPort, from NodeInfo) {
	if e := n.events; e != nil && e.h.PeerAnnounced != nil {
		e.emit(func() { e.h.PeerAnnounced(ih, peer, from) })
	}
}

func (n *Node) itemStored(it *Item, from NodeInfo) {
	if e := n.events; e != nil && e.h.ItemStored != nil {
		e.emit(func() { e.h.ItemStored(it, from) })
	}
}
