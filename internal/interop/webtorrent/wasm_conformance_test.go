//go:build linux

package webtorrent_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The transport conformance suite (transport/transporttest) against transport/webrtc
// compiled to WebAssembly, in headless Chromium: the test binary of ./wasmconf, built for
// GOOS=js GOARCH=wasm, runs in a page (testdata/webtorrent/wasm-test.js), each pair of
// transports connected through the Offer/Answer API over the browser's RTCPeerConnection.
// Every subtest must pass, but Batch, which the WebRTC transport skips (it does not
// implement transport.Batcher), natively too.
//
// It runs only with WDHT_WASM_CONFORMANCE=1 (not on CI): about one run in six, a subtest
// still fails in the browser (a channel found closed just after the pair connected, in
// Oversize; once, with ReadyDelay -1, a lost first message), which the transport's js
// side has yet to explain.
func TestWasmConformance(t *testing.T) {
	if os.Getenv("WDHT_WASM_CONFORMANCE") != "1" {
		t.Skip("set WDHT_WASM_CONFORMANCE=1 to run the conformance suite in Chromium (flaky: see the comment)")
	}
	playwright := wasmRequire(t)
	ctx, cancel := context.WithTimeout(t.Context(), 240*time.Second)
	defer cancel()
	out, err := exec.Command("go", "env", "GOMOD", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Fields(string(out))
	root, goroot := filepath.Dir(env[0]), env[1]
	dir := t.TempDir()
	bin := filepath.Join(dir, "conformance.wasm")
	build := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, "./internal/interop/webtorrent/wasmconf")
	build.Dir = root
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c ./internal/interop/webtorrent/wasmconf for js/wasm: %v\n%s", err, b)
	}
	execJS := filepath.Join(goroot, "lib", "wasm", "wasm_exec.js")
	if _, err := os.Stat(execJS); err != nil {
		execJS = filepath.Join(goroot, "misc", "wasm", "wasm_exec.js")
	}
	p := start(t, "chromium wasm test", []string{"node", driver(t, "wasm-test.js"), "--playwright", playwright,
		"--wasm", bin, "--exec", execJS, "--timeout", "200", "--", "-test.v", "-test.run", "^TestConformance$"})
	l, err := p.WaitFunc(ctx, func(s string) bool { return strings.HasPrefix(s, "EXIT ") })
	if err != nil {
		t.Fatalf("%v\n%s", err, p.Output())
	}
	output := p.Output()
	passed := regexp.MustCompile(`--- PASS: TestConformance/(\S+)`).FindAllStringSubmatch(output, -1)
	var names []string
	for _, m := range passed {
		names = append(names, m[1])
	}
	t.Logf("passed in Chromium: %v", names)
	if l != "EXIT 0" || !strings.Contains(output, "--- PASS: TestConformance ") || strings.Contains(output, "--- FAIL") {
		t.Fatalf("the conformance suite in Chromium: %s\n%s", l, output)
	}
	// The suite's subtests but Batch (skipped: no transport.Batcher).
	if len(passed) < 14 {
		t.Errorf("%d subtests passed, want 14:\n%s", len(passed), output)
	}
	if !strings.Contains(output, "--- SKIP: TestConformance/Batch") {
		t.Errorf("Batch was not skipped as natively:\n%s", output)
	}
}
