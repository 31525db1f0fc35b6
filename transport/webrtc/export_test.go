package webrtc

import (
	"context"
	"net/netip"
)

// Ended is closed when the offer ended without connecting (tests only).
func (o *Offer) Ended() <-chan struct{} { return o.p.ended }

// Ended is closed when the answer ended without connecting (tests only).
func (a *Answer) Ended() <-chan struct{} { return a.p.ended }

// SetResolver replaces the mDNS query of one of peers' .local names (tests only).
func (t *Transport) SetResolver(f func(ctx context.Context, name string) (netip.Addr, bool)) {
	t.query = f
}

// PrepareRemoteSDP exposes the rewriting of a peer's SDP (tests only).
func (t *Transport) PrepareRemoteSDP(ctx context.Context, sdp string) string {
	return t.prepareRemoteSDP(ctx, sdp)
}

// ParseAnnouncement and EncodeAnnouncement expose the first-message codec (tests only).
var ParseAnnouncement = parseAnnouncement

func EncodeHTTPAnnouncement(host string, port int) []byte {
	return encodeAnnouncement(announceHTTP, host, port)
}

func EncodeWSAnnouncement(host string, port int) []byte {
	return encodeAnnouncement(announceWS, host, port)
}

// Sources returns how many client sources hold connections and requests in progress
// (tests only).
func (s *Server) Sources() (conns, requests int) { return s.sources() }

// PoolSizes returns, per budget ("own", "relayed", "server"), the offers and answers it
// holds and the sources they count for (tests only).
func (t *Transport) PoolSizes() map[string][2]int {
	out := map[string][2]int{}
	for i, s := range t.poolSizes() {
		out[poolNames[i]] = s
	}
	return out
}
