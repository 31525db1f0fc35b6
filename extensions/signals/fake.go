package signals

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/wdht/wdht/transport/memory"
)

// FakeNetwork negotiates connections between transports of a memory.Network in linked
// mode (memory.Config.Linked), where only linked transports reach each other, as WebRTC
// peers do: an offer is a token, and answering it links the two transports. Tests and
// simulations run the extension, and whole WebRTC-style networks, without pion.
type FakeNetwork struct {
	net *memory.Network

	mu     sync.Mutex
	next   uint64
	offers map[uint64]netip.AddrPort // outstanding offer -> who made it
	notify map[netip.AddrPort][]func(netip.AddrPort)
}

// NewFakeNetwork returns a FakeNetwork over net, which should be in linked mode.
func NewFakeNetwork(net *memory.Network) *FakeNetwork {
	return &FakeNetwork{net: net, offers: make(map[uint64]netip.AddrPort), notify: make(map[netip.AddrPort][]func(netip.AddrPort))}
}

// Signaler returns the Signaler of the transport at addr.
func (f *FakeNetwork) Signaler(addr netip.AddrPort) *FakeSignaler {
	return &FakeSignaler{f: f, addr: addr}
}

// Dial links a and b directly, as bootstrap signalling (over WebSocket or HTTP) does
// between a node and a signalling server.
func (f *FakeNetwork) Dial(a, b netip.AddrPort) error { return f.net.Link(a, b) }

// Disconnect unlinks a and b, as a closing connection does, and tells both sides.
func (f *FakeNetwork) Disconnect(a, b netip.AddrPort) {
	f.net.Unlink(a, b)
	f.mu.Lock()
	na, nb := f.notify[a], f.notify[b]
	f.mu.Unlock()
	for _, fn := range na {
		fn(b)
	}
	for _, fn := range nb {
		fn(a)
	}
}

// FakeSignaler is one transport's Signaler on a FakeNetwork.
type FakeSignaler struct {
	f    *FakeNetwork
	addr netip.AddrPort
}

// NotifyClosed registers fn to hear of Disconnect (transport.ClosedNotifier).
func (s *FakeSignaler) NotifyClosed(fn func(peer netip.AddrPort)) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.notify[s.addr] = append(s.f.notify[s.addr], fn)
}

// NewOffer returns an offer token.
func (s *FakeSignaler) NewOffer(ctx context.Context) (Offer, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	s.f.next++
	s.f.offers[s.f.next] = s.addr
	return &fakeOffer{s: s, n: s.f.next}, nil
}

// NewAnswer accepts an offer token: the offerer and this transport are linked.
func (s *FakeSignaler) NewAnswer(ctx context.Context, offer string, from netip.Addr) (Answer, error) {
	n, _, err := parseToken(offer, "fake-offer")
	if err != nil {
		return nil, err
	}
	// As with WebRTC, an offer can be answered more than once (a query sent twice is
	// relayed twice) until its offerer applies an answer or closes it.
	s.f.mu.Lock()
	offerer, ok := s.f.offers[n]
	s.f.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("fake signaler: offer %d is unknown or used", n)
	}
	if err := s.f.net.Link(offerer, s.addr); err != nil {
		return nil, err
	}
	return &fakeAnswer{sdp: fmt.Sprintf("fake-answer %d %v", n, s.addr), peer: offerer}, nil
}

type fakeOffer struct {
	s *FakeSignaler
	n uint64
}

func (o *fakeOffer) SDP() string { return fmt.Sprintf("fake-offer %d %v", o.n, o.s.addr) }

func (o *fakeOffer) Connect(ctx context.Context, answer string) (netip.AddrPort, error) {
	n, peer, err := parseToken(answer, "fake-answer")
	if err != nil {
		return netip.AddrPort{}, err
	}
	if n != o.n {
		return netip.AddrPort{}, fmt.Errorf("fake signaler: answer %d applied to offer %d", n, o.n)
	}
	o.s.f.mu.Lock()
	delete(o.s.f.offers, o.n) // used: no later answer links anything
	o.s.f.mu.Unlock()
	return peer, nil
}

func (o *fakeOffer) Close() error {
	o.s.f.mu.Lock()
	delete(o.s.f.offers, o.n)
	o.s.f.mu.Unlock()
	return nil
}

type fakeAnswer struct {
	sdp  string
	peer netip.AddrPort
}

func (a *fakeAnswer) SDP() string                                  { return a.sdp }
func (a *fakeAnswer) Wait(context.Context) (netip.AddrPort, error) { return a.peer, nil }
func (a *fakeAnswer) Close() error                                 { return nil }

// parseToken parses "<kind> <n> <addr>".
func parseToken(s, kind string) (uint64, netip.AddrPort, error) {
	f := strings.Fields(s)
	if len(f) != 3 || f[0] != kind {
		return 0, netip.AddrPort{}, errors.New("fake signaler: not a " + kind)
	}
	n, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	addr, err := netip.ParseAddrPort(f[2])
	return n, addr, err
}
