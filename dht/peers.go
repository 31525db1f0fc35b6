package dht

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/wdht/wdht/internal/ratelimit"
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
	// MaxPerSource caps the peers kept from one source, over all infohashes: one IPv4
	// address or one IPv6 /64 (a peer's source is its address: announce_peer stores the
	// querier's). A source at its quota can refresh its peers but adds no new one until
	// some expire, so one address cannot fill the store. Default MaxPeers/100 (1,000).
	MaxPerSource int
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
	case c.MaxPerSource < 0:
		return fmt.Errorf("dht: PeerStoreConfig.MaxPerSource %d is negative", c.MaxPerSource)
	}
	return nil
}

// PeerStore keeps the peers announced to a node, with expiry and caps. It is safe for
// concurrent use, and one store may serve several nodes (the bridge shares one between
// its UDP and WebRTC nodes).
type PeerStore struct {
	ttl                   time.Duration
	perIH, maxAll, perSrc int

	mu      sync.Mutex
	swarms  map[ID]map[netip.AddrPort]storedPeer // infohash -> peer
	total   int
	sources map[netip.Addr]int // ratelimit.SourceKey -> peers stored
}

type storedPeer struct {
	expires time.Time
	origin  PeerOrigin
}

// PeerOrigin says how a stored peer was announced, so that a node shared by several
// networks (the bridge) serves each network only the peers it can use.
type PeerOrigin struct {
	// Network is the Config.Network of the node the peer was announced to ("" for a
	// peer added with Add).
	Network string
	// ImpliedPort is set when the announce asked for implied_port: the peer's port is
	// the one the announce came from.
	ImpliedPort bool
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
	if c.MaxPerSource == 0 {
		c.MaxPerSource = max(1, c.MaxPeers/100)
	}
	return &PeerStore{
		ttl: c.TTL, perIH: c.MaxPerInfohash, maxAll: c.MaxPeers, perSrc: c.MaxPerSource,
		swarms: make(map[ID]map[netip.AddrPort]storedPeer), sources: make(map[netip.Addr]int),
	}, nil
}

// Add records (or refreshes) peer for infohash, with no origin.
func (s *PeerStore) Add(infohash ID, peer netip.AddrPort) { s.AddFrom(infohash, peer, PeerOrigin{}) }

// AddFrom records (or refreshes) peer for infohash, announced as origin says; a refresh
// takes the newer origin. A new peer whose source (its address's IPv4 address or IPv6
// /64) holds MaxPerSource peers already is not stored.
func (s *PeerStore) AddFrom(infohash ID, peer netip.AddrPort, origin PeerOrigin) {
	now := time.Now()
	peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
	s.mu.Lock()
	defer s.mu.Unlock()
	sw := s.swarms[infohash]
	if _, ok := sw[peer]; ok {
		sw[peer] = storedPeer{now.Add(s.ttl), origin}
		return
	}
	src := ratelimit.SourceKey(peer.Addr())
	if s.sources[src] >= s.perSrc {
		return
	}
	if sw == nil {
		sw = make(map[netip.AddrPort]storedPeer, 1)
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
	sw[peer] = storedPeer{now.Add(s.ttl), origin}
	s.total++
	s.sources[src]++
}

// forget uncounts a peer that left the store (s.mu held).
func (s *PeerStore) forget(peer netip.AddrPort) {
	src := ratelimit.SourceKey(peer.Addr())
	if s.sources[src] <= 1 {
		delete(s.sources, src)
	} else {
		s.sources[src]--
	}
}

func (s *PeerStore) evictOldest(ih ID, sw map[netip.AddrPort]storedPeer) {
	var oldest netip.AddrPort
	var exp time.Time
	for p, e := range sw {
		if !oldest.IsValid() || e.expires.Before(exp) {
			oldest, exp = p, e.expires
		}
	}
	delete(sw, oldest)
	s.total--
	s.forget(oldest)
	if len(sw) == 0 && s.swarms[ih] != nil {
		delete(s.swarms, ih)
	}
}

// Peers returns up to max unexpired peers of infohash, a random selection when there are more.
func (s *PeerStore) Peers(infohash ID, max int) []netip.AddrPort {
	return s.PeersFor(infohash, max, nil)
}

// PeersFor is Peers of only the peers whose origin keep accepts (all when keep is nil).
func (s *PeerStore) PeersFor(infohash ID, max int, keep func(PeerOrigin) bool) []netip.AddrPort {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sw := s.swarms[infohash]
	var out []netip.AddrPort
	for p, e := range sw {
		if now.After(e.expires) {
			delete(sw, p)
			s.total--
			s.forget(p)
			continue
		}
		if len(out) < max && (keep == nil || keep(e.origin)) {
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
		for p, e := range sw {
			if now.After(e.expires) {
				delete(sw, p)
				s.forget(p)
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
