package dht

import (
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wdht/wdht/transport/udp"
)

// hostileDatagrams are the inputs the issue lists: truncated bencode, wrong types, short
// ids, 1-byte values and ip, a query without "a", deep nesting, huge strings.
func hostileDatagrams() map[string][]byte {
	id := strings.Repeat("\x01", 20)
	ping := "d1:ad2:id20:" + id + "e1:q4:ping1:t2:aa1:y1:qe"
	return map[string][]byte{
		"truncated":                  []byte(ping[:len(ping)-7]),
		"truncated in a string":      []byte("d1:ad2:id20:abc"),
		"not bencode":                []byte("GET / HTTP/1.1\r\n\r\n"),
		"empty":                      {},
		"wrong type for t":           []byte("d1:ad2:id20:" + id + "e1:q4:ping1:ti1e1:y1:qe"),
		"wrong type for a":           []byte("d1:ai1e1:q4:ping1:t2:aa1:y1:qe"),
		"wrong type for info_hash":   []byte("d1:ad2:id20:" + id + "9:info_hashi1ee1:q9:get_peers1:t2:aa1:y1:qe"),
		"wrong type for port":        []byte("d1:ad2:id20:" + id + "9:info_hash20:" + id + "4:port3:abc5:token2:xxe1:q13:announce_peer1:t2:aa1:y1:qe"),
		"short id":                   []byte("d1:ad2:id5:shorte1:q4:ping1:t2:aa1:y1:qe"),
		"short target":               []byte("d1:ad2:id20:" + id + "6:target3:abce1:q9:find_node1:t2:aa1:y1:qe"),
		"1-byte ip":                  []byte("d2:ip1:x1:t2:aa1:y1:re"),
		"1-byte values":              []byte("d1:rd2:id20:" + id + "6:valuesl1:xee1:t2:aa1:y1:re"),
		"announce_peer without a":    []byte("d1:q13:announce_peer1:t2:aa1:y1:qe"),
		"get_peers without a":        []byte("d1:q9:get_peers1:t2:aa1:y1:qe"),
		"deep nesting":               []byte("d1:ad2:id20:" + id + "1:x" + strings.Repeat("l", 5000) + strings.Repeat("e", 5000) + "e1:q4:ping1:t2:aa1:y1:qe"),
		"1 MiB string claim":         []byte("d1:ad2:id20:" + id + "1:x1048576:" + strings.Repeat("x", 100) + "e1:q4:ping1:t2:aa1:y1:qe"),
		"60 KB string":               []byte("d1:ad2:id20:" + id + "1:x60000:" + strings.Repeat("x", 60000) + "e1:q4:ping1:t2:aa1:y1:qe"),
		"response nobody asked for":  []byte("d1:rd2:id20:" + id + "e1:t2:zz1:y1:re"),
		"error nobody asked for":     []byte("d1:eli201e3:boome1:t2:zz1:y1:ee"),
		"huge integer":               []byte("d1:ad2:id20:" + id + "4:porti99999999999999999999999ee1:q4:ping1:t2:aa1:y1:qe"),
		"negative port":              []byte("d1:ad2:id20:" + id + "9:info_hash20:" + id + "4:porti-1e5:token2:xxe1:q13:announce_peer1:t2:aa1:y1:qe"),
		"unknown method with junk a": []byte("d1:ad2:id20:" + id + "3:zzzli1eli2eeee1:q7:whatever1:t2:aa1:y1:qe"),
	}
}

// A node on a real UDP socket gets every hostile datagram and, at the same time, a flood
// of pings from one address; another address must still get its pings and lookups
// answered, and the node's goroutines stay bounded.
func TestHostileDatagramsUDP(t *testing.T) {
	tr, err := udp.Listen(netip.MustParseAddrPort("127.0.0.1:0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	n, err := New(tr, nil) // default limits
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	attacker, err := udp.Listen(netip.MustParseAddrPort("127.0.0.1:0"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer attacker.Close()
	other, err := udp.Listen(netip.MustParseAddrPort("127.0.0.2:0"), nil)
	if err != nil {
		t.Skipf("no second loopback address: %v", err)
	}
	defer other.Close()
	cli, err := New(other, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	goroutines := runtime.NumGoroutine()
	for name, b := range hostileDatagrams() {
		if err := attacker.Send(n.Addr(), b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	stop := make(chan struct{})
	var sent atomic.Int64
	flooding := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		// 20,000 pings a second, 200 times the per-source limit. (Much faster, and the
		// kernel drops datagrams from everyone when the socket buffer overflows, before
		// any program can tell sources apart.)
		ping := []byte("d1:ad2:id20:" + strings.Repeat("\x02", 20) + "e1:q4:ping1:t2:aa1:y1:qe")
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			for range 20 {
				attacker.Send(n.Addr(), ping)
			}
			if sent.Add(20) == 1000 {
				close(flooding) // well past the source's burst of 200
			}
		}
	}()
	<-flooding
	// Ping while the flood goes on (staying within our own source's burst of 200).
	pings := 0
	for pings < 20 || pings < 150 && sent.Load() < 10_000 {
		if id, err := cli.Ping(t.Context(), n.Addr()); err != nil || id != n.ID() {
			t.Fatalf("ping %d during the flood: %v, %v", pings, id, err)
		}
		pings++
	}
	if _, err := cli.Bootstrap(t.Context(), n.Addr()); err != nil {
		t.Fatalf("lookup during the flood: %v", err)
	}
	close(stop)
	<-done
	t.Logf("%d pings answered during a flood of %d pings", pings, sent.Load())
	st := n.Stats().KRPC
	t.Logf("server stats %+v", st)
	if st.RateLimited == 0 {
		t.Error("the flood was not rate limited")
	}
	if g := runtime.NumGoroutine(); g > goroutines+5 {
		t.Errorf("goroutines grew from %d to %d", goroutines, g)
	}
}
