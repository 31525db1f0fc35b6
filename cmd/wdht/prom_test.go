package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wdht/wdht/internal/testenv"
)

// prometheusServer is a real Prometheus (Debian's prometheus package) scraping targets.
type prometheusServer struct {
	api string // http://ip:port
}

// startPrometheus runs prometheus scraping targets every second until the end of the
// test. It skips without prometheus, except under CI.
func startPrometheus(t *testing.T, targets ...string) *prometheusServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("prometheus not installed: %v", err)
		}
		t.Skipf("prometheus not installed (apt-get install prometheus): %v", err)
	}
	dir := t.TempDir()
	ts, _ := json.Marshal(targets)
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: wdht\n    static_configs:\n      - targets: %s\n", ts)
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeTCPAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config.file="+cfgFile, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	out := &safeBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out)
		}
	})
	p := &prometheusServer{api: "http://" + addr}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.api + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-done:
			t.Fatalf("prometheus exited:\n%s", out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready within 30s:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// query returns the value of an instant PromQL query whose result is one sample, or -1
// when it has none.
func (p *prometheusServer) query(t *testing.T, q string) float64 {
	t.Helper()
	resp, err := http.Get(p.api + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Error  string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("query %q: %v %s %s", q, err, r.Status, r.Error)
	}
	if len(r.Data.Result) == 0 {
		return -1
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("query %q: value %v", q, r.Data.Result[0].Value)
	}
	return v
}

// await waits up to timeout for query q to be above min, and returns its value.
func (p *prometheusServer) await(t *testing.T, q string, min float64, timeout time.Duration) float64 {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v := p.query(t, q)
		if v > min {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after %v; want above %v", q, v, timeout, min)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// freeTCPAddr returns a loopback address with a port that was free a moment ago.
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestPrometheusScrape runs a bridge with --metrics-addr and a real Prometheus scraping
// it, then pings, looks up, puts and joins over WebRTC with the client commands, and
// asserts through Prometheus' HTTP API that the counters of each moved.
func TestPrometheusScrape(t *testing.T) {
	testenv.NeedWebRTC(t)
	n := startNode(t, "--addr", "127.0.0.1:0", "--signal-addr", "127.0.0.1:0", "--status", "0", "--limits=false", "--metrics-addr", "127.0.0.1:0")
	_, m := n.out.await(t, 0, metricsRE, time.Second)
	p := startPrometheus(t, m[1])
	p.await(t, `up{job="wdht"}`, 0, 30*time.Second) // scraped once, and up

	counters := []struct{ name, q string }{
		{"pings", `wdht_krpc_queries_received_total{node="mainline",method="ping",result="response"}`},
		{"lookups", `wdht_krpc_queries_received_total{node="mainline",method="get_peers",result="response"}`},
		{"puts", `wdht_krpc_queries_received_total{node="mainline",method="put",result="response"}`},
		{"signalling", `sum(wdht_signal_requests_total)`},
		{"webrtc join", `wdht_webrtc_connections_opened_total`},
		{"web pings", `wdht_krpc_queries_received_total{node="web",method="ping",result="response"}`},
		{"udp datagrams", `wdht_udp_datagrams_total{direction="in"}`},
		// A get for an item nobody holds: the bridge looks it up on the WebRTC side.
		{"gets", `wdht_krpc_queries_received_total{node="mainline",method="get",result="response"}`},
		{"fallbacks", `sum(wdht_bridge_fallbacks_total{direction="to_web"})`},
		{"node lookups", `wdht_lookups_total{node="web"}`},
		{"lookup histogram", `wdht_lookup_duration_seconds_count{node="web"}`},
	}
	before := make([]float64, len(counters))
	for i, c := range counters {
		before[i] = max(p.query(t, c.q), 0) // no series yet (no request of a kind): 0

	}

	boot := "--bootstrap=" + n.addr
	wantRun(t, exitOK, "ping", n.addr)
	wantRun(t, exitOK, "lookup", testIH, boot)
	wantRun(t, exitOK, "put", "metrics", boot)
	wantRun(t, exitOK, "ping", "--transport", "webrtc", n.signal)
	wantRun(t, exitFailed, "get", strings.Repeat("e", 40), boot, "--timeout", "5s")

	for i, c := range counters {
		v := p.await(t, c.q, before[i], 30*time.Second)
		t.Logf("%s: %s went from %v to %v", c.name, c.q, before[i], v)
	}
}
