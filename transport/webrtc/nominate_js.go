//go:build js

package webrtc

import pwebrtc "github.com/pion/webrtc/v3"

// nominators is empty in the browser, which runs ICE itself (see nominate_native.go).
type nominators struct{}

// initNominators does nothing in the browser.
func (t *Transport) initNominators(pwebrtc.SettingEngine) {}

// newPeerConnection returns the PeerConnection of an offer or answer.
func (t *Transport) newPeerConnection(_ bool, cert dtlsCertificate) (*pwebrtc.PeerConnection, func(), error) {
	pc, err := t.api.NewPeerConnection(t.peerConnectionConfig(cert))
	return pc, nil, err
}
