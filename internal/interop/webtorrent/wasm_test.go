//go:build linux

package webtorrent_test

import (
	"context"
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
	argv := append([]string{bin, "node", "--addr", "127.0.0.1:0", "--signal-addr", "127.0.0.1:0",
		"--limits=false", "--status", "0", "--max-seconds", "300"}, args...)
	p := start(t, "wdht node", argv)
	m := signalFieldRE.FindStringSubmatch(p.Output())
	if m == nil {
		t.Fatalf("no signal= in the LISTENING line:\n%s", p.Output())
	}
	return &wdhtNode{p: p, udp: p.Addr, signal: netip.MustParseAddrPort(m[1])}
}

// wasmPages is a wasm-page.js process: Chromium with pages on the demo.
type wasmPages struct {
	h *jsHost
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
	m := map[string]any{"page": page}
	for k, v := range args {
		m[k] = v
	}
	w.h.send(cmd, m)
	l, err := w.h.wait(ctx, fmt.Sprintf("RESULT %s p%d ", cmd, page))
	if err != nil {
		return nil, err
	}
	_, js, _ := strings.Cut(l, fmt.Sprintf("RESULT %s p%d ", cmd, page))
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
