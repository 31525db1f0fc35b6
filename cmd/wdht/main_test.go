package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// subprocessEnv makes the test binary run main instead of the tests, so that tests can
// run wdht as a real process (signals, exit status) without building it.
const subprocessEnv = "WDHT_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(subprocessEnv) == "1" {
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

// result is what one run of wdht produced.
type result struct {
	code           int
	stdout, stderr string
}

// runWDHT runs wdht in-process with args.
func runWDHT(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), args, &out, &errb)
	return result{code, out.String(), errb.String()}
}

// safeBuffer is a bytes.Buffer safe for concurrent use.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lineLog collects the lines read from a stream, for tests to wait on.
type lineLog struct {
	mu    sync.Mutex
	lines []string
	eof   bool
	wake  chan struct{} // closed and replaced when a line arrives or the stream ends
}

// readLines reads r until EOF on its own goroutine.
func readLines(r io.Reader) *lineLog {
	l := &lineLog{wake: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			l.mu.Lock()
			l.lines = append(l.lines, sc.Text())
			close(l.wake)
			l.wake = make(chan struct{})
			l.mu.Unlock()
		}
		io.Copy(io.Discard, r) // never leave the writer blocked
		l.mu.Lock()
		l.eof = true
		close(l.wake)
		l.mu.Unlock()
	}()
	return l
}

// await waits up to timeout for a line, at index from or later, matching re, and returns
// its index and submatches.
func (l *lineLog) await(t *testing.T, from int, re *regexp.Regexp, timeout time.Duration) (int, []string) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		for i := from; i < len(l.lines); i++ {
			if m := re.FindStringSubmatch(l.lines[i]); m != nil {
				l.mu.Unlock()
				return i, m
			}
		}
		from = len(l.lines)
		wake, eof := l.wake, l.eof
		l.mu.Unlock()
		if eof {
			t.Fatalf("output ended without a line matching %q; got:\n%s", re, l.String())
		}
		select {
		case <-wake:
		case <-deadline.C:
			t.Fatalf("no line matching %q within %v; got:\n%s", re, timeout, l.String())
		}
	}
}

// line returns the line at index i.
func (l *lineLog) line(i int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lines[i]
}

// String returns the lines read so far.
func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// Output lines of "wdht node". listeningRE's groups are the version, addr, id, signal,
// web_id and pid.
var (
	listeningRE = regexp.MustCompile(`^LISTENING impl=wdht version=(\S+) addr=(\S+) id=([0-9a-f]{40})(?: signal=(\S+) web_id=([0-9a-f]{40}))? pid=(\d+)$`)
	statusRE    = regexp.MustCompile(`^STATUS t=\d+\.\d\d(?: nodes=\d+ good=\d+)? peers=\d+ infohashes=\d+ items=\d+(?: q_in=\d+\.\d q_out=\d+\.\d)?` +
		`(?: web_nodes=\d+ web_good=\d+ web_conns=\d+ web_q_in=\d+\.\d web_q_out=\d+\.\d)?$`)
	stoppingRE = regexp.MustCompile(`^STOPPING impl=wdht pid=(\d+)$`)
	// udpStatusRE is the STATUS line of a UDP-only node, as earlier versions printed it
	// (plus items).
	udpStatusRE = regexp.MustCompile(`^STATUS t=\d+\.\d\d nodes=\d+ good=\d+ peers=\d+ infohashes=\d+ items=\d+ q_in=\d+\.\d q_out=\d+\.\d$`)
	// bridgeStatusRE is the STATUS line of a bridge; its groups are nodes, good, peers,
	// infohashes, items, web_nodes, web_good and web_conns.
	bridgeStatusRE = regexp.MustCompile(`^STATUS t=\d+\.\d\d nodes=(\d+) good=(\d+) peers=(\d+) infohashes=(\d+) items=(\d+) q_in=\d+\.\d q_out=\d+\.\d` +
		` web_nodes=(\d+) web_good=(\d+) web_conns=(\d+) web_q_in=\d+\.\d web_q_out=\d+\.\d$`)
)

// nodeProc is a "wdht node" running in-process.
type nodeProc struct {
	addr, id      string
	signal, webID string // when WebRTC runs
	out           *lineLog
	stderr        *safeBuffer
	cancel        context.CancelFunc
	done          chan int
}

// startNode runs "wdht node args..." in-process and waits for its LISTENING line. The
// node is stopped at the end of the test unless stop was called.
func startNode(t *testing.T, args ...string) *nodeProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	n := &nodeProc{out: readLines(pr), stderr: &safeBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		code := run(ctx, append([]string{"node"}, args...), pw, n.stderr)
		pw.Close()
		n.done <- code
	}()
	t.Cleanup(func() { n.stop(t) })
	_, m := n.out.await(t, 0, listeningRE, 5*time.Second)
	n.addr, n.id, n.signal, n.webID = m[2], m[3], m[4], m[5]
	return n
}

// stop stops the node as SIGINT would and returns its exit status.
func (n *nodeProc) stop(t *testing.T) int {
	t.Helper()
	n.cancel()
	select {
	case code := <-n.done:
		n.done <- code // for later calls
		return code
	case <-time.After(10 * time.Second):
		t.Fatalf("node did not stop within 10s; stderr:\n%s", n.stderr)
		return -1
	}
}

// TestVersionFlagAndHelpHelp: "wdht --version" prints what "wdht version" does, and
// "wdht help help" prints the usage.
func TestVersionFlagAndHelpHelp(t *testing.T) {
	var out, errb strings.Builder
	if code := run(t.Context(), []string{"--version"}, &out, &errb); code != exitOK || out.String() != "wdht "+version()+"\n" {
		t.Errorf("wdht --version: %d, %q, %q", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run(t.Context(), []string{"help", "help"}, &out, &errb); code != exitOK || out.String() != usage() {
		t.Errorf("wdht help help: %d, %q", code, out.String())
	}
	if code := run(t.Context(), []string{"--version", "x"}, &out, &errb); code != exitUsage {
		t.Errorf("wdht --version x: %d, want %d", code, exitUsage)
	}
}
