package webrtc

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/pion/mdns"
	"golang.org/x/net/ipv4"
)

// maxSDPSize bounds an offer or answer from a peer.
const maxSDPSize = 32 << 10

// candidateAddr returns the connection-address field of an "a=candidate:" SDP line
// ("a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ ...")
// and its position in the line.
func candidateAddr(line string) (addr string, start, end int, ok bool) {
	if !strings.HasPrefix(line, "a=candidate:") {
		return "", 0, 0, false
	}
	i := 0
	for field := 0; field < 5; field++ {
		// Skip the field and the spaces after it.
		for i < len(line) && line[i] != ' ' {
			i++
		}
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i >= len(line) {
			return "", 0, 0, false
		}
		if field == 3 {
			start = i
			for i < len(line) && line[i] != ' ' {
				i++
			}
			return line[start:i], start, i, true
		}
	}
	return "", 0, 0, false
}

// Caps on what one peer's SDP may make the transport do.
const (
	// maxRemoteCandidates caps the distinct remote candidates kept from one SDP: each is
	// a target of STUN connectivity checks (several per local candidate, with retries),
	// so an offer listing hundreds of addresses would have the node send STUN to each
	// (reflection). The JS sends at most about 136 addresses' worth; 160 leaves margin,
	// and a browser's offer has a handful.
	maxRemoteCandidates = 160
	// maxMDNSNames caps the distinct mDNS (.local) names resolved for one SDP: each is a
	// multicast query on the local network. A browser has one name per local address.
	maxMDNSNames = 8
)

// prepareRemoteSDP rewrites a peer's SDP before it reaches pion: candidates whose address
// is an mDNS name (".local", Chromium's default) are resolved to their IP, or dropped when
// mDNS is off or the name does not resolve; IPv6 candidates are dropped unless IPv6 is on;
// a candidate repeating the transport, address and port of an earlier one is dropped,
// and so is every one beyond maxRemoteCandidates. Only the first maxMDNSNames distinct
// names are resolved.
// Resolving here, rather than letting pion's ICE agent do it, keeps the selected pair's
// remote address an IP (pion keeps the name there), which is what a node's address must
// be, and costs one shared multicast socket instead of one per connection.
func (t *Transport) prepareRemoteSDP(ctx context.Context, sdp string) string {
	lines := strings.Split(sdp, "\n")
	var names []string
	seenName := map[string]bool{}
	for _, l := range lines {
		if a, _, _, ok := candidateAddr(strings.TrimSuffix(l, "\r")); ok && isMDNSName(a) {
			if a = strings.ToLower(a); !seenName[a] && len(names) < maxMDNSNames {
				seenName[a] = true
				names = append(names, a)
			}
		}
	}
	var resolved map[string]netip.Addr
	if len(names) > 0 && !t.cfg.NoMDNS && !t.cfg.Loopback {
		resolved = t.resolveNames(ctx, names)
	}
	out := lines[:0]
	seen := map[string]bool{}
	for _, l := range lines {
		cr := strings.HasSuffix(l, "\r")
		a, start, end, ok := candidateAddr(strings.TrimSuffix(l, "\r"))
		if ok {
			if isMDNSName(a) {
				ip, found := resolved[strings.ToLower(a)]
				if !found {
					continue
				}
				l = l[:start] + ip.String() + l[end:]
				if cr && !strings.HasSuffix(l, "\r") {
					l += "\r"
				}
				a = ip.String()
			}
			ip, err := netip.ParseAddr(a)
			if err == nil && ip.Unmap().Is6() && !t.cfg.IPv6 {
				continue
			}
			key := candidateKey(strings.TrimSuffix(l, "\r"), a, ip, err == nil)
			if seen[key] || len(seen) >= maxRemoteCandidates {
				continue
			}
			seen[key] = true
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// candidateKey identifies a candidate line by its transport, address and port
// ("a=candidate:<foundation> <component> <transport> <priority> <address> <port> ...").
func candidateKey(line, addr string, ip netip.Addr, isIP bool) string {
	f := strings.Fields(line)
	var transport, port string
	if len(f) > 2 {
		transport = strings.ToLower(f[2])
	}
	if len(f) > 5 {
		port = f[5]
	}
	if isIP {
		addr = ip.Unmap().WithZone("").String()
	}
	return transport + " " + addr + " " + port
}

func isMDNSName(a string) bool { return strings.HasSuffix(strings.ToLower(a), ".local") }

// mdnsQuerier is the transport's one mDNS socket, opened at the first query.
type mdnsQuerier struct {
	once sync.Once
	conn *mdns.Conn
	err  error
}

// resolveNames resolves names concurrently, all within Config.MDNSTimeout, and returns
// the ones that resolved to an address the transport can use. At most
// Config.MaxMDNSQueries resolutions run at once in the whole transport; a name that finds
// no room before the timeout is not resolved (its candidate is dropped).
func (t *Transport) resolveNames(ctx context.Context, names []string) map[string]netip.Addr {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.MDNSTimeout)
	defer cancel()
	var mu sync.Mutex
	out := make(map[string]netip.Addr, len(names))
	var wg sync.WaitGroup
	for _, name := range names {
		select {
		case t.mdnsSem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-t.mdnsSem; wg.Done() }()
			if addr, ok := t.query(ctx, name); ok {
				mu.Lock()
				out[name] = addr.Unmap()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// queryMDNS resolves one name with the transport's mDNS socket (opened at the first
// query).
func (t *Transport) queryMDNS(ctx context.Context, name string) (netip.Addr, bool) {
	q := &t.mdns
	q.once.Do(func() {
		l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(224, 0, 0, 0), Port: 5353})
		if err != nil {
			q.err = err
			return
		}
		q.conn, q.err = mdns.Server(ipv4.NewPacketConn(l), &mdns.Config{LoggerFactory: pionLogs{t.log.Named("pion")}})
		if q.err != nil {
			l.Close()
		}
	})
	if q.err != nil {
		if t.log.IsDebug() {
			t.log.Debug("cannot resolve mDNS candidates", "error", q.err)
		}
		return netip.Addr{}, false
	}
	_, src, err := q.conn.Query(ctx, name)
	if err != nil {
		return netip.Addr{}, false
	}
	var ip net.IP
	switch a := src.(type) {
	case *net.IPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	}
	addr, ok := netip.AddrFromSlice(ip)
	return addr, ok
}

func (q *mdnsQuerier) close() {
	// Called once no query can start any more.
	q.once.Do(func() {}) // a querier never opened stays closed
	if q.conn != nil {
		q.conn.Close()
	}
}
