package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestVersionFromBuildInfo builds wdht with -buildvcs=true from a clone of this git
// checkout (the go command stamps no revision in a git worktree, whose .git is a file)
// and checks that `wdht version` and the LISTENING line name the clone's revision. It
// skips outside a git checkout or without the go command, except under CI.
func TestVersionFromBuildInfo(t *testing.T) {
	skip := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		skip("no go command: %v", err)
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		skip("not a git checkout: %v", err)
	}
	clone := filepath.Join(t.TempDir(), "src")
	if out, err := exec.Command("git", "clone", "-q", "--shared", strings.TrimSpace(string(top)), clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	out, err := exec.Command("git", "-C", clone, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	rev := strings.TrimSpace(string(out))[:12]
	bin := filepath.Join(t.TempDir(), "wdht")
	build := exec.Command(goBin, "build", "-buildvcs=true", "-o", bin, "./cmd/wdht")
	build.Dir = clone
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildvcs=true: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "version").Output()
	if err != nil || !regexp.MustCompile(`^wdht \S*`+rev+`\S*\n$`).Match(out) {
		t.Errorf("wdht version: %q, %v; want the revision %s", out, err, rev)
	}
	out, err = exec.Command(bin, "node", "--transports", "udp", "--addr", "127.0.0.1:0", "--status", "0", "--max-seconds", "0.01").Output()
	first, _, _ := strings.Cut(string(out), "\n")
	if m := listeningRE.FindStringSubmatch(first); err != nil || m == nil || !strings.Contains(m[1], rev) {
		t.Errorf("LISTENING line %q (%v); want version= with the revision %s", first, err, rev)
	}
}
