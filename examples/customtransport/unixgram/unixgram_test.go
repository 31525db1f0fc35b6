//go:build linux

package unixgram_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/examples/customtransport/unixgram"
	"github.com/wdht/wdht/transport"
	"github.com/wdht/wdht/transport/transporttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tempDir returns a new directory with a short path (t.TempDir's, which contains the
// test's name, may be too long for a socket path) that is removed at cleanup.
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ug")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func listen(t *testing.T, dir string, addr netip.AddrPort) *unixgram.Transport {
	t.Helper()
	return listenConfig(t, dir, addr, nil)
}

func listenConfig(t *testing.T, dir string, addr netip.AddrPort, cfg *unixgram.Config) *unixgram.Transport {
	t.Helper()
	tr, err := unixgram.Listen(dir, addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func TestConformance(t *testing.T) {
	transporttest.Run(t, func(t *testing.T) (a, b transport.Transport) {
		dir := tempDir(t)
		// The kernel queues only net.unix.max_dgram_qlen (often 10) datagrams per
		// socket, so Send relies on the receiver's reader goroutine running within
		// SendWait. Under CI, every package runs at once with -race on 2 cores, and the
		// default 100 ms once lost 3 of 200 messages in the Concurrent subtest. The
		// suite checks that nothing is lost while the receiver reads, so give a starved
		// reader more time; a failure logs the counters that tell a drop from a loss.
		cfg := &unixgram.Config{SendWait: 5 * time.Second}
		ta, tb := listenConfig(t, dir, netip.AddrPort{}, cfg), listenConfig(t, dir, netip.AddrPort{}, cfg)
		t.Cleanup(func() { // runs before the Cleanups that close them
			if t.Failed() {
				t.Logf("stats: a %+v, b %+v", ta.Stats(), tb.Stats())
			}
		})
		return ta, tb
	}, transporttest.Options{
		// No socket is bound there: the kernel says ENOENT.
		Unreachable: netip.MustParseAddrPort("127.255.255.254:1"),
	})
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		addr string
		name string
	}{
		{"127.0.0.1:6881", "127.0.0.1:6881.sock"},
		{"[fd00::1]:6881", "[fd00::1]:6881.sock"},
		{"[::ffff:10.0.0.1]:80", "10.0.0.1:80.sock"},
		{"[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535.sock"},
	} {
		a := netip.MustParseAddrPort(tc.addr)
		if got := unixgram.Name(a); got != tc.name {
			t.Errorf("Name(%v) = %q, want %q", a, got, tc.name)
		}
		back, err := unixgram.ParseName(tc.name)
		if err != nil || back != transport.Unmap(a) {
			t.Errorf("ParseName(%q) = %v, %v; want %v", tc.name, back, err, transport.Unmap(a))
		}
	}
	if got, want := unixgram.Path("/run/dht", netip.MustParseAddrPort("127.0.0.2:6881")), "/run/dht/127.0.0.2:6881.sock"; got != want {
		t.Errorf("Path = %q, want %q", got, want)
	}
	// Names that are not the canonical name of a usable address are refused, so that no
	// two files stand for one address.
	for _, name := range []string{
		"127.0.0.1:6881", ".lock", "127.0.0.1:0.sock", "0.0.0.0:6881.sock", "[::]:1.sock",
		"[::ffff:10.0.0.1]:80.sock", "[fd00::0001]:6881.sock", "[FD00::1]:6881.sock",
		"[fe80::1%eth0]:6881.sock", "127.0.0.1:06881.sock", "127.0.0.1:6881.sock.sock",
	} {
		if a, err := unixgram.ParseName(name); err == nil {
			t.Errorf("ParseName(%q) = %v, want an error", name, a)
		}
	}
}

func TestAllocation(t *testing.T) {
	dir := tempDir(t)
	a := listen(t, dir, netip.AddrPort{})
	b := listen(t, dir, netip.AddrPort{})
	if got, want := a.LocalAddr(), netip.MustParseAddrPort("127.0.0.1:6881"); got != want {
		t.Errorf("first allocated address %v, want %v", got, want)
	}
	if got, want := b.LocalAddr(), netip.MustParseAddrPort("127.0.0.2:6881"); got != want {
		t.Errorf("second allocated address %v, want %v", got, want)
	}
	c := listen(t, dir, netip.MustParseAddrPort("127.0.0.1:0"))
	if got, want := c.LocalAddr(), netip.MustParseAddrPort("127.0.0.1:6882"); got != want {
		t.Errorf("port 0 on 127.0.0.1 allocated %v, want %v", got, want)
	}
	if got, want := c.Path(), filepath.Join(dir, "127.0.0.1:6882.sock"); got != want {
		t.Errorf("Path() = %q, want %q", got, want)
	}

	// A live address is in use, as a bound port is.
	if _, err := unixgram.Listen(dir, a.LocalAddr(), nil); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("Listen at a live address = %v, want EADDRINUSE", err)
	}
	for _, bad := range []string{"0.0.0.0:6881", "[::]:6881", "[fe80::1%lo]:6881"} {
		if _, err := unixgram.Listen(dir, netip.MustParseAddrPort(bad), nil); err == nil {
			t.Errorf("Listen(%s) succeeded, want an error", bad)
		}
	}
	if _, err := unixgram.Listen(filepath.Join(dir, "missing"), netip.AddrPort{}, nil); err == nil {
		t.Error("Listen in a missing directory succeeded")
	}
	long := filepath.Join(dir, strings.Repeat("d", 100))
	if err := os.Mkdir(long, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := unixgram.Listen(long, netip.AddrPort{}, nil); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("Listen with a too long path = %v, want an error naming the limit", err)
	}

	addrs, err := unixgram.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{a.LocalAddr(), c.LocalAddr(), b.LocalAddr()}
	if !equal(addrs, want) {
		t.Errorf("List = %v, want %v", addrs, want)
	}

	// Close removes the file, and the address is free again.
	b.Close()
	if _, err := os.Stat(filepath.Join(dir, "127.0.0.2:6881.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: %v", err)
	}
	if d := listen(t, dir, netip.AddrPort{}); d.LocalAddr() != b.LocalAddr() {
		t.Errorf("allocated %v after %v was closed, want it again", d.LocalAddr(), b.LocalAddr())
	}
}

func equal(a, b []netip.AddrPort) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestStaleSocket leaves a socket file behind as a process that died would: sends to it
// are unreachable, and the next Listen at its address reclaims it.
func TestStaleSocket(t *testing.T) {
	dir := tempDir(t)
	addr := netip.MustParseAddrPort("127.0.0.9:6881")
	path := unixgram.Path(dir, addr)
	stale, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	stale.Close() // a unixgram socket leaves its file behind

	a := listen(t, dir, netip.AddrPort{})
	if err := a.Send(addr, []byte("hello?")); !errors.Is(err, transport.ErrUnreachable) {
		t.Errorf("Send to a stale socket = %v, want ErrUnreachable", err)
	}
	b := listen(t, dir, addr)
	if err := a.Send(addr, []byte("hello")); err != nil {
		t.Fatalf("Send to the reclaimed address: %v", err)
	}
	p := receive(t, b)
	if p.From != a.LocalAddr() || string(p.Data) != "hello" {
		t.Errorf("received %q from %v, want %q from %v", p.Data, p.From, "hello", a.LocalAddr())
	}

	// A file that is not a socket is never taken.
	if err := os.WriteFile(unixgram.Path(dir, netip.MustParseAddrPort("127.0.0.10:6881")), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := unixgram.Listen(dir, netip.MustParseAddrPort("127.0.0.10:6881"), nil); err == nil {
		t.Error("Listen over a regular file succeeded")
	}
}

func receive(t *testing.T, tr transport.Transport) transport.Packet {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	p, err := tr.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	return p
}

// TestStrangers checks that datagrams from sockets that have no address in the directory
// (unbound, or bound elsewhere) are dropped: a reply to them could not reach them.
func TestStrangers(t *testing.T) {
	dir := tempDir(t)
	a := listen(t, dir, netip.AddrPort{})
	other := filepath.Join(tempDir(t), "127.0.0.5:6881.sock")
	for _, laddr := range []*net.UnixAddr{nil, {Name: other, Net: "unixgram"}} {
		c, err := net.DialUnix("unixgram", laddr, &net.UnixAddr{Name: a.Path(), Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("who am I")); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	b := listen(t, dir, netip.AddrPort{})
	if err := b.Send(a.LocalAddr(), []byte("known")); err != nil {
		t.Fatal(err)
	}
	if p := receive(t, a); string(p.Data) != "known" || p.From != b.LocalAddr() {
		t.Errorf("received %q from %v, want %q from %v", p.Data, p.From, "known", b.LocalAddr())
	}
	if s := a.Stats(); s.Strangers != 2 || s.Received != 1 {
		t.Errorf("Stats = %+v, want 2 strangers and 1 received", s)
	}
}

// TestStalledReceiver sends to a socket that nobody reads, as a stopped process's: its
// kernel queue fills after a few datagrams, and Send, which never blocks, drops the rest
// (at once with a negative SendWait, after SendWait otherwise) and counts them.
func TestStalledReceiver(t *testing.T) {
	if b, err := os.ReadFile("/proc/sys/net/unix/max_dgram_qlen"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n > 50 {
			t.Skipf("net.unix.max_dgram_qlen is %d: filling a socket's queue would take long", n)
		}
	}
	dir := tempDir(t)
	addr := netip.MustParseAddrPort("127.0.0.99:6881")
	stalled, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: unixgram.Path(dir, addr), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	a, err := unixgram.Listen(dir, netip.AddrPort{}, &unixgram.Config{SendWait: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	msg := bytes.Repeat([]byte{7}, 1000)
	start := time.Now()
	for range 200 {
		if err := a.Send(addr, msg); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("200 sends to a stalled receiver took %v", d)
	}
	s := a.Stats()
	if s.Sent+s.Dropped != 200 || s.Dropped == 0 || s.Sent == 0 {
		t.Errorf("Stats = %+v, want 200 sent or dropped, some of each", s)
	}

	b := listen(t, dir, netip.AddrPort{}) // the default SendWait
	start = time.Now()
	if err := b.Send(addr, msg); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < unixgram.DefaultSendWait {
		t.Errorf("Send to a full queue returned after %v, want it to retry for %v", d, unixgram.DefaultSendWait)
	}
	if s := b.Stats(); s.Dropped != 1 {
		t.Errorf("Stats = %+v, want 1 dropped", s)
	}
	// Once the receiver reads, there is room again.
	buf := make([]byte, 2000)
	if _, _, err := stalled.ReadFromUnix(buf); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(addr, msg); err != nil || b.Stats().Sent != 1 {
		t.Errorf("Send after the receiver read: %v, %+v", err, b.Stats())
	}
}

// TestQueueFull fills the receive queue of a transport nobody calls Receive on: the reader
// keeps draining the socket and drops what does not fit.
func TestQueueFull(t *testing.T) {
	dir := tempDir(t)
	a := listen(t, dir, netip.AddrPort{})
	b, err := unixgram.Listen(dir, netip.AddrPort{}, &unixgram.Config{QueueLen: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for range 50 {
		if err := a.Send(b.LocalAddr(), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for s := b.Stats(); s.Received+s.QueueFull < 50; s = b.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("Stats = %+v after 50 sends, want them all read", s)
		}
		time.Sleep(time.Millisecond)
	}
	if s := b.Stats(); s.Received != 2 || s.QueueFull != 48 {
		t.Errorf("Stats = %+v, want 2 received and 48 dropped", s)
	}
}

// TestDHT runs three dht.Nodes over the transport: ping, bootstrap, announce and
// get_peers.
func TestDHT(t *testing.T) {
	dir := tempDir(t)
	var nodes []*dht.Node
	for range 3 {
		tr := listen(t, dir, netip.AddrPort{})
		n, err := dht.New(tr, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() }) // runs before the transport's Close
		nodes = append(nodes, n)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	id, err := nodes[1].Ping(ctx, nodes[0].Addr())
	if err != nil {
		t.Fatalf("ping: %v", err)
	}
	if id != nodes[0].ID() {
		t.Errorf("ping answered by %v, want %v", id, nodes[0].ID())
	}
	for i, n := range nodes[1:] {
		if _, err := n.Bootstrap(ctx, nodes[0].Addr()); err != nil {
			t.Fatalf("bootstrap %v: %v", n.Addr(), err)
		}
		if i == 0 {
			// The first node adds a querier unconfirmed and hands it out only once its
			// ping back is answered; wait for that, so the next node can learn of the
			// second from it.
			waitKnows(ctx, t, nodes[0], nodes[1].Addr())
		}
	}
	// The last node learned of the second only through the first: compact node info
	// carried the address, and the mapping made it reachable.
	found := false
	for _, ni := range nodes[2].Nodes() {
		found = found || ni.Addr == nodes[1].Addr()
	}
	if !found {
		t.Errorf("node %v does not know %v after bootstrapping: %v", nodes[2].Addr(), nodes[1].Addr(), nodes[2].Nodes())
	}

	infohash := dht.RandomID()
	ar, err := nodes[1].Announce(ctx, infohash, 7000)
	if err != nil {
		t.Fatalf("announce: %v", err)
	}
	if ar.Stored != 2 {
		t.Errorf("announce stored on %d nodes, want 2", ar.Stored)
	}
	want := netip.AddrPortFrom(nodes[1].Addr().Addr(), 7000)
	var peers []netip.AddrPort
	if _, err := nodes[2].GetPeers(ctx, infohash, func(p netip.AddrPort, _ dht.NodeInfo) bool {
		peers = append(peers, p)
		return true
	}); err != nil {
		t.Fatalf("get_peers: %v", err)
	}
	if len(peers) != 1 || peers[0] != want {
		t.Errorf("get_peers found %v, want [%v]", peers, want)
	}
}

// waitKnows waits until n's routing table holds addr.
func waitKnows(ctx context.Context, t *testing.T, n *dht.Node, addr netip.AddrPort) {
	t.Helper()
	for {
		// Every node n knows is good (it answered n), and addr is one of them.
		known := n.Nodes()
		if n.Stats().GoodNodes == len(known) && slices.ContainsFunc(known, func(ni dht.NodeInfo) bool { return ni.Addr == addr }) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("node %v never added %v: %v", n.Addr(), addr, n.Nodes())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
