//go:build linux

package netlab

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echo answers every datagram with the source address it saw, until c closes.
func echo(c *net.UDPConn) {
	buf := make([]byte, 1500)
	for {
		_, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		c.WriteToUDPAddrPort([]byte(from.String()), from)
	}
}

// ask sends one datagram from c to srv and returns the answer, or "" after wait.
func ask(t *testing.T, c *net.UDPConn, srv netip.AddrPort, wait time.Duration) string {
	t.Helper()
	if _, err := c.WriteToUDPAddrPort([]byte("?"), srv); err != nil {
		t.Fatal(err)
	}
	return read(c, wait)
}

func read(c *net.UDPConn, wait time.Duration) string {
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 1500)
	n, _, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

func listen(t *testing.T, h *Host, port int) *net.UDPConn {
	t.Helper()
	c, err := h.ListenUDP(port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestNATBehaviours checks each NAT type's mapping and filtering from the outside: the
// public address and ports two servers see for one internal socket, and whether a
// packet from a third, unsolicited, gets in.
func TestNATBehaviours(t *testing.T) {
	lab := New(t)
	var srv [2]netip.AddrPort
	for i := range srv {
		h := lab.PublicHost("s" + string(rune('1'+i)))
		c := listen(t, h, 4000)
		go echo(c)
		srv[i] = netip.AddrPortFrom(h.IP, 4000)
	}
	third := listen(t, lab.PublicHost("s3"), 4000)
	for _, tc := range []struct {
		typ             NATType
		samePort        bool // endpoint-independent mapping
		unsolicitedPass bool // endpoint-independent filtering
	}{
		{EndpointIndependent, true, true},
		{PortRestricted, true, false},
		{Symmetric, false, false},
	} {
		t.Run(tc.typ.String(), func(t *testing.T) {
			nat := lab.NAT("nat-"+tc.typ.String(), NATConfig{Type: tc.typ})
			h := nat.Host("h-" + tc.typ.String())
			c := listen(t, h, 5000)
			a1 := ask(t, c, srv[0], 2*time.Second)
			a2 := ask(t, c, srv[1], 2*time.Second)
			m1, err1 := netip.ParseAddrPort(a1)
			m2, err2 := netip.ParseAddrPort(a2)
			if err1 != nil || err2 != nil {
				t.Fatalf("no answers through the NAT: %q %q", a1, a2)
			}
			if m1.Addr() != nat.PublicIP || m2.Addr() != nat.PublicIP {
				t.Errorf("servers saw %v and %v, want the NAT's address %v", m1, m2, nat.PublicIP)
			}
			if (m1.Port() == m2.Port()) != tc.samePort {
				t.Errorf("mapped ports %d and %d: want same=%v", m1.Port(), m2.Port(), tc.samePort)
			}
			// The third server, never contacted, sends to the first mapping.
			third.WriteToUDPAddrPort([]byte("unsolicited"), m1)
			got := read(c, 500*time.Millisecond)
			if (got == "unsolicited") != tc.unsolicitedPass {
				t.Errorf("unsolicited packet to %v: received %q, want passing=%v", m1, got, tc.unsolicitedPass)
			}
		})
	}
}

// TestLossAndDelay: a NAT's loss rule drops some packets and not all; its delay link
// adds at least twice the delay to a round trip.
func TestLossAndDelay(t *testing.T) {
	lab := New(t)
	s := lab.PublicHost("echo")
	sc := listen(t, s, 4000)
	go echo(sc)
	srv := netip.AddrPortFrom(s.IP, 4000)

	lossy := lab.NAT("lossy", NATConfig{Type: PortRestricted, LossPercent: 50})
	c := listen(t, lossy.Host("lh"), 0)
	for range 100 {
		if _, err := c.WriteToUDPAddrPort([]byte("?"), srv); err != nil {
			t.Fatal(err)
		}
	}
	answered := 0
	for read(c, 500*time.Millisecond) != "" {
		answered++
	}
	// Each round trip crosses the rule twice: 25 % answered on average; all 100 or none
	// have a probability below 2^-40.
	if answered == 0 || answered == 100 || lossy.Dropped() == 0 {
		t.Errorf("50%% loss: %d of 100 answered, %d dropped", answered, lossy.Dropped())
	}
	t.Logf("50%% loss each way: %d of 100 round trips answered, %d packets dropped", answered, lossy.Dropped())

	const delay = 40 * time.Millisecond
	slow := lab.NAT("slow", NATConfig{Type: PortRestricted, Delay: delay})
	c = listen(t, slow.Host("sh"), 0)
	var best time.Duration
	for range 5 {
		start := time.Now()
		if ask(t, c, srv, 2*time.Second) == "" {
			t.Fatal("no answer through the delay link")
		}
		if rtt := time.Since(start); best == 0 || rtt < best {
			best = rtt
		}
	}
	if best < 2*delay {
		t.Errorf("round trip through a %v delay link: %v, want at least %v", delay, best, 2*delay)
	}
	t.Logf("round trip through a %v delay link: best of 5 %v (under contention)", delay, best)
}

// TestTURN: coturn answers STUN on its public host, and from behind a NAT.
func TestTURN(t *testing.T) {
	lab := New(t)
	turn := lab.PublicHost("turn").StartTURN(t, "u", "p")
	h := lab.NAT("n", NATConfig{Type: Symmetric}).Host("h")
	if err := stunPing(h, netip.AddrPortFrom(turn.Host.IP, uint16(turn.Port))); err != nil {
		t.Fatalf("STUN from behind a NAT: %v", err)
	}
	if got, want := turn.TURNURL(), "turn:u:p@"+turn.Host.IP.String()+":3478?transport=udp"; got != want {
		t.Errorf("TURNURL() = %q, want %q", got, want)
	}
}

// TestTeardown: a lab leaves no namespace behind.
func TestTeardown(t *testing.T) {
	var prefix string
	t.Run("lab", func(t *testing.T) {
		lab := New(t)
		prefix = lab.prefix
		lab.NAT("n", NATConfig{Type: Symmetric, Delay: time.Millisecond}).Host("h")
		lab.PublicHost("p")
	})
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			t.Errorf("namespace %s left behind", e.Name())
		}
	}
}
