//go:build linux

package webtorrent_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/extensions/signals"
	"github.com/wdht/wdht/transport/webrtc"
)

// goNode is one of our WebRTC DHT nodes: a loopback WebRTC transport and a dht.Node with
// the WebTorrent extension (signals.NewNode), optionally running a signalling server.
type goNode struct {
	name string
	tr   *webrtc.Transport
	n    *dht.Node
	addr netip.AddrPort // the signalling server's address; zero for a WebRTC-only node
	logs *logs
}

// goOpts configure a goNode.
type goOpts struct {
	signalling bool // run a signalling server
	id         dht.ID
	k          int           // the DHT's K; 0: the extension's default (2, the JS's)
	readyDelay time.Duration // webrtc.Config.ReadyDelay; 0: the default
}

// newGoNode starts one of our nodes in the lo-only namespace; it closes with the test.
// With WDHT_INTEROP_LOG set, its debug log is shown when the test fails.
func newGoNode(t testing.TB, name string, o goOpts) *goNode {
	t.Helper()
	l := &logs{}
	level := hclog.Warn
	if os.Getenv("WDHT_INTEROP_LOG") != "" {
		level = hclog.Debug
	}
	lg := hclog.New(&hclog.LoggerOptions{Name: name, Level: level, Output: l})
	tcfg := webrtc.Config{
		Loopback: true,
		// Every relay and every signalling client comes from 127.0.0.1 here: the per-IP
		// cap on pending offers and answers would count the whole network as one peer.
		MaxPendingPerIP: 1024,
		MaxPending:      1024,
		Logger:          lg,
		ReadyDelay:      o.readyDelay,
	}
	tr, err := webrtc.New(&tcfg)
	if err != nil {
		t.Fatal(err)
	}
	g := &goNode{name: name, tr: tr, logs: l}
	cfg := &dht.Config{ID: o.id, K: o.k, Logger: lg}
	cfg.KRPC.SourceRate = -1 // every node is 127.0.0.1
	// Every querier is 127.0.0.1 too: the per-source relay limit would let the whole
	// network have 20 offers relayed at once.
	g.n, err = signals.NewNode(tr, signals.WebRTC(tr), cfg, &signals.Config{SourceRelayRate: -1})
	if err != nil {
		tr.Close()
		t.Fatal(err)
	}
	var stopServer func()
	if o.signalling {
		// As above: the per-source connection cap would count the network as one host.
		srv, err := webrtc.NewServer(tr, &webrtc.ServerConfig{MaxClientsPerIP: 1024})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		g.addr = netip.MustParseAddrPort(ln.Addr().String())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ln) }()
		stopServer = func() {
			srv.Close()
			if err := <-done; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("%s: Serve: %v", name, err)
			}
		}
	}
	t.Cleanup(func() {
		if stopServer != nil {
			stopServer()
		}
		g.n.Close()
		tr.Close()
		if t.Failed() && os.Getenv("WDHT_INTEROP_LOG") != "" {
			t.Logf("%s: stats %+v\nlog:\n%s", name, tr.Stats(), l.String())
		}
	})
	return g
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// findAnnouncer runs get_peers for ih on g, stopping at the first peer, and checks that
// the peer is the node want by pinging it over the connection the lookup made. It returns
// how long the lookup took.
func findAnnouncer(ctx context.Context, g *goNode, ih dht.ID, want dht.ID) (time.Duration, error) {
	start := time.Now()
	var peers []netip.AddrPort
	lr, err := g.n.GetPeers(ctx, ih, func(p netip.AddrPort, _ dht.NodeInfo) bool {
		peers = append(peers, p)
		return false
	})
	took := time.Since(start)
	if len(peers) == 0 {
		return took, fmt.Errorf("%s: get_peers %v found no peer (%v); the lookup: %+v", g.name, ih, err, lr)
	}
	id, err := g.n.Ping(ctx, peers[0])
	if err != nil {
		return took, fmt.Errorf("%s: get_peers %v found %v, which does not answer a ping: %w", g.name, ih, peers[0], err)
	}
	if id != want {
		return took, fmt.Errorf("%s: get_peers %v found %v, which is node %v, not the announcer %v", g.name, ih, peers[0], id, want)
	}
	return took, nil
}

// connCounts returns how many connections each node has open.
func connCounts(nodes []*goNode) []int {
	c := make([]int, len(nodes))
	for i, g := range nodes {
		c[i] = len(g.tr.Peers())
	}
	return c
}

func summary(xs []int) string {
	s := slices.Clone(xs)
	slices.Sort(s)
	return fmt.Sprintf("min %d, median %d, max %d", s[0], s[len(s)/2], s[len(s)-1])
}

func durSummary(ds []time.Duration) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("min %v, median %v, max %v", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]))
}

// TestGoNetwork30 runs 30 of our nodes over real WebRTC (pion, loopback, in the lo-only
// namespace): one signalling node, and 29 that bootstrap from it at once; every other
// connection is opened through the extension's peer_connection relays. Ten nodes announce
// an infohash each and ten others look them up (each infohash is far from its looker, so
// that the looker does not store it itself): every get_peers finds its announcer, checked
// with a ping over the connection the lookup opened. Then BEP 44: items put by some nodes
// are read back by others. The log has the connections of every node.
//
// The nodes have K=8 (WDHT_WEBRTC_K overrides it). With the JS's K=2, the default of
// signals.NewNode, a network this fresh (no maintenance has refreshed its tables yet)
// sends some lookups to other "closest" nodes than the announce went to: 19 of 60 missed
// in 6 runs on 2026-12-05 (README, Interop, with the figures per run), and 1 to 4% on the
// memory network with the same schedule (the DHT's lookups, not the transport), where a
// few minutes of maintenance bring it to none.
func TestGoNetwork30(t *testing.T) {
	require(t, func() error { return nil })
	t.Parallel()
	const total, pairs = 30, 10
	k := 8
	if v, err := strconv.Atoi(os.Getenv("WDHT_WEBRTC_K")); err == nil && v > 0 {
		k = v
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	start := time.Now()
	nodes := []*goNode{newGoNode(t, "s", goOpts{signalling: true, k: k})}
	for i := 1; i < total; i++ {
		nodes = append(nodes, newGoNode(t, fmt.Sprintf("n%02d", i), goOpts{k: k}))
	}
	boot := make([]time.Duration, total-1)
	var wg sync.WaitGroup
	for i, g := range nodes[1:] {
		wg.Go(func() {
			t0 := time.Now()
			if _, err := g.n.Bootstrap(ctx, nodes[0].addr); err != nil {
				t.Errorf("%s: bootstrap: %v", g.name, err)
			}
			boot[i] = time.Since(t0)
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("K=%d: %d nodes bootstrapped from s in %v (each: %s); connections per node: %s", k, total-1,
		time.Since(start).Round(time.Millisecond), durSummary(boot), summary(connCounts(nodes)))

	// Announcers n01..n10. Each infohash is looked up by another node, among n11..n29,
	// that does not store it itself (the infohash is far from it, and we check).
	ihs := make([]dht.ID, pairs)
	t0 := time.Now()
	for i := range pairs {
		ihs[i] = nodes[1+pairs+i].n.ID()
		ihs[i][0] ^= 0x80 // n(11+i) is in the far half
		wg.Go(func() {
			a := nodes[1+i]
			if r, err := a.n.Announce(ctx, ihs[i], 0); err != nil || r.Stored == 0 {
				t.Errorf("%s: announce: %+v %v", a.name, r, err)
			}
		})
	}
	wg.Wait()
	t.Logf("%d announces in %v", pairs, time.Since(t0).Round(time.Millisecond))
	lookers := make([]*goNode, pairs)
	used := map[*goNode]bool{}
	for i, ih := range ihs {
		for j := range total - 1 - pairs {
			g := nodes[1+pairs+(i+j)%(total-1-pairs)]
			if !used[g] && len(g.n.Peers().Peers(ih, 1)) == 0 {
				lookers[i], used[g] = g, true
				break
			}
		}
		if lookers[i] == nil {
			t.Fatalf("every candidate looker stores infohash %d", i)
		}
	}
	t0 = time.Now()
	took := make([]time.Duration, pairs)
	var found atomic.Int32
	for i := range pairs {
		wg.Go(func() {
			var err error
			if took[i], err = findAnnouncer(ctx, lookers[i], ihs[i], nodes[1+i].n.ID()); err != nil {
				t.Error(err)
			} else {
				found.Add(1)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		for i, ih := range ihs {
			var holders []string
			for _, g := range nodes {
				if len(g.n.Peers().Peers(ih, 1)) > 0 {
					holders = append(holders, fmt.Sprintf("%s(%v)", g.name, g.n.ID()))
				}
			}
			t.Logf("infohash %v of %s, looked up by %s, is stored on %v", ih, nodes[1+i].name, lookers[i].name, holders)
		}
	}
	t.Logf("%d get_peers in %v: %d found their announcer (each: %s)", pairs, time.Since(t0).Round(time.Millisecond), found.Load(), durSummary(took))

	// BEP 44 over WebRTC: n21 puts an immutable item, n22 a mutable one and then its next
	// version; n24..n26 get them.
	t0 = time.Now()
	_, key, _ := ed25519.GenerateKey(nil)
	imm, _ := dht.NewImmutableItem("an immutable item over WebRTC")
	mut1, _ := dht.NewMutableItem(key, []byte("salt"), 1, "mutable, version 1")
	mut2, _ := dht.NewMutableItem(key, []byte("salt"), 2, "mutable, version 2")
	for i, it := range []*dht.Item{imm, mut1, mut2} {
		putter, getter := nodes[21+min(i, 1)], nodes[24+i]
		if pr, err := putter.n.Put(ctx, it, nil); err != nil || pr.Stored == 0 {
			t.Errorf("%s: put %v: %+v %v", putter.name, it, pr, err)
			continue
		}
		var opts *dht.GetOptions
		if it.Mutable {
			opts = &dht.GetOptions{Salt: it.Salt}
		}
		gr, err := getter.n.Get(ctx, it.Target(), opts)
		if err != nil || string(gr.Item.V) != string(it.V) || gr.Item.Seq != it.Seq {
			t.Errorf("%s: get %v: %+v %v", getter.name, it, gr, err)
		}
	}
	t.Logf("BEP 44: 3 puts, each read back by another node, in %v", time.Since(t0).Round(time.Millisecond))

	counts := connCounts(nodes)
	var b strings.Builder
	for i, g := range nodes {
		fmt.Fprintf(&b, " %s:%d/%d", g.name, counts[i], len(g.n.Nodes()))
	}
	t.Logf("open WebRTC connections / routing table size per node (%s):%s", summary(counts), b.String())
	t.Logf("total %v", time.Since(start).Round(time.Millisecond))
}
