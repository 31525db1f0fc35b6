//go:build unix

package interop_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	akrpc "github.com/anacrolix/dht/v2/krpc"
	"github.com/hashicorp/go-hclog"
	"go.uber.org/goleak"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/internal/interop"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/udp"
)

// minParallel is the -test.parallel these tests run with unless it is set explicitly. They
// spend their time waiting for real peers' timers (libtorrent's 5 s table refresh,
// anacrolix's one-minute maintainer), not on the CPU, so running them all at once keeps the
// package at about the length of its slowest test instead of the sum of all of them; the
// default (GOMAXPROCS, 2 on CI) would run them two by two.
const minParallel = 16

func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if f := flag.Lookup("test.parallel"); f != nil && !explicit {
		if n := f.Value.(flag.Getter).Get().(int); n < minParallel {
			f.Value.Set(fmt.Sprint(minParallel))
		}
	}
	// Every real peer's output reader and waiter must be gone once its Stop returned,
	// and every node of ours closed.
	goleak.VerifyTestMain(m)
}

// requireImpl skips the test when impl cannot run here, except on CI (CI set), where the
// peers are installed by the harness's install.sh and a missing one is a failure.
func requireImpl(t *testing.T, impl string) {
	t.Helper()
	if err := interop.Available(impl); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s must be available on CI: %v", impl, err)
		}
		t.Skipf("%s not available (set CI to make this a failure): %v", impl, err)
	}
}

// startPeer starts a real node of impl through the harness's start script and stops it
// at the end of the test, logging everything it printed when the test failed.
func startPeer(t *testing.T, impl string, opts interop.Options) *interop.Peer {
	t.Helper()
	requireImpl(t, impl)
	p, err := interop.Start(t.Context(), impl, opts)
	if err != nil {
		t.Fatal(err)
	}
	cleanupPeer(t, p)
	t.Logf("started %v version %s (ready after %v)", p, p.Version, p.Ready.Sub(p.Started).Round(time.Millisecond))
	return p
}

// startProcess is startPeer for a driver program.
func startProcess(t *testing.T, name string, argv []string, opts interop.Options) *interop.Peer {
	t.Helper()
	p, err := interop.StartProcess(t.Context(), name, argv, opts)
	if err != nil {
		t.Fatal(err)
	}
	cleanupPeer(t, p)
	t.Logf("started %v version %s (ready after %v)", p, p.Version, p.Ready.Sub(p.Started).Round(time.Millisecond))
	return p
}

func cleanupPeer(t *testing.T, p *interop.Peer) {
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("stopping: %v", err) // a peer that crashed or hung is a finding
		}
		if t.Failed() {
			t.Logf("output of %v:\n%s", p, p.Output())
		}
	})
}

// peersDir is the harness directory, for driver programs that import its code.
func peersDir(t *testing.T) string {
	t.Helper()
	d, err := interop.PeersDir()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// testdata returns the absolute path of a file under testdata.
func testdata(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// logBuffer keeps the last maxLog bytes of a node's log, for dumping on failure.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const maxLog = 256 << 10

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len()+len(p) > maxLog {
		b.buf.Next(b.buf.Len() + len(p) - maxLog)
	}
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newNode starts one of our nodes on its own UDP socket on 127.0.0.1 and closes it at the
// end of the test, logging its stats and debug log when the test failed. cfg may be nil.
func newNode(t *testing.T, name string, cfg *dht.Config) *dht.Node {
	t.Helper()
	tr, err := udp.Listen(netip.MustParseAddrPort("127.0.0.1:0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var c dht.Config
	if cfg != nil {
		c = *cfg
	}
	logs := &logBuffer{}
	c.Logger = hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.Debug, Output: logs})
	n, err := dht.New(tr, &c)
	if err != nil {
		tr.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Close()
		tr.Close()
		if t.Failed() {
			t.Logf("our node %s %v id=%v: stats %+v, table %v\nlog:\n%s", name, n.Addr(), n.ID(), n.Stats(), n.Nodes(), logs.String())
		}
	})
	return n
}

// noSourceLimit is the KRPC config for our nodes in busy tests: on loopback every peer
// (and every node of ours) sends from 127.0.0.1, so the per-source-IP limit, meant for one
// remote host, would throttle the whole network as if it were one host.
var noSourceLimit = krpc.Config{SourceRate: -1}

// probe is an outside observer: a BEP 43 read-only KRPC client on its own socket. Its
// queries carry ro=1, so libtorrent and anacrolix leave it out of their tables
// (bittorrent-dht ignores ro and adds it; callers drop its address from what they see).
type probe struct {
	id   dht.ID
	tr   *udp.Transport
	srv  *krpc.Server
	addr netip.AddrPort
}

func newProbe(t *testing.T) *probe {
	t.Helper()
	tr, err := udp.Listen(netip.MustParseAddrPort("127.0.0.1:0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := krpc.NewServer(tr, nil, &krpc.Config{ReadOnly: true, Timeout: 500 * time.Millisecond, Attempts: 2})
	if err != nil {
		tr.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		tr.Close()
	})
	return &probe{id: dht.RandomID(), tr: tr, srv: srv, addr: tr.LocalAddr()}
}

func (p *probe) call(ctx context.Context, to netip.AddrPort, method string, a *krpc.Args) (*krpc.Response, error) {
	a.ID = p.id
	return p.srv.Call(ctx, to, &krpc.Query{Method: method, Args: a, ReadOnly: true})
}

func (p *probe) ping(ctx context.Context, to netip.AddrPort) (dht.ID, error) {
	r, err := p.call(ctx, to, krpc.MethodPing, &krpc.Args{})
	if err != nil {
		return dht.ID{}, err
	}
	return r.Return.ID, nil
}

// table returns a node's routing table as seen from outside, the way the harness's
// nettest.py judges it: a read-only get_peers whose info_hash is the node's own ID is
// answered with the K closest nodes to it, which in a small network is the whole table.
// (find_node would not do: anacrolix answers it from info_hash, not target.) The probe's
// own address is left out.
func (p *probe) table(ctx context.Context, to netip.AddrPort, id dht.ID) ([]dht.NodeInfo, error) {
	a := &krpc.Args{}
	a.InfoHash = id
	r, err := p.call(ctx, to, krpc.MethodGetPeers, a)
	if err != nil {
		return nil, err
	}
	ns := nodeInfos(r.Return.Nodes)
	return slices.DeleteFunc(ns, func(ni dht.NodeInfo) bool { return ni.Addr == p.addr }), nil
}

// nodeInfos converts compact node infos.
func nodeInfos(ns []akrpc.NodeInfo) []dht.NodeInfo {
	var out []dht.NodeInfo
	for _, n := range ns {
		ip, ok := netip.AddrFromSlice(n.Addr.IP)
		if !ok || n.Addr.Port <= 0 || n.Addr.Port > 65535 {
			continue
		}
		out = append(out, dht.NodeInfo{ID: n.ID, Addr: netip.AddrPortFrom(ip.Unmap(), uint16(n.Addr.Port))})
	}
	return out
}

// peerAddrs converts get_peers values.
func peerAddrs(vs []akrpc.NodeAddr) []netip.AddrPort {
	var out []netip.AddrPort
	for _, v := range vs {
		ip, ok := netip.AddrFromSlice(v.IP)
		if !ok || v.Port <= 0 || v.Port > 65535 {
			continue
		}
		out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(v.Port)))
	}
	return out
}

func addrsOf(ns []dht.NodeInfo) []netip.AddrPort {
	out := make([]netip.AddrPort, len(ns))
	for i, n := range ns {
		out[i] = n.Addr
	}
	return out
}

func hasNode(ns []dht.NodeInfo, addr netip.AddrPort) bool {
	return slices.ContainsFunc(ns, func(n dht.NodeInfo) bool { return n.Addr == addr })
}

// missing returns the addresses of want that ns lacks.
func missing(ns []dht.NodeInfo, want []netip.AddrPort) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range want {
		if !hasNode(ns, a) {
			out = append(out, a)
		}
	}
	return out
}

// poll calls f every interval until it returns true or ctx ends, and reports which.
func poll(ctx context.Context, interval time.Duration, f func() bool) bool {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if f() {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// getPeers runs our node's iterative get_peers lookup and returns every peer it found.
func getPeers(ctx context.Context, n *dht.Node, ih dht.ID) ([]netip.AddrPort, *dht.LookupResult, error) {
	var peers []netip.AddrPort
	res, err := n.GetPeers(ctx, ih, func(p netip.AddrPort, _ dht.NodeInfo) bool {
		peers = append(peers, p)
		return true
	})
	return peers, res, err
}

func fmtToken(tok *string) string {
	if tok == nil {
		return "none"
	}
	return fmt.Sprintf("%d bytes %x", len(*tok), *tok)
}

func fmtNodes(ns []dht.NodeInfo) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = n.String()
	}
	return "[" + strings.Join(s, " ") + "]"
}

func loopbackAddr(port int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port))
}
