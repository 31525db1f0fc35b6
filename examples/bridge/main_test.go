package main

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/wdht/wdht/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestDemo runs the demo and checks its story: the WebRTC-only node reads the item that
// only mainline nodes hold, and the bridge's writes and lookups span both networks.
func TestDemo(t *testing.T) {
	testenv.NeedWebRTC(t)
	var out strings.Builder
	if err := run(t.Context(), nil, &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	for _, want := range []string{
		`(?m)^mainline DHT: 3 UDP nodes; item [0-9a-f]{40} put on 2 of them$`,
		`(?m)^bridge: UDP node 127\.0\.0\.1:\d+, WebRTC node behind the signalling server 127\.0\.0\.1:\d+$`,
		`(?m)^WebRTC-only node: connected to the bridge's WebRTC node at 127\.0\.0\.1:\d+$`,
		`(?m)^WebRTC-only node: got "hello from the mainline DHT" from the mainline DHT through the bridge \(cached there: true\)$`,
		`(?m)^bridge: put [0-9a-f]{40} on 3 mainline and 1 WebRTC nodes$`,
		`(?m)^mainline and WebRTC-only nodes: both get it$`,
		`(?m)^bridge: get_peers c12fe1c06bba254a9dc9f519b335aa7c1367a88a on both networks: \[127\.0\.0\.1:6999\]$`,
	} {
		if !regexp.MustCompile(want).MatchString(out.String()) {
			t.Errorf("output lacks %s", want)
		}
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"extra"}, {"-timeout", "0s"}, {"-frob"}} {
		var out strings.Builder
		if err := run(context.Background(), args, &out); !errors.Is(err, errUsage) {
			t.Errorf("run(%q) = %v, want a usage error", args, err)
		}
	}
}
