//go:build linux

package natlab

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/extensions/signals"
	"github.com/wdht/wdht/internal/netlab"
	"github.com/wdht/wdht/transport/webrtc"
)

// nodeEnv holds the JSON nodeSpec of a lab node: the test binary run again in a host's
// namespace.
const nodeEnv = "WDHT_NATLAB_NODE"

// nodeSpec configures a lab node.
type nodeSpec struct {
	ICE       []string `json:"ice"`       // --ice-server URLs
	Relay     bool     `json:"relay"`     // RelayOnly
	Bootstrap string   `json:"bootstrap"` // the bridge's signalling server
	ID        string   `json:"id"`        // node ID, hex; empty: random
	Debug     bool     `json:"debug"`     // debug logs on stderr
}

// command is one request to a lab node; reply its answer.
type command struct {
	Op      string `json:"op"` // announce, lookup, peers, put, get
	IH      string `json:"ih,omitempty"`
	Port    int    `json:"port,omitempty"`
	Timeout int    `json:"timeout_ms,omitempty"`
	Seed    string `json:"seed,omitempty"` // put: the ed25519 seed, hex
	Value   string `json:"value,omitempty"`
	Seq     int64  `json:"seq,omitempty"`
}

type peerInfo struct {
	Addr       string `json:"addr"`
	Candidates string `json:"candidates"`
}

type reply struct {
	Err     string     `json:"err,omitempty"`
	DialMS  float64    `json:"dial_ms,omitempty"`
	Peer    string     `json:"peer,omitempty"` // the bridge's address as we see it
	Found   []string   `json:"found,omitempty"`
	MS      float64    `json:"ms,omitempty"`
	Stored  int        `json:"stored,omitempty"`
	Value   string     `json:"value,omitempty"`
	Seq     int64      `json:"seq,omitempty"`
	Peers   []peerInfo `json:"peers,omitempty"`
	Conns   int        `json:"conns"`
	Pending int        `json:"pending"`
	Failed  uint64     `json:"failed"`
}

// runNode is the lab node's main: it joins through spec's bridge, prints "JOINED
// <reply>", then answers each command line with "REPLY <reply>" until its input closes.
func runNode(specJSON string) int {
	var spec nodeSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "natlab node:", err)
		return 2
	}
	level := hclog.Info
	if spec.Debug {
		level = hclog.Debug
	}
	if os.Getenv("WDHT_NATLAB_TRACE") != "" {
		level = hclog.Trace
	}
	log := hclog.New(&hclog.LoggerOptions{Name: "node", Level: level, Output: os.Stderr})
	var servers []webrtc.ICEServer
	for _, u := range spec.ICE {
		s, err := webrtc.ParseICEServer(u)
		if err != nil {
			fmt.Fprintln(os.Stderr, "natlab node:", err)
			return 2
		}
		servers = append(servers, s)
	}
	tr, err := webrtc.New(&webrtc.Config{ICEServers: servers, RelayOnly: spec.Relay, Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "natlab node:", err)
		return 2
	}
	defer tr.Close()
	var id dht.ID
	if spec.ID != "" {
		if id, err = dht.ParseID(spec.ID); err != nil {
			fmt.Fprintln(os.Stderr, "natlab node:", err)
			return 2
		}
	}
	node, err := signals.NewNode(tr, signals.WebRTC(tr), &dht.Config{ID: id, Logger: log}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "natlab node:", err)
		return 2
	}
	defer node.Close()
	out := json.NewEncoder(os.Stdout)
	emit := func(kind string, r reply) {
		st := tr.Stats()
		r.Conns, r.Pending, r.Failed = st.Conns, st.Pending, st.Failed
		os.Stdout.WriteString(kind + " ")
		out.Encode(r)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	start := time.Now()
	peer, err := tr.Dial(ctx, spec.Bootstrap)
	var j reply
	j.DialMS = ms(time.Since(start))
	if err == nil {
		j.Peer = peer.String()
		_, err = node.Bootstrap(ctx, peer)
	}
	cancel()
	if err != nil {
		j.Err = err.Error()
	}
	for _, p := range tr.Peers() {
		j.Peers = append(j.Peers, peerInfo{Addr: p.Addr.String(), Candidates: p.Candidates})
	}
	emit("JOINED", j)

	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var c command
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			emit("REPLY", reply{Err: err.Error()})
			continue
		}
		emit("REPLY", do(node, tr, c))
	}
	return 0
}

// do runs one command.
func do(node *dht.Node, tr *webrtc.Transport, c command) reply {
	timeout := time.Duration(c.Timeout) * time.Millisecond
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var r reply
	start := time.Now()
	var err error
	switch c.Op {
	case "announce":
		var ih dht.ID
		if ih, err = dht.ParseID(c.IH); err == nil {
			var res *dht.AnnounceResult
			if res, err = node.Announce(ctx, ih, c.Port); res != nil {
				r.Stored = res.Stored
			}
		}
	case "lookup":
		var ih dht.ID
		if ih, err = dht.ParseID(c.IH); err == nil {
			var mu sync.Mutex
			_, err = node.GetPeers(ctx, ih, func(p netip.AddrPort, _ dht.NodeInfo) bool {
				mu.Lock()
				defer mu.Unlock()
				r.Found = append(r.Found, p.String())
				return true
			})
		}
	case "put":
		var seed []byte
		if seed, err = hex.DecodeString(c.Seed); err == nil && len(seed) == ed25519.SeedSize {
			var it *dht.Item
			if it, err = dht.NewMutableItem(ed25519.NewKeyFromSeed(seed), nil, c.Seq, c.Value); err == nil {
				var res *dht.PutResult
				if res, err = node.Put(ctx, it, nil); res != nil {
					r.Stored = res.Stored
				}
			}
		} else if err == nil {
			err = fmt.Errorf("seed: want %d bytes", ed25519.SeedSize)
		}
	case "get":
		var target dht.ID
		if target, err = dht.ParseID(c.IH); err == nil {
			var res *dht.GetResult
			if res, err = node.Get(ctx, target, nil); err == nil && res.Item != nil {
				r.Seq = res.Item.Seq
				r.Value = string(res.Item.V) // bencoded
			}
		}
	case "peers":
	default:
		err = fmt.Errorf("unknown op %q", c.Op)
	}
	r.MS = ms(time.Since(start))
	if err != nil {
		r.Err = err.Error()
	}
	for _, p := range tr.Peers() {
		r.Peers = append(r.Peers, peerInfo{Addr: p.Addr.String(), Candidates: p.Candidates})
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// labNode is the test's handle on a lab node.
type labNode struct {
	host   *netlab.Host
	proc   *netlab.Proc
	stdin  *os.File
	joined reply
	mu     sync.Mutex
}

// startNode runs a lab node on h and waits until it joined (or failed to).
func startNode(ctx context.Context, t *testing.T, h *netlab.Host, spec nodeSpec) *labNode {
	t.Helper()
	if os.Getenv("WDHT_NETLAB_LOG") != "" {
		spec.Debug = true
	}
	b, _ := json.Marshal(spec)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := h.StartStdin(t, r, []string{nodeEnv + "=" + string(b)}, exe, "-test.run=^$")
	r.Close()
	t.Cleanup(func() { w.Close() })
	n := &labNode{host: h, proc: p, stdin: w}
	line := p.WaitLine(ctx, t, "JOINED ")
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "JOINED ")), &n.joined); err != nil {
		t.Fatalf("%s: %q: %v", h.Name, line, err)
	}
	return n
}

// do sends a command and returns the reply.
func (n *labNode) do(ctx context.Context, t *testing.T, c command) reply {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	b, _ := json.Marshal(c)
	if _, err := n.stdin.Write(append(b, '\n')); err != nil {
		t.Fatalf("%s: %v", n.host.Name, err)
	}
	line := n.proc.WaitLine(ctx, t, "REPLY ")
	var r reply
	if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "REPLY ")), &r); err != nil {
		t.Fatalf("%s: %q: %v", n.host.Name, line, err)
	}
	return r
}

var (
	wdhtOnce sync.Once
	wdhtPath string
	wdhtErr  error
)

// wdhtBinary builds cmd/wdht once per test binary.
func wdhtBinary(t *testing.T) string {
	t.Helper()
	wdhtOnce.Do(func() {
		dir, err := os.MkdirTemp("", "natlab-wdht")
		if err != nil {
			wdhtErr = err
			return
		}
		wdhtPath = filepath.Join(dir, "wdht")
		goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goBin); err != nil {
			goBin = "go"
		}
		cmd := exec.Command(goBin, "build", "-o", wdhtPath, "github.com/wdht/wdht/cmd/wdht")
		if out, err := cmd.CombinedOutput(); err != nil {
			wdhtErr = fmt.Errorf("go build ./cmd/wdht: %v: %s", err, out)
		}
	})
	if wdhtErr != nil {
		t.Fatal(wdhtErr)
	}
	return wdhtPath
}

// bridge is a `wdht node` on a public host: UDP and WebRTC, signalling on port 16881.
type bridge struct {
	host   *netlab.Host
	proc   *netlab.Proc
	signal string // ip:port
}

func startBridge(ctx context.Context, t *testing.T, h *netlab.Host, extra ...string) *bridge {
	t.Helper()
	signal := h.IP.String() + ":16881"
	args := append([]string{"node", "--addr", h.IP.String() + ":6881", "--signal-addr", signal,
		"--status", "0", "--log-level", "info"}, extra...)
	p := h.Start(t, nil, wdhtBinary(t), args...)
	p.WaitLine(ctx, t, "LISTENING ")
	return &bridge{host: h, proc: p, signal: signal}
}
