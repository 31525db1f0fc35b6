package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/krpc"
)

// putCommand is "wdht put".
func putCommand() *command {
	return &command{
		name:  "put",
		short: "store a value in the DHT (BEP 44)",
		help: `Usage: wdht put [flags] VALUE
       wdht put [flags] --mutable --seed HEX [--salt S] [--seq N] [--cas N] VALUE

Put joins the DHT through the --bootstrap nodes and stores VALUE as a BEP 44
item on the nodes closest to its target. VALUE is stored as a bencoded string
("hello" as 5:hello); with --raw it must itself be one bencoded value (such as
i42e or d3:fooi1ee). Bencoded, it may be at most 1000 bytes. A VALUE that starts
with "-" goes after "--".

An immutable item (the default) is stored under the SHA-1 of its bencoded
value. A mutable item (--mutable) is signed with the ed25519 key of --seed and
stored under the SHA-1 of its public key and --salt; each new version needs a
higher sequence number. Without --seq, put first gets the current version and
uses its seq + 1 (1 when there is none).

It prints the item's target, which 'wdht get' takes:

	stored immutable item <40 hex> on 8 nodes
	stored mutable item <40 hex> seq=2 key=<64 hex> on 8 nodes

or with --json

	{"target":"<40 hex>","mutable":true,"seq":2,"key":"<64 hex>","stored":8,
	 "errors":[{"id":"<40 hex>","addr":"1.2.3.4:6881","code":302,"error":"..."}],
	 "queries":24,"responses":8,"rounds":3,"duration_ms":201.5}

where errors lists the nodes that refused the item or failed (code is the KRPC
error code, when there is one), and newest_seq, when present, is the newest
version the lookup saw. Exit status 1 when no node stored the item: the error
says why, for example that the DHT already holds a newer version (then it
names its seq) or that the nodes refused a --cas that did not match.

Flags:
  --mutable
        store a mutable item (needs --seed)
  --seed HEX
        64 hex characters: the 32-byte ed25519 seed of the signing key
        (mutable items only)
  --salt S
        the salt, at most 64 bytes: one key can sign one item per salt
        (mutable items only)
  --seq N
        the sequence number, 0 or more (mutable items only; default: the
        current version's seq + 1, or 1 when there is none)
  --cas N
        compare-and-swap: nodes holding the item store the new version only if
        theirs has seq N (mutable items only)
  --raw
        VALUE is already bencoded: store it as it is
` + clientFlagsHelp,
		flags: func() *flag.FlagSet { fs, _, _ := putFlagSet(); return fs },
		run:   runPut,
	}
}

// putFlags are the flags of "wdht put" beyond the client flags.
type putFlags struct {
	mutable    bool
	seed, salt string
	seq, cas   int64
	raw        bool
}

// putFlagSet returns put's flag set.
func putFlagSet() (*flag.FlagSet, *clientFlags, *putFlags) {
	fs, f := clientFlagSet("put")
	p := &putFlags{}
	fs.BoolVar(&p.mutable, "mutable", false, "")
	fs.StringVar(&p.seed, "seed", "", "")
	fs.StringVar(&p.salt, "salt", "", "")
	fs.Int64Var(&p.seq, "seq", 0, "")
	fs.Int64Var(&p.cas, "cas", 0, "")
	fs.BoolVar(&p.raw, "raw", false, "")
	return fs, f, p
}

// putRequest is what "wdht put" is asked to store.
type putRequest struct {
	value   bencode.Bytes // the bencoded value
	mutable bool
	key     ed25519.PrivateKey // mutable only
	salt    []byte
	seq     *int64 // nil: the current version's seq + 1
	cas     *int64
}

// parsePut parses put's arguments.
func parsePut(args []string) (*clientFlags, *putRequest, error) {
	fs, f, p := putFlagSet()
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, nil, err
	}
	switch len(pos) {
	case 0:
		return nil, nil, badUsage("missing VALUE")
	case 1:
	default:
		return nil, nil, badUsage("want one VALUE, got %d arguments: %q", len(pos), pos)
	}
	req := &putRequest{mutable: p.mutable}
	if !p.mutable {
		for _, name := range []string{"seed", "salt", "seq", "cas"} {
			if wasSet(fs, name) {
				return nil, nil, badUsage("--%s is for mutable items: add --mutable", name)
			}
		}
	} else {
		if !wasSet(fs, "seed") {
			return nil, nil, badUsage("--mutable needs --seed HEX, the 32-byte ed25519 seed of the signing key")
		}
		// The seed is a secret: the messages never repeat it.
		seed, err := decodeHex(p.seed, ed25519.SeedSize)
		if err != nil {
			return nil, nil, badInput("--seed: %v (a 32-byte ed25519 seed)", err)
		}
		req.key = ed25519.NewKeyFromSeed(seed)
		if len(p.salt) > dht.MaxSaltSize {
			return nil, nil, badInput("--salt: %d bytes, at most %d allowed", len(p.salt), dht.MaxSaltSize)
		}
		if p.salt != "" {
			req.salt = []byte(p.salt)
		}
		if wasSet(fs, "seq") {
			if p.seq < 0 {
				return nil, nil, badInput("--seq %d: want a sequence number of 0 or more", p.seq)
			}
			req.seq = &p.seq
		}
		if wasSet(fs, "cas") {
			if p.cas < 0 {
				return nil, nil, badInput("--cas %d: want a sequence number of 0 or more", p.cas)
			}
			req.cas = &p.cas
		}
	}
	if req.value, err = putValue(pos[0], p.raw); err != nil {
		return nil, nil, err
	}
	if err := f.check(true); err != nil {
		return nil, nil, err
	}
	return f, req, nil
}

// putValue returns VALUE bencoded: as a string, or with raw as it is once checked.
func putValue(s string, raw bool) (bencode.Bytes, error) {
	var v bencode.Bytes
	if raw {
		end, err := krpc.CheckValue([]byte(s))
		if err != nil {
			// The error is worded for messages: "krpc: malformed message at offset N: ...".
			why := strings.TrimPrefix(err.Error(), "krpc: malformed message ")
			return nil, badInput("--raw: VALUE is not bencoded: %s", why)
		}
		if end != len(s) {
			return nil, badInput("--raw: VALUE is not one bencoded value: %d bytes follow the first, from offset %d", len(s)-end, end)
		}
		v = bencode.Bytes(s)
	} else {
		v = bencode.Bytes(strconv.Itoa(len(s)) + ":" + s)
	}
	if len(v) > dht.MaxValueSize {
		return nil, badInput("VALUE is %d bytes bencoded, at most %d allowed", len(v), dht.MaxValueSize)
	}
	return v, nil
}

func runPut(ctx context.Context, e *env, args []string) error {
	f, req, err := parsePut(args)
	if err != nil {
		return err
	}
	return runJoined(ctx, e, f, func(ctx context.Context, c *client) error {
		return put(ctx, e, f, c, req)
	})
}

// put runs the put of "wdht put" and prints the outcome.
func put(ctx context.Context, e *env, f *clientFlags, c *client, req *putRequest) error {
	prog := e.showProgress(c, "putting", false)
	it, err := req.item(ctx, f, c)
	if err != nil {
		prog.stop()
		return err
	}
	res, err := c.node.Put(ctx, it, &dht.PutOptions{CAS: req.cas})
	prog.stop()
	if err != nil && (res == nil || res.Lookup == nil || res.Lookup.Responses == 0) {
		if errors.Is(err, dht.ErrNoNodes) || errors.Is(err, context.DeadlineExceeded) {
			return c.noAnswer("get lookup", lookupOf(res))
		}
		return opError(err, f.timeout)
	}
	if res != nil && res.Lookup != nil {
		res.Lookup.Duration = c.elapsed() // the JSON reports the real time the command took
	}
	if err == nil || f.json {
		printPut(e, f.json, it, res, f.timeout)
	}
	if err != nil {
		return putFailure(it, req, res, err, f.timeout)
	}
	return nil
}

// item builds the item to put. Without --seq, a mutable item takes the seq after the
// current version's, which it gets first.
func (req *putRequest) item(ctx context.Context, f *clientFlags, c *client) (*dht.Item, error) {
	if !req.mutable {
		return dht.NewImmutableItem(req.value)
	}
	if req.seq != nil {
		return dht.NewMutableItem(req.key, req.salt, *req.seq, req.value)
	}
	pub := req.key.Public().(ed25519.PublicKey)
	target := dht.MutableTarget([32]byte(pub), req.salt)
	res, err := c.node.Get(ctx, target, &dht.GetOptions{Salt: req.salt, Key: pub})
	var seq int64
	switch {
	case err == nil && res.Item.Seq == math.MaxInt64:
		return nil, fmt.Errorf("item %v: the DHT holds seq %d, the largest there is", target, res.Item.Seq)
	case err == nil:
		seq = res.Item.Seq + 1
	case errors.Is(err, dht.ErrNotFound):
		seq = 1
	case (errors.Is(err, dht.ErrNoNodes) || errors.Is(err, context.DeadlineExceeded)) && (res == nil || res.Lookup == nil || res.Lookup.Responses == 0):
		if c.web == nil {
			return nil, c.noAnswer("", lookupOf(res))
		}
		return nil, errors.New("no node answered the get lookup for the current version")
	default:
		return nil, fmt.Errorf("getting the current version: %v", opError(err, f.timeout))
	}
	return dht.NewMutableItem(req.key, req.salt, seq, req.value)
}

// putFailure explains why a put stored the item on no node.
func putFailure(it *dht.Item, req *putRequest, res *dht.PutResult, err error, timeout time.Duration) error {
	target := it.Target()
	if nw := res.Newest; nw != nil && len(res.Errors) == 0 && errors.Is(err, dht.ErrSeqTooLow) {
		// The lookup saw a newer version, and Put wrote nothing.
		what := fmt.Sprintf("seq %d of item %v, newer than seq %d", nw.Seq, target, it.Seq)
		if nw.Seq == it.Seq {
			what = fmt.Sprintf("another value under seq %d of item %v", nw.Seq, target)
		}
		next := "put again to use the next one"
		if req.seq != nil {
			next = fmt.Sprintf("use --seq %d or higher, or leave --seq out", nw.Seq+1)
		}
		return fmt.Errorf("the DHT already holds %s: %s", what, next)
	}
	held := ""
	if nw := res.Newest; nw != nil {
		held = fmt.Sprintf(" (the DHT holds seq %d)", nw.Seq)
	}
	if len(res.Errors) == 0 {
		if errors.Is(err, dht.ErrNoNodes) {
			return fmt.Errorf("item %v stored on no node%s: none of the %d nodes that answered gave a write token", target, held, res.Lookup.Responses)
		}
		return fmt.Errorf("item %v stored on no node%s: %v", target, held, opError(err, timeout))
	}
	var reasons []string
	for _, ni := range sortedNodes(res.Errors) {
		reasons = append(reasons, fmt.Sprintf("%v: %s", ni.Addr, putRefusal(res.Errors[ni], it, req.cas, timeout)))
	}
	return fmt.Errorf("item %v stored on no node%s: %s", target, held, strings.Join(reasons, "; "))
}

// putRefusal says why a node refused or failed a put.
func putRefusal(err error, it *dht.Item, cas *int64, timeout time.Duration) string {
	var ke *krpc.Error
	if !errors.As(err, &ke) {
		return opError(err, timeout).Error()
	}
	switch ke.Code {
	case krpc.ErrorCodeCASMismatch:
		if cas != nil {
			return fmt.Sprintf("compare-and-swap failed: its seq is not --cas %d (error %d)", *cas, ke.Code)
		}
		return fmt.Sprintf("compare-and-swap failed (error %d)", ke.Code)
	case krpc.ErrorCodeSeqTooLow:
		return fmt.Sprintf("seq %d is not newer than its version (error %d)", it.Seq, ke.Code)
	case krpc.ErrorCodeValueTooBig:
		return fmt.Sprintf("value too big (error %d)", ke.Code)
	case krpc.ErrorCodeInvalidSig:
		return fmt.Sprintf("invalid signature (error %d)", ke.Code)
	case krpc.ErrorCodeSaltTooBig:
		return fmt.Sprintf("salt too big (error %d)", ke.Code)
	}
	return fmt.Sprintf("error %d: %q", ke.Code, ke.Msg)
}

// sortedNodes returns the nodes of m ordered by address.
func sortedNodes(m map[dht.NodeInfo]error) []dht.NodeInfo {
	ns := make([]dht.NodeInfo, 0, len(m))
	for ni := range m {
		ns = append(ns, ni)
	}
	slices.SortFunc(ns, func(a, b dht.NodeInfo) int {
		return cmp.Or(a.Addr.Compare(b.Addr), bytes.Compare(a.ID[:], b.ID[:]))
	})
	return ns
}

// putJSON is put's JSON output.
type putJSON struct {
	Target     string        `json:"target"`
	Mutable    bool          `json:"mutable"`
	Seq        *int64        `json:"seq,omitempty"`
	Key        string        `json:"key,omitempty"`
	Stored     int           `json:"stored"`
	Errors     []nodeErrJSON `json:"errors"`
	NewestSeq  *int64        `json:"newest_seq,omitempty"`
	Queries    int           `json:"queries"`
	Responses  int           `json:"responses"`
	Rounds     int           `json:"rounds"`
	DurationMs float64       `json:"duration_ms"`
}

// nodeErrJSON is a node's refusal or failure in JSON output.
type nodeErrJSON struct {
	ID    string `json:"id"`
	Addr  string `json:"addr"`
	Code  int    `json:"code,omitempty"`
	Error string `json:"error"`
}

// printPut prints what a put did.
func printPut(e *env, asJSON bool, it *dht.Item, res *dht.PutResult, timeout time.Duration) {
	if !asJSON {
		if it.Mutable {
			fmt.Fprintf(e.stdout, "stored mutable item %v seq=%d key=%x on %d nodes\n", res.Target, it.Seq, it.K, res.Stored)
		} else {
			fmt.Fprintf(e.stdout, "stored immutable item %v on %d nodes\n", res.Target, res.Stored)
		}
		return
	}
	out := putJSON{Target: res.Target.String(), Mutable: it.Mutable, Stored: res.Stored, Errors: []nodeErrJSON{}}
	if it.Mutable {
		seq := it.Seq
		out.Seq, out.Key = &seq, hex.EncodeToString(it.K[:])
	}
	if nw := res.Newest; nw != nil {
		seq := nw.Seq
		out.NewestSeq = &seq
	}
	for _, ni := range sortedNodes(res.Errors) {
		err := res.Errors[ni]
		ne := nodeErrJSON{ID: ni.ID.String(), Addr: ni.Addr.String(), Error: opError(err, timeout).Error()}
		var ke *krpc.Error
		if errors.As(err, &ke) {
			ne.Code, ne.Error = ke.Code, ke.Msg
		}
		out.Errors = append(out.Errors, ne)
	}
	if l := res.Lookup; l != nil {
		out.Queries, out.Responses, out.Rounds, out.DurationMs = l.Queries, l.Responses, l.Rounds, ms(l.Duration)
	}
	json.NewEncoder(e.stdout).Encode(out)
}
