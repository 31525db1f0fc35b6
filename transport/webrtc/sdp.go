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

// prepareRemoteSDP rewrites a peer's SDP before it reaches pion: candidates whose address
// is an mDNS name (".local", Chromium's default) are resolved to their IP, or dropped when
// mDNS is off or the name does not resolve; IPv6 candidates are dropped unless IPv6 is on.
// Resolving here, rather than letting pion's ICE agent do it, keeps the selected pair's
// remote address an IP (pion keeps the name there), which is what a node's address must
// be, and costs one shared multicast socket instead of one per connection.
func (t *Transport) prepareRemoteSDP(ctx context.Context, sdp string) string {
	lines := strings.Split(sdp, "\n")
	var names []string
	for _, l := range lines {
		if a, _, _, ok := candidateAddr(strings.TrimSuffix(l, "\r")); ok && isMDNSName(a) {
			names = append(names, a)
		}
	}
	var resolved map[string]netip.Addr
	if len(names) > 0 && !t.cfg.NoMDNS && !t.cfg.Loopback {
		resolved = t.resolve(ctx, names)
	}
	out := lines[:0]
	for _, l := range lines {
		cr := strings.HasSuffix(l, "\r")
		a, start, end, ok := candidateAddr(strings.TrimSuffix(l, "\r"))
		if ok {
			if isMDNSName(a) {
				ip, found := resolved[a]
				if !found {
					continue
				}
				l = l[:start] + ip.String() + l[end:]
				if cr && !strings.HasSuffix(l, "\r") {
					l += "\r"
				}
				a = ip.String()
			}
			if ip, err := netip.ParseAddr(a); err == nil && ip.Unmap().Is6() && !t.cfg.IPv6 {
				continue
			}
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

func isMDNSName(a string) bool { return strings.HasSuffix(strings.ToLower(a), ".local") }

// mdnsQuerier is the transport's one mDNS socket, opened at the first query.
type mdnsQuerier struct {
	once sync.Once
	conn *mdns.Conn
	err  error
}

// resolveMDNS resolves names concurrently, each within Config.MDNSTimeout, and returns the
// ones that resolved to an address the transport can use.
func (t *Transport) resolveMDNS(ctx context.Context, names []string) map[string]netip.Addr {
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
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.MDNSTimeout)
	defer cancel()
	var mu sync.Mutex
	out := make(map[string]netip.Addr, len(names))
	var wg sync.WaitGroup
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, src, err := q.conn.Query(ctx, name)
			if err != nil {
				return
			}
			var ip net.IP
			switch a := src.(type) {
			case *net.IPAddr:
				ip = a.IP
			case *net.UDPAddr:
				ip = a.IP
			}
			addr, ok := netip.AddrFromSlice(ip)
			if !ok {
				return
			}
			mu.Lock()
			out[name] = addr.Unmap()
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

func (q *mdnsQuerier) close() {
	// Called once no query can start any more.
	q.once.Do(func() {}) // a querier never opened stays closed
	if q.conn != nil {
		q.conn.Close()
	}
}
