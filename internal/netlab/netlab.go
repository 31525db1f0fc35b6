//go:build linux

// Package netlab builds small IPv4 networks out of Linux network namespaces for tests:
// a "public" network (203.0.113.0/24, a documentation range, inside namespaces only),
// hosts on it, NAT routers of three behaviours with hosts behind them, packet loss and
// delay on a NAT's uplink, and coturn as a STUN/TURN server. Nothing touches the host's
// own interfaces: every address, route and nftables rule lives in a namespace the lab
// created, and t.Cleanup deletes them all (with the processes started in them), also
// after a failure. Namespaces are named "wl<pid>-<name>", so that parallel test
// binaries never collide; New also deletes those of test processes that died without
// cleaning up.
//
// The topology: a switch namespace holds a Linux bridge; every public host and every
// NAT router's WAN side is a veth pair plugged into it, with an address 203.0.113.N/24.
// A NAT router has a LAN 10.<n>.0.0/24 (itself .1) and hosts behind it (.2, .3, …)
// whose default route is the router. The NAT behaviours, in nftables:
//
//   - EndpointIndependent: masquerade (Linux keeps the source port when it is free, so
//     one internal socket gets one public port whatever the destination: endpoint-
//     independent mapping) plus a DNAT of every unsolicited inbound UDP port to the
//     first host behind it (endpoint-independent filtering, a "full cone").
//   - PortRestricted: masquerade alone: endpoint-independent mapping, and inbound
//     packets pass only from an address and port the internal socket sent to
//     (conntrack), the usual home router. An unsolicited inbound packet is dropped in
//     the input hook, before conntrack confirms an entry for it: otherwise that entry
//     would take the public port, and the internal socket's later packets to the same
//     peer would get another one (Linux's NAT would turn symmetric for exactly the
//     peers that try to punch a hole).
//   - Symmetric: masquerade random: every new destination gets a random public port
//     (address-and-port-dependent mapping), with the same filtering.
//
// Loss is an nftables "numgen random" drop rule on the router's forward path. This
// kernel has neither the netem qdisc nor NFQUEUE, so delay is added by a forwarder in
// this process: the host behind the NAT reaches its router over a pair of TUN devices
// whose packets a goroutine holds for the delay (see NATConfig.Delay).
package netlab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// NATType is the behaviour of a NAT router.
type NATType int

const (
	// EndpointIndependent maps an internal socket to one public port for every
	// destination and lets anyone send to it (full cone).
	EndpointIndependent NATType = iota + 1
	// PortRestricted maps like EndpointIndependent but lets in only packets from an
	// address and port the internal socket sent to.
	PortRestricted
	// Symmetric maps every new destination to a new random public port, and filters
	// like PortRestricted.
	Symmetric
)

// String returns "eim", "port-restricted" or "symmetric".
func (n NATType) String() string {
	switch n {
	case EndpointIndependent:
		return "eim"
	case PortRestricted:
		return "port-restricted"
	case Symmetric:
		return "symmetric"
	}
	return "NATType(" + strconv.Itoa(int(n)) + ")"
}

// Check reports what the lab needs and this machine lacks: root, ip, nft.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("netlab: network namespaces need root")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := lookPath(tool); err != nil {
			return fmt.Errorf("netlab: %s not found (apt-get install iproute2 nftables)", tool)
		}
	}
	return nil
}

// Require skips the test when Check fails, or fails it when the environment variable
// CI is set (where .ci/run installs everything).
func Require(t testing.TB) {
	t.Helper()
	if err := Check(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%v (CI is set: the lab must run)", err)
		}
		t.Skip(err)
	}
}

func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// Lab is a network of namespaces. Its methods are safe for concurrent use.
type Lab struct {
	t      testing.TB
	prefix string
	sw     string // the switch namespace

	mu      sync.Mutex
	nextPub int // last octet of the next public address
	nextNAT int // second octet of the next NAT's LAN
	nextIf  int // index of the next switch port
	nsList  []string
}

// PublicPrefix is the lab's public network.
var PublicPrefix = netip.MustParsePrefix("203.0.113.0/24")

// New creates the public network (an empty switch) and registers its teardown with
// t.Cleanup. It calls Require first.
func New(t testing.TB) *Lab {
	t.Helper()
	Require(t)
	sweep()
	l := &Lab{t: t, prefix: fmt.Sprintf("wl%d-", os.Getpid()), nextPub: 10, nextNAT: 1}
	t.Cleanup(l.teardown)
	l.sw = l.newNS("sw")
	l.must(l.sw, "ip", "link", "add", "br0", "type", "bridge")
	l.must(l.sw, "ip", "link", "set", "br0", "up")
	// The rest of the internet: every public host's and NAT router's default route,
	// where packets to addresses off the public network (another NAT's LAN, say) go
	// and are dropped silently (forwarding is off in the switch). Without a default
	// route a send to such an address fails at once with ENETUNREACH, which a real
	// host never sees, and coturn closes the whole TURN allocation on that error.
	l.must(l.sw, "ip", "addr", "add", Gateway.String()+"/24", "dev", "br0")
	l.must(l.sw, "sysctl", "-qw", "net.ipv4.ip_forward=0")
	return l
}

// Gateway is the public network's default router: it drops what it is sent.
var Gateway = netip.MustParseAddr("203.0.113.1")

// sweep deletes the namespaces of lab processes that no longer run.
func sweep() {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		name := e.Name()
		rest, ok := strings.CutPrefix(name, "wl")
		if !ok {
			continue
		}
		pidStr, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue
		}
		exec.Command("ip", "netns", "del", name).Run()
	}
}

// newNS creates a namespace with lo up.
func (l *Lab) newNS(name string) string {
	ns := l.prefix + name
	l.mu.Lock()
	l.nsList = append(l.nsList, ns)
	l.mu.Unlock()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		l.t.Fatalf("netlab: ip netns add %s: %v: %s", ns, err, out)
	}
	l.must(ns, "ip", "link", "set", "lo", "up")
	return ns
}

// teardown kills what runs in the lab's namespaces and deletes them.
func (l *Lab) teardown() {
	l.mu.Lock()
	list := l.nsList
	l.nsList = nil
	l.mu.Unlock()
	for _, ns := range list {
		// Processes still in the namespace (started by a test without Start, or
		// children of those): a namespace is only freed when they are gone.
		if out, err := exec.Command("ip", "netns", "pids", ns).Output(); err == nil {
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			l.t.Errorf("netlab: ip netns del %s: %v: %s", ns, err, out)
		}
	}
}

// run runs a command in ns and returns its combined output.
func (l *Lab) run(ns string, args ...string) ([]byte, error) {
	full := append([]string{"netns", "exec", ns}, args...)
	return exec.Command("ip", full...).CombinedOutput()
}

// must runs a command in ns and fails the test if it fails.
func (l *Lab) must(ns string, args ...string) {
	l.t.Helper()
	if out, err := l.run(ns, args...); err != nil {
		l.t.Fatalf("netlab: in %s: %q: %v: %s", ns, args, err, out)
	}
}

// nft loads an nftables ruleset into ns.
func (l *Lab) nft(ns, rules string) {
	l.t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		l.t.Fatalf("netlab: nft in %s: %v: %s\n%s", ns, err, out, rules)
	}
}

// Host is a machine of the lab: a namespace with one address.
type Host struct {
	lab  *Lab
	Name string     // the name given to the lab
	NS   string     // the namespace
	IP   netip.Addr // its address: public, or on its NAT's LAN
	NAT  *NAT       // the NAT it is behind, or nil for a public host
}

// plug connects ns to the switch with a veth pair whose end in ns is named dev and has
// the next public address, and returns that address.
func (l *Lab) plug(ns, dev string) netip.Addr {
	l.t.Helper()
	l.mu.Lock()
	l.nextIf++
	port := "p" + strconv.Itoa(l.nextIf)
	ip := netip.AddrFrom4([4]byte{203, 0, 113, byte(l.nextPub)})
	l.nextPub++
	l.mu.Unlock()
	if out, err := exec.Command("ip", "link", "add", dev, "netns", ns, "type", "veth", "peer", "name", port, "netns", l.sw).CombinedOutput(); err != nil {
		l.t.Fatalf("netlab: veth %s/%s: %v: %s", ns, port, err, out)
	}
	l.must(l.sw, "ip", "link", "set", port, "master", "br0", "up")
	l.must(ns, "ip", "addr", "add", ip.String()+"/24", "dev", dev)
	l.must(ns, "ip", "link", "set", dev, "up")
	l.must(ns, "ip", "route", "add", "default", "via", Gateway.String(), "dev", dev)
	return ip
}

// PublicHost adds a host on the public network.
func (l *Lab) PublicHost(name string) *Host {
	l.t.Helper()
	ns := l.newNS(name)
	ip := l.plug(ns, "eth0")
	return &Host{lab: l, Name: name, NS: ns, IP: ip}
}

// NATConfig configures a NAT router.
type NATConfig struct {
	Type NATType
	// LossPercent drops this share of the packets crossing the router, both ways
	// (nftables numgen random), 0-100.
	LossPercent int
	// Delay holds every packet between the hosts behind the router and the router for
	// this long, each way (so a round trip through it gains 2×Delay). Zero: none.
	Delay time.Duration
}

// NAT is a NAT router between the public network and a LAN.
type NAT struct {
	lab      *Lab
	Name     string
	NS       string
	Type     NATType
	PublicIP netip.Addr
	cfg      NATConfig
	lan      int // the second octet of its LAN
	mu       sync.Mutex
	hosts    int
}

// NAT adds a NAT router with the next public address.
func (l *Lab) NAT(name string, cfg NATConfig) *NAT {
	l.t.Helper()
	if cfg.Type < EndpointIndependent || cfg.Type > Symmetric {
		l.t.Fatalf("netlab: NAT %s: unknown type %v", name, cfg.Type)
	}
	if cfg.LossPercent < 0 || cfg.LossPercent > 100 {
		l.t.Fatalf("netlab: NAT %s: loss %d%%", name, cfg.LossPercent)
	}
	ns := l.newNS(name)
	pub := l.plug(ns, "wan")
	l.mu.Lock()
	lan := l.nextNAT
	l.nextNAT++
	l.mu.Unlock()
	l.must(ns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	n := &NAT{lab: l, Name: name, NS: ns, Type: cfg.Type, PublicIP: pub, cfg: cfg, lan: lan}
	masq := "masquerade"
	if cfg.Type == Symmetric {
		masq = "masquerade random"
	}
	rules := fmt.Sprintf(`table ip netlab {
	chain post { type nat hook postrouting priority srcnat; oifname "wan" %s; }
	chain loss {
		type filter hook forward priority filter; policy accept;
		%s
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "wan" ct state new meta l4proto udp drop
	}
}
`, masq, lossRule(cfg.LossPercent))
	l.nft(ns, rules)
	return n
}

func lossRule(pct int) string {
	if pct == 0 {
		return ""
	}
	return fmt.Sprintf("numgen random mod 100 < %d counter drop", pct)
}

// Host adds a host behind the router. The first host of an EndpointIndependent NAT
// receives every unsolicited inbound UDP packet (the full cone).
func (n *NAT) Host(name string) *Host {
	l := n.lab
	l.t.Helper()
	n.mu.Lock()
	n.hosts++
	idx := n.hosts
	n.mu.Unlock()
	ns := l.newNS(name)
	gw := netip.AddrFrom4([4]byte{10, byte(n.lan), 0, 1})
	ip := netip.AddrFrom4([4]byte{10, byte(n.lan), 0, byte(1 + idx)})
	dev := "lan" + strconv.Itoa(idx)
	if n.cfg.Delay > 0 {
		l.delayLink(ns, n.NS, dev, n.cfg.Delay)
	} else if out, err := exec.Command("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", dev, "netns", n.NS).CombinedOutput(); err != nil {
		l.t.Fatalf("netlab: veth %s/%s: %v: %s", ns, n.NS, err, out)
	}
	// Point-to-point: the router's address on every LAN link, a /32 route per host.
	l.must(n.NS, "ip", "addr", "add", gw.String()+"/32", "dev", dev)
	l.must(n.NS, "ip", "link", "set", dev, "up")
	l.must(n.NS, "ip", "route", "add", ip.String()+"/32", "dev", dev)
	l.must(ns, "ip", "addr", "add", ip.String()+"/32", "dev", "eth0")
	l.must(ns, "ip", "link", "set", "eth0", "up")
	l.must(ns, "ip", "route", "add", gw.String()+"/32", "dev", "eth0")
	l.must(ns, "ip", "route", "add", "default", "via", gw.String(), "dev", "eth0")
	if n.Type == EndpointIndependent && idx == 1 {
		l.nft(n.NS, fmt.Sprintf(`table ip netlab {
	chain pre { type nat hook prerouting priority dstnat; iifname "wan" meta l4proto udp dnat to %s; }
}
`, ip))
	}
	return &Host{lab: l, Name: name, NS: ns, IP: ip, NAT: n}
}

// Dropped returns how many packets the router's loss rule dropped.
func (n *NAT) Dropped() int {
	out, err := n.lab.run(n.NS, "nft", "list", "chain", "ip", "netlab", "loss")
	if err != nil {
		return -1
	}
	_, after, ok := strings.Cut(string(out), "counter packets ")
	if !ok {
		return 0
	}
	f, _, _ := strings.Cut(after, " ")
	c, _ := strconv.Atoi(f)
	return c
}

// Command returns a command that runs in the host's namespace.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.NS, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// Proc is a process started in a host's namespace, with its output kept.
type Proc struct {
	Cmd  *exec.Cmd
	name string
	out  *lockedBuffer
	done chan struct{}
	err  error
	// Lines receives the process's standard output, line by line, until it exits
	// (then it is closed). Lines nobody reads are dropped.
	Lines chan string
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Start starts a program in the host's namespace; it is killed when the test ends, and
// its standard error (and output) is logged when the test failed. env is added to the
// environment.
func (h *Host) Start(t testing.TB, env []string, name string, args ...string) *Proc {
	t.Helper()
	return h.StartStdin(t, nil, env, name, args...)
}

// StartStdin is Start with the process's standard input read from stdin.
func (h *Host) StartStdin(t testing.TB, stdin io.Reader, env []string, name string, args ...string) *Proc {
	t.Helper()
	cmd := h.Command(context.Background(), name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	p := &Proc{Cmd: cmd, name: h.Name + ":" + filepath.Base(name), out: &lockedBuffer{}, done: make(chan struct{}), Lines: make(chan string, 256)}
	cmd.Stderr = p.out
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("netlab: start %s in %s: %v", name, h.NS, err)
	}
	var readers sync.WaitGroup
	readers.Go(func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.out.Write([]byte("stdout: " + line + "\n"))
			select {
			case p.Lines <- line:
			default:
			}
		}
		close(p.Lines)
	})
	go func() {
		readers.Wait()
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() || os.Getenv("WDHT_NETLAB_LOG") != "" {
			t.Logf("%s output:\n%s", p.name, p.out.String())
		}
	})
	return p
}

// Output returns what the process wrote so far: its standard error, and its standard
// output lines prefixed with "stdout: ".
func (p *Proc) Output() string { return p.out.String() }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Stop kills the process (its whole process group) and waits for it. It is idempotent.
func (p *Proc) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.Cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// WaitLine returns the first line of standard output that starts with prefix, or fails
// the test when the process exits or ctx ends first.
func (p *Proc) WaitLine(ctx context.Context, t testing.TB, prefix string) string {
	t.Helper()
	for {
		select {
		case line, ok := <-p.Lines:
			if !ok {
				<-p.done
				t.Fatalf("%s exited (%v) before printing %q; output:\n%s", p.name, p.err, prefix, p.out.String())
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-ctx.Done():
			t.Fatalf("%s: no %q line: %v; output:\n%s", p.name, prefix, ctx.Err(), p.out.String())
		}
	}
}

// ListenUDP opens a UDP socket in the host's namespace (port 0: any free port).
func (h *Host) ListenUDP(port int) (c *net.UDPConn, err error) {
	err = inNS(h.NS, func() error {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: h.IP.AsSlice(), Port: port})
		return err
	})
	return c, err
}

// TURN is coturn running as a STUN and TURN server on a public host.
type TURN struct {
	Host           *Host
	Port           int
	User, Password string
	Proc           *Proc
}

// STUNURL returns "stun:IP:PORT".
func (s *TURN) STUNURL() string { return fmt.Sprintf("stun:%s:%d", s.Host.IP, s.Port) }

// TURNURL returns "turn:USER:PASSWORD@IP:PORT?transport=udp", the form
// webrtc.ParseICEServer and wdht --ice-server take.
func (s *TURN) TURNURL() string {
	return fmt.Sprintf("turn:%s:%s@%s:%d?transport=udp", s.User, s.Password, s.Host.IP, s.Port)
}

// StartTURN starts coturn (Debian's turnserver) on h, UDP port 3478, with the long-term
// credentials user:password, relaying to any address of the lab, and waits until it
// answers STUN. It fails the test when turnserver is missing under CI, and skips it
// elsewhere.
func (h *Host) StartTURN(t testing.TB, user, password string) *TURN {
	t.Helper()
	bin, err := lookPath("turnserver")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("netlab: turnserver not found (apt-get install coturn)")
		}
		t.Skip("netlab: turnserver not found (apt-get install coturn)")
	}
	ip := h.IP.String()
	dir := t.TempDir()
	args := []string{"-n", "--no-cli", "--no-tls", "--no-dtls",
		"-L", ip, "-E", ip, "--listening-port", "3478", "--min-port", "49152", "--max-port", "65535",
		"--lt-cred-mech", "--user", user + ":" + password, "--realm", "wdht.test", "--fingerprint",
		"--allowed-peer-ip", "203.0.113.0-203.0.113.255", "--allowed-peer-ip", "10.0.0.0-10.255.255.255",
		"--pidfile", filepath.Join(dir, "turn.pid"), "--userdb", filepath.Join(dir, "turn.db"),
		"--log-file", "stdout", "--simple-log"}
	if os.Getenv("WDHT_NETLAB_LOG") != "" {
		args = append(args, "-V") // every request, permission and session close
	}
	p := h.Start(t, nil, bin, args...)
	s := &TURN{Host: h, Port: 3478, User: user, Password: password, Proc: p}
	// Wait for a STUN binding answer.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := stunPing(h, netip.AddrPortFrom(h.IP, 3478)); err == nil {
			return s
		} else if time.Now().After(deadline) {
			t.Fatalf("netlab: coturn does not answer STUN on %s:3478: %v\n%s", ip, err, p.Output())
		}
		select {
		case <-p.Done():
			t.Fatalf("netlab: coturn exited: %s", p.Output())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stunPing sends a STUN binding request from h to srv and waits briefly for an answer.
func stunPing(h *Host, srv netip.AddrPort) error {
	c, err := h.ListenUDP(0)
	if err != nil {
		return err
	}
	defer c.Close()
	req := make([]byte, 20)
	req[1] = 0x01                                           // binding request
	req[4], req[5], req[6], req[7] = 0x21, 0x12, 0xa4, 0x42 // magic cookie
	copy(req[8:], "wdht-netlab!")
	if _, err := c.WriteToUDPAddrPort(req, srv); err != nil {
		return err
	}
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 1500)
	n, _, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return err
	}
	if n < 20 || buf[0] != 0x01 || buf[1] != 0x01 {
		return fmt.Errorf("not a binding success: % x", buf[:min(n, 20)])
	}
	return nil
}
