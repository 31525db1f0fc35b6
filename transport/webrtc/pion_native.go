//go:build !js

package webrtc

// What differs between the native build and the browser's (GOOS=js, see pion_js.go): here
// pion runs ICE, DTLS and SCTP itself, with the settings and the certificate below.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/pion/ice/v2"
	pwebrtc "github.com/pion/webrtc/v3"
)

// dtlsCertificate is the certificate of every connection's DTLS.
type dtlsCertificate = pwebrtc.Certificate

// peerConnectionConfig returns the configuration of a new PeerConnection.
func (t *Transport) peerConnectionConfig(cert dtlsCertificate) pwebrtc.Configuration {
	return pwebrtc.Configuration{
		ICEServers:         t.iceSrv,
		Certificates:       []pwebrtc.Certificate{cert},
		ICETransportPolicy: t.icePolicy(), // ice.go
	}
}

// settings returns the pion SettingEngine of every connection.
func (t *Transport) settings() pwebrtc.SettingEngine {
	var se pwebrtc.SettingEngine
	se.LoggerFactory = pionLogs{t.log.Named("pion")}
	se.DetachDataChannels()
	// Peers' mDNS candidates are resolved (or dropped) before pion sees them
	// (prepareRemoteSDP), and ours are never names: no mDNS socket per connection.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	types := []pwebrtc.NetworkType{pwebrtc.NetworkTypeUDP4}
	if t.cfg.IPv6 {
		types = append(types, pwebrtc.NetworkTypeUDP6)
	}
	se.SetNetworkTypes(types)
	se.SetICETimeouts(5*time.Second, 15*time.Second, 2*time.Second)
	se.SetHostAcceptanceMinWait(hostAcceptanceWait) // ice.go
	se.SetSrflxAcceptanceMinWait(srflxAcceptanceWait)
	se.SetPrflxAcceptanceMinWait(prflxAcceptanceWait)
	se.SetRelayAcceptanceMinWait(relayAcceptanceWait)
	if t.cfg.Loopback {
		se.SetIncludeLoopbackCandidate(true)
	}
	if f := t.cfg.InterfaceFilter; f != nil {
		se.SetInterfaceFilter(f)
	}
	ipf := t.cfg.IPFilter
	if ipf == nil && t.cfg.Loopback && t.cfg.InterfaceFilter == nil {
		ipf = netip.Addr.IsLoopback
	}
	if ipf != nil {
		se.SetIPFilter(func(ip net.IP) bool {
			a, ok := netip.AddrFromSlice(ip)
			return ok && ipf(a.Unmap())
		})
	}
	return se
}

// certificate returns the transport's DTLS certificate: one for every connection,
// replaced only when it is about to expire (pion refuses expired ones).
func (t *Transport) certificate() (dtlsCertificate, error) {
	t.certMu.Lock()
	defer t.certMu.Unlock()
	if t.cert == nil || time.Until(t.cert.Expires()) < 24*time.Hour {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return pwebrtc.Certificate{}, fmt.Errorf("webrtc: generating the DTLS key: %w", err)
		}
		cert, err := pwebrtc.GenerateCertificate(key)
		if err != nil {
			return pwebrtc.Certificate{}, fmt.Errorf("webrtc: generating the DTLS certificate: %w", err)
		}
		t.cert = cert
	}
	return *t.cert, nil
}
