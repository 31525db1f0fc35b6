package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wdht/wdht/krpc"
)

const zeroIH = "0000000000000000000000000000000000000000"

// An all-zero infohash or target is an ordinary ID: announced, looked up, sampled and
// got like any other (the node used to answer 203 "missing info_hash", and the CLI said
// that no node answered).
func TestZeroInfohash(t *testing.T) {
	n := startNode(t, "--transports", "udp", "--addr", "127.0.0.1:0", "--limits=false")
	wantRun(t, exitOK, "announce", zeroIH, "--port", "5000", "--bootstrap", n.addr)
	if r := wantRun(t, exitOK, "lookup", zeroIH, "--bootstrap", n.addr); r.stdout != "peer 127.0.0.1:5000\n" {
		t.Errorf("lookup of the zero infohash: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	if r := wantRun(t, exitOK, "sample", "--target", zeroIH, n.addr); !strings.Contains(r.stdout, " num=1 ") || !strings.Contains(r.stdout, zeroIH) {
		t.Errorf("sample with the zero target: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	r := wantRun(t, exitFailed, "get", zeroIH, "--bootstrap", n.addr)
	if want := "wdht: get: item " + zeroIH + " not found (1 nodes answered"; !strings.HasPrefix(r.stderr, want) {
		t.Errorf("get of the zero target: stderr %q, want it to start with %q", r.stderr, want)
	}
}

// refusingNode answers every query with KRPC error 203 "no thanks".
func refusingNode(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			var q krpc.Msg
			if q.UnmarshalBinary(buf[:n]) != nil || q.Y != krpc.TypeQuery {
				continue
			}
			b, _ := (&krpc.Msg{T: q.T, Y: krpc.TypeError, E: &krpc.Error{Code: 203, Msg: "no thanks"}}).MarshalBinary()
			c.WriteTo(b, from)
		}
	}()
	return c.LocalAddr().String()
}

// A node that answers with a KRPC error is reported as such (its address, code and
// message), not as a node that did not answer; with --json the error is also a JSON
// object on stdout, as are usage errors.
func TestRemoteKRPCError(t *testing.T) {
	addr := refusingNode(t)
	want := "node " + addr + " answered KRPC error 203: no thanks"
	for _, args := range [][]string{
		{"lookup", testIH},
		{"announce", testIH, "--port", "6881"},
		{"get", testIH},
		{"put", "a value"},
	} {
		r := wantRun(t, exitFailed, append(args, "--bootstrap", addr, "--timeout", "5s")...)
		if r.stderr != "wdht: "+args[0]+": "+want+"\n" {
			t.Errorf("wdht %q: stderr %q, want %q", args, r.stderr, "wdht: "+args[0]+": "+want)
		}
	}
	// Direct queries: the node answered, with an error.
	for _, args := range [][]string{{"ping", addr}, {"sample", addr}, {"ping", "--bootstrap", addr}} {
		r := wantRun(t, exitFailed, append(args, "--timeout", "5s")...)
		if r.stderr != "wdht: "+args[0]+": "+want+"\n" {
			t.Errorf("wdht %q: stderr %q, want %q", args, r.stderr, "wdht: "+args[0]+": "+want)
		}
	}
	if r := wantRun(t, exitFailed, "ping", "--json", addr); !strings.HasSuffix(r.stdout, `"node":"`+addr+`","krpc_code":203,"krpc_message":"no thanks"}`+"\n") {
		t.Errorf("ping --json: stdout %q", r.stdout)
	}
	r := wantRun(t, exitFailed, "lookup", "--json", testIH, "--bootstrap", addr, "--timeout", "5s")
	var got jsonError
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("lookup --json: stdout %q (%v), want one JSON object", r.stdout, err)
	}
	if wantJ := (jsonError{Command: "lookup", Error: want, Exit: exitFailed, Node: addr, KRPCCode: 203, KRPCMessage: "no thanks"}); got != wantJ {
		t.Errorf("lookup --json error: %+v, want %+v", got, wantJ)
	}

	r = wantRun(t, exitUsage, "lookup", "--json", "abc")
	got = jsonError{}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Command != "lookup" || got.Exit != exitUsage || !got.Usage ||
		!strings.Contains(got.Error, `infohash "abc"`) || !strings.Contains(r.stderr, `infohash "abc"`) {
		t.Errorf("lookup --json abc: stdout %q (%v), stderr %q", r.stdout, err, r.stderr)
	}
	// A bad flag after --json does not hide it.
	if r := wantRun(t, exitUsage, "lookup", "--json", "--bogus", testIH); !strings.Contains(r.stdout, `"usage":true`) {
		t.Errorf("lookup --json --bogus: stdout %q", r.stdout)
	}
	if r := wantRun(t, exitUsage, "lookup", "abc"); r.stdout != "" {
		t.Errorf("lookup abc without --json wrote to stdout: %q", r.stdout)
	}
}

// SIGINT stops a client command with exit status 130 (a real process: the test binary
// running main), SIGTERM with 143.
func TestInterruptExitStatus(t *testing.T) {
	// A node that never answers: the lookup waits out its 30 s timeout unless stopped.
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGINT, 130}, {syscall.SIGTERM, 143}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			cmd := exec.Command(exe, "lookup", testIH, "--bootstrap", silent.LocalAddr().String(), "--json")
			cmd.Env = append(os.Environ(), subprocessEnv+"=1", "WDHT_LOG=debug", "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
			var stdout bytes.Buffer
			stderr := &safeBuffer{}
			cmd.Stdout, cmd.Stderr = &stdout, stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			// The first debug line comes after main installed its signal handler.
			for deadline := time.Now().Add(10 * time.Second); stderr.String() == ""; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					<-done
					t.Fatal("no log line from the lookup within 10s")
				}
			}
			start := time.Now()
			cmd.Process.Signal(tc.sig)
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("the lookup did not stop within 10s of %v; stderr:\n%s", tc.sig, stderr)
			}
			ee, ok := errors.AsType[*exec.ExitError](err)
			if !ok || ee.ExitCode() != tc.code {
				t.Fatalf("after %v: %v, want exit status %d; stderr:\n%s", tc.sig, err, tc.code, stderr)
			}
			if !strings.Contains(stderr.String(), "wdht: lookup: interrupted ("+tc.sig.String()+")\n") {
				t.Errorf("stderr does not say the lookup was interrupted:\n%s", stderr)
			}
			if !strings.Contains(stdout.String(), fmt.Sprintf(`"exit":%d`, tc.code)) {
				t.Errorf("stdout has no JSON error: %q", stdout.String())
			}
			t.Logf("%v stopped the lookup in %v", tc.sig, time.Since(start).Round(time.Millisecond))
		})
	}
}
