package main

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/krpc"
)

const testIH = "0123456789abcdef0123456789abcdef01234567"

func TestParseInfohash(t *testing.T) {
	want, _ := dht.ParseID(testIH)
	// base32 of the 20 bytes of testIH.
	b32 := "AERUKZ4JVPG66AJDIVTYTK6N54ASGRLH"
	tests := []struct {
		in      string
		wantErr string // empty: want no error
	}{
		{in: testIH},
		{in: strings.ToUpper(testIH)},
		{in: "magnet:?xt=urn:btih:" + testIH},
		{in: "magnet:?xt=urn:btih:" + b32},
		{in: "magnet:?xt=urn:btih:" + strings.ToLower(b32)},
		{in: "MAGNET:?dn=x&xt=URN:BTIH:" + testIH + "&tr=udp%3A%2F%2Ft"},
		{in: "magnet:?xt=urn:btmh:1220abcd&xt=urn:btih:" + testIH},
		{in: "magnet:?xt.1=urn:btih:" + testIH},
		{in: "", wantErr: `infohash "": want 40 hex characters, got 0`},
		{in: "abc", wantErr: `infohash "abc": want 40 hex characters, got 3`},
		{in: testIH + "0", wantErr: "want 40 hex characters, got 41"},
		{in: "z" + testIH[1:], wantErr: `want 40 hex characters, got 'z' at position 1`},
		{in: testIH[:39] + "g", wantErr: `got 'g' at position 40`},
		{in: "magnet:?dn=foo", wantErr: "no xt=urn:btih: parameter"},
		{in: "magnet:?xt=urn:btmh:1220abcd", wantErr: "no xt=urn:btih: parameter"},
		{in: "magnet:?xt=urn:btih:abc", wantErr: `btih "abc": want 40 hex or 32 base32 characters, got 3`},
		{in: "magnet:?xt=urn:btih:" + b32[:31] + "1", wantErr: "want 32 base32 characters"},
		{in: "magnet:?xt=urn:btih:" + testIH[:39] + "x", wantErr: `got 'x' at position 40`},
		{in: "magnet:?xt=%zz", wantErr: "magnet URI"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseInfohash(tt.in)
			if tt.wantErr == "" {
				if err != nil || got != want {
					t.Fatalf("parseInfohash(%q) = %v, %v; want %v", tt.in, got, err, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("parseInfohash(%q) error = %v; want it to contain %q", tt.in, err, tt.wantErr)
			}
			if _, ok := errors.AsType[*usageError](err); !ok {
				t.Errorf("parseInfohash(%q) error %v is not a usage error", tt.in, err)
			}
		})
	}
}

func TestParseListenAddr(t *testing.T) {
	tests := []struct {
		in      string
		want    netip.AddrPort
		wantErr string
	}{
		{in: "127.0.0.1:6881", want: netip.MustParseAddrPort("127.0.0.1:6881")},
		{in: "127.0.0.1:0", want: netip.MustParseAddrPort("127.0.0.1:0")},
		{in: "[::1]:7000", want: netip.MustParseAddrPort("[::1]:7000")},
		{in: "[::ffff:127.0.0.1]:7000", want: netip.MustParseAddrPort("127.0.0.1:7000")},
		{in: "0.0.0.0:1", want: netip.MustParseAddrPort("0.0.0.0:1")},
		{in: ":6881", want: netip.AddrPortFrom(netip.Addr{}, 6881)},
		{in: "127.0.0.1", wantErr: `--addr "127.0.0.1": want ip:port`},
		{in: "::1:6881", wantErr: "want ip:port"},
		{in: "127.0.0.1:65536", wantErr: `port "65536": want a number from 0`},
		{in: "127.0.0.1:-1", wantErr: `port "-1"`},
		{in: "localhost:6881", wantErr: `host "localhost" is not an IP address`},
		{in: "224.0.0.1:6881", wantErr: "multicast"},
	}
	for _, tt := range tests {
		got, err := parseListenAddr(tt.in)
		if tt.wantErr == "" {
			if err != nil || got != tt.want {
				t.Errorf("parseListenAddr(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("parseListenAddr(%q) error = %v; want it to contain %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestResolveNodeAddr(t *testing.T) {
	tests := []struct {
		in      string
		want    []netip.AddrPort
		wantErr string
	}{
		{in: "127.0.0.1:6881", want: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:6881")}},
		{in: "[::1]:6881", want: []netip.AddrPort{netip.MustParseAddrPort("[::1]:6881")}},
		{in: "127.0.0.1:0", wantErr: `address "127.0.0.1:0": port "0": want a number from 1 to 65535`},
		{in: "127.0.0.1:x", wantErr: `port "x"`},
		{in: "127.0.0.1", wantErr: `address "127.0.0.1": want host:port`},
		{in: ":6881", wantErr: "missing host"},
		{in: "0.0.0.0:6881", wantErr: "not an address a node can have"},
		{in: "nonexistent.invalid:6881", wantErr: `address "nonexistent.invalid:6881": cannot resolve "nonexistent.invalid"`},
	}
	for _, tt := range tests {
		got, err := resolveNodeAddr(t.Context(), tt.in)
		if tt.wantErr == "" {
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("resolveNodeAddr(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		} else if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("resolveNodeAddr(%q) error = %v; want it to contain %q", tt.in, err, tt.wantErr)
		}
	}
}

func TestClientListenAddr(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		targets []netip.AddrPort
		want    netip.AddrPort
	}{
		{[]netip.AddrPort{ap("127.0.0.1:1"), ap("127.0.0.2:2")}, ap("127.0.0.1:0")},
		{[]netip.AddrPort{ap("[::1]:1")}, ap("[::1]:0")},
		{[]netip.AddrPort{ap("127.0.0.1:1"), ap("1.2.3.4:5")}, ap("0.0.0.0:0")},
		{[]netip.AddrPort{ap("127.0.0.1:1"), ap("[::1]:1")}, netip.AddrPort{}},
		{[]netip.AddrPort{ap("[2001:db8::1]:1")}, netip.AddrPort{}},
		{nil, netip.AddrPort{}},
	}
	for _, tt := range tests {
		if got := clientListenAddr(tt.targets); got != tt.want {
			t.Errorf("clientListenAddr(%v) = %v; want %v", tt.targets, got, tt.want)
		}
	}
}

func TestParseArgsInterspersed(t *testing.T) {
	tests := []struct {
		args     []string
		wantPos  []string
		wantPort int
		wantJSON bool
	}{
		{[]string{"IH"}, []string{"IH"}, 0, false},
		{[]string{"--port", "7", "IH"}, []string{"IH"}, 7, false},
		{[]string{"IH", "--port", "7"}, []string{"IH"}, 7, false},
		{[]string{"IH", "--json", "X", "-port=8"}, []string{"IH", "X"}, 8, true},
		{[]string{"--json", "--", "--port", "IH"}, []string{"--port", "IH"}, 0, true},
		{[]string{"IH", "--", "-x"}, []string{"IH", "-x"}, 0, false},
	}
	for _, tt := range tests {
		fs := newFlagSet("t")
		port := fs.Int("port", 0, "")
		asJSON := fs.Bool("json", false, "")
		pos, err := parseArgs(fs, tt.args)
		if err != nil || !slices.Equal(pos, tt.wantPos) || *port != tt.wantPort || *asJSON != tt.wantJSON {
			t.Errorf("parseArgs(%q) = %q, %v (port %d, json %v); want %q (port %d, json %v)",
				tt.args, pos, err, *port, *asJSON, tt.wantPos, tt.wantPort, tt.wantJSON)
		}
	}
}

func TestAddrListFlag(t *testing.T) {
	l := addrList{addrs: []string{"default:1"}}
	for _, s := range []string{"127.0.0.1:1, 127.0.0.2:2", "", "[::1]:3,"} {
		if err := l.Set(s); err != nil {
			t.Fatalf("Set(%q): %v", s, err)
		}
	}
	if want := []string{"127.0.0.1:1", "127.0.0.2:2", "[::1]:3"}; !slices.Equal(l.addrs, want) {
		t.Errorf("addrs = %q; want %q (the default replaced)", l.addrs, want)
	}
	if err := l.Set("127.0.0.1:1,nope"); err == nil || !strings.Contains(err.Error(), `address "nope"`) {
		t.Errorf("Set with a bad address: error %v", err)
	}
}

func TestStatusLine(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := dht.Stats{Nodes: 5, GoodNodes: 3, Peers: 7, Infohashes: 2, Items: 4, KRPC: krpc.Stats{QueriesIn: 100, QueriesOut: 10}}
	m := newStatusMeter(t0, nodeStats{mainline: &s})
	s.KRPC.QueriesIn, s.KRPC.QueriesOut = 150, 30
	got := m.line(t0.Add(2*time.Second), nodeStats{mainline: &s})
	want := "STATUS t=2.00 nodes=5 good=3 peers=7 infohashes=2 items=4 q_in=25.0 q_out=10.0"
	if got != want {
		t.Errorf("line = %q; want %q", got, want)
	}
	if !udpStatusRE.MatchString(got) || !statusRE.MatchString(got) {
		t.Errorf("line %q does not match %v", got, udpStatusRE)
	}
	got = m.line(t0.Add(4*time.Second), nodeStats{mainline: &s}) // no new queries
	if want := "STATUS t=4.00 nodes=5 good=3 peers=7 infohashes=2 items=4 q_in=0.0 q_out=0.0"; got != want {
		t.Errorf("second line = %q; want %q", got, want)
	}

	// A bridge: each side's table and rates; the stores are shared.
	w := dht.Stats{Nodes: 2, GoodNodes: 1, Peers: 7, Infohashes: 2, Items: 4, KRPC: krpc.Stats{QueriesIn: 20, QueriesOut: 40}}
	m = newStatusMeter(t0, nodeStats{mainline: &s, web: &w, conns: 3})
	s.KRPC.QueriesIn, w.KRPC.QueriesIn, w.KRPC.QueriesOut = 160, 30, 42
	got = m.line(t0.Add(time.Second), nodeStats{mainline: &s, web: &w, conns: 3})
	want = "STATUS t=1.00 nodes=5 good=3 peers=7 infohashes=2 items=4 q_in=10.0 q_out=0.0 web_nodes=2 web_good=1 web_conns=3 web_q_in=10.0 web_q_out=2.0"
	if got != want {
		t.Errorf("bridge line = %q; want %q", got, want)
	}
	if !bridgeStatusRE.MatchString(got) || !statusRE.MatchString(got) {
		t.Errorf("line %q does not match %v", got, bridgeStatusRE)
	}

	// A WebRTC-only node.
	m = newStatusMeter(t0, nodeStats{web: &w, conns: 1})
	w.KRPC.QueriesIn = 35
	got = m.line(t0.Add(500*time.Millisecond), nodeStats{web: &w, conns: 1})
	want = "STATUS t=0.50 peers=7 infohashes=2 items=4 web_nodes=2 web_good=1 web_conns=1 web_q_in=10.0 web_q_out=0.0"
	if got != want {
		t.Errorf("WebRTC line = %q; want %q", got, want)
	}
	if !statusRE.MatchString(got) {
		t.Errorf("line %q does not match %v", got, statusRE)
	}
}

func TestStateFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if sf, err := loadState(path); sf != nil || err != nil {
		t.Fatalf("loadState of a missing file = %v, %v; want nil, nil", sf, err)
	}
	main := dht.State{ID: dht.RandomID(), Nodes: []dht.NodeInfo{{ID: dht.RandomID(), Addr: netip.MustParseAddrPort("127.0.0.1:7")}}}
	web := dht.State{ID: dht.RandomID(), Bootstrap: []string{"127.0.0.1:16881", "dht.example.com:443"}}

	// A UDP-only node's file: a dht.State alone, as earlier versions wrote it.
	for range 2 { // the second save replaces the first
		if err := saveState(path, &stateFile{Mainline: &main}); err != nil {
			t.Fatal(err)
		}
	}
	if id := stateID(t, path); id != main.ID.String() {
		t.Errorf("single-node file holds id %s; want %v", id, main.ID)
	}
	got, err := loadState(path)
	if err != nil || got.dual || got.Web != nil || got.Mainline.ID != main.ID || !slices.Equal(got.Mainline.Nodes, main.Nodes) {
		t.Fatalf("loadState = %+v, %v; want %+v", got, err, main)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d files after saving; want only the state file", len(ents))
	}

	// Both nodes'.
	if err := saveState(path, &stateFile{Mainline: &main, Web: &web, dual: true}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	want := fmt.Sprintf(`{"mainline":{"id":"%v","nodes":[{"id":"%v","host":"127.0.0.1","port":7}]},`+
		`"web":{"id":"%v","nodes":[{"host":"127.0.0.1","port":16881},{"host":"dht.example.com","port":443}]}}`+"\n",
		main.ID, main.Nodes[0].ID, web.ID)
	if string(b) != want {
		t.Errorf("two-node file:\n%s\nwant:\n%s", b, want)
	}
	got, err = loadState(path)
	if err != nil || !got.dual || got.Mainline.ID != main.ID || got.Web.ID != web.ID || !slices.Equal(got.Web.Bootstrap, web.Bootstrap) {
		t.Fatalf("loadState of both = %+v, %v", got, err)
	}
	// A WebRTC-only node's: no mainline part.
	if err := saveState(path, &stateFile{Web: &web}); err != nil {
		t.Fatal(err)
	}
	if got, err = loadState(path); err != nil || !got.dual || got.Mainline != nil || got.Web.ID != web.ID {
		t.Fatalf("loadState of the web part alone = %+v, %v", got, err)
	}
	os.WriteFile(path, []byte(`{"mainline":null,"web":{"id":"`+web.ID.String()+`"}}`), 0o644)
	if got, err = loadState(path); err != nil || got.Mainline != nil || got.Web.ID != web.ID {
		t.Fatalf("loadState with a null part = %+v, %v", got, err)
	}

	for _, bad := range []struct{ content, want string }{
		{"{not json", `--state "` + path + `": invalid character`},
		{`{"id":"nothex"}`, `--state "` + path + `": dht: state`},
		{`{"mainline":{"id":"12"}}`, `--state "` + path + `": mainline: dht: state`},
		{`{"web":{"nodes":[{"host":"x"}]}}`, `--state "` + path + `": web: dht: state: nodes[0]: missing port`},
		{`[]`, `--state "` + path + `": json: cannot unmarshal array`},
	} {
		os.WriteFile(path, []byte(bad.content), 0o644)
		if _, err := loadState(path); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("loadState of %s: error %v; want it to contain %q", bad.content, err, bad.want)
		}
	}
	if err := saveState(filepath.Join(dir, "missing", "state.json"), &stateFile{Mainline: &main}); err == nil {
		t.Error("saveState into a missing directory succeeded")
	}
}
