//go:build js

package webrtc

// What differs in the browser (GOOS=js): pion wraps the browser's RTCPeerConnection,
// which runs ICE, DTLS and SCTP itself, makes its own certificate and has none of the
// native SettingEngine's options. Config.Loopback, IPv6, InterfaceFilter, IPFilter and
// NoMDNS have no effect there: the browser decides which candidates it gathers (host
// candidates as mDNS names, unless its policy says otherwise), and resolves its peers'.

import (
	"time"

	pwebrtc "github.com/pion/webrtc/v3"
)

// dtlsCertificate stands for the certificate the browser makes for each connection.
type dtlsCertificate struct{}

// Expires returns a time far away: the browser renews its certificates itself.
func (dtlsCertificate) Expires() time.Time { return time.Now().Add(365 * 24 * time.Hour) }

// settings returns the SettingEngine of every connection: detached data channels.
func (t *Transport) settings() pwebrtc.SettingEngine {
	var se pwebrtc.SettingEngine
	se.DetachDataChannels()
	return se
}

// certificate returns nothing to use: the browser makes the DTLS certificates.
func (t *Transport) certificate() (dtlsCertificate, error) { return dtlsCertificate{}, nil }

// peerConnectionConfig returns the configuration of a new PeerConnection.
func (t *Transport) peerConnectionConfig(dtlsCertificate) pwebrtc.Configuration {
	return pwebrtc.Configuration{ICEServers: t.iceSrv, ICETransportPolicy: t.icePolicy()}
}
