//go:build !js

package webrtc

// Prompt nomination by the controlling side of a connection (the offerer).
//
// pion/ice v2 (the version pion/webrtc v3 uses) nominates a candidate pair, as the
// controlling agent, only when it runs a round of its connectivity checks: on a 200 ms
// tick (ice.AgentConfig.CheckInterval, which pion/webrtc v3's SettingEngine does not
// set), or at once when the agent is asked to (a local or remote candidate added), or
// when the controlled peer's own check arrives on a pair that has already succeeded. The
// first round pings every pair; the answers come back within one round trip; but unless
// the peer checks again in the meantime (two of ours do; the JS's libwebrtc, wrtc in
// Node.js, did not in a trace), the pair that succeeded is nominated only at the next
// tick, 200 ms after the start.
// Every connection a JS peer answered took those 200 ms, and a join opens several in turn.
//
// The nominator asks for a round at the moments when a pair can become nominatable:
//   - when a check's success response has been handled (the agent reads the next packet
//     only once it handled the previous one, so the socket's next read is that moment);
//   - when the acceptance wait of each candidate type ends (ice.go), for a pair of that
//     type that succeeded earlier.
//
// It asks by adding a remote candidate that pairs with nothing, a passive TCP candidate
// (our agents gather UDP only, and pion pairs a remote passive TCP candidate with no
// local candidate): pion's addRemoteCandidate then requests a round at once. No packet
// is ever sent to it. A round that finds no nominatable pair pings the pairs still in
// progress once more, as a tick would, which counts against pion's 7 retries per pair;
// so success responses ask for at most maxSuccessKicks rounds per offer, which also
// bounds what forged responses (the socket does not check them) can cost, and the end of
// each acceptance wait for one more.

import (
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/stun"
	ptransport "github.com/pion/transport/v2"
	"github.com/pion/transport/v2/stdnet"
)

// maxSuccessKicks bounds the rounds of checks that success responses ask for in one
// offer's life. The first success of the pair to nominate is usually the first or
// second one; the acceptance waits' ends have rounds of their own.
const maxSuccessKicks = 4

// nominator asks the ICE agent of one offer for a round of checks when a pair may have
// become nominatable (see above).
type nominator struct {
	t     *Transport
	agent *ice.Agent // set before the agent starts checking

	mu     sync.Mutex
	state  nominatorState
	timers []*time.Timer
	kicks  int // rounds asked for; the n-th candidate has port n
	byResp int // of them, asked for by success responses

	// kickHook, when set (tests), runs instead of adding the candidate.
	kickHook func(n int)
}

type nominatorState int

const (
	nominatorIdle     nominatorState = iota // not checking yet
	nominatorChecking                       // checking, no pair selected
	nominatorDone                           // connected, failed or closed
)

// acceptanceWaits are the distinct non-zero acceptance waits, in increasing order: the
// moments after the start of checking when a succeeded pair of some type becomes
// nominatable.
func acceptanceWaits() []time.Duration {
	var out []time.Duration
	for _, w := range []time.Duration{hostAcceptanceWait, srflxAcceptanceWait, prflxAcceptanceWait, relayAcceptanceWait} {
		if w > 0 && !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	slices.Sort(out)
	return out
}

// nominationMargin is added to an acceptance wait before asking for a round: pion
// nominates a pair only once strictly more than the wait has passed since its start,
// which we observe a little after it happened.
const nominationMargin = time.Millisecond

// setAgent gives the nominator the agent it asks for rounds.
func (n *nominator) setAgent(a *ice.Agent) {
	n.mu.Lock()
	n.agent = a
	n.mu.Unlock()
}

// iceState follows the agent's state: checking starts the nominator, any state after it
// ends it.
func (n *nominator) iceState(s ice.ConnectionState) {
	switch s {
	case ice.ConnectionStateNew:
	case ice.ConnectionStateChecking:
		n.start()
	default:
		n.stop()
	}
}

// start records that checking started and sets a timer for the end of each acceptance
// wait.
func (n *nominator) start() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state != nominatorIdle {
		return
	}
	n.state = nominatorChecking
	for _, w := range acceptanceWaits() {
		n.timers = append(n.timers, time.AfterFunc(w+nominationMargin, n.waitEnded))
	}
}

// stop ends the nominator: a pair was selected, or the connection failed or closed.
func (n *nominator) stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.state = nominatorDone
	for _, t := range n.timers {
		t.Stop()
	}
	n.timers = nil
}

// done reports whether the nominator has nothing more to do.
func (n *nominator) done() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.state == nominatorDone
}

// succeeded runs once the agent handled a check's success response.
func (n *nominator) succeeded() { n.kick(true) }

// waitEnded runs when an acceptance wait ends.
func (n *nominator) waitEnded() { n.kick(false) }

// kick asks the agent for a round of checks, if it is checking and, for a success
// response, the budget allows.
func (n *nominator) kick(resp bool) {
	n.mu.Lock()
	if n.state != nominatorChecking || (resp && n.byResp >= maxSuccessKicks) {
		n.mu.Unlock()
		return
	}
	if resp {
		n.byResp++
	}
	n.kicks++
	k, agent, hook := n.kicks, n.agent, n.kickHook
	n.mu.Unlock()
	if hook != nil {
		hook(k)
		return
	}
	// On a goroutine of its own: the caller may be the agent's socket reader, which
	// the agent's Close waits for.
	n.t.track(func() {
		c, err := ice.UnmarshalCandidate(kickCandidate(k))
		if err == nil {
			err = agent.AddRemoteCandidate(c)
		}
		if err != nil && n.t.log.IsTrace() {
			n.t.log.Trace("asking ICE for a round of checks", "error", err)
		}
	})
}

// kickCandidate returns the n-th remote candidate that makes the agent run a round of
// checks: a passive TCP host candidate, which pion pairs with no local candidate (it
// would make an active TCP connection to it only if the agent gathered TCP candidates,
// and ours gather UDP only: settings), on the unspecified address and the discard port
// range, so that nothing could reach it anyway. Each has its own port: pion ignores a
// candidate equal to one it has.
func kickCandidate(n int) string {
	return fmt.Sprintf("wdhtkick%d 1 tcp 1 0.0.0.0 %d typ host tcptype passive", n, n)
}

// nominators is what a transport needs to give its offers nominators.
type nominators struct {
	baseNet func() (ptransport.Net, error) // the network an offer's nominator watches
	created func(*nominator)               // tests: sees each offer's nominator
}

// initNominators sets what newPeer needs for an offer's nominator: an offer's ICE agent
// gets its own network, pion's standard one (which pion otherwise makes for each agent)
// with its UDP sockets watched by the offer's nominator (agentConfig, peer_native.go).
func (t *Transport) initNominators() {
	t.nom = nominators{baseNet: func() (ptransport.Net, error) { return stdnet.NewNet() }}
}

// watchNet is a network whose UDP sockets tell a nominator when a check's success
// response has been handled.
type watchNet struct {
	ptransport.Net
	n *nominator
}

// ListenUDP opens the sockets of host and server-reflexive candidates.
func (w *watchNet) ListenUDP(network string, laddr *net.UDPAddr) (ptransport.UDPConn, error) {
	c, err := w.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return &watchConn{UDPConn: c, n: w.n}, nil
}

// watchConn is a candidate's socket. The agent reads it with ReadFrom on one goroutine,
// handling each packet before it reads the next.
type watchConn struct {
	ptransport.UDPConn
	n       *nominator
	handled atomic.Bool // the last packet read was a check's success response
	off     atomic.Bool // the nominator is done: stop looking
}

// ReadFrom reads the next packet, first telling the nominator that the previous one, a
// check's success response, has been handled.
func (c *watchConn) ReadFrom(b []byte) (int, net.Addr, error) {
	if c.handled.Swap(false) {
		c.n.succeeded()
	}
	k, addr, err := c.UDPConn.ReadFrom(b)
	if err == nil && !c.off.Load() && isCheckSuccess(b[:k]) {
		if c.n.done() {
			c.off.Store(true)
		} else {
			c.handled.Store(true)
		}
	}
	return k, addr, err
}

// isCheckSuccess reports whether b is a STUN Binding success response with a
// MESSAGE-INTEGRITY attribute: the answer to a connectivity check (RFC 8445 7.2.5), which
// the peer signs with its password, not a STUN server's answer during gathering, which is
// unsigned. Packets that are not STUN (DTLS, SCTP: nearly all) fail stun.IsMessage's look
// at the header and are not decoded.
func isCheckSuccess(b []byte) bool {
	if !stun.IsMessage(b) {
		return false
	}
	m := stun.Message{Raw: b}
	return m.Decode() == nil && m.Type == stun.BindingSuccess && m.Contains(stun.AttrMessageIntegrity)
}
