package webrtc

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/pion/stun"
)

// ParseICEServer parses a STUN or TURN server given as one URL, the form a user types:
//
//	stun:HOST[:PORT]                         (port 3478; stuns: 5349)
//	turn:USER:PASSWORD@HOST[:PORT][?transport=udp|tcp]
//	turns:USER:PASSWORD@HOST[:PORT][?transport=tcp]
//
// USER and PASSWORD may be percent-encoded (%3A for a colon, %40 for @). The credentials
// are moved to ICEServer.Username and Credential and the URL is kept without them, as
// WebRTC's RTCIceServer holds them. A TURN URL without credentials parses; Config.Validate
// then asks for them.
func ParseICEServer(s string) (ICEServer, error) {
	scheme, rest, ok := strings.Cut(s, ":")
	scheme = strings.ToLower(scheme)
	if !ok || (scheme != "stun" && scheme != "stuns" && scheme != "turn" && scheme != "turns") {
		return ICEServer{}, fmt.Errorf("ICE server %q: want stun:, stuns:, turn: or turns:", s)
	}
	var srv ICEServer
	hostPart, query, _ := strings.Cut(rest, "?")
	if i := strings.LastIndexByte(hostPart, '@'); i >= 0 {
		if scheme == "stun" || scheme == "stuns" {
			return ICEServer{}, fmt.Errorf("ICE server %q: a STUN server takes no credentials", s)
		}
		user, pass, ok := strings.Cut(hostPart[:i], ":")
		if !ok {
			return ICEServer{}, fmt.Errorf("ICE server %q: want USER:PASSWORD@ before the host", s)
		}
		var err error
		if srv.Username, err = url.PathUnescape(user); err == nil {
			srv.Credential, err = url.PathUnescape(pass)
		}
		if err != nil || srv.Username == "" {
			return ICEServer{}, fmt.Errorf("ICE server %q: bad USER:PASSWORD (percent-encode : and @ in them)", s)
		}
		hostPart = hostPart[i+1:]
	}
	u := scheme + ":" + hostPart
	if query != "" {
		u += "?" + query
	}
	if err := checkICEURL(u); err != nil {
		return ICEServer{}, fmt.Errorf("ICE server %q: %v", redact(s, srv), err)
	}
	srv.URLs = []string{u}
	return srv, nil
}

// checkICEURL checks a STUN or TURN URL with the parser pion applies, and its port.
func checkICEURL(u string) error {
	p, err := stun.ParseURI(u)
	if err != nil {
		return err
	}
	if p.Port < 1 || p.Port > 65535 {
		return fmt.Errorf("port %d: want 1 to 65535", p.Port)
	}
	return nil
}

// redact replaces the password of srv in s.
func redact(s string, srv ICEServer) string {
	if srv.Credential == "" {
		return s
	}
	return strings.Replace(s, ":"+url.PathEscape(srv.Credential)+"@", ":***@", 1)
}

// isTURN reports whether an ICE server URL is a TURN server's.
func isTURN(u string) bool {
	l := strings.ToLower(u)
	return strings.HasPrefix(l, "turn:") || strings.HasPrefix(l, "turns:")
}

// validateICE checks the ICE servers and the transport policy.
func (c *Config) validateICE() []error {
	var errs []error
	turn := false
	for i, s := range c.ICEServers {
		for _, u := range s.URLs {
			if err := checkICEURL(u); err != nil {
				errs = append(errs, fmt.Errorf("webrtc: ICEServers[%d]: %q: %v", i, u, err))
				continue
			}
			if isTURN(u) {
				turn = true
				if s.Username == "" {
					errs = append(errs, fmt.Errorf("webrtc: ICEServers[%d]: TURN server %q needs a Username and Credential", i, u))
				}
			}
		}
	}
	if c.RelayOnly && !turn {
		errs = append(errs, fmt.Errorf("webrtc: RelayOnly needs a TURN server in ICEServers"))
	}
	return errs
}

// Acceptance waits: how long after the start of its connectivity checks the controlling
// side of a connection (the offerer) waits before it nominates a candidate pair of each
// type, giving a better pair the time to answer. pion's defaults are 0 for host pairs,
// 500 ms for server-reflexive, 1 s for peer-reflexive and 2 s for relayed ones: a client
// behind a NAT that dials a public signalling server offering over WebSocket is a
// peer-reflexive candidate for the server and waited 1 s. Offers and answers carry every
// candidate (no trickle), so every check starts at once and a direct pair answers within
// one round trip of a relayed one: shorter waits cost nothing. An offer's nominator asks
// pion for a round of checks as each wait ends (nominate_native.go), so that a pair that
// succeeded earlier is nominated then rather than at pion's next 200 ms tick.
const (
	hostAcceptanceWait  = 0
	srflxAcceptanceWait = 50 * time.Millisecond
	prflxAcceptanceWait = 50 * time.Millisecond
	relayAcceptanceWait = 300 * time.Millisecond
)

// candidateNote is what the first gathering of a transport tells the operator.
func (t *Transport) candidateNote(sdp string) {
	if t.cfg.Loopback || !t.noted.CompareAndSwap(false, true) {
		return
	}
	var host []netip.Addr
	public, srflx, relay := false, false, false
	for l := range strings.SplitSeq(sdp, "\n") {
		l = strings.TrimSuffix(l, "\r")
		a, _, _, ok := candidateAddr(l)
		if !ok {
			continue
		}
		switch {
		case strings.Contains(l, " typ srflx"):
			srflx = true
		case strings.Contains(l, " typ relay"):
			relay = true
		case strings.Contains(l, " typ host"):
			if ip, err := netip.ParseAddr(a); err == nil {
				host = append(host, ip)
				if !privateIP(ip) {
					public = true
				}
			}
		}
	}
	switch {
	case len(t.cfg.ICEServers) == 0 && !public:
		t.log.Warn("only private host candidates and no STUN server: peers outside this network "+
			"cannot connect to this node; give a STUN server (webrtc.Config.ICEServers, wdht --ice-server stun:HOST:PORT)",
			"candidates", fmt.Sprint(host))
	case len(t.cfg.ICEServers) > 0 && !srflx && !relay:
		t.log.Warn("the STUN/TURN servers gave no candidate (unreachable, or wrong credentials): "+
			"only host candidates are offered", "servers", fmt.Sprint(t.iceURLs()), "candidates", fmt.Sprint(host))
	}
}

// iceURLs returns the ICE servers' URLs (never their credentials).
func (t *Transport) iceURLs() []string {
	var out []string
	for _, s := range t.cfg.ICEServers {
		out = append(out, s.URLs...)
	}
	return out
}

// privateIP reports whether ip is not reachable from the internet: RFC 1918, the
// carrier-grade NAT range (RFC 6598), unique local IPv6, link-local and loopback.
func privateIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() ||
		netip.MustParsePrefix("100.64.0.0/10").Contains(ip)
}

// explain adds to err, the reason an offer or answer did not connect, what ICE had to
// work with when it never found a working candidate pair; the first time neither side
// had a relay candidate, it also logs why at warn level, once per transport.
func (p *pending) explain(err error) error {
	if err == nil || errors.Is(err, errClosed) || errors.Is(err, errAbandoned) || p.pe == nil || p.pe.connected() {
		return err
	}
	ours := candidateTypes(p.sdp)
	theirs := candidateTypes(p.pe.remoteDescriptionSDP())
	if theirs == "" {
		return err // no answer applied yet: nothing to explain
	}
	why := fmt.Sprintf("ICE found no working candidate pair (ours: %s; the peer's: %s)", ours, theirs)
	if !strings.Contains(ours, "relay") && !strings.Contains(theirs, "relay") {
		why += "; with no relay candidate on either side, two peers behind NATs that map each " +
			"destination to a new port (symmetric NATs) cannot connect: a TURN server is needed"
		if p.t.failNoted.CompareAndSwap(false, true) {
			p.t.log.Warn("a WebRTC connection failed: " + why + " (webrtc.Config.ICEServers, wdht --ice-server turn:USER:PASSWORD@HOST:PORT)")
		}
	}
	return fmt.Errorf("%w: %s", err, why)
}

// candidateTypes lists the candidate types of an SDP, "host, srflx".
func candidateTypes(sdp string) string {
	seen := map[string]bool{}
	var out []string
	for l := range strings.SplitSeq(sdp, "\n") {
		if !strings.HasPrefix(l, "a=candidate:") {
			continue
		}
		f := strings.Fields(l)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "typ" && !seen[f[i+1]] {
				seen[f[i+1]] = true
				out = append(out, f[i+1])
			}
		}
	}
	return strings.Join(out, ", ")
}
