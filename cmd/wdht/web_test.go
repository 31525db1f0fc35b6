package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/extensions/signals"
	"github.com/wdht/wdht/internal/testenv"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/webrtc"
)

// TestWebUsageErrors checks the bad input of the WebRTC flags, of node and of the
// client commands: the exact message and exit status 2, before any network use.
func TestWebUsageErrors(t *testing.T) {
	const hint = "Run 'wdht help %s' for usage.\n"
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate"), 0o600)
	cert, key, _ := testenv.SelfSigned(t)
	badWebState := filepath.Join(dir, "web.json")
	os.WriteFile(badWebState, []byte(`{"mainline":{"id":"`+testIH+`"},"web":{"id":"xyz"}}`), 0o644)
	tests := []struct {
		name      string
		args      []string
		want      string // the first line of stderr, after "wdht: <command>: "
		showUsage bool
	}{
		{"node transports", []string{"node", "--transports", "udp,tcp"}, `invalid value "udp,tcp" for flag -transports: unknown transport "tcp": want udp, webrtc or udp,webrtc`, true},
		{"node transports empty", []string{"node", "--transports="}, `invalid value "" for flag -transports: want udp, webrtc or udp,webrtc`, true},
		{"node signal-addr", []string{"node", "--signal-addr", "localhost:16881"}, `--signal-addr "localhost:16881": host "localhost" is not an IP address`, false},
		{"node signal-addr port", []string{"node", "--signal-addr", "127.0.0.1:99999"}, `--signal-addr "127.0.0.1:99999": port "99999": want a number from 0 (any free port) to 65535`, false},
		{"node signal-addr no port", []string{"node", "--signal-addr", "127.0.0.1"}, `--signal-addr "127.0.0.1": want ip:port ([ip]:port for IPv6, :port for every interface)`, false},
		{"node advertise", []string{"node", "--advertise", "dht.example.com"}, `--advertise: address "dht.example.com": want host:port ([host]:port for IPv6)`, false},
		{"node advertise port 0", []string{"node", "--advertise", "dht.example.com:0"}, `--advertise: address "dht.example.com:0": port "0": want a number from 1 to 65535`, false},
		{"node cert without key", []string{"node", "--tls-cert", cert}, "--tls-cert needs --tls-key, the certificate's private key", true},
		{"node key without cert", []string{"node", "--tls-key", key}, "--tls-key needs --tls-cert, the certificate it belongs to", true},
		{"node cert unreadable", []string{"node", "--tls-cert", missing, "--tls-key", key}, fmt.Sprintf("--tls-cert %q: no such file or directory", missing), false},
		{"node key unreadable", []string{"node", "--tls-cert", cert, "--tls-key", dir}, fmt.Sprintf("--tls-key %q: is a directory", dir), false},
		{"node cert garbage", []string{"node", "--tls-cert", garbage, "--tls-key", key},
			fmt.Sprintf("--tls-cert %q, --tls-key %q: failed to find any PEM data in certificate input", garbage, key), false},
		{"node cert and key swapped", []string{"node", "--tls-cert", key, "--tls-key", cert},
			fmt.Sprintf("--tls-cert %q, --tls-key %q: failed to find certificate PEM data in certificate input, but did find a private key; PEM inputs may have been switched", key, cert), false},
		{"node loopback", []string{"node", "--loopback=maybe"}, `invalid boolean value "maybe" for -loopback: want true, false or auto`, true},
		{"node web-bootstrap", []string{"node", "--web-bootstrap", "127.0.0.1"}, `invalid value "127.0.0.1" for flag -web-bootstrap: address "127.0.0.1": want host:port ([host]:port for IPv6)`, true},
		{"node web-bootstrap unusable", []string{"node", "--web-bootstrap", "0.0.0.0:16881"}, `--web-bootstrap: address "0.0.0.0:16881": 0.0.0.0 is not an address a node can have`, false},
		{"node web-k", []string{"node", "--web-k", "0"}, "--web-k 0: want a bucket size of at least 1", false},
		{"node log-level", []string{"node", "--log-level", "chatty"}, `--log-level "chatty": want trace, debug, info, warn, error or off`, false},
		{"node signal-addr without webrtc", []string{"node", "--transports", "udp", "--signal-addr", "127.0.0.1:0"}, "--signal-addr is for the webrtc side: add webrtc to --transports", true},
		{"node tls without webrtc", []string{"node", "--tls-cert", cert, "--tls-key", key, "--transports=udp"}, "--tls-cert is for the webrtc side: add webrtc to --transports", true},
		{"node web-bootstrap without webrtc", []string{"node", "--transports", "udp", "--web-bootstrap", "127.0.0.1:16881"}, "--web-bootstrap is for the webrtc side: add webrtc to --transports", true},
		{"node addr without udp", []string{"node", "--transports", "webrtc", "--addr", "127.0.0.1:0"}, "--addr is for the udp side: add udp to --transports", true},
		{"node bootstrap without udp", []string{"node", "--transports", "webrtc", "--bootstrap", "127.0.0.1:6881"}, "--bootstrap is for the udp side: add udp to --transports", true},
		{"node k without udp", []string{"node", "--transports", "webrtc", "--k", "4"}, "--k is for the udp side: add udp to --transports", true},
		{"node bootstrap default on loopback", []string{"node", "--bootstrap", "default"},
			"--bootstrap router.bittorrent.com:6881: a node on loopback (--addr 127.0.0.1:6881) cannot reach it: give --addr an address of this host that can, or :6881 for every interface", false},
		{"node public bootstrap on loopback", []string{"node", "--addr", "127.0.0.1:0", "--bootstrap", "127.0.0.1:6881,192.0.2.1:6881"},
			"--bootstrap 192.0.2.1:6881: a node on loopback (--addr 127.0.0.1:0) cannot reach it: give --addr an address of this host that can, or :0 for every interface", false},
		{"node bad web state", []string{"node", "--state", badWebState}, fmt.Sprintf(`--state %q: web: dht: state: dht: ID "xyz": want 40 hex characters, got 3`, badWebState), false},

		{"lookup transport", []string{"lookup", testIH, "--transport", "tcp"}, `invalid value "tcp" for flag -transport: want udp or webrtc`, true},
		{"lookup webrtc addr", []string{"lookup", "--transport", "webrtc", "--addr", "127.0.0.1:0", testIH}, "--addr is for --transport udp: a WebRTC client has no address of its own", true},
		{"lookup udp loopback", []string{"lookup", "--loopback", testIH}, "--loopback is for --transport webrtc", true},
		{"lookup webrtc short", []string{"lookup", "--transport=webrtc", "0123"}, `infohash "0123": want 40 hex characters, got 4`, false},
		{"lookup webrtc bootstrap", []string{"lookup", "--transport", "webrtc", "--bootstrap", "127.0.0.1:0", testIH},
			`invalid value "127.0.0.1:0" for flag -bootstrap: address "127.0.0.1:0": port "0": want a number from 1 to 65535`, true},
		{"lookup webrtc unusable bootstrap", []string{"lookup", "--transport", "webrtc", "--bootstrap", "224.0.0.1:16881", testIH},
			`--bootstrap: address "224.0.0.1:16881": 224.0.0.1 is not an address a node can have`, false},
		{"lookup webrtc no bootstrap", []string{"lookup", "--transport", "webrtc", "--bootstrap=", testIH}, "no bootstrap address: give --bootstrap HOST:PORT", true},
		{"announce webrtc port", []string{"announce", "--transport", "webrtc", "--port", "6882", testIH},
			"--port is for --transport udp: over WebRTC, nodes record the connection's address (implied_port)", true},
		{"announce webrtc magnet", []string{"announce", "--transport", "webrtc", "magnet:?xt=urn:btih:xyz"}, `magnet URI "magnet:?xt=urn:btih:xyz": btih "xyz": want 40 hex or 32 base32 characters, got 3`, false},
		{"get webrtc target", []string{"get", "--transport", "webrtc", "x" + testIH[1:]}, `target "x` + testIH[1:] + `": want 40 hex characters, got 'x' at position 1`, false},
		{"get webrtc key", []string{"get", "--transport", "webrtc", "--key", "abcd"}, `--key "abcd": want 64 hex characters, got 4 (an ed25519 public key)`, false},
		{"put webrtc seed", []string{"put", "--transport", "webrtc", "--mutable", "--seed", "12", "v"}, "--seed: want 64 hex characters, got 2 (a 32-byte ed25519 seed)", false},
		{"put webrtc too big", []string{"put", "--transport", "webrtc", strings.Repeat("a", 997)}, "VALUE is 1001 bytes bencoded, at most 1000 allowed", false},
		{"ping webrtc addr", []string{"ping", "--transport", "webrtc", "localhost"}, `address "localhost": want host:port ([host]:port for IPv6)`, false},
		{"ping webrtc unusable", []string{"ping", "--transport", "webrtc", "0.0.0.0:16881"}, `address "0.0.0.0:16881": 0.0.0.0 is not an address a node can have`, false},
		{"ping webrtc nothing", []string{"ping", "--transport", "webrtc", "--bootstrap="}, "nothing to ping: give an ADDR or --bootstrap", true},
		{"sample webrtc target", []string{"sample", "--transport", "webrtc", "--target", testIH + "0", "127.0.0.1:16881"}, `--target "` + testIH + `0": want 40 hex characters, got 41`, false},
		{"sample webrtc addr", []string{"sample", "--transport", "webrtc", "127.0.0.1:http"}, `address "127.0.0.1:http": port "http": want a number from 1 to 65535`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runWDHT(t, tt.args...)
			want := "wdht: " + tt.args[0] + ": " + tt.want + "\n"
			if tt.showUsage {
				want += fmt.Sprintf(hint, tt.args[0])
			}
			if r.code != exitUsage || r.stderr != want || r.stdout != "" {
				t.Errorf("wdht %q: exit %d, stdout %q, stderr:\n%s\nwant exit %d, no stdout, stderr:\n%s", tt.args, r.code, r.stdout, r.stderr, exitUsage, want)
			}
		})
	}
}

// TestNodeFlags checks what node makes of its flags: the defaults (a bridge on
// loopback, no bootstrap node: nothing is contacted unless named) and the word
// "default", which stands for the mainline routers and is never used otherwise.
func TestNodeFlags(t *testing.T) {
	f, err := parseNodeFlags(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !f.transports.udp || !f.transports.webrtc || f.laddr.String() != "127.0.0.1:6881" || f.saddr.String() != "127.0.0.1:16881" ||
		len(f.bootstrap.addrs) != 0 || len(f.webBootstrap.addrs) != 0 || f.k != 8 || f.webK != 2 || f.loopback.set {
		t.Errorf("defaults: %+v", f)
	}
	f, err = parseNodeFlags([]string{"--addr", ":6881", "--bootstrap", "127.0.0.1:7000,default", "--bootstrap", "dht.example.com:6881"})
	if err != nil {
		t.Fatal(err)
	}
	want := append(append([]string{"127.0.0.1:7000"}, defaultRouters...), "dht.example.com:6881")
	if !slices.Equal(f.bootstrap.addrs, want) {
		t.Errorf("--bootstrap with default: %q; want %q", f.bootstrap.addrs, want)
	}
	if want := []string{"router.bittorrent.com:6881", "dht.transmissionbt.com:6881", "router.utorrent.com:6881", "dht.libtorrent.org:25401"}; !slices.Equal(defaultRouters, want) {
		t.Errorf("default routers %q; want %q", defaultRouters, want)
	}
	for _, args := range [][]string{{"--transports", "webrtc"}, {"--transports", "udp"}, {"--transports", "udp,webrtc,udp"}} {
		f, err := parseNodeFlags(args)
		if err != nil || len(f.bootstrap.addrs) != 0 || len(f.webBootstrap.addrs) != 0 {
			t.Errorf("parseNodeFlags(%q) = %+v, %v; want no bootstrap node", args, f, err)
		}
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "udp,webrtc"}, {[]string{"--transports", "webrtc"}, "webrtc"}, {[]string{"--transports", " udp "}, "udp"},
	} {
		if f, err := parseNodeFlags(tt.args); err != nil || f.transports.String() != tt.want {
			t.Errorf("parseNodeFlags(%q): transports %v, %v; want %s", tt.args, f, err, tt.want)
		}
	}
	for _, tt := range []struct {
		s        string
		auto, on bool
	}{{"auto", true, true}, {"auto", false, false}, {"true", false, true}, {"false", true, false}, {"1", false, true}} {
		var b autoBool
		if err := b.Set(tt.s); err != nil || b.value(tt.auto) != tt.on {
			t.Errorf("--loopback=%s (auto %v) = %v, %v; want %v", tt.s, tt.auto, b.value(tt.auto), err, tt.on)
		}
	}
	if !allLoopback([]string{"127.0.0.1:1", "[::1]:2", "localhost:3"}) || allLoopback([]string{"127.0.0.1:1", "example.com:2"}) || allLoopback(nil) {
		t.Error("allLoopback")
	}
}

// TestWebUnreachable runs every client command over WebRTC against signalling servers
// that refuse or never answer, and over UDP those the other tests do not.
func TestWebUnreachable(t *testing.T) {
	t.Parallel() // it waits out its timeouts: alongside TestUnreachable
	refused := closedTCPPort(t)
	silent := silentServer(t)
	udpAddr := closedPort(t)
	tried := "no bootstrap node answered (tried " + refused + ": connection refused)"
	web := []string{"--transport", "webrtc", "--bootstrap", refused, "--timeout", "5s"}
	tests := []struct {
		name string
		args []string
		want string // all of stderr
	}{
		{"lookup", append([]string{"lookup", testIH}, web...), "wdht: lookup: " + tried},
		{"announce", append([]string{"announce", "--json", testIH}, web...), "wdht: announce: " + tried},
		{"put", append([]string{"put", "v"}, web...), "wdht: put: " + tried},
		{"put mutable", append([]string{"put", "--mutable", "--seed", testSeed, "v"}, web...), "wdht: put: " + tried},
		{"get", append([]string{"get", testIH}, web...), "wdht: get: " + tried},
		{"ping bootstrap", append([]string{"ping"}, web...), "wdht: ping: " + tried},
		{"ping addr", []string{"ping", "--transport", "webrtc", refused}, "wdht: ping: no answer from " + refused + " (connection refused)"},
		{"sample addr", []string{"sample", "--transport", "webrtc", refused, "--json"}, "wdht: sample: no sample from " + refused + " (connection refused)"},
		{"lookup silent", []string{"lookup", testIH, "--transport", "webrtc", "--bootstrap", silent, "--timeout", "1s"},
			"wdht: lookup: no bootstrap node answered (tried " + silent + ": timed out after 1s)"},
		{"two servers", []string{"get", testIH, "--transport", "webrtc", "--bootstrap", refused + "," + silent, "--timeout", "1s"},
			"wdht: get: no bootstrap node answered (tried " + refused + ": connection refused; " + silent + ": timed out after 1s)"},

		{"udp put", []string{"put", "v", "--bootstrap", udpAddr, "--timeout", "1s"}, "wdht: put: no bootstrap node answered (tried " + udpAddr + ")"},
		{"udp get", []string{"get", testIH, "--bootstrap", udpAddr, "--timeout", "1s"}, "wdht: get: no bootstrap node answered (tried " + udpAddr + ")"},
		{"udp sample", []string{"sample", udpAddr, "--timeout", "1s"}, "wdht: sample: no sample from " + udpAddr + " (timed out after 1s)"},
	}
	results := make([]result, len(tests))
	var wg sync.WaitGroup
	for i, tt := range tests {
		wg.Go(func() { results[i] = runWDHT(t, tt.args...) })
	}
	wg.Wait()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := results[i]
			stdout := "" // with --json, the error as a JSON object
			if slices.Contains(tt.args, "--json") {
				cmd, msg, _ := strings.Cut(strings.TrimPrefix(tt.want, "wdht: "), ": ")
				b, _ := json.Marshal(jsonError{Command: cmd, Error: msg, Exit: exitFailed})
				stdout = string(b) + "\n"
			}
			if r.code != exitFailed || r.stderr != tt.want+"\n" || r.stdout != stdout {
				t.Errorf("wdht %q: exit %d, stdout %q, stderr:\n%s\nwant exit %d, stdout %q and stderr:\n%s", tt.args, r.code, r.stdout, r.stderr, exitFailed, stdout, tt.want)
			}
		})
	}
}

// closedTCPPort returns a loopback TCP address where nothing listens.
func closedTCPPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// silentServer returns the address of a TCP server that accepts connections and never
// answers, until the end of the test.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// startBridge runs the default node (a bridge) in-process on free ports.
func startBridge(t *testing.T, args ...string) *nodeProc {
	t.Helper()
	testenv.NeedWebRTC(t)
	return startNode(t, append([]string{"--addr", "127.0.0.1:0", "--signal-addr", "127.0.0.1:0", "--status", "20ms", "--limits=false"}, args...)...)
}

// TestWebEndToEnd runs a bridge in-process and every client command over WebRTC
// against it, and over UDP, through the stores its two nodes share.
func TestWebEndToEnd(t *testing.T) {
	n := startBridge(t)
	web := []string{"--transport", "webrtc", "--bootstrap", n.signal}
	udp := "--bootstrap=" + n.addr
	if n.signal == "" || n.webID == "" || n.webID == n.id {
		t.Fatalf("LISTENING: signal=%q web_id=%q id=%q", n.signal, n.webID, n.id)
	}

	t.Run("ping", func(t *testing.T) {
		r := wantRun(t, exitOK, "ping", "--transport", "webrtc", n.signal)
		want := regexp.MustCompile(`^pong from ` + regexp.QuoteMeta(n.signal) + ` id=` + n.webID + ` rtt=\d+\.\d\dms peer=127\.0\.0\.1:\d+ connect=\d+\.\d\dms\n$`)
		if !want.MatchString(r.stdout) || r.stderr != "" {
			t.Errorf("ping: stdout %q, stderr %q; want %v", r.stdout, r.stderr, want)
		}
		r = wantRun(t, exitOK, append([]string{"ping", "--json"}, web...)...)
		var got pingResult
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Addr != n.signal || got.ID != n.webID ||
			got.RTTms <= 0 || got.ConnectMs <= 0 || !strings.HasPrefix(got.Peer, "127.0.0.1:") {
			t.Errorf("ping --json: %q (%v)", r.stdout, err)
		}
		// Over UDP, the same node answers with its other ID.
		if r := wantRun(t, exitOK, "ping", n.addr); !strings.Contains(r.stdout, "id="+n.id+" ") || strings.Contains(r.stdout, "peer=") {
			t.Errorf("ping over UDP: %q", r.stdout)
		}
	})

	t.Run("items", func(t *testing.T) {
		// Put over UDP, get over WebRTC, and the reverse: the item store is shared.
		target := dht.ImmutableTarget(bencode.Bytes("9:from udp!"))
		if r := wantRun(t, exitOK, "put", udp, "from udp!"); r.stdout != fmt.Sprintf("stored immutable item %v on 1 nodes\n", target) {
			t.Errorf("put over UDP: %q", r.stdout)
		}
		r := wantRun(t, exitOK, append([]string{"get", target.String()}, web...)...)
		if r.stdout != "from udp!" || r.stderr != fmt.Sprintf("immutable item %v from 1 nodes\n", target) {
			t.Errorf("get over WebRTC: stdout %q, stderr %q", r.stdout, r.stderr)
		}
		var put putJSON
		r = wantRun(t, exitOK, append([]string{"put", "--json", "--raw", "i42e"}, web...)...)
		if err := json.Unmarshal([]byte(r.stdout), &put); err != nil || put.Stored != 1 || put.Responses != 1 {
			t.Fatalf("put over WebRTC: %q (%v)", r.stdout, err)
		}
		var got getJSON
		r = wantRun(t, exitOK, "get", "--json", udp, put.Target)
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Value != "i42e" || got.ValueType != "integer" {
			t.Errorf("get over UDP: %q (%v)", r.stdout, err)
		}

		// A mutable item over WebRTC: put twice (the second takes seq 2), get over both.
		mut := append([]string{"put", "--mutable", "--seed", testSeed, "--salt", "web"}, web...)
		wantRun(t, exitOK, append(mut, "one")...)
		r = wantRun(t, exitOK, append(mut, "two")...)
		target = mutableTarget(t, testPub(), "web")
		if want := fmt.Sprintf("stored mutable item %v seq=2 key=%s on 1 nodes\n", target, testPub()); r.stdout != want {
			t.Errorf("second mutable put over WebRTC: %q; want %q", r.stdout, want)
		}
		for _, via := range [][]string{web, {udp}} {
			r := wantRun(t, exitOK, append([]string{"get", "--key", testPub(), "--salt", "web"}, via...)...)
			if r.stdout != "two" || !strings.Contains(r.stderr, " seq=2 ") {
				t.Errorf("get %q: stdout %q, stderr %q", via, r.stdout, r.stderr)
			}
		}
		r = wantRun(t, exitFailed, append([]string{"get", strings.Repeat("e", 40)}, web...)...)
		if want := "wdht: get: item " + strings.Repeat("e", 40) + " not found (1 nodes answered; an item put with --salt is found only with the same --salt)\n"; r.stderr != want {
			t.Errorf("get of nothing over WebRTC: %q; want %q", r.stderr, want)
		}
	})

	t.Run("peers", func(t *testing.T) {
		ih := strings.Repeat("ab", 20)
		// Announced over WebRTC with implied_port: the node records the connection's
		// address, which a mainline client cannot use, so a lookup over UDP does not get
		// it (the bridge's rule, see package bridge).
		var ann announceJSON
		r := wantRun(t, exitOK, append([]string{"announce", "--json", ih}, web...)...)
		if err := json.Unmarshal([]byte(r.stdout), &ann); err != nil || ann.Stored != 1 || !ann.ImpliedPort || ann.Port != 0 {
			t.Fatalf("announce over WebRTC: %q (%v)", r.stdout, err)
		}
		r = wantRun(t, exitOK, "lookup", ih, udp)
		if r.stdout != "" || !strings.HasPrefix(r.stderr, "found 0 peers from 1 nodes") {
			t.Errorf("lookup over UDP of a WebRTC implied-port announce: stdout %q, stderr %q", r.stdout, r.stderr)
		}
		// Announced over UDP: the peer is in the shared store, and a WebRTC lookup gets it
		// as a plain address (signals.PeersKey), not as a value the node relays an offer
		// to (the UDP peer has no WebRTC side).
		wantRun(t, exitOK, "announce", ih, "--port", "6882", udp)
		r = wantRun(t, exitOK, append([]string{"lookup", ih}, web...)...)
		if r.stdout != "peer 127.0.0.1:6882\n" || !strings.HasPrefix(r.stderr, "found 1 peers from 1 nodes in 1 rounds") {
			t.Errorf("lookup over WebRTC of UDP peers: stdout %q, stderr %q", r.stdout, r.stderr)
		}
		r = wantRun(t, exitOK, append([]string{"sample", "--json", "--target", ih}, web...)...)
		var got sampleJSON
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Addr != n.signal || got.Num != 1 || !slices.Equal(got.Samples, []string{ih}) {
			t.Errorf("sample over WebRTC: %q (%v)", r.stdout, err)
		}
		if r := wantRun(t, exitOK, "sample", n.addr); !strings.Contains(r.stdout, " num=1 ") {
			t.Errorf("sample over UDP: %q", r.stdout)
		}
	})

	t.Run("status", func(t *testing.T) {
		i, _ := n.out.await(t, 0, regexp.MustCompile(`^STATUS .* peers=2 infohashes=1 items=3 `), 5*time.Second)
		if line := n.out.line(i); !bridgeStatusRE.MatchString(line) {
			t.Errorf("STATUS line %q does not match %v", line, bridgeStatusRE)
		}
	})
}

// TestWebLookupRelays looks up, over WebRTC, a peer that is itself a WebRTC node
// connected to the bridge (as a browser seeding a torrent is): the bridge relays the
// client's offer to it, and the lookup reports the client's own connection to it.
func TestWebLookupRelays(t *testing.T) {
	n := startBridge(t)
	// The peer advertises a signalling server (it need not run one): its first message
	// tells the client that relays reach it that its side of the connection is ready, so
	// that the client does not wait ReadyDelay (500 ms) for it.
	tr, err := webrtc.New(&webrtc.Config{Loopback: true, Advertise: "127.0.0.1:9"})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	peer, err := signals.NewNode(tr, signals.WebRTC(tr), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	bridgeAddr, err := tr.Dial(ctx, n.signal)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := peer.Bootstrap(ctx, bridgeAddr); err != nil {
		t.Fatal(err)
	}
	ih, _ := dht.ParseID(strings.Repeat("cd", 20))
	if res, err := peer.Announce(ctx, ih, 0); err != nil || res.Stored != 1 {
		t.Fatalf("announce from the WebRTC peer: %+v, %v", res, err)
	}
	r := wantRun(t, exitOK, "lookup", "--transport", "webrtc", "--bootstrap", n.signal, ih.String())
	if !regexp.MustCompile(`^peer 127\.0\.0\.1:\d+\n$`).MatchString(r.stdout) || !strings.HasPrefix(r.stderr, "found 1 peers from ") {
		t.Errorf("lookup over WebRTC of a WebRTC peer: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	// Over UDP the same peer store holds it, but as a WebRTC connection's address
	// (implied_port) it is not served to mainline clients (package bridge's rule).
	r = wantRun(t, exitOK, "lookup", "--bootstrap", n.addr, ih.String())
	if r.stdout != "" {
		t.Errorf("lookup over UDP of a WebRTC implied-port peer: stdout %q, stderr %q", r.stdout, r.stderr)
	}
}

// TestBridgeFallback gets, through a bridge, items that live only on the other network:
// over WebRTC one stored only on a mainline node, over UDP one stored only on a
// WebRTC node.
func TestBridgeFallback(t *testing.T) {
	testenv.NeedWebRTC(t)
	// A mainline node and a WebRTC node, each holding an item, before the bridge exists.
	m := startNode(t, "--transports", "udp", "--addr", "127.0.0.1:0", "--status", "0")
	w := startNode(t, "--transports", "webrtc", "--signal-addr", "127.0.0.1:0", "--status", "0")
	wantRun(t, exitOK, "put", "--bootstrap", m.addr, "mainline only")
	wantRun(t, exitOK, "put", "--transport", "webrtc", "--bootstrap", w.signal, "webrtc only")

	b := startBridge(t, "--bootstrap", m.addr, "--web-bootstrap", w.signal)
	b.out.await(t, 0, regexp.MustCompile(`^STATUS .* nodes=1 good=1 peers=0 infohashes=0 items=0 .* web_nodes=1 web_good=1 `), 5*time.Second)

	target := dht.ImmutableTarget(bencode.Bytes("13:mainline only"))
	r := wantRun(t, exitOK, "get", "--transport", "webrtc", "--bootstrap", b.signal, target.String())
	if r.stdout != "mainline only" {
		t.Errorf("get over WebRTC of a mainline item: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	target = dht.ImmutableTarget(bencode.Bytes("11:webrtc only"))
	r = wantRun(t, exitOK, "get", "--bootstrap", b.addr, target.String())
	if r.stdout != "webrtc only" {
		t.Errorf("get over UDP of a WebRTC item: stdout %q, stderr %q", r.stdout, r.stderr)
	}
}

// TestBridgeProcess runs the default "wdht node" (a bridge) as a process: LISTENING with
// both addresses, STATUS with both sides, the two-node state file saved and restored
// (IDs, the UDP node's nodes, the signalling servers of the WebRTC node), SIGTERM,
// SIGINT and --max-seconds.
func TestBridgeProcess(t *testing.T) {
	testenv.NeedWebRTC(t)
	p0 := startProcess(t, "--addr", "127.0.0.1:0", "--signal-addr", "127.0.0.1:0", "--max-seconds", "0.2")
	if p0.signal == "" || p0.webID == "" {
		t.Errorf("LISTENING without signal= and web_id=")
	}
	p0.wait(t)

	a := startBridge(t)
	state := filepath.Join(t.TempDir(), "state.json")
	both := regexp.MustCompile(`^STATUS .* nodes=1 good=1 .* web_nodes=1 web_good=1 web_conns=1 `)
	p := startProcess(t, "--addr", "127.0.0.1:0", "--signal-addr", "127.0.0.1:0", "--status", "20ms", "--state", state,
		"--bootstrap", a.addr, "--web-bootstrap", a.signal, "--max-seconds", "60")
	i, _ := p.out.await(t, 0, both, 5*time.Second)
	if line := p.out.line(i); !bridgeStatusRE.MatchString(line) {
		t.Errorf("STATUS line %q does not match %v", line, bridgeStatusRE)
	}
	p.stop(t, syscall.SIGTERM)
	sf := readState(t, state)
	if sf.Mainline.ID.String() != p.id || sf.Web.ID.String() != p.webID {
		t.Errorf("state file holds ids %v, %v; want %s, %s", sf.Mainline.ID, sf.Web.ID, p.id, p.webID)
	}
	if len(sf.Mainline.Nodes) != 1 || sf.Mainline.Nodes[0].Addr.String() != a.addr || sf.Mainline.Nodes[0].ID.String() != a.id {
		t.Errorf("state file holds mainline nodes %v; want %s at %s", sf.Mainline.Nodes, a.id, a.addr)
	}
	if !slices.Equal(sf.Web.Bootstrap, []string{a.signal}) {
		t.Errorf("state file holds signalling servers %q; want %q", sf.Web.Bootstrap, a.signal)
	}

	// Restarted from the state file alone, it rejoins both networks.
	p2 := startProcess(t, "--addr", "127.0.0.1:0", "--signal-addr", "127.0.0.1:0", "--status", "20ms", "--state", state)
	if p2.id != p.id || p2.webID != p.webID {
		t.Errorf("restarted node has ids %s, %s; want %s, %s", p2.id, p2.webID, p.id, p.webID)
	}
	p2.out.await(t, 0, both, 5*time.Second)
	p2.stop(t, syscall.SIGINT)
}

// TestNodeTLS runs a WebRTC node whose signalling server speaks TLS, and dials it.
func TestNodeTLS(t *testing.T) {
	testenv.NeedWebRTC(t)
	cert, key, _ := testenv.SelfSigned(t)
	n := startNode(t, "--transports", "webrtc", "--signal-addr", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, "--status", "0")
	if n.addr != n.signal || n.id != n.webID {
		t.Errorf("WebRTC-only LISTENING: addr=%s id=%s signal=%s web_id=%s; want addr=signal and id=web_id", n.addr, n.id, n.signal, n.webID)
	}
	certPEM, _ := os.ReadFile(cert)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(certPEM)
	for _, tt := range []struct {
		mode   webrtc.TLSMode
		wantOK bool
	}{{webrtc.TLSAlways, true}, {webrtc.TLSNever, false}} {
		tr, err := webrtc.New(&webrtc.Config{Loopback: true, DialTLS: tt.mode, TLSConfig: &tls.Config{RootCAs: roots}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		_, err = tr.Dial(ctx, n.signal)
		cancel()
		tr.Close()
		if (err == nil) != tt.wantOK {
			t.Errorf("dial with TLS mode %v: %v; want success %v", tt.mode, err, tt.wantOK)
		}
	}
	// The client commands dial an IP literal in plain text, which the server refuses,
	// and a name over TLS first, with the system's roots, which do not trust it.
	r := wantRun(t, exitFailed, "ping", "--transport", "webrtc", n.signal, "--timeout", "5s")
	if !strings.HasPrefix(r.stderr, "wdht: ping: no answer from "+n.signal+" (") {
		t.Errorf("plain ping of a TLS server: %q", r.stderr)
	}
	_, port, _ := net.SplitHostPort(n.signal)
	r = wantRun(t, exitFailed, "get", "--transport", "webrtc", "--bootstrap", "localhost:"+port, testIH, "--timeout", "5s")
	if want := "wdht: get: no bootstrap node answered (tried localhost:" + port + ": TLS: x509: certificate signed by unknown authority)\n"; r.stderr != want {
		t.Errorf("get through a TLS server of an unknown authority: %q; want %q", r.stderr, want)
	}
}

// TestSignalAddrInUse checks that a busy signalling port fails the node with exit 1.
func TestSignalAddrInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := runWDHT(t, "node", "--addr", "127.0.0.1:0", "--signal-addr", l.Addr().String())
	if r.code != exitFailed || !strings.HasPrefix(r.stderr, "wdht: node: signalling server: listen tcp "+l.Addr().String()+": ") ||
		!strings.Contains(r.stderr, "address already in use") || r.stdout != "" {
		t.Errorf("node on a busy signalling port: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestProgress checks the progress line: redrawn in place every progressInterval while
// the lookup runs, cleared when it ends, and not drawn when stderr is not a terminal.
func TestProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out strings.Builder
		e := &env{stderr: &lockedWriter{w: &out}, stderrTTY: true}
		var sent atomic.Uint64
		p := e.progressOf("looking up", true, func() krpc.Stats {
			return krpc.Stats{QueriesOut: sent.Load(), ResponsesIn: sent.Load() / 2}
		})
		sent.Store(4)
		p.add()
		time.Sleep(progressInterval)
		synctest.Wait()
		sent.Store(10)
		p.add()
		time.Sleep(progressInterval)
		synctest.Wait()
		p.stop()
		want := "\r\x1b[Klooking up: 1 peers, 4 queries sent, 2 answers" +
			"\r\x1b[Klooking up: 2 peers, 10 queries sent, 5 answers" + "\r\x1b[K"
		if out.String() != want {
			t.Errorf("progress output %q; want %q", out.String(), want)
		}

		out.Reset()
		p = e.progressOf("putting", false, func() krpc.Stats { return krpc.Stats{QueriesOut: 3, ResponsesIn: 1} })
		time.Sleep(progressInterval)
		synctest.Wait()
		p.stop()
		if want := "\r\x1b[Kputting: 3 queries sent, 1 answers\r\x1b[K"; out.String() != want {
			t.Errorf("progress output %q; want %q", out.String(), want)
		}

		out.Reset()
		e.stderrTTY = false
		p = e.progressOf("getting", false, func() krpc.Stats { return krpc.Stats{} })
		time.Sleep(2 * progressInterval)
		p.stop()
		if out.String() != "" {
			t.Errorf("progress drawn on a non-terminal: %q", out.String())
		}
	})
}

// TestDialReason checks how dial failures are worded.
func TestDialReason(t *testing.T) {
	tr, err := webrtc.New(&webrtc.Config{Loopback: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	refused := closedTCPPort(t)
	_, err = tr.Dial(t.Context(), refused)
	if got := dialReason(err, time.Second); got != "connection refused" {
		t.Errorf("refused: %q (from %v)", got, err)
	}
	_, err = tr.Dial(t.Context(), "nonexistent.invalid:16881")
	if got := dialReason(err, time.Second); !strings.HasPrefix(got, `cannot resolve "nonexistent.invalid": `) {
		t.Errorf("unresolvable: %q (from %v)", got, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = tr.Dial(ctx, silentServer(t))
	if got := dialReason(err, 3*time.Second); got != "timed out after 3s" {
		t.Errorf("silent: %q (from %v)", got, err)
	}
	if got := dialReason(fmt.Errorf("wrapped: %w", http.ErrServerClosed), time.Second); got != "the server closed" {
		t.Errorf("closed: %q", got)
	}
}
