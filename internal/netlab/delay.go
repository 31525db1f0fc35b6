//go:build linux

package netlab

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// delayLink connects hostNS (device eth0) to routerNS (device dev) with a pair of TUN
// devices whose packets this process forwards, each after d: the lab's delay, since
// this kernel has no netem qdisc and no NFQUEUE. The devices and the forwarders go with
// the test.
func (l *Lab) delayLink(hostNS, routerNS, dev string, d time.Duration) {
	l.t.Helper()
	a, err := openTUN(hostNS, "eth0")
	if err != nil {
		l.t.Fatalf("netlab: delay link: %v", err)
	}
	b, err := openTUN(routerNS, dev)
	if err != nil {
		a.Close()
		l.t.Fatalf("netlab: delay link: %v", err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { forward(a, b, d) })
	wg.Go(func() { forward(b, a, d) })
	l.t.Cleanup(func() {
		a.Close()
		b.Close()
		wg.Wait()
	})
}

// openTUN creates the TUN device name in the namespace ns; the device lives as long as
// the returned file is open.
func openTUN(ns, name string) (f *os.File, err error) {
	err = inNS(ns, func() error {
		f, err = createTUN(name)
		return err
	})
	return f, err
}

// inNS runs f on a thread in the network namespace ns: the sockets and devices it
// creates belong to ns, and stay there whichever thread uses them later. f runs on a
// goroutine of its own, locked to its thread, which goes back to its namespace after;
// should that fail, the goroutine ends locked and the runtime discards the thread.
func inNS(ns string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		err = f()
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

func createTUN(name string) (*os.File, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("/dev/net/tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("TUNSETIFF %s: %w", name, err)
	}
	return os.NewFile(uintptr(fd), "tun:"+name), nil
}

// forward copies packets from src to dst, each d after it was read, until src closes.
func forward(src, dst *os.File, d time.Duration) {
	type pkt struct {
		due time.Time
		b   []byte
	}
	q := make(chan pkt, 4096)
	var wg sync.WaitGroup
	wg.Go(func() {
		for p := range q {
			time.Sleep(time.Until(p.due))
			dst.Write(p.b) // errors: the device is down or closing; the packet is lost
		}
	})
	buf := make([]byte, 65536)
	for {
		n, err := src.Read(buf)
		if err != nil {
			break
		}
		select {
		case q <- pkt{time.Now().Add(d), append([]byte(nil), buf[:n]...)}:
		default: // a full queue drops, as a router's would
		}
	}
	close(q)
	wg.Wait()
}
