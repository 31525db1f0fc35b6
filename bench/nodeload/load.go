//go:build unix

package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wdht/wdht/krpc"
)

// loadConfig describes one load run.
type loadConfig struct {
	target   netip.AddrPort
	queries  int
	inflight int
	method   string // ping, find_node, get_peers
	timeout  time.Duration
	maxTime  time.Duration
}

type loadResult struct {
	Sent, Answered, Errors, TimedOut int
	Elapsed                          time.Duration
	P50, P99                         time.Duration
}

func (r loadResult) rate() float64 { return float64(r.Answered) / r.Elapsed.Seconds() }

// template pre-encodes the query with a 4-byte transaction ID and returns the bytes and
// the offset of the ID, so each send only patches 4 bytes.
func template(method string) ([]byte, int, error) {
	var id krpc.ID
	copy(id[:], "wdht-load-generator!")
	args := &krpc.Args{}
	args.ID = id
	switch method {
	case krpc.MethodPing:
	case krpc.MethodFindNode:
		copy(args.Target[:], "target-0123456789abc")
	case krpc.MethodGetPeers:
		copy(args.InfoHash[:], "infohash-0123456789a")
	default:
		return nil, 0, fmt.Errorf("unknown query method %q", method)
	}
	const marker = "\xfe\xed\xfa\xce"
	m := krpc.Msg{T: marker, Y: krpc.TypeQuery, Q: method, A: args}
	b, err := m.MarshalBinary()
	if err != nil {
		return nil, 0, err
	}
	off := -1
	for i := 0; i+4 <= len(b); i++ {
		if string(b[i:i+4]) == marker {
			off = i
		}
	}
	if off < 0 {
		return nil, 0, errors.New("transaction id not found in template")
	}
	return b, off, nil
}

// runLoad sends cfg.queries queries with at most cfg.inflight outstanding, from one UDP
// socket, and measures answers. Queries unanswered after cfg.timeout count as timed out.
func runLoad(ctx context.Context, cfg loadConfig) (loadResult, error) {
	tmpl, off, err := template(cfg.method)
	if err != nil {
		return loadResult{}, err
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return loadResult{}, err
	}
	defer conn.Close()
	conn.SetReadBuffer(4 << 20)
	conn.SetWriteBuffer(4 << 20)
	to := net.UDPAddrFromAddrPort(cfg.target)

	// Slot i holds the send time and transaction ID of the query in flight in it: the
	// slot number in the low 16 bits and a generation in the high 16, so a late answer to
	// a query that timed out is ignored.
	type slot struct {
		sent atomic.Int64 // unix nanos; 0 = free
		tid  atomic.Uint32
	}
	slots := make([]slot, cfg.inflight)
	free := make(chan int, cfg.inflight)
	for i := range cfg.inflight {
		free <- i
	}
	var answered, errs, timedOut atomic.Int64
	lat := make([]time.Duration, 0, cfg.queries)
	var latMu sync.Mutex

	start := time.Now()
	deadline := start.Add(cfg.maxTime)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	done := make(chan struct{})
	go func() { // receiver
		defer close(done)
		buf := make([]byte, 65536)
		var m krpc.Msg
		got := 0
		for got < cfg.queries {
			conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, err := conn.Read(buf)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					continue
				}
				return
			}
			if m.UnmarshalBinary(buf[:n]) != nil || len(m.T) != 4 {
				errs.Add(1)
				continue
			}
			tid := binary.BigEndian.Uint32([]byte(m.T))
			s := &slots[int(tid&0xffff)%cfg.inflight]
			if s.tid.Load() != tid {
				continue // late answer to a query that already timed out
			}
			sent := s.sent.Swap(0)
			if sent == 0 {
				continue
			}
			if m.Y == krpc.TypeResponse {
				answered.Add(1)
				latMu.Lock()
				lat = append(lat, time.Since(time.Unix(0, sent)))
				latMu.Unlock()
			} else {
				errs.Add(1)
			}
			got++
			free <- int(tid&0xffff) % cfg.inflight
		}
	}()

	msg := slices.Clone(tmpl)
	gens := make([]uint32, cfg.inflight) // per-slot generation, sender-owned
	sent := 0
	ticker := time.NewTicker(cfg.timeout / 4)
	defer ticker.Stop()
send:
	for sent < cfg.queries {
		select {
		case i := <-free:
			gens[i]++
			tid := gens[i]<<16 | uint32(i)
			slots[i].tid.Store(tid)
			slots[i].sent.Store(time.Now().UnixNano())
			binary.BigEndian.PutUint32(msg[off:], tid)
			if _, err := conn.WriteToUDP(msg, to); err != nil {
				return loadResult{}, err
			}
			sent++
		case <-ticker.C:
			// Expire queries older than the timeout and free their slots.
			now := time.Now().UnixNano()
			for i := range slots {
				if s := slots[i].sent.Load(); s != 0 && now-s > int64(cfg.timeout) && slots[i].sent.CompareAndSwap(s, 0) {
					timedOut.Add(1)
					free <- i
				}
			}
		case <-ctx.Done():
			break send
		}
	}
	// Wait for the last answers.
	for {
		outstanding := 0
		now := time.Now().UnixNano()
		for i := range slots {
			if s := slots[i].sent.Load(); s != 0 {
				if now-s > int64(cfg.timeout) && slots[i].sent.CompareAndSwap(s, 0) {
					timedOut.Add(1)
				} else {
					outstanding++
				}
			}
		}
		if outstanding == 0 || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	cancel()
	conn.SetReadDeadline(time.Now())
	<-done
	latMu.Lock()
	defer latMu.Unlock()
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	return loadResult{Sent: sent, Answered: int(answered.Load()), Errors: int(errs.Load()), TimedOut: int(timedOut.Load()),
		Elapsed: elapsed, P50: pct(0.5), P99: pct(0.99)}, nil
}
