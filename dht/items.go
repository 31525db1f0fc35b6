package dht

import (
	"bytes"
	"container/heap"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/wdht/wdht/internal/ratelimit"
)

// ItemStoreConfig configures an ItemStore. Zero fields mean the documented defaults.
type ItemStoreConfig struct {
	// TTL is how long an item is kept after it was last put. Default 2 hours (BEP 44:
	// items may expire after 2 hours; publishers re-put them every hour).
	TTL time.Duration
	// MaxItems caps the number of items. Default 10,000.
	MaxItems int
	// MaxBytes caps the bytes of values and salts held. Default 16 MiB.
	MaxBytes int
	// MaxPerSource caps the items one source holds: the items first put from one IPv4
	// address or one IPv6 /64 (items put with Put, and those restored from a State, have
	// no source). A put of a new item from a source at its quota is refused with
	// ErrSourceQuota; updates of stored items are not counted. One address cannot fill
	// the store. Default MaxItems/100 (100).
	MaxPerSource int
}

// Validate reports the first invalid field.
func (c *ItemStoreConfig) Validate() error {
	switch {
	case c.TTL < 0:
		return fmt.Errorf("dht: ItemStoreConfig.TTL %v is negative", c.TTL)
	case c.MaxItems < 0:
		return fmt.Errorf("dht: ItemStoreConfig.MaxItems %d is negative", c.MaxItems)
	case c.MaxBytes < 0:
		return fmt.Errorf("dht: ItemStoreConfig.MaxBytes %d is negative", c.MaxBytes)
	case c.MaxPerSource < 0:
		return fmt.Errorf("dht: ItemStoreConfig.MaxPerSource %d is negative", c.MaxPerSource)
	}
	return nil
}

// ItemStore keeps BEP 44 items, applying the BEP's rules to every put (sequence numbers,
// compare-and-swap), with expiry and caps: when full, the items closest to expiring go
// first. It is safe for concurrent use, and one store may serve several nodes.
type ItemStore struct {
	ttl                    time.Duration
	maxItems, maxB, perSrc int

	mu      sync.Mutex
	items   map[ID]*storedItem
	order   expiryHeap
	bytes   int
	sources map[netip.Addr]int // ratelimit.SourceKey -> items it first put
}

type storedItem struct {
	item    *Item
	expires time.Time
	index   int        // in the heap
	source  netip.Addr // ratelimit.SourceKey of who first put it; invalid for none
}

func (s *storedItem) size() int { return len(s.item.V) + len(s.item.Salt) }

// NewItemStore returns an empty store. cfg may be nil.
func NewItemStore(cfg *ItemStoreConfig) (*ItemStore, error) {
	var c ItemStoreConfig
	if cfg != nil {
		c = *cfg
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.TTL == 0 {
		c.TTL = 2 * time.Hour
	}
	if c.MaxItems == 0 {
		c.MaxItems = 10_000
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = 16 << 20
	}
	if c.MaxPerSource == 0 {
		c.MaxPerSource = max(1, c.MaxItems/100)
	}
	return &ItemStore{
		ttl: c.TTL, maxItems: c.MaxItems, maxB: c.MaxBytes, perSrc: c.MaxPerSource,
		items: make(map[ID]*storedItem), sources: make(map[netip.Addr]int),
	}, nil
}

// Get returns a copy of the item stored under target, if there is one that has not expired.
func (s *ItemStore) Get(target ID) (*Item, bool) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	si := s.items[target]
	if si == nil {
		return nil, false
	}
	if now.After(si.expires) {
		s.remove(si)
		return nil, false
	}
	return si.item.clone(), true
}

// Put stores it (which must have passed Verify) under its target. For a mutable item
// already stored it applies BEP 44: cas, when not nil, must equal the stored sequence
// number (else ErrCASMismatch); a lower sequence number, or the same one with another
// value, is refused (ErrSeqTooLow); the same version again refreshes the expiry.
// An immutable item is stored or refreshed. The item has no source (see PutFrom).
func (s *ItemStore) Put(it *Item, cas *int64) error { return s.PutFrom(it, cas, netip.Addr{}) }

// PutFrom is Put of an item put by the node at source: a new item from a source (its
// IPv4 address or IPv6 /64) that holds MaxPerSource items already is refused with
// ErrSourceQuota. An invalid source has no quota.
func (s *ItemStore) PutFrom(it *Item, cas *int64, source netip.Addr) error {
	target := it.Target()
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if si := s.items[target]; si != nil && !now.After(si.expires) {
		old := si.item
		if it.Mutable {
			switch {
			case cas != nil && *cas != old.Seq:
				return ErrCASMismatch
			case it.Seq < old.Seq, it.Seq == old.Seq && !bytes.Equal(it.V, old.V):
				return ErrSeqTooLow
			}
		}
		s.bytes -= si.size()
		si.item = it.clone()
		s.bytes += si.size()
		si.expires = now.Add(s.ttl)
		heap.Fix(&s.order, si.index)
		s.evict(si)
		return nil
	} else if si != nil {
		s.remove(si) // expired: as if absent
	}
	src := ratelimit.SourceKey(source)
	if src.IsValid() {
		if s.sources[src] >= s.perSrc {
			return ErrSourceQuota
		}
		s.sources[src]++
	}
	si := &storedItem{item: it.clone(), expires: now.Add(s.ttl), source: src}
	s.items[target] = si
	heap.Push(&s.order, si)
	s.bytes += si.size()
	s.evict(si)
	return nil
}

// evict drops the items closest to expiry until the caps hold, sparing keep (the item
// just put).
func (s *ItemStore) evict(keep *storedItem) {
	held := false
	for (len(s.items) > s.maxItems || s.bytes > s.maxB) && len(s.order) > 0 {
		if si := s.order[0]; si == keep {
			heap.Pop(&s.order)
			held = true
		} else {
			s.remove(si)
		}
	}
	if held {
		heap.Push(&s.order, keep)
	}
}

func (s *ItemStore) remove(si *storedItem) {
	heap.Remove(&s.order, si.index)
	delete(s.items, si.item.Target())
	s.bytes -= si.size()
	if si.source.IsValid() {
		if s.sources[si.source] <= 1 {
			delete(s.sources, si.source)
		} else {
			s.sources[si.source]--
		}
	}
}

// Sweep drops expired items and returns how many it dropped.
func (s *ItemStore) Sweep() int {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for len(s.order) > 0 && now.After(s.order[0].expires) {
		s.remove(s.order[0])
		n++
	}
	return n
}

// Len returns the number of items stored and the bytes of their values and salts.
func (s *ItemStore) Len() (items, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.items), s.bytes
}

// expiryHeap orders stored items by expiry, soonest first.
type expiryHeap []*storedItem

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *expiryHeap) Push(x any) {
	si := x.(*storedItem)
	si.index = len(*h)
	*h = append(*h, si)
}
func (h *expiryHeap) Pop() any {
	old := *h
	si := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return si
}

// All returns copies of up to max of the stored items that have not expired, those
// stored or refreshed most recently first (for Node.State).
func (s *ItemStore) All(max int) []*Item {
	now := time.Now()
	s.mu.Lock()
	all := make([]*storedItem, 0, len(s.items))
	for _, si := range s.items {
		if !now.After(si.expires) {
			all = append(all, si)
		}
	}
	slices.SortFunc(all, func(a, b *storedItem) int { return b.expires.Compare(a.expires) })
	out := make([]*Item, 0, min(max, len(all)))
	for _, si := range all[:min(max, len(all))] {
		out = append(out, si.item.clone())
	}
	s.mu.Unlock()
	return out
}
