//go:build !js

package webrtc

import (
	"context"
	"net"
	"net/netip"

	"github.com/coder/websocket"
)

// webSocketOptions are the options of Dial's WebSocket: its own HTTP client (see
// httpClient), no compression.
func (t *Transport) webSocketOptions() *websocket.DialOptions {
	return &websocket.DialOptions{
		HTTPClient:      t.httpClient(),
		CompressionMode: websocket.CompressionDisabled,
	}
}

// lookupHost resolves the host name of a signalling server, whose addresses Dial makes
// aliases of the connection.
func lookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}
