package bridge

import (
	"net/netip"
	"testing"

	"github.com/wdht/wdht/dht"
	"github.com/wdht/wdht/extensions/signals"
	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport/memory"
)

// get queries reaching the mainline node while New is still starting the web node read
// the fallback's link to the other node: New must publish that link safely (run under
// -race: it reported New's write racing with the handlers' read before the fix).
func TestNewWhileServingGetRace(t *testing.T) {
	for range 5 {
		mem := memory.NewNetwork(nil)
		web := memory.NewNetwork(&memory.Config{Linked: true})
		mt, _ := mem.Listen(netip.AddrPort{})
		wt, _ := web.Listen(netip.AddrPort{})
		ft, _ := mem.Listen(netip.AddrPort{})
		a := &krpc.Args{}
		a.ID, a.Target = dht.ID{1}, dht.ID{2}
		q, err := (&krpc.Msg{T: "aa", Y: krpc.TypeQuery, Q: krpc.MethodGet, A: a}).AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		stop, done := make(chan struct{}), make(chan struct{})
		go func() { // a querier that does not wait for the bridge to be ready
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
					ft.Send(mt.LocalAddr(), q)
				}
			}
		}()
		b, err := New(mt, wt, signals.NewFakeNetwork(web).Signaler(wt.LocalAddr()), &Config{Mainline: dht.Config{KRPC: krpc.Config{SourceRate: -1}}})
		close(stop)
		<-done
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
		mt.Close()
		wt.Close()
		ft.Close()
	}
}
