package main

import (
	"strings"
	"testing"
)

// TestICEFlagErrors: bad ICE flags are usage errors (exit 2) naming what is wrong, found
// before any socket opens; a node or client on loopback refuses a server off loopback,
// so that nothing run on one machine ever contacts a public STUN server.
func TestICEFlagErrors(t *testing.T) {
	const stunLab = "stun:203.0.113.20:3478"
	off := []string{"--loopback=false"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"scheme", []string{"node", "--ice-server", "http://x"}, "--ice-server: ICE server \"http://x\": want stun:, stuns:, turn: or turns:"},
		{"stun credentials", append([]string{"node", "--ice-server", "stun:u:p@203.0.113.20"}, off...), "a STUN server takes no credentials"},
		{"turn no credentials", append([]string{"node", "--ice-server", "turn:203.0.113.20"}, off...), "a TURN server needs credentials: turn:USER:PASSWORD@HOST:PORT, or --ice-username and --ice-credential"},
		{"turn half credentials", append([]string{"node", "--ice-server", "turn:203.0.113.20", "--ice-username", "u"}, off...), "a TURN server needs credentials"},
		{"username without turn", append([]string{"node", "--ice-server", stunLab, "--ice-username", "u", "--ice-credential", "p"}, off...), "--ice-username and --ice-credential are for a turn: or turns: --ice-server"},
		{"policy word", append([]string{"node", "--ice-transport-policy", "some"}, off...), `--ice-transport-policy "some": want all or relay`},
		{"relay without turn", append([]string{"node", "--ice-server", stunLab, "--ice-transport-policy", "relay"}, off...), "--ice-transport-policy relay needs a TURN server"},
		{"node loopback", []string{"node", "--ice-server", "stun:stun.l.google.com:19302"}, "this node gathers loopback ICE candidates only"},
		{"node udp only", []string{"node", "--transports", "udp", "--ice-server", stunLab}, "--ice-server is for the webrtc side"},
		{"client loopback", []string{"lookup", testIH, "--transport", "webrtc", "--ice-server", stunLab}, "cannot use a server off loopback: give --loopback=false"},
		{"client udp", []string{"lookup", testIH, "--ice-server", stunLab}, "--ice-server and the other ICE flags are for --transport webrtc"},
		{"client password shown", []string{"get", testIH, "--transport", "webrtc", "--loopback=false", "--ice-server", "turn:u:hunter2@203.0.113.20:x"}, "ICE server \"turn:u:***@203.0.113.20:x\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runWDHT(t, tt.args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("wdht %q: exit %d, stderr:\n%s\nwant exit %d and stderr containing %q", tt.args, r.code, r.stderr, exitUsage, tt.want)
			}
			if strings.Contains(r.stderr, "hunter2") {
				t.Errorf("wdht %q shows the TURN password:\n%s", tt.args, r.stderr)
			}
		})
	}
}

// TestICEFlagsHelp: every command that runs over WebRTC documents the ICE flags.
func TestICEFlagsHelp(t *testing.T) {
	for _, cmd := range []string{"node", "lookup", "announce", "ping", "put", "get", "sample"} {
		r := runWDHT(t, "help", cmd)
		for _, f := range []string{"--ice-server URL", "--ice-username", "--ice-transport-policy all|relay"} {
			if !strings.Contains(r.stdout+r.stderr, f) {
				t.Errorf("wdht help %s: no %s", cmd, f)
			}
		}
	}
}
