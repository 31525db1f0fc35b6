package main

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
)

//go:generate go run demo_gen.go

// demoFiles is the demo page that "wdht node" serves on its signalling port: index.html
// (committed) and the files 'go generate ./cmd/wdht' makes (gitignored): wdht.wasm.gz
// (./cmd/wdht-wasm built for GOOS=js GOARCH=wasm, gzipped), wasm_exec.js (from the Go
// installation that built it), wdht.js and wdht.d.ts (from cmd/wdht-wasm). Without them,
// GET / says how to make them.
//
//go:embed demo
var demoFiles embed.FS

// demoBuilt reports whether the generated files are embedded.
func demoBuilt(files fs.FS) bool {
	for _, f := range []string{"demo/wdht.wasm.gz", "demo/wasm_exec.js", "demo/wdht.js"} {
		if _, err := fs.Stat(files, f); err != nil {
			return false
		}
	}
	return true
}

// notBuilt is GET / when the demo was not generated.
const notBuilt = `<!doctype html><meta charset="utf-8"><title>wdht: demo not built</title>
<h1>wdht: the demo page is not built</h1>
<p>This is a wdht signalling server (WebSocket and HTTP POST). The demo page, a wdht node
compiled to WebAssembly, is built with <code>go generate ./cmd/wdht</code> and then
<code>go run ./cmd/wdht node</code> (or <code>go build ./cmd/wdht</code>).</p>
`

// demoHandler serves the demo page: GET / the page, /wdht.wasm (gzip-encoded when the
// browser accepts it), /wasm_exec.js, /wdht.js, /wdht.d.ts. Signalling requests never reach
// it (webrtc.ServerConfig.Fallback).
func demoHandler(files fs.FS) http.Handler {
	built := demoBuilt(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD, POST, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "no-cache")
		name := strings.TrimPrefix(r.URL.Path, "/")
		if name == "" {
			name = "index.html"
		}
		if !built {
			if name != "index.html" {
				http.NotFound(w, r)
				return
			}
			h.Set("Content-Type", "text/html; charset=utf-8")
			io.WriteString(w, notBuilt)
			return
		}
		types := map[string]string{
			"index.html":   "text/html; charset=utf-8",
			"wasm_exec.js": "text/javascript; charset=utf-8",
			"wdht.js":      "text/javascript; charset=utf-8",
			"wdht.d.ts":    "text/plain; charset=utf-8",
			"wdht.wasm":    "application/wasm",
		}
		typ, ok := types[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", typ)
		if name != "wdht.wasm" {
			b, err := fs.ReadFile(files, "demo/"+name)
			if err != nil {
				http.NotFound(w, r)
				return
			}
			h.Set("Content-Length", strconv.Itoa(len(b)))
			if r.Method == http.MethodGet {
				w.Write(b)
			}
			return
		}
		gz, err := fs.ReadFile(files, "demo/wdht.wasm.gz")
		if err != nil {
			http.NotFound(w, r)
			return
		}
		h.Add("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
			h.Set("Content-Length", strconv.Itoa(len(gz)))
			if r.Method == http.MethodGet {
				w.Write(gz)
			}
			return
		}
		zr, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if r.Method == http.MethodGet {
			io.Copy(w, zr)
		}
	})
}

// acceptsGzip reports whether an Accept-Encoding header accepts gzip (not with q=0).
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") && strings.TrimSpace(coding) != "*" {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		if q == "q=0" || q == "q=0.0" || q == "q=0.00" || q == "q=0.000" {
			return false
		}
		return true
	}
	return false
}
