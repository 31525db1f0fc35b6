package dht

import (
	crand "crypto/rand"
	"hash/crc32"
	"net/netip"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// bep42Prefix returns the CRC32-C of ip masked as BEP 42 says, with r (0-7) mixed in.
func bep42Prefix(ip netip.Addr, r byte) uint32 {
	ip = ip.Unmap()
	var b []byte
	if ip.Is4() {
		a := ip.As4()
		mask := [4]byte{0x03, 0x0f, 0x3f, 0xff}
		for i := range a {
			a[i] &= mask[i]
		}
		b = a[:]
	} else {
		a16 := ip.As16()
		var a [8]byte
		mask := [8]byte{0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff}
		for i := range a {
			a[i] = a16[i] & mask[i]
		}
		b = a[:]
	}
	b[0] |= (r & 7) << 5
	return crc32.Checksum(b, castagnoli)
}

// SecureID returns a random node ID that BEP 42 ties to ip: its first 21 bits come from
// the CRC32-C of the masked IP and a random number r that the last byte carries.
func SecureID(ip netip.Addr) ID {
	var id ID
	crand.Read(id[:])
	crc := bep42Prefix(ip, id[19])
	id[0], id[1] = byte(crc>>24), byte(crc>>16)
	id[2] = byte(crc>>8)&0xf8 | id[2]&7
	return id
}

// VerifyID reports whether id is a node ID that BEP 42 allows for ip. It reports false
// for the addresses BEP 42 exempts (see ExemptIP), which any ID may use.
func VerifyID(id ID, ip netip.Addr) bool {
	if !ip.IsValid() || ExemptIP(ip) {
		return false
	}
	crc := bep42Prefix(ip, id[19])
	return id[0] == byte(crc>>24) && id[1] == byte(crc>>16) && id[2]&0xf8 == byte(crc>>8)&0xf8
}

var exemptNets = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fc00::/7"),
}

// ExemptIP reports whether BEP 42 exempts ip: local, private and loopback networks
// (10/8, 172.16/12, 192.168/16, 169.254/16, 127/8, and their IPv6 counterparts ::1,
// fe80::/10, fc00::/7), where node IDs cannot be tied to an address.
func ExemptIP(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range exemptNets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// secure reports whether a node's ID is one BEP 42 allows for its address.
func (ni NodeInfo) secure() bool { return VerifyID(ni.ID, ni.Addr.Addr()) }

// bep42Votes collects what the nodes answering us say our address is (the "ip" key of
// their responses), to learn our external IP.
type bep42Votes struct {
	votes map[netip.Addr]map[netip.Addr]struct{} // our IP as reported -> the reporters' IPs
}

// ipVotesNeeded is how many distinct reporters must agree before we believe them.
const ipVotesNeeded = 3

// add counts reporter's claim that our IP is ip and returns ip once enough distinct
// reporters agree (then it starts counting afresh).
func (v *bep42Votes) add(ip, reporter netip.Addr) (netip.Addr, bool) {
	ip, reporter = ip.Unmap(), reporter.Unmap()
	if !ip.IsValid() || ip.IsUnspecified() {
		return netip.Addr{}, false
	}
	if v.votes == nil || len(v.votes) > 64 { // bounded: a liar cannot grow it
		v.votes = make(map[netip.Addr]map[netip.Addr]struct{})
	}
	r := v.votes[ip]
	if r == nil {
		r = make(map[netip.Addr]struct{})
		v.votes[ip] = r
	}
	r[reporter] = struct{}{}
	if len(r) < ipVotesNeeded {
		return netip.Addr{}, false
	}
	v.votes = nil
	return ip, true
}
