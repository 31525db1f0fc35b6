package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestLookupPastDeadNode: six nodes on loopback (UDP), five bootstrapping from the first;
// a client announces an infohash, then one node is stopped while the first still lists
// it. A fresh client's lookup through the first node prints the peer and a summary that
// reports success: the five live nodes answered, the dead one was queried and stalled
// (the lookup went on without it). `wdht ping DEAD LIVE` reports the live node answering
// and names only the dead one as silent.
func TestLookupPastDeadNode(t *testing.T) {
	udp := []string{"--transports", "udp", "--addr", "127.0.0.1:0", "--limits=false"}
	first := startNode(t, append(udp, "--status", "20ms")...)
	var dead *nodeProc
	for i := range 5 {
		n := startNode(t, append(udp, "--status", "0", "--bootstrap", first.addr)...)
		if i == 4 {
			dead = n
		}
	}
	first.out.await(t, 0, regexp.MustCompile(`^STATUS .* nodes=5 good=5 `), 10*time.Second)
	boot := "--bootstrap=" + first.addr
	if r := runWDHT(t, "announce", testIH, "--port", "6882", boot); r.code != exitOK {
		t.Fatalf("announce: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if code := dead.stop(t); code != exitOK {
		t.Fatalf("stopping a node: exit %d", code)
	}

	r := runWDHT(t, "lookup", testIH, boot)
	if !strings.Contains(r.stdout, "peer 127.0.0.1:6882\n") {
		t.Errorf("lookup did not print the peer: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	summary := regexp.MustCompile(`^found 1 peers from 5 nodes in \d+ rounds, 6 queries \(\d+ stalled\), \d+ms\n$`)
	if r.code != exitOK || !summary.MatchString(r.stderr) {
		t.Errorf("lookup: exit %d, stderr %q; want %v", r.code, r.stderr, summary)
	}

	r = runWDHT(t, "lookup", "--json", testIH, boot)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var sum lookupSummary
	if r.code != exitOK || len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &sum) != nil {
		t.Fatalf("lookup --json: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if len(sum.Peers) != 1 || sum.Responses != 5 || sum.Queries != 6 || sum.Stalled < 1 {
		t.Errorf("lookup --json summary %+v: want 1 peer, 5 of 6 nodes answering, the dead one stalled", sum)
	}

	r = runWDHT(t, "ping", dead.addr, first.addr, "--timeout", "1s")
	if !strings.Contains(r.stdout, "pong from "+first.addr+" id="+first.id) {
		t.Errorf("the live node did not answer: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	if want := "no answer from " + dead.addr; r.code != exitFailed || !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, first.addr) {
		t.Errorf("ping: exit %d, stderr %q; want exit %d and only the dead address named: %q", r.code, r.stderr, exitFailed, want)
	}
}
