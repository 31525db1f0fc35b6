//go:build linux

package webtorrent_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	akrpc "github.com/anacrolix/dht/v2/krpc"
	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/internal/interop"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/webrtc"
)

// require skips the test (fails it under CI) unless it runs in the lo-only namespace and
// check passes.
func require(t *testing.T, check func() error) {
	t.Helper()
	err := check()
	if err == nil && os.Getenv(netnsEnv) == "" {
		err = errors.New("not in a lo-only network namespace (needs root and unshare)")
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("must run on CI: %v", err)
		}
		t.Skipf("cannot run here (set CI to make this a failure): %v", err)
	}
}

func webtorrentDir(t *testing.T, version string) string {
	t.Helper()
	var dir string
	require(t, func() (err error) { dir, err = interop.WebtorrentDir(version); return err })
	return dir
}

// driver returns the path of a driver script in testdata/webtorrent.
func driver(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "testdata", "webtorrent", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs a driver and stops it at the end of the test, logging its output when the
// test failed; it fails the test if the JS library threw where upstream would crash.
func start(t *testing.T, name string, argv []string) *interop.Peer {
	t.Helper()
	return startOpts(t, name, argv, interop.Options{})
}

// startOpts is start with options (ReadyTimeout defaults to a minute).
func startOpts(t *testing.T, name string, argv []string, opts interop.Options) *interop.Peer {
	t.Helper()
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = time.Minute
	}
	p, err := interop.StartCommand(t.Context(), name, argv, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stopping: %v", err)
		}
		if strings.Contains(p.Output(), "UNCAUGHT") {
			t.Errorf("%v threw (upstream would crash)", p)
		}
		if t.Failed() || os.Getenv("WDHT_INTEROP_LOG") != "" {
			t.Logf("output of %v:\n%s", p, p.Output())
		}
	})
	t.Logf("started %v version %s (ready after %v)", p, p.Version, p.Ready.Sub(p.Started).Round(time.Millisecond))
	return p
}

// logs collects a node's debug log, shown when the test fails.
type logs struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// node is ours: a WebRTC transport with a KRPC server that answers ping and find_node
// (without signals: plain BEP 5, enough for a JS node to bootstrap) and records the
// queries it got.
type node struct {
	id  krpc.ID
	tr  *webrtc.Transport
	srv *krpc.Server

	mu      sync.Mutex
	queries []string // "method from addr"
}

func newNode(t *testing.T, cfg webrtc.Config) *node {
	t.Helper()
	l := &logs{}
	cfg.Loopback = true
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "ours", Level: hclog.Debug, Output: l})
	tr, err := webrtc.New(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := &node{id: krpc.ID{'w', 'd', 'h', 't'}, tr: tr}
	h := krpc.HandlerFunc(func(ctx context.Context, q *krpc.Query) (*krpc.Response, error) {
		n.mu.Lock()
		n.queries = append(n.queries, q.Method+" from "+q.From.String())
		n.mu.Unlock()
		switch q.Method {
		case krpc.MethodPing, krpc.MethodFindNode:
			return &krpc.Response{Return: &krpc.Return{Return: akrpc.Return{ID: n.id}}}, nil
		}
		return nil, krpc.ErrMethodUnknown
	})
	// JS nodes all query from 127.0.0.1 here: no per-source limit.
	n.srv, err = krpc.NewServer(tr, h, &krpc.Config{SourceRate: -1, Timeout: 3 * time.Second, Attempts: 2})
	if err != nil {
		tr.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.srv.Close()
		tr.Close()
		if t.Failed() {
			t.Logf("our node: stats %+v\nqueries %v\nlog:\n%s", tr.Stats(), n.received(), l.buf.String())
		}
	})
	return n
}

func (n *node) received() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.queries...)
}

// serve runs our signalling server on a free port of 127.0.0.1 and returns its address.
func (n *node) serve(t *testing.T) string {
	t.Helper()
	srv, err := webrtc.NewServer(n.tr, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return l.Addr().String()
}

// freePort returns a TCP port of 127.0.0.1 that nothing listens on (in a namespace of our
// own, nothing else takes it meanwhile).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var (
	pingRE    = regexp.MustCompile(`^RESULT ping (ok id=([0-9a-f]*) from=(\S+)|error .*)`)
	serversRE = regexp.MustCompile(`^RESULT servers (.*)`)
)

func variants() []struct{ name, version string } {
	return []struct{ name, version string }{
		{"http-0.18.6", interop.Webtorrent},
		{"websocket-0.16.2", interop.WebtorrentWS},
	}
}

// A JS node in Node.js bootstraps from our signalling server (WebSocket for 0.16.2, HTTP
// for 0.18.6: one port serves both) and pings us over the data channel; it learns our
// signalling server from our first message.
func TestNodeBootstrapsFromUs(t *testing.T) {
	t.Parallel()
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			dir := webtorrentDir(t, v.version)
			n := newNode(t, webrtc.Config{})
			addr := n.serve(t)
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			p := start(t, "webtorrent-dht "+v.version, []string{"node", driver(t, "peer.js"),
				"--modules", dir, "--role", "client", "--bootstrap", addr, "--duration", "60"})
			m, err := p.WaitLine(ctx, pingRE)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s", m[0])
			if m[2] != fmt.Sprintf("%x", n.id) {
				t.Errorf("their ping: %q, want an answer from our ID %x", m[0], n.id)
			}
			s, err := p.WaitLine(ctx, serversRE)
			if err != nil {
				t.Fatal(err)
			}
			_, port, _ := net.SplitHostPort(addr)
			if want := `{"host":"127.0.0.1","port":` + port + `}`; !strings.Contains(s[1], want) {
				t.Errorf("their known servers %s, want %s (our announcement)", s[1], want)
			}
			got := n.received()
			if !containsPrefix(got, "ping from 127.0.0.1:") {
				t.Errorf("our queries %v, want a ping from them", got)
			}
			if st := n.tr.Stats(); st.Conns != 1 {
				t.Errorf("our stats %+v, want one connection", st)
			}
		})
	}
}

// We bootstrap from a JS node's signalling server (Dial tries WebSocket, then HTTP) and
// ping it through the bootstrap address; it learns our (advertised) signalling server
// from our first message, and we learn its.
func TestWeBootstrapFromNode(t *testing.T) {
	t.Parallel()
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			dir := webtorrentDir(t, v.version)
			port := freePort(t)
			p := start(t, "webtorrent-dht "+v.version, []string{"node", driver(t, "peer.js"),
				"--modules", dir, "--role", "server", "--port", fmt.Sprint(port), "--duration", "60"})
			n := newNode(t, webrtc.Config{Advertise: "127.0.0.1:16881"})
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			addr := fmt.Sprintf("127.0.0.1:%d", port)
			start := time.Now()
			peer, err := n.tr.Dial(ctx, addr)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("connected to %v through %s in %v", peer, addr, time.Since(start).Round(time.Millisecond))
			a := &krpc.Args{}
			a.ID = n.id
			start = time.Now()
			r, err := n.srv.Call(ctx, netip.MustParseAddrPort(addr), &krpc.Query{Method: krpc.MethodPing, Args: a})
			if err != nil {
				t.Fatalf("ping: %v", err)
			}
			t.Logf("ping answered by %x from %v in %v", r.Return.ID, r.From, time.Since(start).Round(time.Millisecond))
			if r.Return.ID != p.ID || r.From != peer {
				t.Errorf("ping answered by %x from %v, want %v from %v", r.Return.ID, r.From, p.ID, peer)
			}
			if got := n.tr.SignallingServers(); len(got) != 1 || got[0] != addr {
				t.Errorf("SignallingServers() = %v, want [%s] (their announcement)", got, addr)
			}
			kind := "http_server"
			if v.version == interop.WebtorrentWS {
				kind = "ws_server"
			}
			// (It arrives before the JS side's own "connect" event, so the JS logs the
			// sender as undefined:undefined; the library handles it all the same.)
			want := "ANNOUNCED " + kind + " 127.0.0.1:16881 by "
			if _, err := p.WaitFunc(ctx, func(s string) bool { return strings.HasPrefix(s, want) }); err != nil {
				t.Errorf("they did not take our announcement (%q): %v", want, err)
			}
			if _, err := p.WaitFunc(ctx, func(s string) bool { return strings.HasPrefix(s, "QUERY ping from ") }); err != nil {
				t.Errorf("they did not see our ping: %v", err)
			}
		})
	}
}

// Headless Chromium with each version's published browser bundle bootstraps from our
// signalling server and pings us.
func TestChromiumBootstrapsFromUs(t *testing.T) {
	t.Parallel()
	for _, v := range variants() {
		t.Run(v.name, func(t *testing.T) {
			// Not parallel with each other: two browsers at once on two cores slow
			// everything else down more than they save.
			var bundle, playwright string
			require(t, func() (err error) {
				if bundle, err = interop.WebtorrentBundle(v.version); err != nil {
					return err
				}
				_, playwright, err = interop.Chromium()
				return err
			})
			n := newNode(t, webrtc.Config{})
			addr := n.serve(t)
			ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
			defer cancel()
			p := start(t, "chromium "+v.version, []string{"node", driver(t, "browser.js"),
				"--playwright", playwright, "--bundle", bundle, "--bootstrap", addr, "--timeout", "80"})
			m, err := p.WaitLine(ctx, pingRE)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s", m[0])
			if m[2] != fmt.Sprintf("%x", n.id) {
				t.Errorf("their ping: %q, want an answer from our ID %x", m[0], n.id)
			}
			if s, err := p.WaitLine(ctx, serversRE); err != nil {
				t.Error(err)
			} else {
				_, port, _ := net.SplitHostPort(addr)
				if want := `{"host":"127.0.0.1","port":` + port + `}`; !strings.Contains(s[1], want) {
					t.Errorf("their known servers %s, want %s (our announcement)", s[1], want)
				}
			}
			if got := n.received(); !containsPrefix(got, "ping from 127.0.0.1:") {
				t.Errorf("our queries %v, want a ping from them", got)
			}
		})
	}
}

func containsPrefix(ss []string, prefix string) bool {
	for _, s := range ss {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
