package main

import (
	"flag"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// closedPort returns a loopback UDP address where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	badState := filepath.Join(dir, "bad.json")
	os.WriteFile(badState, []byte(`{"id":"nothex"}`), 0o644)
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"no command", nil, "Usage:"},
		{"unknown command", []string{"frobnicate"}, `wdht: unknown command "frobnicate"`},
		{"help unknown", []string{"help", "frob"}, `wdht: help: unknown command "frob"`},
		{"help too many", []string{"help", "a", "b"}, "want at most one command"},
		{"version args", []string{"version", "x"}, `wdht: version: want no arguments, got ["x"]`},

		{"lookup missing", []string{"lookup"}, "wdht: lookup: missing INFOHASH\nRun 'wdht help lookup' for usage."},
		{"lookup short", []string{"lookup", "abc"}, `wdht: lookup: infohash "abc": want 40 hex characters, got 3`},
		{"lookup long", []string{"lookup", testIH + "00"}, "want 40 hex characters, got 42"},
		{"lookup not hex", []string{"lookup", "x" + testIH[1:]}, `got 'x' at position 1`},
		{"lookup magnet", []string{"lookup", "magnet:?xt=urn:btih:abc"}, `btih "abc": want 40 hex or 32 base32 characters, got 3`},
		{"lookup extra", []string{"lookup", testIH, "more"}, `want one INFOHASH, got 2 arguments`},
		{"lookup unknown flag", []string{"lookup", testIH, "--frob"}, "wdht: lookup: flag provided but not defined: -frob"},
		{"lookup flag value", []string{"lookup", testIH, "--timeout"}, "flag needs an argument: -timeout"},
		{"lookup bad bootstrap", []string{"lookup", testIH, "--bootstrap", "nohost"}, `address "nohost": want host:port`},
		{"lookup bootstrap port 0", []string{"lookup", testIH, "--bootstrap", "127.0.0.1:0"}, `port "0": want a number from 1 to 65535`},
		{"lookup bootstrap port big", []string{"lookup", testIH, "--bootstrap=127.0.0.1:70000"}, `port "70000"`},
		{"lookup unresolvable", []string{"lookup", testIH, "--bootstrap", "nonexistent.invalid:6881"}, `cannot resolve "nonexistent.invalid"`},
		{"lookup empty bootstrap", []string{"lookup", testIH, "--bootstrap", ""}, "no bootstrap address"},
		{"lookup bad addr", []string{"lookup", testIH, "--addr", "1.2.3:0"}, `--addr "1.2.3:0": host "1.2.3" is not an IP address`},
		{"lookup bad timeout", []string{"lookup", testIH, "--timeout", "0s"}, "--timeout 0s: want a positive duration"},
		{"lookup timeout syntax", []string{"lookup", testIH, "--timeout", "soon"}, `invalid value "soon" for flag -timeout`},

		{"announce missing", []string{"announce", "--port", "6882"}, "wdht: announce: missing INFOHASH"},
		{"announce port 0", []string{"announce", testIH, "--port", "0"}, `invalid value "0" for flag -port: want a port number from 1 to 65535`},
		{"announce port big", []string{"announce", testIH, "--port=65536"}, "want a port number from 1 to 65535"},
		{"announce port text", []string{"announce", "--port", "http", testIH}, `invalid value "http" for flag -port`},
		{"announce short", []string{"announce", "0123"}, `infohash "0123": want 40 hex characters, got 4`},
		{"announce extra", []string{"announce", testIH, testIH}, "want one INFOHASH, got 2 arguments"},

		{"ping bad addr", []string{"ping", "localhost"}, `address "localhost": want host:port`},
		{"ping port 0", []string{"ping", "127.0.0.1:0"}, `port "0": want a number from 1 to 65535`},
		{"ping nothing", []string{"ping", "--bootstrap="}, "nothing to ping"},
		{"ping unknown flag", []string{"ping", "-x"}, "flag provided but not defined: -x"},

		{"node extra", []string{"node", "now"}, `wdht: node: want no arguments, got ["now"]`},
		{"node k", []string{"node", "--k", "0"}, "--k 0: want a bucket size of at least 1"},
		{"node status", []string{"node", "--status", "-1s"}, "--status -1s: want a positive duration"},
		{"node max seconds", []string{"node", "--max-seconds", "-1"}, "--max-seconds -1"},
		{"node addr port", []string{"node", "--addr", "127.0.0.1:65536"}, `--addr "127.0.0.1:65536": port "65536"`},
		{"node addr host", []string{"node", "--addr", "example.com:1"}, `host "example.com" is not an IP address`},
		{"node addr missing port", []string{"node", "--addr", "127.0.0.1"}, `--addr "127.0.0.1": want ip:port`},
		{"node bootstrap", []string{"node", "--bootstrap", "127.0.0.1:1,127.0.0.1"}, `address "127.0.0.1": want host:port`},
		{"node state dir", []string{"node", "--state", dir}, "--state " + `"` + dir + `"`},
		{"node state bad", []string{"node", "--state", badState}, `--state "` + badState + `": dht: state`},
		{"node limits", []string{"node", "--limits=maybe"}, `invalid boolean value "maybe" for -limits`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runWDHT(t, tt.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("wdht %q: exit %d, stderr:\n%s\nwant exit %d and stderr containing %q", tt.args, r.code, r.stderr, exitUsage, tt.want)
			}
			if tt.args != nil && r.stdout != "" {
				t.Errorf("wdht %q wrote to stdout:\n%s", tt.args, r.stdout)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel() // it waits out its timeouts: alongside TestWebUnreachable
	addr := closedPort(t)
	tried := "no bootstrap node answered (tried " + addr + ")"
	tests := []struct {
		name   string
		args   []string
		want   string
		stdout string // with --json: the error as a JSON object
	}{
		{"lookup", []string{"lookup", testIH, "--bootstrap", addr, "--timeout", "1s"}, "wdht: lookup: " + tried, ""},
		{"lookup json", []string{"lookup", "--json", testIH, "--bootstrap", addr, "--timeout", "1s"}, "wdht: lookup: " + tried,
			`{"command":"lookup","error":"` + tried + `","exit":1}` + "\n"},
		{"announce", []string{"announce", testIH, "--port", "6882", "--bootstrap", addr, "--timeout", "1s"}, "wdht: announce: " + tried, ""},
		{"ping bootstrap", []string{"ping", "--bootstrap", addr, "--timeout", "1s"}, "wdht: ping: " + tried, ""},
		{"ping addr", []string{"ping", addr, "--timeout", "1s"}, "wdht: ping: no answer from " + addr + " (timed out after 1s)", ""},
	}
	// Run them at once: each waits out its timeout, and t.Parallel would run only
	// GOMAXPROCS of them at a time.
	results := make([]result, len(tests))
	var wg sync.WaitGroup
	for i, tt := range tests {
		wg.Go(func() { results[i] = runWDHT(t, tt.args...) })
	}
	wg.Wait()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := results[i]
			if r.code != exitFailed || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("wdht %q: exit %d, stderr:\n%s\nwant exit %d and stderr containing %q", tt.args, r.code, r.stderr, exitFailed, tt.want)
			}
			if r.stdout != tt.stdout {
				t.Errorf("wdht %q wrote to stdout:\n%s\nwant:\n%s", tt.args, r.stdout, tt.stdout)
			}
		})
	}
}

func TestNodeAddrInUse(t *testing.T) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := runWDHT(t, "node", "--addr", c.LocalAddr().String())
	if r.code != exitFailed || !strings.Contains(r.stderr, "wdht: node: ") || !strings.Contains(r.stderr, "address already in use") {
		t.Errorf("node on a busy port: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

func TestLogLevelEnv(t *testing.T) {
	t.Setenv(logEnv, "loud")
	r := runWDHT(t, "version")
	if want := `wdht: WDHT_LOG="loud": want trace, debug, info, warn, error or off`; r.code != exitUsage || !strings.Contains(r.stderr, want) {
		t.Errorf("bad WDHT_LOG: exit %d, stderr %q; want exit 2 and %q", r.code, r.stderr, want)
	}
	// node's --log-level overrides WDHT_LOG, even an invalid one.
	r = runWDHT(t, "node", "--transports", "udp", "--addr", "127.0.0.1:0", "--max-seconds", "0.01", "--log-level", "debug")
	if r.code != exitOK || !strings.Contains(r.stderr, "[DEBUG]") {
		t.Errorf("node --log-level debug with a bad WDHT_LOG: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runWDHT(t, "node", "--transports", "udp", "--addr", "127.0.0.1:0", "--max-seconds", "0.01")
	if want := "wdht: node: WDHT_LOG=\"loud\": want trace, debug, info, warn, error or off\n"; r.code != exitUsage || r.stderr != want || r.stdout != "" {
		t.Errorf("node with a bad WDHT_LOG: exit %d, stdout %q, stderr %q; want exit 2 and %q", r.code, r.stdout, r.stderr, want)
	}
	t.Setenv(logEnv, "DEBUG")
	if r := runWDHT(t, "version"); r.code != exitOK {
		t.Errorf("WDHT_LOG=DEBUG: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runWDHT(t, "node", "--transports", "udp", "--addr", "127.0.0.1:0", "--max-seconds", "0.01", "--log-level", "off")
	if r.code != exitOK || r.stderr != "" {
		t.Errorf("node --log-level off with WDHT_LOG=DEBUG: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}} {
		r := runWDHT(t, args...)
		if r.code != exitOK || r.stderr != "" {
			t.Errorf("wdht %q: exit %d, stderr %q", args, r.code, r.stderr)
		}
		for _, c := range append(commands(), &command{name: "help"}) {
			if !regexp.MustCompile(`(?m)^\t` + c.name + ` `).MatchString(r.stdout) {
				t.Errorf("wdht %q does not list command %q:\n%s", args, c.name, r.stdout)
			}
		}
	}
	for _, c := range commands() {
		for _, args := range [][]string{{"help", c.name}, {c.name, "-h"}, {c.name, "--help"}} {
			r := runWDHT(t, args...)
			if r.code != exitOK || !strings.HasPrefix(r.stdout, "Usage: wdht "+c.name) || r.stderr != "" {
				t.Errorf("wdht %q: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
			}
		}
	}
	if r := runWDHT(t, "version"); r.code != exitOK || r.stdout != "wdht "+version()+"\n" {
		t.Errorf("wdht version: exit %d, stdout %q", r.code, r.stdout)
	}
}

// TestDocsInSync checks that every flag of every command is described in the command's
// help text and in the package doc (doc.go), and that every command is in doc.go.
func TestDocsInSync(t *testing.T) {
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, c := range commands() {
		if !strings.Contains(doc, "\t"+c.name+" ") || !strings.Contains(doc, "wdht "+c.name) && c.name != "version" {
			t.Errorf("doc.go does not describe command %q", c.name)
		}
		c.flags().VisitAll(func(f *flag.Flag) {
			if !strings.Contains(c.help, "--"+f.Name) {
				t.Errorf("help of %q does not describe --%s", c.name, f.Name)
			}
			if !strings.Contains(doc, "--"+f.Name) {
				t.Errorf("doc.go does not describe --%s (of %q)", f.Name, c.name)
			}
		})
	}
}
