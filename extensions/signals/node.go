package signals

import (
	"errors"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport"
)

// NewNode starts a DHT node on t (a WebRTC transport, or a linked memory transport) with
// the extension negotiating its connections through sig, and the JS WebTorrent DHT's
// defaults: K=2 unless cfg sets K. Unless cfg sets it, MaxQueryDeadline is
// DefaultMaxQueryDeadline, not the DHT's 1 s: a signalled query's answer arrives only
// once the connections it opens are up (RelayTimeout, then ICE and DTLS), so its round
// trip is that of a connection set-up, and a lookup that gave up on such queries after
// 1 s would end with only the first round's answers on a loaded host. cfg and ecfg may be nil; neither is changed. The
// extension closes with the node. On a WebRTC transport the node also, through the
// transport's optional interfaces, keeps the connections of the nodes in its table,
// forgets a node whose connection closes, dials its bootstrap nodes, and saves its
// signalling servers as its state.
func NewNode(t transport.Transport, sig Signaler, cfg *dht.Config, ecfg *Config) (*dht.Node, error) {
	if t == nil || sig == nil {
		return nil, errors.New("signals: NewNode: nil transport or Signaler")
	}
	var c dht.Config
	if cfg != nil {
		c = *cfg
	}
	if c.K == 0 {
		c.K = DefaultK
	}
	if c.MaxQueryDeadline == 0 {
		c.MaxQueryDeadline = DefaultMaxQueryDeadline
		if c.MinQueryDeadline > c.MaxQueryDeadline {
			c.MaxQueryDeadline = c.MinQueryDeadline
		}
	}
	var ec Config
	if ecfg != nil {
		ec = *ecfg
	}
	if ec.K == 0 {
		ec.K = c.K
	}
	if ec.Logger == nil {
		ec.Logger = c.Logger
	}
	ext, err := New(sig, &ec)
	if err != nil {
		return nil, err
	}
	c.KRPC.Extensions = append([]krpc.Extension{ext}, c.KRPC.Extensions...)
	n, err := dht.New(t, &c)
	if err != nil {
		ext.Close()
		return nil, err
	}
	return n, nil
}
