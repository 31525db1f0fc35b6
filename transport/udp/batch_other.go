//go:build !linux

package udp

import "github.com/wdht/wdht/transport"

// readBatch reads one datagram: batching needs recvmmsg, which only Linux has.
func (t *Transport) readBatch(ps []transport.Packet) (int, error) { return t.readOne(&ps[0]) }

// writeBatch sends the messages one at a time.
func (t *Transport) writeBatch(ms []transport.Message) (int, error) {
	for i, m := range ms {
		if _, err := t.conn.WriteToUDPAddrPort(m.Data, m.To); err != nil {
			return i, t.sendError(m.To, err)
		}
		t.sent.Add(1)
	}
	return len(ms), nil
}

// batchLen bounds the messages SendBatch checks ahead of sending.
const batchLen = 32

type (
	recvBufs struct{}
	sendBufs struct{}
)
