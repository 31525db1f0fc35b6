//go:build js

package webrtc

import "time"

// rtt returns 0: in the browser, pion does not expose the selected pair's statistics
// synchronously, so the probe timers start at their minimum waits (conn.go).
func (c *conn) rtt() time.Duration { return 0 }
