package webrtc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/coder/websocket"
)

// Dial bootstraps a connection through the signalling server at addr ("host:port", an IP
// literal or a name), trying the methods in Config.DialOrder (WebSocket, then HTTP POST,
// by default) with TLS as Config.DialTLS says. Once the data channel is open and the
// server's first message arrived (or Config.ReadyDelay passed), it makes addr, and every
// address its host resolves to, an alias of the new connection, so that messages sent to
// addr go over it (see Resolve), and returns the peer's address. ctx bounds the whole
// attempt.
func (t *Transport) Dial(ctx context.Context, addr string) (netip.AddrPort, error) {
	if t.isClosed() {
		return netip.AddrPort{}, errClosed
	}
	host, port, err := splitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("webrtc: dial %q: %w", addr, err)
	}
	var aliases []netip.AddrPort
	if ip, err := netip.ParseAddr(host); err == nil {
		aliases = append(aliases, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
	} else {
		ips, err := lookupHost(ctx, host)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("webrtc: dial %s: %w", addr, err)
		}
		for _, ip := range ips {
			aliases = append(aliases, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
		}
	}
	var errs []error
	for _, method := range t.cfg.DialOrder {
		for _, secure := range t.schemes(host) {
			peer, err := t.dialOnce(ctx, method, secure, host, port)
			if err == nil {
				t.alias(peer, aliases)
				if t.log.IsDebug() {
					t.log.Debug("bootstrapped through a signalling server", "server", addr, "method", method, "tls", secure, "peer", peer)
				}
				return peer, nil
			}
			errs = append(errs, fmt.Errorf("%v (tls %v): %w", method, secure, err))
			if ctx.Err() != nil || t.isClosed() {
				return netip.AddrPort{}, fmt.Errorf("webrtc: dial %s: %w", addr, errors.Join(errs...))
			}
		}
	}
	return netip.AddrPort{}, fmt.Errorf("webrtc: dial %s: %w", addr, errors.Join(errs...))
}

// schemes returns whether to try TLS, in order, for a server at host.
func (t *Transport) schemes(host string) []bool {
	switch t.cfg.DialTLS {
	case TLSAlways:
		return []bool{true}
	case TLSNever:
		return []bool{false}
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return []bool{false}
	}
	return []bool{true, false}
}

// alias makes the signalling addresses stand for the connection to peer, if it is open.
func (t *Transport) alias(peer netip.AddrPort, aliases []netip.AddrPort) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conns[peer] == nil {
		return
	}
	for _, a := range aliases {
		if a != peer {
			t.aliases[a] = peer
		}
	}
}

// httpClient returns the client Dial uses: no keep-alive (one request per bootstrap, and
// no idle connection left behind), HTTP/1.1 (WebSocket upgrades), Config.TLSConfig.
func (t *Transport) httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:             http.ProxyFromEnvironment,
		TLSClientConfig:   t.cfg.TLSConfig,
		DisableKeepAlives: true,
	}}
}

func (t *Transport) dialOnce(ctx context.Context, method Signalling, secure bool, host string, port int) (netip.AddrPort, error) {
	hp := net.JoinHostPort(host, strconv.Itoa(port))
	if method == WebSocket {
		scheme := "ws://"
		if secure {
			scheme = "wss://"
		}
		return t.dialWebSocket(ctx, scheme+hp+"/")
	}
	scheme := "http://"
	if secure {
		scheme = "https://"
	}
	return t.dialHTTP(ctx, scheme+hp+"/")
}

// dialWebSocket is the client side of WebSocket signalling: the server offers, we answer.
func (t *Transport) dialWebSocket(ctx context.Context, url string) (netip.AddrPort, error) {
	ws, _, err := websocket.Dial(ctx, url, t.webSocketOptions())
	if err != nil {
		return netip.AddrPort{}, err
	}
	defer ws.CloseNow()
	stop := context.AfterFunc(ctx, func() { ws.CloseNow() })
	defer stop()
	ws.SetReadLimit(DefaultMaxBodySize)
	_, msg, err := ws.Read(ctx)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("reading the offer: %w", err)
	}
	offer, err := decodeBencodeSignal(msg, "offer")
	if err != nil {
		return netip.AddrPort{}, err
	}
	p, err := t.newPending(ctx, poolOwn, false, offer.SDP, netip.Addr{}, announceWS, "", 0)
	if err != nil {
		return netip.AddrPort{}, err
	}
	answer := signal{Type: "answer", SDP: p.sdp, Extensions: t.cfg.Extensions}
	if err := ws.Write(ctx, websocket.MessageBinary, answer.bencode()); err != nil {
		p.close(err)
		return netip.AddrPort{}, fmt.Errorf("sending the answer: %w", err)
	}
	ws.CloseRead(context.Background()) // answer control frames until we close
	c, err := p.waitOpen(ctx)
	if err != nil {
		p.close(err)
		return netip.AddrPort{}, err
	}
	// Both sides close the WebSocket once the channel is open. CloseNow rather than the
	// closing handshake, which waits up to 10 s for a peer that does not answer it.
	ws.CloseNow()
	return c.addr, c.waitFirst(ctx)
}

// dialHTTP is the client side of HTTP signalling: we POST an offer, the server answers.
func (t *Transport) dialHTTP(ctx context.Context, url string) (netip.AddrPort, error) {
	p, err := t.newPending(ctx, poolOwn, true, "", netip.Addr{}, announceHTTP, "", 0)
	if err != nil {
		return netip.AddrPort{}, err
	}
	offer := signal{Type: "offer", SDP: p.sdp, Extensions: t.cfg.Extensions}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(offer.json()))
	if err != nil {
		p.close(err)
		return netip.AddrPort{}, err
	}
	// What the JS's fetch sends: a CORS "simple" request.
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := t.httpClient().Do(req)
	if err != nil {
		p.close(err)
		return netip.AddrPort{}, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, DefaultMaxBodySize+1))
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("server answered %s", resp.Status)
	}
	if err == nil && len(body) > DefaultMaxBodySize {
		err = fmt.Errorf("%w: answer over %d bytes", errSignal, DefaultMaxBodySize)
	}
	var answer *signal
	if err == nil {
		answer, err = decodeJSONSignal(body, "answer")
	}
	if err != nil {
		p.close(err)
		return netip.AddrPort{}, err
	}
	p.applied.Store(true)
	if err := p.applyAnswer(ctx, answer.SDP); err != nil {
		return netip.AddrPort{}, err
	}
	c, err := p.waitOpen(ctx)
	if err != nil {
		p.close(err)
		return netip.AddrPort{}, err
	}
	return c.addr, c.waitFirst(ctx)
}
