package webrtc

import (
	"bytes"
	"testing"
)

// The readiness probe is a KRPC ping with the held query's node ID and probeTID; only a
// response or error carrying probeTID counts as its answer (and is not delivered).
func TestProbe(t *testing.T) {
	id := "abcdefghij0123456789"
	for _, tc := range []struct {
		name, held string
		want       string // the probe; "" for none
	}{
		{"get_peers", "d1:ad2:id20:" + id + "9:info_hash20:01234567890123456789e1:q9:get_peers1:t4:abcd1:y1:qe",
			"d1:ad2:id20:" + id + "e1:q4:ping1:t5:wdrdy1:y1:qe"},
		{"find_node with signals", "d1:ad2:id20:" + id + "7:signalsldee6:target20:01234567890123456789e1:q9:find_node1:t2:xy1:y1:qe",
			"d1:ad2:id20:" + id + "e1:q4:ping1:t5:wdrdy1:y1:qe"},
		{"response", "d1:rd2:id20:" + id + "e1:t2:xy1:y1:re", ""},
		{"short id", "d1:ad2:id3:abce1:q4:ping1:t2:xy1:y1:qe", ""},
		{"not bencode", `{"http_server":{"host":"a","port":1}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := probeFor([]byte(tc.held))
			if !bytes.Equal(got, []byte(tc.want)) {
				t.Errorf("probeFor = %q, want %q", got, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		msg  string
		want bool
	}{
		{"d1:rd2:id20:" + id + "e1:t5:wdrdy1:y1:re", true},
		{"d1:eli201e3:bade1:t5:wdrdy1:y1:ee", true},
		{"d1:rd2:id20:" + id + "e1:t4:wdrd1:y1:re", false},             // another transaction
		{"d1:ad2:id20:" + id + "e1:q4:ping1:t5:wdrdy1:y1:qe", false},   // a query (our own probe, echoed)
		{"d1:rd2:id20:" + id + "5:nodes5:wdrdye1:t2:ab1:y1:re", false}, // the bytes elsewhere
		{"d1:rd2:id20:" + id + "e1:t5:wdrdy1:y1:r", false},             // truncated
		{"wdrdy", false},
	} {
		if got := isProbeAnswer([]byte(tc.msg)); got != tc.want {
			t.Errorf("isProbeAnswer(%q) = %v, want %v", tc.msg, got, tc.want)
		}
	}
}
