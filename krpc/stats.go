package krpc

import (
	"errors"
	"sync/atomic"
)

// MethodOther is the name Stats.Methods gives to the methods it does not count apart.
const MethodOther = "other"

// countedMethods are the methods Stats.Methods counts apart, in its order; every other
// method is counted under MethodOther, so that the counters stay bounded whatever
// method names the network sends. peer_connection is the WebTorrent extension's.
var countedMethods = [...]string{MethodPing, MethodFindNode, MethodGetPeers, MethodAnnouncePeer,
	MethodGet, MethodPut, MethodSampleInfohashes, "peer_connection"}

// countedCodes are the KRPC error codes Stats.ErrorCodesOut counts apart; any other code
// is counted under 0.
var countedCodes = [...]int{ErrorCodeGeneric, ErrorCodeServer, ErrorCodeProtocol, ErrorCodeMethodUnknown,
	ErrorCodeValueTooBig, ErrorCodeInvalidSig, ErrorCodeSaltTooBig, ErrorCodeCASMismatch, ErrorCodeSeqTooLow}

// MethodStats counts the queries of one method, received and sent.
type MethodStats struct {
	// Method is the method's name, or MethodOther.
	Method string

	// Queries received (malformed ones with a method included), by outcome: answered
	// with a response, answered with a KRPC error, or dropped (handlers busy, or the
	// handler chose not to reply). Their sum is the queries of the method received.
	InResponses, InErrors, InDropped uint64

	// Queries sent (Calls, each counted once however many attempts it took), by
	// outcome: answered with a response, answered with a KRPC error, unanswered
	// (ErrTimeout), or failed otherwise (not sent, abandoned when the context ended or
	// the Server closed). Their sum is the calls of the method that have ended.
	OutResponses, OutErrors, OutTimeouts, OutFailed uint64
}

// methodCounters are the atomic counters behind one MethodStats.
type methodCounters struct {
	inResponses, inErrors, inDropped                  atomic.Uint64
	outResponses, outErrors, outTimeouts, outFailures atomic.Uint64
}

// methodStats holds the per-method and per-code counters of a Server.
type methodStats struct {
	methods [len(countedMethods) + 1]methodCounters // the last: MethodOther
	codes   [len(countedCodes) + 1]atomic.Uint64    // the last: any other code
}

// method returns the counters of the method called name.
func (m *methodStats) method(name string) *methodCounters {
	for i, c := range countedMethods {
		if c == name {
			return &m.methods[i]
		}
	}
	return &m.methods[len(countedMethods)]
}

// errorSent counts a KRPC error sent with code.
func (m *methodStats) errorSent(code int) {
	for i, c := range countedCodes {
		if c == code {
			m.codes[i].Add(1)
			return
		}
	}
	m.codes[len(countedCodes)].Add(1)
}

// callEnded counts a call of method that ended with err.
func (m *methodStats) callEnded(method string, err error) {
	c := m.method(method)
	var ke *Error
	switch {
	case err == nil:
		c.outResponses.Add(1)
	case errors.As(err, &ke):
		c.outErrors.Add(1)
	case errors.Is(err, ErrTimeout):
		c.outTimeouts.Add(1)
	default:
		c.outFailures.Add(1)
	}
}

// snapshot fills s's Methods and ErrorCodesOut.
func (m *methodStats) snapshot(s *Stats) {
	s.Methods = make([]MethodStats, len(m.methods))
	for i := range m.methods {
		c := &m.methods[i]
		name := MethodOther
		if i < len(countedMethods) {
			name = countedMethods[i]
		}
		s.Methods[i] = MethodStats{
			Method:      name,
			InResponses: c.inResponses.Load(), InErrors: c.inErrors.Load(), InDropped: c.inDropped.Load(),
			OutResponses: c.outResponses.Load(), OutErrors: c.outErrors.Load(),
			OutTimeouts: c.outTimeouts.Load(), OutFailed: c.outFailures.Load(),
		}
	}
	s.ErrorCodesOut = make(map[int]uint64, len(m.codes))
	for i := range m.codes {
		code := 0
		if i < len(countedCodes) {
			code = countedCodes[i]
		}
		if n := m.codes[i].Load(); n > 0 {
			s.ErrorCodesOut[code] = n
		}
	}
}

// Method returns the counters of the method called name (MethodOther for a method not
// counted apart) from s.Methods.
func (s *Stats) Method(name string) MethodStats {
	for _, m := range s.Methods {
		if m.Method == name {
			return m
		}
	}
	for _, m := range s.Methods {
		if m.Method == MethodOther {
			return m
		}
	}
	return MethodStats{Method: name}
}
