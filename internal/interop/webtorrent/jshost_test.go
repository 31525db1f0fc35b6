//go:build linux

package webtorrent_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/internal/interop"
)

// jsHost is a Node.js process running real webtorrent-dht 0.18.6 nodes
// (testdata/webtorrent/dht.js), made and driven by commands on its stdin.
type jsHost struct {
	t *testing.T
	p *interop.Peer
}

// startJS starts a dht.js process; it stops at the end of the test, which fails if the
// library threw where upstream would crash.
func startJS(t *testing.T, dir string, args ...string) *jsHost {
	t.Helper()
	argv := append([]string{"node", driver(t, "dht.js"), "--modules", dir, "--duration", "170"}, args...)
	return &jsHost{t: t, p: startOpts(t, "webtorrent-dht "+interop.Webtorrent, argv, interop.Options{Stdin: true})}
}

// jsNode is what the "node" command takes (see dht.js).
type jsNode struct {
	Name        string   `json:"name"`
	Listen      int      `json:"listen,omitempty"`
	Bootstrap   []string `json:"bootstrap,omitempty"`
	NoBootstrap bool     `json:"noBootstrap,omitempty"`
	ID          string   `json:"id,omitempty"`
	Announce    string   `json:"announce,omitempty"`
	Lookup      string   `json:"lookup,omitempty"`
}

// send writes one command.
func (h *jsHost) send(cmd string, v any) {
	h.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		h.t.Fatal(err)
	}
	m := map[string]any{}
	json.Unmarshal(b, &m)
	m["cmd"] = cmd
	b, _ = json.Marshal(m)
	if _, err := h.p.Stdin.Write(append(b, '\n')); err != nil {
		h.t.Fatalf("%v: command %s: %v", h.p, b, err)
	}
}

// wait returns the first line that starts with prefix.
func (h *jsHost) wait(ctx context.Context, prefix string) (string, error) {
	return h.p.WaitFunc(ctx, func(s string) bool { return strings.HasPrefix(s, prefix) })
}

var nodeLineRE = regexp.MustCompile(`^NODE (\S+) id=([0-9a-f]{40})`)

// node makes a node and returns its ID.
func (h *jsHost) node(ctx context.Context, n jsNode) dht.ID {
	h.t.Helper()
	h.send("node", n)
	l, err := h.wait(ctx, "NODE "+n.Name+" ")
	if err != nil {
		h.t.Fatal(err)
	}
	return mustID(h.t, nodeLineRE.FindStringSubmatch(l)[2])
}

func mustID(t testing.TB, s string) dht.ID {
	t.Helper()
	id, err := dht.ParseID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

var (
	fieldRE = regexp.MustCompile(`(\w+)=(\[[^\]]*\]|"[^"]*"|\S+)`)
)

// result is a RESULT line's fields.
type result struct {
	line   string
	fields map[string]string
}

func (r result) int(k string) int { n, _ := strconv.Atoi(r.fields[k]); return n }

// ok reports whether an announce succeeded (the bare word ok, else error=...).
func (r result) ok() bool { return strings.Contains(r.line, " ok ") }

// result waits for the line "RESULT <kind> <name> ...".
func (h *jsHost) result(ctx context.Context, kind, name string) (result, error) {
	l, err := h.wait(ctx, "RESULT "+kind+" "+name+" ")
	if err != nil {
		return result{}, err
	}
	r := result{line: l, fields: map[string]string{}}
	for _, m := range fieldRE.FindAllStringSubmatch(l, -1) {
		r.fields[m[1]] = m[2]
	}
	return r, nil
}

// lookupIDs waits for the end of node name's lookup and returns the node IDs of the peers
// it found (each pinged over the connection the lookup made).
func (h *jsHost) lookupIDs(ctx context.Context, name string) ([]dht.ID, result, error) {
	r, err := h.result(ctx, "lookup", name)
	if err != nil {
		return nil, r, err
	}
	var hexes []string
	if err := json.Unmarshal([]byte(r.fields["ids"]), &hexes); err != nil {
		return nil, r, fmt.Errorf("%q: %w", r.line, err)
	}
	ids := make([]dht.ID, 0, len(hexes))
	for _, s := range hexes {
		id, err := dht.ParseID(s)
		if err != nil {
			return nil, r, err
		}
		ids = append(ids, id)
	}
	return ids, r, nil
}

// table returns the node IDs in node name's routing table.
func (h *jsHost) table(ctx context.Context, name string) ([]dht.ID, error) {
	h.send("table", jsNode{Name: name})
	l, err := h.wait(ctx, "RESULT table "+name+" ")
	if err != nil {
		return nil, err
	}
	var rows []struct{ ID string }
	if err := json.Unmarshal([]byte(strings.TrimPrefix(l, "RESULT table "+name+" ")), &rows); err != nil {
		return nil, err
	}
	var ids []dht.ID
	for _, r := range rows {
		id, err := dht.ParseID(r.ID)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// idWith returns a random ID whose first byte is b, so that tests can place nodes in the
// ID space.
func idWith(b byte) dht.ID {
	id := dht.RandomID()
	id[0] = b
	return id
}

func hexID(id dht.ID) string { return hex.EncodeToString(id[:]) }
