// Command wdht-wasm is a wdht WebRTC node compiled to WebAssembly, for a web page: the
// same DHT code as the native node (krpc, dht, the WebTorrent extension, the WebRTC
// transport, whose pion runs on the browser's RTCPeerConnection), under a small JS API
// (wdht.d.ts): wdht.start({bootstrap, iceServers}) returns a node with lookup, announce,
// get, put, close and events for connections, state and logs.
//
// Build it with
//
//	GOOS=js GOARCH=wasm go build -o wdht.wasm ./cmd/wdht-wasm
//
// and load it with the Go installation's wasm_exec.js and wdht.js (see wdht.d.ts);
// 'wdht node' serves both with a demo page (cmd/wdht, demo.go).
package main

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/anacrolix/torrent/bencode"
	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/extensions/signals"
	"github.com/wdht/wdht/transport/webrtc"
)

// options are start's options.
type options struct {
	Bootstrap  []string           // signalling servers, "host:port"
	ICEServers []webrtc.ICEServer // STUN and TURN servers
	Timeout    time.Duration      // of the join; default 30 s
}

// node is a started node: a WebRTC transport and a DHT node with the WebTorrent extension.
type node struct {
	tr   *webrtc.Transport
	n    *dht.Node
	log  hclog.Logger
	emit func(event string, data map[string]any)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// startNode makes the node and joins the DHT through opts.Bootstrap: it dials every
// signalling server, then bootstraps from the peers that answered.
func startNode(ctx context.Context, opts options, log hclog.Logger, emit func(string, map[string]any)) (*node, error) {
	if len(opts.Bootstrap) == 0 {
		return nil, errors.New("start: no bootstrap signalling server")
	}
	tr, err := webrtc.New(&webrtc.Config{ICEServers: opts.ICEServers, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	n, err := signals.NewNode(tr, signals.WebRTC(tr), &dht.Config{Logger: log}, nil)
	if err != nil {
		tr.Close()
		return nil, fmt.Errorf("start: %w", err)
	}
	nd := &node{tr: tr, n: n, log: log, emit: emit}
	nd.ctx, nd.cancel = context.WithCancel(context.Background())
	nd.wg.Add(1)
	go nd.watch()
	nd.state("joining")
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	jctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var peers []netip.AddrPort
	var errs []error
	for _, s := range opts.Bootstrap {
		p, err := tr.Dial(jctx, s)
		if err != nil {
			log.Warn("cannot reach a signalling server", "server", s, "error", err)
			errs = append(errs, err)
			continue
		}
		log.Info("connected through a signalling server", "server", s, "peer", p)
		peers = append(peers, p)
	}
	if len(peers) == 0 {
		nd.close()
		return nil, fmt.Errorf("start: no signalling server answered: %w", errors.Join(errs...))
	}
	res, err := n.Bootstrap(jctx, peers...)
	if err != nil {
		nd.close()
		return nil, fmt.Errorf("start: %w", err)
	}
	log.Info("joined", "id", n.ID(), "responses", res.Responses, "ms", res.Duration.Milliseconds())
	nd.state("ready")
	return nd, nil
}

// watch reports the connections that open and close, and the state when it changes.
func (nd *node) watch() {
	defer nd.wg.Done()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	known := map[netip.AddrPort]bool{}
	for {
		select {
		case <-nd.ctx.Done():
			return
		case <-tick.C:
		}
		now := map[netip.AddrPort]bool{}
		for _, p := range nd.tr.Peers() {
			now[p.Addr] = true
			if !known[p.Addr] {
				nd.emit("connection", map[string]any{"event": "open", "addr": p.Addr.String(), "server": p.Server})
			}
		}
		for a := range known {
			if !now[a] {
				nd.emit("connection", map[string]any{"event": "close", "addr": a.String()})
			}
		}
		known = now
	}
}

// state emits a state event.
func (nd *node) state(s string) {
	st := nd.n.Stats()
	ts := nd.tr.Stats()
	nd.emit("state", map[string]any{"state": s, "id": nd.n.ID().String(), "nodes": len(nd.n.Nodes()),
		"connections": ts.Conns, "peers": st.Peers, "items": st.Items})
}

// lookup runs get_peers for infohash, calling onPeer with each new peer.
func (nd *node) lookup(ctx context.Context, infohash string, onPeer func(string)) (map[string]any, error) {
	ih, err := parseID(infohash, "infohash")
	if err != nil {
		return nil, err
	}
	var peers []string
	res, err := nd.n.GetPeers(ctx, ih, func(p netip.AddrPort, _ dht.NodeInfo) bool {
		s := p.String()
		if !slices.Contains(peers, s) {
			peers = append(peers, s)
			onPeer(s)
		}
		return true
	})
	if err != nil && len(peers) == 0 {
		return nil, fmt.Errorf("lookup: %w", err)
	}
	out := lookupFields(res)
	out["peers"] = peers
	return out, nil
}

// announce announces infohash with port (0: implied_port).
func (nd *node) announce(ctx context.Context, infohash string, port int) (map[string]any, error) {
	ih, err := parseID(infohash, "infohash")
	if err != nil {
		return nil, err
	}
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("announce: port %d: want 0 (implied) to 65535", port)
	}
	res, err := nd.n.Announce(ctx, ih, port)
	if err != nil {
		return nil, fmt.Errorf("announce: %w", err)
	}
	out := lookupFields(res.Lookup)
	out["stored"] = res.Stored
	return out, nil
}

// getOptions are get's options.
type getOptions struct {
	Salt string // the salt, as UTF-8
	Key  string // the public key, 64 hex, or ""
	Seq  *int64 // only versions newer than this
}

// get gets the BEP 44 item at target.
func (nd *node) get(ctx context.Context, target string, o getOptions) (map[string]any, error) {
	t, err := parseID(target, "target")
	if err != nil {
		return nil, err
	}
	opts := &dht.GetOptions{Seq: o.Seq}
	if o.Salt != "" {
		opts.Salt = []byte(o.Salt)
	}
	if o.Key != "" {
		k, err := hex.DecodeString(o.Key)
		if err != nil || len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("get: key %q: want 64 hex characters", o.Key)
		}
		opts.Key = k
	}
	res, err := nd.n.Get(ctx, t, opts)
	if errors.Is(err, dht.ErrNotFound) {
		out := lookupFields(res.Lookup)
		out["found"] = false
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	out := lookupFields(res.Lookup)
	out["found"] = true
	for k, v := range itemFields(res.Item) {
		out[k] = v
	}
	out["holders"] = res.Holders
	return out, nil
}

// putItem is put's item.
type putItem struct {
	Value string // stored as a bencoded string
	Seed  string // mutable: the ed25519 seed, 64 hex; "" for an immutable item
	Salt  string
	Seq   *int64 // mutable: default the current seq + 1, or 1
}

// makeItem builds the item; current returns the seq of the version stored now, if any.
func (p putItem) makeItem(current func(target dht.ID, salt []byte) (int64, bool)) (*dht.Item, error) {
	v, err := bencode.Marshal(p.Value)
	if err != nil {
		return nil, err
	}
	if len(v) > dht.MaxValueSize {
		return nil, fmt.Errorf("put: value of %d bytes bencoded, at most %d", len(v), dht.MaxValueSize)
	}
	if p.Seed == "" {
		if p.Salt != "" || p.Seq != nil {
			return nil, errors.New("put: salt and seq are for mutable items (give seed)")
		}
		return dht.NewImmutableItem(bencode.Bytes(v))
	}
	seed, err := hex.DecodeString(p.Seed)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("put: seed: want 64 hex characters, got %q", p.Seed)
	}
	if len(p.Salt) > dht.MaxSaltSize {
		return nil, fmt.Errorf("put: salt of %d bytes, at most %d", len(p.Salt), dht.MaxSaltSize)
	}
	key := ed25519.NewKeyFromSeed(seed)
	var salt []byte
	if p.Salt != "" {
		salt = []byte(p.Salt)
	}
	seq := int64(1)
	if p.Seq != nil {
		if *p.Seq < 0 {
			return nil, fmt.Errorf("put: seq %d: want 0 or more", *p.Seq)
		}
		seq = *p.Seq
	} else if current != nil {
		var k [ed25519.PublicKeySize]byte
		copy(k[:], key.Public().(ed25519.PublicKey))
		if cur, ok := current(dht.MutableTarget(k, salt), salt); ok {
			seq = cur + 1
		}
	}
	return dht.NewMutableItem(key, salt, seq, bencode.Bytes(v))
}

// put stores the item.
func (nd *node) put(ctx context.Context, p putItem) (map[string]any, error) {
	it, err := p.makeItem(func(target dht.ID, salt []byte) (int64, bool) {
		res, err := nd.n.Get(ctx, target, &dht.GetOptions{Salt: salt})
		if err != nil {
			return 0, false
		}
		return res.Item.Seq, true
	})
	if err != nil {
		return nil, err
	}
	res, err := nd.n.Put(ctx, it, nil)
	if err != nil {
		return nil, fmt.Errorf("put: %w", err)
	}
	out := lookupFields(res.Lookup)
	for k, v := range itemFields(it) {
		out[k] = v
	}
	out["stored"] = res.Stored
	return out, nil
}

// close closes the node; it is idempotent.
func (nd *node) close() {
	nd.once.Do(func() {
		nd.cancel()
		nd.wg.Wait()
		nd.n.Close()
		nd.tr.Close()
		nd.emit("state", map[string]any{"state": "closed"})
	})
}

func parseID(s, what string) (dht.ID, error) {
	var id dht.ID
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("%s %q: want 40 hex characters", what, s)
	}
	copy(id[:], b)
	return id, nil
}

func lookupFields(r *dht.LookupResult) map[string]any {
	out := map[string]any{}
	if r != nil {
		out["queries"], out["responses"], out["ms"] = r.Queries, r.Responses, r.Duration.Milliseconds()
	}
	return out
}

// itemFields describes an item for JS: the target, the bencoded value (hex) and, when it
// is a string, the value.
func itemFields(it *dht.Item) map[string]any {
	out := map[string]any{"target": it.Target().String(), "mutable": it.Mutable, "v": hex.EncodeToString(it.V)}
	var s string
	if bencode.Unmarshal(it.V, &s) == nil {
		out["value"] = s
	}
	if it.Mutable {
		out["seq"] = it.Seq
		out["key"] = hex.EncodeToString(it.K[:])
		out["salt"] = string(it.Salt)
	}
	return out
}

func msDuration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }

// ping pings addr ("ip:port", a peer a lookup found or a connected node) and returns its ID.
func (nd *node) ping(ctx context.Context, addr string) (map[string]any, error) {
	a, err := netip.ParseAddrPort(strings.TrimSpace(addr))
	if err != nil {
		return nil, fmt.Errorf("ping: address %q: want ip:port", addr)
	}
	t0 := time.Now()
	id, err := nd.n.Ping(ctx, a)
	if err != nil {
		return nil, fmt.Errorf("ping %v: %w", a, err)
	}
	return map[string]any{"id": id.String(), "ms": time.Since(t0).Milliseconds()}, nil
}
