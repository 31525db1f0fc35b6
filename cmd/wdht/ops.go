package main

import (
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/udp"
	"github.com/wdht/wdht/transport/webrtc"
)

// envPrefix starts the environment variable of each of node's flags: WDHT_ and the
// flag's name in upper case with "-" as "_" (--max-conns: WDHT_MAX_CONNS).
const envPrefix = "WDHT_"

// Defaults of the operator flags (those of the library, restated for the help text).
const (
	defaultMaxPeers        = 100_000
	defaultMaxPeersPerIH   = 200
	defaultPeerTTL         = 30 * time.Minute
	defaultMaxItems        = 10_000
	defaultMaxItemBytes    = 16 << 20
	defaultItemTTL         = 2 * time.Hour
	defaultMetricsHostPort = "127.0.0.1"
)

// opsFlags are the flags of "wdht node" an operator of a public node tunes: metrics,
// logs, proxies, caps, store sizes, rate limits, socket buffers.
type opsFlags struct {
	metricsAddr     string
	pprof           bool
	logFormat       string
	trustedProxies  prefixList
	proxyHeader     string
	maxConns        int
	maxPending      int
	maxPendingPerIP int
	maxPeers        int
	maxPeersPerIH   int
	maxPeersPerSrc  int
	peerTTL         time.Duration
	maxItems        int
	maxItemBytes    int
	maxItemsPerSrc  int
	itemTTL         time.Duration
	sourceRate      float64
	sourceBurst     int
	udpReadBuffer   int
	udpWriteBuffer  int
	enforceSecure   bool

	maddr netip.AddrPort // parsed --metrics-addr; invalid when off
}

// define adds the flags to fs.
func (o *opsFlags) define(fs *flag.FlagSet) {
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "")
	fs.BoolVar(&o.pprof, "pprof", false, "")
	fs.StringVar(&o.logFormat, "log-format", "text", "")
	fs.Var(&o.trustedProxies, "trusted-proxy", "")
	fs.StringVar(&o.proxyHeader, "proxy-header", "x-forwarded-for", "")
	fs.IntVar(&o.maxConns, "max-conns", webrtc.DefaultMaxConns, "")
	fs.IntVar(&o.maxPending, "max-pending", webrtc.DefaultMaxPending, "")
	fs.IntVar(&o.maxPendingPerIP, "max-pending-per-ip", webrtc.DefaultMaxPendingPerIP, "")
	fs.IntVar(&o.maxPeers, "max-peers", defaultMaxPeers, "")
	fs.IntVar(&o.maxPeersPerIH, "max-peers-per-infohash", defaultMaxPeersPerIH, "")
	fs.IntVar(&o.maxPeersPerSrc, "max-peers-per-source", 0, "")
	fs.DurationVar(&o.peerTTL, "peer-ttl", defaultPeerTTL, "")
	fs.IntVar(&o.maxItems, "max-items", defaultMaxItems, "")
	fs.IntVar(&o.maxItemBytes, "max-item-bytes", defaultMaxItemBytes, "")
	fs.IntVar(&o.maxItemsPerSrc, "max-items-per-source", 0, "")
	fs.DurationVar(&o.itemTTL, "item-ttl", defaultItemTTL, "")
	fs.Float64Var(&o.sourceRate, "source-rate", krpc.DefaultSourceRate, "")
	fs.IntVar(&o.sourceBurst, "source-burst", krpc.DefaultSourceBurst, "")
	fs.IntVar(&o.udpReadBuffer, "udp-read-buffer", 0, "")
	fs.IntVar(&o.udpWriteBuffer, "udp-write-buffer", 0, "")
	fs.BoolVar(&o.enforceSecure, "enforce-secure-ids", false, "")
}

// check checks the flags' values.
func (o *opsFlags) check() error {
	for _, c := range []struct {
		name string
		v    int
		min  int
	}{
		{"max-conns", o.maxConns, 1}, {"max-pending", o.maxPending, 1}, {"max-pending-per-ip", o.maxPendingPerIP, 1},
		{"max-peers", o.maxPeers, 1}, {"max-peers-per-infohash", o.maxPeersPerIH, 1},
		{"max-items", o.maxItems, 1}, {"max-item-bytes", o.maxItemBytes, 1}, {"source-burst", o.sourceBurst, 1},
		{"udp-read-buffer", o.udpReadBuffer, 0}, {"udp-write-buffer", o.udpWriteBuffer, 0},
		{"max-peers-per-source", o.maxPeersPerSrc, 0}, {"max-items-per-source", o.maxItemsPerSrc, 0},
	} {
		if c.v < c.min {
			return badInput("--%s %d: want a number of at least %d", c.name, c.v, c.min)
		}
	}
	for _, c := range []struct {
		name string
		v    time.Duration
	}{{"peer-ttl", o.peerTTL}, {"item-ttl", o.itemTTL}} {
		if c.v <= 0 {
			return badInput("--%s %v: want a positive duration", c.name, c.v)
		}
	}
	if !(o.sourceRate > 0 && o.sourceRate <= 1e9) {
		return badInput("--source-rate %v: want queries per second above 0 (--limits=false turns the limit off)", o.sourceRate)
	}
	switch o.logFormat {
	case "text", "json":
	default:
		return badInput("--log-format %q: want text or json", o.logFormat)
	}
	switch strings.ToLower(o.proxyHeader) {
	case "x-forwarded-for", "forwarded":
	default:
		return badInput("--proxy-header %q: want x-forwarded-for or forwarded", o.proxyHeader)
	}
	if o.metricsAddr != "" {
		a, err := parseListenFlag("--metrics-addr", o.metricsAddr)
		if err != nil {
			if !strings.Contains(err.Error(), "want ip:port") {
				return err
			}
			return badInput("--metrics-addr %q: want ip:port ([ip]:port for IPv6, :port for loopback, 0.0.0.0:port for every interface)", o.metricsAddr)
		}
		if !a.Addr().IsValid() { // no host: loopback
			a = netip.AddrPortFrom(netip.MustParseAddr(defaultMetricsHostPort), a.Port())
		}
		o.maddr = a
	} else if o.pprof {
		return badUsage("--pprof needs --metrics-addr: the profiles are served there")
	}
	return nil
}

// header returns the webrtc.ServerConfig.ProxyHeader of --proxy-header.
func (o *opsFlags) header() string {
	if strings.EqualFold(o.proxyHeader, "forwarded") {
		return webrtc.HeaderForwarded
	}
	return webrtc.HeaderXForwardedFor
}

// stores returns the peer and item stores the flags describe.
func (o *opsFlags) stores() (*dht.PeerStore, *dht.ItemStore, error) {
	peers, err := dht.NewPeerStore(&dht.PeerStoreConfig{TTL: o.peerTTL, MaxPerInfohash: o.maxPeersPerIH, MaxPeers: o.maxPeers, MaxPerSource: o.maxPeersPerSrc})
	if err != nil {
		return nil, nil, err
	}
	items, err := dht.NewItemStore(&dht.ItemStoreConfig{TTL: o.itemTTL, MaxItems: o.maxItems, MaxBytes: o.maxItemBytes, MaxPerSource: o.maxItemsPerSrc})
	if err != nil {
		return nil, nil, err
	}
	return peers, items, nil
}

// udpConfig returns the UDP transport's configuration.
func (o *opsFlags) udpConfig(log hclog.Logger) *udp.Config {
	return &udp.Config{Logger: log, ReadBuffer: o.udpReadBuffer, WriteBuffer: o.udpWriteBuffer}
}

// tuneWebRTC sets the WebRTC transport's caps.
func (o *opsFlags) tuneWebRTC(c *webrtc.Config) {
	c.MaxConns, c.MaxPending, c.MaxPendingPerIP = o.maxConns, o.maxPending, o.maxPendingPerIP
}

// tuneKRPC sets the inbound rate limit of a node's KRPC layer.
func (o *opsFlags) tuneKRPC(c *krpc.Config) {
	c.SourceRate, c.SourceBurst = o.sourceRate, o.sourceBurst
}

// logger returns log in the --log-format: the same logger for text, else one writing
// JSON lines (hclog's JSON format) at the same level.
func (o *opsFlags) logger(e *env) hclog.Logger {
	if o.logFormat != "json" {
		return e.log
	}
	return hclog.New(&hclog.LoggerOptions{Name: "wdht", Level: e.log.GetLevel(), Output: e.stderr, JSONFormat: true})
}

// envName returns the environment variable of the flag called name.
func envName(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// applyEnv sets each flag of fs not given on the command line from its environment
// variable (see envName), when that is set and not empty.
func applyEnv(fs *flag.FlagSet) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if err != nil || given[f.Name] {
			return
		}
		v, ok := os.LookupEnv(envName(f.Name))
		if !ok || v == "" {
			return
		}
		if serr := fs.Set(f.Name, v); serr != nil {
			err = badInput("%s=%q (--%s): %v", envName(f.Name), v, f.Name, serr)
		}
	})
	return err
}

// prefixList is the repeatable --trusted-proxy flag: CIDR prefixes, or single IPs,
// comma-separated.
type prefixList struct{ prefixes []netip.Prefix }

func (l *prefixList) String() string {
	s := make([]string, len(l.prefixes))
	for i, p := range l.prefixes {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

func (l *prefixList) Set(v string) error {
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			ip, ierr := netip.ParseAddr(s)
			if ierr != nil || ip.Zone() != "" {
				return fmt.Errorf("%q is not a CIDR prefix (such as 10.0.0.0/8 or 2001:db8::/32) or an IP address", s)
			}
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		l.prefixes = append(l.prefixes, p.Masked())
	}
	return nil
}

// checkStateFile checks, at start, that the state file can be written: its directory
// exists and takes new files (saveState writes a temporary file there and renames it),
// and it is not a directory.
func checkStateFile(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return badInput("--state %q: is a directory", path)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".check*")
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return badInput("--state %q: cannot write in %s: %v", path, dir, err)
	}
	tmp.Close()
	os.Remove(tmp.Name())
	return nil
}
