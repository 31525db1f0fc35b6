package dht

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	akrpc "github.com/anacrolix/dht/v2/krpc"

	"github.com/wdht/wdht/krpc"
)

// BEP 51 settings: how many infohashes a sample_infohashes answer carries, and how long
// a node keeps answering with the same sample.
const (
	maxSamples     = 20
	sampleInterval = 5 * time.Minute
)

// sampler caches the sample of the peer store's infohashes that sample_infohashes returns.
type sampler struct {
	samples akrpc.CompactInfohashes
	num     int64
	until   time.Time
}

func (n *Node) handleSample(_ context.Context, q *krpc.Query) (*krpc.Response, error) {
	if !q.Args.HasTarget() {
		return nil, krpc.ProtocolError("sample_infohashes: missing target")
	}
	now := time.Now()
	n.mu.Lock()
	s := &n.sample
	// A full sample is kept for its interval; a partial one (fewer infohashes than a
	// sample holds) is drawn again at every query, so that new infohashes show at once.
	if now.After(s.until) || len(s.samples) < maxSamples {
		ihs := n.peers.Infohashes(maxSamples)
		infohashes, _ := n.peers.Len()
		s.samples = make(akrpc.CompactInfohashes, len(ihs))
		for i, ih := range ihs {
			s.samples[i] = ih
		}
		s.num = int64(infohashes)
		if now.After(s.until) {
			s.until = now.Add(sampleInterval)
		}
	}
	samples, num := s.samples, s.num
	interval := int64(s.until.Sub(now).Round(time.Second) / time.Second)
	n.mu.Unlock()
	r := n.newReturn()
	r.Samples, r.Num, r.Interval = &samples, &num, &interval
	n.setNodes(r, q, q.Args.Target)
	return &krpc.Response{Return: r}, nil
}

// ErrNoSamples is returned by SampleInfohashes when a node answers without samples: it
// does not implement BEP 51 (some nodes answer unknown queries like find_node).
var ErrNoSamples = errors.New("dht: no samples in the answer (the node does not support sample_infohashes)")

// SampleResult is one node's answer to sample_infohashes (BEP 51).
type SampleResult struct {
	// ID is the answering node's ID.
	ID ID
	// Samples are infohashes the node stores peers for.
	Samples []ID
	// Num is how many infohashes the node stores in all.
	Num int
	// Interval is how long the node will keep returning this sample.
	Interval time.Duration
	// Nodes are nodes close to the target, to continue a crawl with.
	Nodes []NodeInfo
}

// SampleInfohashes asks the node at addr for a sample of the infohashes it stores peers
// for (BEP 51), with the nodes it knows closest to target.
func (n *Node) SampleInfohashes(ctx context.Context, addr netip.AddrPort, target ID) (*SampleResult, error) {
	if !usableAddr(addr) {
		return nil, fmt.Errorf("dht: SampleInfohashes: %v is not a usable node address", addr)
	}
	a := &krpc.Args{}
	a.Target = target
	resp, err := n.queryDialing(ctx, addr, nil, krpc.MethodSampleInfohashes, a)
	if err != nil {
		return nil, err
	}
	r := resp.Return
	if r.Samples == nil {
		return nil, fmt.Errorf("dht: sample_infohashes to %v: %w", addr, ErrNoSamples)
	}
	res := &SampleResult{ID: r.ID, Samples: make([]ID, len(*r.Samples))}
	for i, ih := range *r.Samples {
		res.Samples[i] = ih
	}
	if r.Num != nil {
		res.Num = int(*r.Num)
	}
	if r.Interval != nil {
		res.Interval = time.Duration(*r.Interval) * time.Second
	}
	res.Nodes = n.toNodeInfos(nil, r.Nodes)
	res.Nodes = n.toNodeInfos(res.Nodes, r.Nodes6)
	return res, nil
}
