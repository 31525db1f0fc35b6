//go:build unix

package interop_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/internal/interop"
)

// TestTheirsAnnounceToOurs is the other way round: a real implementation's node joins a
// network of two of our nodes by bootstrapping from one of them, announces with the
// implementation's own client code (get_peers lookup, then announce_peer with our tokens),
// and our get_peers lookups return the peer it announced. Its own lookup, answered by our
// nodes, must find the peer too.
//
// The start scripts cannot announce, so the real node here is a small driver program on
// the unmodified library (testdata): lt_announce.py (libtorrent through the harness's own
// session settings), bt_announce.mjs (bittorrent-dht's dht.announce), anacrolix-announce
// (anacrolix's AnnounceTraversal).
//
// Two of our nodes, not one: a client announces to the closest nodes it found, here our
// two, and our lookup asks the other nodes, never itself; so each of our nodes finds the
// peer through the other one's store.
func TestTheirsAnnounceToOurs(t *testing.T) {
	t.Parallel()
	for _, impl := range interop.Impls {
		t.Run(impl, func(t *testing.T) {
			t.Parallel()
			testTheirsAnnounceToOurs(t, impl)
		})
	}
}

type wantPeer struct {
	name string
	ih   dht.ID
	peer netip.AddrPort
}

func testTheirsAnnounceToOurs(t *testing.T, impl string) {
	requireImpl(t, impl)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	// Default KRPC limits: a client's traffic is small (libtorrent's driver runs a
	// get_peers lookup every second).
	n1 := newNode(t, "ours1", nil)
	n2 := newNode(t, "ours2", nil)
	if _, err := n2.Bootstrap(ctx, n1.Addr()); err != nil {
		t.Fatalf("our second node's Bootstrap: %v", err)
	}
	if !poll(ctx, 10*time.Millisecond, func() bool { return hasNode(n1.Nodes(), n2.Addr()) }) {
		t.Fatalf("our first node never added the second one: table %s", fmtNodes(n1.Nodes()))
	}

	explicit, implied := dht.RandomID(), dht.RandomID()
	explicitPort := 20000 + rand.IntN(40000)
	announce := fmt.Sprintf("%v:%d,%v:0", explicit, explicitPort, implied)
	dir := peersDir(t)
	opts := interop.Options{Bootstrap: []netip.AddrPort{n1.Addr()}, Stats: time.Second, MaxSeconds: 3 * time.Minute}
	var drv *interop.Peer
	var want []wantPeer
	switch impl {
	case interop.Libtorrent:
		// Its announce port is its own choice: its listen port, the DHT socket's.
		drv = startProcess(t, "libtorrent-client",
			[]string{interop.Python, "-u", testdata(t, "lt_announce.py"), "--peers-dir", dir, "--announce", explicit.String()}, opts)
		want = []wantPeer{{"libtorrent's own port", explicit, drv.Addr}}
	case interop.BittorrentDHT:
		drv = startProcess(t, "bittorrent-dht-client",
			[]string{"node", testdata(t, "bt_announce.mjs"), "--peers-dir", dir, "--announce", announce}, opts)
	case interop.Anacrolix:
		drv = startProcess(t, "anacrolix-client", []string{buildAnacrolixDriver(t), "--announce", announce}, opts)
	}
	if want == nil {
		want = []wantPeer{
			{"explicit port", explicit, loopbackAddr(explicitPort)},
			{"implied_port", implied, drv.Addr},
		}
	}
	t0 := drv.Ready

	// It bootstrapped from our node: we have it in our table (after it answered our ping).
	if poll(ctx, 20*time.Millisecond, func() bool { return hasNode(n1.Nodes(), drv.Addr) }) {
		t.Logf("their node is in our first node's table after %v", time.Since(t0).Round(time.Millisecond))
	} else {
		t.Errorf("their node %v never entered our first node's table %s", drv.Addr, fmtNodes(n1.Nodes()))
	}

	for _, w := range want {
		// The announce reached both our nodes' peer stores.
		holds := func(n *dht.Node) bool { return slices.Contains(n.Peers().Peers(w.ih, 1000), w.peer) }
		if poll(ctx, 20*time.Millisecond, func() bool { return holds(n1) && holds(n2) }) {
			t.Logf("%s: both our nodes store %v after %v", w.name, w.peer, time.Since(t0).Round(time.Millisecond))
		} else {
			t.Errorf("%s: announce of %v never reached both our nodes: stored on ours1 %v, ours2 %v (their peers: %v, %v)",
				w.name, w.peer, holds(n1), holds(n2), n1.Peers().Peers(w.ih, 10), n2.Peers().Peers(w.ih, 10))
		}
		// Our get_peers lookups return it.
		for i, n := range []*dht.Node{n1, n2} {
			peers, res, err := getPeers(ctx, n, w.ih)
			if err != nil {
				t.Errorf("%s: ours%d GetPeers: %v", w.name, i+1, err)
				continue
			}
			t.Logf("%s: ours%d GetPeers: %v (%d queries, %d responses, closest %s)", w.name, i+1, peers, res.Queries, res.Responses, fmtNodes(res.Closest))
			if !slices.Contains(peers, w.peer) {
				t.Errorf("%s: ours%d GetPeers returned %v, want %v", w.name, i+1, peers, w.peer)
			}
		}
		// Their own lookup, answered by our nodes, finds it.
		re := regexp.MustCompile(fmt.Sprintf(`^FOUND infohash=%v peer=%s\b`, w.ih, regexp.QuoteMeta(w.peer.String())))
		if line, err := drv.WaitLine(ctx, re); err != nil {
			t.Errorf("%s: their lookup never found %v: %v", w.name, w.peer, err)
		} else {
			t.Logf("%s: their lookup: %s", w.name, line[0])
		}
	}
	// Their table holds both our nodes (libtorrent only after its refresh has confirmed
	// them).
	pr := newProbe(t)
	id := drv.ID
	if !drv.HasID {
		var err error
		if id, err = pr.ping(ctx, drv.Addr); err != nil {
			t.Fatalf("ping their node: %v", err)
		}
	}
	var table []dht.NodeInfo
	if poll(ctx, 250*time.Millisecond, func() bool {
		if tb, err := pr.table(ctx, drv.Addr, id); err == nil {
			table = tb
		}
		return len(missing(table, []netip.AddrPort{n1.Addr(), n2.Addr()})) == 0
	}) {
		t.Logf("their table holds both our nodes after %v: %s", time.Since(t0).Round(time.Millisecond), fmtNodes(table))
	} else {
		t.Errorf("their table %s never held both our nodes %v, %v", fmtNodes(table), n1.Addr(), n2.Addr())
	}
	for _, l := range drv.Lines() {
		if m := announcedRE.FindStringSubmatch(l.Text); m != nil {
			t.Logf("their announce report after %v: %s", l.Time.Sub(t0).Round(time.Millisecond), l.Text)
		}
	}
	t.Logf("our nodes' stats: ours1 %+v; ours2 %+v", n1.Stats(), n2.Stats())
}

var announcedRE = regexp.MustCompile(`^(ANNOUNCED|READY) `)

// buildAnacrolixDriver builds testdata/anacrolix-announce (its own module, with the
// harness's anacrolix go.mod and go.sum) and returns the binary's path.
func buildAnacrolixDriver(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("building the anacrolix driver: %v", err)
		}
		t.Skipf("building the anacrolix driver: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "anacrolix-announce")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, ".")
	cmd.Dir = testdata(t, "anacrolix-announce")
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false", "GOWORK=off")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build testdata/anacrolix-announce: %v\n%s", err, out)
	}
	t.Logf("built the anacrolix driver in %v", time.Since(start).Round(time.Millisecond))
	return bin
}
