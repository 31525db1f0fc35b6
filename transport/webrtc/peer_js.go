//go:build js

package webrtc

// What differs in the browser (GOOS=js): pion wraps the browser's RTCPeerConnection,
// which runs ICE, DTLS and SCTP itself, makes its own certificate and has none of the
// native stack's options. Config.Loopback, IPv6, InterfaceFilter, IPFilter and
// NoMDNS have no effect there: the browser decides which candidates it gathers (host
// candidates as mDNS names, unless its policy says otherwise), and resolves its peers'.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/datachannel"
	pwebrtc "github.com/pion/webrtc/v3"

	"github.com/wdht/wdht/transport"
)

// dtlsCertificate stands for the certificate the browser makes for each connection.
type dtlsCertificate struct{}

// Expires returns a time far away: the browser renews its certificates itself.
func (dtlsCertificate) Expires() time.Time { return time.Now().Add(365 * 24 * time.Hour) }

// certificate returns nothing to use: the browser makes the DTLS certificates.
func (t *Transport) certificate() (dtlsCertificate, error) { return dtlsCertificate{}, nil }

// stack is what every connection of a transport shares: pion's API and the ICE servers.
type stack struct {
	api    *pwebrtc.API
	iceSrv []pwebrtc.ICEServer
}

// nominators is empty in the browser, which runs ICE itself (see nominate_native.go).
type nominators struct{}

// initNominators does nothing in the browser.
func (t *Transport) initNominators() {}

// initStack makes pion's API, with detached data channels.
func (t *Transport) initStack() error {
	for _, s := range t.cfg.ICEServers {
		t.stk.iceSrv = append(t.stk.iceSrv, pwebrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	var se pwebrtc.SettingEngine
	se.DetachDataChannels()
	t.stk.api = pwebrtc.NewAPI(pwebrtc.WithSettingEngine(se))
	return nil
}

// channel is a connection's open data channel: detached, with the channel itself for
// its buffered amount.
type channel = *jsChannel

type jsChannel struct {
	datachannel.ReadWriteCloser
	dc *pwebrtc.DataChannel
}

// BufferedAmount returns the bytes queued on the channel.
func (c *jsChannel) BufferedAmount() uint64 { return c.dc.BufferedAmount() }

// peer is one connection's RTCPeerConnection.
type peer struct {
	t       *Transport
	offerer bool
	pc      *pwebrtc.PeerConnection
	onOpen  func(ch channel, label string)
	dcOnce  sync.Once // an answer accepts the first data channel only
	ended   atomic.Bool
}

// newPeer creates an offer's or answer's PeerConnection; onOpen runs once when its data
// channel opens, onEnd when it fails or closes.
func (t *Transport) newPeer(offerer bool, _ dtlsCertificate, onOpen func(channel, string), onEnd func(error)) (*peer, error) {
	policy := pwebrtc.ICETransportPolicyAll
	if t.cfg.RelayOnly {
		policy = pwebrtc.ICETransportPolicyRelay
	}
	pc, err := t.stk.api.NewPeerConnection(pwebrtc.Configuration{ICEServers: t.stk.iceSrv, ICETransportPolicy: policy})
	if err != nil {
		return nil, err
	}
	pe := &peer{t: t, offerer: offerer, pc: pc, onOpen: onOpen}
	pc.OnConnectionStateChange(func(s pwebrtc.PeerConnectionState) {
		if (s == pwebrtc.PeerConnectionStateFailed || s == pwebrtc.PeerConnectionStateClosed) && pe.ended.CompareAndSwap(false, true) {
			onEnd(nil)
		}
	})
	return pe, nil
}

// negotiate creates the local description (an offer, or the answer to remote) and waits
// for ICE gathering to complete.
func (pe *peer) negotiate(ctx context.Context, remote string, ended <-chan struct{}) (string, error) {
	pc := pe.pc
	var local pwebrtc.SessionDescription
	var err error
	if pe.offerer {
		var dc *pwebrtc.DataChannel
		if dc, err = pc.CreateDataChannel(randomLabel(), nil); err != nil {
			return "", fmt.Errorf("webrtc: creating the data channel: %w", err)
		}
		dc.OnOpen(func() { pe.open(dc) })
		if local, err = pc.CreateOffer(nil); err != nil {
			return "", fmt.Errorf("webrtc: creating the offer: %w", err)
		}
	} else {
		pc.OnDataChannel(func(dc *pwebrtc.DataChannel) {
			first := false
			pe.dcOnce.Do(func() { first = true })
			if !first {
				dc.Close() // exactly one channel per connection
				return
			}
			dc.OnOpen(func() { pe.open(dc) })
		})
		if err = pc.SetRemoteDescription(pwebrtc.SessionDescription{Type: pwebrtc.SDPTypeOffer, SDP: remote}); err != nil {
			return "", fmt.Errorf("webrtc: applying the offer: %w", err)
		}
		if local, err = pc.CreateAnswer(nil); err != nil {
			return "", fmt.Errorf("webrtc: creating the answer: %w", err)
		}
	}
	gathered := pwebrtc.GatheringCompletePromise(pc)
	if err = pc.SetLocalDescription(local); err != nil {
		return "", fmt.Errorf("webrtc: setting the local description: %w", err)
	}
	select {
	case <-gathered:
	case <-ended:
		return "", errAbandoned
	case <-ctx.Done():
		return "", ctx.Err()
	case <-pe.t.done:
		return "", errClosed
	}
	return pc.LocalDescription().SDP, nil
}

// open detaches the data channel and hands it to onOpen.
func (pe *peer) open(dc *pwebrtc.DataChannel) {
	rwc, err := dc.Detach()
	if err != nil {
		pe.t.log.Debug("detaching the data channel", "error", err)
		pe.pc.Close()
		return
	}
	pe.onOpen(&jsChannel{ReadWriteCloser: rwc, dc: dc}, dc.Label())
}

// applyAnswer applies the peer's answer to an offer.
func (pe *peer) applyAnswer(answer string) error {
	if err := pe.pc.SetRemoteDescription(pwebrtc.SessionDescription{Type: pwebrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("webrtc: applying the answer: %w", err)
	}
	return nil
}

// close closes the PeerConnection.
func (pe *peer) close() { pe.pc.Close() }

// connected reports whether ICE found a working pair.
func (pe *peer) connected() bool {
	switch pe.pc.ICEConnectionState() {
	case pwebrtc.ICEConnectionStateConnected, pwebrtc.ICEConnectionStateCompleted:
		return true
	}
	return false
}

// remoteDescriptionSDP returns the peer's description, once applied.
func (pe *peer) remoteDescriptionSDP() string {
	if d := pe.pc.RemoteDescription(); d != nil {
		return d.SDP
	}
	return ""
}

// selectedPair returns the selected candidate pair.
func (pe *peer) selectedPair() (*pwebrtc.ICECandidatePair, error) {
	sctp := pe.pc.SCTP()
	if sctp == nil || sctp.Transport() == nil || sctp.Transport().ICETransport() == nil {
		return nil, errors.New("webrtc: no transport")
	}
	pair, err := sctp.Transport().ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Remote == nil || pair.Local == nil {
		return nil, fmt.Errorf("webrtc: no selected candidate pair: %v", err)
	}
	return pair, nil
}

// remoteAddr returns the remote address of the connection's selected candidate pair.
func (pe *peer) remoteAddr() (netip.AddrPort, error) {
	pair, err := pe.selectedPair()
	if err != nil {
		return netip.AddrPort{}, err
	}
	ip, err := netip.ParseAddr(pair.Remote.Address)
	if err != nil && pair.Remote.Port != 0 {
		// A browser redacts the address of a peer-reflexive remote candidate (one it
		// learnt from the peer's connectivity checks, which reached it before the peer's
		// description did) for good. Without a NAT between them the checks came from a
		// candidate of that description, found by its port.
		var ok bool
		if ip, ok = sdpCandidateIP(pe.remoteDescriptionSDP(), pair.Remote.Port); ok {
			err = nil
		}
	}
	if err != nil || pair.Remote.Port == 0 {
		return netip.AddrPort{}, fmt.Errorf("webrtc: the selected remote candidate %s:%d has no IP address",
			pair.Remote.Address, pair.Remote.Port)
	}
	return transport.Unmap(netip.AddrPortFrom(ip.WithZone(""), pair.Remote.Port)), nil
}

// pairTypes returns the candidate types of the selected pair, "local/remote".
func (pe *peer) pairTypes() string {
	pair, err := pe.selectedPair()
	if err != nil {
		return ""
	}
	return pair.Local.Typ.String() + "/" + pair.Remote.Typ.String()
}

// rtt returns 0: in the browser, pion does not expose the selected pair's statistics
// synchronously, so the probe timers start at their minimum waits (conn.go).
func (pe *peer) rtt() time.Duration { return 0 }
