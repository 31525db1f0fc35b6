package dht

import (
	"strings"
	"testing"
)

func TestParseID(t *testing.T) {
	good := strings.Repeat("ab", 20)
	if id, err := ParseID(good); err != nil || id.String() != good {
		t.Fatalf("ParseID(%q) = %v, %v", good, id, err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("zz", 20), strings.Repeat("ab", 21)} {
		if _, err := ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
}

func TestCommonPrefixLen(t *testing.T) {
	var a, b ID
	if got := commonPrefixLen(&a, &b); got != 160 {
		t.Fatalf("equal IDs: %d", got)
	}
	b[0] = 0x80
	if got := commonPrefixLen(&a, &b); got != 0 {
		t.Fatalf("first bit differs: %d", got)
	}
	b[0], b[2] = 0, 0x01
	if got := commonPrefixLen(&a, &b); got != 23 {
		t.Fatalf("bit 23 differs: %d", got)
	}
}

func TestRandomIDWithPrefix(t *testing.T) {
	self := RandomID()
	for n := range 160 {
		for range 5 {
			r := randomIDWithPrefix(self, n)
			if got := commonPrefixLen(&self, &r); got != n {
				t.Fatalf("prefix %d: got common prefix %d (%v vs %v)", n, got, self, r)
			}
		}
	}
}

func TestCloser(t *testing.T) {
	var target, a, b ID
	a[19], b[19] = 1, 2
	if !closer(&target, &a, &b) || closer(&target, &b, &a) || closer(&target, &a, &a) {
		t.Fatal("closer is wrong")
	}
	if cmpDistance(&target, &a, &b) >= 0 || cmpDistance(&target, &a, &a) != 0 {
		t.Fatal("cmpDistance is wrong")
	}
}
