package dht

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/krpc"
)

// Defaults for Config fields left zero.
const (
	DefaultK                   = 8
	DefaultAlpha               = 3
	DefaultMaxFailures         = 2
	DefaultTokenPeriod         = 5 * time.Minute
	DefaultMaintenanceInterval = time.Minute
	DefaultRefreshInterval     = 15 * time.Minute
	DefaultMaxValues           = 100

	// Lookups: see "Lookups" in the package doc.
	DefaultMinQueryDeadline  = 50 * time.Millisecond
	DefaultMaxQueryDeadline  = time.Second
	DefaultMaxLookupQueries  = 200
	DefaultMaxLookupDuration = 30 * time.Second
)

// Config configures a Node. The zero value is ready to use: every zero field means the
// documented default. New copies the Config; later changes to it have no effect.
type Config struct {
	// ID is the node ID. Default: State.ID if State is set, else random. A node whose ID
	// does not match its external IP under BEP 42 takes a new, secure one once enough
	// responses agree on that IP, unless ID is set here or KeepID is.
	ID ID
	// KeepID keeps the node's ID even when it does not match its external IP (BEP 42).
	KeepID bool
	// EnforceSecureIDs makes the node ignore nodes whose IDs do not match their IPs
	// under BEP 42 (except on the local and private networks BEP 42 exempts): they
	// never enter the routing table or lookups. Off by default, as BEP 42 advises;
	// secure nodes are preferred either way.
	EnforceSecureIDs bool
	// K is the bucket size and the number of closest nodes a lookup converges on.
	// Default 8 (BEP 5).
	K int
	// Alpha is the number of queries a lookup keeps in flight. Default 3.
	Alpha int
	// MaxFailures is how many queries in a row a node may leave unanswered before it is
	// evicted from the routing table. Default 2 (each query is itself tried
	// KRPC.Attempts times).
	MaxFailures int
	// State is saved state to start from (see Node.State): its ID (unless ID is set) and
	// its nodes, which enter the routing table unverified and seed Bootstrap.
	State *State
	// Bootstrap lists addresses to bootstrap from when Bootstrap is called without any,
	// and to fall back on when the routing table empties.
	Bootstrap []netip.AddrPort
	// Peers stores announced peers. Default: a new PeerStore with default settings. Several
	// nodes may share one.
	Peers *PeerStore
	// Items stores BEP 44 items put to this node. Default: a new ItemStore with default
	// settings. Several nodes may share one.
	Items *ItemStore
	// TokenPeriod is how often the token secret rotates; a token is accepted for one to
	// two periods. Default 5 minutes.
	TokenPeriod time.Duration
	// MaintenanceInterval is how often the node pings questionable nodes, refreshes stale
	// buckets and expires peers. A negative value turns maintenance off. Default 1 minute.
	MaintenanceInterval time.Duration
	// RefreshInterval is how long a bucket may go without change before it is refreshed
	// with a lookup. Default 15 minutes (BEP 5).
	RefreshInterval time.Duration
	// MaxValues caps the peers returned in one get_peers response. Default 100.
	MaxValues int
	// KRPC configures the KRPC layer: timeouts, retries, rate limits, extensions.
	// Its Logger defaults to Logger. An extension with a method AttachNode(*Node) is
	// given the node before it starts answering (the WebTorrent extension needs its ID).
	KRPC krpc.Config
	// Logger receives the node's logs. Default: no logging.
	Logger hclog.Logger

	// Lookups (the package doc's "Lookups" section describes the algorithm).

	// MinQueryDeadline and MaxQueryDeadline bound the soft deadline of a lookup query:
	// the time, derived from measured round-trip times, after which the lookup stops
	// counting the query against Alpha and asks another node, while the query may still
	// answer until its KRPC timeout. A node with no round-trip time measured yet gets
	// MaxQueryDeadline. Defaults 50 ms and 1 s.
	MinQueryDeadline, MaxQueryDeadline time.Duration
	// MaxLookupQueries caps the queries one lookup sends, so that responders handing out
	// ever-closer (fake) nodes cannot keep it going. Default 200.
	MaxLookupQueries int
	// MaxLookupDuration caps how long one lookup runs, maintenance lookups included; the
	// lookup then ends with what it found. Default 30 s.
	MaxLookupDuration time.Duration
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.K < 0:
		return fmt.Errorf("dht: Config.K %d is negative", c.K)
	case c.Alpha < 0:
		return fmt.Errorf("dht: Config.Alpha %d is negative", c.Alpha)
	case c.MaxFailures < 0:
		return fmt.Errorf("dht: Config.MaxFailures %d is negative", c.MaxFailures)
	case c.TokenPeriod < 0:
		return fmt.Errorf("dht: Config.TokenPeriod %v is negative", c.TokenPeriod)
	case c.RefreshInterval < 0:
		return fmt.Errorf("dht: Config.RefreshInterval %v is negative", c.RefreshInterval)
	case c.MaxValues < 0:
		return fmt.Errorf("dht: Config.MaxValues %d is negative", c.MaxValues)
	case c.MinQueryDeadline < 0:
		return fmt.Errorf("dht: Config.MinQueryDeadline %v is negative", c.MinQueryDeadline)
	case c.MaxQueryDeadline < 0:
		return fmt.Errorf("dht: Config.MaxQueryDeadline %v is negative", c.MaxQueryDeadline)
	case c.MinQueryDeadline > 0 && c.MaxQueryDeadline > 0 && c.MinQueryDeadline > c.MaxQueryDeadline:
		return fmt.Errorf("dht: Config.MinQueryDeadline %v is above MaxQueryDeadline %v", c.MinQueryDeadline, c.MaxQueryDeadline)
	case c.MaxLookupQueries < 0:
		return fmt.Errorf("dht: Config.MaxLookupQueries %d is negative", c.MaxLookupQueries)
	case c.MaxLookupDuration < 0:
		return fmt.Errorf("dht: Config.MaxLookupDuration %v is negative", c.MaxLookupDuration)
	}
	for i, a := range c.Bootstrap {
		if !a.IsValid() || a.Port() == 0 {
			return fmt.Errorf("dht: Config.Bootstrap[%d] %q is not a valid address with a port", i, a)
		}
	}
	return c.KRPC.Validate()
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.K, DefaultK)
	def(&c.Alpha, DefaultAlpha)
	def(&c.MaxFailures, DefaultMaxFailures)
	def(&c.MaxValues, DefaultMaxValues)
	if c.TokenPeriod == 0 {
		c.TokenPeriod = DefaultTokenPeriod
	}
	if c.MaintenanceInterval == 0 {
		c.MaintenanceInterval = DefaultMaintenanceInterval
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	def(&c.MaxLookupQueries, DefaultMaxLookupQueries)
	if c.MinQueryDeadline == 0 {
		c.MinQueryDeadline = DefaultMinQueryDeadline
		if c.MaxQueryDeadline > 0 {
			c.MinQueryDeadline = min(c.MinQueryDeadline, c.MaxQueryDeadline)
		}
	}
	if c.MaxQueryDeadline == 0 {
		c.MaxQueryDeadline = max(DefaultMaxQueryDeadline, c.MinQueryDeadline)
	}
	if c.MaxLookupDuration == 0 {
		c.MaxLookupDuration = DefaultMaxLookupDuration
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.KRPC.Logger == nil {
		c.KRPC.Logger = c.Logger
	}
	c.Bootstrap = append([]netip.AddrPort(nil), c.Bootstrap...)
	return c
}
