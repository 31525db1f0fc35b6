package dht

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/memory"
)

// fuzzMethods are the methods a node serves, and one it does not.
var fuzzMethods = []string{
	krpc.MethodPing, krpc.MethodFindNode, krpc.MethodGetPeers, krpc.MethodAnnouncePeer,
	krpc.MethodGet, krpc.MethodPut, krpc.MethodSampleInfohashes, "vote",
}

// FuzzHandlers sends a node on the memory network a query of every method with
// arbitrary arguments: args is spliced into the "a" dictionary after the id, so the
// fuzzer controls every other key (target, info_hash, token, port, v, k, sig, seq, salt,
// cas, want, ...). Nothing may panic; everything the node sends back must be valid KRPC:
// a response with its 20-byte id or an error with a BEP 5 or BEP 44 code, under a
// transaction ID of ours; and the node must still answer a ping after it.
func FuzzHandlers(f *testing.F) {
	for m := range fuzzMethods {
		for _, args := range []string{
			"",
			"6:target20:" + id20("t"),
			"9:info_hash20:" + id20("i") + "4:porti6881e5:token2:xx",
			"9:info_hash20:" + id20("i") + "12:implied_porti1e5:token0:",
			"1:v5:hello5:token4:abcd",
			"1:k32:" + id20("k") + "012345678901" + "3:sig64:" + id20("s") + id20("s") + id20("s") + "0123" + "3:seqi-1e1:v1:x",
			"3:casi7e4:salt65:" + id20("a") + id20("a") + id20("a") + "01234",
			"4:wantl2:n42:n6e",
			"4:wantli4ee",
			"6:target3:abc",
			"3:seqi99999999999999999999e",
			"4:porti-1e",
			"1:xd1:yl1:zee",
		} {
			f.Add(uint8(m), []byte(args))
		}
	}
	net := memory.NewNetwork(nil)
	tr, err := net.Listen(netip.AddrPort{})
	if err != nil {
		f.Fatal(err)
	}
	n, err := New(tr, unlimited())
	if err != nil {
		f.Fatal(err)
	}
	peer, err := net.Listen(netip.AddrPort{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { n.Close(); tr.Close(); peer.Close() })
	n.Announce(f.Context(), RandomID(), 1) // something stored to answer with
	if it, err := NewImmutableItem("stored"); err == nil {
		n.Items().Put(it, nil)
	}
	peerID := RandomID()
	seq := 0
	sent := make(map[string]bool) // transaction IDs of the queries so far (answers may come late)
	f.Fuzz(func(t *testing.T, method uint8, args []byte) {
		m := fuzzMethods[int(method)%len(fuzzMethods)]
		seq++
		tid := fmt.Sprintf("%04x", seq&0xffff)
		sent[tid] = true
		q := fmt.Sprintf("d1:ad2:id20:%s%se1:q%d:%s1:t4:%s1:y1:qe", peerID[:], args, len(m), m, tid)
		if err := peer.Send(n.Addr(), []byte(q)); err != nil {
			t.Fatal(err)
		}
		ping := fmt.Sprintf("d1:ad2:id20:%se1:q4:ping1:t4:zzzz1:y1:qe", peerID[:])
		if err := peer.Send(n.Addr(), []byte(ping)); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for {
			p, err := peer.Receive(ctx)
			if err != nil {
				t.Fatalf("no answer to a ping after %s %q: %v", m, args, err)
			}
			var msg krpc.Msg
			if err := msg.UnmarshalBinary(p.Data); err != nil {
				t.Fatalf("the node sent invalid KRPC %q after %s %q: %v", p.Data, m, args, err)
			}
			switch msg.Y {
			case krpc.TypeQuery:
				continue // the node checks on us (a ping before we enter its table)
			case krpc.TypeResponse:
				if msg.R == nil || msg.R.ID != n.ID() {
					t.Fatalf("a response without the node's id: %q", p.Data)
				}
			case krpc.TypeError:
				if msg.E == nil || !validErrorCode(msg.E.Code) {
					t.Fatalf("an error with a code outside BEP 5 and BEP 44: %q", p.Data)
				}
			default:
				t.Fatalf("a message of type %q: %q", msg.Y, p.Data)
			}
			if msg.T == "zzzz" {
				if msg.Y != krpc.TypeResponse {
					t.Fatalf("the ping after %s %q was answered %q", m, args, p.Data)
				}
				return
			}
			if !sent[msg.T] {
				t.Fatalf("an answer under transaction %q, which no query had: %q", msg.T, p.Data)
			}
		}
	})
}

// id20 is a 20-byte string made of s repeated.
func id20(s string) string {
	b := make([]byte, 20)
	for i := range b {
		b[i] = s[i%len(s)]
	}
	return string(b)
}

func validErrorCode(c int) bool {
	switch c {
	case krpc.ErrorCodeGeneric, krpc.ErrorCodeServer, krpc.ErrorCodeProtocol, krpc.ErrorCodeMethodUnknown,
		krpc.ErrorCodeValueTooBig, krpc.ErrorCodeInvalidSig, krpc.ErrorCodeSaltTooBig,
		krpc.ErrorCodeCASMismatch, krpc.ErrorCodeSeqTooLow:
		return true
	}
	return false
}
