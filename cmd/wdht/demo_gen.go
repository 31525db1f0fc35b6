//go:build ignore

// demo_gen builds the demo page's generated files (go generate ./cmd/wdht): the wasm node
// (./cmd/wdht-wasm, GOOS=js GOARCH=wasm, -trimpath, -ldflags=-s -w), gzipped as
// demo/wdht.wasm.gz; wasm_exec.js from the Go installation that built it; wdht.js and
// wdht.d.ts from cmd/wdht-wasm. They are gitignored and embedded by demo.go. It prints
// the sizes, and fails when WDHT_WASM_BUDGET (bytes, gzipped) is set and exceeded.
package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo_gen:", err)
		os.Exit(1)
	}
}

func run() error {
	tmp, err := os.MkdirTemp("", "wdht-wasm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	wasm := filepath.Join(tmp, "wdht.wasm")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", wasm, "../wdht-wasm")
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("building ../wdht-wasm: %w", err)
	}
	raw, err := os.ReadFile(wasm)
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	zw.Write(raw)
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile("demo/wdht.wasm.gz", gz.Bytes(), 0o644); err != nil {
		return err
	}
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("go env GOROOT: %w", err)
	}
	root := strings.TrimSpace(string(out))
	var execJS []byte
	for _, p := range []string{"lib/wasm/wasm_exec.js", "misc/wasm/wasm_exec.js"} {
		if execJS, err = os.ReadFile(filepath.Join(root, p)); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("no wasm_exec.js in %s: %w", root, err)
	}
	if err := os.WriteFile("demo/wasm_exec.js", execJS, 0o644); err != nil {
		return err
	}
	for _, f := range []string{"wdht.js", "wdht.d.ts"} {
		b, err := os.ReadFile(filepath.Join("../wdht-wasm", f))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join("demo", f), b, 0o644); err != nil {
			return err
		}
	}
	fmt.Printf("WASM raw=%d gzip=%d\n", len(raw), gz.Len())
	if s := os.Getenv("WDHT_WASM_BUDGET"); s != "" {
		budget, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("WDHT_WASM_BUDGET %q: want bytes", s)
		}
		if gz.Len() > budget {
			return fmt.Errorf("wdht.wasm is %d bytes gzipped, over the budget of %d (WDHT_WASM_BUDGET)", gz.Len(), budget)
		}
	}
	return nil
}
