package dht

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"sync"

	"github.com/wdht/wdht/krpc"
	"github.com/wdht/wdht/transport"
)

// State is what a node saves to start again where it stopped: its ID and the nodes of its
// routing table that were good, or, for a WebRTC node, whose node addresses mean nothing
// after a restart, the signalling servers it can bootstrap from. Its JSON form is
//
//	{"id":"<40 hex>","nodes":[{"id":"<40 hex>","host":"1.2.3.4","port":6881}, ...]}
//
// A node entry without "id" is a node to bootstrap from ("host" may then be a name); it
// is the form bittorrent-dht's toJSON writes, and the one a WebRTC node saves.
//
// The BEP 44 items the node stores are saved too, as bittorrent-dht's toJSON saves its
// "values": an object from target (40 hex) to {"v","k","sig","seq","salt"}, every byte
// string in hex ("v" the bencoded value; a "v" that is not bencode, as the JS writes a
// string value, is taken as that string). At most MaxStateItems items are kept. A state
// without "values" (as written before items were saved) loads with none.
type State struct {
	ID    ID
	Nodes []NodeInfo
	// Bootstrap lists nodes to bootstrap from as "host:port" (a name is allowed). A node
	// reads at most MaxStateServers of them, and saves those it was given and at most
	// MaxStateServers others that answered a dial (see MaxStateServers), dropping those
	// whose dial failed.
	Bootstrap []string
	// Items are BEP 44 items to store again, at most MaxStateItems (Node.State saves the
	// most recently stored; a node given more restores the first MaxStateItems). Each
	// is checked (target and signature) when loaded.
	Items []*Item
}

// MaxStateItems bounds the BEP 44 items a State carries: at most about 1 MB of values.
const MaxStateItems = 1000

type stateItemJSON struct {
	V    string `json:"v"`
	K    string `json:"k,omitempty"`
	Sig  string `json:"sig,omitempty"`
	Seq  *int64 `json:"seq,omitempty"`
	Salt string `json:"salt,omitempty"`
}

type stateNodeJSON struct {
	ID   string `json:"id,omitempty"`
	Host string `json:"host"`
	Port uint16 `json:"port"`
}

type stateJSON struct {
	ID     string                   `json:"id"`
	Nodes  []stateNodeJSON          `json:"nodes"`
	Values map[string]stateItemJSON `json:"values,omitempty"`
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
	for _, it := range s.Items[:min(len(s.Items), MaxStateItems)] {
		if out.Values == nil {
			out.Values = make(map[string]stateItemJSON)
		}
		e := stateItemJSON{V: hex.EncodeToString(it.V)}
		if it.Mutable {
			seq := it.Seq
			e.K, e.Sig, e.Seq, e.Salt = hex.EncodeToString(it.K[:]), hex.EncodeToString(it.Sig[:]), &seq, hex.EncodeToString(it.Salt)
		}
		out.Values[it.Target().String()] = e
	}
	return json.Marshal(out)
}

// parseStateItem turns a saved value back into an item, checked against its key.
func parseStateItem(key string, e stateItemJSON) (*Item, error) {
	target, err := ParseID(key)
	if err != nil {
		return nil, err
	}
	v, err := hex.DecodeString(e.V)
	if err != nil || len(v) == 0 {
		return nil, fmt.Errorf("v: want the value in hex")
	}
	it := &Item{}
	if e.K != "" || e.Sig != "" || e.Seq != nil {
		k, err1 := hex.DecodeString(e.K)
		sig, err2 := hex.DecodeString(e.Sig)
		salt, err3 := hex.DecodeString(e.Salt)
		if err1 != nil || err2 != nil || err3 != nil || len(k) != len(it.K) || len(sig) != len(it.Sig) || e.Seq == nil {
			return nil, fmt.Errorf("a mutable item needs k (32 bytes), sig (64 bytes) and seq, in hex; salt in hex")
		}
		it.Mutable, it.Seq, it.Salt = true, *e.Seq, salt
		copy(it.K[:], k)
		copy(it.Sig[:], sig)
	}
	// v is the bencoded value; the JS saves a string value's bytes alone.
	for _, cand := range [][]byte{v, []byte(strconv.Itoa(len(v)) + ":" + string(v))} {
		if end, err := krpc.CheckValue(cand); err != nil || end != len(cand) {
			continue
		}
		it.V = cand
		if it.Target() == target && it.Verify() == nil {
			return it, nil
		}
	}
	return nil, fmt.Errorf("the item does not check: not its target, or a bad signature")
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
	keys := slices.Sorted(maps.Keys(in.Values))
	for _, key := range keys[:min(len(keys), MaxStateItems)] {
		it, err := parseStateItem(key, in.Values[key])
		if err != nil {
			return fmt.Errorf("dht: state: values[%s]: %w", key, err)
		}
		st.Items = append(st.Items, it)
	}
	*s = st
	return nil
}

// State returns the node's ID and the good nodes of its routing table; on a transport
// that knows signalling servers (WebRTC), those servers instead (see savedServers): the
// ones it was given, and at most MaxStateServers others that answered a dial.
func (n *Node) State() State {
	if _, ok := n.t.(interface{ SignallingServers() []string }); ok {
		return State{ID: n.ID(), Bootstrap: n.savedServers(), Items: n.items.All(MaxStateItems)}
	}
	items := n.items.All(MaxStateItems)
	n.mu.Lock()
	defer n.mu.Unlock()
	return State{ID: n.ID(), Nodes: n.allNodes(true), Items: items}
}

// MaxStateServers bounds the signalling servers a State saves beyond those the node was
// given (Config.Bootstrap, Config.BootstrapHosts): the ones that answered a dial, which a
// restart dials. A node also reads at most this many from State.Bootstrap. Peers choose
// the servers they announce: a node saves one only once a dial of it answered (it dials
// at most one announced server per MaintenanceInterval to find out, and at most
// maxVerifyDials in its life), so that a restart neither dials nor saves hosts that
// never answered, however many peers announce.
const MaxStateServers = 16

// maxDialled bounds the servers whose last dial the node remembers.
const maxDialled = 256

// maxVerifyDials bounds the announced signalling servers a node dials to find out
// whether they answer (see MaxStateServers).
const maxVerifyDials = 2 * MaxStateServers

// dialLog remembers whether the signalling servers (or seeds) the node dialled answered.
type dialLog struct {
	mu       sync.Mutex
	answered map[string]bool // "host:port" -> whether the last dial answered
	saved    []string        // the servers of the loaded State (at most MaxStateServers), sorted
	verified int             // announced servers dialled to verify them (maxVerifyDials)
}

// note records that a dial of hp answered (ok) or failed.
func (d *dialLog) note(hp string, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.answered == nil {
		d.answered = make(map[string]bool)
	}
	if _, known := d.answered[hp]; known || len(d.answered) < maxDialled {
		d.answered[hp] = ok
	}
}

// givenServers returns the servers the user gave the node.
func (n *Node) givenServers() map[string]bool {
	given := make(map[string]bool)
	for _, a := range n.cfg.Bootstrap {
		given[a.String()] = true
	}
	for _, hp := range n.cfg.BootstrapHosts {
		given[hp] = true
	}
	return given
}

// verifyServer dials, in the background, one signalling server the peers of open
// connections announced that the node has not dialled yet, so that State may save it
// if it answers. It does nothing on a transport that does not dial, or once the node
// made maxVerifyDials such dials.
func (n *Node) verifyServer() {
	ss, ok := n.t.(interface{ SignallingServers() []string })
	d, dials := n.t.(transport.Dialer)
	if !ok || !dials {
		return
	}
	announced := ss.SignallingServers()
	given := n.givenServers()
	n.dials.mu.Lock()
	pick := ""
	if n.dials.verified < maxVerifyDials {
		for _, hp := range announced {
			if _, dialled := n.dials.answered[hp]; !dialled && !given[hp] {
				pick = hp
				break
			}
		}
	}
	if pick != "" {
		n.dials.verified++
	}
	n.dials.mu.Unlock()
	if pick == "" {
		return
	}
	n.spawn(func() {
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.MaxLookupDuration)
		defer cancel()
		_, err := d.Dial(ctx, pick)
		n.dials.note(pick, err == nil)
		if err != nil && n.log.IsDebug() {
			n.log.Debug("an announced signalling server did not answer", "server", pick, "error", err)
		}
	})
}

// savedServers picks the signalling servers a State saves, sorted: every server the node
// was given, then at most MaxStateServers others, in this order of preference: those
// whose last dial answered; those of the loaded State not dialled yet (they answered
// before the restart). A server peers announced is saved only once its dial answered
// (see verifyServer); one whose last dial failed is pruned, whoever chose it but the user.
func (n *Node) savedServers() []string {
	var out []string
	given := n.givenServers()
	for hp := range given {
		out = append(out, hp)
	}
	n.dials.mu.Lock()
	var answered []string
	for hp, ok := range n.dials.answered {
		if ok && !given[hp] {
			answered = append(answered, hp)
		}
	}
	slices.Sort(answered)
	others := answered
	for _, hp := range n.dials.saved {
		if _, dialled := n.dials.answered[hp]; !dialled && !given[hp] {
			others = append(others, hp)
		}
	}
	n.dials.mu.Unlock()
	// others holds no duplicates; seen also stops it at MaxStateServers.
	seen := make(map[string]bool, len(others))
	for _, hp := range others {
		if len(seen) == MaxStateServers {
			break
		}
		if !seen[hp] {
			seen[hp] = true
			out = append(out, hp)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
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
