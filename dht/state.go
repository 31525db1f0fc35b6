package dht

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
)

// State is what a node saves to start again where it stopped: its ID and the nodes of its
// routing table that were good, or, for a WebRTC node, whose node addresses mean nothing
// after a restart, the signalling servers it can bootstrap from. Its JSON form is
//
//	{"id":"<40 hex>","nodes":[{"id":"<40 hex>","host":"1.2.3.4","port":6881}, ...]}
//
// A node entry without "id" is a node to bootstrap from ("host" may then be a name); it
// is the form bittorrent-dht's toJSON writes, and the one a WebRTC node saves.
type State struct {
	ID    ID
	Nodes []NodeInfo
	// Bootstrap lists nodes to bootstrap from as "host:port" (a name is allowed).
	Bootstrap []string
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
	for _, hp := range s.Bootstrap {
		host, port, err := splitHostPort(hp)
		if err != nil {
			return nil, fmt.Errorf("dht: state: bootstrap %q: %w", hp, err)
		}
		out.Nodes = append(out.Nodes, stateNodeJSON{Host: host, Port: port})
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
		if e.Port == 0 {
			return fmt.Errorf("dht: state: nodes[%d]: missing port", i)
		}
		if e.Host == "" {
			return fmt.Errorf("dht: state: nodes[%d]: missing host", i)
		}
		if e.ID == "" {
			st.Bootstrap = append(st.Bootstrap, net.JoinHostPort(e.Host, strconv.Itoa(int(e.Port))))
			continue
		}
		ip, err := netip.ParseAddr(e.Host)
		if err != nil {
			return fmt.Errorf("dht: state: nodes[%d]: host %q: %w", i, e.Host, err)
		}
		ni := NodeInfo{Addr: netip.AddrPortFrom(ip.Unmap(), e.Port)}
		if ni.ID, err = ParseID(e.ID); err != nil {
			return fmt.Errorf("dht: state: nodes[%d]: %w", i, err)
		}
		st.Nodes = append(st.Nodes, ni)
	}
	*s = st
	return nil
}

// State returns the node's ID and the good nodes of its routing table; on a transport
// that knows signalling servers (WebRTC), those servers instead: the ones its open
// connections announced and the ones it was given to bootstrap from.
func (n *Node) State() State {
	if ss, ok := n.t.(interface{ SignallingServers() []string }); ok {
		// The servers of the open connections, and those the node was given: a node
		// saved while disconnected still knows where to start.
		servers := ss.SignallingServers()
		for _, a := range n.bootstrap {
			servers = append(servers, a.String())
		}
		servers = append(servers, n.bootstrapNames...)
		slices.Sort(servers)
		return State{ID: n.ID(), Bootstrap: slices.Compact(servers)}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return State{ID: n.ID(), Nodes: n.allNodes(true)}
}

// splitHostPort splits "host:port" with a port from 1 to 65535.
func splitHostPort(hp string) (string, uint16, error) {
	host, ps, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil || port == 0 || host == "" {
		return "", 0, fmt.Errorf("want host:port with a port from 1 to 65535")
	}
	return host, uint16(port), nil
}
