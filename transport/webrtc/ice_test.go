package webrtc

import (
	"bytes"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestParseICEServer(t *testing.T) {
	for _, tc := range []struct {
		in         string
		url        string
		user, pass string
		err        string
	}{
		{in: "stun:203.0.113.1", url: "stun:203.0.113.1"},
		{in: "stun:stun.example.com:19302", url: "stun:stun.example.com:19302"},
		{in: "turn:u:p@203.0.113.1:3478", url: "turn:203.0.113.1:3478", user: "u", pass: "p"},
		{in: "turn:u:p@203.0.113.1:3478?transport=tcp", url: "turn:203.0.113.1:3478?transport=tcp", user: "u", pass: "p"},
		{in: "turns:alice:s%40cret%3A1@turn.example.com", url: "turns:turn.example.com", user: "alice", pass: "s@cret:1"},
		{in: "TURN:u:p@[2001:db8::1]:3478", url: "turn:[2001:db8::1]:3478", user: "u", pass: "p"},
		{in: "turn:203.0.113.1", url: "turn:203.0.113.1"}, // credentials may come separately
		{in: "http://203.0.113.1", err: "want stun:, stuns:, turn: or turns:"},
		{in: "203.0.113.1:3478", err: "want stun:"},
		{in: "stun:u:p@203.0.113.1", err: "a STUN server takes no credentials"},
		{in: "turn:user@203.0.113.1", err: "want USER:PASSWORD@"},
		{in: "turn::p@203.0.113.1", err: "bad USER:PASSWORD"},
		{in: "stun:203.0.113.1:99999", err: "want 1 to 65535"},
		{in: "turn:u:secret@203.0.113.1:x", err: "***"},
		{in: "stun:203.0.113.1?transport=udp", err: "queries"},
	} {
		s, err := ParseICEServer(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseICEServer(%q) = %+v, %v; want an error with %q", tc.in, s, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("ParseICEServer(%q): the error shows the password: %v", tc.in, err)
			}
			continue
		}
		if err != nil || len(s.URLs) != 1 || s.URLs[0] != tc.url || s.Username != tc.user || s.Credential != tc.pass {
			t.Errorf("ParseICEServer(%q) = %+v, %v; want %s %q %q", tc.in, s, err, tc.url, tc.user, tc.pass)
		}
	}
}

func TestValidateICE(t *testing.T) {
	turn := ICEServer{URLs: []string{"turn:203.0.113.1:3478"}, Username: "u", Credential: "p"}
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string
	}{
		{"stun", Config{ICEServers: []ICEServer{{URLs: []string{"stun:203.0.113.1"}}}}, ""},
		{"turn", Config{ICEServers: []ICEServer{turn}, RelayOnly: true}, ""},
		{"bad URL", Config{ICEServers: []ICEServer{{URLs: []string{"stun:"}}}}, "ICEServers[0]"},
		{"turn without credentials", Config{ICEServers: []ICEServer{{URLs: []string{"turn:203.0.113.1"}}}}, "needs a Username"},
		{"relay without turn", Config{ICEServers: []ICEServer{{URLs: []string{"stun:203.0.113.1"}}}, RelayOnly: true}, "RelayOnly needs a TURN server"},
		{"relay alone", Config{RelayOnly: true}, "RelayOnly needs a TURN server"},
	} {
		err := tc.cfg.Validate()
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.err)
		}
	}
}

// TestCandidateNote: a node that gathered only private host candidates and has no STUN
// server says so once; one with a public address, or with a server that gave a
// reflexive candidate, says nothing.
func TestCandidateNote(t *testing.T) {
	const (
		private = "a=candidate:1 1 udp 2130706431 10.0.1.2 40000 typ host\r\n" +
			"a=candidate:2 1 udp 2130706431 192.168.1.5 40001 typ host\r\n"
		public = "a=candidate:1 1 udp 2130706431 203.0.113.5 40000 typ host\r\n"
		srflx  = "a=candidate:3 1 udp 1694498815 198.51.100.1 50000 typ srflx raddr 0.0.0.0 rport 40002\r\n"
	)
	stun := []ICEServer{{URLs: []string{"stun:203.0.113.1:3478"}}}
	for _, tc := range []struct {
		name    string
		servers []ICEServer
		sdps    []string
		want    string
	}{
		{"private, no STUN", nil, []string{private, private}, "only private host candidates and no STUN server"},
		{"public host", nil, []string{public}, ""},
		{"STUN answered", stun, []string{private + srflx}, ""},
		{"STUN silent", stun, []string{private}, "the STUN/TURN servers gave no candidate"},
	} {
		var buf bytes.Buffer
		tr := &Transport{cfg: Config{ICEServers: tc.servers}, log: hclog.New(&hclog.LoggerOptions{Output: &buf, Level: hclog.Info})}
		for _, s := range tc.sdps {
			tr.candidateNote("v=0\r\n" + s)
		}
		got := buf.String()
		if tc.want == "" && got != "" || tc.want != "" && (strings.Count(got, tc.want) != 1 || strings.Count(got, "\n") != 1) {
			t.Errorf("%s: logged %q, want one line with %q", tc.name, got, tc.want)
		}
		if strings.Contains(got, "STUN") && !strings.Contains(tc.want, "STUN") {
			t.Errorf("%s: %q", tc.name, got)
		}
	}
	var buf bytes.Buffer
	tr := &Transport{cfg: Config{Loopback: true}, log: hclog.New(&hclog.LoggerOptions{Output: &buf})}
	tr.candidateNote("v=0\r\n" + private)
	if buf.Len() != 0 {
		t.Errorf("a loopback transport logged %q", buf.String())
	}
}
