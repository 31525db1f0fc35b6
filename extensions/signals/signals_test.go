package signals

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	akrpc "github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/memory"
)

func TestOfferCount(t *testing.T) {
	for _, c := range []struct{ k, want int }{{0, 2}, {2, 2}, {4, 2}, {8, 3}, {20, 4}, {64, 6}} {
		e, err := New(NewFakeNetwork(nil).Signaler(netip.AddrPort{}), &Config{K: c.k})
		if err != nil {
			t.Fatal(err)
		}
		if e.cfg.Offers != c.want {
			t.Errorf("K=%d: %d offers, want max(2, floor(log2 K)) = %d", c.k, e.cfg.Offers, c.want)
		}
	}
	if _, err := New(nil, nil); err == nil {
		t.Fatal("nil Signaler accepted")
	}
	if _, err := New(NewFakeNetwork(nil).Signaler(netip.AddrPort{}), &Config{Offers: -1}); err == nil {
		t.Fatal("negative Offers accepted")
	}
}

// rawNode is a KRPC server on the linked network with handlers of the test's choosing,
// standing in for a node of another implementation.
func (w *webNet) rawNode(h krpc.Handler) *krpc.Server { return w.rawNodeConfig(h, nil) }

// rawNodeConfig is rawNode with a KRPC configuration.
func (w *webNet) rawNodeConfig(h krpc.Handler, cfg *krpc.Config) *krpc.Server {
	w.t.Helper()
	tr, err := w.mem.Listen(netip.AddrPort{})
	if err != nil {
		w.t.Fatal(err)
	}
	s, err := krpc.NewServer(tr, h, cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { s.Close(); tr.Close() })
	return s
}

func idOf(b byte) dht.ID {
	var id dht.ID
	for i := range id {
		id[i] = b
	}
	return id
}

func ret(id dht.ID) *krpc.Return {
	r := &krpc.Return{}
	r.ID = id
	return r
}

// What our querier sends: find_node carries the offers as the JS does; ping does not.
func TestQueryCarriesOffers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWebNet(t, memory.LinkConfig{})
		var got atomic.Pointer[krpc.Args]
		var pingHadSignals atomic.Bool
		raw := w.rawNode(krpc.Mux{
			krpc.MethodFindNode: krpc.HandlerFunc(func(ctx context.Context, q *krpc.Query) (*krpc.Response, error) {
				a := *q.Args
				got.Store(&a)
				return &krpc.Response{Return: ret(idOf(9))}, nil
			}),
			krpc.MethodPing: krpc.HandlerFunc(func(ctx context.Context, q *krpc.Query) (*krpc.Response, error) {
				_, has := q.Args.Extra["signals"]
				pingHadSignals.Store(has)
				return &krpc.Response{Return: ret(idOf(9))}, nil
			}),
		})
		a := w.add()
		w.fake.Dial(a.Addr(), raw.Transport().LocalAddr())
		if _, err := a.Ping(t.Context(), raw.Transport().LocalAddr()); err != nil || pingHadSignals.Load() {
			t.Fatalf("ping: %v, carried signals: %v", err, pingHadSignals.Load())
		}
		a.Bootstrap(t.Context(), raw.Transport().LocalAddr())
		args := got.Load()
		if args == nil {
			t.Fatal("no find_node")
		}
		offers := decodeList(args.Extra["signals"])
		if len(offers) != 2 {
			t.Fatalf("%d offers, want 2 (K=2)", len(offers))
		}
		for _, raw := range offers {
			s := decodeSignal(raw)
			if s == nil || s.Type != "offer" || !strings.HasPrefix(s.SDP, "fake-offer") || s.ID != idStr(a.ID()) {
				t.Fatalf("offer %q", raw)
			}
			if !strings.Contains(string(raw), "10:extensionsle") {
				t.Fatalf("offer without an extensions list, as the JS always sends: %q", raw)
			}
		}
	})
}

// responderSetup is our node R (with the extension) holding three target nodes of ours,
// and a raw querier Q linked to R only, with offers it can make on the fake network.
type responderSetup struct {
	w       *webNet
	r       *dht.Node
	targets []*dht.Node
	q       *krpc.Server
	qsig    *FakeSignaler
}

func newResponderSetup(t *testing.T) *responderSetup {
	w := newWebNet(t, memory.LinkConfig{})
	w.k = 8 // room for all three targets in R's table
	s := &responderSetup{w: w, r: w.add()}
	for range 3 {
		n := w.add()
		if err := w.join(n, s.r); err != nil {
			t.Fatal(err)
		}
		s.targets = append(s.targets, n)
	}
	synctest.Wait() // R confirms its targets
	if got := len(s.r.Nodes()); got != 3 {
		t.Fatalf("R knows %d nodes, want 3", got)
	}
	s.q = w.rawNode(nil)
	s.qsig = w.fake.Signaler(s.q.Transport().LocalAddr())
	w.fake.Dial(s.q.Transport().LocalAddr(), s.r.Addr())
	return s
}

var qID = idOf(0x51)

// query sends a signalled query from Q to R with n of Q's offers and returns R's answer.
func (s *responderSetup) query(t *testing.T, method string, target dht.ID, n int) *krpc.Return {
	r, _ := s.queryOffers(t, method, target, n)
	return r
}

// queryOffers is query that also returns the offers' SDPs.
func (s *responderSetup) queryOffers(t *testing.T, method string, target dht.ID, n int) (*krpc.Return, []string) {
	t.Helper()
	var offers []bencode.Bytes
	var sdps []string
	for range n {
		o, _ := s.qsig.NewOffer(t.Context())
		offers = append(offers, encodeFull("offer", o.SDP(), qID, nil))
		sdps = append(sdps, o.SDP())
	}
	a := &krpc.Args{Extra: krpc.Extra{"signals": encodeList(offers)}}
	a.ID, a.Target, a.InfoHash = qID, target, target
	resp, err := s.q.Call(t.Context(), s.r.Addr(), &krpc.Query{Method: method, Args: a})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Return, sdps
}

// answers decodes the signals of a response.
func answers(t *testing.T, r *krpc.Return) []*signal {
	t.Helper()
	var out []*signal
	for _, raw := range decodeList(r.Extra["signals"]) {
		s := decodeSignal(raw)
		if s == nil {
			t.Fatalf("undecodable signal %q", raw)
		}
		out = append(out, s)
	}
	return out
}

// The responder relays each offer to one of its nodes and returns the answers aligned
// with the nodes, never more than the offers it got.
func TestResponderRelays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newResponderSetup(t)
		r := s.query(t, krpc.MethodFindNode, dht.RandomID(), 2)
		sigs := answers(t, r)
		if len(r.Nodes) != 2 || len(sigs) != 2 {
			t.Fatalf("%d nodes and %d signals for 2 offers", len(r.Nodes), len(sigs))
		}
		for i, sg := range sigs {
			if sg.Type != "answer" || sg.ID != string(r.Nodes[i].ID[:]) || !strings.HasPrefix(sg.SDP, "fake-answer") {
				t.Errorf("signal %d %+v does not answer for node %v", i, sg, r.Nodes[i].ID)
			}
		}
		// One offer: one entry, though R knows three nodes.
		if r := s.query(t, krpc.MethodFindNode, dht.RandomID(), 1); len(r.Nodes) != 1 || len(answers(t, r)) != 1 {
			t.Fatalf("one offer: %d nodes", len(r.Nodes))
		}
		// No offers at all: no entries.
		if r := s.query(t, krpc.MethodFindNode, dht.RandomID(), 0); len(r.Nodes) != 0 {
			t.Fatalf("no offers: %d nodes", len(r.Nodes))
		}
	})
}

// A target that does not answer leaves a placeholder (the querier and {id: querier}) when
// a later one did answer, so answer i still belongs to offer i; a failure at the end is cut.
func TestResponderPlaceholder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newResponderSetup(t)
		dead := s.targets[0]
		s.w.mem.SetFilter(func(d *memory.Datagram) bool {
			return d.To != dead.Addr() || !strings.Contains(string(d.Data), "peer_connection")
		})
		// Aim at the dead target: it is first among R's closest.
		r, offers := s.queryOffers(t, krpc.MethodFindNode, dead.ID(), 2)
		sigs := answers(t, r)
		if len(r.Nodes) != 2 || len(sigs) != 2 {
			t.Fatalf("%d nodes, %d signals; want a placeholder and an answer", len(r.Nodes), len(sigs))
		}
		if r.Nodes[0].ID != qID || sigs[0].ID != string(qID[:]) || sigs[0].Type != "" {
			t.Fatalf("position 0 is not the placeholder: %v %+v", r.Nodes[0], sigs[0])
		}
		if sigs[1].Type != "answer" || sigs[1].ID != string(r.Nodes[1].ID[:]) || !strings.HasPrefix(sigs[1].SDP, "fake-answer") {
			t.Fatalf("position 1: %+v for %v", sigs[1], r.Nodes[1])
		}
		// The answer at position 1 is the one to offer 1 (fake SDPs carry the offer's number).
		if strings.Fields(sigs[1].SDP)[1] != strings.Fields(offers[1])[1] {
			t.Fatalf("answer %q is not for offer %q", sigs[1].SDP, offers[1])
		}
		// With only one offer and the dead target first, nothing is left.
		if r := s.query(t, krpc.MethodFindNode, dead.ID(), 1); len(r.Nodes) != 0 || len(answers(t, r)) != 0 {
			t.Fatalf("trailing failure kept: %v", r.Nodes)
		}
	})
}

// Once one target answered, a target that does not is waited for RelayTimeout/3 more, not
// the whole RelayTimeout: the response carries the answer that came (and the placeholder)
// two thirds of a relay timeout sooner. With no answer at all, the whole RelayTimeout.
func TestResponderRelayGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newResponderSetup(t)
		dead := s.targets[0]
		s.w.mem.SetFilter(func(d *memory.Datagram) bool {
			return d.To != dead.Addr() || !strings.Contains(string(d.Data), "peer_connection")
		})
		start := time.Now()
		r := s.query(t, krpc.MethodFindNode, dead.ID(), 2)
		if took := time.Since(start); took != DefaultRelayTimeout/3 {
			t.Errorf("answered after %v, want RelayTimeout/3 (%v) after the live target's answer", took, DefaultRelayTimeout/3)
		}
		if sigs := answers(t, r); len(sigs) != 2 || sigs[1].Type != "answer" {
			t.Fatalf("signals %+v: want the placeholder and the live target's answer", sigs)
		}
		start = time.Now()
		if r := s.query(t, krpc.MethodFindNode, dead.ID(), 1); len(r.Nodes) != 0 {
			t.Fatalf("nodes %v for the dead target alone", r.Nodes)
		}
		if took := time.Since(start); took != DefaultRelayTimeout {
			t.Errorf("with no answer, answered after %v, want RelayTimeout (%v)", took, DefaultRelayTimeout)
		}
	})
}

// A target that answers neither the relay nor the probe ping (it vanished, its connection
// still up) is given up once the probe wait is over, not after RelayTimeout: R measured
// round trips of about nothing to its targets, so the wait is minProbeWait. The relay
// to a live target is still waited for and kept. A target that answers the ping but not
// the relay is waited for the whole RelayTimeout (TestResponderRelayGrace).
func TestResponderRelayProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newResponderSetup(t)
		gone := s.targets[0]
		s.w.mem.SetFilter(func(d *memory.Datagram) bool { return d.To != gone.Addr() && d.From != gone.Addr() })
		start := time.Now()
		r := s.query(t, krpc.MethodFindNode, gone.ID(), 1)
		if took := time.Since(start); took != minProbeWait {
			t.Errorf("answered after %v, want minProbeWait (%v)", took, minProbeWait)
		}
		if len(r.Nodes) != 0 {
			t.Fatalf("nodes %v for the vanished target alone", r.Nodes)
		}
		start = time.Now()
		r = s.query(t, krpc.MethodFindNode, gone.ID(), 2)
		if took := time.Since(start); took != minProbeWait {
			t.Errorf("with a live target too, answered after %v, want minProbeWait (%v)", took, minProbeWait)
		}
		if sigs := answers(t, r); len(sigs) != 2 || sigs[0].Type != "" || sigs[1].Type != "answer" || r.Nodes[1].ID == gone.ID() {
			t.Fatalf("signals %+v for %v: want the placeholder and the live target's answer", sigs, r.Nodes)
		}
	})
}

// On a transport that loses packets (the memory network is not transport.Reliable), a
// relay whose target answered the probe ping but not the relay by the end of the probe
// wait is sent again (krpc.WithResend): here the first peer_connection is lost, and the
// answer comes a round trip after the wait, not after RelayTimeout.
func TestResponderResendsLostRelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newResponderSetup(t)
		target := s.targets[0]
		var lost atomic.Bool
		s.w.mem.SetFilter(func(d *memory.Datagram) bool {
			return d.To != target.Addr() || !strings.Contains(string(d.Data), "peer_connection") || !lost.CompareAndSwap(false, true)
		})
		start := time.Now()
		r := s.query(t, krpc.MethodFindNode, target.ID(), 1)
		if took := time.Since(start); took != minProbeWait {
			t.Errorf("answered after %v, want minProbeWait (%v): the relay sent again then", took, minProbeWait)
		}
		if sigs := answers(t, r); !lost.Load() || len(sigs) != 1 || sigs[0].Type != "answer" || r.Nodes[0].ID != target.ID() {
			t.Fatalf("relay lost: %v; signals %+v for %v: want the target's answer", lost.Load(), sigs, r.Nodes)
		}
	})
}

// get_peers values are relayed too: to the peers themselves, over their connections.
func TestResponderRelaysValues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newResponderSetup(t)
		ih := dht.RandomID()
		for _, n := range s.targets[:2] {
			if _, err := n.Announce(t.Context(), ih, 0); err != nil {
				t.Fatal(err)
			}
		}
		r := s.query(t, krpc.MethodGetPeers, ih, 2)
		if len(r.Values) != 2 || len(r.Nodes) != 0 || len(answers(t, r)) != 2 {
			t.Fatalf("get_peers: %d values, %d nodes, %d signals", len(r.Values), len(r.Nodes), len(answers(t, r)))
		}
		// More peers than offers: only as many values as offers (the JS querier would crash
		// on more).
		if r := s.query(t, krpc.MethodGetPeers, ih, 1); len(r.Values) != 1 {
			t.Fatalf("one offer: %d values", len(r.Values))
		}
	})
}

// peer_connection: our own offer and an offer from a node we are connected to get the
// shortcut; a real offer gets an answer; a malformed one error 203.
func TestPeerConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWebNet(t, memory.LinkConfig{})
		n := w.add()
		relayer := w.rawNode(nil)
		w.fake.Dial(relayer.Transport().LocalAddr(), n.Addr())
		pc := func(sig bencode.Bytes) (*krpc.Return, error) {
			a := &krpc.Args{Extra: krpc.Extra{"signal": sig}}
			a.ID = idOf(0x77)
			resp, err := relayer.Call(t.Context(), n.Addr(), &krpc.Query{Method: MethodPeerConnection, Args: a})
			if err != nil {
				return nil, err
			}
			return resp.Return, nil
		}
		shortcut := func(r *krpc.Return) bool {
			s := decodeSignal(r.Extra["signal"])
			return s != nil && s.Type == "" && s.ID == idStr(n.ID()) && r.ID == n.ID()
		}
		own, _ := w.fake.Signaler(n.Addr()).NewOffer(t.Context())
		r, err := pc(encodeFull("offer", own.SDP(), n.ID(), nil))
		if err != nil || !shortcut(r) {
			t.Fatalf("our own offer: %v %v", r, err)
		}
		origin := w.add()
		o, _ := w.fake.Signaler(origin.Addr()).NewOffer(t.Context())
		r, err = pc(encodeFull("offer", o.SDP(), origin.ID(), []string{"x"}))
		if err != nil {
			t.Fatal(err)
		}
		ans := decodeSignal(r.Extra["signal"])
		if ans == nil || ans.Type != "answer" || ans.ID != idStr(n.ID()) {
			t.Fatalf("answer %+v", ans)
		}
		if _, err := o.Connect(t.Context(), ans.SDP); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the answerer learns who connected
		o2, _ := w.fake.Signaler(origin.Addr()).NewOffer(t.Context())
		if r, err := pc(encodeFull("offer", o2.SDP(), origin.ID(), nil)); err != nil || !shortcut(r) {
			t.Fatalf("offer from a node already connected: %v %v", r, err)
		}
		var ke *krpc.Error
		if _, err := pc(bencode.Bytes("d2:id3:abce")); !errors.As(err, &ke) || ke.Code != 203 {
			t.Fatalf("malformed signal: %v", err)
		}
		if _, err := pc(encodeShortcut(idOf(0x33))); !errors.As(err, &ke) || ke.Code != 203 {
			t.Fatalf("a signal that is not an offer: %v", err)
		}
		if _, err := pc(encodeFull("offer", "garbage", idOf(0x34), nil)); !errors.As(err, &ke) || ke.Code != 201 {
			t.Fatalf("an offer that cannot be answered: %v", err)
		}
	})
}

// A JS responder relays our own offer back to us while our query waits for it (the
// querier is among its nodes); we answer at once with the shortcut. It also misaligns
// signals after a failure (bencode drops nulls): we match answers to offers by node ID.
func TestQuerierWithJSLikeResponder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWebNet(t, memory.LinkConfig{})
		a := w.add()
		target := w.add() // a node the responder is connected to
		var relayed atomic.Pointer[krpc.Return]
		var jsLike *krpc.Server
		jsLike = w.rawNode(krpc.Mux{krpc.MethodFindNode: krpc.HandlerFunc(func(ctx context.Context, q *krpc.Query) (*krpc.Response, error) {
			offers := decodeList(q.Args.Extra["signals"])
			call := func(to netip.AddrPort, sig bencode.Bytes) *krpc.Return {
				args := &krpc.Args{Extra: krpc.Extra{"signal": sig}}
				args.ID = idOf(0x99)
				resp, err := jsLike.Call(ctx, to, &krpc.Query{Method: MethodPeerConnection, Args: args})
				if err != nil {
					t.Errorf("relay to %v: %v", to, err)
					return nil
				}
				return resp.Return
			}
			// Offer 0 goes to the querier itself, offer 1 to the target.
			relayed.Store(call(q.From, offers[0]))
			ans := call(target.Addr(), offers[1])
			r := ret(idOf(0x99))
			var qa, ta akrpc.NodeAddr
			qa.FromAddrPort(q.From)
			ta.FromAddrPort(target.Addr())
			// As if the self entry's signal had been null and dropped by bencode: the
			// target's answer moves to position 0.
			r.Nodes = []akrpc.NodeInfo{{ID: q.Args.ID, Addr: qa}, {ID: target.ID(), Addr: ta}}
			r.Extra = krpc.Extra{"signals": encodeList([]bencode.Bytes{ans.Extra["signal"]})}
			return &krpc.Response{Return: r}, nil
		})})
		w.fake.Dial(a.Addr(), jsLike.Transport().LocalAddr())
		w.fake.Dial(jsLike.Transport().LocalAddr(), target.Addr())
		res, err := a.Bootstrap(t.Context(), jsLike.Transport().LocalAddr())
		if err != nil {
			t.Fatal(err)
		}
		r := relayed.Load()
		if s := decodeSignal(r.Extra["signal"]); s == nil || s.Type != "" || s.ID != idStr(a.ID()) {
			t.Fatalf("our own offer relayed back: %+v", s)
		}
		found := false
		for _, n := range res.Closest {
			found = found || n.ID == target.ID() && n.Addr == target.Addr()
		}
		if !found {
			t.Fatalf("the misaligned answer was not applied to the right offer: closest %v", res.Closest)
		}
	})
}

func idStr(id dht.ID) string { return string(id[:]) }

func TestNewNodeDefaults(t *testing.T) {
	w := newWebNet(t, memory.LinkConfig{})
	tr, _ := w.mem.Listen(netip.AddrPort{})
	defer tr.Close()
	cfg := &dht.Config{}
	n, err := NewNode(tr, w.fake.Signaler(tr.LocalAddr()), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if cfg.K != 0 || len(cfg.KRPC.Extensions) != 0 {
		t.Fatal("NewNode changed the caller's Config")
	}
	if _, err := NewNode(nil, nil, nil, nil); err == nil {
		t.Fatal("nil transport accepted")
	}
}

// The probe wait is twice the soft deadline of the target's round trips, or of the
// network-wide ones when the target has none, within [minProbeWait, RelayTimeout/3].
func TestProbeWait(t *testing.T) {
	mem := memory.NewNetwork(nil)
	e, err := New(NewFakeNetwork(mem).Signaler(netip.MustParseAddrPort("10.0.0.1:1")), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	near, far := netip.MustParseAddrPort("10.0.0.2:1"), netip.MustParseAddrPort("10.0.0.3:1")
	if got := e.probeWait(near); got != DefaultRelayTimeout/3 {
		t.Errorf("no round trip measured: %v, want RelayTimeout/3", got)
	}
	e.learn(idOf(2), near, true) // an open connection: its round trips are kept
	e.sample(far, 50*time.Millisecond)
	// far is no connection of ours: only the network-wide estimate has its sample. 50 ms,
	// rttvar 25 ms: a soft deadline of 150 ms, a wait of 300 ms.
	if got := e.probeWait(far); got != 300*time.Millisecond {
		t.Errorf("after one 50ms round trip: %v, want 300ms", got)
	}
	e.sample(near, time.Millisecond)
	if got := e.probeWait(near); got != minProbeWait {
		t.Errorf("1ms to the target itself: %v, want minProbeWait", got)
	}
	e.sample(far, time.Second) // above RelayTimeout/3 and still counted
	if got := e.probeWait(far); got != DefaultRelayTimeout/3 {
		t.Errorf("after a 1s round trip: %v, want RelayTimeout/3", got)
	}
	e.forget(near)
	if _, kept := e.trips[near]; kept {
		t.Error("the round trips of a closed connection are kept")
	}
}
