//go:build linux

package main

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		// The demo's child process: this test binary is the demo's executable.
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// TestDemo runs the self-contained demo, child process included, and checks that the
// lookup found the child's peer.
func TestDemo(t *testing.T) {
	var out strings.Builder
	if err := run(t.Context(), nil, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	for _, want := range []string{
		"node 127.0.0.1:6881, socket ",
		"node 127.0.0.2:6881, socket ",
		"ping 127.0.0.1:6881 from 127.0.0.2:6881: answered by node ",
		"    node 127.0.0.3:6881, socket ",
		"    bootstrapped from the other sockets in the directory: 2 listed, 2 answered",
		"    announced c12fe1c06bba254a9dc9f519b335aa7c1367a88a as peer 127.0.0.3:6999: stored on 2 nodes",
		"\npeer 127.0.0.3:6999\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"-serve"},
		{"-dir", "/tmp", "-serve", "-lookup", "c12fe1c06bba254a9dc9f519b335aa7c1367a88a"},
		{"-dir", "/tmp", "-addr", "nonsense", "-serve"},
		{"extra"},
	} {
		var out strings.Builder
		if err := run(context.Background(), args, &out); !errors.Is(err, errUsage) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
}
