package dht

import (
	"net/netip"
	"testing"

	"go.uber.org/goleak"

	"github.com/wdht/wdht/transport/memory"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cluster is a set of nodes on one memory network.
type cluster struct {
	t     testing.TB
	net   *memory.Network
	nodes []*Node
}

func newCluster(t testing.TB, netCfg *memory.Config) *cluster {
	t.Helper()
	return &cluster{t: t, net: memory.NewNetwork(netCfg)}
}

// add starts a node on a new address of the network; it is closed at cleanup.
func (c *cluster) add(cfg *Config) *Node {
	c.t.Helper()
	tr, err := c.net.Listen(netip.AddrPort{})
	if err != nil {
		c.t.Fatal(err)
	}
	n, err := New(tr, cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		n.Close()
		tr.Close()
	})
	c.nodes = append(c.nodes, n)
	return n
}

// unlimited is a config for load tests: no rate limits.
func unlimited() *Config {
	c := &Config{}
	c.KRPC.SourceRate = -1
	c.KRPC.QueryRate = -1
	c.KRPC.InboundRate = -1
	return c
}
