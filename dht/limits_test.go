package dht

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	akrpc "github.com/anacrolix/dht/v2/krpc"

	"github.com/wdht/wdht/internal/bubble"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/memory"
)

// atBaseline fails t unless n is idle again after a flood: none of its queries
// outstanding, no verification ping pending, and no more goroutines in the test's
// synctest bubble than goroutines (bubble.Goroutines, counted before the flood).
func atBaseline(t *testing.T, n *Node, goroutines int) {
	t.Helper()
	synctest.Wait()
	n.mu.Lock()
	verifying := len(n.verifying)
	n.mu.Unlock()
	if st := n.Stats(); st.KRPC.OutstandingNow != 0 || verifying != 0 {
		t.Errorf("after the flood: %d queries outstanding, %d verifications pending", st.KRPC.OutstandingNow, verifying)
	}
	if g := bubble.Goroutines(); g > goroutines {
		t.Errorf("%d goroutines after the flood, %d before", g, goroutines)
	}
}

// TestVerifyingBounded: 100 unknown nodes that query a node and never answer its pings
// get at most maxVerifying pings in flight from it; a well-behaved node is still
// answered meanwhile, and once the pings time out no verification is left pending.
func TestVerifyingBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		cfg := unlimited()
		cfg.MaintenanceInterval = time.Hour // no maintenance lookup within the test's minute
		x := c.add(cfg)
		good := c.add(nil)
		synctest.Wait()
		goroutines := bubble.Goroutines()
		silent := make([]*memory.Transport, 100)
		for i := range silent {
			silent[i] = c.listen()
			id := RandomID()
			q := fmt.Sprintf("d1:ad2:id20:%se1:q4:ping1:t2:aa1:y1:qe", id[:])
			if err := silent[i].Send(x.Addr(), []byte(q)); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if _, err := good.Ping(t.Context(), x.Addr()); err != nil {
			t.Fatalf("a well-behaved node's ping during the flood: %v", err)
		}
		pinged := 0
		done, cancel := context.WithCancel(t.Context())
		cancel()
		for _, s := range silent {
			for {
				p, err := s.Receive(done) // what is queued, without waiting
				if err != nil {
					break
				}
				if bytes.Contains(p.Data, []byte("1:q4:ping")) {
					pinged++
					break
				}
			}
		}
		x.mu.Lock()
		pending := len(x.verifying)
		x.mu.Unlock()
		if pinged != maxVerifying || pending != maxVerifying {
			t.Fatalf("100 unknown queriers: %d pinged, %d verifications pending; want %d", pinged, pending, maxVerifying)
		}
		time.Sleep(time.Minute) // the pings time out
		synctest.Wait()
		x.mu.Lock()
		pending = len(x.verifying)
		x.mu.Unlock()
		if pending != 0 {
			t.Fatalf("%d verifications still pending after the pings timed out", pending)
		}
		atBaseline(t, x, goroutines)
	})
}

// peerFlood is a fakeResponder whose get_peers answers also carry 500 peers never seen
// before, with its ever-closer fake nodes.
type peerFlood struct {
	*fakeResponder
	peers uint32
}

func (f *peerFlood) filter(d *memory.Datagram) bool {
	if !fakeNet.Contains(d.To.Addr()) {
		return true
	}
	var m krpc.Msg
	if m.UnmarshalBinary(d.Data) != nil || m.Y != krpc.TypeQuery || m.A == nil || m.Q != krpc.MethodGetPeers {
		return false
	}
	f.mu.Lock()
	self := f.ids[d.To]
	var ns []NodeInfo
	for range 8 {
		ns = append(ns, f.fake(m.A.InfoHash))
	}
	tok := "tok"
	r := krpc.Msg{T: m.T, Y: krpc.TypeResponse, R: &krpc.Return{}}
	r.R.ID = self
	r.R.Nodes = compactNodes(ns)
	r.R.Token = &tok
	for range 500 {
		f.peers++
		var na akrpc.NodeAddr
		na.FromAddrPort(netip.AddrPortFrom(netip.AddrFrom4([4]byte{100, 64 + byte(f.peers>>16), byte(f.peers >> 8), byte(f.peers)}), 6881))
		r.R.Values = append(r.R.Values, na)
	}
	f.mu.Unlock()
	b, err := r.AppendBinary(nil)
	if err != nil {
		panic(err)
	}
	from, to := d.To, d.From
	go f.net.Inject(from, to, b)
	return false
}

// TestGetPeersSeenBounded: responders that answer get_peers with ever more distinct
// peers (500 new ones each, and ever-closer fake nodes) get at most maxLookupPeers of
// them delivered, each once, and the lookup still ends within its query cap. The node
// answers a well-behaved node's ping while the lookup runs and is back at its baseline
// once it ended.
func TestGetPeersSeenBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		f := &peerFlood{fakeResponder: &fakeResponder{net: c.net, ids: make(map[netip.AddrPort]ID)}}
		c.net.SetFilter(f.filter)
		a := c.add(&Config{MaxLookupQueries: 50})
		good := c.add(nil)
		ih := RandomID()
		f.mu.Lock()
		entry := f.fake(ih)
		f.mu.Unlock()
		know(a, entry, time.Millisecond)
		synctest.Wait()
		goroutines := bubble.Goroutines()
		seen := make(map[netip.AddrPort]int)
		var res *LookupResult
		var err error
		done := make(chan struct{})
		go func() {
			defer close(done)
			res, err = a.GetPeers(t.Context(), ih, func(p netip.AddrPort, _ NodeInfo) bool { seen[p]++; return true })
		}()
		if _, err := good.Ping(t.Context(), a.Addr()); err != nil {
			t.Fatalf("a well-behaved node's ping during the lookup: %v", err)
		}
		<-done
		if err != nil {
			t.Fatal(err)
		}
		delivered := 0
		for p, n := range seen {
			if n != 1 {
				t.Fatalf("peer %v delivered %d times", p, n)
			}
			delivered++
		}
		f.mu.Lock()
		sent := f.peers
		f.mu.Unlock()
		if sent <= maxLookupPeers || delivered != maxLookupPeers {
			t.Fatalf("responders sent %d distinct peers, %d delivered; want more than %d sent and %d delivered", sent, delivered, maxLookupPeers, maxLookupPeers)
		}
		if res.Queries > 50 {
			t.Fatalf("%d queries, above the cap of 50", res.Queries)
		}
		time.Sleep(time.Second) // answers still in flight land
		atBaseline(t, a, goroutines)
	})
}
