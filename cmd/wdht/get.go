package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"unicode/utf8"

	"github.com/wdht/wdht/dht"
)

// getCommand is "wdht get".
func getCommand() *command {
	return &command{
		name:  "get",
		short: "get a value from the DHT (BEP 44)",
		help: `Usage: wdht get [flags] TARGET
       wdht get [flags] --key HEX [--salt S]

Get joins the DHT through the --bootstrap nodes and looks up the BEP 44 item
stored under TARGET (40 hex characters, as 'wdht put' prints it): an immutable
item whose value hashes to TARGET, or the newest version of a mutable item
whose key and salt do, with a valid signature. Without TARGET, --key and
--salt name it: the mutable item of that public key and salt. A mutable item
put with --salt is found only with the same --salt.

It prints the value to stdout: when it is a bencoded string, the string's bytes
as they are (and a newline when stdout is a terminal), else the bencoded value;
then a summary to stderr:

	mutable item <40 hex> seq=2 key=<64 hex> from 8 nodes
	immutable item <40 hex> from 1 nodes

With --json, one object to stdout:

	{"target":"<40 hex>","mutable":true,"seq":2,"key":"<64 hex>","value":"hello",
	 "value_type":"string","value_bencoded":"NTpoZWxsbw==","holders":8,
	 "queries":24,"responses":8,"rounds":3,"duration_ms":152.3}

value is what the text output prints, as a JSON string, or in base64 with
"value_base64":true when it is not valid UTF-8; value_type is string, integer,
list or dictionary; value_bencoded is the bencoded value in base64; holders
counts the nodes that returned this version. Exit status 1 when the item was
not found.

Flags:
  --salt S
        the salt of the mutable item, at most 64 bytes
  --key HEX
        64 hex characters: accept only a mutable item signed with this ed25519
        public key (as 'wdht put' prints it); without TARGET, get that key's
        item
  --seq N
        accept only a mutable item with a seq above N
` + clientFlagsHelp,
		flags: func() *flag.FlagSet { fs, _, _ := getFlagSet(); return fs },
		run:   runGet,
	}
}

// getFlags are the flags of "wdht get" beyond the client flags.
type getFlags struct {
	salt, key string
	seq       int64
}

// getFlagSet returns get's flag set.
func getFlagSet() (*flag.FlagSet, *clientFlags, *getFlags) {
	fs, f := clientFlagSet("get")
	g := &getFlags{}
	fs.StringVar(&g.salt, "salt", "", "")
	fs.StringVar(&g.key, "key", "", "")
	fs.Int64Var(&g.seq, "seq", 0, "")
	return fs, f, g
}

// parseGet parses get's arguments into the target and the options of the lookup.
func parseGet(args []string) (*clientFlags, dht.ID, *dht.GetOptions, error) {
	fs, f, g := getFlagSet()
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, dht.ID{}, nil, err
	}
	opts := &dht.GetOptions{}
	if len(g.salt) > dht.MaxSaltSize {
		return nil, dht.ID{}, nil, badInput("--salt: %d bytes, at most %d allowed", len(g.salt), dht.MaxSaltSize)
	}
	if g.salt != "" {
		opts.Salt = []byte(g.salt)
	}
	if wasSet(fs, "key") {
		k, err := decodeHex(g.key, ed25519.PublicKeySize)
		if err != nil {
			return nil, dht.ID{}, nil, badInput("--key %q: %v (an ed25519 public key)", g.key, err)
		}
		opts.Key = k
	}
	if wasSet(fs, "seq") {
		if g.seq < 0 {
			return nil, dht.ID{}, nil, badInput("--seq %d: want a sequence number of 0 or more", g.seq)
		}
		opts.Seq = &g.seq
	}
	var target dht.ID
	switch {
	case len(pos) > 1:
		return nil, dht.ID{}, nil, badUsage("want one TARGET, got %d arguments: %q", len(pos), pos)
	case len(pos) == 1:
		if target, err = parseHexID(pos[0]); err != nil {
			return nil, dht.ID{}, nil, badInput("target %q: %v", pos[0], err)
		}
		if opts.Key != nil {
			if want := dht.MutableTarget([32]byte(opts.Key), opts.Salt); want != target {
				with := "no salt"
				if g.salt != "" {
					with = fmt.Sprintf("--salt %q", g.salt)
				}
				return nil, dht.ID{}, nil, badInput("target %v does not match --key %s with %s (that is %v)", target, g.key, with, want)
			}
		}
	case opts.Key != nil:
		target = dht.MutableTarget([32]byte(opts.Key), opts.Salt)
	default:
		return nil, dht.ID{}, nil, badUsage("missing TARGET (or --key HEX, to get the mutable item of a public key)")
	}
	if err := f.check(true); err != nil {
		return nil, dht.ID{}, nil, err
	}
	return f, target, opts, nil
}

func runGet(ctx context.Context, e *env, args []string) error {
	f, target, opts, err := parseGet(args)
	if err != nil {
		return err
	}
	return runJoined(ctx, e, f, func(ctx context.Context, c *client) error {
		return get(ctx, e, f, c, target, opts)
	})
}

// get runs the lookup of "wdht get" and prints the item.
func get(ctx context.Context, e *env, f *clientFlags, c *client, target dht.ID, opts *dht.GetOptions) error {
	prog := e.showProgress(c, "getting", false)
	res, err := c.node.Get(ctx, target, opts)
	prog.stop()
	if err != nil {
		responses := 0
		if res != nil && res.Lookup != nil {
			responses = res.Lookup.Responses
		}
		switch {
		case errors.Is(err, dht.ErrNotFound):
			newer, hint := "", ""
			if opts.Seq != nil {
				newer = fmt.Sprintf(" with a seq above %d", *opts.Seq)
			}
			if opts.Salt == nil {
				hint = "; an item put with --salt is found only with the same --salt"
			}
			return fmt.Errorf("item %v not found%s (%d nodes answered%s)", target, newer, responses, hint)
		case responses == 0 && (errors.Is(err, dht.ErrNoNodes) || errors.Is(err, context.DeadlineExceeded)):
			return c.noAnswer("get lookup", lookupOf(res))
		}
		return opError(err, f.timeout)
	}
	if res.Lookup != nil {
		res.Lookup.Duration = c.elapsed() // the JSON reports the real time the command took
	}
	printItem(e, f.json, res)
	return nil
}

// getJSON is get's JSON output.
type getJSON struct {
	Target        string  `json:"target"`
	Mutable       bool    `json:"mutable"`
	Seq           *int64  `json:"seq,omitempty"`
	Key           string  `json:"key,omitempty"`
	Value         string  `json:"value"`
	ValueBase64   bool    `json:"value_base64,omitempty"`
	ValueType     string  `json:"value_type"`
	ValueBencoded []byte  `json:"value_bencoded"`
	Holders       int     `json:"holders"`
	Queries       int     `json:"queries"`
	Responses     int     `json:"responses"`
	Rounds        int     `json:"rounds"`
	DurationMs    float64 `json:"duration_ms"`
}

// printItem prints the item found: its value to stdout, and a summary to stderr, or
// all of it in JSON to stdout.
func printItem(e *env, asJSON bool, res *dht.GetResult) {
	it := res.Item
	value, typ := displayValue(it.V)
	if !asJSON {
		if e.stdoutTTY && !bytes.HasSuffix(value, []byte("\n")) {
			value = append(value[:len(value):len(value)], '\n')
		}
		e.stdout.Write(value)
		if it.Mutable {
			fmt.Fprintf(e.stderr, "mutable item %v seq=%d key=%x from %d nodes\n", it.Target(), it.Seq, it.K, res.Holders)
		} else {
			fmt.Fprintf(e.stderr, "immutable item %v from %d nodes\n", it.Target(), res.Holders)
		}
		return
	}
	out := getJSON{
		Target:        it.Target().String(),
		Mutable:       it.Mutable,
		ValueType:     typ,
		ValueBencoded: it.V,
		Holders:       res.Holders,
	}
	if utf8.Valid(value) {
		out.Value = string(value)
	} else {
		out.Value, out.ValueBase64 = base64.StdEncoding.EncodeToString(value), true
	}
	if it.Mutable {
		seq := it.Seq
		out.Seq, out.Key = &seq, hex.EncodeToString(it.K[:])
	}
	if l := res.Lookup; l != nil {
		out.Queries, out.Responses, out.Rounds, out.DurationMs = l.Queries, l.Responses, l.Rounds, ms(l.Duration)
	}
	json.NewEncoder(e.stdout).Encode(out)
}

// displayValue returns what get prints of the bencoded value v (the contents of a
// string, else v itself) and the type of v: string, integer, list or dictionary.
func displayValue(v []byte) ([]byte, string) {
	if len(v) == 0 {
		return v, "empty"
	}
	switch v[0] {
	case 'i':
		return v, "integer"
	case 'l':
		return v, "list"
	case 'd':
		return v, "dictionary"
	}
	// A string: a length in decimal, ':' and that many bytes.
	i := bytes.IndexByte(v, ':')
	n := 0
	for _, c := range v[:max(i, 0)] {
		if c < '0' || c > '9' || n > dht.MaxValueSize {
			return v, "invalid"
		}
		n = n*10 + int(c-'0')
	}
	if i < 1 || i+1+n != len(v) {
		return v, "invalid"
	}
	return v[i+1:], "string"
}
