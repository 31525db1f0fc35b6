package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func TestDemoHandler(t *testing.T) {
	wasm := []byte("\x00asm fake module bytes")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(wasm)
	zw.Close()
	built := fstest.MapFS{
		"demo/index.html":    {Data: []byte("<!doctype html>page")},
		"demo/wdht.wasm.gz":  {Data: gz.Bytes()},
		"demo/wasm_exec.js":  {Data: []byte("// go")},
		"demo/wdht.js":       {Data: []byte("// loader")},
		"demo/wdht.d.ts":     {Data: []byte("// types")},
		"demo/something.txt": {Data: []byte("not served")},
	}
	notBuiltFS := fstest.MapFS{"demo/index.html": {Data: []byte("<!doctype html>page")}}

	get := func(h http.Handler, method, path, accept string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, nil)
		if accept != "" {
			r.Header.Set("Accept-Encoding", accept)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	h := demoHandler(built)
	for _, tc := range []struct {
		name, method, path, accept string
		code                       int
		typ, encoding              string
		body                       []byte
	}{
		{"page", "GET", "/", "", 200, "text/html; charset=utf-8", "", []byte("<!doctype html>page")},
		{"wasm gzip", "GET", "/wdht.wasm", "gzip, deflate, br", 200, "application/wasm", "gzip", gz.Bytes()},
		{"wasm plain", "GET", "/wdht.wasm", "", 200, "application/wasm", "", wasm},
		{"wasm gzip refused", "GET", "/wdht.wasm", "gzip;q=0, br", 200, "application/wasm", "", wasm},
		{"wasm_exec", "GET", "/wasm_exec.js", "", 200, "text/javascript; charset=utf-8", "", []byte("// go")},
		{"loader", "GET", "/wdht.js", "", 200, "text/javascript; charset=utf-8", "", []byte("// loader")},
		{"types", "GET", "/wdht.d.ts", "", 200, "text/plain; charset=utf-8", "", []byte("// types")},
		{"head", "HEAD", "/wdht.wasm", "gzip", 200, "application/wasm", "gzip", nil},
		{"other file", "GET", "/something.txt", "", 404, "", "", nil},
		{"traversal", "GET", "/../go.mod", "", 404, "", "", nil},
		{"put", "PUT", "/", "", 405, "", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := get(h, tc.method, tc.path, tc.accept)
			if w.Code != tc.code {
				t.Fatalf("status %d, want %d", w.Code, tc.code)
			}
			if tc.code != 200 {
				return
			}
			if got := w.Header().Get("Content-Type"); got != tc.typ {
				t.Errorf("Content-Type %q, want %q", got, tc.typ)
			}
			if got := w.Header().Get("Content-Encoding"); got != tc.encoding {
				t.Errorf("Content-Encoding %q, want %q", got, tc.encoding)
			}
			if tc.body != nil && !bytes.Equal(w.Body.Bytes(), tc.body) {
				t.Errorf("body %q, want %q", w.Body.Bytes(), tc.body)
			}
			if tc.method == "HEAD" && w.Body.Len() != 0 {
				t.Errorf("HEAD has a body of %d bytes", w.Body.Len())
			}
		})
	}

	nb := demoHandler(notBuiltFS)
	w := get(nb, "GET", "/", "")
	body, _ := io.ReadAll(w.Body)
	if w.Code != 200 || !strings.Contains(string(body), "go generate ./cmd/wdht") {
		t.Errorf("not built: GET / = %d %q, want the page saying how to build the demo", w.Code, body)
	}
	if w := get(nb, "GET", "/wdht.wasm", "gzip"); w.Code != 404 {
		t.Errorf("not built: GET /wdht.wasm = %d, want 404", w.Code)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{
		"": false, "gzip": true, "GZIP": true, "deflate, gzip;q=1.0": true, "br": false,
		"gzip;q=0": false, "gzip; q=0.000": false, "*": true, "gzip;q=0.5": true,
	} {
		if got := acceptsGzip(h); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", h, got, want)
		}
	}
}
