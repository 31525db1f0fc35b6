package krpc

import (
	"context"
	"errors"
	"net/netip"
)

// Query is a KRPC query: an incoming one as a Handler sees it, or an outgoing one as a
// Caller sends it.
type Query struct {
	// Method is the query name ("ping", "find_node", ...).
	Method string
	// Args are the query's arguments. Incoming queries always have Args with a node ID.
	Args *Args
	// ReadOnly is the BEP 43 flag: the querier does not answer queries. On outgoing
	// queries the Server also sets it when its Config says so.
	ReadOnly bool
	// From is the querier's address (incoming queries only).
	From netip.AddrPort
	// Version is the querier's "v" key (incoming queries only).
	Version string
}

// Response is a KRPC response: the one a Handler returns or the one a Caller receives.
type Response struct {
	// Return is the response body. A Handler must set it.
	Return *Return
	// From is the responder's address (received responses only).
	From netip.AddrPort
	// IP is the BEP 42 "ip" key of a received response: our own address as the responder
	// saw it. The Server fills it in on every response it sends.
	IP netip.AddrPort
	// Version is the responder's "v" key (received responses only).
	Version string
	// Resent reports that the query went out more than once (a retry, or WithResend), so
	// that which send it answers is unknown: its round trip is no sample (Karn's rule).
	// Received responses only.
	Resent bool
}

// Handler answers incoming queries. It returns the response, or an error: a *Error (also
// wrapped) is sent to the querier as is, ErrNoReply sends nothing, and any other error is
// sent as a 202 server error. ServeKRPC runs on its own goroutine, never on the read
// loop; ctx is cancelled when the Server closes.
type Handler interface {
	ServeKRPC(ctx context.Context, q *Query) (*Response, error)
}

// InlineHandler is implemented by Handlers that answer some methods without ever blocking:
// no waiting on the network, on other goroutines or on long-held locks. The Server runs
// those queries on its read loop instead of on a goroutine of their own, which saves a
// goroutine and a scheduler round trip per query; all other queries still run off the
// read loop. The DHT node's built-in methods are inline; an extension's wrapper is not,
// unless it implements InlineHandler itself.
type InlineHandler interface {
	Handler
	// Inline reports whether queries for method never block. Handlers of inline
	// queries must not keep the *Query or its *Args after they return (the server
	// reuses them); the values inside, such as Args.V, they may keep.
	Inline(method string) bool
}

// HandlerFunc adapts a function to the Handler interface.
type HandlerFunc func(ctx context.Context, q *Query) (*Response, error)

// ServeKRPC calls f.
func (f HandlerFunc) ServeKRPC(ctx context.Context, q *Query) (*Response, error) { return f(ctx, q) }

// Caller sends a query to an address and waits for its response. Remote KRPC errors are
// returned as *Error.
type Caller interface {
	Call(ctx context.Context, to netip.AddrPort, q *Query) (*Response, error)
}

// CallerFunc adapts a function to the Caller interface.
type CallerFunc func(ctx context.Context, to netip.AddrPort, q *Query) (*Response, error)

// Call calls f.
func (f CallerFunc) Call(ctx context.Context, to netip.AddrPort, q *Query) (*Response, error) {
	return f(ctx, to, q)
}

// Extension changes the protocol spoken by a Server, in the way of gRPC interceptors: it
// can wrap outgoing queries together with their responses, wrap the handling of incoming
// queries together with our responses, and add query methods. The WebTorrent extension
// (package extensions/signals) uses all three.
type Extension interface {
	// WrapCaller returns the Caller used for outgoing queries; it calls next to send.
	WrapCaller(next Caller) Caller
	// WrapHandler returns the Handler used for incoming queries; it calls next to have
	// them answered by the rest of the chain.
	WrapHandler(next Handler) Handler
	// Methods returns handlers for query methods the extension adds. They are looked up
	// before the Server's own handler and are wrapped by every extension's WrapHandler.
	Methods() map[string]Handler
}

// ErrNoReply is returned by a Handler that wants no response sent at all.
var ErrNoReply = errors.New("krpc: no reply")

// ErrMethodUnknown is returned by handlers for a method they do not serve; it is sent as
// KRPC error 204.
var ErrMethodUnknown = &Error{Code: ErrorCodeMethodUnknown, Msg: "Method Unknown"}

// ProtocolError returns a KRPC error 203 (malformed packet, invalid arguments or bad token)
// with the given message.
func ProtocolError(msg string) *Error { return &Error{Code: ErrorCodeProtocol, Msg: msg} }

// Mux serves queries by method name. Methods without a handler get ErrMethodUnknown.
type Mux map[string]Handler

// ServeKRPC dispatches q to the handler registered for q.Method.
func (m Mux) ServeKRPC(ctx context.Context, q *Query) (*Response, error) {
	if h, ok := m[q.Method]; ok {
		return h.ServeKRPC(ctx, q)
	}
	return nil, ErrMethodUnknown
}

// chain builds the handler and caller that a Server uses from its own pieces and its
// extensions. Extensions listed first are outermost.
func chain(base Handler, call Caller, exts []Extension) (Handler, Caller) {
	h := base
	var methods Mux
	for _, e := range exts {
		for name, mh := range e.Methods() {
			if methods == nil {
				methods = make(Mux)
			}
			if _, dup := methods[name]; !dup {
				methods[name] = mh
			}
		}
	}
	if methods != nil {
		inner := base
		h = HandlerFunc(func(ctx context.Context, q *Query) (*Response, error) {
			if mh, ok := methods[q.Method]; ok {
				return mh.ServeKRPC(ctx, q)
			}
			return inner.ServeKRPC(ctx, q)
		})
	}
	for i := len(exts) - 1; i >= 0; i-- {
		h = exts[i].WrapHandler(h)
		call = exts[i].WrapCaller(call)
	}
	return h, call
}
