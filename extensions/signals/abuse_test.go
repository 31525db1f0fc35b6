package signals

import (
	"context"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/internal/bubble"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/memory"
)

// relaySetup is a responder R with the extension configured by ecfg, n targets of ours
// in its table, and a raw querier Q linked to R. It counts the peer_connection queries
// that cross the network.
type relaySetup struct {
	w       *webNet
	r       *dht.Node
	ext     *Extension
	targets []*dht.Node
	q       *krpc.Server
	qsig    *FakeSignaler
	relays  atomic.Int64
	watch   atomic.Pointer[dht.ID] // an ID whose offers must never be relayed
	claimed atomic.Int64           // peer_connection relays carrying watch
}

func newRelaySetup(t *testing.T, n int, cfg *dht.Config, ecfg *Config) *relaySetup {
	w := newWebNet(t, memory.LinkConfig{})
	w.k = 32
	s := &relaySetup{w: w}
	w.mem.SetFilter(func(d *memory.Datagram) bool {
		if strings.Contains(string(d.Data), "1:q15:peer_connection") {
			s.relays.Add(1)
			if w := s.watch.Load(); w != nil && strings.Contains(string(d.Data), string(w[:])) {
				s.claimed.Add(1)
			}
		}
		return true
	})
	tr, err := w.mem.Listen(netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	c := dht.Config{K: 32}
	if cfg != nil {
		c = *cfg
		c.K = 32
	}
	c.KRPC.SourceRate = -1
	ec := Config{K: 2}
	if ecfg != nil {
		ec = *ecfg
	}
	if s.ext, err = New(w.fake.Signaler(tr.LocalAddr()), &ec); err != nil {
		t.Fatal(err)
	}
	c.KRPC.Extensions = []krpc.Extension{s.ext}
	if s.r, err = dht.New(tr, &c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.r.Close(); tr.Close() })
	for range n {
		tn := w.add()
		if err := w.join(tn, s.r); err != nil {
			t.Fatal(err)
		}
		s.targets = append(s.targets, tn)
	}
	synctest.Wait()
	if got := len(s.r.Nodes()); got != n {
		t.Fatalf("R knows %d nodes, want %d", got, n)
	}
	s.q, s.qsig = s.querier(t)
	// The joins relayed offers: let the budgets fill up again, and count from here.
	time.Sleep(30 * time.Second)
	synctest.Wait()
	s.relays.Store(0)
	s.ext.relayed.Store(0)
	s.ext.refused.Store(0)
	return s
}

// querier is a raw KRPC node linked to R, with a signaler for its offers. It answers no
// query, so R's ping to verify it times out: it never enters R's table, and so is never
// a target that a well-behaved querier's offers are relayed to (and lost).
func (s *relaySetup) querier(t *testing.T) (*krpc.Server, *FakeSignaler) {
	q := s.w.rawNode(krpc.HandlerFunc(func(context.Context, *krpc.Query) (*krpc.Response, error) { return nil, krpc.ErrNoReply }))
	s.w.fake.Dial(q.Transport().LocalAddr(), s.r.Addr())
	return q, s.w.fake.Signaler(q.Transport().LocalAddr())
}

// signalled sends find_node from q, with the given signals, and returns the response.
func (s *relaySetup) signalled(t *testing.T, q *krpc.Server, id dht.ID, sigs []bencode.Bytes) *krpc.Return {
	t.Helper()
	a := &krpc.Args{Extra: krpc.Extra{"signals": encodeList(sigs)}}
	a.ID, a.Target = id, dht.RandomID()
	resp, err := q.Call(t.Context(), s.r.Addr(), &krpc.Query{Method: krpc.MethodFindNode, Args: a})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Return
}

func (s *relaySetup) offers(t *testing.T, sig *FakeSignaler, id dht.ID, n int) []bencode.Bytes {
	var out []bencode.Bytes
	for range n {
		o, _ := sig.NewOffer(t.Context())
		out = append(out, encodeFull("offer", o.SDP(), id, nil))
	}
	return out
}

// One query's offers are relayed to at most MaxRelays targets, however many it carries
// and however many targets the response holds.
func TestRelaysPerQuery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newRelaySetup(t, 12, nil, &Config{K: 2, MaxRelays: 3})
		r := s.signalled(t, s.q, qID, s.offers(t, s.qsig, qID, 12))
		if got := s.relays.Load(); got != 3 {
			t.Fatalf("%d peer_connection relays for one query of 12 offers, want MaxRelays = 3", got)
		}
		if n := len(answers(t, r)); n != 3 || len(r.Nodes) != 3 {
			t.Fatalf("%d answers and %d nodes, want 3", n, len(r.Nodes))
		}
		if s.ext.relayed.Load() != 3 || s.ext.refused.Load() != 9 {
			t.Fatalf("relayed %d, refused %d", s.ext.relayed.Load(), s.ext.refused.Load())
		}
	})
	// The default is 8.
	synctest.Test(t, func(t *testing.T) {
		s := newRelaySetup(t, 12, nil, nil)
		s.signalled(t, s.q, qID, s.offers(t, s.qsig, qID, 12))
		if got := s.relays.Load(); got != DefaultMaxRelays {
			t.Fatalf("%d relays by default, want %d", got, DefaultMaxRelays)
		}
	})
}

// An offer is relayed only when its id is the querier's: the target binds that ID to
// the connection it opens. A shortcut is relayed only when it names the querier or us.
func TestRelayOfferMustBeQueriers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newRelaySetup(t, 4, nil, nil)
		victim := s.targets[3].ID()
		sigs := s.offers(t, s.qsig, victim, 2)                   // offers claiming another node's ID
		sigs = append(sigs, encodeShortcut(idOf(0x99)))          // a shortcut naming a third node
		sigs = append(sigs, encodeFull("answer", "x", qID, nil)) // an answer is no offer
		r := s.signalled(t, s.q, qID, sigs)
		if got := s.relays.Load(); got != 0 {
			t.Fatalf("%d signals relayed that were not the querier's own", got)
		}
		if len(r.Nodes) != 0 || len(answers(t, r)) != 0 {
			t.Fatalf("response holds %d nodes, %d signals", len(r.Nodes), len(answers(t, r)))
		}
		// The querier's own offers and shortcuts (its ID, or ours) are relayed.
		sigs = append(s.offers(t, s.qsig, qID, 1), encodeShortcut(qID), encodeShortcut(s.r.ID()))
		s.signalled(t, s.q, qID, sigs)
		if got := s.relays.Load(); got != 3 {
			t.Fatalf("%d of the querier's 3 signals relayed", got)
		}
	})
}

// Relays spend their own budgets: per source and node-wide, never the node's outbound
// query budget. During a flood of signalled queries, each with more offers than
// MaxRelays and one claiming a victim's ID, and of pings claiming that ID: the
// per-query and per-source caps hold, no offer claiming another's ID is relayed, the
// victim keeps its ID, another querier still gets its offers relayed, the node's own
// ping is not held up, and the node's goroutines and limiter state return to their
// baseline after.
func TestRelayFlood(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newRelaySetup(t, 4, nil, &Config{K: 2, MaxRelays: 2, SourceRelayRate: 1, SourceRelayBurst: 10, RelayRate: 10, RelayBurst: 30})
		victim := s.targets[3]
		vid := victim.ID()
		s.watch.Store(&vid)
		synctest.Wait()
		goroutines := bubble.Goroutines()
		// The flooder: 50 queries at once from one source, each of 4 offers (the
		// first claiming the victim's ID), and 50 pings claiming the victim's ID.
		done := make(chan struct{})
		var overCap atomic.Int32
		for range 50 {
			go func() {
				defer func() { done <- struct{}{} }()
				sigs := append(s.offers(t, s.qsig, vid, 1), s.offers(t, s.qsig, qID, 3)...)
				a := &krpc.Args{Extra: krpc.Extra{"signals": encodeList(sigs)}}
				a.ID, a.Target = qID, dht.RandomID()
				resp, err := s.q.Call(t.Context(), s.r.Addr(), &krpc.Query{Method: krpc.MethodFindNode, Args: a})
				if err == nil && len(decodeList(resp.Return.Extra["signals"])) > 2 {
					overCap.Add(1)
				}
			}()
			go func() {
				defer func() { done <- struct{}{} }()
				a := &krpc.Args{}
				a.ID = vid
				s.q.Call(t.Context(), s.r.Addr(), &krpc.Query{Method: krpc.MethodPing, Args: a})
			}()
		}
		// A well-behaved querier from another source, during the flood.
		q2, sig2 := s.querier(t)
		q2ID := idOf(0x61)
		if r := s.signalled(t, q2, q2ID, s.offers(t, sig2, q2ID, 2)); len(answers(t, r)) != 2 {
			t.Fatalf("a well-behaved querier got %d answers during the flood, want 2: %v %q relayed %d refused %d", len(answers(t, r)), r.Nodes, r.Extra["signals"], s.ext.relayed.Load(), s.ext.refused.Load())
		}
		if _, err := s.r.Ping(t.Context(), s.targets[0].Addr()); err != nil {
			t.Fatalf("the node's ping during the flood: %v", err)
		}
		for range 2 * 50 {
			<-done
		}
		synctest.Wait()
		if got := s.relays.Load(); got != 10+2 {
			t.Fatalf("%d relays: want the flooder's burst of 10 and the other querier's 2", got)
		}
		if n := overCap.Load(); n != 0 {
			t.Fatalf("%d responses to the flood hold more signals than MaxRelays 2", n)
		}
		if n := s.claimed.Load(); n != 0 {
			t.Fatalf("%d offers claiming the victim's ID were relayed", n)
		}
		if addr, ok := s.ext.connected(vid); !ok || addr != victim.Addr() {
			t.Fatalf("after the flood the victim's ID is bound to %v %v, want %v", addr, ok, victim.Addr())
		}
		// Node-wide: 30 more sources of one query each; only the global burst is left.
		for i := range 20 {
			q, sig := s.querier(t)
			id := idOf(byte(0x80 + i))
			s.signalled(t, q, id, s.offers(t, sig, id, 2))
		}
		if got := s.relays.Load(); got != 30 {
			t.Fatalf("%d relays in all, want the node-wide burst of 30", got)
		}
		time.Sleep(5 * time.Second) // connections settle, relays time out
		synctest.Wait()
		if l := s.ext.srcRelays.Len(); l > maxRelaySources {
			t.Fatalf("the per-source relay limit tracks %d sources", l)
		}
		if g := bubble.Goroutines(); g > goroutines+21 {
			// Each of the 21 queriers the test added has a KRPC server (its read loop);
			// nothing else stays.
			t.Fatalf("%d goroutines after the flood, %d before and 21 queriers added", g, goroutines)
		}
	})
}

// A node's claim of an ID bound to another open connection, whose node said it itself,
// does not take the ID over: else one query carrying a victim's ID would make our
// lookups use the claimant's connection for the victim. A node's own word displaces what
// a relayed offer said.
func TestClaimedIDBinding(t *testing.T) {
	e, err := New(NewFakeNetwork(nil).Signaler(netip.AddrPort{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	v, x := idOf(0x42), idOf(0x43)
	real, liar := netip.MustParseAddrPort("192.0.2.1:1"), netip.MustParseAddrPort("198.51.100.1:1")
	e.learn(v, real, true)
	e.learn(v, liar, true)
	if addr, _ := e.connected(v); addr != real {
		t.Fatalf("a second claim of an ID took it: connected at %v, want %v", addr, real)
	}
	e.learn(v, liar, false)
	if addr, _ := e.connected(v); addr != real {
		t.Fatalf("hearsay took a confirmed ID: %v", addr)
	}
	// Hearsay first (an offer claimed x at liar), then x's own word from real2.
	real2 := netip.MustParseAddrPort("192.0.2.2:1")
	e.learn(x, liar, false)
	e.learn(x, real2, true)
	if addr, _ := e.connected(x); addr != real2 {
		t.Fatalf("a node's own word did not displace hearsay: %v", addr)
	}
	// Hearsay does not rename a connection whose node said who it is.
	e.learn(idOf(0x44), real2, false)
	if addr, ok := e.connected(idOf(0x44)); ok {
		t.Fatalf("hearsay renamed a confirmed connection: %v", addr)
	}
	// A connection may change its own ID (a BEP 42 change).
	e.learn(idOf(0x45), real2, true)
	if addr, _ := e.connected(idOf(0x45)); addr != real2 {
		t.Fatalf("a node's new ID not learned: %v", addr)
	}
	if _, ok := e.connected(x); ok {
		t.Fatal("the old ID still bound")
	}
}

// Over the network: a node that queries R with the ID of one of R's connections does not
// take that ID.
func TestQueryCannotStealID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newRelaySetup(t, 2, nil, nil)
		victim := s.targets[0]
		a := &krpc.Args{}
		a.ID = victim.ID()
		if _, err := s.q.Call(context.Background(), s.r.Addr(), &krpc.Query{Method: krpc.MethodPing, Args: a}); err != nil {
			t.Fatal(err)
		}
		if addr, ok := s.ext.connected(victim.ID()); !ok || addr != victim.Addr() {
			t.Fatalf("after a ping claiming its ID, the victim is at %v %v, want %v", addr, ok, victim.Addr())
		}
	})
}
