package dht

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/wdht/wdht/krpc"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The test vectors of BEP 44.
func TestBEP44Vectors(t *testing.T) {
	pub := unhex(t, "77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548")
	cases := []struct {
		name, salt, target, sig, buffer string
	}{
		{"mutable", "", "4a533d47ec9c7d95b1ad75f576cffc641853b750",
			"305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01",
			"3:seqi1e1:v12:Hello World!"},
		{"mutable with salt", "foobar", "411eba73b6f087ca51a3795d9c8c938d365e32c1",
			"6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17ddf9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08",
			"4:salt6:foobar3:seqi1e1:v12:Hello World!"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			it := &Item{V: bencode.Bytes("12:Hello World!"), Mutable: true, Salt: []byte(c.salt), Seq: 1}
			copy(it.K[:], pub)
			copy(it.Sig[:], unhex(t, c.sig))
			if got := it.Target().String(); got != c.target {
				t.Errorf("target %s, want %s", got, c.target)
			}
			if got := string(it.SignatureBuffer()); got != c.buffer {
				t.Errorf("signed buffer %q, want %q", got, c.buffer)
			}
			if err := it.Verify(); err != nil {
				t.Errorf("published signature refused: %v", err)
			}
			tampered := it.clone()
			tampered.Sig[7] ^= 1
			if err := tampered.Verify(); !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("tampered signature: %v, want ErrInvalidSignature (206)", err)
			}
			other := it.clone()
			other.Seq = 2
			if err := other.Verify(); !errors.Is(err, ErrInvalidSignature) {
				t.Errorf("signature over another seq: %v", err)
			}
		})
	}
	imm, err := NewImmutableItem("Hello World!")
	if err != nil {
		t.Fatal(err)
	}
	if got := imm.Target().String(); got != "e5f96f6f38320f0f33959cb4d3d656452117aadb" {
		t.Errorf("immutable target %s", got)
	}
}

func TestNewItem(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	it, err := NewMutableItem(priv, []byte("salt"), 7, map[string]any{"a": 1})
	if err != nil {
		t.Fatal(err)
	}
	if string(it.V) != "d1:ai1ee" || it.Verify() != nil {
		t.Fatalf("%s %q", it, it.V)
	}
	var back map[string]int
	if err := it.Value(&back); err != nil || back["a"] != 1 {
		t.Fatalf("Value: %v %v", back, err)
	}
	if _, err := NewImmutableItem(strings.Repeat("x", 1000)); !errors.Is(err, ErrValueTooBig) {
		t.Fatalf("1000-byte string (1005 bytes bencoded): %v", err)
	}
	if _, err := NewMutableItem(priv, make([]byte, 65), 1, "x"); !errors.Is(err, ErrSaltTooBig) {
		t.Fatalf("65-byte salt: %v", err)
	}
	if _, err := NewImmutableItem(bencode.Bytes("3:ab")); err == nil {
		t.Fatal("malformed raw value accepted")
	}
	if _, err := NewMutableItem(priv[:10], nil, 1, "x"); err == nil {
		t.Fatal("short key accepted")
	}
	if _, err := NewMutableItem(priv, nil, -1, "x"); !errors.Is(err, ErrNegativeSeq) {
		t.Fatalf("negative seq: %v", err)
	}
}

func TestItemStoreRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := NewItemStore(&ItemStoreConfig{TTL: time.Hour, MaxItems: 3})
		if err != nil {
			t.Fatal(err)
		}
		_, priv, _ := ed25519.GenerateKey(nil)
		v := func(seq int64, val string) *Item {
			it, err := NewMutableItem(priv, nil, seq, val)
			if err != nil {
				t.Fatal(err)
			}
			return it
		}
		i64 := func(x int64) *int64 { return &x }
		steps := []struct {
			name string
			it   *Item
			cas  *int64
			want error
		}{
			{"first version; cas ignored without a stored value", v(5, "five"), i64(99), nil},
			{"older", v(4, "four"), nil, ErrSeqTooLow},
			{"same seq, other value", v(5, "FIVE"), nil, ErrSeqTooLow},
			{"same version again", v(5, "five"), nil, nil},
			{"cas mismatch", v(6, "six"), i64(4), ErrCASMismatch},
			{"cas match", v(6, "six"), i64(5), nil},
			{"newer without cas", v(9, "nine"), nil, nil},
		}
		for _, st := range steps {
			if err := s.Put(st.it, st.cas); !errors.Is(err, st.want) {
				t.Fatalf("%s: %v, want %v", st.name, err, st.want)
			}
		}
		got, ok := s.Get(v(9, "nine").Target())
		if !ok || got.Seq != 9 || string(got.V) != "4:nine" {
			t.Fatalf("stored %v", got)
		}
		// Caps: the item closest to expiry goes first.
		for i := range 3 {
			time.Sleep(time.Minute)
			imm, _ := NewImmutableItem(i)
			s.Put(imm, nil)
		}
		if n, _ := s.Len(); n != 3 {
			t.Fatalf("%d items, want the cap of 3", n)
		}
		if _, ok := s.Get(v(9, "nine").Target()); ok {
			t.Fatal("the oldest item was not the one evicted")
		}
		// Expiry.
		time.Sleep(time.Hour + time.Second)
		if n := s.Sweep(); n != 3 {
			t.Fatalf("swept %d, want 3", n)
		}
	})
}

func TestItemStoreBytesCap(t *testing.T) {
	s, _ := NewItemStore(&ItemStoreConfig{MaxBytes: 2500})
	for i := range 5 {
		it, _ := NewImmutableItem(strings.Repeat(string(rune('a'+i)), 900))
		if err := s.Put(it, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n, b := s.Len(); n != 2 || b > 2500 {
		t.Fatalf("%d items, %d bytes; want 2 within 2500 bytes", n, b)
	}
}

func TestPutGet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		nodes := make([]*Node, 12)
		for i := range nodes {
			nodes[i] = c.add(nil)
			if i > 0 {
				nodes[i].Bootstrap(t.Context(), nodes[0].Addr())
			}
		}
		synctest.Wait()
		ctx := t.Context()

		imm, _ := NewImmutableItem("Hello World!")
		pr, err := nodes[3].Put(ctx, imm, nil)
		if err != nil || pr.Stored < 8 {
			t.Fatalf("immutable put: stored on %d, %v", pr.Stored, err)
		}
		gr, err := nodes[9].Get(ctx, imm.Target(), nil)
		if err != nil || string(gr.Item.V) != "12:Hello World!" || gr.Item.Mutable {
			t.Fatalf("immutable get: %+v, %v", gr, err)
		}

		_, priv, _ := ed25519.GenerateKey(nil)
		salt := []byte("foobar")
		m1, _ := NewMutableItem(priv, salt, 1, "v1")
		if _, err := nodes[4].Put(ctx, m1, nil); err != nil {
			t.Fatal(err)
		}
		m2, _ := NewMutableItem(priv, salt, 2, "v2")
		pr, err = nodes[5].Put(ctx, m2, &PutOptions{CAS: &m1.Seq})
		if err != nil || pr.Newest == nil || pr.Newest.Seq != 1 {
			t.Fatalf("update: %+v, %v", pr, err)
		}
		gr, err = nodes[10].Get(ctx, m1.Target(), &GetOptions{Salt: salt})
		if err != nil || gr.Item.Seq != 2 || string(gr.Item.V) != "2:v2" {
			t.Fatalf("mutable get after update: %+v, %v", gr, err)
		}
		// A node that joined after the puts holds nothing itself: without the salt no
		// answer matches the target.
		late := c.add(nil)
		late.Bootstrap(ctx, nodes[0].Addr())
		if gr, err := late.Get(ctx, m1.Target(), nil); !errors.Is(err, ErrNotFound) || gr.Rejected == 0 {
			t.Fatalf("get without the salt: %v (%d answers rejected)", err, gr.Rejected)
		}
		// Asking only for versions newer than 2 finds none.
		two := int64(2)
		if gr, err := late.Get(ctx, m1.Target(), &GetOptions{Salt: salt, Seq: &two}); !errors.Is(err, ErrNotFound) || gr.SeqOnly == 0 {
			t.Fatalf("get newer than seq 2: %v (%d answers with the seq only)", err, gr.SeqOnly)
		}
		// Asking for a key finds no immutable item.
		if _, err := late.Get(ctx, imm.Target(), &GetOptions{Key: priv.Public().(ed25519.PublicKey)}); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get of an immutable item with a key: %v", err)
		}
		// A stale writer sees the newer version and writes nothing; nodes refuse a stale
		// version with 302, and a wrong CAS with 301.
		pr, err = nodes[6].Put(ctx, m1, nil)
		if !errors.Is(err, ErrSeqTooLow) || pr.Stored != 0 || len(pr.Errors) != 0 || pr.Newest.Seq != 2 {
			t.Fatalf("stale put: %+v, %v", pr, err)
		}
		m3, _ := NewMutableItem(priv, salt, 3, "v3")
		// Nodes holding seq 2 refuse a CAS of 1 with 301; nodes holding nothing get no cas
		// (BEP 44) and store it.
		pr, _ = nodes[6].Put(ctx, m3, &PutOptions{CAS: &m1.Seq})
		if !allErrors(pr.Errors, ErrCASMismatch) {
			t.Fatalf("put with a stale cas: stored %d, errors %v", pr.Stored, pr.Errors)
		}
		if _, err := nodes[11].Get(ctx, RandomID(), nil); !errors.Is(err, ErrNotFound) {
			t.Fatalf("get of nothing: %v", err)
		}
	})
}

func allErrors(errs map[NodeInfo]error, want error) bool {
	if len(errs) == 0 {
		return false
	}
	for _, e := range errs {
		if !errors.Is(e, want) {
			return false
		}
	}
	return true
}

// Storing nodes send the BEP 44 error codes.
func TestPutErrorCodes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		a := c.add(nil)
		cli := c.add(nil)
		_, priv, _ := ed25519.GenerateKey(nil)
		good, _ := NewMutableItem(priv, []byte("s"), 1, "x")
		token := func(target ID) string {
			args := &krpc.Args{}
			args.Target = target
			r, err := cli.query(t.Context(), a.Addr(), nil, krpc.MethodGet, args)
			if err != nil {
				t.Fatal(err)
			}
			return *r.Return.Token
		}
		put := func(it *Item, tok string, mod func(*krpc.Args)) error {
			args := putArgs(it, tok)
			if mod != nil {
				mod(args)
			}
			_, err := cli.query(t.Context(), a.Addr(), nil, krpc.MethodPut, args)
			return err
		}
		code := func(err error) int {
			var ke *krpc.Error
			if errors.As(err, &ke) {
				return ke.Code
			}
			return 0
		}
		tok := token(good.Target())
		big := &Item{V: bencode.Bytes("1001:" + strings.Repeat("x", 1001))}
		tampered := good.clone()
		tampered.Sig[0] ^= 1
		for _, tc := range []struct {
			name string
			err  error
			want int
		}{
			{"value too big", put(big, "t", nil), 205},
			{"salt too big", put(good, tok, func(a *krpc.Args) { a.Salt = make([]byte, 65) }), 207},
			{"bad token", put(good, "forged", nil), 203},
			{"token for another target", put(good, token(RandomID()), nil), 203},
			{"invalid signature", put(tampered, tok, nil), 206},
			{"missing seq", put(good, tok, func(a *krpc.Args) { a.Seq = nil }), 203},
			{"missing v", put(good, tok, func(a *krpc.Args) { a.V = nil }), 203},
			{"good", put(good, tok, nil), 0},
			{"lower seq", put(mustMutable(t, priv, "s", 0, "y"), tok, nil), 302},
			{"cas mismatch", put(mustMutable(t, priv, "s", 2, "y"), tok, func(a *krpc.Args) { a.CasSet = true }), 301},
		} {
			if got := code(tc.err); got != tc.want {
				t.Errorf("%s: %v, want code %d", tc.name, tc.err, tc.want)
			}
		}
	})
}

func mustMutable(t *testing.T, priv ed25519.PrivateKey, salt string, seq int64, v any) *Item {
	t.Helper()
	it, err := NewMutableItem(priv, []byte(salt), seq, v)
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func TestSampleInfohashes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		a, b, d := c.add(nil), c.add(nil), c.add(nil)
		b.Bootstrap(t.Context(), a.Addr())
		d.Bootstrap(t.Context(), a.Addr())
		synctest.Wait() // a confirms b and d
		if res, err := b.SampleInfohashes(t.Context(), a.Addr(), RandomID()); err != nil || len(res.Samples) != 0 {
			t.Fatalf("empty store: %+v, %v", res, err)
		}
		stored := make(map[ID]bool)
		for range 30 {
			ih := RandomID()
			stored[ih] = true
			a.Peers().Add(ih, addrN(1))
		}
		res, err := b.SampleInfohashes(t.Context(), a.Addr(), RandomID())
		if err != nil {
			t.Fatal(err)
		}
		if res.Num != 30 || len(res.Samples) != 20 || res.Interval != 5*time.Minute || len(res.Nodes) != 1 || res.Nodes[0].ID != d.ID() {
			t.Fatalf("sample: num %d, %d samples, interval %v, nodes %v", res.Num, len(res.Samples), res.Interval, res.Nodes)
		}
		for _, ih := range res.Samples {
			if !stored[ih] {
				t.Fatalf("sampled %v, which is not stored", ih)
			}
		}
		if res.ID != a.ID() {
			t.Fatalf("sample from %v, want %v", res.ID, a.ID())
		}
		time.Sleep(time.Minute)
		again, _ := b.SampleInfohashes(t.Context(), a.Addr(), RandomID())
		if again.Interval != 4*time.Minute || again.Samples[0] != res.Samples[0] {
			t.Fatalf("the sample changed within its interval: %+v", again)
		}
	})
}

// A node that answers sample_infohashes without samples (as libtorrent answers unknown
// methods, like find_node) does not support BEP 51.
func TestSampleUnsupported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		a := c.add(nil)
		tr := c.listen()
		s, err := krpc.NewServer(tr, krpc.HandlerFunc(func(ctx context.Context, q *krpc.Query) (*krpc.Response, error) {
			r := &krpc.Return{}
			r.ID = RandomID()
			return &krpc.Response{Return: r}, nil
		}), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := a.SampleInfohashes(t.Context(), tr.LocalAddr(), RandomID()); !errors.Is(err, ErrNoSamples) {
			t.Fatalf("%v, want ErrNoSamples", err)
		}
	})
}
