//go:build !js

package webrtc_test

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/wdht/wdht/transport/webrtc"
)

// The signalling server's answers, the offers peers relay (NewAnswer) and the node's own
// offers (NewOffer, Dial) have separate budgets: with the relayed one full, the node
// still makes its own offers and the server still answers, and a newcomer takes the room
// of a source holding more. Per-source caps count an IPv6 /64 as one source.
func TestPendingBudgets(t *testing.T) {
	ctx := ctxFor(t, 30*time.Second)
	a := newTransport(t, "a", nil)
	o, err := a.NewOffer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	offer := o.SDP()

	b := newTransport(t, "b", &webrtc.Config{MaxPending: 2, MaxPendingPerIP: 2})
	_, srvAddr := serve(t, b, nil)
	relayer := netip.MustParseAddr("192.0.2.1")
	var first *webrtc.Answer
	for i := range 2 {
		ans, err := b.NewAnswer(ctx, offer, relayer)
		if err != nil {
			t.Fatalf("relayed answer %d: %v", i, err)
		}
		if i == 0 {
			first = ans
		}
	}
	// The relayed budget is full.
	if _, err := b.NewAnswer(ctx, offer, relayer); !errors.Is(err, webrtc.ErrTooManyPending) {
		t.Fatalf("third relayed answer from the same source: %v, want ErrTooManyPending", err)
	}
	// The node's own offers have their own budget.
	for i := range 2 {
		if _, err := b.NewOffer(ctx); err != nil {
			t.Fatalf("own offer %d with the relayed budget full: %v", i, err)
		}
	}
	// So do the signalling server's clients.
	resp, err := http.Post("http://"+srvAddr+"/", "text/plain", strings.NewReader(offerJSON(offer)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST with the relayed and own budgets full: %s, want 200", resp.Status)
	}
	// A relayed offer from another node takes the room of the oldest answer of the
	// source holding two.
	if _, err := b.NewAnswer(ctx, offer, netip.MustParseAddr("192.0.2.2")); err != nil {
		t.Fatalf("relayed answer from a newcomer into the full budget: %v", err)
	}
	select {
	case <-first.Ended():
	case <-ctx.Done():
		t.Fatal("the oldest answer of the source holding the most was not evicted")
	}
	if s := b.Stats(); s.Evicted != 1 || s.Pending != 5 {
		t.Errorf("Stats: Evicted %d, Pending %d; want 1 and 5", s.Evicted, s.Pending)
	}

	// IPv6: one /64 is one source.
	c := newTransport(t, "c", &webrtc.Config{MaxPendingPerIP: 1})
	if _, err := c.NewAnswer(ctx, offer, netip.MustParseAddr("2001:db8::1")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewAnswer(ctx, offer, netip.MustParseAddr("2001:db8::2")); !errors.Is(err, webrtc.ErrTooManyPending) {
		t.Fatalf("a second address of the same /64: %v, want ErrTooManyPending", err)
	}
	if _, err := c.NewAnswer(ctx, offer, netip.MustParseAddr("2001:db8:0:1::1")); err != nil {
		t.Fatalf("another /64: %v", err)
	}
	// An IPv4-mapped address counts as the IPv4 one.
	if _, err := c.NewAnswer(ctx, offer, netip.MustParseAddr("192.0.2.7")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewAnswer(ctx, offer, netip.MustParseAddr("::ffff:192.0.2.7")); !errors.Is(err, webrtc.ErrTooManyPending) {
		t.Fatalf("the IPv4-mapped form of a source at its cap: %v, want ErrTooManyPending", err)
	}
}
