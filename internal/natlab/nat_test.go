//go:build linux

package natlab

import (
	"context"
	"crypto/ed25519"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/internal/netlab"
)

// lab is the network of the NAT tests: a public bridge (`wdht node`), coturn, and one
// NAT router with one host behind it per (type, side).
type lab struct {
	*netlab.Lab
	turn       *netlab.TURN
	bridgeHost *netlab.Host
	hosts      map[string]*netlab.Host // "<type>/a", "<type>/b"
}

var natTypes = []netlab.NATType{netlab.EndpointIndependent, netlab.PortRestricted, netlab.Symmetric}

// newLab builds coturn, the bridge's host and, for each of types, two NAT routers of
// that type ("a" and "b" sides) with one host each.
func newLab(t *testing.T, nat netlab.NATConfig, types ...netlab.NATType) *lab {
	t.Helper()
	l := &lab{Lab: netlab.New(t), hosts: map[string]*netlab.Host{}}
	l.turn = l.PublicHost("turn").StartTURN(t, "wdht", "lab-secret")
	l.bridgeHost = l.PublicHost("bridge")
	for _, typ := range types {
		for _, side := range []string{"a", "b"} {
			cfg := nat
			cfg.Type = typ
			n := l.NAT(fmt.Sprintf("%s-%s", typ, side), cfg)
			l.hosts[typ.String()+"/"+side] = n.Host(fmt.Sprintf("h-%s-%s", typ, side))
		}
	}
	return l
}

// infohash returns a test infohash named s.
func infohash(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// pairResult is one row of the NAT table.
type pairResult struct {
	a, b       netlab.NATType
	turn       bool
	relayB     bool // B gathers relay candidates only
	connected  bool
	candidates string  // B's view of its connection to A: "local/remote"
	connectMS  float64 // B's lookup that opened the connection to A
	dialMS     [2]float64
	found      int // lookups (of 2) that found the other's peer
}

func (r pairResult) String() string {
	ice := "STUN"
	if r.turn {
		ice = "STUN+TURN"
	}
	if r.relayB {
		ice += " (B relay only)"
	}
	return fmt.Sprintf("| %s | %s | %s | %v | %s | %.0f ms | %.0f / %.0f ms | %d/2 |", r.a, r.b, ice, r.connected,
		r.candidates, r.connectMS, r.dialMS[0], r.dialMS[1], r.found)
}

// runPair starts a node behind a NAT of type a and one behind b, both joining through
// a new bridge; each announces an infohash and looks up the other's. It returns what
// happened; the caller checks it. With parallel, A's and B's announces, then their
// lookups, run at once (for pairs that do not connect: each waits for its connection
// attempts to time out).
func runPair(ctx context.Context, t *testing.T, l *lab, a, b netlab.NATType, withTURN, relayB, parallel bool) (pairResult, *labNode, *labNode) {
	t.Helper()
	ice := []string{l.turn.STUNURL()}
	if withTURN {
		ice = append(ice, l.turn.TURNURL())
	}
	res := pairResult{a: a, b: b, turn: withTURN, relayB: relayB}
	// A bridge of its own: one that knew the nodes of an earlier pair would send
	// queries to them, dead, and the lookups would wait for their timeouts.
	br := startBridge(ctx, t, l.bridgeHost)
	var na, nb *labNode
	var wg sync.WaitGroup
	wg.Go(func() {
		na = startNode(ctx, t, l.hosts[a.String()+"/a"], nodeSpec{ICE: ice, Bootstrap: br.signal})
	})
	wg.Go(func() {
		nb = startNode(ctx, t, l.hosts[b.String()+"/b"], nodeSpec{ICE: ice, Relay: relayB, Bootstrap: br.signal})
	})
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for i, n := range []*labNode{na, nb} {
		if n.joined.Err != "" {
			t.Fatalf("%s did not join through the bridge: %s", n.host.Name, n.joined.Err)
		}
		res.dialMS[i] = n.joined.DialMS
		// The bridge is public: each node's connection to it is direct, to its host
		// candidate, whatever the NAT.
		if !strings.HasSuffix(candidatesOf(n.joined.Peers, n.joined.Peer), "/host") && n.joined.Peer != "" {
			t.Logf("%s: connection to the bridge %s: %s", n.host.Name, n.joined.Peer, candidatesOf(n.joined.Peers, n.joined.Peer))
		}
	}
	tag := fmt.Sprintf("%s-%s-%v-%d", a, b, withTURN, time.Now().UnixNano())
	ihA, ihB := infohash("a"+tag), infohash("b"+tag)
	var ann [2]reply
	for i, n := range []struct {
		node *labNode
		ih   string
	}{{na, ihA}, {nb, ihB}} {
		announce := func() { ann[i] = n.node.do(ctx, t, command{Op: "announce", IH: n.ih}) }
		if parallel {
			wg.Go(announce)
		} else {
			announce()
		}
	}
	wg.Wait()
	for i, n := range []*labNode{na, nb} {
		if r := ann[i]; r.Err != "" || r.Stored == 0 {
			t.Fatalf("%s's announce: %+v", n.host.Name, r)
		}
		t.Logf("%s's announce: %.0f ms", n.host.Name, ann[i].MS)
	}
	// B looks up A's infohash: the bridge relays B's offer to A (the peer it stores),
	// and the value B gets is the address of B's own connection to A.
	var ra, rb reply
	lookupA := func() { ra = na.do(ctx, t, command{Op: "lookup", IH: ihB, Timeout: lookupTimeoutMS}) }
	if parallel {
		wg.Go(lookupA)
	}
	rb = nb.do(ctx, t, command{Op: "lookup", IH: ihA, Timeout: lookupTimeoutMS})
	if parallel {
		wg.Wait()
	} else {
		lookupA()
	}
	res.connectMS = rb.MS
	for _, r := range []reply{rb, ra} {
		if len(r.Found) > 0 {
			res.found++
		}
	}
	if len(rb.Found) > 0 {
		res.connected = true
		res.candidates = candidatesOf(rb.Peers, rb.Found[0])
	}
	t.Logf("B's lookup of A's peer: %+v", rb)
	t.Logf("A's lookup of B's peer: %+v", ra)
	return res, na, nb
}

const lookupTimeoutMS = 20000

// candidatesOf returns the candidate types of the connection to addr in peers.
func candidatesOf(peers []peerInfo, addr string) string {
	for _, p := range peers {
		if p.Addr == addr {
			return p.Candidates
		}
	}
	return "?"
}

// TestGoNodesBehindNATs: two of our WebRTC nodes, each behind a NAT, join through a
// public `wdht node` bridge and each finds the peer the other announced, over a
// connection the bridge relayed the offers of: direct, with server- or peer-reflexive
// candidates from coturn's STUN, when both NATs are endpoint-independent or
// port-restricted, or one is endpoint-independent and the other symmetric; relayed by
// coturn's TURN when one is port-restricted or symmetric and the other symmetric, or
// when B takes relay candidates only. A node behind a symmetric NAT gets a BEP 44
// mutable item another put, through TURN (testMutableGet).
func TestGoNodesBehindNATs(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	l := newLab(t, netlab.NATConfig{}, natTypes...)
	var rows []pairResult
	for _, tc := range []struct {
		a, b   netlab.NATType
		turn   bool // coturn's TURN URL besides its STUN URL
		relayB bool // B: --ice-transport-policy relay
	}{
		{netlab.EndpointIndependent, netlab.EndpointIndependent, false, false},
		{netlab.EndpointIndependent, netlab.PortRestricted, false, false},
		{netlab.PortRestricted, netlab.PortRestricted, false, false},
		{netlab.EndpointIndependent, netlab.Symmetric, false, false},
		// Through the TURN relay: no direct pair works between a port-restricted or
		// symmetric NAT and a symmetric one, and a relay-only node uses nothing else.
		{netlab.PortRestricted, netlab.Symmetric, true, false},
		{netlab.Symmetric, netlab.Symmetric, true, false},
		{netlab.EndpointIndependent, netlab.Symmetric, true, true},
	} {
		name := fmt.Sprintf("%s-%s", tc.a, tc.b)
		if tc.turn {
			name += "-turn"
		}
		if tc.relayB {
			name += "-relay-only"
		}
		t.Run(name, func(t *testing.T) {
			r, _, _ := runPair(ctx, t, l, tc.a, tc.b, tc.turn, tc.relayB, false)
			rows = append(rows, r)
			if r.found != 2 {
				t.Errorf("%d of 2 lookups found the other's peer", r.found)
			}
			if !r.connected {
				return
			}
			local, remote, _ := strings.Cut(r.candidates, "/")
			if tc.turn {
				if local != "relay" && remote != "relay" {
					t.Errorf("B's connection to A: candidates %s, want a relayed one", r.candidates)
				}
				return
			}
			if remote != "srflx" && remote != "prflx" {
				t.Errorf("B's connection to A: candidates %s, want a server- or peer-reflexive remote candidate", r.candidates)
			}
		})
	}
	t.Run("mutable-get-symmetric-turn", func(t *testing.T) {
		testMutableGet(ctx, t, l)
	})
	t.Log("\n| NAT A | NAT B | ICE servers | connected | candidates (B→A, local/remote) | B's lookup | A, B join (dial) | lookups found |\n" +
		"| --- | --- | --- | --- | --- | --- | --- | --- |\n" + joinRows(rows))
}

// TestGoNodesBehindLossyNATs: the pairs of TestGoNodesBehindNATs that connect directly
// through port-restricted NATs, and through TURN between symmetric ones, still find each
// other's peers with 2 % loss and 40 ms of delay each way on every NAT's LAN link. It
// takes a minute or more (the delay is forwarded by this process), so it runs only with
// WDHT_NATLAB_LOSSY=1: the README's figures come from it.
func TestGoNodesBehindLossyNATs(t *testing.T) {
	if os.Getenv("WDHT_NATLAB_LOSSY") == "" {
		t.Skip("WDHT_NATLAB_LOSSY=1 runs it (a minute or more)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	l := newLab(t, netlab.NATConfig{LossPercent: 2, Delay: 40 * time.Millisecond}, netlab.PortRestricted, netlab.Symmetric)
	var rows []pairResult
	for _, tc := range []struct {
		a, b netlab.NATType
		turn bool
	}{
		{netlab.PortRestricted, netlab.PortRestricted, false},
		{netlab.Symmetric, netlab.Symmetric, true},
	} {
		t.Run(fmt.Sprintf("%s-%s", tc.a, tc.b), func(t *testing.T) {
			r, _, _ := runPair(ctx, t, l, tc.a, tc.b, tc.turn, false, false)
			rows = append(rows, r)
			if r.found != 2 {
				t.Errorf("%d of 2 lookups found the other's peer", r.found)
			}
		})
	}
	t.Log("\n2 % loss, 40 ms delay each way on each NAT's LAN link:\n" + joinRows(rows))
}

// TestSymmetricNATsWithoutTURN: behind two symmetric NATs, with STUN and no TURN, the
// lookups find nothing, end within their timeout, leave no offer or answer pending,
// and the log says why.
func TestSymmetricNATsWithoutTURN(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	l := newLab(t, netlab.NATConfig{}, netlab.Symmetric)
	{
		r, na, nb := runPair(ctx, t, l, netlab.Symmetric, netlab.Symmetric, false, false, true)
		t.Log("\n" + r.String())
		if r.found != 0 {
			t.Fatalf("%d lookups found the other's peer behind two symmetric NATs without TURN", r.found)
		}
		if r.connectMS >= lookupTimeoutMS {
			t.Errorf("B's lookup took %.0f ms, its timeout is %d ms: it should end when its connections fail", r.connectMS, lookupTimeoutMS)
		}
		// Every offer and answer ends: the offers when the extension gives up on them,
		// the answers when ICE fails (pion: 20 s of checks).
		for _, n := range []*labNode{na, nb} {
			deadline := time.Now().Add(30 * time.Second)
			for {
				p := n.do(ctx, t, command{Op: "peers"})
				if p.Pending == 0 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: %d offers or answers still pending", n.host.Name, p.Pending)
				}
				time.Sleep(time.Second)
			}
		}
		// Says why, in the log.
		for _, n := range []*labNode{na, nb} {
			if out := n.proc.Output(); !strings.Contains(out, "relay candidate") {
				t.Errorf("%s: no log line saying why the connection failed:\n%s", n.host.Name, out)
			}
		}
	}
}

func joinRows(rows []pairResult) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(r.String() + "\n")
	}
	return b.String()
}

// testMutableGet: a node behind a symmetric NAT puts a BEP 44 mutable item through the
// bridge; a node behind another symmetric NAT that uses the TURN relay only (so every
// connection it has, to the bridge too, is relayed) gets it, with its sequence number.
func testMutableGet(ctx context.Context, t *testing.T, l *lab) {
	ice := []string{l.turn.STUNURL(), l.turn.TURNURL()}
	br := startBridge(ctx, t, l.bridgeHost)
	var na, nb *labNode
	var wg sync.WaitGroup
	wg.Go(func() {
		na = startNode(ctx, t, l.hosts["symmetric/a"], nodeSpec{ICE: ice, Bootstrap: br.signal})
	})
	wg.Go(func() {
		nb = startNode(ctx, t, l.hosts["symmetric/b"], nodeSpec{ICE: ice, Relay: true, Bootstrap: br.signal})
	})
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, n := range []*labNode{na, nb} {
		if n.joined.Err != "" {
			t.Fatalf("%s did not join through the bridge: %s", n.host.Name, n.joined.Err)
		}
	}
	if c := candidatesOf(nb.joined.Peers, nb.joined.Peer); c != "relay/host" {
		t.Errorf("the relay-only node's connection to the bridge: candidates %s, want relay/host", c)
	}
	seed := sha1.Sum([]byte(fmt.Sprint("mutable", time.Now().UnixNano())))
	key := ed25519.NewKeyFromSeed(append(seed[:], make([]byte, ed25519.SeedSize-len(seed))...))
	value := fmt.Sprintf("behind a symmetric NAT %d", time.Now().UnixNano())
	r := na.do(ctx, t, command{Op: "put", Seed: hex.EncodeToString(key.Seed()), Value: value, Seq: 7})
	if r.Err != "" || r.Stored == 0 {
		t.Fatalf("A's put: %+v", r)
	}
	target := dht.MutableTarget([ed25519.PublicKeySize]byte(key.Public().(ed25519.PublicKey)), nil)
	g := nb.do(ctx, t, command{Op: "get", IH: target.String(), Timeout: lookupTimeoutMS})
	t.Logf("B's get (relay only): %+v", g)
	want := fmt.Sprintf("%d:%s", len(value), value)
	if g.Err != "" || g.Value != want || g.Seq != 7 {
		t.Fatalf("B's get: value %q seq %d err %q, want %q seq 7", g.Value, g.Seq, g.Err, want)
	}
	for _, p := range g.Peers {
		if !strings.HasPrefix(p.Candidates, "relay/") {
			t.Errorf("the relay-only node has a connection to %s with candidates %s", p.Addr, p.Candidates)
		}
	}
}
