package main

import (
	"context"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/wdht/wdht/dht"
)

// newFlagSet returns a flag set that reports errors to its caller instead of printing.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseArgs parses args with fs, allowing flags before, between and after the positional
// arguments, which it returns in order. "--" ends the flags.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, badUsage("%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// wasSet reports whether the flag called name was given on the command line.
func wasSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// addrList is a repeatable flag of comma-separated host:port addresses. It checks their
// syntax as it parses them; resolve turns them into addresses.
type addrList struct {
	addrs []string
	set   bool
	// words, when set, lets a word stand for a list of addresses ("default").
	words map[string][]string
}

func (l *addrList) String() string { return strings.Join(l.addrs, ",") }

func (l *addrList) Set(s string) error {
	if !l.set {
		l.addrs, l.set = nil, true // the first use replaces the default
	}
	for a := range strings.SplitSeq(s, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if w, ok := l.words[a]; ok {
			l.addrs = append(l.addrs, w...)
			continue
		}
		if _, _, err := splitNodeAddr(a); err != nil {
			return err
		}
		l.addrs = append(l.addrs, a)
	}
	return nil
}

// splitNodeAddr splits a node address host:port and checks its port (1-65535).
func splitNodeAddr(s string) (host string, port uint16, err error) {
	host, ps, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: want host:port ([host]:port for IPv6)", s)
	}
	if host == "" {
		return "", 0, fmt.Errorf("address %q: missing host", s)
	}
	p, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || p == 0 {
		return "", 0, fmt.Errorf("address %q: port %q: want a number from 1 to 65535", s, ps)
	}
	return host, uint16(p), nil
}

// resolveNodeAddr turns a node address host:port into the addresses it names: the IP
// itself, or every address of a host name (looked up with net.DefaultResolver).
func resolveNodeAddr(ctx context.Context, s string) ([]netip.AddrPort, error) {
	host, port, err := splitNodeAddr(s)
	if err != nil {
		return nil, badInput("%v", err)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if !usableIP(ip) {
			return nil, badInput("address %q: %v is not an address a node can have", s, ip)
		}
		return []netip.AddrPort{netip.AddrPortFrom(ip.Unmap(), port)}, nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		reason := err.Error()
		if de, ok := errors.AsType[*net.DNSError](err); ok {
			reason = de.Err
		}
		return nil, badInput("address %q: cannot resolve %q: %s", s, host, reason)
	}
	var out []netip.AddrPort
	for _, ip := range ips {
		if ip = ip.Unmap(); usableIP(ip) {
			out = append(out, netip.AddrPortFrom(ip, port))
		}
	}
	if len(out) == 0 {
		return nil, badInput("address %q: %q has no usable address", s, host)
	}
	return out, nil
}

// usableIP reports whether ip can be a node's address.
func usableIP(ip netip.Addr) bool {
	return ip.IsValid() && !ip.IsUnspecified() && !ip.IsMulticast()
}

// resolveAll resolves every address of l, in order and without duplicates.
func resolveAll(ctx context.Context, addrs []string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	seen := make(map[netip.AddrPort]bool)
	for _, s := range addrs {
		as, err := resolveNodeAddr(ctx, s)
		if err != nil {
			return nil, err
		}
		for _, a := range as {
			if !seen[a] {
				seen[a] = true
				out = append(out, a)
			}
		}
	}
	return out, nil
}

// parseListenAddr parses the --addr to listen on: ip:port, [ipv6]:port or :port (every
// interface); port 0 picks a free port.
func parseListenAddr(s string) (netip.AddrPort, error) { return parseListenFlag("--addr", s) }

// parseListenFlag parses the address to listen on of the flag called name.
func parseListenFlag(name, s string) (netip.AddrPort, error) {
	host, ps, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, badInput("%s %q: want ip:port ([ip]:port for IPv6, :port for every interface)", name, s)
	}
	p, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return netip.AddrPort{}, badInput("%s %q: port %q: want a number from 0 (any free port) to 65535", name, s, ps)
	}
	if host == "" {
		return netip.AddrPortFrom(netip.Addr{}, uint16(p)), nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, badInput("%s %q: host %q is not an IP address", name, s, host)
	}
	if ip.IsMulticast() {
		return netip.AddrPort{}, badInput("%s %q: %v is a multicast address", name, s, ip)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(p)), nil
}

// clientListenAddr picks the address a client listens on to reach the targets: loopback
// when they are all on loopback, else every interface of their family (dual-stack when
// they mix families).
func clientListenAddr(targets []netip.AddrPort) netip.AddrPort {
	all := func(f func(netip.Addr) bool) bool {
		for _, a := range targets {
			if !f(a.Addr()) {
				return false
			}
		}
		return len(targets) > 0
	}
	switch {
	case all(func(ip netip.Addr) bool { return ip.Is4() && ip.IsLoopback() }):
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), 0)
	case all(func(ip netip.Addr) bool { return ip.Is6() && ip.IsLoopback() }):
		return netip.AddrPortFrom(netip.IPv6Loopback(), 0)
	case all(netip.Addr.Is4):
		return netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	}
	return netip.AddrPort{} // dual-stack
}

// parseInfohash parses an infohash given as 40 hex characters or as a magnet URI with an
// xt=urn:btih: parameter (40 hex or 32 base32 characters).
func parseInfohash(s string) (dht.ID, error) {
	if len(s) >= 7 && strings.EqualFold(s[:7], "magnet:") {
		return parseMagnet(s)
	}
	id, err := parseHexID(s)
	if err != nil {
		return dht.ID{}, badInput("infohash %q: %v", s, err)
	}
	return id, nil
}

// parseHexID parses 40 hex characters.
func parseHexID(s string) (dht.ID, error) {
	b, err := decodeHex(s, len(dht.ID{}))
	if err != nil {
		return dht.ID{}, err
	}
	return dht.ID(b), nil
}

// decodeHex decodes s, which must be n bytes in hex (2n hex characters).
func decodeHex(s string, n int) ([]byte, error) {
	if len(s) != 2*n {
		return nil, fmt.Errorf("want %d hex characters, got %d", 2*n, len(s))
	}
	b := make([]byte, n)
	if _, err := hex.Decode(b, []byte(s)); err != nil {
		var ie hex.InvalidByteError
		if errors.As(err, &ie) {
			return nil, fmt.Errorf("want %d hex characters, got %q at position %d", 2*n, rune(ie), strings.IndexByte(s, byte(ie))+1)
		}
		return nil, fmt.Errorf("want %d hex characters: %v", 2*n, err)
	}
	return b, nil
}

// parseMagnet extracts the BitTorrent v1 infohash of a magnet URI.
func parseMagnet(s string) (dht.ID, error) {
	u, err := url.Parse(s)
	if err != nil || !strings.EqualFold(u.Scheme, "magnet") {
		return dht.ID{}, badInput("magnet URI %q: not a valid URI", s)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return dht.ID{}, badInput("magnet URI %q: %v", s, err)
	}
	const prefix = "urn:btih:"
	for key, vs := range q {
		if key != "xt" && !strings.HasPrefix(key, "xt.") {
			continue
		}
		for _, v := range vs {
			if len(v) < len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
				continue
			}
			id, err := parseBtih(v[len(prefix):])
			if err != nil {
				return dht.ID{}, badInput("magnet URI %q: btih %q: %v", s, v[len(prefix):], err)
			}
			return id, nil
		}
	}
	return dht.ID{}, badInput("magnet URI %q: no xt=urn:btih: parameter (v2-only magnets are not supported)", s)
}

// parseBtih parses the infohash of a magnet URI: 40 hex or 32 base32 characters.
func parseBtih(s string) (dht.ID, error) {
	switch len(s) {
	case 40:
		return parseHexID(s)
	case 32:
		b, err := base32.StdEncoding.DecodeString(strings.ToUpper(s))
		if err != nil {
			return dht.ID{}, fmt.Errorf("want 32 base32 characters: %v", err)
		}
		return dht.ID(b), nil
	}
	return dht.ID{}, fmt.Errorf("want 40 hex or 32 base32 characters, got %d", len(s))
}

// portFlag is a port number flag whose valid range is [min, 65535].
type portFlag struct {
	port, min int
}

func (p *portFlag) String() string { return strconv.Itoa(p.port) }

func (p *portFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < p.min || n > 65535 {
		return fmt.Errorf("want a port number from %d to 65535", p.min)
	}
	p.port = n
	return nil
}

// joinAddrs formats addresses for messages.
func joinAddrs(addrs []netip.AddrPort) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ", ")
}

// Transport names.
const (
	transportUDP    = "udp"
	transportWebRTC = "webrtc"
)

// transportFlag is the --transport flag of the client commands: udp or webrtc.
type transportFlag string

func (t *transportFlag) String() string { return string(*t) }

func (t *transportFlag) Set(s string) error {
	switch s {
	case transportUDP, transportWebRTC:
		*t = transportFlag(s)
		return nil
	}
	return errors.New("want udp or webrtc")
}

// transportsFlag is the --transports flag of node: a comma-separated set of udp and
// webrtc.
type transportsFlag struct {
	udp, webrtc bool
}

func (t *transportsFlag) String() string {
	var s []string
	if t.udp {
		s = append(s, transportUDP)
	}
	if t.webrtc {
		s = append(s, transportWebRTC)
	}
	return strings.Join(s, ",")
}

func (t *transportsFlag) Set(s string) error {
	var n transportsFlag
	for name := range strings.SplitSeq(s, ",") {
		switch strings.TrimSpace(name) {
		case transportUDP:
			n.udp = true
		case transportWebRTC:
			n.webrtc = true
		case "":
		default:
			return fmt.Errorf("unknown transport %q: want udp, webrtc or udp,webrtc", strings.TrimSpace(name))
		}
	}
	if !n.udp && !n.webrtc {
		return errors.New("want udp, webrtc or udp,webrtc")
	}
	*t = n
	return nil
}

// autoBool is a boolean flag that may also be left to "auto" (the zero value): --loopback,
// --loopback=false, --loopback=auto.
type autoBool struct {
	set, on bool
}

func (b *autoBool) String() string {
	if !b.set {
		return "auto"
	}
	return strconv.FormatBool(b.on)
}

func (b *autoBool) Set(s string) error {
	if s == "auto" {
		*b = autoBool{}
		return nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true, false or auto")
	}
	*b = autoBool{set: true, on: v}
	return nil
}

func (b *autoBool) IsBoolFlag() bool { return true }

// value returns the flag's value, or auto when it was left to auto.
func (b *autoBool) value(auto bool) bool {
	if b.set {
		return b.on
	}
	return auto
}

// checkNodeAddrs checks the syntax of node addresses (host:port, a host name allowed)
// without resolving names; an IP must be one a node can have.
// flagName, when not empty, starts the error message.
func checkNodeAddrs(flagName string, addrs []string) error {
	prefix := ""
	if flagName != "" {
		prefix = flagName + ": "
	}
	for _, s := range addrs {
		host, _, err := splitNodeAddr(s)
		if err != nil {
			return badInput("%s%v", prefix, err)
		}
		if ip, err := netip.ParseAddr(host); err == nil && !usableIP(ip) {
			return badInput("%saddress %q: %v is not an address a node can have", prefix, s, ip)
		}
	}
	return nil
}

// isLoopbackHost reports whether host (an IP or a name) is this machine's loopback.
func isLoopbackHost(host string) bool {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.IsLoopback()
	}
	return strings.EqualFold(strings.TrimSuffix(host, "."), "localhost")
}

// allLoopback reports whether every address ("host:port") is on loopback.
func allLoopback(addrs []string) bool {
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil || !isLoopbackHost(host) {
			return false
		}
	}
	return len(addrs) > 0
}
