//go:build unix

package interop_test

import (
	"context"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/internal/interop"
)

// TestBEP51 checks sample_infohashes against libtorrent, the one implementation here that
// has it (bittorrent-dht does not answer unknown methods; anacrolix answers 204), both
// ways:
//
//   - ours asks theirs: our node announces infohashes to a libtorrent node (Node.Announce,
//     in a network of the two) and Node.SampleInfohashes to it returns exactly them, with
//     num; asked before the announces, it returns an empty sample (the samples key is there,
//     as BEP 51 requires) and, since libtorrent recomputes a sample holding fewer than its
//     maximum (20), the later answer is not stale;
//   - theirs asks ours: a second node of ours announces infohashes to our first, and
//     libtorrent's own dht_sample_infohashes (testdata/lt_item.py), sent to our nodes, returns
//     them from the first and an empty sample from the second.
func TestBEP51(t *testing.T) {
	t.Parallel()
	t.Run("ours-samples-libtorrent", func(t *testing.T) {
		t.Parallel()
		testBEP51OursSamplesTheirs(t)
	})
	t.Run("libtorrent-samples-ours", func(t *testing.T) {
		t.Parallel()
		testBEP51TheirsSampleOurs(t)
	})
}

const bep51Infohashes = 5

func testBEP51OursSamplesTheirs(t *testing.T) {
	lt := startPeer(t, interop.Libtorrent, interop.Options{MaxSeconds: 2 * time.Minute})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ours := newNode(t, "ours", &dht.Config{KRPC: noSourceLimit})
	if _, err := ours.Bootstrap(ctx, lt.Addr); err != nil {
		t.Fatalf("Bootstrap from %v: %v", lt, err)
	}

	res, err := ours.SampleInfohashes(ctx, lt.Addr, dht.RandomID())
	if err != nil {
		t.Fatalf("SampleInfohashes before any announce: %v", err)
	}
	t.Logf("before the announces: samples %v, num %d, interval %v, nodes %s", res.Samples, res.Num, res.Interval, fmtNodes(res.Nodes))
	if len(res.Samples) != 0 || res.Num != 0 {
		t.Errorf("SampleInfohashes of a node that stores nothing: %d samples, num %d", len(res.Samples), res.Num)
	}

	var announced []dht.ID
	for range bep51Infohashes {
		ih := dht.RandomID()
		ar, err := ours.Announce(ctx, ih, 20000+rand.IntN(40000))
		if err != nil || ar.Stored != 1 {
			t.Fatalf("Announce(%v): %v, stored on %d nodes; want the libtorrent node", ih, err, ar.Stored)
		}
		announced = append(announced, ih)
	}

	res, err = ours.SampleInfohashes(ctx, lt.Addr, dht.RandomID())
	if err != nil {
		t.Fatalf("SampleInfohashes: %v", err)
	}
	t.Logf("after %d announces: samples %v, num %d, interval %v, nodes %s", len(announced), res.Samples, res.Num, res.Interval, fmtNodes(res.Nodes))
	checkSamples(t, res.Samples, res.Num, announced)
	if res.Interval <= 0 {
		t.Errorf("SampleInfohashes: interval %v, want a positive one", res.Interval)
	}
	// res.Nodes is usually empty here: libtorrent keeps a node that joined through it in its
	// replacement cache until its 5 s refresh has confirmed it, and answers from its table.
	for _, ni := range res.Nodes {
		if ni.Addr != ours.Addr() {
			t.Errorf("SampleInfohashes: nodes %s hold a node that is not in this network", fmtNodes(res.Nodes))
		}
	}
}

func testBEP51TheirsSampleOurs(t *testing.T) {
	requireImpl(t, interop.Libtorrent)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cfg := &dht.Config{KRPC: noSourceLimit}
	n1 := newNode(t, "ours1", cfg)
	n2 := newNode(t, "ours2", cfg)
	if _, err := n2.Bootstrap(ctx, n1.Addr()); err != nil {
		t.Fatalf("ours2 Bootstrap: %v", err)
	}
	var announced []dht.ID
	for range bep51Infohashes {
		ih := dht.RandomID()
		ar, err := n2.Announce(ctx, ih, 20000+rand.IntN(40000))
		if err != nil || ar.Stored != 1 {
			t.Fatalf("ours2 Announce(%v): %v, stored on %d nodes; want ours1", ih, err, ar.Stored)
		}
		announced = append(announced, ih)
	}
	if ihs, _ := n1.Peers().Len(); ihs != len(announced) {
		t.Fatalf("ours1 stores peers for %d infohashes, want %d", ihs, len(announced))
	}

	// Only now does anyone ask (our node keeps a sample for five minutes).
	drv := startItemClient(t, interop.Libtorrent, []netip.AddrPort{n1.Addr()}, make([]byte, 32),
		opSample(n1.Addr(), dht.RandomID()), opSample(n2.Addr(), dht.RandomID()))
	r := waitResult(ctx, t, drv, 0)
	if !r.OK {
		t.Fatalf("libtorrent's sample_infohashes to ours1: %s", r.Line)
	}
	var samples []dht.ID
	for _, s := range r.Samples {
		id, err := dht.ParseID(s)
		if err != nil {
			t.Fatalf("sample %q: %v", s, err)
		}
		samples = append(samples, id)
	}
	checkSamples(t, samples, r.Num, announced)
	// Our interval is what is left of the sample's five minutes.
	if r.Interval <= 0 || r.Interval > 300 {
		t.Errorf("libtorrent saw interval %v s from ours1, want (0, 300]", r.Interval)
	}
	if !slices.ContainsFunc(r.Nodes, func(s string) bool { return len(s) > 41 && s[41:] == n2.Addr().String() }) {
		t.Errorf("libtorrent saw nodes %v from ours1, want ours2 %v among them", r.Nodes, n2.Addr())
	}

	r = waitResult(ctx, t, drv, 1)
	if !r.OK || len(r.Samples) != 0 || r.Num != 0 {
		t.Errorf("libtorrent's sample_infohashes to ours2 (which stores nothing): %s; want an empty sample", r.Line)
	}
}

// checkSamples checks a sample against the infohashes announced, which are all the node
// stores and fewer than a sample holds (BEP 51 suggests 20): so the sample is exactly them.
func checkSamples(t *testing.T, samples []dht.ID, num int, announced []dht.ID) {
	t.Helper()
	if num != len(announced) {
		t.Errorf("num %d, want %d (the infohashes announced)", num, len(announced))
	}
	for _, s := range samples {
		if !slices.Contains(announced, s) {
			t.Errorf("sample %v was never announced", s)
		}
	}
	for _, a := range announced {
		if !slices.Contains(samples, a) {
			t.Errorf("announced infohash %v missing from the sample %v", a, samples)
		}
	}
	if len(samples) != len(announced) {
		t.Errorf("%d samples, want %d", len(samples), len(announced))
	}
}
