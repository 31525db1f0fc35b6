package dht

import (
	"bytes"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"strings"

	"github.com/wdht/wdht/krpc"
)

// ID is a 160-bit node ID or infohash. Its String method gives lowercase hex.
type ID = krpc.ID

// ParseID parses a 40-character hex string.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 2*len(id) {
		return id, fmt.Errorf("dht: ID %q: want %d hex characters, got %d", s, 2*len(id), len(s))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		var bad hex.InvalidByteError
		if errors.As(err, &bad) {
			return id, fmt.Errorf("dht: ID %q: %q at position %d is not a hex digit", s, byte(bad), strings.IndexByte(s, byte(bad))+1)
		}
		return id, fmt.Errorf("dht: ID %q is not hex: %w", s, err)
	}
	return id, nil
}

// RandomID returns a uniformly random ID.
func RandomID() ID {
	var id ID
	crand.Read(id[:])
	return id
}

// NodeInfo is a DHT node: its ID and the address it is reached at.
type NodeInfo struct {
	ID   ID
	Addr netip.AddrPort
}

func (n NodeInfo) String() string { return fmt.Sprintf("%x@%v", n.ID[:4], n.Addr) }

// commonPrefixLen returns the number of leading bits a and b share (160 if equal).
func commonPrefixLen(a, b *ID) int {
	for i := range a {
		if x := a[i] ^ b[i]; x != 0 {
			return i*8 + bits.LeadingZeros8(x)
		}
	}
	return 160
}

// closer reports whether a is closer to target than b by XOR distance.
func closer(target, a, b *ID) bool {
	for i := range target {
		da, db := a[i]^target[i], b[i]^target[i]
		if da != db {
			return da < db
		}
	}
	return false
}

// cmpDistance compares the XOR distances of a and b to target.
func cmpDistance(target, a, b *ID) int {
	var da, db ID
	for i := range target {
		da[i], db[i] = a[i]^target[i], b[i]^target[i]
	}
	return bytes.Compare(da[:], db[:])
}

// randomIDWithPrefix returns a random ID sharing exactly the first n bits with id (n < 160):
// bit n is flipped and the rest is random.
func randomIDWithPrefix(id ID, n int) ID {
	r := RandomID()
	for i := range r {
		bit := i * 8
		switch {
		case bit+8 <= n:
			r[i] = id[i]
		case bit < n:
			keep := n - bit // bits of id to keep in this byte (1..7)
			mask := byte(0xff) << (8 - keep)
			r[i] = id[i]&mask | r[i]&^mask
		}
	}
	byteI, bitI := n/8, 7-n%8
	r[byteI] = r[byteI]&^(1<<bitI) | ^id[byteI]&(1<<bitI)
	return r
}
