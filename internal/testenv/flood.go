package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/wdht/wdht/transport/webrtc"
)

// FloodSource is the source of offer i of the flood issue 9 asks a node to withstand:
// for even i one of 500 addresses of the IPv6 /64 2001:db8:1:2::/64, for odd i one of
// 64 IPv4 addresses (198.51.100.0 to .63).
func FloodSource(i int) netip.Addr {
	if i%2 == 0 {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 8: 0xa, 14: byte(i >> 8), 15: byte(i)})
	}
	return netip.AddrFrom4([4]byte{198, 51, 100, byte(i % 64)})
}

// FloodOffer delivers offer i of that flood, from FloodSource(i): half of the offers
// (i%4 < 2) are POSTed to the signalling server srv, the others relayed to tr
// (NewAnswer, as peer_connection and signals do). It returns the outcome: "server" and
// the HTTP status, or "relayed" and whether tr answered.
func FloodOffer(ctx context.Context, srv *webrtc.Server, tr *webrtc.Transport, offer string, i int) string {
	if i%4 < 2 {
		body, _ := json.Marshal(map[string]any{"type": "offer", "sdp": offer, "extensions": []string{}})
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/", bytes.NewReader(body))
		req.RemoteAddr = netip.AddrPortFrom(FloodSource(i), 40000).String()
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		return fmt.Sprintf("server %d", w.Code)
	}
	_, err := tr.NewAnswer(ctx, offer, FloodSource(i))
	return fmt.Sprintf("relayed %v", err == nil)
}
