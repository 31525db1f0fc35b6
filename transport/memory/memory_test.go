package memory_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wdht/wdht/transport"
	"github.com/wdht/wdht/transport/memory"
)

var ap = netip.MustParseAddrPort

func mustSend(t testing.TB, tr transport.Transport, to netip.AddrPort, b []byte) {
	t.Helper()
	if err := tr.Send(to, b); err != nil {
		t.Fatalf("Send(%v): %v", to, err)
	}
}

func mustReceive(t testing.TB, tr transport.Transport) transport.Packet {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := tr.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive: %v", err)
	}
	return p
}

// pending returns how many packets wait in tr's queue, without blocking: it drains them.
func drain(tr transport.Transport) []transport.Packet {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var ps []transport.Packet
	for {
		p, err := tr.Receive(ctx)
		if err != nil {
			return ps
		}
		ps = append(ps, p)
	}
}

func TestListenAllocatesDistinctIPs(t *testing.T) {
	n := memory.NewNetwork(nil)
	seen := map[netip.Addr]bool{}
	for i := range 300 {
		tr := listen(t, n, netip.AddrPort{})
		a := tr.LocalAddr()
		if !a.Addr().Is4() || !netip.MustParsePrefix("10.0.0.0/8").Contains(a.Addr()) || a.Port() != memory.AllocPort {
			t.Fatalf("allocated %v, want an address in 10.0.0.0/8 at port %d", a, memory.AllocPort)
		}
		if seen[a.Addr()] {
			t.Fatalf("transport %d: IP %v allocated twice", i, a.Addr())
		}
		seen[a.Addr()] = true
	}
}

func TestListen(t *testing.T) {
	n := memory.NewNetwork(nil)
	a := listen(t, n, ap("192.0.2.1:1000"))
	if _, err := n.Listen(ap("192.0.2.1:1000")); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("Listen on an address in use = %v, want an 'in use' error", err)
	}
	if _, err := n.Listen(ap("0.0.0.0:1000")); err == nil {
		t.Error("Listen on 0.0.0.0 succeeded, want an error")
	}
	// Port 0 allocates a free port on the given IP.
	p1 := listen(t, n, ap("192.0.2.1:0"))
	p2 := listen(t, n, ap("192.0.2.1:0"))
	if p1.LocalAddr() != ap("192.0.2.1:6881") || p2.LocalAddr() != ap("192.0.2.1:6882") {
		t.Errorf("port-0 listens got %v and %v, want 192.0.2.1:6881 and :6882", p1.LocalAddr(), p2.LocalAddr())
	}
	// IPv4-mapped addresses are unmapped.
	m := listen(t, n, ap("[::ffff:192.0.2.9]:7"))
	if m.LocalAddr() != ap("192.0.2.9:7") {
		t.Errorf("LocalAddr = %v, want 192.0.2.9:7", m.LocalAddr())
	}
	// Close frees the address.
	a.Close()
	b := listen(t, n, ap("192.0.2.1:1000"))
	// A packet to the new listener reaches it, not the closed one.
	mustSend(t, p1, b.LocalAddr(), []byte("hi"))
	if p := mustReceive(t, b); string(p.Data) != "hi" || p.From != p1.LocalAddr() {
		t.Errorf("got %q from %v", p.Data, p.From)
	}
}

func TestNewNetworkConfig(t *testing.T) {
	for _, c := range []memory.Config{
		{Link: memory.LinkConfig{Delay: -1}},
		{Link: memory.LinkConfig{Jitter: -1}},
		{Link: memory.LinkConfig{Loss: 1.5}},
		{Link: memory.LinkConfig{Loss: -0.1}},
		{QueueLen: -1},
		{Tick: -time.Millisecond},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: Validate = nil, want an error", c)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%+v: NewNetwork did not panic", c)
				}
			}()
			memory.NewNetwork(&c)
		}()
	}
	c := memory.Config{}
	memory.NewNetwork(&c)
	if c != (memory.Config{}) {
		t.Errorf("NewNetwork changed the caller's Config to %+v", c)
	}
	var nilCfg *memory.Config
	if err := nilCfg.Validate(); err != nil {
		t.Errorf("nil Config: Validate = %v", err)
	}
	n := memory.NewNetwork(nil)
	if err := n.SetLink(netip.Addr{}, netip.Addr{}, memory.LinkConfig{Loss: 2}); err == nil {
		t.Error("SetLink with loss 2 = nil, want an error")
	}
}

func TestSendToNobodyIsDropped(t *testing.T) {
	n := memory.NewNetwork(nil)
	a := listen(t, n, netip.AddrPort{})
	mustSend(t, a, ap("10.200.0.1:6881"), []byte("x"))
	if s := n.Stats(); s.Sent != 1 || s.NoListener != 1 || s.InFlight() != 0 {
		t.Errorf("Stats = %+v, want 1 sent, 1 dropped for no listener", s)
	}
}

func TestQueueFull(t *testing.T) {
	n := memory.NewNetwork(&memory.Config{QueueLen: 3})
	a, b := listen(t, n, netip.AddrPort{}), listen(t, n, netip.AddrPort{})
	for i := range 5 {
		mustSend(t, a, b.LocalAddr(), []byte{byte(i)})
	}
	got := drain(b)
	if len(got) != 3 || got[0].Data[0] != 0 || got[2].Data[0] != 2 {
		t.Errorf("received %v, want the first 3 packets", got)
	}
	if s := n.Stats(); s.Delivered != 3 || s.QueueFull != 2 {
		t.Errorf("network Stats = %+v, want 3 delivered and 2 dropped for a full queue", s)
	}
	if s := b.Stats(); s.Received != 3 || s.QueueFull != 2 {
		t.Errorf("receiver Stats = %+v, want 3 received and 2 dropped", s)
	}
	if s := a.Stats(); s.Sent != 5 {
		t.Errorf("sender Stats = %+v, want 5 sent", s)
	}
	// Room again once drained.
	mustSend(t, a, b.LocalAddr(), []byte{9})
	if p := mustReceive(t, b); p.Data[0] != 9 {
		t.Errorf("got %v", p.Data)
	}
}

// The queue keeps FIFO order across the compaction and shrink paths.
func TestQueueOrder(t *testing.T) {
	n := memory.NewNetwork(&memory.Config{QueueLen: 10000})
	a, b := listen(t, n, netip.AddrPort{}), listen(t, n, netip.AddrPort{})
	next, want := 0, 0
	for round := range 50 {
		for range round % 7 * 13 {
			mustSend(t, a, b.LocalAddr(), []byte{byte(next)})
			next++
		}
		for range round % 5 * 11 {
			if want == next {
				break
			}
			if p := mustReceive(t, b); p.Data[0] != byte(want) {
				t.Fatalf("got packet %d, want %d", p.Data[0], byte(want))
			}
			want++
		}
	}
	for _, p := range drain(b) {
		if p.Data[0] != byte(want) {
			t.Fatalf("got packet %d, want %d", p.Data[0], byte(want))
		}
		want++
	}
	if want != next {
		t.Fatalf("received %d packets, sent %d", want, next)
	}
}

// TestDelaySynctest checks, in fake time, that a 100 ms link delivers at exactly +100 ms
// and that the default link applies elsewhere.
func TestDelaySynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork(&memory.Config{Link: memory.LinkConfig{Delay: 10 * time.Millisecond}})
		a, b, c := listen(t, n, netip.AddrPort{}), listen(t, n, netip.AddrPort{}), listen(t, n, netip.AddrPort{})
		if err := n.SetLink(a.LocalAddr().Addr(), b.LocalAddr().Addr(), memory.LinkConfig{Delay: 100 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		mustSend(t, a, b.LocalAddr(), []byte("slow"))
		mustSend(t, b, c.LocalAddr(), []byte("fast")) // default link: 10 ms
		synctest.Wait()
		if s := n.Stats(); s.InFlight() != 2 {
			t.Fatalf("in flight = %d, want 2 (Stats %+v)", s.InFlight(), s)
		}
		p := mustReceive(t, b)
		if got := time.Since(start); got != 100*time.Millisecond || string(p.Data) != "slow" || p.From != a.LocalAddr() {
			t.Errorf("got %q from %v after %v, want \"slow\" from %v after exactly 100ms", p.Data, p.From, got, a.LocalAddr())
		}
		// c's packet arrived at +10 ms and waited in the queue since.
		if p := mustReceive(t, c); string(p.Data) != "fast" {
			t.Errorf("got %q", p.Data)
		}
		// Both directions of the override apply.
		start = time.Now()
		mustSend(t, b, a.LocalAddr(), []byte("back"))
		mustReceive(t, a)
		if got := time.Since(start); got != 100*time.Millisecond {
			t.Errorf("reverse direction took %v, want 100ms", got)
		}
		// ResetLink restores the default.
		n.ResetLink(b.LocalAddr().Addr(), a.LocalAddr().Addr())
		start = time.Now()
		mustSend(t, a, b.LocalAddr(), []byte("again"))
		mustReceive(t, b)
		if got := time.Since(start); got != 10*time.Millisecond {
			t.Errorf("after ResetLink took %v, want 10ms", got)
		}
	})
}

// TestJitterSynctest checks that with jitter every packet arrives, within
// [Delay, Delay+Jitter), and that jitter reorders packets.
func TestJitterSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay, jitter = 20 * time.Millisecond, 50 * time.Millisecond
		n := memory.NewNetwork(&memory.Config{Link: memory.LinkConfig{Delay: delay, Jitter: jitter}, Seed: 1})
		a, b := listen(t, n, netip.AddrPort{}), listen(t, n, netip.AddrPort{})
		start := time.Now()
		const count = 200
		for i := range count {
			mustSend(t, a, b.LocalAddr(), []byte{byte(i)})
		}
		var order []byte
		for range count {
			p := mustReceive(t, b)
			if d := time.Since(start); d < delay || d >= delay+jitter {
				t.Errorf("packet %d arrived after %v, want within [%v, %v)", p.Data[0], d, delay, delay+jitter)
			}
			order = append(order, p.Data[0])
		}
		if slices.IsSorted(order) {
			t.Error("200 packets with 50ms jitter arrived in order")
		}
		slices.Sort(order)
		if len(slices.Compact(order)) != count {
			t.Error("some packet arrived twice")
		}
		if s := n.Stats(); s.Delivered != count || s.InFlight() != 0 {
			t.Errorf("Stats = %+v", s)
		}
	})
}

// TestTickSynctest checks that Config.Tick rounds every delayed arrival up to the next
// multiple of the tick, never earlier than the link's delay, and leaves undelayed
// packets alone.
func TestTickSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const delay, jitter, tick = 20 * time.Millisecond, 10 * time.Millisecond, 4 * time.Millisecond
		n := memory.NewNetwork(&memory.Config{Link: memory.LinkConfig{Delay: delay, Jitter: jitter}, Tick: tick, Seed: 1})
		a, b, c := listen(t, n, netip.AddrPort{}), listen(t, n, netip.AddrPort{}), listen(t, n, netip.AddrPort{})
		if err := n.SetLink(a.LocalAddr().Addr(), c.LocalAddr().Addr(), memory.LinkConfig{}); err != nil { // no delay
			t.Fatal(err)
		}
		time.Sleep(1500 * time.Microsecond) // off the tick
		start := time.Now()
		mustSend(t, a, c.LocalAddr(), []byte("now"))
		if p := mustReceive(t, c); string(p.Data) != "now" || time.Since(start) != 0 {
			t.Errorf("undelayed packet %q arrived after %v, want at once", p.Data, time.Since(start))
		}
		const count = 100
		for i := range count {
			mustSend(t, a, b.LocalAddr(), []byte{byte(i)})
		}
		instants := map[time.Duration]int{}
		for range count {
			p := mustReceive(t, b)
			at := time.Since(start)
			if at < delay || at >= delay+jitter+tick || time.Now().UnixNano()%int64(tick) != 0 {
				t.Errorf("packet %d arrived at +%v (%v), want a multiple of %v within [%v, %v)",
					p.Data[0], at, time.Now(), tick, delay, delay+jitter+tick)
			}
			instants[at]++
		}
		// Sent 1.5 ms past the clock's start, packets due within [21.5 ms, 31.5 ms) of it
		// arrive at 24, 28 or 32 ms: three instants for a hundred packets.
		if len(instants) > 3 {
			t.Errorf("packets arrived at %d instants (%v), want at most 3", len(instants), instants)
		}
		// Packets due at one instant arrive in the order they were sent.
		if err := n.SetLink(a.LocalAddr().Addr(), b.LocalAddr().Addr(), memory.LinkConfig{Delay: delay}); err != nil {
			t.Fatal(err)
		}
		for i := range count {
			mustSend(t, a, b.LocalAddr(), []byte{byte(i)})
		}
		synctest.Wait()
		start = time.Now()
		for i := range count {
			if p := mustReceive(t, b); p.Data[0] != byte(i) {
				t.Fatalf("packet %d arrived as the %dth of its instant", p.Data[0], i)
			}
		}
		if since := time.Since(start); since != delay {
			t.Errorf("packets sent at one instant arrived over %v, want together, %v later", since, delay)
		}
		if s := n.Stats(); s.Delivered != 2*count+1 || s.InFlight() != 0 {
			t.Errorf("Stats = %+v", s)
		}
	})
}

// lossRun sends count packets over a lossy link and returns which arrived.
func lossRun(t *testing.T, seed uint64, loss float64, count int) []byte {
	n := memory.NewNetwork(&memory.Config{QueueLen: count, Seed: seed})
	a, b := listen(t, n, netip.AddrPort{}), listen(t, n, netip.AddrPort{})
	if err := n.SetLink(a.LocalAddr().Addr(), b.LocalAddr().Addr(), memory.LinkConfig{Loss: loss}); err != nil {
		t.Fatal(err)
	}
	for i := range count {
		mustSend(t, a, b.LocalAddr(), []byte{byte(i)})
	}
	var got []byte
	for _, p := range drain(b) {
		got = append(got, p.Data[0])
	}
	if s := n.Stats(); s.Lost+s.Delivered != uint64(count) || int(s.Delivered) != len(got) {
		t.Errorf("Stats = %+v, received %d", s, len(got))
	}
	return got
}

func TestLossIsSeeded(t *testing.T) {
	const count = 1000
	r1, r2, r3 := lossRun(t, 7, 0.3, count), lossRun(t, 7, 0.3, count), lossRun(t, 8, 0.3, count)
	if !bytes.Equal(r1, r2) {
		t.Error("two runs with the same seed lost different packets")
	}
	if bytes.Equal(r1, r3) {
		t.Error("runs with different seeds lost the same packets")
	}
	if got := len(r1); got < 600 || got > 800 {
		t.Errorf("%d of %d packets arrived with 30%% loss", got, count)
	}
	if got := len(lossRun(t, 1, 1, 100)); got != 0 {
		t.Errorf("%d packets arrived with 100%% loss", got)
	}
}

func TestPartitionAndHeal(t *testing.T) {
	n := memory.NewNetwork(nil)
	var nodes []*memory.Transport
	var left, right []netip.Addr
	for i := range 6 {
		tr := listen(t, n, netip.AddrPort{})
		nodes = append(nodes, tr)
		if i < 3 {
			left = append(left, tr.LocalAddr().Addr())
		} else {
			right = append(right, tr.LocalAddr().Addr())
		}
	}
	// sendAll sends from every node to every other and returns how many arrived.
	sendAll := func() (within, across int) {
		for i, from := range nodes {
			for j, to := range nodes {
				if i != j {
					mustSend(t, from, to.LocalAddr(), []byte{byte(i), byte(j)})
				}
			}
		}
		for _, to := range nodes {
			for _, p := range drain(to) {
				if (p.Data[0] < 3) == (p.Data[1] < 3) {
					within++
				} else {
					across++
				}
			}
		}
		return within, across
	}
	if err := n.Partition(left, right); err != nil {
		t.Fatal(err)
	}
	if w, a := sendAll(); w != 12 || a != 0 {
		t.Errorf("partitioned: %d packets within halves, %d across; want 12 and 0", w, a)
	}
	if s := n.Stats(); s.Partitioned != 18 {
		t.Errorf("Partitioned = %d, want 18", s.Partitioned)
	}
	// Hosts named in no group form a group: Partition(left) is the same split.
	if err := n.Partition(left); err != nil {
		t.Fatal(err)
	}
	if w, a := sendAll(); w != 12 || a != 0 {
		t.Errorf("Partition(left): %d within, %d across; want 12 and 0", w, a)
	}
	n.Heal()
	if w, a := sendAll(); w != 12 || a != 18 {
		t.Errorf("healed: %d within, %d across; want 12 and 18", w, a)
	}
	if err := n.Partition(left, left[:1]); err == nil {
		t.Error("Partition with a host in two groups = nil, want an error")
	}
}

// A partition made while packets are in flight drops them.
func TestPartitionDropsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := memory.NewNetwork(&memory.Config{Link: memory.LinkConfig{Delay: time.Second}})
		a, b := listen(t, n, netip.AddrPort{}), listen(t, n, netip.AddrPort{})
		mustSend(t, a, b.LocalAddr(), []byte("lost"))
		if err := n.Partition([]netip.Addr{a.LocalAddr().Addr()}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // fake time: lets the delivery timer fire
		if got := drain(b); len(got) != 0 {
			t.Errorf("received %d packets across a partition", len(got))
		}
		if s := n.Stats(); s.Partitioned != 1 || s.InFlight() != 0 {
			t.Errorf("Stats = %+v, want 1 partitioned", s)
		}
	})
}

func TestLinked(t *testing.T) {
	n := memory.NewNetwork(&memory.Config{Linked: true})
	a, b, c := listen(t, n, netip.AddrPort{}), listen(t, n, netip.AddrPort{}), listen(t, n, netip.AddrPort{})
	unreachable := func(from, to *memory.Transport) {
		t.Helper()
		if err := from.Send(to.LocalAddr(), []byte("x")); !errors.Is(err, transport.ErrUnreachable) {
			t.Errorf("Send %v -> %v = %v, want ErrUnreachable", from.LocalAddr(), to.LocalAddr(), err)
		}
	}
	reachable := func(from, to *memory.Transport) {
		t.Helper()
		mustSend(t, from, to.LocalAddr(), []byte("y"))
		if p := mustReceive(t, to); p.From != from.LocalAddr() {
			t.Errorf("From = %v, want %v", p.From, from.LocalAddr())
		}
	}
	unreachable(a, b)
	if err := n.Link(a.LocalAddr(), b.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	reachable(a, b)
	reachable(b, a)
	unreachable(a, c)
	unreachable(c, a)

	// Partitioned links are unreachable at once in linked mode.
	if err := n.Partition([]netip.Addr{a.LocalAddr().Addr()}); err != nil {
		t.Fatal(err)
	}
	unreachable(a, b)
	n.Heal()
	reachable(a, b)

	n.Unlink(b.LocalAddr(), a.LocalAddr())
	unreachable(a, b)
	unreachable(b, a)

	// Closing a transport removes its links; a new transport at its address has none.
	if err := n.Link(a.LocalAddr(), c.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	reachable(c, a)
	c.Close()
	if err := a.Send(c.LocalAddr(), []byte("z")); !errors.Is(err, transport.ErrUnreachable) {
		t.Errorf("Send to a closed peer = %v, want ErrUnreachable", err)
	}
	c2 := listen(t, n, c.LocalAddr())
	unreachable(a, c2)
	unreachable(c2, a)

	if err := n.Link(a.LocalAddr(), ap("10.99.0.1:1")); err == nil {
		t.Error("Link to an address nobody listens on = nil, want an error")
	}
	if err := n.Link(a.LocalAddr(), a.LocalAddr()); err == nil {
		t.Error("Link to itself = nil, want an error")
	}
	if err := memory.NewNetwork(nil).Link(a.LocalAddr(), b.LocalAddr()); err == nil {
		t.Error("Link outside linked mode = nil, want an error")
	}
	if s := n.Stats(); s.Unreachable != 9 {
		t.Errorf("Unreachable = %d, want 9", s.Unreachable)
	}
}

// The filter can drop, capture, modify, redirect and spoof; Inject sends from anywhere.
func TestFilter(t *testing.T) {
	n := memory.NewNetwork(nil)
	a, b, c := listen(t, n, netip.AddrPort{}), listen(t, n, netip.AddrPort{}), listen(t, n, netip.AddrPort{})
	var (
		mu      sync.Mutex
		capture []memory.Datagram
	)
	spoofed := ap("203.0.113.66:6881")
	n.SetFilter(func(d *memory.Datagram) bool {
		mu.Lock()
		capture = append(capture, memory.Datagram{From: d.From, To: d.To, Data: bytes.Clone(d.Data)})
		mu.Unlock()
		switch string(d.Data) {
		case "drop":
			return false
		case "modify":
			d.Data[0] = 'M'
			d.Data = append(d.Data, "!!"...)
		case "redirect":
			d.To = c.LocalAddr()
		case "spoof":
			d.From = spoofed
		}
		return true
	})
	for _, m := range []string{"drop", "modify", "redirect", "spoof", "plain"} {
		mustSend(t, a, b.LocalAddr(), []byte(m))
	}
	var got []string
	for _, p := range drain(b) {
		got = append(got, fmt.Sprintf("%s from %v", p.Data, p.From))
	}
	want := []string{
		fmt.Sprintf("Modify!! from %v", a.LocalAddr()),
		fmt.Sprintf("spoof from %v", spoofed),
		fmt.Sprintf("plain from %v", a.LocalAddr()),
	}
	if !slices.Equal(got, want) {
		t.Errorf("b received %q, want %q", got, want)
	}
	if p := drain(c); len(p) != 1 || string(p[0].Data) != "redirect" {
		t.Errorf("c received %v, want the redirected packet", p)
	}
	if len(capture) != 5 || capture[1].To != b.LocalAddr() || string(capture[1].Data) != "modify" {
		t.Errorf("captured %v", capture)
	}

	n.SetFilter(nil)
	if err := n.Inject(spoofed, b.LocalAddr(), []byte("injected")); err != nil {
		t.Fatal(err)
	}
	if p := mustReceive(t, b); p.From != spoofed || string(p.Data) != "injected" {
		t.Errorf("got %q from %v", p.Data, p.From)
	}
	if s := n.Stats(); s.Sent != 6 || s.Filtered != 1 || s.Delivered != 5 {
		t.Errorf("Stats = %+v, want 6 sent, 1 filtered, 5 delivered", s)
	}
}

// Receive wakes every blocked receiver when packets arrive for several of them.
func TestManyReceivers(t *testing.T) {
	n := memory.NewNetwork(nil)
	a, b := listen(t, n, netip.AddrPort{}), listen(t, n, netip.AddrPort{})
	const receivers = 8
	var wg sync.WaitGroup
	got := make(chan byte, receivers)
	for range receivers {
		wg.Go(func() {
			p := mustReceive(t, b)
			got <- p.Data[0]
		})
	}
	for i := range receivers {
		mustSend(t, a, b.LocalAddr(), []byte{byte(i)})
	}
	wg.Wait()
	close(got)
	var all []byte
	for c := range got {
		all = append(all, c)
	}
	slices.Sort(all)
	if len(slices.Compact(all)) != receivers {
		t.Errorf("received %v", all)
	}
}
