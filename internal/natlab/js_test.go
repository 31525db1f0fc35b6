//go:build linux

package natlab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/internal/interop"
	"github.com/wdht/wdht/internal/netlab"
)

// The JS webtorrent-dht 0.18.6 behind the lab's NATs: the published browser bundle in
// headless Chromium (internal/interop/testdata/webtorrent/browser-dht.js) and the npm
// package in Node.js (dht.js there), each run inside a host's namespace behind a NAT,
// with coturn's STUN URL as their ICE server (the library's simple_peer_opts.config
// option, set by those drivers), bootstrapping from the public bridge.

// requireJS skips the test when check fails (no node, no Chromium, packages not
// installed), or fails it under CI.
func requireJS(t *testing.T, check func() error) {
	t.Helper()
	if err := check(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (CI is set: the test must run)", err)
		}
		t.Skip(err)
	}
}

// jsDriver returns the path of a driver script of internal/interop/testdata/webtorrent.
func jsDriver(t *testing.T, name string) string {
	t.Helper()
	p, err := interop.WebtorrentDriver(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// jsResult is a "RESULT <kind> <name> k=v ..." line of the drivers.
type jsResult struct {
	line   string
	fields map[string]string
}

var jsFieldRE = regexp.MustCompile(`(\w+)=(\[[^\]]*\]|"[^"]*"|\S+)`)

func parseJSResult(line string) jsResult {
	r := jsResult{line: line, fields: map[string]string{}}
	for _, m := range jsFieldRE.FindAllStringSubmatch(line, -1) {
		r.fields[m[1]] = m[2]
	}
	return r
}

func (r jsResult) ok() bool { return strings.Contains(r.line, " ok ") }

func (r jsResult) int(k string) int { n, _ := strconv.Atoi(r.fields[k]); return n }

func (r jsResult) ms() float64 { f, _ := strconv.ParseFloat(r.fields["ms"], 64); return f }

// ids returns the node IDs of a lookup's peers (the drivers ping each peer found over the
// connection the lookup opened).
func (r jsResult) ids() []string {
	var ids []string
	json.Unmarshal([]byte(r.fields["ids"]), &ids)
	return ids
}

// foundFrom returns the first address of found whose IP is ip (a NAT's public address).
func foundFrom(found []string, ip netip.Addr) (string, bool) {
	for _, f := range found {
		if ap, err := netip.ParseAddrPort(f); err == nil && ap.Addr() == ip {
			return f, true
		}
	}
	return "", false
}

// browserRow is one row of the Chromium table.
type browserRow struct {
	browserNAT, goNAT     netlab.NATType
	ready                 float64 // the page's node ready (bootstrapped), ms since it was made
	browserMS, goMS       float64 // each side's lookup of the other's peer
	candidates            string  // the Go node's connection to the browser, local/remote
	browserFound, goFound bool
}

func (r browserRow) String() string {
	found := 0
	for _, f := range []bool{r.browserFound, r.goFound} {
		if f {
			found++
		}
	}
	return fmt.Sprintf("| Chromium behind %s | Go behind %s | STUN | %v | %s | %.0f ms | %.0f ms | %.0f ms | %d/2 |",
		r.browserNAT, r.goNAT, r.browserFound && r.goFound, r.candidates, r.ready, r.browserMS, r.goMS, found)
}

// TestChromiumBehindNAT: headless Chromium running the published webtorrent-dht browser
// bundle, inside a host behind one NAT of the lab, and one of our nodes behind another,
// both with coturn's STUN server, both bootstrapping from the public bridge. Each
// announces an infohash and looks up the other's: the browser's lookup finds a peer whose
// node ID (asked by ping over the connection the lookup opened) is the Go node's, and the
// Go node's lookup finds a peer at the public address of the browser's NAT (the
// connection it opened from offers the bridge relayed), over a server- or peer-reflexive
// remote candidate.
func TestChromiumBehindNAT(t *testing.T) {
	var bundle, playwright string
	requireJS(t, func() (err error) {
		if bundle, err = interop.WebtorrentBundle(interop.Webtorrent); err != nil {
			return err
		}
		_, playwright, err = interop.Chromium()
		return err
	})
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	l := newLab(t, netlab.NATConfig{}, netlab.EndpointIndependent, netlab.PortRestricted)
	var rows []browserRow
	for _, tc := range []struct{ browser, goNode netlab.NATType }{
		{netlab.PortRestricted, netlab.EndpointIndependent},
		{netlab.PortRestricted, netlab.PortRestricted},
		// Not the browser behind the full cone (eim) NAT: it passed once and failed
		// once (the page's bootstrap threw "Cannot read properties of undefined
		// (reading 'split')": a connection's remoteAddress was undefined, which is what
		// the bundle's simple-peer reads for a peer-reflexive remote candidate, whose
		// address Chromium hides in getStats). See the README.
	} {
		t.Run(fmt.Sprintf("chromium-%s-go-%s", tc.browser, tc.goNode), func(t *testing.T) {
			r := runBrowserPair(ctx, t, l, tc.browser, tc.goNode, bundle, playwright)
			rows = append(rows, r)
		})
	}
	t.Log("\n| browser | Go node | ICE servers | connected | candidates (Go→browser, local/remote) | browser ready | browser's lookup | Go's lookup | lookups found |\n" +
		"| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n" + joinLines(rows))
}

func joinLines[T fmt.Stringer](rows []T) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r.String() + "\n")
	}
	return b.String()
}

// runBrowserPair runs one row of TestChromiumBehindNAT: the browser behind the "a" NAT of
// type browserNAT, our node behind the "b" NAT of type goNAT.
func runBrowserPair(ctx context.Context, t *testing.T, l *lab, browserNAT, goNAT netlab.NATType, bundle, playwright string) browserRow {
	t.Helper()
	row := browserRow{browserNAT: browserNAT, goNAT: goNAT}
	stun := l.turn.STUNURL()
	br := startBridge(ctx, t, l.bridgeHost)
	bh, gh := l.hosts[browserNAT.String()+"/a"], l.hosts[goNAT.String()+"/b"]
	goID := dht.RandomID()
	g := startNode(ctx, t, gh, nodeSpec{ICE: []string{stun}, Bootstrap: br.signal, ID: goID.String()})
	if g.joined.Err != "" {
		t.Fatalf("%s did not join through the bridge: %s", gh.Name, g.joined.Err)
	}
	tag := fmt.Sprint(browserNAT, goNAT, time.Now().UnixNano())
	ihGo, ihBrowser := infohash("go"+tag), infohash("browser"+tag)
	if r := g.do(ctx, t, command{Op: "announce", IH: ihGo}); r.Err != "" || r.Stored == 0 {
		t.Fatalf("the Go node's announce: %+v", r)
	}

	start := time.Now()
	p := bh.Start(t, nil, "node", jsDriver(t, "browser-dht.js"), "--playwright", playwright, "--bundle", bundle,
		"--bootstrap", br.signal, "--announce", ihBrowser, "--lookup", ihGo, "--ice-server", stun, "--no-loopback", "--timeout", "90")
	t.Cleanup(func() {
		if out := p.Output(); strings.Contains(out, "UNCAUGHT") {
			t.Errorf("the browser's page threw (upstream would crash):\n%s", out)
		}
	})
	ready := parseJSResult(p.WaitLine(ctx, t, "READY b "))
	row.ready = ready.ms()
	t.Logf("browser ready after %v: %s", time.Since(start).Round(time.Millisecond), ready.line)
	ann := parseJSResult(p.WaitLine(ctx, t, "RESULT announce b "))
	t.Logf("browser's announce: %s", ann.line)
	if !ann.ok() || ann.int("n") < 1 {
		t.Fatalf("the browser's announce: %s", ann.line)
	}
	// The browser looks up the Go node's infohash (it began right after its announce);
	// the Go node, at the same time, the browser's.
	var rg reply
	var wg sync.WaitGroup
	wg.Go(func() { rg = g.do(ctx, t, command{Op: "lookup", IH: ihBrowser, Timeout: lookupTimeoutMS}) })
	lk := parseJSResult(p.WaitLine(ctx, t, "RESULT lookup b "))
	wg.Wait()
	t.Logf("browser's lookup: %s", lk.line)
	t.Logf("Go node's lookup: %+v", rg)
	row.browserMS, row.goMS = lk.ms(), rg.MS
	row.browserFound = slices.Contains(lk.ids(), goID.String())
	if !row.browserFound {
		t.Errorf("the browser's lookup found peers with IDs %v, want the Go node's %s", lk.ids(), goID)
	}
	addr, ok := foundFrom(rg.Found, bh.NAT.PublicIP)
	row.goFound = ok
	if !ok {
		t.Errorf("the Go node's lookup found %v, want a peer at the browser's NAT %v", rg.Found, bh.NAT.PublicIP)
	} else {
		row.candidates = candidatesOf(rg.Peers, addr)
		if _, remote, _ := strings.Cut(row.candidates, "/"); remote != "srflx" && remote != "prflx" {
			t.Errorf("the Go node's connection to the browser: candidates %s, want a server- or peer-reflexive remote candidate", row.candidates)
		}
	}
	t.Log(row)
	return row
}
