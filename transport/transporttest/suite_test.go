package transporttest

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wdht/wdht/transport"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fake is a minimal in-process transport.Transport with switchable bugs, to check that
// the suite passes a correct transport and catches broken ones.
type fake struct {
	addr netip.AddrPort
	peer *fake
	bug  string

	in        chan transport.Packet
	done      chan struct{}
	closed    atomic.Bool
	closeOnce sync.Once

	mu     sync.Mutex
	shared []byte // bug "shared": received data is carved out of this
}

func newFakePair(bug string) (a, b *fake) {
	a = &fake{addr: netip.MustParseAddrPort("192.0.2.1:1"), bug: bug, in: make(chan transport.Packet, 1024), done: make(chan struct{})}
	b = &fake{addr: netip.MustParseAddrPort("192.0.2.2:2"), bug: bug, in: make(chan transport.Packet, 1024), done: make(chan struct{})}
	a.peer, b.peer = b, a
	return a, b
}

func (f *fake) LocalAddr() netip.AddrPort { return f.addr }

func (f *fake) Send(to netip.AddrPort, b []byte) error {
	if f.closed.Load() {
		if f.bug == "closed-err" {
			return errors.New("closed")
		}
		return net.ErrClosed
	}
	if len(b) > transport.MaxMessageSize && f.bug != "no-size-check" {
		return transport.ErrMessageTooLarge
	}
	if (!to.IsValid() || to.Port() == 0) && f.bug != "unreachable-nil" {
		return transport.ErrUnreachable
	}
	if to != f.peer.addr {
		return nil
	}
	data := b
	if f.bug != "alias" {
		data = slices.Clone(b)
	}
	from := f.addr
	if f.bug == "mapped" {
		from = netip.AddrPortFrom(netip.AddrFrom16(from.Addr().As16()), from.Port())
	}
	copies := 1
	if f.bug == "dup" {
		copies = 2
	}
	for range copies {
		select {
		case f.peer.in <- transport.Packet{From: from, Data: data}:
		default:
		}
	}
	return nil
}

func (f *fake) Receive(ctx context.Context) (transport.Packet, error) {
	if f.closed.Load() {
		return transport.Packet{}, net.ErrClosed
	}
	if f.bug == "ignore-ctx" {
		ctx = context.Background()
	}
	select {
	case p := <-f.in:
		if f.bug == "shared" {
			f.mu.Lock()
			if cap(f.shared)-len(f.shared) < len(p.Data) {
				f.shared = make([]byte, 0, 1<<20)
			}
			n := len(f.shared)
			f.shared = append(f.shared, p.Data...)
			p.Data = f.shared[n:len(f.shared)]
			f.mu.Unlock()
		}
		return p, nil
	case <-f.done:
		return transport.Packet{}, net.ErrClosed
	case <-ctx.Done():
		return transport.Packet{}, ctx.Err()
	}
}

func (f *fake) Close() error {
	first := false
	f.closeOnce.Do(func() {
		first = true
		f.closed.Store(true)
		close(f.done)
		if f.bug == "leak" {
			go func() { select {} }()
		}
	})
	if !first && f.bug == "close-err" {
		return errors.New("already closed")
	}
	return nil
}

func fakePair(bug string) func(t *testing.T) (a, b transport.Transport) {
	return func(t *testing.T) (a, b transport.Transport) {
		fa, fb := newFakePair(bug)
		return fa, fb
	}
}

func TestFake(t *testing.T) {
	Run(t, fakePair(""), Options{})
}

// bugs maps each bug of fake to a subtest that must catch it.
var bugs = map[string]string{
	"alias":           "DataOwnership",
	"shared":          "DataOwnership",
	"no-size-check":   "Oversize",
	"unreachable-nil": "SendInvalidAddress",
	"mapped":          "Delivery",
	"dup":             "Delivery",
	"close-err":       "CloseIdempotent",
	"closed-err":      "UseAfterClose",
	"ignore-ctx":      "ReceiveContextCanceled",
	"leak":            "Delivery",
}

// TestMutants is run by TestSuiteCatchesBugs in child processes: it runs the suite (or
// the subtest chosen with -test.run) on a fake with the bug named in the environment.
func TestMutants(t *testing.T) {
	bug := os.Getenv("TRANSPORTTEST_BUG")
	if bug == "" {
		t.Skip("run by TestSuiteCatchesBugs")
	}
	quick, guard = 200*time.Millisecond, time.Second
	Run(t, fakePair(bug), Options{})
}

func TestSuiteCatchesBugs(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite on broken transports in child processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	for bug, subtest := range bugs {
		t.Run(bug, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), exe, "-test.run=^TestMutants$/^"+subtest+"$", "-test.count=1")
			cmd.Env = append(os.Environ(), "TRANSPORTTEST_BUG="+bug)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), "--- FAIL: TestMutants/"+subtest+" ") {
				t.Errorf("subtest %s did not catch bug %q (%v):\n%s", subtest, bug, err, out)
			}
		})
	}
}
