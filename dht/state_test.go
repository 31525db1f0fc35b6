package dht

import (
	"crypto/ed25519"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wdht/wdht/internal/bubble"
	"github.com/wdht/wdht/transport"
	"github.com/wdht/wdht/transport/memory"
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

// announcing is a dialling transport whose peers announced many signalling servers.
type announcing struct {
	*dialing
	servers []string
}

func (a *announcing) SignallingServers() []string { return a.servers }

// TestSavedServersBounded: peers choose the signalling servers they announce. A WebRTC
// node saves one only once a dial of it answered: it dials one announced server per
// maintenance run to find out, at most maxVerifyDials in its life. A restart reads and
// dials at most MaxStateServers saved servers, and one whose dial failed is pruned
// (unless the user gave it).
func TestSavedServersBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := memory.NewNetwork(&memory.Config{Linked: true})
		listen := func() *memory.Transport {
			tr, err := mem.Listen(netip.AddrPort{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { tr.Close() })
			return tr
		}
		start := func(tr transport.Transport, cfg *Config) *Node {
			n, err := New(tr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { n.Close() })
			return n
		}
		a := start(listen(), nil) // a signalling server that answers
		var flood []string
		for i := range 100 {
			flood = append(flood, fmt.Sprintf("peer%03d.example:%d", i, 1000+i))
		}
		// 100 announced servers that never answer, and a's address last.
		bd := &dialing{Transport: listen(), net: mem}
		b := start(&announcing{dialing: bd, servers: append(slices.Clone(flood), a.Addr().String())}, nil)
		if st := b.State(); len(st.Bootstrap) != 0 {
			t.Fatalf("a node saves announced servers it never dialled: %v", st.Bootstrap)
		}
		// A well-behaved node linked to b pings it at every maintenance run.
		good := start(listen(), nil)
		if err := mem.Link(good.Addr(), b.Addr()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		goroutines := bubble.Goroutines()
		for range 2 * maxVerifyDials {
			time.Sleep(DefaultMaintenanceInterval + time.Second)
			synctest.Wait()
			if _, err := good.Ping(t.Context(), b.Addr()); err != nil {
				t.Fatalf("a well-behaved node's ping while the node dials announced servers: %v", err)
			}
		}
		if len(bd.dials()) != maxVerifyDials {
			t.Fatalf("the node dialled %d announced servers, want the bound %d", len(bd.dials()), maxVerifyDials)
		}
		if st := b.State(); len(st.Bootstrap) != 0 {
			t.Fatalf("announced servers that did not answer are saved: %v", st.Bootstrap)
		}
		atBaseline(t, b, goroutines)
		// One that answers is saved once dialled.
		cd := &dialing{Transport: listen(), net: mem}
		c := start(&announcing{dialing: cd, servers: []string{flood[0], a.Addr().String()}}, nil)
		for range 3 {
			time.Sleep(DefaultMaintenanceInterval + time.Second)
			synctest.Wait()
		}
		if got := c.State().Bootstrap; !slices.Equal(got, []string{a.Addr().String()}) {
			t.Fatalf("saved %v, want only the announced server that answered (%v)", got, a.Addr())
		}

		// A restart from a state of 101 servers dials at most MaxStateServers of them.
		d := &dialing{Transport: listen(), net: mem}
		saved := append([]string{a.Addr().String()}, flood...)
		e := start(&announcing{dialing: d}, &Config{
			State:          &State{Bootstrap: saved},
			BootstrapHosts: []string{"given.example:1"},
		})
		if _, err := e.Bootstrap(t.Context()); err != nil {
			t.Fatalf("bootstrap from the saved server that answers: %v", err)
		}
		if len(d.dials()) > MaxStateServers+1 {
			t.Fatalf("a restart dialled %d servers, want at most %d saved and 1 given", len(d.dials()), MaxStateServers)
		}
		got := e.State().Bootstrap
		if !slices.Contains(got, a.Addr().String()) || !slices.Contains(got, "given.example:1") {
			t.Fatalf("the server that answered or the given one is not saved: %v", got)
		}
		if len(got) > MaxStateServers+1 {
			t.Fatalf("saved %d servers, want at most %d and the given one: %v", len(got), MaxStateServers, got)
		}
		for _, hp := range d.dials() {
			if hp != a.Addr().String() && hp != "given.example:1" && slices.Contains(got, hp) {
				t.Fatalf("%s did not answer its dial, yet is saved again: %v", hp, got)
			}
		}
	})
}
