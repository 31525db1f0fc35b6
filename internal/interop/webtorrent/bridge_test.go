//go:build linux

package webtorrent_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/bridge"
	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/extensions/signals"
	"github.com/wdht/wdht/internal/interop"
	"github.com/wdht/wdht/transport/udp"
	"github.com/wdht/wdht/transport/webrtc"
)

// End to end across the bridge: libtorrent puts two mutable BEP 44 items, one without a
// salt and one with, on a mainline network of two libtorrent nodes, before our bridge
// exists, so that they live only on the UDP side. The bridge then joins that network
// through one libtorrent node and serves WebRTC signalling. Headless Chromium, running
// the published webtorrent-dht 0.18.6 browser bundle, bootstraps from the bridge's
// signalling server and reads the unsalted item with dht.get, checking its signature
// with WebCrypto; one of our WebRTC-only nodes reads both with Node.Get. The gets reach
// the bridge's WebRTC node, which misses locally and answers from a lookup on the
// mainline side: the unsalted item, which it can check, goes into the shared store; the
// salted one is passed on for the querier to check, and never stored.
//
// The browser reads no salted item: the bundle's bittorrent-dht (older than the 8.4.0
// that Node.js gets) hashes k with the "salt" of the response, which BEP 44 responses
// (libtorrent's, ours) do not carry, so it rejects every salted item.
func TestBridgeServesMainlineItems(t *testing.T) {
	t.Parallel()
	var bundle, playwright string
	require(t, func() (err error) {
		if err = interop.Available(interop.Libtorrent); err != nil {
			return err
		}
		if bundle, err = interop.WebtorrentBundle(interop.Webtorrent); err != nil {
			return err
		}
		_, playwright, err = interop.Chromium()
		return err
	})
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
	defer cancel()
	t0 := time.Now()
	step := func(format string, args ...any) {
		t.Logf("%6.2fs "+format, append([]any{time.Since(t0).Seconds()}, args...)...)
	}

	// The mainline side: libtorrent L1, and libtorrent's item client L2 joining through
	// it and putting the items (libtorrent picks seq: the newest it finds, plus one).
	l1, err := interop.Start(ctx, interop.Libtorrent, interop.Options{MaxSeconds: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Stop()
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "wdht bridge end to end "+hexID(dht.RandomID())[:8]) // a fresh key: seq 1
	key := ed25519.NewKeyFromSeed(seed)
	pub := key.Public().(ed25519.PublicKey)
	var k [32]byte
	copy(k[:], pub)
	type item struct {
		salt, data string
		target     dht.ID
		seq        int64
	}
	items := []*item{
		{data: "unsalted, from libtorrent " + hexID(dht.RandomID())[:12]},
		{salt: "salt-" + hexID(dht.RandomID())[:8], data: "salted, from libtorrent " + hexID(dht.RandomID())[:12]},
	}
	peers, err := interop.PeersDir()
	if err != nil {
		t.Fatal(err)
	}
	lt, err := filepath.Abs(filepath.Join("..", "testdata", "lt_item.py"))
	if err != nil {
		t.Fatal(err)
	}
	argv := []string{interop.Python, "-u", lt, "--peers-dir", peers,
		"--seed", hex.EncodeToString(seed), "--pubkey", hex.EncodeToString(pub)}
	for _, it := range items {
		it.target = dht.MutableTarget(k, []byte(it.salt))
		argv = append(argv, "--op", "put-mutable:"+hex.EncodeToString([]byte(it.salt))+":"+hex.EncodeToString([]byte(it.data)))
	}
	l2, err := interop.StartProcess(ctx, "libtorrent-item-client", argv,
		interop.Options{Bootstrap: []netip.AddrPort{l1.Addr}, MaxSeconds: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Stop()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output of %v:\n%s\noutput of %v:\n%s", l1, l1.Output(), l2, l2.Output())
		}
	})
	for i, it := range items {
		prefix := fmt.Sprintf(`RESULT {"i": %d,`, i)
		line, err := l2.WaitFunc(ctx, func(s string) bool { return strings.HasPrefix(s, prefix) })
		if err != nil {
			t.Fatal(err)
		}
		var put struct {
			OK  bool   `json:"ok"`
			N   int    `json:"n"`
			Seq *int64 `json:"seq"`
		}
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "RESULT ")), &put); err != nil || !put.OK || put.N < 1 || put.Seq == nil {
			t.Fatalf("libtorrent's put: %s (%v)", line, err)
		}
		it.seq = *put.Seq
		step("libtorrent put %v (salt %q, seq %d) on %d node(s)", it.target, it.salt, it.seq, put.N)
	}

	// The bridge: UDP and WebRTC, on loopback; signalling on a free port.
	b, signalling := newBridge(t)
	if err := b.Bootstrap(ctx, []netip.AddrPort{l1.Addr}, nil); err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if _, ok := b.Items().Get(it.target); ok {
			t.Fatal("the bridge holds an item before any get: the test would not cross the bridge")
		}
	}
	step("bridge: mainline %v (%d nodes), signalling on %v", b.Mainline.Addr(), len(b.Mainline.Nodes()), signalling)

	// Chromium, through the bridge.
	plain := items[0]
	p := start(t, "chromium "+interop.Webtorrent, []string{"node", driver(t, "browser-dht.js"),
		"--playwright", playwright, "--bundle", bundle, "--bootstrap", signalling.String(),
		"--get", hexID(plain.target), "--timeout", "120"})
	defer p.Stop() // before the bridge closes
	br := &jsHost{t: t, p: p}
	if l, err := br.wait(ctx, "READY b "); err != nil {
		t.Fatal(err)
	} else {
		step("browser bootstrapped: %s", l)
	}
	res, err := br.result(ctx, "get", "b")
	if err != nil {
		t.Fatal(err)
	}
	step("browser: %s", res.line)
	if res.fields["found"] != "true" || res.fields["v"] != hex.EncodeToString([]byte(plain.data)) ||
		res.fields["k"] != hex.EncodeToString(pub) || res.int("seq") != int(plain.seq) {
		t.Errorf("the browser read %s; want v=%x k=%x seq=%d", res.line, plain.data, []byte(pub), plain.seq)
	}
	if res.fields["verified"] != "true" {
		t.Errorf("the browser's WebCrypto did not verify the item's signature: %s", res.line)
	}
	if _, ok := b.Items().Get(plain.target); !ok {
		t.Error("the bridge did not store the unsalted item its fallback fetched and checked")
	}

	// One of ours, WebRTC only, bootstrapping from the bridge's signalling server.
	g := newGoNode(t, "web", goOpts{})
	if _, err := g.n.Bootstrap(ctx, signalling); err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		gr, err := g.n.Get(ctx, it.target, &dht.GetOptions{Salt: []byte(it.salt)})
		if err != nil {
			t.Errorf("our WebRTC node's get of %v: %v", it.target, err)
			continue
		}
		want, _ := dht.NewMutableItem(key, []byte(it.salt), it.seq, it.data)
		if string(gr.Item.V) != string(want.V) || gr.Item.Seq != it.seq || gr.Item.K != k {
			t.Errorf("our WebRTC node read %q seq %d, want %q seq %d", gr.Item.V, gr.Item.Seq, want.V, it.seq)
		}
		step("our WebRTC node read %q seq %d (salt %q)", gr.Item.V, gr.Item.Seq, it.salt)
	}
	if _, ok := b.Items().Get(items[1].target); ok {
		t.Error("the bridge stored a salted item it cannot check")
	}
}

// newBridge starts a bridge on loopback (UDP on a free port; WebRTC with its signalling
// server on a free port) and returns it with the signalling address.
func newBridge(t *testing.T) (*bridge.Bridge, netip.AddrPort) {
	t.Helper()
	l := &logs{}
	lg := hclog.New(&hclog.LoggerOptions{Name: "bridge", Level: hclog.Debug, Output: l})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("bridge log:\n%s", l.String())
		}
	})
	ut, err := udp.Listen(netip.MustParseAddrPort("127.0.0.1:0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	wt, err := webrtc.New(&webrtc.Config{Loopback: true, MaxPendingPerIP: 1024, MaxPending: 1024, Logger: lg})
	if err != nil {
		ut.Close()
		t.Fatal(err)
	}
	cfg := &bridge.Config{Logger: lg}
	cfg.Mainline.KRPC.SourceRate = -1 // everything is 127.0.0.1
	cfg.Web.KRPC.SourceRate = -1
	b, err := bridge.New(ut, wt, signals.WebRTC(wt), cfg)
	if err != nil {
		wt.Close()
		ut.Close()
		t.Fatal(err)
	}
	srv, err := webrtc.NewServer(wt, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("bridge: Serve: %v", err)
		}
		b.Close()
		wt.Close()
		ut.Close()
	})
	return b, netip.MustParseAddrPort(ln.Addr().String())
}
