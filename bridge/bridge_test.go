package bridge

import (
	"crypto/ed25519"
	"errors"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/extensions/signals"
	"github.com/wdht/wdht/transport/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// world is a mainline network and a WebTorrent-style network joined by a bridge, both
// in memory: the web side is linked (nodes reach only the nodes they connected to).
type world struct {
	t        *testing.T
	main     *memory.Network
	web      *memory.Network
	fake     *signals.FakeNetwork
	bridge   *Bridge
	mainline []*dht.Node // plain mainline nodes
	webNodes []*dht.Node // WebRTC-only nodes
}

func newWorld(t *testing.T, cfg *Config, nMain, nWeb int) *world {
	t.Helper()
	w := &world{t: t, main: memory.NewNetwork(nil), web: memory.NewNetwork(&memory.Config{Linked: true})}
	w.fake = signals.NewFakeNetwork(w.web)
	mt, err := w.main.Listen(netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	wt, err := w.web.Listen(netip.AddrPort{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(mt, wt, w.fake.Signaler(wt.LocalAddr()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(); mt.Close(); wt.Close() })
	w.bridge = b
	for range nMain {
		tr, _ := w.main.Listen(netip.AddrPort{})
		n, err := dht.New(tr, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close(); tr.Close() })
		if _, err := n.Bootstrap(t.Context(), b.Mainline.Addr()); err != nil {
			t.Fatal(err)
		}
		w.mainline = append(w.mainline, n)
	}
	for range nWeb {
		tr, _ := w.web.Listen(netip.AddrPort{})
		n, err := signals.NewNode(tr, w.fake.Signaler(tr.LocalAddr()), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close(); tr.Close() })
		w.fake.Dial(tr.LocalAddr(), b.Web.Addr())
		if _, err := n.Bootstrap(t.Context(), b.Web.Addr()); err != nil {
			t.Fatal(err)
		}
		w.webNodes = append(w.webNodes, n)
	}
	return w
}

// Items that exist only on the mainline DHT are read by WebRTC-only nodes through the
// bridge: immutable and unsalted mutable ones are cached in the shared store, salted
// ones (which the bridge cannot check without the salt) are passed on for the reader to
// check, and never stored.
func TestWebReadsMainlineItems(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One WebRTC-only reader, whose only connection is the bridge, as a browser's is:
		// a get reaches the bridge only when it is among the nodes a lookup asks.
		w := newWorld(t, nil, 6, 1)
		// The items live on three mainline nodes only (stored straight into their stores:
		// a network put would store them on the bridge too, in so small a network).
		_, key, _ := ed25519.GenerateKey(nil)
		imm, _ := dht.NewImmutableItem("from the mainline DHT")
		plain, _ := dht.NewMutableItem(key, nil, 3, "mutable, no salt")
		salted, _ := dht.NewMutableItem(key, []byte("salt"), 7, "mutable, salted")
		for _, it := range []*dht.Item{imm, plain, salted} {
			for _, n := range w.mainline[:3] {
				if err := n.Items().Put(it, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		reader := w.webNodes[0]
		for _, c := range []struct {
			it   *dht.Item
			opts *dht.GetOptions
		}{{imm, nil}, {plain, nil}, {salted, &dht.GetOptions{Salt: []byte("salt")}}} {
			gr, err := reader.Get(t.Context(), c.it.Target(), c.opts)
			if err != nil {
				t.Fatalf("%v: %v", c.it, err)
			}
			if string(gr.Item.V) != string(c.it.V) || gr.Item.Seq != c.it.Seq {
				t.Fatalf("read %v, want %v", gr.Item, c.it)
			}
		}
		if _, ok := w.bridge.Items().Get(imm.Target()); !ok {
			t.Error("the immutable item was not cached")
		}
		if _, ok := w.bridge.Items().Get(plain.Target()); !ok {
			t.Error("the unsalted mutable item was not cached")
		}
		if _, ok := w.bridge.Items().Get(salted.Target()); ok {
			t.Error("the salted item, unchecked, was stored")
		}
		// Three gets reached the WebRTC node, each for an item it lacked: three fallbacks
		// to the mainline network, each found (later gets of the cached ones are answered
		// from the store).
		if st := w.bridge.Stats(); st.ToMainline.Found < 3 || st.ToMainline.Skipped != 0 || st.ToWeb != (FallbackStats{}) {
			t.Errorf("bridge stats %+v; want at least 3 fallbacks to mainline found, none to web", st)
		}
	})
}

// The reverse: an item put only on the WebTorrent side is read by a mainline node.
func TestMainlineReadsWebItems(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, nil, 3, 4)
		it, _ := dht.NewImmutableItem("from a browser")
		if _, err := w.webNodes[0].Put(t.Context(), it, nil); err != nil {
			t.Fatal(err)
		}
		gr, err := w.mainline[1].Get(t.Context(), it.Target(), nil)
		if err != nil || string(gr.Item.V) != string(it.V) {
			t.Fatalf("%+v, %v", gr, err)
		}
	})
}

// The bridge's own lookups and writes span both networks.
func TestBridgeAPI(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, nil, 4, 4)
		ih := dht.RandomID()
		if _, err := w.mainline[0].Announce(t.Context(), ih, 1111); err != nil {
			t.Fatal(err)
		}
		if _, err := w.webNodes[0].Announce(t.Context(), ih, 0); err != nil {
			t.Fatal(err)
		}
		var peers []netip.AddrPort
		if _, err := w.bridge.GetPeers(t.Context(), ih, func(p netip.AddrPort, _ dht.NodeInfo) bool { peers = append(peers, p); return true }); err != nil {
			t.Fatal(err)
		}
		if len(peers) != 2 {
			t.Fatalf("peers from both networks: %v", peers)
		}

		ih2 := dht.RandomID()
		if _, _, err := w.bridge.Announce(t.Context(), ih2, 2222); err != nil {
			t.Fatal(err)
		}
		for _, n := range []*dht.Node{w.mainline[3], w.webNodes[3]} {
			found := false
			n.GetPeers(t.Context(), ih2, func(netip.AddrPort, dht.NodeInfo) bool { found = true; return false })
			if !found {
				t.Errorf("node on %v did not find the bridge's announce", n.Addr())
			}
		}

		it, _ := dht.NewImmutableItem("both")
		if _, _, err := w.bridge.Put(t.Context(), it, nil); err != nil {
			t.Fatal(err)
		}
		if gr, err := w.bridge.Get(t.Context(), it.Target(), nil); err != nil || string(gr.Item.V) != string(it.V) {
			t.Fatalf("bridge get: %+v %v", gr, err)
		}
		if _, err := w.bridge.Get(t.Context(), dht.RandomID(), nil); !errors.Is(err, dht.ErrNotFound) {
			t.Fatalf("bridge get of nothing: %v", err)
		}
	})
}

// With fallbacks turned off, a get for an item only the mainline side has finds nothing
// on the web side.
func TestFallbackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, &Config{FallbackRate: -1}, 4, 1)
		it, _ := dht.NewImmutableItem("mainline only")
		for _, n := range w.mainline {
			n.Items().Put(it, nil)
		}
		if _, err := w.webNodes[0].Get(t.Context(), it.Target(), nil); !errors.Is(err, dht.ErrNotFound) {
			t.Fatalf("with fallbacks off: %v", err)
		}
	})
}

func TestConfig(t *testing.T) {
	if _, err := New(nil, nil, nil, nil); err == nil {
		t.Fatal("nil transports accepted")
	}
	mem := memory.NewNetwork(nil)
	a, _ := mem.Listen(netip.AddrPort{})
	b, _ := mem.Listen(netip.AddrPort{})
	defer a.Close()
	defer b.Close()
	fake := signals.NewFakeNetwork(mem)
	for _, c := range []*Config{{FallbackTimeout: -1}, {FallbackConcurrency: -1}, {Mainline: dht.Config{K: -1}}, {Web: dht.Config{Alpha: -1}}} {
		if br, err := New(a, b, fake.Signaler(b.LocalAddr()), c); err == nil {
			br.Close()
			t.Errorf("config %+v accepted", c)
		}
	}
}

// The fallbacks are bounded in rate and in time.
func TestFallbackBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, &Config{FallbackRate: 1}, 4, 1)
		a, _ := dht.NewImmutableItem("first")
		b, _ := dht.NewImmutableItem("second")
		for _, n := range w.mainline {
			n.Items().Put(a, nil)
			n.Items().Put(b, nil)
		}
		reader := w.webNodes[0]
		if _, err := reader.Get(t.Context(), a.Target(), nil); err != nil {
			t.Fatalf("first fallback: %v", err)
		}
		if _, err := reader.Get(t.Context(), b.Target(), nil); !errors.Is(err, dht.ErrNotFound) {
			t.Fatalf("a second fallback within the second (rate 1/s): %v", err)
		}
		time.Sleep(time.Second)
		if _, err := reader.Get(t.Context(), b.Target(), nil); err != nil {
			t.Fatalf("a fallback a second later: %v", err)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, &Config{FallbackTimeout: 100 * time.Millisecond}, 4, 1)
		it, _ := dht.NewImmutableItem("far away")
		for _, n := range w.mainline {
			n.Items().Put(it, nil)
		}
		// The mainline network is now slow: a lookup there takes seconds.
		for _, n := range w.mainline {
			w.main.SetLink(w.bridge.Mainline.Addr().Addr(), n.Addr().Addr(), memory.LinkConfig{Delay: time.Second})
		}
		start := time.Now()
		if _, err := w.webNodes[0].Get(t.Context(), it.Target(), nil); !errors.Is(err, dht.ErrNotFound) {
			t.Fatalf("a fallback past its time bound: %v", err)
		}
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Fatalf("the get waited %v for a fallback bounded at 100ms", d)
		}
	})
}

// TestServesOnlyUsablePeers: the rule of the package doc, on the memory networks. A
// WebRTC peer's implied-port announce (a data channel's address) never reaches a
// mainline get_peers; its explicit-port announce does; a mainline peer reaches a WebRTC
// querier as a plain address (signals.PeersKey), not a value offers are relayed to; the
// bridge's own GetPeers returns all.
func TestServesOnlyUsablePeers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorld(t, nil, 3, 2)
		implied, explicit, mainline := dht.RandomID(), dht.RandomID(), dht.RandomID()
		webPeer := w.webNodes[0]
		if _, err := webPeer.Announce(t.Context(), implied, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := webPeer.Announce(t.Context(), explicit, 4242); err != nil {
			t.Fatal(err)
		}
		if _, err := w.mainline[0].Announce(t.Context(), mainline, 5555); err != nil {
			t.Fatal(err)
		}
		find := func(n *dht.Node, ih dht.ID) []netip.AddrPort {
			var out []netip.AddrPort
			if _, err := n.GetPeers(t.Context(), ih, func(p netip.AddrPort, _ dht.NodeInfo) bool { out = append(out, p); return true }); err != nil {
				t.Fatal(err)
			}
			return out
		}
		// The bridge stored all three (the WebRTC one as a connection address).
		for _, ih := range []dht.ID{implied, explicit, mainline} {
			if len(w.bridge.Peers().Peers(ih, 10)) != 1 {
				t.Fatalf("the bridge did not store the peer of %v", ih)
			}
		}
		asker := w.mainline[2]
		if got := find(asker, implied); len(got) != 0 {
			t.Errorf("a mainline get_peers returned a WebRTC connection address: %v", got)
		}
		if got, want := find(asker, explicit), netip.AddrPortFrom(webPeer.Addr().Addr(), 4242); len(got) != 1 || got[0] != want {
			t.Errorf("a mainline get_peers for a WebRTC explicit-port announce got %v, want [%v]", got, want)
		}
		mainlinePeer := netip.AddrPortFrom(w.mainline[0].Addr().Addr(), 5555)
		// A WebRTC node gets the mainline peer, as a plain address (signals.PeersKey),
		// from the bridge, the node that returned it.
		var from []dht.NodeInfo
		got, err := func() (got []netip.AddrPort, err error) {
			_, err = w.webNodes[1].GetPeers(t.Context(), mainline, func(p netip.AddrPort, f dht.NodeInfo) bool {
				got, from = append(got, p), append(from, f)
				return true
			})
			return got, err
		}()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != mainlinePeer || from[0].ID != w.bridge.Web.ID() {
			t.Errorf("a WebRTC get_peers for a mainline peer got %v from %v, want [%v] from the bridge %v", got, from, mainlinePeer, w.bridge.Web.ID())
		}
		// ... but not as a value, to which an offer would be relayed.
		if got := w.bridge.Web.Peers().PeersFor(mainline, 10, ServeWeb); len(got) != 0 {
			t.Errorf("the bridge's web node would relay offers to the mainline peer %v", got)
		}
		var all []netip.AddrPort
		if _, err := w.bridge.GetPeers(t.Context(), mainline, func(p netip.AddrPort, _ dht.NodeInfo) bool { all = append(all, p); return true }); err != nil {
			t.Fatal(err)
		}
		if len(all) != 1 || all[0] != mainlinePeer {
			t.Errorf("Bridge.GetPeers of the mainline peer got %v, want [%v]", all, mainlinePeer)
		}
		if got := find(w.webNodes[1], implied); len(got) != 1 || got[0] != webPeer.Addr() {
			t.Errorf("a WebRTC get_peers for a WebRTC implied-port peer got %v, want [%v]", got, webPeer.Addr())
		}
	})
}
