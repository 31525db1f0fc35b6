package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSystemdUnit checks deploy/wdht.service with `systemd-analyze verify` and its
// hardening with `systemd-analyze security --offline --threshold=20` (an exposure of 2.0
// at most, "OK"), and that every WDHT_ variable it sets names a flag of wdht node.
// systemd-analyze verify requires ExecStart's program to exist: the test verifies a copy
// whose /usr/local/bin/wdht is the test binary. It skips without systemd-analyze
// (Debian's systemd package), except under CI.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("../../deploy/wdht.service")
	if err != nil {
		t.Fatal(err)
	}
	fs, _ := nodeFlagSet()
	for line := range strings.SplitSeq(string(unit), "\n") {
		v, ok := strings.CutPrefix(line, "Environment=")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(v, "=")
		flagName := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, envPrefix), "_", "-"))
		if fs.Lookup(flagName) == nil {
			t.Errorf("the unit sets %s, which is no flag of wdht node", name)
		}
		t.Setenv(name, strings.TrimPrefix(v, name+"="))
	}
	if _, err := parseNodeFlags(nil); err != nil {
		t.Errorf("wdht node with the unit's environment: %v", err)
	}

	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("systemd-analyze not installed: %v", err)
		}
		t.Skipf("systemd-analyze not installed (apt-get install systemd): %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "wdht.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/local/bin/wdht"), []byte(exe)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"verify", path}, {"security", "--offline=true", "--threshold=20", path}} {
		out, err := exec.Command(sa, args...).CombinedOutput()
		if err != nil {
			t.Errorf("systemd-analyze %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if args[0] == "verify" && len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify warns:\n%s", out)
		}
	}
}
