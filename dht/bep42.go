package dht

import (
	crand "crypto/rand"
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"net/netip"
	"slices"
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
// their responses), to learn our external IP. A vote counts per network of reporters,
// a /24 for IPv4 and a /64 for IPv6 (its latest claim), so that one host, or hosts of
// one network, cannot outvote the rest.
//
// Every node keeps one, so it is packed: a voter is its network in 8 bytes and the index
// of the IP it claims, and the claimed IPs (rarely more than one or two) are kept once
// each with the count of their voters. 64 voters take about 1 KiB; a map of prefix to
// address took 7 KiB, the largest part of an idle node in a simulation of many.
type bep42Votes struct {
	voters  []voter   // at most maxVoters, one per network
	claimed []claimed // the IPs voters claim, each with its voters' count
}

// voter is one network's vote: net is its /24 (IPv4, in the low 24 bits) or /64
// (IPv6), v6 tells which, and ip indexes bep42Votes.claimed.
type voter struct {
	net uint64
	v6  bool
	ip  uint8
}

type claimed struct {
	ip     netip.Addr
	voters int
}

// ipVotesNeeded is how many networks of reporters must agree before we believe them,
// and then they must be a clear majority: at least two thirds of the networks that
// voted.
const ipVotesNeeded = 3

// maxVoters bounds the networks whose votes are kept: a new one beyond replaces one at
// random. It must fit voter.ip's index space (claimed IPs are at most voters).
const maxVoters = 64

// voterNet returns the network a reporter votes for: its /24 (IPv4) or /64 (IPv6).
func voterNet(reporter netip.Addr) (net uint64, v6 bool) {
	if reporter.Is4() {
		b := reporter.As4()
		return uint64(b[0])<<16 | uint64(b[1])<<8 | uint64(b[2]), false
	}
	b := reporter.As16()
	return binary.BigEndian.Uint64(b[:8]), true
}

// add counts reporter's claim that our IP is ip and returns ip when at least
// ipVotesNeeded networks of reporters say so and they are at least two thirds of the
// networks that voted.
func (v *bep42Votes) add(ip, reporter netip.Addr) (netip.Addr, bool) {
	ip, reporter = ip.Unmap().WithZone(""), reporter.Unmap()
	if !ip.IsValid() || ip.IsUnspecified() || !reporter.IsValid() {
		return netip.Addr{}, false
	}
	net, v6 := voterNet(reporter)
	vi := slices.IndexFunc(v.voters, func(x voter) bool { return x.net == net && x.v6 == v6 })
	switch {
	case vi >= 0:
		v.unvote(vi)
	case len(v.voters) >= maxVoters:
		vi = rand.IntN(len(v.voters))
		v.unvote(vi)
	default:
		vi = len(v.voters)
		v.voters = append(v.voters, voter{})
	}
	ci := slices.IndexFunc(v.claimed, func(c claimed) bool { return c.ip == ip })
	if ci < 0 {
		ci = len(v.claimed)
		v.claimed = append(v.claimed, claimed{ip: ip})
	}
	v.claimed[ci].voters++
	v.voters[vi] = voter{net: net, v6: v6, ip: uint8(ci)}
	agree := v.claimed[ci].voters
	if agree < ipVotesNeeded || 3*agree < 2*len(v.voters) {
		return netip.Addr{}, false
	}
	return ip, true
}

// unvote takes voter i's vote back from the IP it claimed, and forgets the IP when no
// voter claims it any more (the last claimed IP moves into its place).
func (v *bep42Votes) unvote(i int) {
	ci := int(v.voters[i].ip)
	if v.claimed[ci].voters--; v.claimed[ci].voters > 0 {
		return
	}
	last := len(v.claimed) - 1
	if ci != last {
		v.claimed[ci] = v.claimed[last]
		for j := range v.voters {
			if int(v.voters[j].ip) == last {
				v.voters[j].ip = uint8(ci)
			}
		}
	}
	v.claimed = v.claimed[:last]
}
