//go:build unix

package interop

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wdht/wdht/dht"
)

// The implementations the shared harness can start, by the names of its start scripts
// (start-<name>.sh).
const (
	Libtorrent    = "libtorrent"     // libtorrent-rasterbar 2.0 (Debian python3-libtorrent)
	BittorrentDHT = "bittorrent-dht" // webtorrent's bittorrent-dht 11 (npm) on Node
	Anacrolix     = "anacrolix"      // github.com/anacrolix/dht/v2 (Go)
)

// Impls lists every implementation Start knows.
var Impls = []string{Libtorrent, BittorrentDHT, Anacrolix}

// Defaults for Options fields left zero.
const (
	DefaultMaxSeconds   = 5 * time.Minute
	DefaultReadyTimeout = 2 * time.Minute // a first start may build anacrolix or run npm ci
	// StopGrace is how long Stop waits after SIGTERM before it kills the process group.
	StopGrace = 5 * time.Second
)

// maxLines caps the output lines a Peer keeps; older ones are dropped first.
const maxLines = 20000

// SharedDir returns the project's shared directory: $WDHT_SHARED when set, else the first
// directory named "shared" next to the module root or one of its ancestors (../shared for
// a checkout at <project>/main) that holds interop/udp-peers.
func SharedDir() (string, error) { return sharedDir() }

var sharedDir = sync.OnceValues(func() (string, error) {
	if d := os.Getenv("WDHT_SHARED"); d != "" {
		d, err := filepath.Abs(d)
		if err != nil {
			return "", fmt.Errorf("interop: WDHT_SHARED: %w", err)
		}
		if !isDir(filepath.Join(d, "interop", "udp-peers")) {
			return "", fmt.Errorf("interop: WDHT_SHARED=%s has no interop/udp-peers", d)
		}
		return d, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	for d := root; ; {
		if cand := filepath.Join(d, "shared"); isDir(filepath.Join(cand, "interop", "udp-peers")) {
			return cand, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("interop: no shared/interop/udp-peers next to %s or its ancestors (set WDHT_SHARED)", root)
		}
		d = parent
	}
})

// moduleRoot finds the directory of the main module's go.mod: from this source file's
// path when the binary was built from a checkout, else from `go env GOMOD`.
func moduleRoot() (string, error) {
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		// This file is <root>/internal/interop/peers.go.
		root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
		if isFile(filepath.Join(root, "go.mod")) {
			return root, nil
		}
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("interop: finding the module root: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("interop: finding the module root: not inside a module (set WDHT_SHARED)")
	}
	return filepath.Dir(gomod), nil
}

// PeersDir returns the harness directory, <shared>/interop/udp-peers.
func PeersDir() (string, error) {
	s, err := SharedDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(s, "interop", "udp-peers"), nil
}

// Python is the interpreter that has the libtorrent binding (Debian's python3-libtorrent).
const Python = "/usr/bin/python3"

// Available reports why impl cannot run on this machine, or nil when it can. The answer is
// computed once per implementation. The remedy for every failure is the harness's
// install.sh.
func Available(impl string) error {
	f, ok := available[impl]
	if !ok {
		return fmt.Errorf("interop: unknown implementation %q (known: %s)", impl, strings.Join(Impls, ", "))
	}
	return f()
}

var available = map[string]func() error{
	Libtorrent:    sync.OnceValue(checkLibtorrent),
	BittorrentDHT: sync.OnceValue(checkBittorrentDHT),
	Anacrolix:     sync.OnceValue(checkAnacrolix),
}

func checkScript(impl string) (string, error) {
	dir, err := PeersDir()
	if err != nil {
		return "", err
	}
	if s := filepath.Join(dir, "start-"+impl+".sh"); !isFile(s) {
		return "", fmt.Errorf("interop: %s missing", s)
	}
	return dir, nil
}

func checkLibtorrent() error {
	dir, err := checkScript(Libtorrent)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, Python, "-c", "import libtorrent").CombinedOutput()
	if err != nil {
		return fmt.Errorf("interop: libtorrent: %s -c 'import libtorrent': %v: %s (run %s/install.sh)",
			Python, err, strings.TrimSpace(string(out)), dir)
	}
	return nil
}

func checkBittorrentDHT() error {
	dir, err := checkScript(BittorrentDHT)
	if err != nil {
		return err
	}
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("interop: bittorrent-dht: %w", err)
	}
	if pj := filepath.Join(dir, "js", "node_modules", "bittorrent-dht", "package.json"); !isFile(pj) {
		return fmt.Errorf("interop: bittorrent-dht: %s missing (run %s/install.sh)", pj, dir)
	}
	return nil
}

func checkAnacrolix() error {
	dir, err := checkScript(Anacrolix)
	if err != nil {
		return err
	}
	if st, err := os.Stat(filepath.Join(dir, "bin", "anacrolix-node")); err == nil && st.Mode()&0o111 != 0 {
		return nil
	}
	if _, err := exec.LookPath("go"); err != nil { // start-anacrolix.sh builds the binary
		return fmt.Errorf("interop: anacrolix: no bin/anacrolix-node and no go to build it: %w (run %s/install.sh)", err, dir)
	}
	return nil
}

// Options configure a started peer. The zero value starts a lone node.
type Options struct {
	// Bootstrap lists the nodes the peer joins the network through (--bootstrap).
	Bootstrap []netip.AddrPort
	// Stats makes the peer print a STATS line with its routing table size this often
	// (--stats). Zero: none.
	Stats time.Duration
	// MaxSeconds is the safety net: the peer exits by itself after this long
	// (--max-seconds). Default DefaultMaxSeconds.
	MaxSeconds time.Duration
	// Args are further command-line arguments, added last.
	Args []string
	// Env is added to the environment the process inherits.
	Env []string
	// Dir is the process's working directory. Default: the current one.
	Dir string
	// ReadyTimeout bounds the wait for the LISTENING line. Default DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Stdin gives the process a pipe as its standard input, written through Peer.Stdin
	// (for drivers that take commands). Default: no input (/dev/null).
	Stdin bool
}

// flags returns the command-line flags every start script (and every driver program
// written for StartProcess) accepts.
func (o *Options) flags() []string {
	args := []string{"--host", "127.0.0.1", "--port", "0"}
	if len(o.Bootstrap) > 0 {
		bs := make([]string, len(o.Bootstrap))
		for i, b := range o.Bootstrap {
			bs[i] = b.String()
		}
		args = append(args, "--bootstrap", strings.Join(bs, ","))
	}
	if o.Stats > 0 {
		args = append(args, "--stats", strconv.FormatFloat(o.Stats.Seconds(), 'f', -1, 64))
	}
	maxSec := o.MaxSeconds
	if maxSec <= 0 {
		maxSec = DefaultMaxSeconds
	}
	args = append(args, "--max-seconds", strconv.FormatFloat(maxSec.Seconds(), 'f', -1, 64))
	return append(args, o.Args...)
}

// Line is one line a peer printed (stdout and stderr together).
type Line struct {
	Time time.Time
	Text string
}

// Peer is a running real DHT node (or a driver program built on a real implementation).
// Its methods are safe for concurrent use.
type Peer struct {
	// Name is what the peer was started as: the implementation or the driver's name.
	Name string
	// Impl and Version are what its LISTENING line says.
	Impl, Version string
	// Addr is the UDP address its DHT listens on.
	Addr netip.AddrPort
	// ID is its node ID when the LISTENING line prints one (bittorrent-dht and anacrolix
	// do; libtorrent does not: ask it with a ping).
	ID    dht.ID
	HasID bool
	// PID is the process ID it printed, which is the one Start started (the start scripts
	// exec their node).
	PID int
	// Started is when the process was started; Ready when its LISTENING line arrived.
	Started, Ready time.Time
	// Stdin writes to the process's standard input when Options.Stdin asked for it (else
	// nil). It is closed when the process has exited.
	Stdin io.WriteCloser

	cmd        *exec.Cmd
	out        *os.File // read end of the output pipe
	readerDone chan struct{}
	exited     chan struct{}
	waitErr    error // cmd.Wait's result, set before exited is closed

	mu      sync.Mutex
	lines   []Line
	dropped int
	eof     bool
	changed chan struct{} // closed and replaced on every new line and at EOF

	stopOnce sync.Once
	stopErr  error
}

// The LISTENING line: `LISTENING impl=NAME version=V addr=H:P [id=HEX] pid=PID`.
var (
	listenRE = regexp.MustCompile(`^LISTENING impl=(\S+) version=(\S+) addr=(\S+)(?: .*)? pid=(\d+)`)
	idRE     = regexp.MustCompile(` id=([0-9a-fA-F]{40})\b`)
	statsRE  = regexp.MustCompile(`^STATS t=\S+ nodes=(\d+)`)
)

// Start starts a node of impl through the harness's start-<impl>.sh with --host
// 127.0.0.1 --port 0 and the flags opts asks for, and waits for its LISTENING line. ctx
// bounds the start only; the peer runs until Stop (or its --max-seconds).
func Start(ctx context.Context, impl string, opts Options) (*Peer, error) {
	if err := Available(impl); err != nil {
		return nil, err
	}
	dir, err := PeersDir()
	if err != nil {
		return nil, err
	}
	return StartProcess(ctx, impl, []string{filepath.Join(dir, "start-"+impl+".sh")}, opts)
}

// StartProcess starts argv with the harness's common flags (--host 127.0.0.1 --port 0,
// --bootstrap, --stats, --max-seconds, then opts.Args) and waits for a LISTENING line in
// the start scripts' format. It is how driver programs built on a real implementation run.
// ctx bounds the start only.
func StartProcess(ctx context.Context, name string, argv []string, opts Options) (*Peer, error) {
	if len(argv) == 0 {
		return nil, errors.New("interop: StartProcess: empty command")
	}
	return start(ctx, name, append(append([]string(nil), argv...), opts.flags()...), opts)
}

// StartCommand starts argv exactly as given (plus opts.Args; no harness flags) and waits
// for a LISTENING line in the start scripts' format: for programs with flags of their
// own, such as our `wdht node` or the harness's nullkrpc. ctx bounds the start only.
func StartCommand(ctx context.Context, name string, argv []string, opts Options) (*Peer, error) {
	if len(argv) == 0 {
		return nil, errors.New("interop: StartCommand: empty command")
	}
	return start(ctx, name, append(append([]string(nil), argv...), opts.Args...), opts)
}

func start(ctx context.Context, name string, argv []string, opts Options) (*Peer, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("interop: %s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	// An *os.File as Stdout and Stderr: the child writes straight into the pipe and
	// os/exec starts no copying goroutine.
	cmd.Stdout, cmd.Stderr = w, w
	cmd.Env = append(os.Environ(), opts.Env...)
	cmd.Dir = opts.Dir
	cmd.SysProcAttr = sysProcAttr()
	var stdin io.WriteCloser
	if opts.Stdin {
		if stdin, err = cmd.StdinPipe(); err != nil {
			r.Close()
			w.Close()
			return nil, fmt.Errorf("interop: %s: %w", name, err)
		}
	}
	p := &Peer{
		Stdin:      stdin,
		Name:       name,
		cmd:        cmd,
		out:        r,
		readerDone: make(chan struct{}),
		exited:     make(chan struct{}),
		changed:    make(chan struct{}),
		Started:    time.Now(),
	}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("interop: starting %s: %w", name, err)
	}
	w.Close() // the child holds its copy
	p.PID = cmd.Process.Pid
	go p.read()
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()

	timeout := opts.ReadyTimeout
	if timeout <= 0 {
		timeout = DefaultReadyTimeout
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	m, err := p.WaitLine(wctx, listenRE)
	if err == nil {
		err = p.parseListening(m)
	}
	if err != nil {
		p.Stop()
		return nil, fmt.Errorf("interop: %s did not start: %w\n%s", name, err, p.Output())
	}
	return p, nil
}

func (p *Peer) parseListening(m []string) error {
	addr, err := netip.ParseAddrPort(m[3])
	if err != nil {
		return fmt.Errorf("LISTENING line: bad addr %q: %w", m[3], err)
	}
	pid, err := strconv.Atoi(m[4])
	if err != nil {
		return fmt.Errorf("LISTENING line: bad pid %q", m[4])
	}
	p.Impl, p.Version, p.Addr, p.Ready = m[1], m[2], addr, time.Now()
	if im := idRE.FindStringSubmatch(m[0]); im != nil {
		b, _ := hex.DecodeString(im[1])
		copy(p.ID[:], b)
		p.HasID = true
	}
	if pid != p.PID {
		// Only possible if a script stops exec'ing its node. Stop signals the process we
		// started, whose group holds the printed one.
		p.addLine(fmt.Sprintf("interop: printed pid %d differs from the started pid %d", pid, p.PID))
	}
	return nil
}

// read collects the output until EOF (every writer closed) or until Stop closes the pipe.
func (p *Peer) read() {
	defer close(p.readerDone)
	br := bufio.NewReaderSize(p.out, 64<<10)
	for {
		s, err := br.ReadString('\n')
		if s != "" {
			p.addLine(strings.TrimRight(s, "\r\n"))
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				p.addLine("interop: reading output: " + err.Error())
			}
			p.mu.Lock()
			p.eof = true
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
			return
		}
	}
}

func (p *Peer) addLine(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.lines) >= maxLines {
		n := copy(p.lines, p.lines[maxLines/10:])
		p.dropped += len(p.lines) - n
		p.lines = p.lines[:n]
	}
	p.lines = append(p.lines, Line{Time: time.Now(), Text: s})
	close(p.changed)
	p.changed = make(chan struct{})
}

// Lines returns a copy of the lines printed so far (the oldest may have been dropped
// beyond 20,000 lines).
func (p *Peer) Lines() []Line {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Line(nil), p.lines...)
}

// Output returns everything printed so far, one line each, prefixed with the time since
// the start.
func (p *Peer) Output() string {
	var b strings.Builder
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.dropped > 0 {
		fmt.Fprintf(&b, "(%d earlier lines dropped)\n", p.dropped)
	}
	for _, l := range p.lines {
		fmt.Fprintf(&b, "[+%6.2fs] %s\n", l.Time.Sub(p.Started).Seconds(), l.Text)
	}
	return b.String()
}

// WaitFunc waits until a line for which match returns true has been printed (at any time
// since the start; lines are checked in order) and returns it. It fails when ctx ends or
// the output ends first.
func (p *Peer) WaitFunc(ctx context.Context, match func(string) bool) (string, error) {
	next := 0
	for {
		p.mu.Lock()
		// After drops the indexes shift; rescanning a few lines is harmless.
		next = max(0, min(next, len(p.lines)))
		lines, eof, changed := p.lines[next:], p.eof, p.changed
		next = len(p.lines)
		p.mu.Unlock()
		for _, l := range lines {
			if match(l.Text) {
				return l.Text, nil
			}
		}
		if eof {
			return "", fmt.Errorf("%s: output ended (process exited) without the line awaited", p.Name)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", fmt.Errorf("%s: waiting for a line: %w", p.Name, context.Cause(ctx))
		}
	}
}

// WaitLine waits for a line matching re and returns its submatches (as
// regexp.FindStringSubmatch does).
func (p *Peer) WaitLine(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	var m []string
	_, err := p.WaitFunc(ctx, func(s string) bool {
		m = re.FindStringSubmatch(s)
		return m != nil
	})
	return m, err
}

// WaitStats waits for a STATS line (see Options.Stats) reporting at least min nodes in the
// peer's routing table and returns that count.
func (p *Peer) WaitStats(ctx context.Context, min int) (int, error) {
	n := 0
	_, err := p.WaitFunc(ctx, func(s string) bool {
		m := statsRE.FindStringSubmatch(s)
		if m == nil {
			return false
		}
		n, _ = strconv.Atoi(m[1])
		return n >= min
	})
	return n, err
}

// LastStats returns the routing table size of the latest STATS line, or -1 when there is
// none.
func (p *Peer) LastStats() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.lines) - 1; i >= 0; i-- {
		if m := statsRE.FindStringSubmatch(p.lines[i].Text); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n
		}
	}
	return -1
}

// Exited is closed when the process has exited.
func (p *Peer) Exited() <-chan struct{} { return p.exited }

// String describes the peer for logs.
func (p *Peer) String() string {
	s := fmt.Sprintf("%s(%s %s pid=%d", p.Name, p.Impl, p.Addr, p.PID)
	if p.HasID {
		s += " id=" + p.ID.String()[:8] + "…"
	}
	return s + ")"
}

// Stop stops the peer: SIGTERM to its process, then, if it has not exited after StopGrace,
// SIGKILL to its whole process group. It waits for the process and for its output to be
// read to the end. It returns an error when the process had to be killed or exited with a
// failure status (also when it exited by itself before Stop). Stop is idempotent: later
// calls return the first call's result.
func (p *Peer) Stop() error {
	p.stopOnce.Do(func() { p.stopErr = p.stop() })
	return p.stopErr
}

func (p *Peer) stop() error {
	var errs []error
	select {
	case <-p.exited:
		if p.waitErr != nil {
			errs = append(errs, fmt.Errorf("exited before Stop: %w", p.waitErr))
		} else {
			errs = append(errs, errors.New("exited (status 0) before Stop"))
		}
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(StopGrace)
		select {
		case <-p.exited:
			t.Stop()
			if p.waitErr != nil {
				errs = append(errs, fmt.Errorf("after SIGTERM: %w", p.waitErr))
			}
		case <-t.C:
			// Not reaped yet, so the group ID is still ours: kill the node and anything
			// it started.
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.exited
			errs = append(errs, fmt.Errorf("did not exit within %v of SIGTERM; killed", StopGrace))
		}
	}
	// A grandchild may still hold the pipe; do not wait for it for long.
	t := time.NewTimer(2 * time.Second)
	select {
	case <-p.readerDone:
		t.Stop()
	case <-t.C:
		p.out.Close()
		<-p.readerDone
	}
	p.out.Close()
	if len(errs) > 0 {
		return fmt.Errorf("interop: %v: %w", p, errors.Join(errs...))
	}
	return nil
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
