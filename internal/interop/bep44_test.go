//go:build unix

package interop_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/internal/interop"
)

// TestBEP44OursToTheirs: our node joins a network of three real nodes of one
// implementation and puts an immutable and a salted mutable item (Node.Put). Then:
//
//   - every one of their nodes stores both (asked directly with get);
//   - a fresh node of ours, which joins afterwards, reads both with Node.Get from their
//     nodes alone (our first node never stores an item it puts, so nothing comes from ours);
//   - the implementation's own client code (testdata/lt_item.py, testdata/bt_item.mjs) reads
//     both, from a client that joins through their nodes only;
//   - the BEP 44 sequence-number and cas rules, checked against each of their nodes with
//     raw put queries (see checkSeqCAS), and Node.Put with PutOptions.CAS against them
//     (before the fresh node and the client join, so that their nodes are the only
//     storage).
//
// anacrolix takes part without a client driver (its storage only; reading with its client
// would need one more Go module built). It refuses BEP 44 immutable puts without "seq"
// ([203, "expected seq argument"], REPORT.md finding 3), so our immutable Put fails against
// it: the test asserts that instead of the readback.
func TestBEP44OursToTheirs(t *testing.T) {
	t.Parallel()
	for _, impl := range interop.Impls {
		t.Run(impl, func(t *testing.T) {
			t.Parallel()
			testBEP44OursToTheirs(t, impl)
		})
	}
}

func testBEP44OursToTheirs(t *testing.T, impl string) {
	theirs := startNetworkOf(t, impl, 3)
	addrs := peerAddrsOf(theirs)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	// Everything here sends from 127.0.0.1: no per-source limit.
	cfg := &dht.Config{KRPC: noSourceLimit}
	ours := newNode(t, "ours", cfg)
	if _, err := ours.Bootstrap(ctx, addrs...); err != nil {
		t.Fatalf("Bootstrap from %v: %v", addrs, err)
	}

	seed, key := testKey("bep44 ours->theirs " + impl)
	pub := key.Public().(ed25519.PublicKey)
	imm := mustImmutable(t, "wdht immutable item for "+impl+" "+randSuffix(6))
	salt := "wdht-salt-" + randSuffix(4)
	mut := mustMutable(t, key, salt, 1, "wdht mutable item for "+impl+" "+randSuffix(6))

	// The immutable item.
	immStored := impl != interop.Anacrolix
	res, err := ours.Put(ctx, imm, nil)
	if immStored {
		if err != nil {
			t.Fatalf("Put(%v): %v", imm, err)
		}
		t.Logf("Put(%v): stored on %d nodes, lookup %d queries/%d responses", imm, res.Stored, res.Lookup.Queries, res.Lookup.Responses)
		if res.Stored != len(theirs) || len(res.Errors) > 0 {
			t.Errorf("Put(%v): stored on %d nodes (want all %d of theirs), errors %v", imm, res.Stored, len(theirs), res.Errors)
		}
	} else {
		// anacrolix v2.23.0: a put without "seq" is a protocol error, so every node refuses it.
		t.Logf("Put(%v) to anacrolix nodes: %v (errors %v)", imm, err, res.Errors)
		if err == nil || res.Stored != 0 || len(res.Errors) != len(theirs) {
			t.Errorf("Put(%v) to anacrolix nodes: err %v, stored %d, errors %v; want every node to refuse it", imm, err, res.Stored, res.Errors)
		}
		for ni, e := range res.Errors {
			if putOutcome(e) != "203" || !strings.Contains(e.Error(), "expected seq argument") {
				t.Errorf("anacrolix node %v refused our immutable put with %v, want [203 expected seq argument]", ni, e)
			}
		}
	}

	// The salted mutable item.
	res, err = ours.Put(ctx, mut, nil)
	if err != nil {
		t.Fatalf("Put(%v): %v", mut, err)
	}
	t.Logf("Put(%v, salt %q): stored on %d nodes, lookup %d queries/%d responses", mut, salt, res.Stored, res.Lookup.Queries, res.Lookup.Responses)
	if res.Stored != len(theirs) || len(res.Errors) > 0 {
		t.Errorf("Put(%v): stored on %d nodes (want all %d of theirs), errors %v", mut, res.Stored, len(theirs), res.Errors)
	}
	if n, _ := ours.Items().Len(); n != 0 {
		t.Fatalf("our node stores %d items after its own Puts; the readbacks below assume it stores none", n)
	}

	// Every one of their nodes stores both: ask each directly.
	for _, p := range theirs {
		for _, want := range []*dht.Item{imm, mut} {
			if want == imm && !immStored {
				continue
			}
			r, err := rawGet(ctx, ours, p.Addr, want.Target())
			if err != nil {
				t.Errorf("get %v from %v: %v", want, p, err)
				continue
			}
			got := itemFromGet(r.Return, want.Salt)
			t.Logf("get %v from %v: token %s, seq %v, holds it: %v", want.Target(), p, fmtToken(r.Return.Token), fmtSeq(r.Return.Seq), got != nil)
			if err := sameItem(got, want); err != nil {
				t.Errorf("%v: get %v: %v", p, want, err)
			}
		}
	}

	// The seq and cas rules, on another item, while their nodes (and our putting node) are
	// the whole network: every Node.Put there reaches exactly their nodes.
	checkSeqCAS(ctx, t, impl, ours, theirs, key)
	if t.Failed() {
		return
	}

	// A fresh node of ours reads both from their nodes.
	fresh := newNode(t, "fresh", cfg)
	if _, err := fresh.Bootstrap(ctx, addrs...); err != nil {
		t.Fatalf("fresh node's Bootstrap: %v", err)
	}
	if immStored {
		gr, err := fresh.Get(ctx, imm.Target(), nil)
		if err != nil {
			t.Errorf("fresh node's Get(%v): %v", imm.Target(), err)
		} else if err := sameItem(gr.Item, imm); err != nil {
			t.Errorf("fresh node's Get(%v): %v", imm.Target(), err)
		} else {
			t.Logf("fresh node's Get(%v): %d holder(s) answered, %d queries", imm.Target(), gr.Holders, gr.Lookup.Queries)
		}
	}
	gr, err := fresh.Get(ctx, mut.Target(), &dht.GetOptions{Salt: []byte(salt), Key: pub})
	if err != nil {
		t.Errorf("fresh node's Get(%v): %v", mut.Target(), err)
	} else if err := sameItem(gr.Item, mut); err != nil {
		t.Errorf("fresh node's Get(%v): %v", mut.Target(), err)
	} else {
		t.Logf("fresh node's Get(%v): seq %d from %d holder(s), %d queries", mut.Target(), gr.Item.Seq, gr.Holders, gr.Lookup.Queries)
		if gr.Holders != len(theirs) {
			t.Errorf("fresh node's Get(%v): %d holders, want their %d nodes", mut.Target(), gr.Holders, len(theirs))
		}
	}
	// GetOptions.Seq asks only for a newer version: there is none (libtorrent and anacrolix
	// leave the value out of their answers, bittorrent-dht ignores seq and Get drops its
	// older version itself); below it, there is.
	if _, err := fresh.Get(ctx, mut.Target(), &dht.GetOptions{Salt: []byte(salt), Key: pub, Seq: casOf(mut.Seq)}); !errors.Is(err, dht.ErrNotFound) {
		t.Errorf("fresh node's Get(%v, seq > %d): %v, want ErrNotFound", mut.Target(), mut.Seq, err)
	}
	if gr, err := fresh.Get(ctx, mut.Target(), &dht.GetOptions{Salt: []byte(salt), Key: pub, Seq: casOf(mut.Seq - 1)}); err != nil || gr.Item.Seq != mut.Seq {
		t.Errorf("fresh node's Get(%v, seq > %d): %v, %v; want seq %d", mut.Target(), mut.Seq-1, gr, err, mut.Seq)
	}

	// Their client reads both (its lookups start from their nodes only).
	if impl != interop.Anacrolix {
		drv := startItemClient(t, impl, addrs, seed, opGetImmutable(imm.Target()), opGetMutable(pub, salt))
		r := waitResult(ctx, t, drv, 0)
		if !r.OK || !r.Found || !bytes.Equal(r.value(t), imm.V) {
			t.Errorf("%s's client did not read our immutable item %q: %s", impl, imm.V, r.Line)
		}
		r = waitResult(ctx, t, drv, 1)
		if !r.OK || !r.Found || !bytes.Equal(r.value(t), mut.V) || r.Seq == nil || *r.Seq != mut.Seq {
			t.Errorf("%s's client did not read our mutable item %q seq %d: %s", impl, mut.V, mut.Seq, r.Line)
		}
	}

}

// fmtSeq formats an optional sequence number.
func fmtSeq(s *int64) string {
	if s == nil {
		return "none"
	}
	return fmt.Sprint(*s)
}

// sameItem reports how got differs from want.
func sameItem(got, want *dht.Item) error {
	switch {
	case got == nil:
		return errors.New("no item")
	case !bytes.Equal(got.V, want.V):
		return fmt.Errorf("value %q, want %q", got.V, want.V)
	case got.Mutable != want.Mutable:
		return fmt.Errorf("mutable %v, want %v", got.Mutable, want.Mutable)
	case !got.Mutable:
		return nil
	case got.K != want.K || got.Seq != want.Seq || got.Sig != want.Sig:
		return fmt.Errorf("key %x seq %d sig %x…, want key %x seq %d sig %x…", got.K[:4], got.Seq, got.Sig[:4], want.K[:4], want.Seq, want.Sig[:4])
	}
	return got.Verify()
}

// seqCase is one raw put in checkSeqCAS.
type seqCase struct {
	name string
	// put returns the item to put and the cas to send, given the version the node holds
	// and a function that signs a new version of it.
	put func(cur *dht.Item, sign func(seq int64, what string) *dht.Item) (*dht.Item, *int64)
	// token: "" the node's own for the target, "bad" a made-up one, "other" the node's
	// token for another target.
	token string
	want  map[string]string // impl -> "ok", the KRPC error code, or "no reply"
	// keeps: the node must still hold the version it had before (even when it said ok).
	keeps bool
}

// seqCases are the raw puts checkSeqCAS sends to each of their nodes, in this order, with
// what each implementation answers. Their rules, as seen here and in their source:
//
//   - libtorrent 2.0.8 refuses a lower seq (302) and, when cas is sent and differs from its
//     stored seq, 301. It answers an equal seq with success whatever the value, and stores
//     nothing then (its storage replaces an item only for a higher seq): a put of the same
//     seq with another value is silently ignored, not refused (BEP 44: it must be
//     rejected). A bad signature gets 206. Its tokens are 4 bytes and bound to the target:
//     one from a get of another target is refused (203).
//   - bittorrent-dht 11.0.12 refuses every seq that is not higher than the stored one with
//     302, the very same version too (BEP 44: the same seq and value should refresh the
//     item), and a mismatching cas with 301. It does not answer a put with a bad signature
//     at all (BEP 44: 206). Its tokens are 20 bytes, per IP, not per target.
//   - anacrolix v2.23.0 refuses a lower seq, and an equal seq with another value, with 302
//     and accepts the same version again, but its cas check is not BEP 44's: it compares
//     the put's cas with the cas of the put that stored the current version
//     (bep44.CheckIncoming: stored.Cas != incoming.Cas), not with the stored seq, and skips
//     the check when that stored cas is 0 (absent). So a wrong cas is accepted when the
//     stored version came from a put without cas, and once a put with cas X is stored,
//     every later put needs cas X (the right cas, the stored seq, gets 301). A put with a
//     bad token gets no answer at all. Its tokens are 20 bytes, per IP.
var seqCases = []seqCase{
	{name: "lower seq", keeps: true,
		put: func(cur *dht.Item, sign func(int64, string) *dht.Item) (*dht.Item, *int64) {
			return sign(cur.Seq-1, "lower seq"), nil
		},
		want: map[string]string{interop.Libtorrent: "302", interop.BittorrentDHT: "302", interop.Anacrolix: "302"}},
	{name: "same seq, same value", keeps: true,
		put:  func(cur *dht.Item, _ func(int64, string) *dht.Item) (*dht.Item, *int64) { return cur, nil },
		want: map[string]string{interop.Libtorrent: "ok", interop.BittorrentDHT: "302", interop.Anacrolix: "ok"}},
	{name: "same seq, other value", keeps: true,
		put: func(cur *dht.Item, sign func(int64, string) *dht.Item) (*dht.Item, *int64) {
			return sign(cur.Seq, "other value"), nil
		},
		want: map[string]string{interop.Libtorrent: "ok", interop.BittorrentDHT: "302", interop.Anacrolix: "302"}},
	{name: "bad signature (seq+1)", keeps: true,
		put: func(cur *dht.Item, sign func(int64, string) *dht.Item) (*dht.Item, *int64) {
			it := sign(cur.Seq+1, "bad signature")
			it.Sig[0] ^= 0xff
			return it, nil
		},
		want: map[string]string{interop.Libtorrent: "206", interop.BittorrentDHT: "no reply", interop.Anacrolix: "206"}},
	{name: "bad token (seq+1)", token: "bad", keeps: true,
		put: func(cur *dht.Item, sign func(int64, string) *dht.Item) (*dht.Item, *int64) {
			return sign(cur.Seq+1, "bad token"), nil
		},
		want: map[string]string{interop.Libtorrent: "203", interop.BittorrentDHT: "203", interop.Anacrolix: "no reply"}},
	{name: "token of another target (seq+1)", token: "other",
		put: func(cur *dht.Item, sign func(int64, string) *dht.Item) (*dht.Item, *int64) {
			return sign(cur.Seq+1, "token of another target"), nil
		},
		want: map[string]string{interop.Libtorrent: "203", interop.BittorrentDHT: "ok", interop.Anacrolix: "ok"}},
	{name: "wrong cas (seq+1, cas seq-1)",
		put: func(cur *dht.Item, sign func(int64, string) *dht.Item) (*dht.Item, *int64) {
			return sign(cur.Seq+1, "wrong cas"), casOf(cur.Seq - 1)
		},
		want: map[string]string{interop.Libtorrent: "301", interop.BittorrentDHT: "301", interop.Anacrolix: "ok"}},
	{name: "right cas (seq+1, cas seq)",
		put: func(cur *dht.Item, sign func(int64, string) *dht.Item) (*dht.Item, *int64) {
			return sign(cur.Seq+1, "right cas"), casOf(cur.Seq)
		},
		want: map[string]string{interop.Libtorrent: "ok", interop.BittorrentDHT: "ok", interop.Anacrolix: "301"}},
}

// checkSeqCAS checks the BEP 44 sequence-number and cas rules against each of their nodes:
// a mutable item is put at seq 5 with Node.Put, then every node gets the raw puts of
// seqCases, in order, each with a token from a get just before (the answer is asserted per
// implementation, and the version the node holds afterwards is read back); finally
// Node.Put runs against all of them with and without PutOptions.CAS.
func checkSeqCAS(ctx context.Context, t *testing.T, impl string, ours *dht.Node, theirs []*interop.Peer, key ed25519.PrivateKey) {
	salt := []byte("wdht-cas-" + randSuffix(4))
	sign := func(seq int64, what string) *dht.Item {
		it, err := dht.NewMutableItem(key, salt, seq, fmt.Sprintf("%s at seq %d", what, seq))
		if err != nil {
			panic(err) // only a bug in this test
		}
		return it
	}
	base := sign(5, "base")
	res, err := ours.Put(ctx, base, nil)
	if err != nil || res.Stored != len(theirs) {
		t.Fatalf("Put(%v): stored on %d nodes, %v (errors %v)", base, res.Stored, err, res.Errors)
	}
	target := base.Target()

	// Each node runs the cases on its own, in parallel with the others (the cases that get
	// no reply wait out a timeout).
	type row struct {
		got      []string // outcome per case
		seqAfter []int64  // the seq the node holds after each case
		token    string
		err      error
	}
	rows := make([]row, len(theirs))
	var wg sync.WaitGroup
	for i, p := range theirs {
		wg.Go(func() {
			rw := &rows[i]
			current := func() (*dht.Item, string, error) {
				r, err := rawGet(ctx, ours, p.Addr, target)
				if err != nil {
					return nil, "", fmt.Errorf("get: %w", err)
				}
				it := itemFromGet(r.Return, salt)
				if it == nil || r.Return.Token == nil {
					return nil, "", fmt.Errorf("get: no item or no token (seq %s, token %s)", fmtSeq(r.Return.Seq), fmtToken(r.Return.Token))
				}
				return it, *r.Return.Token, it.Verify()
			}
			cur, tok, err := current()
			if err != nil {
				rw.err = err
				return
			}
			rw.token = fmtToken(&tok)
			for _, c := range seqCases {
				it, cas := c.put(cur, sign)
				token := tok
				switch c.token {
				case "bad":
					token = strings.Repeat("\x55", len(tok))
				case "other":
					r, err := rawGet(ctx, ours, p.Addr, dht.RandomID())
					if err != nil || r.Return.Token == nil {
						rw.err = fmt.Errorf("%s: get of another target: %v", c.name, err)
						return
					}
					token = *r.Return.Token
				}
				// A reply comes within milliseconds on loopback; the cases that get none wait
				// this long.
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				err := rawPut(cctx, ours, p.Addr, it, token, cas)
				cancel()
				rw.got = append(rw.got, putOutcome(err))
				before := cur
				if cur, tok, err = current(); err != nil {
					rw.err = fmt.Errorf("after %s: %w", c.name, err)
					return
				}
				rw.seqAfter = append(rw.seqAfter, cur.Seq)
				if c.keeps && (cur.Seq != before.Seq || !bytes.Equal(cur.V, before.V)) {
					rw.err = fmt.Errorf("after %s (answered %s) it holds seq %d %q, not seq %d %q as before",
						c.name, rw.got[len(rw.got)-1], cur.Seq, cur.V, before.Seq, before.V)
					return
				}
			}
		})
	}
	wg.Wait()
	for i, p := range theirs {
		rw := rows[i]
		t.Logf("%v (token %s):", p, rw.token)
		for j, got := range rw.got {
			c := seqCases[j]
			t.Logf("  %-34s -> %-8s (holds seq %d after)", c.name, got, rw.seqAfter[j])
			if want := c.want[impl]; got != want {
				t.Errorf("%v: put with %s: answered %s, want %s", p, c.name, got, want)
			}
		}
		if rw.err != nil {
			t.Errorf("%v: %v", p, rw.err)
		}
	}
	if t.Failed() {
		return
	}

	// Node.Put against their nodes, which all hold the same version now.
	opts := &dht.GetOptions{Salt: salt, Key: key.Public().(ed25519.PublicKey)}
	stored := func() int64 {
		t.Helper()
		gr, err := ours.Get(ctx, target, opts)
		if err != nil {
			t.Fatalf("Get(%v): %v", target, err)
		}
		if gr.Holders != len(theirs) {
			t.Errorf("Get(%v): seq %d held by %d nodes, want all %d", target, gr.Item.Seq, gr.Holders, len(theirs))
		}
		return gr.Item.Seq
	}
	// put runs Node.Put and checks that every node stored it ("stored") or that every node
	// refused it with the error code want.
	put := func(what string, it *dht.Item, cas *int64, want string) {
		t.Helper()
		var po *dht.PutOptions
		if cas != nil {
			po = &dht.PutOptions{CAS: cas}
		}
		res, err := ours.Put(ctx, it, po)
		t.Logf("Node.Put %s (seq %d, cas %s): stored %d, errors %v, err %v", what, it.Seq, fmtSeq(cas), res.Stored, res.Errors, err)
		if want == "stored" {
			if err != nil || res.Stored != len(theirs) {
				t.Errorf("Node.Put %s: stored on %d of %d nodes, err %v; want all", what, res.Stored, len(theirs), err)
			}
			return
		}
		if err == nil || res.Stored != 0 || len(res.Errors) != len(theirs) {
			t.Errorf("Node.Put %s: stored on %d nodes, err %v, errors %v; want every node to refuse it with %s", what, res.Stored, err, res.Errors, want)
		}
		for ni, e := range res.Errors {
			if putOutcome(e) != want {
				t.Errorf("Node.Put %s: node %v answered %v, want %s", what, ni, e, want)
			}
		}
		wantErr := map[string]error{"301": dht.ErrCASMismatch, "302": dht.ErrSeqTooLow}[want]
		if !errors.Is(err, wantErr) {
			t.Errorf("Node.Put %s: error %v does not match %v", what, err, wantErr)
		}
	}
	byImpl := func(lt, bt, ana string) string {
		return map[string]string{interop.Libtorrent: lt, interop.BittorrentDHT: bt, interop.Anacrolix: ana}[impl]
	}

	s := stored()
	// The right cas. anacrolix refuses it: its stored version came from the "wrong cas" put,
	// and it wants that put's cas again.
	put("with the right cas", sign(s+1, "Node.Put right cas"), casOf(s), byImpl("stored", "stored", "301"))
	// The stored version again (a refresh, as publishers do every hour). bittorrent-dht
	// refuses it (302); anacrolix takes it and so forgets the cas it stored.
	s = stored()
	gr, err := ours.Get(ctx, target, opts)
	if err != nil {
		t.Fatalf("Get(%v): %v", target, err)
	}
	put("of the stored version again", gr.Item, nil, byImpl("stored", "302", "stored"))
	// The right cas once more, now accepted by all.
	put("with the right cas", sign(s+1, "Node.Put right cas 2"), casOf(s), "stored")
	// A stale cas: a writer that read seq s before the put above. anacrolix takes it (the
	// stored put's cas was s too): the lost update cas exists to prevent.
	put("with a stale cas", sign(s+2, "Node.Put stale cas"), casOf(s), byImpl("301", "301", "stored"))
	// An older version: Node.Put refuses it itself, before any put.
	s = stored()
	res, err = ours.Put(ctx, sign(1, "Node.Put old"), nil)
	t.Logf("Node.Put of seq 1 while seq %d is stored: %v", s, err)
	if !errors.Is(err, dht.ErrSeqTooLow) || res.Stored != 0 || len(res.Errors) != 0 || res.Newest == nil || res.Newest.Seq != s {
		t.Errorf("Node.Put of an older version: err %v, stored %d, errors %v, newest %v; want ErrSeqTooLow before any put, newest seq %d",
			err, res.Stored, res.Errors, res.Newest, s)
	}
}

// TestBEP44TheirsToOurs: a real implementation's client (testdata/lt_item.py,
// testdata/bt_item.mjs) joins a network of two of our nodes. It first reads an immutable
// and a salted mutable item that only our storage holds (put by one of our nodes, stored on
// the other), then puts an immutable item (a dictionary) and a salted mutable item of its
// own: both our nodes store them and a fresh node of ours reads them with Node.Get
// (GetOptions.Salt, and Key = the client's public key).
//
// Their clients' puts also meet our sequence-number and cas rules: libtorrent's client
// picks seq itself (the newest it finds, plus one), so a second put must come out as seq 2
// after reading seq 1 from our nodes; bittorrent-dht's client sends the seq and cas it is
// given, so it also puts a lower seq (our nodes answer 302), a wrong cas (301), the right
// cas, the same version again (a refresh, accepted) and the same seq with another value
// (302), and reports what came back.
func TestBEP44TheirsToOurs(t *testing.T) {
	t.Parallel()
	for _, impl := range []string{interop.Libtorrent, interop.BittorrentDHT} {
		t.Run(impl, func(t *testing.T) {
			t.Parallel()
			testBEP44TheirsToOurs(t, impl)
		})
	}
}

func testBEP44TheirsToOurs(t *testing.T, impl string) {
	requireImpl(t, impl)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cfg := &dht.Config{KRPC: noSourceLimit}
	n1 := newNode(t, "ours1", cfg)
	n2 := newNode(t, "ours2", cfg)
	if _, err := n2.Bootstrap(ctx, n1.Addr()); err != nil {
		t.Fatalf("ours2 Bootstrap: %v", err)
	}
	ours := []*dht.Node{n1, n2}

	// First their client reads items of ours that only our second node stores (a node
	// never stores what it puts itself), so they can come from our storage alone.
	_, ourKey := testKey("bep44 ours for " + impl)
	ourPub := ourKey.Public().(ed25519.PublicKey)
	xSalt := "wdht-for-" + impl + "-" + randSuffix(4)
	xImm := mustImmutable(t, "wdht item for "+impl+"'s client "+randSuffix(6))
	xMut := mustMutable(t, ourKey, xSalt, 3, "wdht mutable item for "+impl+"'s client "+randSuffix(6))
	for _, it := range []*dht.Item{xImm, xMut} {
		if res, err := n1.Put(ctx, it, nil); err != nil || res.Stored != 1 {
			t.Fatalf("ours1 Put(%v): %v, stored on %d nodes; want ours2", it, err, res.Stored)
		}
	}
	if n, _ := n1.Items().Len(); n != 0 {
		t.Fatalf("ours1 stores %d items after its own Puts, want none", n)
	}
	ops := []string{opGetImmutable(xImm.Target()), opGetMutable(ourPub, xSalt)}
	const firstPut = 2 // the step of their immutable put

	seed, key := testKey("bep44 theirs->ours " + impl)
	pub := key.Public().(ed25519.PublicKey)
	var k [32]byte
	copy(k[:], pub)
	salt := impl + "-salt-" + randSuffix(4)
	target := dht.MutableTarget(k, []byte(salt))
	immV := mustBencode(t, map[string]any{"from": impl, "n": 42, "r": randSuffix(6), "l": []any{"a", 1}})
	immTarget := dht.ImmutableTarget(immV)

	type wantPut struct {
		step int
		ok   bool
		code int    // bittorrent-dht: the error code reported when every node refused
		seq  int64  // what the put published
		v    string // and its value (a string)
	}
	var puts []wantPut
	switch impl {
	case interop.Libtorrent:
		v1, v2 := "libtorrent mutable v1 "+randSuffix(4), "libtorrent mutable v2 "+randSuffix(4)
		ops = append(ops, opPutImmutable(immV), opPutMutableLT(salt, v1), opPutMutableLT(salt, v2))
		puts = []wantPut{{step: 1, ok: true, seq: 1, v: v1}, {step: 2, ok: true, seq: 2, v: v2}}
	case interop.BittorrentDHT:
		enc := func(s string) bencode.Bytes { return mustBencode(t, s) }
		v5, v4, v6, v6b := "bt v5 "+randSuffix(4), "bt v4", "bt v6 "+randSuffix(4), "bt v6 other"
		ops = append(ops, opPutImmutable(immV),
			opPutMutableBT(salt, 5, nil, enc(v5)),
			opPutMutableBT(salt, 4, nil, enc(v4)),      // lower seq: 302
			opPutMutableBT(salt, 6, casOf(4), enc(v6)), // wrong cas: 301
			opPutMutableBT(salt, 6, casOf(5), enc(v6)), // right cas
			opPutMutableBT(salt, 6, nil, enc(v6)),      // the same version again: a refresh
			opPutMutableBT(salt, 6, nil, enc(v6b)),     // same seq, other value: 302
		)
		puts = []wantPut{
			{step: 1, ok: true, seq: 5, v: v5},
			{step: 2, code: 302},
			{step: 3, code: 301},
			{step: 4, ok: true, seq: 6, v: v6},
			{step: 5, ok: true, seq: 6, v: v6},
			{step: 6, code: 302},
		}
	}
	drv := startItemClient(t, impl, []netip.AddrPort{n1.Addr(), n2.Addr()}, seed, ops...)

	r := waitResult(ctx, t, drv, 0)
	if !r.OK || !r.Found || !bytes.Equal(r.value(t), xImm.V) {
		t.Errorf("%s's client did not read our immutable item %q from ours2: %s", impl, xImm.V, r.Line)
	}
	r = waitResult(ctx, t, drv, 1)
	if !r.OK || !r.Found || !bytes.Equal(r.value(t), xMut.V) || r.Seq == nil || *r.Seq != xMut.Seq {
		t.Errorf("%s's client did not read our mutable item %q seq %d from ours2: %s", impl, xMut.V, xMut.Seq, r.Line)
	}

	r = waitResult(ctx, t, drv, firstPut)
	if !r.OK || r.N < len(ours) || r.Target != immTarget.String() {
		t.Errorf("%s's immutable put: %s; want ok on at least our %d nodes, target %v", impl, r.Line, len(ours), immTarget)
	}
	var last wantPut
	for _, w := range puts {
		r := waitResult(ctx, t, drv, firstPut+w.step)
		if w.ok {
			last = w
			if !r.OK || r.N < len(ours) || r.Seq == nil || *r.Seq != w.seq {
				t.Errorf("%s's mutable put step %d: %s; want ok on at least our %d nodes with seq %d", impl, w.step, r.Line, len(ours), w.seq)
			}
		} else if r.OK || r.N != 0 || r.Code != w.code {
			t.Errorf("%s's mutable put step %d: %s; want every node to refuse it with %d", impl, w.step, r.Line, w.code)
		}
	}
	wantMut := &dht.Item{V: mustBencode(t, last.v), Mutable: true, K: k, Salt: []byte(salt), Seq: last.seq}

	// Both our nodes store both items.
	for i, n := range ours {
		if it, ok := n.Items().Get(immTarget); !ok || !bytes.Equal(it.V, immV) {
			t.Errorf("ours%d does not store their immutable item %v (has %v)", i+1, immTarget, it)
		}
		it, ok := n.Items().Get(target)
		if !ok {
			t.Errorf("ours%d does not store their mutable item %v", i+1, target)
			continue
		}
		wantMut.Sig = it.Sig // theirs; Verify below checks it
		if err := sameItem(it, wantMut); err != nil {
			t.Errorf("ours%d stores their mutable item as %v: %v", i+1, it, err)
		}
		t.Logf("ours%d stores %v and %v", i+1, immTarget, it)
	}

	// A fresh node of ours reads them.
	fresh := newNode(t, "fresh", cfg)
	if _, err := fresh.Bootstrap(ctx, n1.Addr()); err != nil {
		t.Fatalf("fresh node's Bootstrap: %v", err)
	}
	if gr, err := fresh.Get(ctx, immTarget, nil); err != nil {
		t.Errorf("Get(%v): %v", immTarget, err)
	} else if !bytes.Equal(gr.Item.V, immV) || gr.Item.Mutable {
		t.Errorf("Get(%v) = %v %q, want %q", immTarget, gr.Item, gr.Item.V, immV)
	} else {
		var v map[string]any
		if err := gr.Item.Value(&v); err != nil || v["from"] != impl {
			t.Errorf("Get(%v): value %q decodes to %v, %v", immTarget, gr.Item.V, v, err)
		}
		t.Logf("fresh Get(%v): %q from %d holder(s)", immTarget, gr.Item.V, gr.Holders)
	}
	gr, err := fresh.Get(ctx, target, &dht.GetOptions{Salt: []byte(salt), Key: pub})
	if err != nil {
		t.Fatalf("Get(%v, salt %q): %v", target, salt, err)
	}
	wantMut.Sig = gr.Item.Sig
	if err := sameItem(gr.Item, wantMut); err != nil {
		t.Errorf("Get(%v, salt %q): %v", target, salt, err)
	}
	t.Logf("fresh Get(%v, salt %q): seq %d %q from %d holder(s), %d queries", target, salt, gr.Item.Seq, gr.Item.V, gr.Holders, gr.Lookup.Queries)
	if gr.Holders < len(ours) {
		t.Errorf("Get: %d holders of seq %d, want at least our %d nodes", gr.Holders, gr.Item.Seq, len(ours))
	}
	// With the wrong key or salt there is nothing.
	if _, err := fresh.Get(ctx, target, &dht.GetOptions{Salt: []byte(salt + "x"), Key: pub}); !errors.Is(err, dht.ErrNotFound) {
		t.Errorf("Get with the wrong salt: %v, want ErrNotFound", err)
	}
}
