package signals

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"

	akrpc "github.com/anacrolix/dht/v2/krpc"
	"github.com/anacrolix/torrent/bencode"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/memory"
)

// jsGetPeers is a responder that answers get_peers as the JS (webtorrent-dht 0.18.6,
// k-rpc-socket-webrtc) does: it returns all the peers it stores, relays signals[i] to
// values[i] with peer_connection, and drops the entries whose relay failed. With more
// peers than signals the JS throws (§11 B1: `response.values(0, n)`, a Node.js crash):
// here the test fails and nothing is answered.
type jsGetPeers struct {
	t      *testing.T
	srv    *krpc.Server
	id     dht.ID
	values []netip.AddrPort

	mu      sync.Mutex
	got     [][]bencode.Bytes // the signals of each get_peers
	answers [][]bencode.Bytes // what each relay returned (nil for a failure)
}

func (j *jsGetPeers) ServeKRPC(ctx context.Context, q *krpc.Query) (*krpc.Response, error) {
	switch q.Method {
	case krpc.MethodPing:
		return &krpc.Response{Return: ret(j.id)}, nil
	case krpc.MethodGetPeers:
	default:
		return nil, krpc.ErrMethodUnknown
	}
	sigs := decodeList(q.Args.Extra["signals"])
	j.mu.Lock()
	j.got = append(j.got, sigs)
	j.mu.Unlock()
	if len(j.values) > len(sigs) {
		j.t.Errorf("get_peers with %d signals to a JS node storing %d peers: it would crash (B1)", len(sigs), len(j.values))
		return nil, krpc.ErrNoReply
	}
	answers := make([]bencode.Bytes, len(j.values))
	var wg sync.WaitGroup
	for i, v := range j.values {
		wg.Go(func() {
			a := &krpc.Args{Extra: krpc.Extra{"signal": sigs[i]}}
			a.ID = j.id
			resp, err := j.srv.Call(ctx, v, &krpc.Query{Method: MethodPeerConnection, Args: a})
			if err == nil {
				answers[i] = resp.Return.Extra["signal"]
			}
		})
	}
	wg.Wait()
	j.mu.Lock()
	j.answers = append(j.answers, answers)
	j.mu.Unlock()
	r := ret(j.id)
	var kept []bencode.Bytes
	for i, v := range j.values {
		var na akrpc.NodeAddr
		na.FromAddrPort(v)
		r.Values = append(r.Values, na)
		if answers[i] != nil {
			kept = append(kept, answers[i]) // bencode drops the JS's nulls
		}
	}
	tok := "tok"
	r.Token = &tok
	r.Extra = krpc.Extra{"signals": encodeList(kept)}
	return &krpc.Response{Return: r}, nil
}

// Our get_peers carries, after its offers, entries {id: <responder>} up to
// Config.PeerSignals, so that a JS node storing more peers than we make offers answers
// instead of crashing (§11 B1). It relays every entry to one of its peers; a peer of ours
// answers an entry naming the relaying node with the shortcut, as the JS does, and the
// real offers still connect us to two of the peers.
func TestGetPeersPaddedForJSResponder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWebNet(t, memory.LinkConfig{})
		j := &jsGetPeers{t: t, id: idOf(0x77)}
		j.srv = w.rawNodeConfig(j, &krpc.Config{Version: "-"}) // the JS sends no "v"
		raddr := j.srv.Transport().LocalAddr()
		var targets []*dht.Node
		for range 3 {
			n := w.add()
			w.fake.Dial(n.Addr(), raddr)
			targets = append(targets, n)
			j.values = append(j.values, n.Addr())
		}
		q := w.add()
		w.fake.Dial(q.Addr(), raddr)
		if id, err := q.Ping(t.Context(), raddr); err != nil || id != j.id {
			t.Fatalf("ping: %v %v", id, err)
		}
		var peers []netip.AddrPort
		if _, err := q.GetPeers(t.Context(), dht.RandomID(), func(p netip.AddrPort, _ dht.NodeInfo) bool { peers = append(peers, p); return true }); err != nil {
			t.Fatal(err)
		}
		if len(j.got) != 1 {
			t.Fatalf("%d get_peers", len(j.got))
		}
		sigs := j.got[0]
		if len(sigs) != DefaultPeerSignals {
			t.Errorf("get_peers carried %d entries, want %d", len(sigs), DefaultPeerSignals)
		}
		for i, raw := range sigs {
			s := decodeSignal(raw)
			switch {
			case s == nil:
				t.Fatalf("entry %d %q", i, raw)
			case i < 2 && (s.Type != "offer" || s.ID != idStr(q.ID())):
				t.Errorf("entry %d %+v, want our offer", i, s)
			case i >= 2 && string(raw) != string(encodeShortcut(j.id)):
				t.Errorf("entry %d %q, want {id: responder}", i, raw)
			}
		}
		// The target that got an entry {id: responder} answered the shortcut at once.
		if a := decodeSignal(j.answers[0][2]); a == nil || a.Type != "" || a.ID != idStr(targets[2].ID()) {
			t.Errorf("the third peer answered %q to {id: responder}, want the shortcut", j.answers[0][2])
		}
		// The two offers connected us to two of the peers; the third we are not connected
		// to, so its shortcut is dropped.
		if len(peers) != 2 {
			t.Errorf("found %d peers %v, want 2", len(peers), peers)
		}
		for _, p := range peers {
			if id, err := q.Ping(t.Context(), p); err != nil || (id != targets[0].ID() && id != targets[1].ID()) {
				t.Errorf("peer %v is %v (%v)", p, id, err)
			}
		}
	})
}

// Padding needs the responder's ID; our first query to an address (a bootstrap address)
// carries the offers only. find_node and get carry the offers only. A responder that
// answers with our "v" (one of ours) gets the offers only.
func TestPaddingOnlyForKnownResponders(t *testing.T) {
	for _, c := range []struct {
		name    string
		version string
		padded  int
	}{{"JS", "-", DefaultPeerSignals}, {"other", "LT\x01\x02", DefaultPeerSignals}, {"ours", "", 2}} {
		t.Run(c.name, func(t *testing.T) { testPadding(t, c.version, c.padded) })
	}
}

func testPadding(t *testing.T, version string, padded int) {
	synctest.Test(t, func(t *testing.T) {
		w := newWebNet(t, memory.LinkConfig{})
		var mu sync.Mutex
		counts := map[string][]int{}
		raw := w.rawNodeConfig(krpc.HandlerFunc(func(ctx context.Context, q *krpc.Query) (*krpc.Response, error) {
			mu.Lock()
			counts[q.Method] = append(counts[q.Method], len(decodeList(q.Args.Extra["signals"])))
			mu.Unlock()
			return &krpc.Response{Return: ret(idOf(9))}, nil
		}), &krpc.Config{Version: version})
		a := w.add()
		raddr := raw.Transport().LocalAddr()
		w.fake.Dial(a.Addr(), raddr)
		call := func(method string) {
			args := &krpc.Args{}
			args.ID, args.InfoHash, args.Target = a.ID(), idOf(1), idOf(1)
			a.Server().Call(t.Context(), raddr, &krpc.Query{Method: method, Args: args})
		}
		call(krpc.MethodGetPeers) // the responder's ID is not known yet
		call(krpc.MethodFindNode)
		call(krpc.MethodGet)
		call(krpc.MethodGetPeers)
		want := map[string][]int{krpc.MethodGetPeers: {2, padded}, krpc.MethodFindNode: {2}, krpc.MethodGet: {2}}
		for m, c := range want {
			if g := counts[m]; len(g) != len(c) || g[0] != c[0] || g[len(g)-1] != c[len(c)-1] {
				t.Errorf("%s carried %v entries, want %v", m, g, c)
			}
		}
	})
}

func TestPeerSignalsConfig(t *testing.T) {
	for _, c := range []struct{ in, want int }{{0, DefaultPeerSignals}, {-1, 0}, {1, 0}, {10, 10}} {
		e, err := New(NewFakeNetwork(nil).Signaler(netip.AddrPort{}), &Config{PeerSignals: c.in})
		if err != nil {
			t.Fatal(err)
		}
		if got := e.padding(2); got != c.want-min(c.want, 2) {
			t.Errorf("PeerSignals %d: %d padding entries after 2 offers, want %d", c.in, got, c.want-min(c.want, 2))
		}
	}
}
