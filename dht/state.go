package dht

import (
	"encoding/json"
	"fmt"
	"net/netip"
)

// State is what a node saves to start again where it stopped: its ID and the nodes of its
// routing table that were good. Its JSON form is
//
//	{"id":"<40 hex>","nodes":[{"id":"<40 hex>","host":"1.2.3.4","port":6881}, ...]}
//
// A node entry without "id" is an address to bootstrap from (the form bittorrent-dht's
// toJSON writes).
type State struct {
	ID    ID
	Nodes []NodeInfo
}

type stateNodeJSON struct {
	ID   string `json:"id,omitempty"`
	Host string `json:"host"`
	Port uint16 `json:"port"`
}

type stateJSON struct {
	ID    string          `json:"id"`
	Nodes []stateNodeJSON `json:"nodes"`
}

// MarshalJSON implements json.Marshaler.
func (s State) MarshalJSON() ([]byte, error) {
	out := stateJSON{ID: s.ID.String(), Nodes: make([]stateNodeJSON, 0, len(s.Nodes))}
	for _, n := range s.Nodes {
		e := stateNodeJSON{Host: n.Addr.Addr().String(), Port: n.Addr.Port()}
		if n.ID != (ID{}) {
			e.ID = n.ID.String()
		}
		out.Nodes = append(out.Nodes, e)
	}
	return json.Marshal(out)
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *State) UnmarshalJSON(b []byte) error {
	var in stateJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return fmt.Errorf("dht: state: %w", err)
	}
	var st State
	if in.ID != "" {
		id, err := ParseID(in.ID)
		if err != nil {
			return fmt.Errorf("dht: state: %w", err)
		}
		st.ID = id
	}
	for i, e := range in.Nodes {
		ip, err := netip.ParseAddr(e.Host)
		if err != nil {
			return fmt.Errorf("dht: state: nodes[%d]: host %q: %w", i, e.Host, err)
		}
		if e.Port == 0 {
			return fmt.Errorf("dht: state: nodes[%d]: missing port", i)
		}
		ni := NodeInfo{Addr: netip.AddrPortFrom(ip.Unmap(), e.Port)}
		if e.ID != "" {
			if ni.ID, err = ParseID(e.ID); err != nil {
				return fmt.Errorf("dht: state: nodes[%d]: %w", i, err)
			}
		}
		st.Nodes = append(st.Nodes, ni)
	}
	*s = st
	return nil
}

// State returns the node's ID and the good nodes of its routing table.
func (n *Node) State() State {
	n.mu.Lock()
	defer n.mu.Unlock()
	return State{ID: n.ID(), Nodes: n.allNodes(true)}
}
