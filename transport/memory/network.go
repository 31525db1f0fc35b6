// Package memory is an in-process network of transport.Transport values, for tests and
// simulations.
//
// A Network hands out transports with Listen, each at its own address, and moves
// messages between them with the delay, jitter and loss it is configured with, globally
// and per pair of hosts (SetLink). A test can split the network (Partition, Heal),
// watch, drop, alter or spoof packets (SetFilter, Inject), and count what happened
// (Stats). In linked mode (Config.Linked) only pairs connected with Link reach each
// other, which mimics WebRTC, where a peer is reachable only through an open connection.
//
// The network is built to hold very many transports: an idle transport is a few hundred
// bytes and owns no goroutine, its receive queue grows only while packets wait in it,
// and delays run on the time package's timers (time.AfterFunc), so a test inside a
// testing/synctest bubble sees packets arrive at exact fake times. Create the network and
// its transports inside the bubble that uses them.
//
// Delivery semantics follow UDP: a message is delivered whole or not at all, at most
// once, possibly out of order when links have jitter. A full receive queue drops the
// packet. Outside linked mode, sending to an address nobody listens on succeeds and the
// packet is dropped, as with UDP to a dead port; so is a packet across a partition.
// Randomness comes from a source seeded by Config.Seed, so runs are reproducible as far
// as the order of sends is.
package memory

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wdht/wdht/transport"
)

// AllocPort is the port of the addresses Listen allocates.
const AllocPort = 6881

// allocBase is the first address Listen allocates; it allocates upwards within allocNet.
var (
	allocNet  = netip.MustParsePrefix("10.0.0.0/8")
	allocBase = netip.MustParseAddr("10.0.0.1")
)

// Datagram is a packet on its way through a Network, as a Filter sees it.
type Datagram struct {
	From, To netip.AddrPort
	Data     []byte
}

// A Filter sees every datagram sent on a Network, on the sending goroutine, before
// partitions, loss and delay apply. It returns false to drop the datagram. It may change
// *d: rewrite Data (in place or with a new slice), From (to spoof a source) or To (to
// redirect). d.Data is the network's own copy, and becomes the receiver's once
// delivered: a filter that keeps packets (a capture) must copy Data. Filters run
// concurrently when several goroutines send, and may call the Network's methods.
type Filter func(d *Datagram) bool

// Stats counts what a Network did with the packets sent on it. Every accepted packet
// ends in exactly one of Delivered, Filtered, Partitioned, Lost, QueueFull or NoListener,
// or is still in flight.
type Stats struct {
	Sent        uint64 // Send and Inject calls that returned nil
	Unreachable uint64 // Send and Inject calls that returned transport.ErrUnreachable
	Delivered   uint64 // packets put in a receive queue
	Filtered    uint64 // dropped by the Filter
	Partitioned uint64 // dropped because a partition separates the hosts
	Lost        uint64 // dropped by link loss
	QueueFull   uint64 // dropped because the receiver's queue was full
	NoListener  uint64 // dropped because nothing listened at the destination
}

// InFlight returns the number of packets sent and not yet delivered or dropped.
func (s Stats) InFlight() uint64 {
	return s.Sent - s.Delivered - s.Filtered - s.Partitioned - s.Lost - s.QueueFull - s.NoListener
}

// hostPair is an unordered pair of hosts, the key of link overrides.
type hostPair struct{ lo, hi netip.Addr }

func makeHostPair(a, b netip.Addr) hostPair {
	if b.Less(a) {
		a, b = b, a
	}
	return hostPair{a, b}
}

// Network is an in-process packet network. All its methods are safe for concurrent use.
type Network struct {
	queueLen    int
	tick        time.Duration // Config.Tick
	linked      bool
	defaultLink LinkConfig

	filter atomic.Pointer[Filter]

	mu     sync.RWMutex
	nodes  map[netip.AddrPort]*Transport
	links  map[hostPair]LinkConfig // overrides of defaultLink
	groups map[netip.Addr]int      // partition group of each named host; others are in group 0
	next   netip.Addr              // next address Listen tries to allocate
	randMu sync.Mutex
	rand   *rand.Rand

	// With a Tick, the packets due at one instant wait in one batch, delivered by one
	// timer: no timer and no goroutine per packet.
	batchMu sync.Mutex
	batches map[int64][]Datagram // arrival (UnixNano) -> the packets due then, in send order
	spare   [][]Datagram         // emptied batches, for new ones to reuse (at most maxSpare)

	sent      atomic.Uint64
	unreach   atomic.Uint64
	delivered atomic.Uint64
	filtered  atomic.Uint64
	parted    atomic.Uint64
	lost      atomic.Uint64
	queueFull atomic.Uint64
	noListen  atomic.Uint64
}

// NewNetwork returns an empty network. A nil cfg means the zero Config. NewNetwork
// copies what it needs from cfg and panics if cfg is invalid (see Config.Validate).
func NewNetwork(cfg *Config) *Network {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	var c Config
	if cfg != nil {
		c = *cfg
	}
	if c.QueueLen == 0 {
		c.QueueLen = DefaultQueueLen
	}
	return &Network{
		queueLen:    c.QueueLen,
		tick:        c.Tick,
		linked:      c.Linked,
		defaultLink: c.Link,
		nodes:       make(map[netip.AddrPort]*Transport),
		next:        allocBase,
		rand:        rand.New(rand.NewPCG(c.Seed, c.Seed^0x9e3779b97f4a7c15)),
	}
}

// Listen returns a transport listening at addr. The zero AddrPort allocates a free
// address: the next unused IPv4 address in 10.0.0.0/8, at port AllocPort, so that every
// allocated transport has an IP of its own (as DHT nodes, which rate-limit and derive
// BEP 42 ids per IP, expect). An address with port 0 allocates the lowest free port from
// AllocPort upwards on that IP. IPv4-mapped IPv6 addresses are unmapped. Listening at an
// address in use, or at an unspecified IP, is an error.
func (n *Network) Listen(addr netip.AddrPort) (*Transport, error) {
	addr = transport.Unmap(addr)
	if addr.IsValid() && addr.Addr().IsUnspecified() {
		return nil, fmt.Errorf("memory: listen %v: unspecified address", addr)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch {
	case !addr.Addr().IsValid():
		a, err := n.allocAddrLocked()
		if err != nil {
			return nil, err
		}
		addr = a
	case addr.Port() == 0:
		port := uint32(AllocPort)
		for ; port <= 65535; port++ {
			if n.nodes[netip.AddrPortFrom(addr.Addr(), uint16(port))] == nil {
				break
			}
		}
		if port > 65535 {
			return nil, fmt.Errorf("memory: listen %v: no free port", addr.Addr())
		}
		addr = netip.AddrPortFrom(addr.Addr(), uint16(port))
	case n.nodes[addr] != nil:
		return nil, fmt.Errorf("memory: listen %v: address already in use", addr)
	}
	t := &Transport{net: n, addr: addr, notify: make(chan struct{}, 1)}
	n.nodes[addr] = t
	return t, nil
}

func (n *Network) allocAddrLocked() (netip.AddrPort, error) {
	start := n.next
	for {
		a := netip.AddrPortFrom(n.next, AllocPort)
		n.next = n.next.Next()
		if !allocNet.Contains(n.next) {
			n.next = allocBase
		}
		if n.nodes[a] == nil {
			return a, nil
		}
		if n.next == start {
			return netip.AddrPort{}, fmt.Errorf("memory: listen: all of %v in use", allocNet)
		}
	}
}

// SetLink overrides the delay, jitter and loss between hosts a and b, in both directions.
func (n *Network) SetLink(a, b netip.Addr, c LinkConfig) error {
	if err := c.Validate(); err != nil {
		return err
	}
	k := makeHostPair(a.Unmap(), b.Unmap())
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.links == nil {
		n.links = make(map[hostPair]LinkConfig)
	}
	n.links[k] = c
	return nil
}

// ResetLink removes the override SetLink set between hosts a and b: the link gets the
// network's defaults (Config.Link) again.
func (n *Network) ResetLink(a, b netip.Addr) {
	k := makeHostPair(a.Unmap(), b.Unmap())
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.links, k)
}

// Partition splits the network: hosts in different groups cannot reach each other, and
// hosts named in no group form one more group together. So Partition(half) cuts half
// off from the rest, and Partition(x, y) with x and y covering every host splits the
// network in two. Partition replaces any earlier partition; packets already in flight
// across the new cut are dropped. Outside linked mode such packets vanish silently (and
// count as Partitioned); in linked mode Send across the cut returns
// transport.ErrUnreachable. Naming a host in two groups is an error.
func (n *Network) Partition(groups ...[]netip.Addr) error {
	m := make(map[netip.Addr]int)
	for i, g := range groups {
		for _, a := range g {
			a = a.Unmap()
			if j, dup := m[a]; dup && j != i+1 {
				return fmt.Errorf("memory: partition: host %v in groups %d and %d", a, j-1, i)
			}
			m[a] = i + 1
		}
	}
	if len(m) == 0 {
		m = nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.groups = m
	return nil
}

// Heal removes the partition: every host can reach every other again.
func (n *Network) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.groups = nil
}

// Link connects the transports listening at a and b, so that in linked mode they reach
// each other (in both directions) until Unlink or until either is closed. It is an error
// outside linked mode, or if nothing listens at a or b.
func (n *Network) Link(a, b netip.AddrPort) error {
	a, b = transport.Unmap(a), transport.Unmap(b)
	if !n.linked {
		return errors.New("memory: Link on a network not in linked mode")
	}
	if a == b {
		return fmt.Errorf("memory: link %v to itself", a)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	ta, tb := n.nodes[a], n.nodes[b]
	if ta == nil || tb == nil {
		return fmt.Errorf("memory: link %v-%v: %w", a, b, errNoListener)
	}
	ta.addPeerLocked(b)
	tb.addPeerLocked(a)
	return nil
}

var errNoListener = errors.New("nothing listens there")

// Unlink disconnects the transports at a and b (see Link).
func (n *Network) Unlink(a, b netip.AddrPort) {
	a, b = transport.Unmap(a), transport.Unmap(b)
	n.mu.Lock()
	defer n.mu.Unlock()
	if t := n.nodes[a]; t != nil {
		delete(t.peers, b)
	}
	if t := n.nodes[b]; t != nil {
		delete(t.peers, a)
	}
}

// SetFilter installs f as the network's filter, replacing any earlier one; nil removes it.
func (n *Network) SetFilter(f Filter) {
	if f == nil {
		n.filter.Store(nil)
		return
	}
	n.filter.Store(&f)
}

// Inject sends data to `to` as if the host at `from` had sent it, whether or not anything
// listens at from: a spoofed or hostile packet. It goes through the filter, partitions,
// loss and delay like any other packet. In linked mode from and to must be linked.
func (n *Network) Inject(from, to netip.AddrPort, data []byte) error {
	return n.send(transport.Unmap(from), to, data)
}

// Stats returns a snapshot of the network's counters. Taken while packets move, it is
// consistent enough that InFlight never underflows.
func (n *Network) Stats() Stats {
	// Every packet's fate is counted after it was counted as sent: load the fates first.
	s := Stats{
		Unreachable: n.unreach.Load(),
		Delivered:   n.delivered.Load(),
		Filtered:    n.filtered.Load(),
		Partitioned: n.parted.Load(),
		Lost:        n.lost.Load(),
		QueueFull:   n.queueFull.Load(),
		NoListener:  n.noListen.Load(),
	}
	s.Sent = n.sent.Load()
	return s
}

// send implements Transport.Send and Inject. from is unmapped.
func (n *Network) send(from, to netip.AddrPort, b []byte) error {
	if len(b) > transport.MaxMessageSize {
		return fmt.Errorf("memory: send %d bytes to %v: %w", len(b), to, transport.ErrMessageTooLarge)
	}
	to = transport.Unmap(to)
	if !to.Addr().IsValid() || to.Port() == 0 || to.Addr().IsUnspecified() {
		n.unreach.Add(1)
		return fmt.Errorf("memory: send to %v: invalid address: %w", to, transport.ErrUnreachable)
	}
	d := Datagram{From: from, To: to}
	copied := false
	f := n.filter.Load()

	n.mu.RLock()
	if n.linked {
		if err := n.linkedRouteLocked(from, to); err != nil {
			n.mu.RUnlock()
			n.unreach.Add(1)
			return err
		}
	}
	if f != nil {
		// The filter runs unlocked, and may rewrite the addresses: look again after it.
		n.mu.RUnlock()
		d.Data, copied = clone(b), true
		n.sent.Add(1)
		fd := d // escapes to the heap: only when a filter is set
		if !(*f)(&fd) {
			n.filtered.Add(1)
			return nil
		}
		d = fd
		n.mu.RLock()
	} else {
		n.sent.Add(1)
	}
	if n.groups != nil && n.groups[d.From.Addr()] != n.groups[d.To.Addr()] {
		n.mu.RUnlock()
		n.parted.Add(1)
		return nil
	}
	lc := n.defaultLink
	if n.links != nil {
		if o, ok := n.links[makeHostPair(d.From.Addr(), d.To.Addr())]; ok {
			lc = o
		}
	}
	var dst *Transport
	if lc.Delay == 0 && lc.Jitter == 0 {
		dst = n.nodes[d.To]
	}
	n.mu.RUnlock()

	delay := lc.Delay
	if lc.Loss > 0 || lc.Jitter > 0 {
		n.randMu.Lock()
		lost := lc.Loss > 0 && n.rand.Float64() < lc.Loss
		if !lost && lc.Jitter > 0 {
			delay += time.Duration(n.rand.Int64N(int64(lc.Jitter)))
		}
		n.randMu.Unlock()
		if lost {
			n.lost.Add(1)
			return nil
		}
	}
	if !copied {
		d.Data = clone(b)
	}
	if delay == 0 {
		if dst == nil { // jitter drew 0, or nothing listens
			n.mu.RLock()
			dst = n.nodes[d.To]
			n.mu.RUnlock()
		}
		n.deliverTo(dst, d.From, d.Data)
		return nil
	}
	if n.tick > 0 {
		now := time.Now()
		at := now.Add(delay)
		if r := at.Truncate(n.tick); r.Before(at) {
			at = r.Add(n.tick)
		}
		n.addToBatch(at, at.Sub(now), d)
		return nil
	}
	late := d // escapes to the heap: only for delayed packets
	time.AfterFunc(delay, func() { n.deliverLate(late) })
	return nil
}

// addToBatch queues d for delivery at at, delay from now: in the batch of that instant,
// whose timer, set by the batch's first packet, delivers them all.
func (n *Network) addToBatch(at time.Time, delay time.Duration, d Datagram) {
	key := at.UnixNano()
	n.batchMu.Lock()
	defer n.batchMu.Unlock()
	b, ok := n.batches[key]
	if !ok {
		if n.batches == nil {
			n.batches = make(map[int64][]Datagram)
		}
		if last := len(n.spare) - 1; last >= 0 {
			b, n.spare = n.spare[last], n.spare[:last]
		}
		time.AfterFunc(delay, func() { n.deliverBatch(key) })
	}
	n.batches[key] = append(b, d)
}

// maxSpare bounds the emptied batches a network keeps for reuse: about as many as are
// pending at once in a large simulation, where growing a batch's slice anew for every
// tick was a twelfth of the garbage.
const maxSpare = 256

// deliverBatch delivers the packets due at key, in the order they were sent. (A packet
// whose sender computed key just before the batch left starts a batch of its own, which
// its own timer delivers.)
func (n *Network) deliverBatch(key int64) {
	n.batchMu.Lock()
	b := n.batches[key]
	delete(n.batches, key)
	n.batchMu.Unlock()
	for i := range b {
		n.deliverLate(b[i])
	}
	clear(b) // the packets' data belongs to their receivers now
	n.batchMu.Lock()
	if len(n.spare) < maxSpare {
		n.spare = append(n.spare, b[:0])
	}
	n.batchMu.Unlock()
}

// linkedRouteLocked returns the ErrUnreachable to report when from cannot reach to in
// linked mode, or nil. n.mu is held.
func (n *Network) linkedRouteLocked(from, to netip.AddrPort) error {
	dst := n.nodes[to]
	if dst == nil {
		return fmt.Errorf("memory: send to %v: %w: %w", to, errNoListener, transport.ErrUnreachable)
	}
	if _, ok := dst.peers[from]; !ok {
		return fmt.Errorf("memory: send to %v: not linked: %w", to, transport.ErrUnreachable)
	}
	if n.groups != nil && n.groups[from.Addr()] != n.groups[to.Addr()] {
		return fmt.Errorf("memory: send to %v: partitioned: %w", to, transport.ErrUnreachable)
	}
	return nil
}

// deliverLate delivers a delayed datagram, unless the network changed under it: a
// partition now separates the hosts, or (in linked mode) they are no longer linked.
func (n *Network) deliverLate(d Datagram) {
	n.mu.RLock()
	if n.groups != nil && n.groups[d.From.Addr()] != n.groups[d.To.Addr()] {
		n.mu.RUnlock()
		n.parted.Add(1)
		return
	}
	dst := n.nodes[d.To]
	if n.linked && dst != nil {
		if _, ok := dst.peers[d.From]; !ok {
			dst = nil
		}
	}
	n.mu.RUnlock()
	n.deliverTo(dst, d.From, d.Data)
}

func (n *Network) deliverTo(dst *Transport, from netip.AddrPort, data []byte) {
	if dst == nil {
		n.noListen.Add(1)
		return
	}
	switch dst.enqueue(transport.Packet{From: from, Data: data}) {
	case enqueued:
		n.delivered.Add(1)
	case queueFull:
		n.queueFull.Add(1)
	case closed:
		n.noListen.Add(1)
	}
}

// clone returns an exactly-sized copy of b, non-nil even when b is empty.
func clone(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}
