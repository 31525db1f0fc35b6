//go:build linux

package webtorrent_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/internal/interop"
)

// A JS node that answers our offer sends nothing on the connection before it has a query
// to answer, and drops what reaches it before its own side reports the connection
// (js-wire-protocol §4). Our node holds what it sends on such a connection and probes
// the peer with pings until it answers (transport/webrtc, Config.ReadyDelay); here the
// ReadyDelay is an hour, longer than the test, so only the probes' answers can release
// the held queries. Three JS nodes bootstrap from our signalling node R (none runs a
// signalling server, so none announces one on its connections); then three fresh nodes
// of ours bootstrap from R in turn, which relays their offers to the JS nodes. For each: probes
// were sent, a JS node answered its queries over a connection the JS side answered (it
// is in the routing table), and every node its bootstrap lookup queried answered (no
// query was lost to a JS peer not yet ready).
func TestJSAnswererGetsEveryMessage(t *testing.T) {
	t.Parallel()
	dir := webtorrentDir(t, interop.Webtorrent)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	js := startJS(t, dir)
	// Stop the JS nodes before ours close (§11 B7).
	defer js.p.Stop()
	r := newGoNode(t, "r", goOpts{signalling: true})
	var jsIDs []dht.ID
	for i := range 3 {
		name := fmt.Sprintf("j%d", i)
		jsIDs = append(jsIDs, js.node(ctx, jsNode{Name: name, Bootstrap: []string{r.addr.String()}}))
		if _, err := js.wait(ctx, "READY "+name+" "); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		q := newGoNode(t, fmt.Sprintf("q%d", i), goOpts{readyDelay: time.Hour})
		lr, err := q.n.Bootstrap(ctx, r.addr)
		if err != nil {
			t.Fatalf("%s: bootstrap: %v", q.name, err)
		}
		st := q.tr.Stats()
		var fromJS []dht.ID
		for _, ni := range q.n.Nodes() {
			if slices.Contains(jsIDs, ni.ID) {
				fromJS = append(fromJS, ni.ID)
			}
		}
		t.Logf("%s: bootstrap %+v; %d probes; JS nodes in the table: %d", q.name, lr, st.Probes, len(fromJS))
		if st.Probes == 0 {
			t.Errorf("%s: no probe sent (stats %+v)", q.name, st)
		}
		if len(fromJS) == 0 {
			t.Errorf("%s: no JS node answered over a connection it answered (table %v)", q.name, q.n.Nodes())
		}
		if lr.Responses != lr.Queries {
			t.Errorf("%s: %d of the %d nodes queried answered: a query was lost", q.name, lr.Responses, lr.Queries)
		}
		// The next one must meet the JS nodes, not this one: close it, and wait until R
		// has forgotten it.
		q.n.Close()
		q.tr.Close()
		for slices.ContainsFunc(r.n.Nodes(), func(ni dht.NodeInfo) bool { return ni.ID == q.n.ID() }) {
			select {
			case <-ctx.Done():
				t.Fatalf("R still has %s in its table", q.name)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
}
