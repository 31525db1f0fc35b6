package dht

import (
	"context"
	"net/netip"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wdht/wdht/krpc"
)

// An all-zero infohash or target is an ordinary ID: a node answers find_node, get_peers,
// announce_peer, get and sample_infohashes for it; a query without the key gets 203.
func TestZeroAndMissingIDs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, nil)
		a := c.add(nil)
		b := c.add(nil)
		if _, err := b.Bootstrap(t.Context(), a.Addr()); err != nil {
			t.Fatal(err)
		}
		var zero ID
		if _, err := b.Announce(t.Context(), zero, 5000); err != nil {
			t.Fatalf("announce of the zero infohash: %v", err)
		}
		want := netip.AddrPortFrom(b.Addr().Addr(), 5000)
		var got []netip.AddrPort
		if _, err := a.GetPeers(t.Context(), zero, func(p netip.AddrPort, _ NodeInfo) bool { got = append(got, p); return true }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("get_peers of the zero infohash: %v, want [%v]", got, want)
		}
		if _, err := a.FindNode(t.Context(), zero); err != nil {
			t.Errorf("find_node of the zero target: %v", err)
		}
		if _, err := a.Get(t.Context(), zero, nil); err != ErrNotFound {
			t.Errorf("get of the zero target: %v, want ErrNotFound (answered, nothing stored)", err)
		}
		if s, err := b.SampleInfohashes(t.Context(), a.Addr(), zero); err != nil || len(s.Samples) != 1 || s.Samples[0] != zero {
			t.Errorf("sample_infohashes with the zero target: %+v, %v", s, err)
		}

		// Raw queries without the key.
		tr := c.listen()
		id := RandomID()
		for _, method := range []string{krpc.MethodFindNode, krpc.MethodGetPeers, krpc.MethodGet, krpc.MethodSampleInfohashes} {
			raw := "d1:ad2:id20:" + string(id[:]) + "e1:q" + strconv.Itoa(len(method)) + ":" + method + "1:t2:aa1:y1:qe"
			if err := tr.Send(a.Addr(), []byte(raw)); err != nil {
				t.Fatal(err)
			}
			var m krpc.Msg
			for m.T != "aa" { // the node may ping us first
				ctx, cancel := context.WithTimeout(t.Context(), time.Second)
				p, err := tr.Receive(ctx)
				cancel()
				if err != nil {
					t.Fatalf("%s without its ID: no answer: %v", method, err)
				}
				if err := m.UnmarshalBinary(p.Data); err != nil {
					t.Fatalf("%s without its ID: %q: %v", method, p.Data, err)
				}
			}
			if m.Y != krpc.TypeError || m.E.Code != krpc.ErrorCodeProtocol {
				t.Errorf("%s without its ID: %+v, want a 203 error", method, m)
			}
		}
	})
}
