package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// metricsRE is the line giving the --metrics-addr address.
var metricsRE = regexp.MustCompile(`^METRICS addr=(\S+)$`)

// TestOpsUsageErrors checks that bad values of the operator flags, on the command line
// or in the environment, exit 2 with a message naming the flag, before anything starts.
func TestOpsUsageErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	node := []string{"node", "--addr", "127.0.0.1:0", "--signal-addr", "127.0.0.1:0"}
	tests := []struct {
		name string
		args []string
		env  []string // name, value
		want string   // the whole first line of stderr
	}{
		{"negative conns", []string{"--max-conns", "-1"}, nil, "wdht: node: --max-conns -1: want a number of at least 1"},
		{"zero pending", []string{"--max-pending=0"}, nil, "wdht: node: --max-pending 0: want a number of at least 1"},
		{"negative per ip", []string{"--max-pending-per-ip", "-3"}, nil, "wdht: node: --max-pending-per-ip -3: want a number of at least 1"},
		{"negative peers", []string{"--max-peers", "-1"}, nil, "wdht: node: --max-peers -1: want a number of at least 1"},
		{"negative items", []string{"--max-items", "-1"}, nil, "wdht: node: --max-items -1: want a number of at least 1"},
		{"negative peers per source", []string{"--max-peers-per-source", "-1"}, nil, "wdht: node: --max-peers-per-source -1: want a number of at least 0"},
		{"negative items per source", []string{"--max-items-per-source", "-2"}, nil, "wdht: node: --max-items-per-source -2: want a number of at least 0"},
		{"negative buffer", []string{"--udp-read-buffer", "-1"}, nil, "wdht: node: --udp-read-buffer -1: want a number of at least 0"},
		{"zero ttl", []string{"--peer-ttl", "0s"}, nil, "wdht: node: --peer-ttl 0s: want a positive duration"},
		{"zero rate", []string{"--source-rate", "0"}, nil, "wdht: node: --source-rate 0: want queries per second above 0 (--limits=false turns the limit off)"},
		{"bad cidr", []string{"--trusted-proxy", "10.0.0.0/33"}, nil,
			`wdht: node: invalid value "10.0.0.0/33" for flag -trusted-proxy: "10.0.0.0/33" is not a CIDR prefix (such as 10.0.0.0/8 or 2001:db8::/32) or an IP address`},
		{"bad header", []string{"--proxy-header", "x-real-ip"}, nil, `wdht: node: --proxy-header "x-real-ip": want x-forwarded-for or forwarded`},
		{"log format", []string{"--log-format", "xml"}, nil, `wdht: node: --log-format "xml": want text or json`},
		{"metrics syntax", []string{"--metrics-addr", "localhost"}, nil,
			`wdht: node: --metrics-addr "localhost": want ip:port ([ip]:port for IPv6, :port for loopback, 0.0.0.0:port for every interface)`},
		{"metrics in use", []string{"--metrics-addr", busy.Addr().String()}, nil,
			`wdht: node: --metrics-addr "` + busy.Addr().String() + `": cannot listen on ` + busy.Addr().String() + `: bind: address already in use`},
		{"pprof alone", []string{"--pprof"}, nil, "wdht: node: --pprof needs --metrics-addr: the profiles are served there"},
		{"proxy without webrtc", []string{"--transports", "udp", "--trusted-proxy", "10.0.0.1"}, nil,
			"wdht: node: --trusted-proxy is for the webrtc side: add webrtc to --transports"},
		{"env value", nil, []string{"WDHT_MAX_CONNS", "many"}, `wdht: node: WDHT_MAX_CONNS="many" (--max-conns): parse error`},
		{"env check", nil, []string{"WDHT_LOG_FORMAT", "yaml"}, `wdht: node: --log-format "yaml": want text or json`},
		{"state dir", []string{"--state", filepath.Join(t.TempDir(), "missing", "state.json")}, nil, "wdht: node: --state "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != nil {
				t.Setenv(tt.env[0], tt.env[1])
			}
			args := append(append([]string{}, node...), tt.args...)
			if tt.name == "proxy without webrtc" {
				args = append([]string{"node"}, tt.args...)
			}
			r := runWDHT(t, args...)
			first, _, _ := strings.Cut(r.stderr, "\n")
			if r.code != exitUsage || r.stdout != "" || !strings.HasPrefix(first, tt.want) ||
				(!strings.HasSuffix(tt.want, " ") && first != tt.want) {
				t.Errorf("wdht %q: exit %d, stdout %q, stderr %q; want exit 2 and %q", args, r.code, r.stdout, r.stderr, tt.want)
			}
		})
	}
}

// TestStateChecks: a --state in a directory that does not exist fails at start, naming
// the problem; an empty state file starts a fresh node and is written at exit.
func TestStateChecks(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nodir", "state.json")
	r := runWDHT(t, "node", "--transports", "udp", "--addr", "127.0.0.1:0", "--state", missing)
	if want := `wdht: node: --state "` + missing + `": cannot write in ` + filepath.Dir(missing) + ": no such file or directory\n"; r.code != exitUsage || r.stderr != want {
		t.Errorf("state in a missing directory: exit %d, stderr %q; want %q", r.code, r.stderr, want)
	}
	if r := runWDHT(t, "node", "--transports", "udp", "--addr", "127.0.0.1:0", "--state", dir); r.code != exitUsage ||
		r.stderr != `wdht: node: --state "`+dir+`": is a directory`+"\n" {
		t.Errorf("state a directory: exit %d, stderr %q", r.code, r.stderr)
	}
	empty := filepath.Join(dir, "empty.json")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r = runWDHT(t, "node", "--transports", "udp", "--addr", "127.0.0.1:0", "--state", empty, "--max-seconds", "0.05", "--status", "0")
	if r.code != exitOK {
		t.Fatalf("node from an empty state file: exit %d, stderr %q", r.code, r.stderr)
	}
	m := listeningRE.FindStringSubmatch(strings.Split(r.stdout, "\n")[0])
	if m == nil || stateID(t, empty) != m[3] {
		t.Errorf("the empty state file was not replaced by the node's state: stdout %q", r.stdout)
	}
}

// TestEnvFlags checks the WDHT_<FLAG> rule: a variable sets its flag, the command line
// wins over it.
func TestEnvFlags(t *testing.T) {
	t.Setenv("WDHT_MAX_CONNS", "100")
	t.Setenv("WDHT_ENFORCE_SECURE_IDS", "true")
	t.Setenv("WDHT_TRUSTED_PROXY", "10.0.0.0/8,192.0.2.1")
	t.Setenv("WDHT_PEER_TTL", "1h")
	t.Setenv("WDHT_MAX_PENDING", "5")
	f, err := parseNodeFlags([]string{"--max-pending", "7"})
	if err != nil {
		t.Fatal(err)
	}
	if f.ops.maxConns != 100 || !f.ops.enforceSecure || f.ops.peerTTL != time.Hour || f.ops.maxPending != 7 ||
		f.ops.trustedProxies.String() != "10.0.0.0/8,192.0.2.1/32" {
		t.Errorf("from the environment: %+v", f.ops)
	}
	if envName("max-peers-per-infohash") != "WDHT_MAX_PEERS_PER_INFOHASH" {
		t.Errorf("envName: %s", envName("max-peers-per-infohash"))
	}
}

// TestOpsEndpoints runs a node with --metrics-addr and --pprof: /healthz, /readyz (not
// ready while alone, ready once another node joined), /debug/pprof/, and /metrics,
// which `promtool check metrics` accepts. Without --pprof there are no profiles.
func TestOpsEndpoints(t *testing.T) {
	a := startNode(t, "--transports", "udp", "--addr", "127.0.0.1:0", "--status", "0", "--metrics-addr", "127.0.0.1:0", "--pprof", "--log-format", "json", "--log-level", "debug")
	_, m := a.out.await(t, 0, metricsRE, time.Second)
	base := "http://" + m[1]
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", code, body)
	}
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "the mainline routing table is empty") {
		t.Errorf("/readyz of a lone node: %d %q", code, body)
	}
	if code, body := get("/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/: %d", code)
	}
	b := startNode(t, "--transports", "udp", "--addr", "127.0.0.1:0", "--status", "20ms", "--bootstrap", a.addr)
	b.out.await(t, 0, regexp.MustCompile(`^STATUS .* nodes=1 `), 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body := get("/readyz")
		if code == 200 && body == "ready\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after a node joined: %d %q", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	code, exposition := get("/metrics")
	if code != 200 || !strings.Contains(exposition, `wdht_krpc_queries_received_total{method="find_node",node="mainline",result="response"} 1`) {
		t.Errorf("/metrics: %d, no find_node received:\n%s", code, exposition)
	}
	promtoolCheck(t, exposition)

	c := startNode(t, "--transports", "udp", "--addr", "127.0.0.1:0", "--status", "0", "--metrics-addr", ":0")
	_, m = c.out.await(t, 0, metricsRE, time.Second)
	if !strings.HasPrefix(m[1], "127.0.0.1:") {
		t.Errorf("--metrics-addr :0 listens on %s, want loopback", m[1])
	}
	resp, err := http.Get("http://" + m[1] + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/debug/pprof/ without --pprof: %d, want 404", resp.StatusCode)
	}
	// The logs of node a, at debug level, are JSON objects, one per line.
	logs := strings.Split(strings.TrimSpace(a.stderr.String()), "\n")
	if len(logs) == 0 || logs[0] == "" {
		t.Error("no logs at debug level")
	}
	for _, line := range logs {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil || obj["@message"] == nil || obj["@level"] == nil {
			t.Errorf("--log-format json wrote a line that is not an hclog JSON object: %q (%v)", line, err)
		}
	}
}

// promtoolCheck runs `promtool check metrics` (Debian's prometheus package) on an
// exposition. It skips without promtool, except under CI.
func promtoolCheck(t *testing.T, exposition string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("promtool not installed: %v", err)
		}
		t.Skipf("promtool not installed (apt-get install prometheus): %v", err)
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out.String())
	}
}

// TestOpsFlagsApplied checks that the store and rate-limit flags reach the node: with
// --max-items 1 a second item pushes the first out, and with --source-rate 1
// --source-burst 1 a ping right after another from the same client is dropped and
// counted in /metrics.
func TestOpsFlagsApplied(t *testing.T) {
	// Both puts come from one address: its quota (a hundredth of --max-items, at least 1)
	// would refuse the second; --max-items-per-source 2 lets it push the first out.
	n := startNode(t, "--transports", "udp", "--addr", "127.0.0.1:0", "--status", "20ms", "--max-items", "1", "--max-items-per-source", "2", "--limits=false")
	boot := "--bootstrap=" + n.addr
	wantRun(t, exitOK, "put", "first", boot)
	wantRun(t, exitOK, "put", "second", boot)
	after := len(strings.Split(n.out.String(), "\n")) // a STATUS line printed after both puts
	if _, m := n.out.await(t, after, regexp.MustCompile(`^STATUS .* items=(\d+) `), 5*time.Second); m[1] != "1" {
		t.Errorf("items=%s after two puts with --max-items 1", m[1])
	}

	r := startNode(t, "--transports", "udp", "--addr", "127.0.0.1:0", "--status", "0", "--metrics-addr", "127.0.0.1:0",
		"--source-rate", "1", "--source-burst", "1")
	_, m := r.out.await(t, 0, metricsRE, time.Second)
	wantRun(t, exitOK, "ping", r.addr, "--timeout", "5s")
	wantRun(t, exitFailed, "ping", r.addr, "--timeout", "200ms") // both attempts within the second: dropped
	resp, err := http.Get("http://" + m[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rl := regexp.MustCompile(`(?m)^wdht_krpc_packets_rate_limited_total\{node="mainline"\} (\d+)$`).FindSubmatch(b)
	if rl == nil || string(rl[1]) == "0" {
		t.Errorf("rate-limited packets: %q; want some", rl)
	}
}
