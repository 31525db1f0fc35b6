package signals

import (
	"context"
	"net/netip"

	"github.com/wdht/wdht/transport/webrtc"
)

// WebRTC returns the Signaler of a WebRTC transport. It also passes on the transport's
// notices of closed connections, so the extension forgets them at once.
func WebRTC(t *webrtc.Transport) Signaler { return webrtcSignaler{t} }

type webrtcSignaler struct{ t *webrtc.Transport }

func (w webrtcSignaler) NewOffer(ctx context.Context) (Offer, error) {
	o, err := w.t.NewOffer(ctx)
	if err != nil {
		return nil, err
	}
	return o, nil
}

func (w webrtcSignaler) NewAnswer(ctx context.Context, offer string, from netip.Addr) (Answer, error) {
	a, err := w.t.NewAnswer(ctx, offer, from)
	if err != nil {
		return nil, err
	}
	return a, nil
}

func (w webrtcSignaler) NotifyClosed(f func(peer netip.AddrPort)) { w.t.NotifyClosed(f) }
