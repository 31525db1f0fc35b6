//go:build !js

package webrtc

// The native connection stack: one data channel over pion's ICE agent, DTLS and SCTP,
// without pion/webrtc's PeerConnection.
//
// A PeerConnection carries what a data channel never uses: pion/webrtc v3 starts an SRTP
// and an SRTCP session on every connection once DTLS is up (two read loops, two
// undeclared-media processors, their buffers and AES contexts), demultiplexes the ICE
// connection through a mux (one more read loop and buffer), and keeps an SCTP accept loop,
// the descriptions in parsed and unparsed form, and its operation queue. With thousands
// of connections on a node that was about a quarter of each connection's memory
// (README, "Many WebRTC connections on one node"). Here each connection is an ICE agent,
// a DTLS connection straight on the ICE connection, an SCTP association on it, and one
// data channel (DCEP, RFC 8832), with the session descriptions written and read below
// (RFC 8841: UDP/DTLS/SCTP webrtc-datachannel, as browsers and the JS's node-webrtc
// send them). On the wire nothing changes: the same ICE, the same DTLS handshake (SRTP
// protection profiles still offered and negotiated, as a browser expects), the same
// SCTP and DCEP.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // fingerprints may name SHA-1 (RFC 8122)
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/datachannel"
	"github.com/pion/dtls/v2"
	"github.com/pion/ice/v2"
	"github.com/pion/logging"
	"github.com/pion/sctp"
	"github.com/pion/sdp/v3"
	"github.com/pion/stun"

	"github.com/wdht/wdht/transport"
)

// dtlsCertificate is the certificate of every connection's DTLS, with its fingerprint.
type dtlsCertificate struct {
	tls         tls.Certificate
	fingerprint string // "sha-256 AB:CD:..."
	expires     time.Time
}

// Expires returns when the certificate expires.
func (c dtlsCertificate) Expires() time.Time { return c.expires }

// certificateLifetime is how long a certificate is valid: a month, as pion makes them.
const certificateLifetime = 30 * 24 * time.Hour

// certificate returns the transport's DTLS certificate: one for every connection,
// replaced only when it is about to expire.
func (t *Transport) certificate() (dtlsCertificate, error) {
	t.certMu.Lock()
	defer t.certMu.Unlock()
	if t.cert == nil || time.Until(t.cert.Expires()) < 24*time.Hour {
		c, err := newCertificate()
		if err != nil {
			return dtlsCertificate{}, err
		}
		t.cert = &c
	}
	return *t.cert, nil
}

// newCertificate makes a self-signed ECDSA P-256 certificate, as browsers and pion do.
func newCertificate() (dtlsCertificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return dtlsCertificate{}, fmt.Errorf("webrtc: generating the DTLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	if err != nil {
		return dtlsCertificate{}, fmt.Errorf("webrtc: generating the DTLS certificate: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "WebRTC"},
		NotBefore:    now.Add(-24 * time.Hour),
		NotAfter:     now.Add(certificateLifetime),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return dtlsCertificate{}, fmt.Errorf("webrtc: generating the DTLS certificate: %w", err)
	}
	return dtlsCertificate{
		tls:         tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		fingerprint: "sha-256 " + fingerprintHex(sha256.New(), der),
		expires:     tmpl.NotAfter,
	}, nil
}

// fingerprintHex returns the hash of der in the SDP's form, upper-case hex bytes joined
// by colons.
func fingerprintHex(h hash.Hash, der []byte) string {
	h.Write(der)
	sum := h.Sum(nil)
	var b strings.Builder
	for i, x := range sum {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", x)
	}
	return b.String()
}

// fingerprintHashes are the hash functions a peer's fingerprint may name (RFC 8122; the
// browsers send sha-256).
var fingerprintHashes = map[string]func() hash.Hash{
	"sha-1":   sha1.New,
	"sha-224": sha256.New224,
	"sha-256": sha256.New,
	"sha-384": sha512.New384,
	"sha-512": sha512.New,
}

// stack is what every connection of a transport shares: the parsed ICE servers.
type stack struct {
	urls []*stun.URI
}

// initStack parses the ICE servers.
func (t *Transport) initStack() error {
	for _, s := range t.cfg.ICEServers {
		for _, u := range s.URLs {
			uri, err := stun.ParseURI(u)
			if err != nil {
				return fmt.Errorf("webrtc: ICE server %q: %w", redact(u, s), err)
			}
			if uri.Scheme == stun.SchemeTypeTURN || uri.Scheme == stun.SchemeTypeTURNS {
				uri.Username, uri.Password = s.Username, s.Credential
			}
			t.stk.urls = append(t.stk.urls, uri)
		}
	}
	return nil
}

// agentConfig returns the configuration of a connection's ICE agent.
func (t *Transport) agentConfig(n *nominator) (*ice.AgentConfig, error) {
	dur := func(d time.Duration) *time.Duration { return &d }
	cfg := &ice.AgentConfig{
		Urls:                   t.stk.urls,
		NetworkTypes:           []ice.NetworkType{ice.NetworkTypeUDP4},
		DisconnectedTimeout:    dur(5 * time.Second),
		FailedTimeout:          dur(15 * time.Second),
		KeepaliveInterval:      dur(2 * time.Second),
		HostAcceptanceMinWait:  dur(hostAcceptanceWait), // ice.go
		SrflxAcceptanceMinWait: dur(srflxAcceptanceWait),
		PrflxAcceptanceMinWait: dur(prflxAcceptanceWait),
		RelayAcceptanceMinWait: dur(relayAcceptanceWait),
		LoggerFactory:          pionLogs{t.log.Named("pion")},
		IncludeLoopback:        t.cfg.Loopback,
		InterfaceFilter:        t.cfg.InterfaceFilter,
		// Peers' mDNS candidates are resolved (or dropped) before the agent sees them
		// (prepareRemoteSDP), and ours are never names: no mDNS socket per connection.
		MulticastDNSMode: ice.MulticastDNSModeDisabled,
	}
	if t.cfg.IPv6 {
		cfg.NetworkTypes = append(cfg.NetworkTypes, ice.NetworkTypeUDP6)
	}
	if t.cfg.RelayOnly {
		cfg.CandidateTypes = []ice.CandidateType{ice.CandidateTypeRelay}
	}
	ipf := t.cfg.IPFilter
	if ipf == nil && t.cfg.Loopback && t.cfg.InterfaceFilter == nil {
		ipf = netip.Addr.IsLoopback
	}
	if ipf != nil {
		cfg.IPFilter = func(ip net.IP) bool {
			a, ok := netip.AddrFromSlice(ip)
			return ok && ipf(a.Unmap())
		}
	}
	if n != nil {
		base, err := t.nom.baseNet()
		if err != nil {
			return nil, err
		}
		cfg.Net = &watchNet{Net: base, n: n} // nominate_native.go
	}
	return cfg, nil
}

// channel is a connection's open data channel.
type channel = *datachannel.DataChannel

// peer is one connection's stack while it is set up and once it is open.
type peer struct {
	t       *Transport
	offerer bool
	cert    dtlsCertificate
	agent   *ice.Agent
	nom     *nominator // an offer's, or nil
	label   string     // an offer's data channel label
	log     logging.LoggerFactory

	ctx    context.Context // ends when the peer closes
	cancel context.CancelFunc

	onOpen func(ch channel, label string) // set before negotiate
	onEnd  func(error)                    // the stack failed (why, if known) or closed; set before negotiate

	iceState atomic.Int32 // ice.ConnectionState
	ended    atomic.Bool  // onEnd was called

	mu        sync.Mutex
	closed    bool
	remoteSDP string // the peer's description, until the channel opens (explain)
	dtls      *dtls.Conn
	assoc     *sctp.Association
	ch        channel
}

// newPeer creates an offer's or answer's stack; onOpen runs once when its data channel
// opens, onEnd when it fails or closes after it started connecting.
func (t *Transport) newPeer(offerer bool, cert dtlsCertificate, onOpen func(channel, string), onEnd func(error)) (*peer, error) {
	pe := &peer{t: t, offerer: offerer, cert: cert, onOpen: onOpen, onEnd: onEnd, log: pionLogs{t.log.Named("pion")}}
	if offerer {
		pe.nom = &nominator{t: t}
		if t.nom.created != nil {
			t.nom.created(pe.nom)
		}
		pe.label = randomLabel()
	}
	cfg, err := t.agentConfig(pe.nom)
	if err != nil {
		return nil, err
	}
	agent, err := ice.NewAgent(cfg)
	if err != nil {
		return nil, err
	}
	pe.agent = agent
	pe.ctx, pe.cancel = context.WithCancel(context.Background())
	if pe.nom != nil {
		pe.nom.setAgent(agent)
	}
	if err := agent.OnConnectionStateChange(pe.iceChanged); err != nil {
		pe.close()
		return nil, err
	}
	return pe, nil
}

// iceChanged follows the agent's state: the nominator's, and a failed or closed agent
// ends the connection.
func (pe *peer) iceChanged(s ice.ConnectionState) {
	pe.iceState.Store(int32(s))
	if pe.nom != nil {
		pe.nom.iceState(s)
	}
	switch s {
	case ice.ConnectionStateFailed:
		pe.end(errors.New("ICE failed"))
	case ice.ConnectionStateClosed:
		pe.end(nil)
	}
}

// end calls onEnd once.
func (pe *peer) end(why error) {
	if pe.ended.CompareAndSwap(false, true) && pe.onEnd != nil {
		pe.onEnd(why)
	}
}

// negotiate gathers the candidates and returns the local description: an offer, or the
// answer to remote, after which the answer starts connecting.
func (pe *peer) negotiate(ctx context.Context, remote string, ended <-chan struct{}) (string, error) {
	var rd remoteDescription
	if !pe.offerer {
		var err error
		if rd, err = parseRemoteDescription(remote); err != nil {
			return "", fmt.Errorf("webrtc: applying the offer: %w", err)
		}
	}
	cands, err := pe.gather(ctx, ended)
	if err != nil {
		return "", err
	}
	ufrag, pwd, err := pe.agent.GetLocalUserCredentials()
	if err != nil {
		return "", err
	}
	var local string
	if pe.offerer {
		local = pe.description(ufrag, pwd, "actpass", nil, cands)
	} else {
		setup := "active" // the answerer is the DTLS client, unless the offerer is (RFC 8842)
		if rd.setup == "active" {
			setup = "passive"
		}
		local = pe.description(ufrag, pwd, setup, &rd, cands)
		if err := pe.apply(remote, rd); err != nil {
			return "", fmt.Errorf("webrtc: applying the offer: %w", err)
		}
	}
	return local, nil
}

// applyAnswer applies the peer's answer to an offer and starts connecting.
func (pe *peer) applyAnswer(answer string) error {
	rd, err := parseRemoteDescription(answer)
	if err == nil {
		err = pe.apply(answer, rd)
	}
	if err != nil {
		return fmt.Errorf("webrtc: applying the answer: %w", err)
	}
	return nil
}

// apply adds the peer's candidates to the agent and starts the connecting goroutine. It
// runs once per peer: pending applies one offer (negotiate) or one answer (Connect).
func (pe *peer) apply(sdpText string, rd remoteDescription) error {
	if !pe.set(func() { pe.remoteSDP = sdpText }) {
		return errAbandoned
	}
	for _, c := range rd.candidates {
		if err := pe.agent.AddRemoteCandidate(c); err != nil {
			pe.t.log.Trace("remote candidate not added", "error", err)
		}
	}
	if !pe.t.track(func() { pe.connect(rd) }) {
		return errClosed
	}
	return nil
}

// gather gathers the local candidates, every one of them (no trickle).
func (pe *peer) gather(ctx context.Context, ended <-chan struct{}) ([]ice.Candidate, error) {
	var mu sync.Mutex
	var cands []ice.Candidate
	done := make(chan struct{})
	var once sync.Once
	if err := pe.agent.OnCandidate(func(c ice.Candidate) {
		if c == nil {
			once.Do(func() { close(done) })
			return
		}
		mu.Lock()
		cands = append(cands, c)
		mu.Unlock()
	}); err != nil {
		return nil, err
	}
	if err := pe.agent.GatherCandidates(); err != nil {
		return nil, fmt.Errorf("webrtc: gathering candidates: %w", err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-pe.ctx.Done():
		return nil, errAbandoned
	case <-ended:
		return nil, errAbandoned
	case <-pe.t.done:
		return nil, errClosed
	}
	mu.Lock()
	defer mu.Unlock()
	return cands, nil
}

// sctpPort is the SCTP port of every data channel association (RFC 8841: 5000 by
// convention, which every implementation uses).
const sctpPort = 5000

// maxMessageSizeSDP is the largest message we announce we take (a=max-message-size), as
// pion does; the transport never sends more than MaxMessageSize.
const maxMessageSizeSDP = 262144

// description writes our session description: an offer (rd nil) or the answer to rd.
func (pe *peer) description(ufrag, pwd, setup string, rd *remoteDescription, cands []ice.Candidate) string {
	var sessID [8]byte
	rand.Read(sessID[:])
	var b strings.Builder
	b.WriteString("v=0\r\n")
	fmt.Fprintf(&b, "o=- %d 2 IN IP4 127.0.0.1\r\n", binary.BigEndian.Uint64(sessID[:])>>1)
	b.WriteString("s=-\r\nt=0 0\r\n")
	mid := "0"
	if rd != nil {
		mid = rd.mid
	}
	fmt.Fprintf(&b, "a=group:BUNDLE %s\r\n", mid)
	if rd != nil {
		// Every other m-line of the offer is rejected (port 0), in its place.
		for _, m := range rd.rejected[:rd.index] {
			b.WriteString(m)
		}
	}
	b.WriteString("m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n")
	b.WriteString("c=IN IP4 0.0.0.0\r\n")
	fmt.Fprintf(&b, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\n", ufrag, pwd)
	fmt.Fprintf(&b, "a=fingerprint:%s\r\n", pe.cert.fingerprint)
	fmt.Fprintf(&b, "a=setup:%s\r\n", setup)
	fmt.Fprintf(&b, "a=mid:%s\r\n", mid)
	fmt.Fprintf(&b, "a=sctp-port:%d\r\n", sctpPort)
	fmt.Fprintf(&b, "a=max-message-size:%d\r\n", maxMessageSizeSDP)
	for _, c := range cands {
		fmt.Fprintf(&b, "a=candidate:%s\r\n", c.Marshal())
	}
	b.WriteString("a=end-of-candidates\r\n")
	if rd != nil {
		for _, m := range rd.rejected[rd.index:] {
			b.WriteString(m)
		}
	}
	return b.String()
}

// remoteDescription is what a peer's session description says about its data channel
// m-line.
type remoteDescription struct {
	ufrag, pwd  string
	fingerprint string // "sha-256 AB:CD:..."
	setup       string // actpass, active or passive
	mid         string
	candidates  []ice.Candidate
	rejected    []string // the answer's lines for the offer's other m-lines
	index       int      // how many of them come before the data channel's
}

// parseRemoteDescription reads a peer's offer or answer: the first m-line of the data
// channel (UDP/DTLS/SCTP or the older DTLS/SCTP), its ICE credentials, fingerprint and
// setup (each from the m-line or else the session), and its candidates.
func parseRemoteDescription(s string) (remoteDescription, error) {
	var rd remoteDescription
	var d sdp.SessionDescription
	if err := d.UnmarshalString(s); err != nil {
		return rd, fmt.Errorf("%w: %v", errSignal, err)
	}
	session := func(key string) string {
		v, _ := d.Attribute(key)
		return v
	}
	found := false
	for _, m := range d.MediaDescriptions {
		md := m.MediaName
		isData := md.Media == "application" && strings.Contains(strings.Join(md.Protos, "/"), "SCTP")
		mid, _ := m.Attribute("mid")
		if !isData || found {
			// Rejected in the answer, with the same media and protocol; RTP media
			// inactive, with the static payload type 0, as pion rejects them (a dynamic
			// type would need its rtpmap).
			protos, formats, dir := strings.Join(md.Protos, "/"), strings.Join(md.Formats, " "), ""
			if strings.Contains(protos, "RTP") {
				formats, dir = "0", "a=inactive\r\n"
			}
			line := fmt.Sprintf("m=%s 0 %s %s\r\nc=IN IP4 0.0.0.0\r\n%s", md.Media, protos, formats, dir)
			if mid != "" {
				line += "a=mid:" + mid + "\r\n"
			}
			rd.rejected = append(rd.rejected, line)
			continue
		}
		found = true
		rd.index = len(rd.rejected)
		rd.mid = mid
		get := func(key string) string {
			if v, ok := m.Attribute(key); ok {
				return v
			}
			return session(key)
		}
		rd.ufrag, rd.pwd = get("ice-ufrag"), get("ice-pwd")
		rd.fingerprint, rd.setup = get("fingerprint"), get("setup")
		for _, a := range m.Attributes {
			if a.Key != "candidate" {
				continue
			}
			c, err := ice.UnmarshalCandidate(a.Value)
			if err != nil {
				continue // a candidate we cannot use (another transport, a name)
			}
			rd.candidates = append(rd.candidates, c)
		}
	}
	switch {
	case !found:
		return rd, fmt.Errorf("%w: no data channel (m=application ... SCTP) in the description", errSignal)
	case rd.ufrag == "" || rd.pwd == "":
		return rd, fmt.Errorf("%w: no ICE credentials in the description", errSignal)
	case rd.fingerprint == "":
		return rd, fmt.Errorf("%w: no DTLS fingerprint in the description", errSignal)
	}
	if rd.mid == "" {
		rd.mid = "0"
	}
	return rd, nil
}

// connect runs ICE, DTLS, SCTP and the data channel's opening, on a goroutine of the
// transport's, and hands the open channel to onOpen; on failure it ends the peer.
func (pe *peer) connect(rd remoteDescription) {
	ch, label, err := pe.connectStack(rd)
	if err != nil {
		pe.end(err)
		return
	}
	// The peer's description served to explain a failure (explain): an open connection
	// does not keep it.
	pe.set(func() { pe.remoteSDP = "" })
	pe.onOpen(ch, label)
}

// connectStack brings each layer up in turn, with the peer's description rd.
func (pe *peer) connectStack(rd remoteDescription) (channel, string, error) {
	var iceConn *ice.Conn
	var err error
	if pe.offerer {
		iceConn, err = pe.agent.Dial(pe.ctx, rd.ufrag, rd.pwd)
	} else {
		iceConn, err = pe.agent.Accept(pe.ctx, rd.ufrag, rd.pwd)
	}
	if err != nil {
		return nil, "", fmt.Errorf("ICE: %w", err)
	}
	// The DTLS client is the side whose setup is active: the answerer unless the offer
	// said active (negotiate), or the offerer when the answer said passive.
	client := (!pe.offerer && rd.setup != "active") || (pe.offerer && rd.setup == "passive")
	cfg := &dtls.Config{
		Certificates: []tls.Certificate{pe.cert.tls},
		// Offered and negotiated as a browser expects, never used: no SRTP here.
		SRTPProtectionProfiles: []dtls.SRTPProtectionProfile{
			dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80,
		},
		ClientAuth:         dtls.RequireAnyClientCert,
		InsecureSkipVerify: true, // the fingerprint is checked below
		LoggerFactory:      pe.log,
	}
	var dc *dtls.Conn
	if client {
		dc, err = dtls.ClientWithContext(pe.ctx, iceConn, cfg)
	} else {
		dc, err = dtls.ServerWithContext(pe.ctx, iceConn, cfg)
	}
	if err != nil {
		iceConn.Close()
		return nil, "", fmt.Errorf("DTLS: %w", err)
	}
	if !pe.set(func() { pe.dtls = dc }) {
		dc.Close()
		return nil, "", errAbandoned
	}
	if err := checkFingerprint(dc, rd.fingerprint); err != nil {
		return nil, "", err
	}
	assoc, err := sctp.Client(sctp.Config{NetConn: dc, LoggerFactory: pe.log, MaxMessageSize: maxMessageSizeSDP})
	if err != nil {
		return nil, "", fmt.Errorf("SCTP: %w", err)
	}
	if !pe.set(func() { pe.assoc = assoc }) {
		assoc.Close()
		return nil, "", errAbandoned
	}
	var ch channel
	if pe.offerer {
		// Stream IDs: even for the DTLS client, odd for the server (RFC 8832 6).
		id := uint16(1)
		if client {
			id = 0
		}
		ch, err = datachannel.Dial(assoc, id, &datachannel.Config{
			ChannelType: datachannel.ChannelTypeReliable, Label: pe.label, LoggerFactory: pe.log,
		})
	} else {
		// The peer's first channel is the connection's; any other it opens stays
		// unaccepted (pion's association queues 16 such streams and drops more), what
		// it sends there held within the association's receive window, as a message
		// never completed on the first channel would be.
		ch, err = datachannel.Accept(assoc, &datachannel.Config{LoggerFactory: pe.log})
	}
	if err != nil {
		return nil, "", fmt.Errorf("data channel: %w", err)
	}
	if !pe.set(func() { pe.ch = ch }) {
		ch.Close()
		return nil, "", errAbandoned
	}
	return ch, ch.Config.Label, nil
}

// set runs f under pe.mu unless pe is closed.
func (pe *peer) set(f func()) bool {
	pe.mu.Lock()
	defer pe.mu.Unlock()
	if pe.closed {
		return false
	}
	f()
	return true
}

// checkFingerprint checks the peer's certificate against the fingerprint of its
// description.
func checkFingerprint(dc *dtls.Conn, fp string) error {
	certs := dc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return errors.New("DTLS: the peer sent no certificate")
	}
	return fingerprintMatches(certs[0], fp)
}

// fingerprintMatches checks a certificate (DER) against a fingerprint, "sha-256 AB:...".
func fingerprintMatches(der []byte, fp string) error {
	alg, want, ok := strings.Cut(strings.TrimSpace(fp), " ")
	newHash := fingerprintHashes[strings.ToLower(alg)]
	if !ok || newHash == nil {
		return fmt.Errorf("DTLS: unsupported fingerprint %q", fp)
	}
	if got := fingerprintHex(newHash(), der); !strings.EqualFold(got, strings.TrimSpace(want)) {
		return errors.New("DTLS: the peer's certificate does not match its fingerprint")
	}
	return nil
}

// close ends the stack: the data channel, the association, DTLS and the agent. It is
// idempotent and does not wait for the connecting goroutine, which it unblocks.
func (pe *peer) close() {
	pe.mu.Lock()
	if pe.closed {
		pe.mu.Unlock()
		return
	}
	pe.closed = true
	ch, assoc, dc := pe.ch, pe.assoc, pe.dtls
	pe.mu.Unlock()
	if pe.cancel != nil {
		pe.cancel()
	}
	if pe.nom != nil {
		pe.nom.stop()
	}
	if ch != nil {
		ch.Close()
	}
	switch {
	case assoc != nil:
		assoc.Close() // and DTLS, and ICE
	case dc != nil:
		dc.Close() // and ICE
	}
	if pe.agent != nil {
		pe.agent.Close()
	}
}

// connected reports whether ICE found a working pair.
func (pe *peer) connected() bool {
	s := ice.ConnectionState(pe.iceState.Load())
	return s == ice.ConnectionStateConnected || s == ice.ConnectionStateCompleted
}

// remoteDescriptionSDP returns the peer's description, once applied.
func (pe *peer) remoteDescriptionSDP() string {
	pe.mu.Lock()
	defer pe.mu.Unlock()
	return pe.remoteSDP
}

// remoteAddr returns the remote address of the selected candidate pair.
func (pe *peer) remoteAddr() (netip.AddrPort, error) {
	pair, err := pe.agent.GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Remote == nil {
		return netip.AddrPort{}, fmt.Errorf("webrtc: no selected candidate pair: %v", err)
	}
	ip, err := netip.ParseAddr(pair.Remote.Address())
	port := pair.Remote.Port()
	if err != nil || port <= 0 || port > 65535 {
		return netip.AddrPort{}, fmt.Errorf("webrtc: the selected remote candidate %s:%d has no IP address",
			pair.Remote.Address(), port)
	}
	return transport.Unmap(netip.AddrPortFrom(ip.WithZone(""), uint16(port))), nil
}

// pairTypes returns the candidate types of the selected pair, "local/remote".
func (pe *peer) pairTypes() string {
	pair, err := pe.agent.GetSelectedCandidatePair()
	if err != nil || pair == nil || pair.Local == nil || pair.Remote == nil {
		return ""
	}
	return pair.Local.Type().String() + "/" + pair.Remote.Type().String()
}

// rtt returns the round-trip time ICE measured on the selected pair, or 0.
func (pe *peer) rtt() time.Duration {
	st, ok := pe.agent.GetSelectedCandidatePairStats()
	if !ok || st.CurrentRoundTripTime <= 0 {
		return 0
	}
	return time.Duration(st.CurrentRoundTripTime * float64(time.Second))
}
