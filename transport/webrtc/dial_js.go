//go:build js

package webrtc

import (
	"context"
	"net/netip"

	"github.com/coder/websocket"
)

// webSocketOptions are the options of Dial's WebSocket: the browser's WebSocket has
// none of the native client's (no HTTP client of ours, no compression setting).
func (t *Transport) webSocketOptions() *websocket.DialOptions {
	return &websocket.DialOptions{}
}

// lookupHost returns no address: a page cannot resolve names (the browser's WebSocket
// and fetch do it). Dial by name still connects; only the name's addresses do not
// become aliases of the connection, so a page uses the address Dial returns.
func lookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	return nil, nil
}
