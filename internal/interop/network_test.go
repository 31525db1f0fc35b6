//go:build unix

package interop_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/internal/interop"
)

// TestNetwork builds a six-node network, three real nodes and three of ours, and waits
// until every routing table holds all five others: once for each implementation, and once
// with one node of each (mixed).
//
// Nodes join alternately, ours first (ours1, theirs1, ours2, theirs2, ...), each
// bootstrapping from every node before it (a mesh, like nettest.py --mode mesh). Our tables
// are read with Node.Nodes; theirs from outside, as nettest.py does, with a read-only
// get_peers whose info_hash is the node's own ID (answered with the K closest nodes, the
// whole table here).
//
// Expected times (REPORT.md): bittorrent-dht fills at once, libtorrent after its 5 s
// refresh confirms the nodes waiting in its replacement cache, anacrolix only after its
// once-a-minute maintainer has pinged the nodes that queried it (it lists only nodes that
// answered it).
func TestNetwork(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		theirs []string
	}{
		{interop.Anacrolix, []string{interop.Anacrolix, interop.Anacrolix, interop.Anacrolix}}, // slowest first
		{"mixed", []string{interop.Libtorrent, interop.BittorrentDHT, interop.Anacrolix}},
		{interop.Libtorrent, []string{interop.Libtorrent, interop.Libtorrent, interop.Libtorrent}},
		{interop.BittorrentDHT, []string{interop.BittorrentDHT, interop.BittorrentDHT, interop.BittorrentDHT}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testNetwork(t, tc.theirs)
		})
	}
}

type member struct {
	name   string
	ours   *dht.Node     // ours, or
	peer   *interop.Peer // theirs
	addr   netip.AddrPort
	id     dht.ID
	fullAt time.Duration // first time its table held every other node; <0: never
	table  []dht.NodeInfo
	err    error // of the last table read
	// selfReported: an anacrolix node counted as full by its own STATS line, not by what
	// it advertises (see anacrolixHolds).
	selfReported bool
}

// network is a set of nodes, ours and theirs, whose routing tables a test watches.
type network struct {
	t       *testing.T
	probe   *probe
	cfg     *dht.Config // for our nodes
	members []*member
}

func newNetwork(t *testing.T, cfg *dht.Config) *network {
	return &network{t: t, probe: newProbe(t), cfg: cfg}
}

func (nw *network) addrs() []netip.AddrPort {
	var as []netip.AddrPort
	for _, m := range nw.members {
		as = append(as, m.addr)
	}
	return as
}

// addOurs starts one of our nodes and bootstraps it from boot (when not empty).
func (nw *network) addOurs(ctx context.Context, name string, boot ...netip.AddrPort) *member {
	t := nw.t
	t.Helper()
	n := newNode(t, name, nw.cfg)
	if len(boot) > 0 {
		if _, err := n.Bootstrap(ctx, boot...); err != nil {
			t.Fatalf("%s Bootstrap from %v: %v", name, boot, err)
		}
	}
	m := &member{name: name, ours: n, addr: n.Addr(), id: n.ID(), fullAt: -1}
	nw.members = append(nw.members, m)
	return m
}

// addTheirs starts a real node of impl bootstrapping from boot.
func (nw *network) addTheirs(ctx context.Context, name, impl string, boot ...netip.AddrPort) *member {
	t := nw.t
	t.Helper()
	p := startPeer(t, impl, interop.Options{Bootstrap: boot, Stats: time.Second, MaxSeconds: 4 * time.Minute})
	m := &member{name: name, peer: p, addr: p.Addr, id: p.ID, fullAt: -1}
	if !p.HasID { // libtorrent does not print it
		id, err := nw.probe.ping(ctx, p.Addr)
		if err != nil {
			t.Fatalf("ping %v: %v", p, err)
		}
		m.id = id
	}
	nw.members = append(nw.members, m)
	return m
}

// waitFull polls every table until all of them hold every other member at once, or
// until the deadline, and reports which, with how long it took.
func (nw *network) waitFull(ctx context.Context, deadline time.Duration) (bool, time.Duration) {
	start := time.Now()
	all := nw.addrs()
	pctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	full := poll(pctx, 250*time.Millisecond, func() bool {
		allFull := true
		for _, m := range nw.members {
			read := true
			if m.ours != nil {
				m.table, m.err = m.ours.Nodes(), nil
			} else if table, err := nw.probe.table(pctx, m.addr, m.id); err == nil {
				m.table, m.err = table, nil
			} else {
				read = false
				if pctx.Err() == nil { // keep the last view when only the deadline cut the read
					m.err = err
				}
			}
			ok := read && len(missing(m.table, others(all, m.addr))) == 0
			if read && !ok && anacrolixHolds(m, all) {
				ok, m.selfReported = true, true
			}
			if ok {
				if m.fullAt < 0 {
					m.fullAt = time.Since(start)
				}
			} else {
				allFull = false
			}
		}
		return allFull
	})
	return full, time.Since(start)
}

// report logs every member's view: when it was first full, what it sees.
func (nw *network) report() {
	all := nw.addrs()
	for _, m := range nw.members {
		var b strings.Builder
		fmt.Fprintf(&b, "%-16s %v id=%v: ", m.name, m.addr, m.id.String()[:8])
		if m.fullAt >= 0 {
			fmt.Fprintf(&b, "first full after %v", m.fullAt.Round(time.Millisecond))
			if m.selfReported {
				fmt.Fprintf(&b, " by its self-reported table size (advertises %d, not yet %v)",
					len(m.table), nw.names(missing(m.table, others(all, m.addr))))
			}
		} else {
			fmt.Fprintf(&b, "NEVER full, missing %v", nw.names(missing(m.table, others(all, m.addr))))
		}
		fmt.Fprintf(&b, "; sees %v", nw.names(addrsOf(m.table)))
		if m.err != nil {
			fmt.Fprintf(&b, " (last read: %v)", m.err)
		}
		if m.peer != nil {
			fmt.Fprintf(&b, "; self-reported table size %d", m.peer.LastStats())
		} else {
			st := m.ours.Stats()
			fmt.Fprintf(&b, "; %d nodes (%d good, %d replacements), %d lookups, KRPC in %d out %d timeouts %d",
				st.Nodes, st.GoodNodes, st.Replacements, st.Lookups, st.KRPC.PacketsIn, st.KRPC.QueriesOut, st.KRPC.Timeouts)
		}
		nw.t.Log(b.String())
	}
}

// names maps addresses to member names for logs.
func (nw *network) names(as []netip.AddrPort) []string {
	var out []string
	for _, a := range as {
		name := a.String()
		for _, m := range nw.members {
			if m.addr == a {
				name = m.name
			}
		}
		out = append(out, name)
	}
	return out
}

// anacrolixMaintained is how long after its start an anacrolix node has had its first
// chance to verify the nodes that queried it: its maintainer runs at the start and then
// once a minute.
const anacrolixMaintained = 65 * time.Second

// anacrolixHolds is the fallback for judging an anacrolix node: its table holds every other
// node (its STATS line counts them, and every node it advertises is a member) although it
// does not advertise them all. anacrolix v2.23.0 advertises only "good" nodes, those that
// answered one of its queries, and a node that joined after it becomes good only if
// anacrolix happens to query it: its once-a-minute maintainer pings questionable nodes only
// in the buckets up to the first bucket that is not full (then it breaks out of its loop),
// and the find_node traversal that refreshes that bucket aims at the other half of the ID
// space (it also queries anacrolix itself, which the other nodes return), so in the debug
// logs taken it never reached a later node in anacrolix's own half. Such a node stays
// unadvertised: seen in about half of the runs of the 3-anacrolix network, for later
// anacrolix nodes and for nodes of ours alike. The fallback applies only once the node has
// had its maintainer's chance, so the measured times stay honest.
func anacrolixHolds(m *member, all []netip.AddrPort) bool {
	if m.peer == nil || m.peer.Name != interop.Anacrolix || time.Since(m.peer.Started) < anacrolixMaintained {
		return false
	}
	for _, n := range m.table {
		if !slices.Contains(all, n.Addr) {
			return false
		}
	}
	return m.peer.LastStats() >= len(all)-1
}

// deadlineFor is how long a network of these implementations gets to fill.
func deadlineFor(t *testing.T, impls []string) time.Duration {
	d := 30 * time.Second
	for _, impl := range impls {
		requireImpl(t, impl)
		switch impl {
		case interop.Libtorrent:
			d = max(d, 45*time.Second)
		case interop.Anacrolix:
			d = max(d, 100*time.Second)
		}
	}
	return d
}

func testNetwork(t *testing.T, theirs []string) {
	deadline := deadlineFor(t, theirs)
	ctx, cancel := context.WithTimeout(t.Context(), deadline+30*time.Second)
	defer cancel()
	// Six nodes, three of them polled by the probe, all on 127.0.0.1: no per-source limit.
	nw := newNetwork(t, &dht.Config{KRPC: noSourceLimit})
	launch := time.Now()
	for i, impl := range theirs {
		nw.addOurs(ctx, fmt.Sprintf("ours%d", i+1), nw.addrs()...)
		nw.addTheirs(ctx, fmt.Sprintf("%s%d", impl, i+1), impl, nw.addrs()...)
	}
	t.Logf("network of %d nodes up after %v", len(nw.members), time.Since(launch).Round(time.Millisecond))
	full, elapsed := nw.waitFull(ctx, deadline)
	nw.report()
	if !full {
		t.Fatalf("not every routing table held all %d other nodes within %v", len(nw.members)-1, deadline)
	}
	t.Logf("every routing table holds all %d other nodes after %v", len(nw.members)-1, elapsed.Round(time.Millisecond))
}

func others(all []netip.AddrPort, self netip.AddrPort) []netip.AddrPort {
	return slices.DeleteFunc(slices.Clone(all), func(a netip.AddrPort) bool { return a == self })
}

// TestOurTableCatchesUp shows a defect of our node (it fails until dht is fixed): a node
// of ours whose Bootstrap saw only part of the network never looks for the rest, so it
// never learns nodes that do not happen to query it, while real nodes in the same network
// do fill their tables.
//
// Two islands joined by real nodes: ours1 is first and libtorrent node A joins through it;
// ours2 joins through libtorrent node B while B is still alone (so its Bootstrap learns B
// only); then libtorrent node C joins through A and B. libtorrent keeps refreshing its
// table, and its three nodes hold all four others within about 20 s. Ours never do: ours1
// and ours2 never learn each other, because neither sends another lookup (dht maintenance
// refreshes only buckets unchanged for RefreshInterval, 15 minutes, and bootstraps again
// only when the table is empty), and each learns only the nodes that query it.
//
// Only libtorrent shows this cleanly. With bittorrent-dht, its nodes A and B stayed partial
// too (it did not refresh within the 30 s observed); anacrolix refreshes every bucket that is not full once a minute,
// but its find_node answers hold only part of its table (REPORT.md, finding 1), so in this
// topology its own nodes fill in some runs and not in others (observed both).
func TestOurTableCatchesUp(t *testing.T) {
	t.Parallel()
	testOurTableCatchesUp(t, interop.Libtorrent)
}

func testOurTableCatchesUp(t *testing.T, impl string) {
	deadline := deadlineFor(t, []string{impl})
	ctx, cancel := context.WithTimeout(t.Context(), deadline+30*time.Second)
	defer cancel()
	// Maintenance every 5 s instead of every minute, so that whatever our nodes do on their
	// maintenance tick gets several chances within the deadline.
	nw := newNetwork(t, &dht.Config{KRPC: noSourceLimit, MaintenanceInterval: 5 * time.Second})
	o1 := nw.addOurs(ctx, "ours1")
	a := nw.addTheirs(ctx, impl+"-A", impl, o1.addr)
	b := nw.addTheirs(ctx, impl+"-B", impl)
	nw.addOurs(ctx, "ours2", b.addr)
	nw.addTheirs(ctx, impl+"-C", impl, a.addr, b.addr)
	full, elapsed := nw.waitFull(ctx, deadline)
	nw.report()
	if !full {
		var theirsFull, oursFull = true, true
		for _, m := range nw.members {
			if m.fullAt < 0 {
				if m.ours != nil {
					oursFull = false
				} else {
					theirsFull = false
				}
			}
		}
		if theirsFull && !oursFull {
			t.Fatalf("every %s node filled its table within %v, but not every node of ours did: our nodes never look "+
				"for nodes after Bootstrap until a bucket has gone unchanged for RefreshInterval (15 min)", impl, deadline)
		}
		t.Fatalf("not every routing table held all %d other nodes within %v", len(nw.members)-1, deadline)
	}
	t.Logf("every routing table holds all %d other nodes after %v", len(nw.members)-1, elapsed.Round(time.Millisecond))
}
