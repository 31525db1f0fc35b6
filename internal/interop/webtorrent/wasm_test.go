//go:build linux

package webtorrent_test

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/internal/interop"
)

// The wdht node compiled to WebAssembly (cmd/wdht-wasm), on the demo page that 'wdht
// node' serves on its signalling port (cmd/wdht/demo.go), in headless Chromium: these
// tests build the demo (go generate ./cmd/wdht) and the CLI, run 'wdht node' (a bridge)
// and drive the page with testdata/webtorrent/wasm-page.js.

var (
	wasmBuildOnce sync.Once
	wasmBinary    string
	wasmBuildErr  error
)

// buildWdhtWithDemo runs cmd/wdht's go generate (the wasm node, gzipped, wasm_exec.js)
// and builds the CLI, once per test binary.
func buildWdhtWithDemo(t *testing.T) string {
	t.Helper()
	wasmBuildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			wasmBuildErr = err
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		gen := exec.Command("go", "generate", "./cmd/wdht")
		gen.Dir = root
		if b, err := gen.CombinedOutput(); err != nil {
			wasmBuildErr = fmt.Errorf("go generate ./cmd/wdht: %v\n%s", err, b)
			return
		}
		dir, err := os.MkdirTemp("", "wdht-wasm-test-")
		if err != nil {
			wasmBuildErr = err
			return
		}
		wasmBinary = filepath.Join(dir, "wdht")
		build := exec.Command("go", "build", "-o", wasmBinary, "./cmd/wdht")
		build.Dir = root
		if b, err := build.CombinedOutput(); err != nil {
			wasmBuildErr = fmt.Errorf("go build ./cmd/wdht: %v\n%s", err, b)
		}
	})
	if wasmBuildErr != nil {
		t.Fatal(wasmBuildErr)
	}
	return wasmBinary
}

var signalFieldRE = regexp.MustCompile(` signal=(\S+)`)

// wdhtNode is a 'wdht node' process: a bridge with the demo page on its signalling port.
type wdhtNode struct {
	p      *interop.Peer
	udp    netip.AddrPort
	signal netip.AddrPort
}

func startWdhtNode(t *testing.T, args ...string) *wdhtNode {
	t.Helper()
	bin := buildWdhtWithDemo(t)
	argv := []string{bin, "node", "--signal-addr", "127.0.0.1:0", "--limits=false", "--status", "0", "--max-seconds", "300"}
	if !slices.Contains(args, "--transports") {
		argv = append(argv, "--addr", "127.0.0.1:0")
	}
	argv = append(argv, args...)
	p := start(t, "wdht node", argv)
	m := signalFieldRE.FindStringSubmatch(p.Output())
	if m == nil {
		t.Fatalf("no signal= in the LISTENING line:\n%s", p.Output())
	}
	return &wdhtNode{p: p, udp: p.Addr, signal: netip.MustParseAddrPort(m[1])}
}

// wasmPages is a wasm-page.js process: Chromium with pages on the demo.
type wasmPages struct {
	h   *jsHost
	seq int // numbers the commands, so that each waits for its own RESULT line
}

func startWasmPages(t *testing.T, playwright string, url string, pages int) *wasmPages {
	t.Helper()
	argv := []string{"node", driver(t, "wasm-page.js"), "--playwright", playwright, "--url", url,
		"--pages", fmt.Sprint(pages), "--timeout", "280"}
	p := startOpts(t, "chromium wasm page", argv, interop.Options{Stdin: true, ReadyTimeout: 2 * time.Minute})
	return &wasmPages{h: &jsHost{t: t, p: p}}
}

// do sends a command to page i and decodes its result.
func (w *wasmPages) do(ctx context.Context, page int, cmd string, args map[string]any) (map[string]any, error) {
	w.seq++
	m := map[string]any{"page": page, "seq": w.seq}
	for k, v := range args {
		m[k] = v
	}
	w.h.send(cmd, m)
	tag := fmt.Sprintf("RESULT %s p%d #%d ", cmd, page, w.seq)
	l, err := w.h.wait(ctx, tag)
	if err != nil {
		return nil, err
	}
	_, js, _ := strings.Cut(l, tag)
	out := map[string]any{}
	if err := json.Unmarshal([]byte(js), &out); err != nil {
		return nil, fmt.Errorf("%q: %w", l, err)
	}
	if e, ok := out["error"]; ok {
		return out, fmt.Errorf("page %d %s: %v", page, cmd, e)
	}
	return out, nil
}

// lookupIDs runs the page's lookup of ih and pings every peer found: their node IDs.
func (w *wasmPages) lookupIDs(ctx context.Context, page int, ih dht.ID) ([]dht.ID, error) {
	l, err := w.do(ctx, page, "lookup", map[string]any{"ih": hexID(ih)})
	if err != nil {
		return nil, err
	}
	w.h.t.Logf("page %d lookup %v: %v", page, ih, l)
	var ids []dht.ID
	for _, p := range strList(l["peers"]) {
		r, err := w.do(ctx, page, "ping", map[string]any{"addr": p})
		if err != nil {
			return ids, err
		}
		ids = append(ids, mustID(w.h.t, fmt.Sprint(r["id"])))
	}
	return ids, nil
}

func strList(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			out = append(out, fmt.Sprint(x))
		}
	}
	return out
}

func wasmRequire(t *testing.T) string {
	t.Helper()
	var playwright string
	require(t, func() (err error) {
		_, playwright, err = interop.Chromium()
		return err
	})
	return playwright
}

// The page, loaded from 'wdht node', joins through the node's signalling server and
// announces; one of our native WebRTC nodes, Q, that knows only the bridge, finds the
// page's peer and pings it (the bridge relays Q's offer to the page). The page finds the
// peer that another native node, T, announced.
func TestWasmPageInOurNetwork(t *testing.T) {
	playwright := wasmRequire(t)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Second)
	defer cancel()
	t0 := time.Now()
	step := func(format string, args ...any) {
		t.Logf("%6.2fs "+format, append([]any{time.Since(t0).Seconds()}, args...)...)
	}
	w := startWdhtNode(t)
	step("wdht node: udp %v, signalling %v", w.udp, w.signal)

	tg := newGoNode(t, "t", goOpts{})
	peer, err := tg.tr.Dial(ctx, w.signal.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tg.n.Bootstrap(ctx, peer); err != nil {
		t.Fatal(err)
	}
	ihT, ihB := idWith(0x31), idWith(0x32)
	if ar, err := tg.n.Announce(ctx, ihT, 0); err != nil || ar.Stored < 1 {
		t.Fatalf("T's announce: %+v %v", ar, err)
	}
	step("T announced %v", ihT)

	pg := startWasmPages(t, playwright, "http://"+w.signal.String()+"/", 1)
	j, err := pg.do(ctx, 0, "join", nil)
	if err != nil {
		t.Fatal(err)
	}
	pageID := mustID(t, fmt.Sprint(j["id"]))
	step("page joined as %v (%v ms after load)", pageID, j["ms"])
	a, err := pg.do(ctx, 0, "announce", map[string]any{"ih": hexID(ihB)})
	if err != nil {
		t.Fatal(err)
	}
	if stored, _ := a["stored"].(float64); stored < 1 {
		t.Fatalf("the page's announce stored on no node: %v", a)
	}
	step("page announced %v: %v", ihB, a)

	q := newGoNode(t, "q", goOpts{})
	qp, err := q.tr.Dial(ctx, w.signal.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.n.Bootstrap(ctx, qp); err != nil {
		t.Fatal(err)
	}
	if took, err := findAnnouncer(ctx, q, ihB, pageID); err != nil {
		t.Error(err)
	} else {
		step("Q (native) found the page's peer and pinged it in %v", took.Round(time.Millisecond))
	}

	if ids, err := pg.lookupIDs(ctx, 0, ihT); err != nil {
		t.Error(err)
	} else if !slices.Contains(ids, tg.n.ID()) {
		t.Errorf("the page found the peers of nodes %v, want T %v", ids, tg.n.ID())
	} else {
		step("the page found T's peer and pinged it")
	}
	if os.Getenv("WDHT_SCREENSHOT") != "" {
		if _, err := pg.do(ctx, 0, "screenshot", map[string]any{"path": os.Getenv("WDHT_SCREENSHOT")}); err != nil {
			t.Error(err)
		}
	}
}

// Two pages (two browser contexts) and a JS webtorrent-dht 0.18.6 node (Node.js) join
// through a 'wdht node' that only relays: each page announces, each finds and pings the
// other's peer, and both find the JS node's peer.
func TestWasmPagesFindEachOther(t *testing.T) {
	playwright := wasmRequire(t)
	dir := webtorrentDir(t, interop.Webtorrent)
	ctx, cancel := context.WithTimeout(t.Context(), 240*time.Second)
	defer cancel()
	t0 := time.Now()
	step := func(format string, args ...any) {
		t.Logf("%6.2fs "+format, append([]any{time.Since(t0).Seconds()}, args...)...)
	}
	w := startWdhtNode(t, "--transports", "webrtc")
	step("wdht node (WebRTC only): signalling %v", w.signal)

	js := startJS(t, dir)
	defer js.p.Stop() // before the bridge stops (a JS node answering on a closed connection throws)
	ihJ := idWith(0x43)
	jid := js.node(ctx, jsNode{Name: "j", Bootstrap: []string{w.signal.String()}, Announce: hexID(ihJ)})
	if res, err := js.result(ctx, "announce", "j"); err != nil {
		t.Fatal(err)
	} else if !res.ok() || res.int("n") < 1 {
		t.Fatalf("the JS node's announce: %s", res.line)
	}
	step("JS node %v announced %v", jid, ihJ)

	pg := startWasmPages(t, playwright, "http://"+w.signal.String()+"/", 2)
	ids := make([]dht.ID, 2)
	ihs := []dht.ID{idWith(0x41), idWith(0x42)}
	for i := range 2 {
		j, err := pg.do(ctx, i, "join", nil)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = mustID(t, fmt.Sprint(j["id"]))
		a, err := pg.do(ctx, i, "announce", map[string]any{"ih": hexID(ihs[i])})
		if err != nil {
			t.Fatal(err)
		}
		if stored, _ := a["stored"].(float64); stored < 1 {
			t.Fatalf("page %d's announce stored on no node: %v", i, a)
		}
		step("page %d joined as %v and announced %v: %v", i, ids[i], ihs[i], a)
	}
	for i := range 2 {
		other := 1 - i
		found, err := pg.lookupIDs(ctx, i, ihs[other])
		if err != nil {
			t.Error(err)
		} else if !slices.Contains(found, ids[other]) {
			t.Errorf("page %d found the peers of %v, want page %d's %v", i, found, other, ids[other])
		} else {
			step("page %d found page %d's peer and pinged it", i, other)
		}
		found, err = pg.lookupIDs(ctx, i, ihJ)
		if err != nil {
			t.Error(err)
		} else if !slices.Contains(found, jid) {
			t.Errorf("page %d found the peers of %v, want the JS node %v", i, found, jid)
		} else {
			step("page %d found the JS node's peer and pinged it", i)
		}
	}
}

// libtorrent puts a mutable BEP 44 item on a mainline network before 'wdht node' (a
// bridge) joins it; the page reads it through the bridge (its get reaches the bridge's
// WebRTC node, which answers from a lookup on the UDP side). Then the page puts a mutable
// item of its own, and a libtorrent client on the UDP side reads it from the bridge's UDP
// node (libtorrent checks the signature; the test checks it again).
func TestWasmPageItemsWithLibtorrent(t *testing.T) {
	playwright := wasmRequire(t)
	require(t, func() error { return interop.Available(interop.Libtorrent) })
	ctx, cancel := context.WithTimeout(t.Context(), 240*time.Second)
	defer cancel()
	t0 := time.Now()
	step := func(format string, args ...any) {
		t.Logf("%6.2fs "+format, append([]any{time.Since(t0).Seconds()}, args...)...)
	}
	l1, err := interop.Start(ctx, interop.Libtorrent, interop.Options{MaxSeconds: 4 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Stop()
	peers, err := interop.PeersDir()
	if err != nil {
		t.Fatal(err)
	}
	lt, err := filepath.Abs(filepath.Join("..", "testdata", "lt_item.py"))
	if err != nil {
		t.Fatal(err)
	}
	ltClient := func(name string, seed []byte, pub ed25519.PublicKey, boot netip.AddrPort, op string) *interop.Peer {
		argv := []string{interop.Python, "-u", lt, "--peers-dir", peers, "--op", op}
		if seed != nil {
			argv = append(argv, "--seed", hex.EncodeToString(seed), "--pubkey", hex.EncodeToString(pub))
		}
		p, err := interop.StartProcess(ctx, name, argv, interop.Options{Bootstrap: []netip.AddrPort{boot}, MaxSeconds: 4 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			p.Stop()
			if t.Failed() {
				t.Logf("output of %v:\n%s", p, p.Output())
			}
		})
		return p
	}
	type ltResult struct {
		OK    bool   `json:"ok"`
		N     int    `json:"n"`
		Found bool   `json:"found"`
		Seq   *int64 `json:"seq"`
		V     string `json:"v"`
		Sig   string `json:"sig"`
	}
	ltWait := func(p *interop.Peer) ltResult {
		line, err := p.WaitFunc(ctx, func(s string) bool { return strings.HasPrefix(s, "RESULT {") }) // each client runs one step
		if err != nil {
			t.Fatal(err)
		}
		var r ltResult
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "RESULT ")), &r); err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return r
	}

	// libtorrent's item, on the UDP side only.
	seedL := make([]byte, ed25519.SeedSize)
	copy(seedL, "wdht wasm page "+hexID(dht.RandomID())[:12])
	keyL := ed25519.NewKeyFromSeed(seedL)
	pubL := keyL.Public().(ed25519.PublicKey)
	var kL [32]byte
	copy(kL[:], pubL)
	dataL := "from libtorrent " + hexID(dht.RandomID())[:10]
	l2 := ltClient("libtorrent-item-client put", seedL, pubL, l1.Addr, "put-mutable::"+hex.EncodeToString([]byte(dataL)))
	if r := ltWait(l2); !r.OK || r.N < 1 || r.Seq == nil {
		t.Fatalf("libtorrent's put: %+v", r)
	}
	targetL := dht.MutableTarget(kL, nil)
	step("libtorrent put %v %q", targetL, dataL)

	w := startWdhtNode(t, "--bootstrap", l1.Addr.String())
	step("wdht node: udp %v (bootstrapping from libtorrent %v), signalling %v", w.udp, l1.Addr, w.signal)
	pg := startWasmPages(t, playwright, "http://"+w.signal.String()+"/", 1)
	if _, err := pg.do(ctx, 0, "join", nil); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	for try := 0; try < 3; try++ { // the bridge's mainline side may still be joining
		if got, err = pg.do(ctx, 0, "get", map[string]any{"target": hexID(targetL)}); err != nil {
			t.Fatal(err)
		}
		if got["found"] == true {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if got["found"] != true || got["value"] != dataL || got["key"] != hex.EncodeToString(pubL) {
		t.Errorf("the page's get of libtorrent's item: %v, want %q signed by %x", got, dataL, pubL)
	} else {
		step("the page read libtorrent's item through the bridge: %v", got)
	}

	// The page's item: put by the page's node (signed in the browser, by the Go code
	// compiled to wasm) on the WebRTC side, where the bridge's WebRTC node stores it in
	// the store its UDP node shares; a fresh libtorrent client on the UDP side gets it.
	seedP := make([]byte, ed25519.SeedSize)
	copy(seedP, "wdht wasm put "+hexID(dht.RandomID())[:12])
	pubP := ed25519.NewKeyFromSeed(seedP).Public().(ed25519.PublicKey)
	dataP := "from the page " + hexID(dht.RandomID())[:10]
	put, err := pg.do(ctx, 0, "put", map[string]any{"item": map[string]any{"value": dataP, "seed": hex.EncodeToString(seedP)}})
	if err != nil {
		t.Fatal(err)
	}
	var kP [32]byte
	copy(kP[:], pubP)
	targetP := dht.MutableTarget(kP, nil)
	seqP, _ := put["seq"].(float64)
	if stored, _ := put["stored"].(float64); stored < 1 || put["target"] != hexID(targetP) || seqP < 1 || put["key"] != hex.EncodeToString(pubP) {
		t.Fatalf("the page's put: %v, want target %v, key %x, stored on a node", put, targetP, pubP)
	}
	step("the page put %v %q: %v", targetP, dataP, put)
	l3 := ltClient("libtorrent-item-client get", nil, nil, l1.Addr, "get-mutable:"+hex.EncodeToString(pubP)+":")
	r := ltWait(l3)
	wantV := fmt.Sprintf("%d:%s", len(dataP), dataP)
	if !r.OK || !r.Found || r.Seq == nil || *r.Seq != int64(seqP) || r.V != hex.EncodeToString([]byte(wantV)) {
		t.Fatalf("libtorrent's get of the page's item: %+v, want seq %d v %q", r, int64(seqP), wantV)
	}
	// libtorrent reports only items whose signature it checked; check it here too.
	sig, err := hex.DecodeString(r.Sig)
	if err != nil {
		t.Fatal(err)
	}
	if msg := fmt.Sprintf("3:seqi%de1:v%s", *r.Seq, wantV); !ed25519.Verify(pubP, []byte(msg), sig) {
		t.Fatalf("libtorrent read the page's item with signature %s, which does not verify over %q", r.Sig, msg)
	}
	step("libtorrent read the page's item: seq %d, v %s, signature %s verified", *r.Seq, r.V, r.Sig)
}
