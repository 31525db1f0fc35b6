//go:build unix

package interop

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// The WebTorrent DHT (webtorrent-dht, WebRTC) reference peers. Their tests are in
// internal/interop/webtorrent; the Node.js and browser drivers in testdata/webtorrent.
const (
	// Webtorrent is webtorrent-dht 0.18.6, HTTP signalling, from the shared harness
	// ../shared/interop/js-webtorrent-dht (npm ci there installs it).
	Webtorrent = "0.18.6"
	// WebtorrentWS is webtorrent-dht 0.16.2, the last release line with WebSocket
	// signalling, from testdata/webtorrent-ws (npm ci there installs it).
	WebtorrentWS = "0.16.2"
)

// WebtorrentDir returns the directory whose node_modules hold the given webtorrent-dht
// version (Webtorrent or WebtorrentWS), or why it cannot run here: no node, or the
// packages are not installed (the error says which npm ci to run).
func WebtorrentDir(version string) (string, error) {
	if _, err := exec.LookPath("node"); err != nil {
		return "", fmt.Errorf("interop: webtorrent-dht: %w", err)
	}
	var dir string
	switch version {
	case Webtorrent:
		s, err := SharedDir()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(s, "interop", "js-webtorrent-dht")
	case WebtorrentWS:
		root, err := moduleRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "internal", "interop", "testdata", "webtorrent-ws")
	default:
		return "", fmt.Errorf("interop: unknown webtorrent-dht version %q", version)
	}
	pj := filepath.Join(dir, "node_modules", "webtorrent-dht", "package.json")
	b, err := os.ReadFile(pj)
	if err != nil {
		return "", fmt.Errorf("interop: webtorrent-dht %s not installed (run npm ci in %s): %w", version, dir, err)
	}
	var p struct{ Version string }
	if err := json.Unmarshal(b, &p); err != nil || p.Version != version {
		return "", fmt.Errorf("interop: %s has version %q, want %s (run npm ci in %s)", pj, p.Version, version, dir)
	}
	if !isFile(filepath.Join(dir, "node_modules", "wrtc", "package.json")) {
		return "", fmt.Errorf("interop: wrtc (@roamhq/wrtc) not installed in %s (run npm ci there)", dir)
	}
	return dir, nil
}

// WebtorrentBundle returns the published browser build of a webtorrent-dht version
// (dist/webtorrent-dht.browser.js, global webtorrent_dht).
func WebtorrentBundle(version string) (string, error) {
	dir, err := WebtorrentDir(version)
	if err != nil {
		return "", err
	}
	f := filepath.Join(dir, "node_modules", "webtorrent-dht", "dist", "webtorrent-dht.browser.js")
	if !isFile(f) {
		return "", fmt.Errorf("interop: no browser bundle %s", f)
	}
	return f, nil
}

// Chromium returns the browser binary ($CHROMIUM, else Debian's /usr/bin/chromium) and the
// directory whose node_modules hold playwright-core (the shared harness), or why headless
// Chromium cannot run here.
func Chromium() (browser, playwright string, err error) {
	browser = os.Getenv("CHROMIUM")
	if browser == "" {
		browser = "/usr/bin/chromium"
	}
	if st, err := os.Stat(browser); err != nil || st.Mode()&0o111 == 0 {
		return "", "", fmt.Errorf("interop: no Chromium at %s (apt-get install chromium, or set CHROMIUM)", browser)
	}
	dir, err := WebtorrentDir(Webtorrent)
	if err != nil {
		return "", "", err
	}
	if !isFile(filepath.Join(dir, "node_modules", "playwright-core", "package.json")) {
		return "", "", fmt.Errorf("interop: playwright-core not installed in %s (run npm ci there)", dir)
	}
	return browser, dir, nil
}

// WebtorrentDriver returns the path of a driver script of the WebTorrent interop tests
// (internal/interop/testdata/webtorrent/<name>), for programs outside the test package
// such as bench/webjoin.
func WebtorrentDriver(name string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	f := filepath.Join(root, "internal", "interop", "testdata", "webtorrent", name)
	if !isFile(f) {
		return "", fmt.Errorf("interop: no driver %s", f)
	}
	return f, nil
}
