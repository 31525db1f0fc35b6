package main

import (
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wdht/wdht/dht"
)

// TestEndToEnd runs a node in-process (the default bridge) and the client commands
// against it over UDP: ping, announce from one client, lookup from another; then stops
// the node and restarts it from its state file.
func TestEndToEnd(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	n := startNode(t, "--addr", "127.0.0.1:0", "--signal-addr", "127.0.0.1:0", "--status", "0", "--state", state, "--limits=false")
	boot := "--bootstrap=" + n.addr

	t.Run("ping", func(t *testing.T) {
		r := runWDHT(t, "ping", n.addr, "--timeout", "5s")
		want := regexp.MustCompile(`^pong from ` + regexp.QuoteMeta(n.addr) + ` id=` + n.id + ` rtt=\d+\.\d\dms\n$`)
		if r.code != exitOK || !want.MatchString(r.stdout) {
			t.Errorf("ping: exit %d, stdout %q, stderr %q; want %v", r.code, r.stdout, r.stderr, want)
		}
		r = runWDHT(t, "ping", "--json", boot)
		var got pingResult
		if err := json.Unmarshal([]byte(r.stdout), &got); r.code != exitOK || err != nil || got.Addr != n.addr || got.ID != n.id || got.RTTms <= 0 {
			t.Errorf("ping --json: exit %d, stdout %q (%v), stderr %q", r.code, r.stdout, err, r.stderr)
		}
	})

	var impliedPeer string
	t.Run("announce", func(t *testing.T) {
		r := runWDHT(t, "announce", testIH, "--json", boot)
		var got announceJSON
		if err := json.Unmarshal([]byte(r.stdout), &got); r.code != exitOK || err != nil ||
			got.Infohash != testIH || got.Stored != 1 || !got.ImpliedPort || got.Port == 0 {
			t.Fatalf("announce --json: exit %d, stdout %q (%v), stderr %q", r.code, r.stdout, err, r.stderr)
		}
		impliedPeer = "127.0.0.1:" + strconv.Itoa(got.Port)
		r = runWDHT(t, "announce", "magnet:?xt=urn:btih:"+testIH, boot, "--port", "6882")
		if want := "announced " + testIH + " port=6882 to 1 nodes\n"; r.code != exitOK || r.stdout != want {
			t.Errorf("announce --port: exit %d, stdout %q, stderr %q; want %q", r.code, r.stdout, r.stderr, want)
		}
	})

	t.Run("lookup", func(t *testing.T) {
		r := runWDHT(t, "lookup", testIH, boot)
		for _, p := range []string{impliedPeer, "127.0.0.1:6882"} {
			if !strings.Contains(r.stdout, "peer "+p+"\n") {
				t.Errorf("lookup did not find %s: stdout %q", p, r.stdout)
			}
		}
		if want := "found 2 peers from 1 nodes in 1 rounds, 1 queries, "; r.code != exitOK || !strings.HasPrefix(r.stderr, want) {
			t.Errorf("lookup: exit %d, stderr %q; want it to start with %q", r.code, r.stderr, want)
		}

		r = runWDHT(t, "lookup", "--json", boot, testIH)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if r.code != exitOK || len(lines) != 3 {
			t.Fatalf("lookup --json: exit %d, stdout %q, stderr %q; want 3 lines", r.code, r.stdout, r.stderr)
		}
		var peer struct{ Peer string }
		if err := json.Unmarshal([]byte(lines[0]), &peer); err != nil || peer.Peer == "" {
			t.Errorf("lookup --json peer line %q: %v", lines[0], err)
		}
		var sum lookupSummary
		if err := json.Unmarshal([]byte(lines[2]), &sum); err != nil || sum.Infohash != testIH || len(sum.Peers) != 2 ||
			sum.Responses != 1 || len(sum.Closest) != 1 || sum.Closest[0].ID != n.id || sum.Closest[0].Addr != n.addr {
			t.Errorf("lookup --json summary %q: %+v, %v", lines[2], sum, err)
		}

		other := strings.Repeat("f", 40)
		r = runWDHT(t, "lookup", other, boot)
		if r.code != exitOK || r.stdout != "" || !strings.HasPrefix(r.stderr, "found 0 peers from 1 nodes") {
			t.Errorf("lookup of an unknown infohash: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
	})

	if code := n.stop(t); code != exitOK {
		t.Fatalf("node exited %d; stderr:\n%s", code, n.stderr)
	}
	n.out.await(t, 0, stoppingRE, time.Second)
	if sf := readState(t, state); sf.Mainline.ID.String() != n.id || sf.Web.ID.String() != n.webID {
		t.Errorf("state file holds ids %v, %v; want the node's %s, %s", sf.Mainline.ID, sf.Web.ID, n.id, n.webID)
	}
	n2 := startNode(t, "--addr", "127.0.0.1:0", "--signal-addr", "127.0.0.1:0", "--status", "0", "--state", state)
	if n2.id != n.id || n2.webID != n.webID {
		t.Errorf("restarted node has ids %s, %s; want %s, %s from the state file", n2.id, n2.webID, n.id, n.webID)
	}
}

// TestNodeBootstrap starts a node that joins through another one and checks, on their
// STATUS lines, that each ends up in the other's routing table.
func TestNodeBootstrap(t *testing.T) {
	a := startNode(t, "--transports", "udp", "--addr", "127.0.0.1:0", "--status", "20ms")
	b := startNode(t, "--transports", "udp", "--addr", "127.0.0.1:0", "--status", "20ms", "--bootstrap", a.addr, "--k", "4")
	oneNode := regexp.MustCompile(`^STATUS .* nodes=1 good=1 `)
	b.out.await(t, 0, oneNode, 5*time.Second)
	a.out.await(t, 0, oneNode, 5*time.Second)
}

// TestNodeProcess runs "wdht node --transports udp" as a process: the LISTENING, STATUS
// and STOPPING lines, SIGTERM and SIGINT, the state file (in the single-node form),
// --max-seconds.
func TestNodeProcess(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	p := startProcess(t, "--transports", "udp", "--addr", "127.0.0.1:0", "--status", "50ms", "--state", state)
	if p.signal != "" || p.webID != "" {
		t.Errorf("a UDP-only node printed signal=%s web_id=%s", p.signal, p.webID)
	}
	if p.pid != p.cmd.Process.Pid {
		t.Errorf("LISTENING pid=%d; want the process's %d", p.pid, p.cmd.Process.Pid)
	}
	p.out.await(t, 0, udpStatusRE, 5*time.Second)
	if r := runWDHT(t, "ping", p.addr, "--timeout", "5s"); r.code != exitOK || !strings.Contains(r.stdout, "id="+p.id) {
		t.Errorf("ping: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	p.stop(t, syscall.SIGTERM)
	if id := stateID(t, state); id != p.id {
		t.Errorf("state file holds id %s; want %s", id, p.id)
	}

	p2 := startProcess(t, "--transports", "udp", "--addr", "127.0.0.1:0", "--status", "0", "--state", state)
	if p2.id != p.id {
		t.Errorf("restarted node has id %s; want %s from the state file", p2.id, p.id)
	}
	p2.stop(t, syscall.SIGINT)

	p3 := startProcess(t, "--transports", "udp", "--addr", "127.0.0.1:0", "--max-seconds", "0.2")
	p3.wait(t)
}

// process is "wdht node" running as a process.
type process struct {
	cmd     *exec.Cmd
	out     *lineLog
	stderr  *safeBuffer
	done    chan error
	addr    string
	id      string
	signal  string // when WebRTC runs
	webID   string
	pid     int
	stopped bool
}

// startProcess runs "wdht node args..." as a process (the test binary running main) and
// waits for its LISTENING line. It is killed at the end of the test if still running.
func startProcess(t *testing.T, args ...string) *process {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	p := &process{
		cmd:    exec.Command(exe, append([]string{"node"}, args...)...),
		out:    readLines(pr),
		stderr: &safeBuffer{},
		done:   make(chan error, 1),
	}
	// Under -race, a process sleeps 1s at exit (atexit_sleep_ms) unless told otherwise.
	p.cmd.Env = append(os.Environ(), subprocessEnv+"=1", "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	p.cmd.Stdout, p.cmd.Stderr = pw, p.stderr
	if err := p.cmd.Start(); err != nil {
		pw.Close()
		t.Fatal(err)
	}
	go func() {
		p.done <- p.cmd.Wait()
		pw.Close()
	}()
	t.Cleanup(func() {
		if !p.stopped {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	_, m := p.out.await(t, 0, listeningRE, 10*time.Second)
	p.addr, p.id, p.signal, p.webID = m[2], m[3], m[4], m[5]
	p.pid, _ = strconv.Atoi(m[6])
	return p
}

// stop sends sig and checks that the node says STOPPING and exits 0.
func (p *process) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	p.wait(t)
}

// wait waits for the node to say STOPPING and exit 0.
func (p *process) wait(t *testing.T) {
	t.Helper()
	p.out.await(t, 0, stoppingRE, 10*time.Second)
	select {
	case err := <-p.done:
		p.stopped = true
		if err != nil {
			t.Fatalf("node: %v; stderr:\n%s", err, p.stderr)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("node did not exit within 10s of STOPPING; stderr:\n%s", p.stderr)
	}
}

// stateID returns the node ID saved in a state file in the single-node form.
func stateID(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st dht.State
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("state file %s: %v\n%s", path, err, b)
	}
	return st.ID.String()
}

// readState reads a state file in the two-node form, with both parts.
func readState(t *testing.T, path string) *stateFile {
	t.Helper()
	sf, err := loadState(path)
	if err != nil || sf == nil || !sf.dual || sf.Mainline == nil || sf.Web == nil {
		b, _ := os.ReadFile(path)
		t.Fatalf("state file %s: %+v, %v; want both nodes' state\n%s", path, sf, err, b)
	}
	return sf
}

// TestPingDeadAndLive pings an address where nothing ever answers (a socket that reads
// nothing) and a live node at once: the pings run concurrently, each within --timeout,
// so the dead address cannot use up the live node's time.
func TestPingDeadAndLive(t *testing.T) {
	n := startNode(t, "--transports", "udp", "--addr", "127.0.0.1:0", "--status", "0")
	hole, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	dead := hole.LocalAddr().String()
	r := runWDHT(t, "ping", dead, n.addr, "--timeout", "1s")
	if !strings.Contains(r.stdout, "pong from "+n.addr+" id="+n.id) {
		t.Errorf("the live node did not answer: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	if want := "no answer from " + dead + " (timed out after 1s)"; r.code != exitFailed || !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, n.addr) {
		t.Errorf("exit %d, stderr %q; want exit %d and only the dead address named: %q", r.code, r.stderr, exitFailed, want)
	}
}
