package webrtc

import (
	"context"
	"net/netip"

	"github.com/wdht/wdht/internal/ratelimit"
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

// PoolMaxPerSource returns, per budget, the most offers and answers one source (an IPv4
// address or an IPv6 /64, as ratelimit.SourceKey says, whatever the pool counts) holds in
// it now (tests only).
func (t *Transport) PoolMaxPerSource() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]int{}
	for i, pl := range t.pools {
		held := map[netip.Addr]int{}
		for p := range pl.entries {
			if p.src.IsValid() {
				k := ratelimit.SourceKey(p.src)
				held[k]++
				out[poolNames[i]] = max(out[poolNames[i]], held[k])
			}
		}
	}
	return out
}

// SendQueued returns the bytes counted as queued, unsent, on all connections together
// (tests only).
func (t *Transport) SendQueued() int64 { return t.sendQueued.Load() }

// MaxConnsPerSource returns the most connections one source holds open to the server
// now (tests only).
func (s *Server) MaxConnsPerSource() int {
	s.mu.Lock()
	limiters := s.limiters
	s.mu.Unlock()
	most := 0
	for _, l := range limiters {
		l.mu.Lock()
		for _, n := range l.count {
			most = max(most, n)
		}
		l.mu.Unlock()
	}
	return most
}
