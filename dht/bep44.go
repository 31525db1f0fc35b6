package dht

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"github.com/wdht/wdht/krpc"
)

// ErrNotFound is returned by Get when no node holds a valid item for the target.
var ErrNotFound = errors.New("dht: item not found")

func (n *Node) handleGet(_ context.Context, q *krpc.Query) (*krpc.Response, error) {
	target := q.Args.Target
	if !q.Args.HasTarget() {
		return nil, krpc.ProtocolError("get: missing target")
	}
	r := n.newReturn()
	tok := n.tok.create(q.From.Addr(), target, time.Now())
	r.Token = &tok
	n.setNodes(r, q, target)
	if it, ok := n.items.Get(target); ok {
		if !it.Mutable {
			r.V = it.V
		} else {
			seq := it.Seq
			r.Seq = &seq // always: it tells the querier we hold the item, and its version
			if q.Args.Seq == nil || it.Seq > *q.Args.Seq {
				r.V, r.K, r.Sig = it.V, it.K, it.Sig
			}
		}
	}
	return &krpc.Response{Return: r}, nil
}

func (n *Node) handlePut(_ context.Context, q *krpc.Query) (*krpc.Response, error) {
	a := q.Args
	v, _ := a.V.(bencode.Bytes)
	if len(v) == 0 {
		return nil, krpc.ProtocolError("put: missing v")
	}
	if len(v) > MaxValueSize {
		return nil, ErrValueTooBig
	}
	it := &Item{V: v}
	var cas *int64
	if a.K != ([32]byte{}) {
		if len(a.Salt) > MaxSaltSize {
			return nil, ErrSaltTooBig
		}
		if a.Seq == nil {
			return nil, krpc.ProtocolError("put: mutable item without seq")
		}
		it.Mutable, it.K, it.Salt, it.Seq, it.Sig = true, a.K, a.Salt, *a.Seq, a.Sig
		if a.Cas != 0 || a.CasSet {
			c := a.Cas
			cas = &c
		}
	}
	if !n.tok.valid(a.Token, q.From.Addr(), it.Target(), time.Now()) {
		return nil, krpc.ProtocolError("put: bad token")
	}
	if err := it.Verify(); err != nil {
		return nil, err
	}
	if err := n.items.PutFrom(it, cas, q.From.Addr()); err != nil {
		return nil, err
	}
	n.itemStored(it, NodeInfo{ID: a.ID, Addr: q.From})
	return &krpc.Response{Return: n.newReturn()}, nil
}

// GetOptions refine Get. The zero value gets an immutable item, or a mutable one without salt.
type GetOptions struct {
	// Salt is the salt of the mutable item: nodes do not return it, and it is needed to
	// check that an item belongs to the target.
	Salt []byte
	// Key, when set, asks for a mutable item signed with this public key (an immutable
	// item under the target is then ignored).
	Key ed25519.PublicKey
	// Seq, when set, asks only for a mutable item newer than this sequence number.
	Seq *int64
	// Unchecked accepts mutable items whose target and signature cannot be checked
	// because their salt is unknown (nodes never return it), and picks the version most
	// nodes returned (then the newest). Only for relaying an item to a querier who
	// checks it, as BEP 44 requires of requesting nodes: the bridge answering a browser's
	// get from the mainline DHT. Immutable items are checked as always.
	Unchecked bool
}

// GetResult is what Get found.
type GetResult struct {
	// Item is the newest valid item found (checked against the target, and for a
	// mutable item against its signature).
	Item *Item
	// Holders counts the nodes that returned that version (this node included when it
	// holds it too).
	Holders int
	// Rejected counts the answers whose item failed the checks (wrong target — as a
	// salted item fetched without its salt — or a bad signature, or the wrong key).
	Rejected int
	// SeqOnly counts the answers that held a mutable item no newer than GetOptions.Seq:
	// they gave its sequence number without the value.
	SeqOnly int
	// Lookup is the iterative get lookup.
	Lookup *LookupResult
}

// Get looks up the BEP 44 item stored under target and returns the newest valid version:
// an immutable item whose value hashes to target, or a mutable item whose key and salt
// hash to target and whose signature holds (an immutable lookup stops at the first
// valid answer). Items that fail the checks are ignored (and counted). It fails with
// ErrNotFound when no node returned a valid item; the GetResult then says why
// (Rejected, SeqOnly).
func (n *Node) Get(ctx context.Context, target ID, opts *GetOptions) (*GetResult, error) {
	var o GetOptions
	if opts != nil {
		o = *opts
	}
	if o.Key != nil && len(o.Key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("dht: Get: public key of %d bytes, want %d", len(o.Key), ed25519.PublicKeySize)
	}
	if len(o.Salt) > MaxSaltSize {
		return nil, fmt.Errorf("dht: Get: salt of %d bytes, at most %d allowed", len(o.Salt), MaxSaltSize)
	}
	res := &GetResult{}
	votes := make(map[string]int)     // Unchecked: holders of each version (seq, sig, value)
	consider := func(it *Item) bool { // reports whether the lookup may stop
		if o.Unchecked && it.Mutable && it.Verify() != nil {
			key := fmt.Sprintf("%d %x %x %s", it.Seq, it.K, it.Sig, it.V)
			votes[key]++
			if res.Item == nil || votes[key] > res.Holders || votes[key] == res.Holders && it.Seq > res.Item.Seq {
				res.Item, res.Holders = it, votes[key]
			}
			return false
		}
		switch {
		case res.Item == nil || it.Seq > res.Item.Seq:
			res.Item, res.Holders = it, 1
		case it.Seq == res.Item.Seq:
			res.Holders++
		}
		return !it.Mutable
	}
	if it, ok := n.items.Get(target); ok && o.accept(it, target) {
		if consider(it) {
			res.Lookup = &LookupResult{Target: target}
			return res, nil
		}
	}
	lr, _, err := n.lookup(ctx, lookupSpec{
		method: krpc.MethodGet,
		target: target,
		args: func() *krpc.Args {
			a := &krpc.Args{}
			a.Target, a.Seq = target, o.Seq
			return a
		},
		onResponse: func(c *candidate, r *krpc.Response) bool {
			if r.Return.Token != nil {
				c.token = *r.Return.Token
			}
			it := itemFromReturn(r.Return, o.Salt)
			switch {
			case it == nil:
				if r.Return.Seq != nil {
					res.SeqOnly++
				}
				return false
			case !o.accept(it, target):
				res.Rejected++
				return false
			}
			return consider(it)
		},
	})
	res.Lookup = lr
	if res.Item != nil {
		return res, nil
	}
	if err != nil {
		return res, err
	}
	return res, ErrNotFound
}

// accept reports whether it is a valid item for target under the options.
func (o *GetOptions) accept(it *Item, target ID) bool {
	if o.Unchecked && it.Mutable && len(it.V) <= MaxValueSize && (o.Seq == nil || it.Seq > *o.Seq) {
		return o.Key == nil || string(o.Key) == string(it.K[:])
	}
	if it.Target() != target || it.Verify() != nil {
		return false
	}
	if o.Key != nil && !it.Mutable {
		return false
	}
	if it.Mutable {
		if o.Key != nil && string(o.Key) != string(it.K[:]) {
			return false
		}
		if o.Seq != nil && it.Seq <= *o.Seq {
			return false
		}
	}
	return true
}

// itemFromReturn builds the item a get response carries, or nil when it has none.
func itemFromReturn(r *krpc.Return, salt []byte) *Item {
	if len(r.V) == 0 {
		return nil
	}
	it := &Item{V: r.V}
	if r.K != ([32]byte{}) {
		if r.Seq == nil {
			return nil
		}
		it.Mutable, it.K, it.Salt, it.Seq, it.Sig = true, r.K, salt, *r.Seq, r.Sig
	}
	return it
}

// PutOptions refine Put.
type PutOptions struct {
	// CAS, when set, makes the put of a mutable item a compare-and-swap: nodes that hold
	// the item store the new version only if theirs has this sequence number (BEP 44
	// "cas"; it is not sent to nodes that hold no version).
	CAS *int64
}

// PutResult is what Put did.
type PutResult struct {
	// Target is the item's target.
	Target ID
	// Lookup is the get lookup that found the nodes to store on.
	Lookup *LookupResult
	// Stored counts the nodes that accepted the item.
	Stored int
	// Errors holds, per node that refused or failed, why (BEP 44 refusals are *krpc.Error
	// values such as ErrSeqTooLow and ErrCASMismatch; match with errors.Is).
	Errors map[NodeInfo]error
	// Newest is the newest valid version of a mutable item the lookup saw, if any; a
	// Seq above the one put means another writer got there first.
	Newest *Item
}

// Put stores it on the K nodes closest to its target: a get lookup collects their write
// tokens (and the versions they hold), then each gets a put. It fails when the item is
// invalid, when no node stored it, and, for a mutable item, without writing anything when
// the lookup saw a newer version (or another value under the same sequence number): the
// error then wraps ErrSeqTooLow, PutResult.Newest holds that version and Errors is empty
// (when nodes refused the put with 302, Errors holds their refusals instead).
func (n *Node) Put(ctx context.Context, it *Item, opts *PutOptions) (*PutResult, error) {
	if it == nil {
		return nil, errors.New("dht: Put: nil item")
	}
	if err := it.Verify(); err != nil {
		return nil, fmt.Errorf("dht: Put: %w", err)
	}
	var o PutOptions
	if opts != nil {
		o = *opts
	}
	target := it.Target()
	res := &PutResult{Target: target, Errors: make(map[NodeInfo]error)}
	holds := make(map[*candidate]bool)
	lr, closest, err := n.lookup(ctx, lookupSpec{
		method: krpc.MethodGet,
		target: target,
		args: func() *krpc.Args {
			a := &krpc.Args{}
			a.Target = target
			return a
		},
		onResponse: func(c *candidate, r *krpc.Response) bool {
			if r.Return.Token != nil {
				c.token = *r.Return.Token
			}
			holds[c] = r.Return.Seq != nil || len(r.Return.V) > 0
			if it.Mutable {
				if got := itemFromReturn(r.Return, it.Salt); got != nil && got.Target() == target && got.Verify() == nil &&
					(res.Newest == nil || got.Seq > res.Newest.Seq) {
					res.Newest = got
				}
			}
			return false
		},
	})
	res.Lookup = lr
	if err != nil {
		return res, err
	}
	if nw := res.Newest; nw != nil && (nw.Seq > it.Seq || nw.Seq == it.Seq && string(nw.V) != string(it.V)) {
		// Writing would only spread an older version to the nodes that lack the item.
		return res, fmt.Errorf("dht: put: the DHT already holds seq %d of this item (putting seq %d): %w", nw.Seq, it.Seq, ErrSeqTooLow)
	}
	type outcome struct {
		ni  NodeInfo
		err error
	}
	done := make(chan outcome, len(closest))
	sent := 0
	for _, c := range closest {
		if c.token == "" {
			continue
		}
		a := putArgs(it, c.token)
		if it.Mutable && o.CAS != nil && holds[c] {
			a.Cas, a.CasSet = *o.CAS, true
		}
		ni := c.NodeInfo
		if n.spawn(func() {
			_, err := n.query(ctx, ni.Addr, &ni.ID, krpc.MethodPut, a)
			done <- outcome{ni, err}
		}) {
			sent++
		}
	}
	for range sent {
		o := <-done
		if o.err == nil {
			res.Stored++
		} else {
			res.Errors[o.ni] = o.err
		}
	}
	if res.Stored == 0 {
		if sent == 0 {
			return res, fmt.Errorf("dht: put: no node gave a write token: %w", ErrNoNodes)
		}
		errs := make([]error, 0, len(res.Errors))
		for _, e := range res.Errors {
			errs = append(errs, e)
		}
		return res, fmt.Errorf("dht: put: no node stored the item: %w", errors.Join(errs...))
	}
	return res, nil
}

// putArgs returns the arguments of a put of it with a write token.
func putArgs(it *Item, token string) *krpc.Args {
	a := &krpc.Args{}
	a.Token, a.V = token, it.V
	if it.Mutable {
		seq := it.Seq
		a.K, a.Salt, a.Seq, a.Sig = it.K, it.Salt, &seq, it.Sig
	}
	return a
}
