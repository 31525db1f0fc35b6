package udp

import (
	"errors"
	"fmt"

	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/transport"
)

// Config configures a Transport. The zero value (or a nil *Config) is usable: operating
// system's default socket buffers, messages up to transport.MaxMessageSize, no logging.
type Config struct {
	// ReadBuffer and WriteBuffer set the socket's receive and send buffer sizes in bytes
	// (SO_RCVBUF and SO_SNDBUF). Zero keeps the system's default (on Linux
	// net.core.rmem_default, usually 208 KiB, which holds a few hundred small datagrams;
	// requests are capped at net.core.rmem_max). The receive buffer is the only queue
	// between the network and Receive: a node that falls behind in bursts wants more.
	ReadBuffer  int
	WriteBuffer int

	// MaxMessageSize is the largest message Send accepts and Receive delivers; larger
	// datagrams that arrive are dropped and counted in Stats.Oversize. Zero means
	// transport.MaxMessageSize, the most a UDP datagram over IPv4 carries and the least
	// the transport contract requires; set it lower only for a network whose peers you
	// know send less.
	MaxMessageSize int

	// Logger receives the transport's logs: listen and close, oversize datagrams and read
	// errors at Debug level, and a Warn when read errors repeat. Nil discards them.
	Logger hclog.Logger
}

// Validate reports whether c is usable. A nil Config is valid.
func (c *Config) Validate() error {
	if c == nil {
		return nil
	}
	var errs []error
	if c.ReadBuffer < 0 {
		errs = append(errs, fmt.Errorf("udp: negative ReadBuffer %d", c.ReadBuffer))
	}
	if c.WriteBuffer < 0 {
		errs = append(errs, fmt.Errorf("udp: negative WriteBuffer %d", c.WriteBuffer))
	}
	if c.MaxMessageSize < 0 || c.MaxMessageSize > transport.MaxMessageSize {
		errs = append(errs, fmt.Errorf("udp: MaxMessageSize %d outside [0, %d]",
			c.MaxMessageSize, transport.MaxMessageSize))
	}
	return errors.Join(errs...)
}
