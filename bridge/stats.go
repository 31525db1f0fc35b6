package bridge

import "sync/atomic"

// Stats are a Bridge's counters of fallbacks: lookups on the other network that answer a
// get for an item the shared store lacks.
type Stats struct {
	// ToWeb counts the fallbacks of gets that reached the mainline node, looked up on the
	// WebRTC network; ToMainline those of gets that reached the WebRTC node.
	ToWeb, ToMainline FallbackStats
}

// FallbackStats count the fallbacks of one direction by outcome.
type FallbackStats struct {
	Found    uint64 // the lookup found the item
	NotFound uint64 // the lookup found nothing (or timed out)
	Skipped  uint64 // not run: over Config.FallbackRate or FallbackConcurrency
}

type fallbackCounters struct {
	found, notFound, skipped atomic.Uint64
}

func (c *fallbackCounters) load() FallbackStats {
	return FallbackStats{Found: c.found.Load(), NotFound: c.notFound.Load(), Skipped: c.skipped.Load()}
}

// Stats returns the bridge's fallback counters.
func (b *Bridge) Stats() Stats {
	return Stats{ToWeb: b.toWeb.counts.load(), ToMainline: b.toMainline.counts.load()}
}
