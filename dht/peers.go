package dht

import (
	"fmt"
	"net/netip"
	"sync"
	"time"
)

// PeerStoreConfig configures a PeerStore. Zero fields mean the documented defaults.
type PeerStoreConfig struct {
	// TTL is how long an announced peer is kept. Default 30 minutes (BEP 5 suggests
	// announcements expire; clients re-announce about every 15 to 30 minutes).
	TTL time.Duration
	// MaxPerInfohash caps the peers kept for one infohash; the oldest goes first.
	// Default 200.
	MaxPerInfohash int
	// MaxPeers caps the peers kept in total, over all infohashes. Default 100,000.
	MaxPeers int
}

// Validate reports the first invalid field.
func (c *PeerStoreConfig) Validate() error {
	switch {
	case c.TTL < 0:
		return fmt.Errorf("dht: PeerStoreConfig.TTL %v is negative", c.TTL)
	case c.MaxPerInfohash < 0:
		return fmt.Errorf("dht: PeerStoreConfig.MaxPerInfohash %d is negative", c.MaxPerInfohash)
	case c.MaxPeers < 0:
		return fmt.Errorf("dht: PeerStoreConfig.MaxPeers %d is negative", c.MaxPeers)
	}
	return nil
}

// PeerStore keeps the peers announced to a node, with expiry and caps. It is safe for
// concurrent use, and one store may serve several nodes (the bridge shares one between
// its UDP and WebRTC nodes).
type PeerStore struct {
	ttl           time.Duration
	perIH, maxAll int

	mu     sync.Mutex
	swarms map[ID]map[netip.AddrPort]time.Time // infohash -> peer -> expiry
	total  int
}

// NewPeerStore returns an empty store. cfg may be nil.
func NewPeerStore(cfg *PeerStoreConfig) (*PeerStore, error) {
	var c PeerStoreConfig
	if cfg != nil {
		c = *cfg
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.TTL == 0 {
		c.TTL = 30 * time.Minute
	}
	if c.MaxPerInfohash == 0 {
		c.MaxPerInfohash = 200
	}
	if c.MaxPeers == 0 {
		c.MaxPeers = 100_000
	}
	return &PeerStore{ttl: c.TTL, perIH: c.MaxPerInfohash, maxAll: c.MaxPeers, swarms: make(map[ID]map[netip.AddrPort]time.Time)}, nil
}

// Add records (or refreshes) peer for infohash.
func (s *PeerStore) Add(infohash ID, peer netip.AddrPort) {
	now := time.Now()
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	s.mu.Lock()
	defer s.mu.Unlock()
	sw := s.swarms[infohash]
	if _, ok := sw[peer]; ok {
		sw[peer] = now.Add(s.ttl)
		return
	}
	if sw == nil {
		sw = make(map[netip.AddrPort]time.Time, 1)
		s.swarms[infohash] = sw
	}
	if len(sw) >= s.perIH {
		s.evictOldest(infohash, sw)
	} else if s.total >= s.maxAll {
		for ih, other := range s.swarms { // map order is random: a random swarm pays
			if len(other) > 0 {
				s.evictOldest(ih, other)
				break
			}
		}
	}
	s.swarms[infohash] = sw // eviction may have removed an emptied swarm
	sw[peer] = now.Add(s.ttl)
	s.total++
}

func (s *PeerStore) evictOldest(ih ID, sw map[netip.AddrPort]time.Time) {
	var oldest netip.AddrPort
	var exp time.Time
	for p, e := range sw {
		if !oldest.IsValid() || e.Before(exp) {
			oldest, exp = p, e
		}
	}
	delete(sw, oldest)
	s.total--
	if len(sw) == 0 && s.swarms[ih] != nil {
		delete(s.swarms, ih)
	}
}

// Peers returns up to max unexpired peers of infohash, a random selection when there are more.
func (s *PeerStore) Peers(infohash ID, max int) []netip.AddrPort {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sw := s.swarms[infohash]
	var out []netip.AddrPort
	for p, exp := range sw {
		if now.After(exp) {
			delete(sw, p)
			s.total--
			continue
		}
		if len(out) < max {
			out = append(out, p)
		}
	}
	if sw != nil && len(sw) == 0 {
		delete(s.swarms, infohash)
	}
	return out
}

// Sweep drops expired peers and returns how many it dropped.
func (s *PeerStore) Sweep() int {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for ih, sw := range s.swarms {
		for p, exp := range sw {
			if now.After(exp) {
				delete(sw, p)
				n++
			}
		}
		if len(sw) == 0 {
			delete(s.swarms, ih)
		}
	}
	s.total -= n
	return n
}

// Len returns the number of infohashes and of peers stored (expired ones included until
// they are swept).
func (s *PeerStore) Len() (infohashes, peers int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.swarms), s.total
}

// Infohashes returns up to max stored infohashes, a random selection when there are more.
func (s *PeerStore) Infohashes(max int) []ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ID, 0, min(max, len(s.swarms)))
	for ih := range s.swarms {
		if len(out) >= max {
			break
		}
		out = append(out, ih)
	}
	return out
}
