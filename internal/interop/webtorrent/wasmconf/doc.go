// Package wasmconf runs the transport conformance suite (transport/transporttest) against
// transport/webrtc compiled for GOOS=js GOARCH=wasm, in a browser: its test, built only for
// js/wasm, makes each pair of transports in one page and connects them through the
// Offer/Answer API (the page's own RTCPeerConnections, no signalling server: a page cannot
// listen). internal/interop/webtorrent's TestWasmConformance compiles it (go test -c) and
// runs the test binary in headless Chromium. go test for js/wasm cannot run it: it runs
// test binaries under Node.js, which has no RTCPeerConnection.
package wasmconf
