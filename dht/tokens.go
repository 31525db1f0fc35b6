package dht

import (
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"net/netip"
	"sync"
	"time"
)

// tokenLen is the length of our tokens: 8 bytes of HMAC-SHA256 leave a forger a 2^-64 chance.
const tokenLen = 8

// tokens issues and checks the write tokens of get_peers/announce_peer (and BEP 44
// get/put). A token is an HMAC of the querier's IP and the target under a secret that
// changes every period; tokens are accepted under the current and the previous secret,
// so one stays valid for between one and two periods. Secrets are derived from one random
// key and the period's number, so rotation needs no timer.
type tokens struct {
	period time.Duration
	pool   sync.Pool // of hash.Hash keyed with the node's random key
}

func newTokens(period time.Duration) *tokens {
	var key [32]byte
	crand.Read(key[:])
	return &tokens{period: period, pool: sync.Pool{New: func() any { return hmac.New(sha256.New, key[:]) }}}
}

func (t *tokens) sum(epoch int64, ip netip.Addr, target *ID) string {
	h := t.pool.Get().(hash.Hash)
	defer t.pool.Put(h)
	h.Reset()
	var buf [8 + 16 + 20]byte
	binary.BigEndian.PutUint64(buf[:8], uint64(epoch))
	a16 := ip.Unmap().As16()
	copy(buf[8:24], a16[:])
	copy(buf[24:], target[:])
	h.Write(buf[:])
	var out [sha256.Size]byte
	return string(h.Sum(out[:0])[:tokenLen])
}

func (t *tokens) epoch(now time.Time) int64 { return now.UnixNano() / int64(t.period) }

// create returns the token for ip and target now.
func (t *tokens) create(ip netip.Addr, target ID, now time.Time) string {
	return t.sum(t.epoch(now), ip, &target)
}

// valid reports whether tok was issued to ip for target in this period or the last one.
func (t *tokens) valid(tok string, ip netip.Addr, target ID, now time.Time) bool {
	if len(tok) != tokenLen {
		return false
	}
	e := t.epoch(now)
	return hmac.Equal([]byte(tok), []byte(t.sum(e, ip, &target))) ||
		hmac.Equal([]byte(tok), []byte(t.sum(e-1, ip, &target)))
}
