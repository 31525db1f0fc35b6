package memory

import (
	"errors"
	"fmt"
	"time"
)

// DefaultQueueLen is the receive queue length of a transport when Config.QueueLen is zero.
const DefaultQueueLen = 1024

// Config configures a Network. The zero value (or a nil *Config) is a network without
// delay or loss, in which every address can reach every other.
type Config struct {
	// Link holds the delay, jitter and loss of every pair of hosts that has no
	// override set with Network.SetLink. Zero delivers every packet at once.
	Link LinkConfig

	// QueueLen bounds each transport's receive queue, in packets. When a queue is full,
	// arriving packets are dropped and counted, as a UDP socket buffer does.
	// Zero means DefaultQueueLen.
	QueueLen int

	// Linked makes the network behave like WebRTC: only addresses connected with
	// Network.Link reach each other, and Send to any other address (or to a linked
	// address across a partition) returns transport.ErrUnreachable at once.
	Linked bool

	// Tick, when positive, rounds the arrival time of every delayed packet up to a
	// multiple of Tick (since the zero time.Time, which testing/synctest's clock is
	// aligned with). Inside a testing/synctest bubble the clock advances only when
	// every goroutine of the bubble is blocked, one instant at a time: with jitter,
	// nearly every packet arrives at an instant of its own, so a large simulation runs
	// one packet at a time and spends much of its CPU on putting threads to sleep and
	// waking them. The packets due at one instant are delivered together, in the
	// order they were sent, by one timer (without a Tick every packet has a timer and,
	// when it fires, a goroutine of its own), and their receivers handle them in
	// parallel. A tick of a millisecond, well below the delays simulated, changes no
	// figure measured in milliseconds. Zero keeps every arrival at its exact time.
	// Packets sent with no delay (a link without delay, or a jitter draw of zero on a
	// link without Delay) are delivered at once, whatever Tick says.
	Tick time.Duration

	// Seed seeds the pseudo-random source of jitter and loss, so that a run that
	// sends the same packets in the same order makes the same choices. Zero is a
	// valid seed.
	Seed uint64
}

// LinkConfig describes the path between two hosts.
type LinkConfig struct {
	// Delay is the one-way latency of every packet.
	Delay time.Duration
	// Jitter adds a uniformly distributed random delay in [0, Jitter) to each
	// packet, so packets may be reordered.
	Jitter time.Duration
	// Loss is the probability, from 0 to 1, that a packet is lost.
	Loss float64
}

// Validate reports whether c is usable.
func (c *LinkConfig) Validate() error {
	var errs []error
	if c.Delay < 0 {
		errs = append(errs, fmt.Errorf("memory: negative delay %v", c.Delay))
	}
	if c.Jitter < 0 {
		errs = append(errs, fmt.Errorf("memory: negative jitter %v", c.Jitter))
	}
	if !(c.Loss >= 0 && c.Loss <= 1) { // also rejects NaN
		errs = append(errs, fmt.Errorf("memory: loss %v outside [0, 1]", c.Loss))
	}
	return errors.Join(errs...)
}

// Validate reports whether c is usable. A nil Config is valid.
func (c *Config) Validate() error {
	if c == nil {
		return nil
	}
	var errs []error
	if err := c.Link.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.QueueLen < 0 {
		errs = append(errs, fmt.Errorf("memory: negative QueueLen %d", c.QueueLen))
	}
	if c.Tick < 0 {
		errs = append(errs, fmt.Errorf("memory: negative Tick %v", c.Tick))
	}
	return errors.Join(errs...)
}
