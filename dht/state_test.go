package dht

import (
	"crypto/ed25519"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestStateItemsRoundTrip: a node's items survive State -> JSON -> State -> New.
func TestStateItemsRoundTrip(t *testing.T) {
	c := newCluster(t, nil)
	a := c.add(nil)
	imm, err := NewImmutableItem("hello")
	if err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(nil)
	mut, err := NewMutableItem(key, []byte("salt"), 7, map[string]any{"x": 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range []*Item{imm, mut} {
		if err := a.Items().Put(it, nil); err != nil {
			t.Fatal(err)
		}
	}
	st := a.State()
	if len(st.Items) != 2 {
		t.Fatalf("State carries %d items, want 2", len(st.Items))
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"values":{`) {
		t.Fatalf("saved state has no values: %s", b)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	n := c.add(&Config{State: &back})
	for _, want := range []*Item{imm, mut} {
		got, ok := n.Items().Get(want.Target())
		if !ok {
			t.Fatalf("item %v not restored", want.Target())
		}
		if got.String() != want.String() || got.Sig != want.Sig || string(got.Salt) != string(want.Salt) {
			t.Fatalf("restored %v, want %v", got, want)
		}
	}
}

// TestStateOldFileLoads: state files without "values" (written before items were saved,
// or by bittorrent-dht without any) load; the JS form of a string value loads too.
func TestStateOldFileLoads(t *testing.T) {
	old := `{"id":"0102030405060708090a0b0c0d0e0f1011121314","nodes":[{"id":"1111111111111111111111111111111111111111","host":"192.0.2.1","port":6881},{"host":"router.example:6881","port":6881}]}`
	var st State
	if err := json.Unmarshal([]byte(old), &st); err != nil {
		t.Fatalf("an old state file: %v", err)
	}
	if len(st.Nodes) != 1 || len(st.Items) != 0 || st.ID.String() != "0102030405060708090a0b0c0d0e0f1011121314" {
		t.Fatalf("old state loaded as %+v", st)
	}
	// bittorrent-dht's toJSON saves an immutable string value as the string's bytes.
	target := sha1.Sum([]byte("5:hello"))
	js := fmt.Sprintf(`{"nodes":[],"values":{"%x":{"v":"%s","id":"%x"}}}`, target, hex.EncodeToString([]byte("hello")), target)
	if err := json.Unmarshal([]byte(js), &st); err != nil {
		t.Fatalf("a JS state file: %v", err)
	}
	if len(st.Items) != 1 || string(st.Items[0].V) != "5:hello" {
		t.Fatalf("JS value loaded as %+v", st.Items)
	}
}

func TestStateItemsBoundedAndChecked(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"nodes":[],"values":{`)
	for i := range MaxStateItems + 5 {
		v := fmt.Sprintf("i%de", i)
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"%x":{"v":"%s"}`, sha1.Sum([]byte(v)), hex.EncodeToString([]byte(v)))
	}
	b.WriteString(`}}`)
	var st State
	if err := json.Unmarshal([]byte(b.String()), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Items) != MaxStateItems {
		t.Fatalf("loaded %d items, want the bound %d", len(st.Items), MaxStateItems)
	}
	_, key, _ := ed25519.GenerateKey(nil)
	mut, _ := NewMutableItem(key, nil, 1, "v")
	mut.Sig[0] ^= 1
	raw, err := json.Marshal(State{Items: []*Item{mut}})
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &st); err == nil || !strings.Contains(err.Error(), "values[") {
		t.Fatalf("a forged item loaded: %v", err)
	}
	wrongKey := fmt.Sprintf(`{"nodes":[],"values":{"%040x":{"v":"%s"}}}`, 1, hex.EncodeToString([]byte("i1e")))
	if err := json.Unmarshal([]byte(wrongKey), &st); err == nil {
		t.Fatal("an item under another target loaded")
	}
}
