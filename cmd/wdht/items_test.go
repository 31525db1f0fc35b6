package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/udp"
)

// testSeed is the ed25519 seed of the tests' mutable items.
var testSeed = strings.Repeat("7e", 32)

// testPub returns the public key of testSeed in hex.
func testPub() string {
	seed, _ := hex.DecodeString(testSeed)
	return hex.EncodeToString(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey))
}

// TestItemUsageErrors checks every bad input of put, get and sample: the exact
// message and exit status 2, before any network use.
func TestItemUsageErrors(t *testing.T) {
	const hint = "Run 'wdht help %s' for usage.\n"
	key := testPub()
	salt65 := strings.Repeat("s", 65)
	tests := []struct {
		name      string
		args      []string
		want      string // the first line of stderr, after "wdht: <command>: "
		showUsage bool   // a second line points at the command's help
	}{
		{"put missing", []string{"put"}, "missing VALUE", true},
		{"put extra", []string{"put", "a", "b"}, `want one VALUE, got 2 arguments: ["a" "b"]`, true},
		{"put unknown flag", []string{"put", "--frob", "v"}, "flag provided but not defined: -frob", true},
		{"put seed without mutable", []string{"put", "--seed", testSeed, "v"}, "--seed is for mutable items: add --mutable", true},
		{"put salt without mutable", []string{"put", "v", "--salt", "s"}, "--salt is for mutable items: add --mutable", true},
		{"put seq without mutable", []string{"put", "--seq", "2", "v"}, "--seq is for mutable items: add --mutable", true},
		{"put cas without mutable", []string{"put", "--cas=1", "v"}, "--cas is for mutable items: add --mutable", true},
		{"put mutable without seed", []string{"put", "--mutable", "v"}, "--mutable needs --seed HEX, the 32-byte ed25519 seed of the signing key", true},
		{"put seed short", []string{"put", "--mutable", "--seed", "abc", "v"}, "--seed: want 64 hex characters, got 3 (a 32-byte ed25519 seed)", false},
		{"put seed long", []string{"put", "--mutable", "--seed", testSeed + "00", "v"}, "--seed: want 64 hex characters, got 66 (a 32-byte ed25519 seed)", false},
		{"put seed not hex", []string{"put", "--mutable", "--seed", testSeed[:63] + "z", "v"}, "--seed: want 64 hex characters, got 'z' at position 64 (a 32-byte ed25519 seed)", false},
		{"put salt long", []string{"put", "--mutable", "--seed", testSeed, "--salt", salt65, "v"}, "--salt: 65 bytes, at most 64 allowed", false},
		{"put seq negative", []string{"put", "--mutable", "--seed", testSeed, "--seq", "-1", "v"}, "--seq -1: want a sequence number of 0 or more", false},
		{"put seq syntax", []string{"put", "--mutable", "--seed", testSeed, "--seq", "next", "v"}, `invalid value "next" for flag -seq: parse error`, true},
		{"put cas negative", []string{"put", "--mutable", "--seed", testSeed, "--cas", "-2", "v"}, "--cas -2: want a sequence number of 0 or more", false},
		{"put too big", []string{"put", strings.Repeat("a", 997)}, "VALUE is 1001 bytes bencoded, at most 1000 allowed", false},
		{"put raw too big", []string{"put", "--raw", "997:" + strings.Repeat("a", 997)}, "VALUE is 1001 bytes bencoded, at most 1000 allowed", false},
		{"put raw not bencoded", []string{"put", "--raw", "i1x"}, "--raw: VALUE is not bencoded: at offset 2: expected 'e' after an integer", false},
		{"put raw text", []string{"put", "--raw", "hello"}, `--raw: VALUE is not bencoded: at offset 0: unexpected byte 'h'`, false},
		{"put raw empty", []string{"put", "--raw", ""}, "--raw: VALUE is not bencoded: at offset 0: unexpected end of message", false},
		{"put raw two values", []string{"put", "--raw", "i1ei2e"}, "--raw: VALUE is not one bencoded value: 3 bytes follow the first, from offset 3", false},
		{"put no bootstrap", []string{"put", "v", "--bootstrap="}, "no bootstrap address: give --bootstrap HOST:PORT", true},
		{"put bad timeout", []string{"put", "v", "--timeout", "0s"}, "--timeout 0s: want a positive duration", false},

		{"get missing", []string{"get"}, "missing TARGET (or --key HEX, to get the mutable item of a public key)", true},
		{"get missing with salt", []string{"get", "--salt", "s"}, "missing TARGET (or --key HEX, to get the mutable item of a public key)", true},
		{"get extra", []string{"get", testIH, testIH}, `want one TARGET, got 2 arguments: ["` + testIH + `" "` + testIH + `"]`, true},
		{"get target short", []string{"get", "abc"}, `target "abc": want 40 hex characters, got 3`, false},
		{"get target not hex", []string{"get", "x" + testIH[1:]}, `target "x` + testIH[1:] + `": want 40 hex characters, got 'x' at position 1`, false},
		{"get key short", []string{"get", "--key", "abcd"}, `--key "abcd": want 64 hex characters, got 4 (an ed25519 public key)`, false},
		{"get key not hex", []string{"get", "--key", "g" + key[1:]}, `--key "g` + key[1:] + `": want 64 hex characters, got 'g' at position 1 (an ed25519 public key)`, false},
		{"get salt long", []string{"get", testIH, "--salt", salt65}, "--salt: 65 bytes, at most 64 allowed", false},
		{"get seq negative", []string{"get", testIH, "--seq=-1"}, "--seq -1: want a sequence number of 0 or more", false},
		{"get key mismatch", []string{"get", testIH, "--key", key},
			fmt.Sprintf("target %s does not match --key %s with no salt (that is %v)", testIH, key, mutableTarget(t, key, "")), false},
		{"get key mismatch salt", []string{"get", testIH, "--key", key, "--salt", "s1"},
			fmt.Sprintf(`target %s does not match --key %s with --salt "s1" (that is %v)`, testIH, key, mutableTarget(t, key, "s1")), false},
		{"get no bootstrap", []string{"get", testIH, "--bootstrap="}, "no bootstrap address: give --bootstrap HOST:PORT", true},

		{"sample bad addr", []string{"sample", "localhost"}, `address "localhost": want host:port ([host]:port for IPv6)`, false},
		{"sample port 0", []string{"sample", "127.0.0.1:0"}, `address "127.0.0.1:0": port "0": want a number from 1 to 65535`, false},
		{"sample nothing", []string{"sample", "--bootstrap="}, "nothing to sample: give an ADDR or --bootstrap", true},
		{"sample target", []string{"sample", "--target", "abc", "127.0.0.1:6881"}, `--target "abc": want 40 hex characters, got 3`, false},
		{"sample target not hex", []string{"sample", "127.0.0.1:6881", "--target", testIH[:39] + "q"}, `--target "` + testIH[:39] + `q": want 40 hex characters, got 'q' at position 40`, false},
		{"sample unknown flag", []string{"sample", "--port", "1"}, "flag provided but not defined: -port", true},
		{"sample bad timeout", []string{"sample", "--timeout", "-1s"}, "--timeout -1s: want a positive duration", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := runWDHT(t, tt.args...)
			want := "wdht: " + tt.args[0] + ": " + tt.want + "\n"
			if tt.showUsage {
				want += fmt.Sprintf(hint, tt.args[0])
			}
			if r.code != exitUsage || r.stderr != want || r.stdout != "" {
				t.Errorf("wdht %q: exit %d, stdout %q, stderr:\n%s\nwant exit %d, no stdout, stderr:\n%s", tt.args, r.code, r.stdout, r.stderr, exitUsage, want)
			}
		})
	}
}

// mutableTarget returns the target of the mutable item of the hex key and salt.
func mutableTarget(t *testing.T, keyHex, salt string) dht.ID {
	t.Helper()
	k, err := hex.DecodeString(keyHex)
	if err != nil || len(k) != 32 {
		t.Fatalf("bad key %q", keyHex)
	}
	var s []byte
	if salt != "" {
		s = []byte(salt)
	}
	return dht.MutableTarget([32]byte(k), s)
}

// wantRun runs wdht and fails the test unless it exits with code.
func wantRun(t *testing.T, code int, args ...string) result {
	t.Helper()
	r := runWDHT(t, args...)
	if r.code != code {
		t.Fatalf("wdht %q: exit %d; want %d\nstdout: %q\nstderr: %q", args, r.code, code, r.stdout, r.stderr)
	}
	return r
}

// TestItemsEndToEnd runs two nodes in-process, one bootstrapped from the other, and
// put, get and sample against them.
func TestItemsEndToEnd(t *testing.T) {
	a := startNode(t, "--transports", "udp", "--addr", "127.0.0.1:0", "--status", "20ms", "--limits=false")
	b := startNode(t, "--transports", "udp", "--addr", "127.0.0.1:0", "--status", "20ms", "--limits=false", "--bootstrap", a.addr)
	oneNode := regexp.MustCompile(`^STATUS .* nodes=1 good=1 `)
	b.out.await(t, 0, oneNode, 5*time.Second)
	a.out.await(t, 0, oneNode, 5*time.Second) // a hands b out once b has answered it
	boot := "--bootstrap=" + a.addr

	t.Run("immutable", func(t *testing.T) {
		target := dht.ImmutableTarget(bencode.Bytes("11:hello world"))
		r := wantRun(t, exitOK, "put", boot, "hello world")
		if want := fmt.Sprintf("stored immutable item %v on 2 nodes\n", target); r.stdout != want || r.stderr != "" {
			t.Errorf("put: stdout %q, stderr %q; want stdout %q", r.stdout, r.stderr, want)
		}
		r = wantRun(t, exitOK, "get", target.String(), boot)
		if r.stdout != "hello world" || !regexp.MustCompile(`^immutable item `+target.String()+` from [12] nodes\n$`).MatchString(r.stderr) {
			t.Errorf("get: stdout %q, stderr %q", r.stdout, r.stderr)
		}
		var got getJSON
		r = wantRun(t, exitOK, "get", "--json", target.String(), boot)
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Target != target.String() || got.Mutable ||
			got.Value != "hello world" || got.ValueBase64 || got.ValueType != "string" || string(got.ValueBencoded) != "11:hello world" ||
			got.Seq != nil || got.Key != "" || got.Holders < 1 || got.Responses < 1 || r.stderr != "" {
			t.Errorf("get --json: stdout %q (%v), stderr %q", r.stdout, err, r.stderr)
		}
		if !strings.Contains(r.stdout, `"value_bencoded":"MTE6aGVsbG8gd29ybGQ="`) {
			t.Errorf("get --json: value_bencoded is not base64: %s", r.stdout)
		}

		// A raw value is stored as it is and printed bencoded.
		raw := "d3:fooli1ei2eee"
		target = dht.ImmutableTarget(bencode.Bytes(raw))
		var put putJSON
		r = wantRun(t, exitOK, "put", "--raw", "--json", boot, raw)
		if err := json.Unmarshal([]byte(r.stdout), &put); err != nil || put.Target != target.String() || put.Mutable ||
			put.Stored != 2 || len(put.Errors) != 0 || put.Seq != nil || put.Key != "" || put.Responses != 2 {
			t.Errorf("put --raw --json: stdout %q (%v), stderr %q", r.stdout, err, r.stderr)
		}
		r = wantRun(t, exitOK, "get", boot, target.String())
		if r.stdout != raw {
			t.Errorf("get of a raw value: stdout %q; want %q", r.stdout, raw)
		}
		r = wantRun(t, exitOK, "get", "--json", boot, target.String())
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Value != raw || got.ValueType != "dictionary" {
			t.Errorf("get --json of a raw value: %q (%v)", r.stdout, err)
		}

		// A binary string: raw bytes to stdout, base64 in JSON.
		bin := "\xff\xfe\x00x"
		target = dht.ImmutableTarget(bencode.Bytes("4:" + bin))
		wantRun(t, exitOK, "put", boot, "--", bin)
		if r = wantRun(t, exitOK, "get", boot, target.String()); r.stdout != bin {
			t.Errorf("get of a binary value: stdout %q; want %q", r.stdout, bin)
		}
		r = wantRun(t, exitOK, "get", "--json", boot, target.String())
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || !got.ValueBase64 || got.Value != "//4AeA==" {
			t.Errorf("get --json of a binary value: %q (%v)", r.stdout, err)
		}
	})

	t.Run("mutable", func(t *testing.T) {
		key := testPub()
		target := mutableTarget(t, key, "s1")
		mut := []string{"--mutable", "--seed", testSeed, "--salt", "s1", boot}
		stored := func(seq int) string {
			return fmt.Sprintf("stored mutable item %v seq=%d key=%s on 2 nodes\n", target, seq, key)
		}
		if r := wantRun(t, exitOK, append([]string{"put", "first"}, mut...)...); r.stdout != stored(1) {
			t.Errorf("first put: stdout %q; want %q", r.stdout, stored(1))
		}
		// Without --seq, put takes the current version's seq + 1.
		if r := wantRun(t, exitOK, append([]string{"put", "second"}, mut...)...); r.stdout != stored(2) {
			t.Errorf("second put: stdout %q; want %q", r.stdout, stored(2))
		}
		r := wantRun(t, exitOK, "get", target.String(), "--salt", "s1", boot)
		if want := fmt.Sprintf("mutable item %v seq=2 key=%s from 2 nodes\n", target, key); r.stdout != "second" || r.stderr != want {
			t.Errorf("get: stdout %q, stderr %q; want %q, %q", r.stdout, r.stderr, "second", want)
		}
		// --key and --salt name the item without TARGET.
		var got getJSON
		r = wantRun(t, exitOK, "get", "--json", "--key", key, "--salt", "s1", boot)
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Target != target.String() || !got.Mutable ||
			got.Seq == nil || *got.Seq != 2 || got.Key != key || got.Value != "second" || got.Holders != 2 {
			t.Errorf("get --json --key: stdout %q (%v), stderr %q", r.stdout, err, r.stderr)
		}
		// Without the salt, the item does not check out: not found.
		r = wantRun(t, exitFailed, "get", target.String(), boot)
		if want := fmt.Sprintf("wdht: get: item %v not found (2 nodes answered; an item put with --salt is found only with the same --salt)\n", target); r.stderr != want || r.stdout != "" {
			t.Errorf("get without --salt: stdout %q, stderr %q; want %q", r.stdout, r.stderr, want)
		}

		// A stale --seq is refused before anything is written.
		r = wantRun(t, exitFailed, append([]string{"put", "stale", "--seq", "1"}, mut...)...)
		want := fmt.Sprintf("wdht: put: the DHT already holds seq 2 of item %v, newer than seq 1: use --seq 3 or higher, or leave --seq out\n", target)
		if r.stderr != want || r.stdout != "" {
			t.Errorf("stale put: stdout %q, stderr %q; want %q", r.stdout, r.stderr, want)
		}
		r = wantRun(t, exitFailed, append([]string{"put", "other", "--seq", "2", "--json"}, mut...)...)
		var put putJSON
		// The result, then the error (see TestRemoteKRPCError).
		if err := json.NewDecoder(strings.NewReader(r.stdout)).Decode(&put); err != nil || put.Stored != 0 || put.NewestSeq == nil || *put.NewestSeq != 2 ||
			!strings.HasSuffix(r.stdout, `","exit":1}`+"\n") ||
			!strings.Contains(r.stderr, "the DHT already holds another value under seq 2 of item") {
			t.Errorf("put of another value under the same seq: stdout %q (%v), stderr %q", r.stdout, err, r.stderr)
		}

		// Compare-and-swap: the nodes hold seq 2, not 1.
		r = wantRun(t, exitFailed, append([]string{"put", "third", "--seq", "3", "--cas", "1"}, mut...)...)
		refused := "compare-and-swap failed: its seq is not --cas 1 (error 301)"
		addrs := []string{a.addr, b.addr}
		if netip.MustParseAddrPort(b.addr).Compare(netip.MustParseAddrPort(a.addr)) < 0 {
			addrs[0], addrs[1] = addrs[1], addrs[0]
		}
		want = fmt.Sprintf("wdht: put: item %v stored on no node (the DHT holds seq 2): %s: %s; %s: %s\n", target, addrs[0], refused, addrs[1], refused)
		if r.stderr != want || r.stdout != "" {
			t.Errorf("put with a wrong --cas: stdout %q, stderr:\n%s\nwant:\n%s", r.stdout, r.stderr, want)
		}
		r = wantRun(t, exitFailed, append([]string{"put", "third", "--seq", "3", "--cas", "1", "--json"}, mut...)...)
		if err := json.NewDecoder(strings.NewReader(r.stdout)).Decode(&put); err != nil || put.Stored != 0 || len(put.Errors) != 2 ||
			put.Errors[0].Code != krpc.ErrorCodeCASMismatch || put.Errors[0].Addr != addrs[0] {
			t.Errorf("put --json with a wrong --cas: stdout %q (%v)", r.stdout, err)
		}
		if r := wantRun(t, exitOK, append([]string{"put", "third", "--seq", "3", "--cas", "2"}, mut...)...); r.stdout != stored(3) {
			t.Errorf("put with the right --cas: stdout %q; want %q", r.stdout, stored(3))
		}
		r = wantRun(t, exitOK, "get", "--key", key, "--salt", "s1", "--seq", "2", boot)
		if r.stdout != "third" || !strings.Contains(r.stderr, " seq=3 ") {
			t.Errorf("get --seq 2: stdout %q, stderr %q", r.stdout, r.stderr)
		}
		r = wantRun(t, exitFailed, "get", "--key", key, "--salt", "s1", "--seq", "3", boot)
		if want := fmt.Sprintf("wdht: get: item %v not found with a seq above 3 (2 nodes answered)\n", target); r.stderr != want {
			t.Errorf("get --seq 3: stderr %q; want %q", r.stderr, want)
		}

		// An unsalted item of the same key, at an explicit seq.
		target0 := mutableTarget(t, key, "")
		r = wantRun(t, exitOK, "put", "--mutable", "--seed", testSeed, "--seq", "0", "--raw", "i42e", boot)
		if want := fmt.Sprintf("stored mutable item %v seq=0 key=%s on 2 nodes\n", target0, key); r.stdout != want {
			t.Errorf("unsalted put: stdout %q; want %q", r.stdout, want)
		}
		if r = wantRun(t, exitOK, "get", target0.String(), "--key", key, boot); r.stdout != "i42e" {
			t.Errorf("unsalted get: stdout %q", r.stdout)
		}
	})

	t.Run("not found", func(t *testing.T) {
		unknown := strings.Repeat("f", 40)
		r := wantRun(t, exitFailed, "get", unknown, "--salt", "s", boot)
		if want := "wdht: get: item " + unknown + " not found (2 nodes answered)\n"; r.stderr != want || r.stdout != "" {
			t.Errorf("get of an unknown target: stdout %q, stderr %q; want %q", r.stdout, r.stderr, want)
		}
		r = wantRun(t, exitFailed, "get", "--json", unknown, boot)
		if !strings.HasPrefix(r.stdout, `{"command":"get","error":"item `+unknown+` not found`) || !strings.HasPrefix(r.stderr, "wdht: get: item "+unknown+" not found") {
			t.Errorf("get --json of an unknown target: stdout %q, stderr %q", r.stdout, r.stderr)
		}
	})

	t.Run("sample", func(t *testing.T) {
		wantRun(t, exitOK, "announce", testIH, boot, "--port", "6882")
		r := wantRun(t, exitOK, "sample", a.addr)
		re := regexp.MustCompile(`^` + regexp.QuoteMeta(a.addr) + ` num=1 interval=(4m5\ds|5m0s) samples=1\n` + testIH + `\n$`)
		if !re.MatchString(r.stdout) || r.stderr != "" {
			t.Errorf("sample: stdout %q, stderr %q; want %v", r.stdout, r.stderr, re)
		}
		// Without ADDR, sample asks the --bootstrap nodes.
		r = wantRun(t, exitOK, "sample", "--json", "--target", testIH, "--bootstrap", b.addr)
		var got sampleJSON
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Addr != b.addr || got.Num != 1 ||
			len(got.Samples) != 1 || got.Samples[0] != testIH || got.IntervalS <= 0 ||
			len(got.Nodes) != 1 || got.Nodes[0].ID != a.id || got.Nodes[0].Addr != a.addr {
			t.Errorf("sample --json: stdout %q (%v), stderr %q", r.stdout, err, r.stderr)
		}
	})

	t.Run("sample unsupported", func(t *testing.T) {
		noSamples := krpcServer(t, krpc.Mux{krpc.MethodSampleInfohashes: krpc.HandlerFunc(
			func(context.Context, *krpc.Query) (*krpc.Response, error) {
				r := &krpc.Return{}
				r.ID = dht.RandomID()
				return &krpc.Response{Return: r}, nil
			})})
		unknown := krpcServer(t, krpc.Mux{})
		reasons := noSamples + " (it does not support sample_infohashes: no samples in its answer), " +
			unknown + " (it does not support sample_infohashes: method unknown)"
		r := wantRun(t, exitFailed, "sample", noSamples, unknown)
		if want := "wdht: sample: no sample from " + reasons + "\n"; r.stderr != want || r.stdout != "" {
			t.Errorf("sample of nodes without support: stdout %q, stderr %q; want %q", r.stdout, r.stderr, want)
		}
		// One node answered: the others are reported, and sample succeeds.
		r = wantRun(t, exitOK, "sample", noSamples, a.addr, unknown)
		if want := "wdht: sample: no sample from " + reasons + "\n"; r.stderr != want || !strings.HasPrefix(r.stdout, a.addr+" num=1 ") {
			t.Errorf("sample of a node with support and two without: stdout %q, stderr %q; want stderr %q", r.stdout, r.stderr, want)
		}
	})
}

// krpcServer runs a KRPC server that answers with h on a loopback UDP port until the
// test ends, and returns its address.
func krpcServer(t *testing.T, h krpc.Handler) string {
	t.Helper()
	tr, err := udp.Listen(netip.MustParseAddrPort("127.0.0.1:0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := krpc.NewServer(tr, h, nil)
	if err != nil {
		tr.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		tr.Close()
	})
	return tr.LocalAddr().String()
}

// TestPutFailure checks the explanations of a put that stored nothing.
func TestPutFailure(t *testing.T) {
	seed, _ := hex.DecodeString(testSeed)
	key := ed25519.NewKeyFromSeed(seed)
	it, err := dht.NewMutableItem(key, []byte("s"), 5, "v")
	if err != nil {
		t.Fatal(err)
	}
	newer, _ := dht.NewMutableItem(key, []byte("s"), 7, "w")
	same, _ := dht.NewMutableItem(key, []byte("s"), 5, "w")
	target := it.Target()
	n1 := dht.NodeInfo{ID: dht.RandomID(), Addr: netip.MustParseAddrPort("127.0.0.2:1")}
	n2 := dht.NodeInfo{ID: dht.RandomID(), Addr: netip.MustParseAddrPort("127.0.0.1:9")}
	five, one := int64(5), int64(1)
	lookup := &dht.LookupResult{Responses: 3}
	tests := []struct {
		name string
		req  putRequest
		res  dht.PutResult
		err  error
		want string
	}{
		{
			name: "newer version, --seq given",
			req:  putRequest{seq: &five},
			res:  dht.PutResult{Newest: newer, Lookup: lookup},
			err:  fmt.Errorf("dht: put: ...: %w", dht.ErrSeqTooLow),
			want: fmt.Sprintf("the DHT already holds seq 7 of item %v, newer than seq 5: use --seq 8 or higher, or leave --seq out", target),
		},
		{
			name: "newer version, seq picked",
			res:  dht.PutResult{Newest: newer, Lookup: lookup},
			err:  fmt.Errorf("dht: put: ...: %w", dht.ErrSeqTooLow),
			want: fmt.Sprintf("the DHT already holds seq 7 of item %v, newer than seq 5: put again to use the next one", target),
		},
		{
			name: "same seq, another value",
			req:  putRequest{seq: &five},
			res:  dht.PutResult{Newest: same, Lookup: lookup},
			err:  fmt.Errorf("dht: put: ...: %w", dht.ErrSeqTooLow),
			want: fmt.Sprintf("the DHT already holds another value under seq 5 of item %v: use --seq 6 or higher, or leave --seq out", target),
		},
		{
			name: "refusals, sorted by address",
			req:  putRequest{cas: &one},
			res: dht.PutResult{Lookup: lookup, Errors: map[dht.NodeInfo]error{
				n1: &krpc.Error{Code: krpc.ErrorCodeSeqTooLow, Msg: "no"},
				n2: &krpc.Error{Code: krpc.ErrorCodeCASMismatch, Msg: "no"},
			}},
			err: errors.New("dht: put: no node stored the item"),
			want: fmt.Sprintf("item %v stored on no node: 127.0.0.1:9: compare-and-swap failed: its seq is not --cas 1 (error 301); "+
				"127.0.0.2:1: seq 5 is not newer than its version (error 302)", target),
		},
		{
			name: "other errors",
			res: dht.PutResult{Lookup: lookup, Newest: it, Errors: map[dht.NodeInfo]error{
				n1: krpc.ErrTimeout,
				n2: &krpc.Error{Code: krpc.ErrorCodeProtocol, Msg: "put: bad token"},
			}},
			err:  errors.New("dht: put: no node stored the item"),
			want: fmt.Sprintf(`item %v stored on no node (the DHT holds seq 5): 127.0.0.1:9: error 203: "put: bad token"; 127.0.0.2:1: timed out`, target),
		},
		{
			name: "no token",
			res:  dht.PutResult{Lookup: lookup, Errors: map[dht.NodeInfo]error{}},
			err:  fmt.Errorf("dht: put: no node gave a write token: %w", dht.ErrNoNodes),
			want: fmt.Sprintf("item %v stored on no node: none of the 3 nodes that answered gave a write token", target),
		},
		{
			name: "timeout",
			res:  dht.PutResult{Lookup: lookup},
			err:  context.DeadlineExceeded,
			want: fmt.Sprintf("item %v stored on no node: timed out after 30s", target),
		},
	}
	for _, tt := range tests {
		got := putFailure(it, &tt.req, &tt.res, tt.err, 30*time.Second)
		if got.Error() != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}

func TestDisplayValue(t *testing.T) {
	tests := []struct{ v, want, typ string }{
		{"5:hello", "hello", "string"},
		{"0:", "", "string"},
		{"11:a:b\nc:d\x00efg", "a:b\nc:d\x00efg", "string"},
		{"i-3e", "i-3e", "integer"},
		{"l1:ae", "l1:ae", "list"},
		{"d1:ai1ee", "d1:ai1ee", "dictionary"},
	}
	for _, tt := range tests {
		got, typ := displayValue([]byte(tt.v))
		if string(got) != tt.want || typ != tt.typ {
			t.Errorf("displayValue(%q) = %q, %s; want %q, %s", tt.v, got, typ, tt.want, tt.typ)
		}
	}
}
