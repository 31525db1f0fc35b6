package krpc

import (
	"strings"
	"testing"
)

// An all-zero info_hash or target is sent for the methods that take it, and decodes as
// present; a query without the key decodes as absent; other methods leave a zero ID out.
func TestZeroIDs(t *testing.T) {
	zero := "20:" + strings.Repeat("\x00", 20)
	for _, tc := range []struct {
		method    string
		key       string
		sent      bool
		hasIH     bool
		hasTarget bool
	}{
		{MethodGetPeers, "9:info_hash", true, true, false},
		{MethodAnnouncePeer, "9:info_hash", true, true, false},
		{MethodFindNode, "6:target", true, false, true},
		{MethodGet, "6:target", true, false, true},
		{MethodSampleInfohashes, "6:target", true, false, true},
		{MethodPing, "6:target", false, false, false},
		{MethodPing, "9:info_hash", false, false, false},
	} {
		a := &Args{}
		a.ID = ID{1}
		b, err := (&Msg{T: "aa", Y: TypeQuery, Q: tc.method, A: a}).MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(string(b), tc.key+zero); got != tc.sent {
			t.Errorf("%s: %q carries a zero %s: %v, want %v", tc.method, b, tc.key, got, tc.sent)
		}
		var m Msg
		if err := m.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if m.A.HasInfoHash() != tc.hasIH || m.A.InfoHashSet != tc.hasIH || m.A.HasTarget() != tc.hasTarget || m.A.TargetSet != tc.hasTarget {
			t.Errorf("%s decoded: info_hash %v/%v, target %v/%v; want %v, %v", tc.method,
				m.A.HasInfoHash(), m.A.InfoHashSet, m.A.HasTarget(), m.A.TargetSet, tc.hasIH, tc.hasTarget)
		}
		again, err := m.MarshalBinary()
		if err != nil || string(again) != string(b) {
			t.Errorf("%s: re-encoded %q (%v), want %q", tc.method, again, err, b)
		}
	}
	// Set explicitly, a zero target goes out with any method.
	a := &Args{TargetSet: true}
	b, _ := (&Msg{T: "aa", Y: TypeQuery, Q: "vote", A: a}).MarshalBinary()
	if !strings.Contains(string(b), "6:target"+zero) {
		t.Errorf("TargetSet: %q has no zero target", b)
	}
}
