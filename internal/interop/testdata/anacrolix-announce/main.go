// Command anacrolix-announce runs github.com/anacrolix/dht/v2 as a DHT *client* on
// loopback: it joins a network through --bootstrap, announces infohashes with the
// library's own announce traversal (get_peers to the closest nodes, then announce_peer with
// their tokens) and looks them up again.
//
// The server is configured exactly as the harness's anacrolix node
// (../shared/interop/udp-peers/anacrolix/main.go): loopback only, no public routers, the
// send limiter lifted, and a working peer store (v2.23.0's peer_store.InMemory is broken).
//
// Usage: anacrolix-announce --bootstrap H:P[,H:P] --announce IH:PORT[,IH:PORT]
//
//	[--host 127.0.0.1] [--port 0] [--stats S] [--max-seconds N]
//
// PORT 0 announces with implied_port. Prints:
//
//	LISTENING impl=anacrolix-dht-client version=V addr=H:P id=HEX pid=PID
//	READY nodes=N
//	ANNOUNCED infohash=HEX port=P get_peers_replies=N  (then announce_peer to the closest)
//	FOUND infohash=HEX peer=H:P from=H:P
//	LOOKUP-DONE infohash=HEX
//	STATS t=S nodes=N good=N
//
// and stops on SIGTERM/SIGINT or after --max-seconds.
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/anacrolix/dht/v2"
	"github.com/anacrolix/dht/v2/krpc"
	peer_store "github.com/anacrolix/dht/v2/peer-store"
	"github.com/anacrolix/log"
	"golang.org/x/time/rate"
)

// peerStore is the harness's replacement for the broken peer_store.InMemory of v2.23.0.
type peerStore struct {
	mu sync.Mutex
	m  map[peer_store.InfoHash]map[string]krpc.NodeAddr
}

func (p *peerStore) AddPeer(ih peer_store.InfoHash, na krpc.NodeAddr) {
	if ip4 := na.IP.To4(); ip4 != nil {
		na.IP = ip4
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = make(map[peer_store.InfoHash]map[string]krpc.NodeAddr)
	}
	peers := p.m[ih]
	if peers == nil {
		peers = make(map[string]krpc.NodeAddr)
		p.m[ih] = peers
	}
	if len(peers) >= 100 {
		for k := range peers {
			delete(peers, k)
			break
		}
	}
	peers[na.String()] = na
}

func (p *peerStore) GetPeers(ih peer_store.InfoHash) (ret []krpc.NodeAddr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, na := range p.m[ih] {
		ret = append(ret, na)
	}
	return
}

type announce struct {
	ih   [20]byte
	port int
}

func modVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/anacrolix/dht/v2" {
				return d.Version
			}
		}
	}
	return "?"
}

func main() {
	host := flag.String("host", "127.0.0.1", "loopback address to bind")
	port := flag.Int("port", 0, "UDP port (0 = pick a free one)")
	bootstrap := flag.String("bootstrap", "", "comma-separated HOST:PORT list (loopback only)")
	announceFlag := flag.String("announce", "", "comma-separated INFOHASH:PORT list (PORT 0 = implied_port)")
	statsEvery := flag.Float64("stats", 0, "print routing-table stats every N seconds")
	maxSeconds := flag.Float64("max-seconds", 300, "exit after this long")
	flag.Parse()

	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
		os.Exit(2)
	}
	if ip := net.ParseIP(*host); ip == nil || !ip.IsLoopback() {
		fail("non-loopback host refused")
	}
	var boot []dht.Addr
	for _, s := range strings.Split(*bootstrap, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		ua, err := net.ResolveUDPAddr("udp4", s)
		if err != nil || !ua.IP.IsLoopback() {
			fail("bad/non-loopback bootstrap %q: %v", s, err)
		}
		boot = append(boot, dht.NewAddr(ua))
	}
	var anns []announce
	for _, s := range strings.Split(*announceFlag, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		ihs, ps, _ := strings.Cut(s, ":")
		b, err := hex.DecodeString(ihs)
		p, perr := strconv.Atoi(ps)
		if err != nil || len(b) != 20 || perr != nil || p < 0 || p > 65535 {
			fail("bad --announce entry %q", s)
		}
		var a announce
		copy(a.ih[:], b)
		a.port = p
		anns = append(anns, a)
	}

	conn, err := net.ListenPacket("udp4", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		fail("listen: %v", err)
	}
	cfg := dht.NewDefaultServerConfig()
	cfg.Conn = conn
	cfg.NoSecurity = false
	cfg.StartingNodes = func() ([]dht.Addr, error) {
		if len(boot) == 0 {
			return nil, errors.New("no loopback bootstrap nodes configured")
		}
		return boot, nil
	}
	cfg.PeerStore = &peerStore{}
	cfg.SendLimiter = rate.NewLimiter(rate.Inf, 0)
	cfg.Logger = log.Default.FilterLevel(log.Warning)
	s, err := dht.NewServer(cfg)
	if err != nil {
		fail("NewServer: %v", err)
	}
	id := s.ID()
	fmt.Printf("LISTENING impl=anacrolix-dht-client version=%s addr=%s id=%s pid=%d\n",
		modVersion(), s.Addr(), hex.EncodeToString(id[:]), os.Getpid())

	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(*maxSeconds*float64(time.Second)))
	defer cancel()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		select {
		case <-sig:
		case <-ctx.Done():
		}
		cancel()
	}()

	go s.TableMaintainer()
	go func() {
		for _, a := range boot {
			s.Ping(a.Raw().(*net.UDPAddr))
		}
		if _, err := s.BootstrapContext(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "bootstrap:", err)
		}
		fmt.Printf("READY nodes=%d\n", s.Stats().Nodes)
		var wg sync.WaitGroup
		for _, a := range anns {
			wg.Go(func() {
				opts := dht.AnnouncePeerOpts{Port: a.port, ImpliedPort: a.port == 0}
				tr, err := s.AnnounceTraversal(a.ih, dht.AnnouncePeer(opts))
				if err != nil {
					fmt.Printf("ANNOUNCED infohash=%x port=%d get_peers_replies=0 err=%v\n", a.ih, a.port, err)
					return
				}
				replies := 0
				for range tr.Peers {
					replies++
				}
				<-tr.Finished()
				tr.Close()
				fmt.Printf("ANNOUNCED infohash=%x port=%d get_peers_replies=%d err=\n", a.ih, a.port, replies)
			})
		}
		wg.Wait()
		for _, a := range anns {
			tr, err := s.AnnounceTraversal(a.ih)
			if err != nil {
				fmt.Printf("LOOKUP-DONE infohash=%x err=%v\n", a.ih, err)
				continue
			}
			for pv := range tr.Peers {
				for _, p := range pv.Peers {
					fmt.Printf("FOUND infohash=%x peer=%s from=%s\n", a.ih, p, pv.Addr)
				}
			}
			tr.Close()
			fmt.Printf("LOOKUP-DONE infohash=%x err=\n", a.ih)
		}
	}()

	var tick <-chan time.Time
	t0 := time.Now()
	if *statsEvery > 0 {
		tk := time.NewTicker(time.Duration(*statsEvery * float64(time.Second)))
		defer tk.Stop()
		tick = tk.C
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick:
			st := s.Stats()
			fmt.Printf("STATS t=%.2f nodes=%d good=%d\n", time.Since(t0).Seconds(), st.Nodes, st.GoodNodes)
		}
	}
	fmt.Printf("STOPPING impl=anacrolix-dht-client pid=%d\n", os.Getpid())
	s.Close()
}
