//go:build unix

package interop_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/internal/interop"
	"github.com/wdht/wdht/krpc"
)

// Helpers for the BEP 44 and BEP 51 tests (bep44_test.go, bep51_test.go): item drivers
// on the real implementations' client code, raw get/put queries, and a small network of
// real nodes.

// startNetworkOf starts n real nodes of impl: the first alone, the others at the same
// time, each bootstrapping from the first.
func startNetworkOf(t *testing.T, impl string, n int) []*interop.Peer {
	t.Helper()
	opts := interop.Options{MaxSeconds: 3 * time.Minute}
	first := startPeer(t, impl, opts) // skips (or fails on CI) when impl is missing
	opts.Bootstrap = []netip.AddrPort{first.Addr}
	type started struct {
		p   *interop.Peer
		err error
	}
	ch := make(chan started, n-1)
	for range n - 1 {
		go func() {
			p, err := interop.Start(t.Context(), impl, opts)
			ch <- started{p, err}
		}()
	}
	peers := []*interop.Peer{first}
	var errs []error
	for range n - 1 {
		s := <-ch
		if s.err != nil {
			errs = append(errs, s.err)
			continue
		}
		cleanupPeer(t, s.p)
		peers = append(peers, s.p)
	}
	if len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	for _, p := range peers[1:] {
		t.Logf("started %v version %s (ready after %v)", p, p.Version, p.Ready.Sub(p.Started).Round(time.Millisecond))
	}
	return peers
}

func peerAddrsOf(ps []*interop.Peer) []netip.AddrPort {
	out := make([]netip.AddrPort, len(ps))
	for i, p := range ps {
		out[i] = p.Addr
	}
	return out
}

// testKey is the ed25519 key the mutable items of a test are signed with: a known seed,
// so that a driver (which gets the seed) signs with the same key.
func testKey(name string) (seed []byte, key ed25519.PrivateKey) {
	seed = make([]byte, ed25519.SeedSize)
	copy(seed, "wdht interop "+name)
	return seed, ed25519.NewKeyFromSeed(seed)
}

func randSuffix(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func mustImmutable(t *testing.T, v any) *dht.Item {
	t.Helper()
	it, err := dht.NewImmutableItem(v)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func mustMutable(t *testing.T, key ed25519.PrivateKey, salt string, seq int64, v any) *dht.Item {
	t.Helper()
	it, err := dht.NewMutableItem(key, []byte(salt), seq, v)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func mustBencode(t *testing.T, v any) bencode.Bytes {
	t.Helper()
	b, err := bencode.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Driver steps (see testdata/lt_item.py and testdata/bt_item.mjs).
func opPutImmutable(v bencode.Bytes) string { return "put-immutable:" + hex.EncodeToString(v) }
func opGetImmutable(target dht.ID) string   { return "get-immutable:" + target.String() }
func opGetMutable(pub ed25519.PublicKey, salt string) string {
	return "get-mutable:" + hex.EncodeToString(pub) + ":" + hex.EncodeToString([]byte(salt))
}

// opPutMutableLT is libtorrent's mutable put of a string value: libtorrent picks the
// sequence number itself (the newest it finds plus one).
func opPutMutableLT(salt, data string) string {
	return "put-mutable:" + hex.EncodeToString([]byte(salt)) + ":" + hex.EncodeToString([]byte(data))
}

// opPutMutableBT is bittorrent-dht's mutable put: sequence number and cas are the caller's.
func opPutMutableBT(salt string, seq int64, cas *int64, v bencode.Bytes) string {
	c := "-"
	if cas != nil {
		c = fmt.Sprint(*cas)
	}
	return fmt.Sprintf("put-mutable:%s:%d:%s:%s", hex.EncodeToString([]byte(salt)), seq, c, hex.EncodeToString(v))
}

func opSample(addr netip.AddrPort, target dht.ID) string {
	return fmt.Sprintf("sample:%s:%d:%v", addr.Addr(), addr.Port(), target)
}

// startItemClient starts the item driver of impl (libtorrent or bittorrent-dht), which
// joins through boot and runs ops in order, printing one RESULT line per step.
func startItemClient(t *testing.T, impl string, boot []netip.AddrPort, seed []byte, ops ...string) *interop.Peer {
	t.Helper()
	requireImpl(t, impl)
	dir := peersDir(t)
	var argv []string
	switch impl {
	case interop.Libtorrent:
		pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
		argv = []string{interop.Python, "-u", testdata(t, "lt_item.py"), "--peers-dir", dir,
			"--seed", hex.EncodeToString(seed), "--pubkey", hex.EncodeToString(pub)}
	case interop.BittorrentDHT:
		argv = []string{"node", testdata(t, "bt_item.mjs"), "--peers-dir", dir, "--seed", hex.EncodeToString(seed)}
	default:
		t.Fatalf("no item driver for %s", impl)
	}
	for _, op := range ops {
		argv = append(argv, "--op", op)
	}
	return startProcess(t, impl+"-item-client", argv, interop.Options{Bootstrap: boot, MaxSeconds: 2 * time.Minute})
}

// driverResult is one RESULT line of an item driver.
type driverResult struct {
	I        int      `json:"i"`
	Op       string   `json:"op"`
	OK       bool     `json:"ok"`
	Err      string   `json:"err"`
	Code     int      `json:"code"` // bittorrent-dht: the KRPC error code when every node refused
	Found    bool     `json:"found"`
	N        int      `json:"n"` // nodes that stored the item
	Target   string   `json:"target"`
	V        string   `json:"v"` // hex of the bencoded value
	Seq      *int64   `json:"seq"`
	FirstSeq *int64   `json:"first_seq"`
	Sig      string   `json:"sig"`
	Samples  []string `json:"samples"`
	Num      int      `json:"num"`
	Interval float64  `json:"interval"`
	Nodes    []string `json:"nodes"`
	Seconds  float64  `json:"seconds"`
	Line     string   `json:"-"`
}

// waitResult waits for the RESULT line of step i.
func waitResult(ctx context.Context, t *testing.T, drv *interop.Peer, i int) *driverResult {
	t.Helper()
	var res *driverResult
	_, err := drv.WaitFunc(ctx, func(s string) bool {
		js, ok := strings.CutPrefix(s, "RESULT ")
		if !ok {
			return false
		}
		var r driverResult
		if json.Unmarshal([]byte(js), &r) != nil || r.I != i {
			return false
		}
		r.Line = s
		res = &r
		return true
	})
	if err != nil {
		t.Fatalf("step %d: %v", i, err)
	}
	t.Logf("%s step %d: %s", drv.Name, i, res.Line)
	return res
}

func (r *driverResult) value(t *testing.T) bencode.Bytes {
	t.Helper()
	b, err := hex.DecodeString(r.V)
	if err != nil {
		t.Fatalf("step %d: bad value hex %q", r.I, r.V)
	}
	return b
}

// rawGet sends one get query from our node to addr.
func rawGet(ctx context.Context, n *dht.Node, addr netip.AddrPort, target dht.ID) (*krpc.Response, error) {
	a := &krpc.Args{}
	a.ID, a.Target = n.ID(), target
	return n.Server().Call(ctx, addr, &krpc.Query{Method: krpc.MethodGet, Args: a})
}

// rawPut sends one put query of it from our node to addr, bypassing every check Node.Put
// makes; cas is sent when not nil.
func rawPut(ctx context.Context, n *dht.Node, addr netip.AddrPort, it *dht.Item, token string, cas *int64) error {
	a := &krpc.Args{}
	a.ID, a.Token, a.V = n.ID(), token, it.V
	if it.Mutable {
		seq := it.Seq
		a.K, a.Salt, a.Seq, a.Sig = it.K, it.Salt, &seq, it.Sig
	}
	if cas != nil {
		a.Cas, a.CasSet = *cas, true
	}
	_, err := n.Server().Call(ctx, addr, &krpc.Query{Method: krpc.MethodPut, Args: a})
	return err
}

// putOutcome names what a put got back: "ok", the KRPC error code, or "no reply".
func putOutcome(err error) string {
	var ke *krpc.Error
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ke):
		return fmt.Sprint(ke.Code)
	case errors.Is(err, krpc.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "no reply"
	default:
		return "error: " + err.Error()
	}
}

// itemFromGet is what a get query to one node returned for a target.
func itemFromGet(r *krpc.Return, salt []byte) *dht.Item {
	if len(r.V) == 0 {
		return nil
	}
	it := &dht.Item{V: r.V}
	if r.K != ([32]byte{}) {
		it.Mutable, it.K, it.Salt, it.Sig = true, r.K, salt, r.Sig
		if r.Seq != nil {
			it.Seq = *r.Seq
		}
	}
	return it
}

func casOf(v int64) *int64 { return &v }
