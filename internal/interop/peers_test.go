//go:build unix

package interop

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Fake peers: /bin/sh scripts that print the start scripts' lines. StartProcess appends
// the common flags, which sh -c receives as $0, $1, ... and ignores.

const fakeID = "0123456789abcdef0123456789abcdef01234567"

func startFake(t *testing.T, script string) (*Peer, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	return StartProcess(ctx, "fake", []string{"/bin/sh", "-c", script}, Options{ReadyTimeout: 5 * time.Second})
}

func TestStartProcess(t *testing.T) {
	t.Parallel()
	p, err := startFake(t, `
trap 'echo "STOPPING impl=fake pid=$$"; exit 0' TERM
echo "LISTENING impl=fake version=1.2 addr=127.0.0.1:4321 id=`+fakeID+` pid=$$"
echo "STATS t=0.50 nodes=1"
echo "STATS t=1.00 nodes=3 good=2"
while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	if p.Impl != "fake" || p.Version != "1.2" || p.Addr.String() != "127.0.0.1:4321" || !p.HasID || p.ID.String() != fakeID {
		t.Errorf("parsed %+v", p)
	}
	if n, err := p.WaitStats(t.Context(), 3); err != nil || n != 3 {
		t.Errorf("WaitStats(3) = %d, %v", n, err)
	}
	if n := p.LastStats(); n != 3 {
		t.Errorf("LastStats() = %d, want 3", n)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if out := p.Output(); !strings.Contains(out, "STOPPING impl=fake") {
		t.Errorf("output lacks the STOPPING line:\n%s", out)
	}
	select {
	case <-p.Exited():
	default:
		t.Error("Exited not closed after Stop")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if _, err := p.WaitFunc(ctx, func(s string) bool { return s == "never printed" }); err == nil || !strings.Contains(err.Error(), "output ended") {
		t.Errorf("WaitFunc after exit: %v, want an output-ended error", err)
	}
}

func TestStartProcessNoID(t *testing.T) {
	t.Parallel()
	p, err := startFake(t, `trap 'exit 0' TERM; echo "LISTENING impl=fake version=1 addr=127.0.0.1:1 pid=$$"; while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if p.HasID || p.LastStats() != -1 {
		t.Errorf("HasID %v, LastStats %d; want false, -1", p.HasID, p.LastStats())
	}
}

func TestStartProcessFails(t *testing.T) {
	t.Parallel()
	_, err := startFake(t, `echo "something went wrong" >&2; exit 3`)
	if err == nil || !strings.Contains(err.Error(), "something went wrong") {
		t.Errorf("StartProcess of a failing command: %v; want an error with its output", err)
	}
}

func TestStopAfterEarlyExit(t *testing.T) {
	t.Parallel()
	p, err := startFake(t, `echo "LISTENING impl=fake version=1 addr=127.0.0.1:1 pid=$$"; exit 0`)
	if err != nil {
		t.Fatal(err)
	}
	<-p.Exited()
	if err := p.Stop(); err == nil || !strings.Contains(err.Error(), "before Stop") {
		t.Errorf("Stop after the process exited by itself: %v; want an error", err)
	}
}

func TestStopKillsIgnoredTerm(t *testing.T) {
	t.Parallel()
	// The shell ignores SIGTERM and so do the sleeps it starts: Stop must kill the group.
	p, err := startFake(t, `trap '' TERM; echo "LISTENING impl=fake version=1 addr=127.0.0.1:1 pid=$$"; while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = p.Stop()
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Stop of a process ignoring SIGTERM: %v; want a killed error", err)
	}
	if d := time.Since(start); d < StopGrace || d > StopGrace+5*time.Second {
		t.Errorf("Stop took %v, want about %v", d, StopGrace)
	}
}

func TestAvailableUnknown(t *testing.T) {
	t.Parallel()
	if err := Available("no-such-dht"); err == nil {
		t.Error("Available of an unknown implementation: nil error")
	}
}

func TestSharedDir(t *testing.T) {
	t.Parallel()
	d, err := PeersDir()
	if err != nil {
		t.Skipf("no shared harness here: %v", err)
	}
	if !isFile(d + "/start-libtorrent.sh") {
		t.Errorf("PeersDir %s has no start-libtorrent.sh", d)
	}
}
