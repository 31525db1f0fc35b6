package krpc

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/wdht/wdht/internal/ratelimit"
	"github.com/wdht/wdht/transport"
)

// Defaults for Config fields left zero.
const (
	DefaultTimeout        = 2 * time.Second
	DefaultAttempts       = 2
	DefaultMaxHandlers    = 256
	DefaultSourceRate     = 100
	DefaultSourceBurst    = 200
	DefaultMaxSources     = 8192
	DefaultQueryRate      = 1000
	DefaultQueryBurst     = 200
	DefaultMaxOutstanding = 4096
	DefaultInboundRate    = 10000
	DefaultInboundBurst   = 2000
)

// Version is the client identifier sent in the "v" key of our messages when Config.Version
// is empty: "WD" and a two-byte version, following BEP 20's style.
const Version = "WD\x00\x01"

// Config configures a Server. The zero value is ready to use: every zero field means the
// documented default.
type Config struct {
	// Timeout is how long one attempt of a query waits for its response. Default 2 s.
	Timeout time.Duration
	// Attempts is how many times a query is sent before it fails with ErrTimeout; later
	// attempts reuse the transaction ID, so a late answer to an earlier one still counts.
	// Default 2.
	Attempts int
	// MaxHandlers caps the handlers running at once. Queries arriving while the cap is
	// reached are dropped (and counted). Default 256.
	MaxHandlers int
	// SourceRate is how many packets a second each source IP may send us, with bursts of
	// up to SourceBurst; excess packets are dropped before they are decoded. A negative
	// SourceRate turns the limit off. Defaults 100/s and 200.
	SourceRate  float64
	SourceBurst int
	// MaxSources bounds the number of source IPs the rate limiter remembers. Default 8192.
	MaxSources int
	// QueryRate is the budget of queries a second this Server sends, with bursts of up to
	// QueryBurst; a Call beyond it waits for budget (as long as its context allows). A
	// negative QueryRate turns the budget off. Defaults 1000/s and 200.
	QueryRate  float64
	QueryBurst int
	// MaxOutstanding caps the queries awaiting a response; Call fails with
	// ErrTooManyQueries beyond it. Default 4096.
	MaxOutstanding int
	// ReadOnly makes the Server a BEP 43 read-only node: its queries carry "ro":1 and it
	// answers no queries.
	ReadOnly bool
	// Version is sent as the "v" key. Default Version; "-" sends none.
	Version string
	// Extensions change the protocol; see Extension. The first one is outermost.
	Extensions []Extension
	// Logger receives the Server's logs; per-packet logs are at Debug and Trace.
	// Default: no logging.
	Logger hclog.Logger
	// InboundRate is how many packets a second the Server takes from all sources
	// together, with bursts of up to InboundBurst, after the per-source limit; excess
	// packets are dropped before they are decoded. Responses to our own queries pass
	// neither limit: a flood cannot make us drop the answers we wait for. A negative
	// InboundRate turns the limit off. Defaults 10,000/s and 2,000.
	InboundRate  float64
	InboundBurst int
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case c.Timeout < 0:
		return fmt.Errorf("krpc: Config.Timeout %v is negative", c.Timeout)
	case c.Attempts < 0:
		return fmt.Errorf("krpc: Config.Attempts %d is negative", c.Attempts)
	case c.MaxHandlers < 0:
		return fmt.Errorf("krpc: Config.MaxHandlers %d is negative", c.MaxHandlers)
	case c.SourceBurst < 0:
		return fmt.Errorf("krpc: Config.SourceBurst %d is negative", c.SourceBurst)
	case c.MaxSources < 0:
		return fmt.Errorf("krpc: Config.MaxSources %d is negative", c.MaxSources)
	case c.QueryBurst < 0:
		return fmt.Errorf("krpc: Config.QueryBurst %d is negative", c.QueryBurst)
	case c.MaxOutstanding < 0:
		return fmt.Errorf("krpc: Config.MaxOutstanding %d is negative", c.MaxOutstanding)
	case c.InboundBurst < 0:
		return fmt.Errorf("krpc: Config.InboundBurst %d is negative", c.InboundBurst)
	}
	for i, e := range c.Extensions {
		if e == nil {
			return fmt.Errorf("krpc: Config.Extensions[%d] is nil", i)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	def(&c.Attempts, DefaultAttempts)
	def(&c.MaxHandlers, DefaultMaxHandlers)
	def(&c.MaxSources, DefaultMaxSources)
	def(&c.MaxOutstanding, DefaultMaxOutstanding)
	if c.SourceRate == 0 {
		c.SourceRate = DefaultSourceRate
	}
	def(&c.SourceBurst, DefaultSourceBurst)
	if c.QueryRate == 0 {
		c.QueryRate = DefaultQueryRate
	}
	def(&c.QueryBurst, DefaultQueryBurst)
	if c.InboundRate == 0 {
		c.InboundRate = DefaultInboundRate
	}
	def(&c.InboundBurst, DefaultInboundBurst)
	switch c.Version {
	case "":
		c.Version = Version
	case "-":
		c.Version = ""
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	return c
}

var (
	// ErrTimeout is returned by Call when every attempt went unanswered.
	ErrTimeout = errors.New("krpc: query timed out")
	// ErrClosed is returned by Call once the Server is closed. It wraps net.ErrClosed.
	ErrClosed = fmt.Errorf("krpc: server closed: %w", net.ErrClosed)
	// ErrTooManyQueries is returned by Call when Config.MaxOutstanding queries are
	// already waiting for responses.
	ErrTooManyQueries = errors.New("krpc: too many outstanding queries")
)

// Stats are a Server's counters since it started.
type Stats struct {
	PacketsIn      uint64 // packets received
	RateLimited    uint64 // packets dropped by the per-source limit
	Throttled      uint64 // packets dropped by the global inbound limit (Config.InboundRate)
	Malformed      uint64 // packets that were not KRPC messages
	QueriesIn      uint64 // queries handed to handlers
	Overloaded     uint64 // queries dropped because MaxHandlers were busy
	RepliesOut     uint64 // responses and KRPC errors sent
	ErrorsOut      uint64 // KRPC errors among them
	Calls          uint64 // queries sent, each counted once however many attempts it took
	QueriesOut     uint64 // query transmissions, retries included
	ResponsesIn    uint64 // responses (and errors) matched to our queries
	Unmatched      uint64 // responses that matched no outstanding query
	Timeouts       uint64 // attempts that went unanswered
	SendErrors     uint64 // transport Send failures
	OutstandingNow int    // queries waiting for a response now

	// Methods counts the queries received and sent per method, by outcome: one entry
	// per method counted apart, then MethodOther for the rest.
	Methods []MethodStats
	// ErrorCodesOut counts the KRPC errors sent (ErrorsOut) by code; codes other than
	// those this package defines are counted under 0. Codes never sent are absent.
	ErrorCodesOut map[int]uint64
}

type counters struct {
	packetsIn, rateLimited, throttled, malformed, queriesIn, overloaded, repliesOut, errorsOut,
	calls, queriesOut, responsesIn, unmatched, timeouts, sendErrors atomic.Uint64
}

type txnKey struct {
	t    string
	addr netip.AddrPort
}

type txn struct {
	// done receives the response or error message, once, in an inbound the receiver
	// owns (Call returns it to inboundPool once it has taken what it needs).
	done chan *inbound
}

// Server speaks KRPC over a Transport: it sends queries and matches their responses, and
// it answers incoming queries with a Handler. It does not close the Transport.
type Server struct {
	t      transport.Transport
	cfg    Config
	log    hclog.Logger
	caller Caller
	h      Handler
	inline InlineHandler // h, when some of its methods may run on the read loop

	inLimit  *ratelimit.PerSource
	inTotal  *ratelimit.Bucket // all sources together
	outLimit *ratelimit.Bucket

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	handlers atomic.Int32

	mu       sync.Mutex
	txns     map[txnKey]*txn
	serving  map[txnKey]struct{}    // queries whose handlers run (at most MaxHandlers)
	awaiting map[netip.AddrPort]int // outstanding queries per address: their answers skip the inbound limits
	rnd      *rand.ChaCha8

	stats   counters
	methods methodStats
}

// NewServer starts a Server answering queries on t with h. cfg may be nil; it is copied.
func NewServer(t transport.Transport, h Handler, cfg *Config) (*Server, error) {
	if t == nil {
		return nil, errors.New("krpc: NewServer: nil transport")
	}
	if h == nil {
		h = Mux(nil)
	}
	var c Config
	if cfg != nil {
		c = *cfg
		c.Extensions = append([]Extension(nil), cfg.Extensions...)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("krpc: seeding transaction IDs: %w", err)
	}
	s := &Server{
		t:        t,
		cfg:      c,
		log:      c.Logger.Named("krpc"),
		inLimit:  ratelimit.NewPerSource(c.SourceRate, c.SourceBurst, c.MaxSources),
		inTotal:  ratelimit.NewBucket(c.InboundRate, c.InboundBurst),
		outLimit: ratelimit.NewBucket(c.QueryRate, c.QueryBurst),
		txns:     make(map[txnKey]*txn),
		serving:  make(map[txnKey]struct{}),
		awaiting: make(map[netip.AddrPort]int),
		rnd:      rand.NewChaCha8(seed),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.h, s.caller = chain(h, CallerFunc(s.call), c.Extensions)
	s.inline, _ = s.h.(InlineHandler)
	s.wg.Add(1)
	go s.readLoop()
	return s, nil
}

// Transport returns the transport the Server runs on.
func (s *Server) Transport() transport.Transport { return s.t }

// Call sends q to the given address through the extension chain and waits for the
// response. It retries per Config and returns ErrTimeout when no attempt was answered,
// a *Error when the remote node sent a KRPC error, and ctx's error when ctx ends first.
func (s *Server) Call(ctx context.Context, to netip.AddrPort, q *Query) (*Response, error) {
	return s.caller.Call(ctx, to, q)
}

// call is the innermost Caller: it sends the query and waits for its response.
func (s *Server) call(ctx context.Context, to netip.AddrPort, q *Query) (resp *Response, err error) {
	if q != nil && q.Method != "" {
		defer func() { s.methods.callEnded(q.Method, err) }()
	}
	if s.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if q == nil || q.Method == "" {
		return nil, errors.New("krpc: Call: query without a method")
	}
	if !to.IsValid() || to.Port() == 0 {
		return nil, fmt.Errorf("krpc: Call: invalid address %v: %w", to, transport.ErrUnreachable)
	}
	to = transport.Unmap(to)
	if r, ok := s.t.(transport.Resolver); ok {
		to = r.Resolve(to) // replies come from where the messages really go
	}
	if !ownBudget(ctx) && !s.outLimit.Allow() {
		if err := s.waitBudget(ctx); err != nil {
			return nil, err
		}
	}
	m := Msg{Y: TypeQuery, Q: q.Method, A: q.Args, ReadOnly: q.ReadOnly || s.cfg.ReadOnly, Version: s.cfg.Version}
	if m.A == nil {
		return nil, errors.New("krpc: Call: query without arguments (a node ID is required)")
	}

	tx := &txn{done: make(chan *inbound, 1)}
	key, err := s.register(to, tx)
	if err != nil {
		return nil, err
	}
	defer s.unregister(key, tx)
	s.stats.calls.Add(1)
	m.T = key.t
	buf := getBuf()
	defer putBuf(buf)
	b, err := m.AppendBinary((*buf)[:0])
	*buf = b
	if err != nil {
		return nil, err
	}

	resend, _ := ctx.Value(resendKey{}).(<-chan struct{}) // nil: never
	sends := 0
	send := func(attempt int) error {
		sends++
		if err := s.t.Send(to, b); err != nil {
			s.stats.sendErrors.Add(1)
			if errors.Is(err, net.ErrClosed) {
				return ErrClosed
			}
			return fmt.Errorf("krpc: sending %s to %v: %w", q.Method, to, err)
		}
		s.stats.queriesOut.Add(1)
		if s.log.IsTrace() {
			s.log.Trace("query sent", "method", q.Method, "to", to, "attempt", attempt)
		}
		return nil
	}
	timer := time.NewTimer(s.cfg.Timeout)
	defer timer.Stop()
	attempt := 1
	if err := send(attempt); err != nil {
		return nil, err
	}
	for {
		select {
		case _, ok := <-resend:
			if !ok {
				resend = nil // closed: no more resends
				continue
			}
			if err := send(attempt); err != nil {
				return nil, err
			}
		case in := <-tx.done:
			resp, err := s.response(&in.m, to) // keeps none of in itself
			in.reset()
			inboundPool.Put(in)
			if resp != nil {
				resp.Resent = sends > 1
			}
			return resp, err
		case <-timer.C:
			s.stats.timeouts.Add(1)
			if attempt >= s.cfg.Attempts {
				return nil, fmt.Errorf("krpc: %s to %v: %w", q.Method, to, ErrTimeout)
			}
			attempt++
			if err := send(attempt); err != nil {
				return nil, err
			}
			timer.Reset(s.cfg.Timeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.ctx.Done():
			return nil, ErrClosed
		}
	}
}

// waitBudget waits for outbound query budget until ctx ends or the Server closes.
func (s *Server) waitBudget(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	if err := s.outLimit.Wait(ctx); err != nil {
		if s.ctx.Err() != nil {
			return ErrClosed
		}
		return err
	}
	return nil
}

// response turns the matched message into Call's results.
func (s *Server) response(r *Msg, from netip.AddrPort) (*Response, error) {
	switch {
	case r.Y == TypeError:
		return nil, r.E
	case r.R == nil:
		return nil, fmt.Errorf("krpc: response from %v without a body: %w", from, ErrMalformed)
	}
	return &Response{Return: r.R, From: from, IP: r.IP, Version: r.Version}, nil
}

func (s *Server) register(to netip.AddrPort, tx *txn) (txnKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.txns) >= s.cfg.MaxOutstanding {
		return txnKey{}, ErrTooManyQueries
	}
	var t [4]byte
	for {
		v := s.rnd.Uint64()
		t = [4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
		key := txnKey{t: string(t[:]), addr: to}
		if _, used := s.txns[key]; !used {
			s.txns[key] = tx
			s.awaiting[to]++
			return key, nil
		}
	}
}

func (s *Server) unregister(key txnKey, tx *txn) {
	s.mu.Lock()
	if s.txns[key] == tx {
		s.drop(key)
	}
	s.mu.Unlock()
}

// drop removes a transaction; s.mu must be held.
func (s *Server) drop(key txnKey) {
	delete(s.txns, key)
	if s.awaiting[key.addr]--; s.awaiting[key.addr] <= 0 {
		delete(s.awaiting, key.addr)
	}
}

// expects reports whether we wait for an answer from addr.
func (s *Server) expects(addr netip.AddrPort) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.awaiting[addr] > 0
}

// admit applies the inbound limits, per source then global, to a packet from addr.
func (s *Server) admit(addr netip.Addr) bool {
	if !s.inLimit.Allow(addr) {
		s.stats.rateLimited.Add(1)
		return false
	}
	if !s.inTotal.Allow() {
		s.stats.throttled.Add(1)
		return false
	}
	return true
}

type ownBudgetKey struct{}

// WithOwnBudget returns a context whose Calls do not spend the Server's outbound budget
// (Config.QueryRate): for queries that a budget of the caller's own already bounds, such
// as the WebTorrent extension's relays, so that they and the node's own queries cannot
// starve each other. They still count against MaxOutstanding.
func WithOwnBudget(ctx context.Context) context.Context {
	return context.WithValue(ctx, ownBudgetKey{}, true)
}

func ownBudget(ctx context.Context) bool { return ctx.Value(ownBudgetKey{}) != nil }

type resendKey struct{}

// WithResend returns a context whose Calls send their query again, at once and with the
// same transaction ID, each time resend delivers a value (closing it ends the resends),
// on top of Config.Attempts: for a caller that learned the query was likely lost (its
// node answered a ping while the query went unanswered) and need not wait out
// Config.Timeout for the retry. A copy that reaches a Server while the handler of the
// first still runs on its goroutine is dropped; methods answered on the read loop
// (Inline) answer each copy.
func WithResend(ctx context.Context, resend <-chan struct{}) context.Context {
	return context.WithValue(ctx, resendKey{}, resend)
}

// Close stops the Server: pending Calls return ErrClosed, running handlers see their
// context cancelled, and Close waits for the read loop and the handlers to finish. The
// Transport stays open. Close is idempotent.
func (s *Server) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// Stats returns the Server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	n := len(s.txns)
	s.mu.Unlock()
	c := &s.stats
	st := Stats{
		PacketsIn: c.packetsIn.Load(), RateLimited: c.rateLimited.Load(), Throttled: c.throttled.Load(), Malformed: c.malformed.Load(),
		QueriesIn: c.queriesIn.Load(), Overloaded: c.overloaded.Load(), RepliesOut: c.repliesOut.Load(),
		ErrorsOut: c.errorsOut.Load(), Calls: c.calls.Load(), QueriesOut: c.queriesOut.Load(), ResponsesIn: c.responsesIn.Load(),
		Unmatched: c.unmatched.Load(), Timeouts: c.timeouts.Load(), SendErrors: c.sendErrors.Load(),
		OutstandingNow: n,
	}
	s.methods.snapshot(&st)
	return st
}

// batchSize is how many packets the read loop takes from a Batcher transport at once.
const batchSize = 64

// outbox collects the replies to one batch of packets, to be sent with one SendBatch.
type outbox struct {
	msgs  []transport.Message
	arena []byte // the replies' encodings; Data slices point into it
}

func (s *Server) readLoop() {
	defer s.wg.Done()
	if bt, ok := s.t.(transport.Batcher); ok {
		s.readBatches(bt)
		return
	}
	for {
		p, err := s.t.Receive(s.ctx)
		if err != nil {
			if s.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.log.Error("transport receive failed; server stops reading", "error", err)
			}
			return
		}
		s.handlePacket(p, nil)
	}
}

// readBatches is the read loop for transports that move several packets per system call:
// it takes what has arrived, handles it, and sends the inline replies in one batch.
func (s *Server) readBatches(bt transport.Batcher) {
	ps := make([]transport.Packet, batchSize)
	out := &outbox{arena: make([]byte, 0, 16<<10)}
	for {
		n, err := bt.ReceiveBatch(s.ctx, ps)
		if err != nil {
			if s.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				s.log.Error("transport receive failed; server stops reading", "error", err)
			}
			return
		}
		for i := range n {
			s.handlePacket(ps[i], out)
			ps[i] = transport.Packet{}
		}
		if len(out.msgs) > 0 {
			s.flush(bt, out)
		}
	}
}

// flush sends the batched replies.
func (s *Server) flush(bt transport.Batcher, out *outbox) {
	for sent := 0; sent < len(out.msgs); {
		n, err := bt.SendBatch(out.msgs[sent:])
		s.stats.repliesOut.Add(uint64(n))
		sent += n
		if err != nil {
			s.stats.sendErrors.Add(1)
			if s.log.IsDebug() {
				s.log.Debug("reply not sent", "to", out.msgs[sent].To, "error", err)
			}
			sent++ // skip the message that failed
		}
	}
	clear(out.msgs)
	out.msgs = out.msgs[:0]
	out.arena = out.arena[:0]
}

func (s *Server) handlePacket(p transport.Packet, out *outbox) {
	s.stats.packetsIn.Add(1)
	if p.From.Port() == 0 {
		s.stats.malformed.Add(1)
		return
	}
	// A packet from an address we await an answer from is decoded first, so that the
	// answer is matched before any limit; anything else pays the limits before decoding.
	expected := s.expects(p.From)
	if !expected && !s.admit(p.From.Addr()) {
		return
	}
	in := inboundPool.Get().(*inbound)
	recycle := true
	defer func() {
		if recycle {
			in.reset()
			inboundPool.Put(in)
		}
	}()
	m := &in.m
	err := m.unmarshal(p.Data, &in.a)
	if m.T == "" || (err != nil && isSyntaxError(err)) {
		s.stats.malformed.Add(1)
		if s.log.IsDebug() {
			s.log.Debug("dropping malformed packet", "from", p.From, "error", err)
		}
		return
	}
	switch m.Y {
	case TypeResponse, TypeError:
		recycle = !s.deliver(in, p.From, err) // a matched response goes to its caller
	case TypeQuery:
		if s.cfg.ReadOnly || expected && !s.admit(p.From.Addr()) {
			return
		}
		if err == nil {
			switch {
			case m.A == nil:
				err = errors.New("missing 'a' dictionary")
			case m.A.ID == (ID{}):
				err = errors.New("missing node id")
			case m.Q == "":
				err = errors.New("missing method")
			}
		}
		if err != nil {
			s.stats.malformed.Add(1)
			if s.log.IsDebug() {
				s.log.Debug("malformed query", "from", p.From, "method", m.Q, "error", err)
			}
			s.methods.method(m.Q).inErrors.Add(1)
			s.reply(p.From, m.T, nil, ProtocolError(err.Error()), out)
			return
		}
		recycle = s.dispatch(in, p.From, out)
	default:
		s.stats.malformed.Add(1)
	}
}

// deliver hands the response or error in in to the Call awaiting it, and reports whether
// one took it (and with it in).
func (s *Server) deliver(in *inbound, from netip.AddrPort, decodeErr error) bool {
	key := txnKey{t: in.m.T, addr: from}
	s.mu.Lock()
	tx := s.txns[key]
	if tx != nil {
		s.drop(key)
	}
	s.mu.Unlock()
	if tx == nil {
		s.stats.unmatched.Add(1)
		if s.log.IsDebug() {
			s.log.Debug("unmatched response", "from", from)
		}
		return false
	}
	s.stats.responsesIn.Add(1)
	if decodeErr != nil {
		in.reset()
		in.m = Msg{Y: TypeError, E: &Error{Code: ErrorCodeProtocol, Msg: "malformed response: " + decodeErr.Error()}}
	}
	tx.done <- in // buffered, and the key was removed: exactly one send
	return true
}

// dispatch answers query in.m: on the read loop for inline methods (and reports that in
// can be recycled), else on a goroutine of its own, which then owns in.
func (s *Server) dispatch(in *inbound, from netip.AddrPort, out *outbox) (recycle bool) {
	m := &in.m
	in.q = Query{Method: m.Q, Args: m.A, ReadOnly: m.ReadOnly, From: from, Version: m.Version}
	if s.inline != nil && s.inline.Inline(m.Q) {
		s.stats.queriesIn.Add(1)
		s.answer(&in.q, m.T, out)
		return true
	}
	if int(s.handlers.Add(1)) > s.cfg.MaxHandlers {
		s.handlers.Add(-1)
		s.stats.overloaded.Add(1)
		s.methods.method(m.Q).inDropped.Add(1)
		return true
	}
	// A query sent again (a retry, WithResend) while its handler still runs is dropped:
	// the handler's answer goes to the same transaction. serving holds at most
	// MaxHandlers keys.
	key := txnKey{t: m.T, addr: from}
	s.mu.Lock()
	_, dup := s.serving[key]
	if !dup {
		s.serving[key] = struct{}{}
	}
	s.mu.Unlock()
	if dup {
		s.handlers.Add(-1)
		s.methods.method(m.Q).inDropped.Add(1)
		return true
	}
	s.stats.queriesIn.Add(1)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.handlers.Add(-1)
		s.answer(&in.q, m.T, nil)
		s.mu.Lock()
		delete(s.serving, key)
		s.mu.Unlock()
	}()
	return false
}

// answer runs the handler for q and sends its reply (into out when batching).
func (s *Server) answer(q *Query, t string, out *outbox) {
	resp, err := s.serve(q)
	mc := s.methods.method(q.Method)
	if errors.Is(err, ErrNoReply) {
		mc.inDropped.Add(1)
		return
	}
	if err != nil {
		var ke *Error
		if !errors.As(err, &ke) {
			s.log.Warn("handler failed", "method", q.Method, "from", q.From, "error", err)
			ke = &Error{Code: ErrorCodeServer, Msg: "server error"}
		}
		mc.inErrors.Add(1)
		s.reply(q.From, t, nil, ke, out)
		return
	}
	mc.inResponses.Add(1)
	s.reply(q.From, t, resp, nil, out)
}

// inbound holds a received message with its query arguments and the Query handed to
// handlers: one allocation instead of three, recycled after inline queries.
type inbound struct {
	m Msg
	a Args
	q Query
}

func (in *inbound) reset() { *in = inbound{} }

var inboundPool = sync.Pool{New: func() any { return new(inbound) }}

// serve runs the handler chain, turning a panic into a 202 error: a handler bug must not
// take the process down with it.
func (s *Server) serve(q *Query) (resp *Response, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("handler panicked", "method", q.Method, "from", q.From, "panic", r)
			resp, err = nil, &Error{Code: ErrorCodeServer, Msg: "server error"}
		}
	}()
	resp, err = s.h.ServeKRPC(s.ctx, q)
	if err == nil && (resp == nil || resp.Return == nil) {
		err = fmt.Errorf("handler for %q returned no response", q.Method)
	}
	return resp, err
}

func (s *Server) reply(to netip.AddrPort, t string, resp *Response, kerr *Error, out *outbox) {
	m := Msg{T: t, IP: to, Version: s.cfg.Version}
	if kerr != nil {
		m.Y, m.E = TypeError, kerr
		s.stats.errorsOut.Add(1)
		s.methods.errorSent(kerr.Code)
	} else {
		m.Y, m.R = TypeResponse, resp.Return
	}
	if out != nil {
		start := len(out.arena)
		b, err := m.AppendBinary(out.arena)
		if err != nil {
			s.log.Error("cannot encode response", "to", to, "error", err)
			return
		}
		// When append moved the arena, earlier messages keep pointing at the old array,
		// which stays alive until they are sent.
		out.arena = b
		out.msgs = append(out.msgs, transport.Message{To: to, Data: b[start:len(b):len(b)]})
		return
	}
	buf := getBuf()
	defer putBuf(buf)
	b, err := m.AppendBinary((*buf)[:0])
	*buf = b
	if err != nil {
		s.log.Error("cannot encode response", "to", to, "error", err)
		return
	}
	if err := s.t.Send(to, b); err != nil {
		s.stats.sendErrors.Add(1)
		if s.log.IsDebug() {
			s.log.Debug("reply not sent", "to", to, "error", err)
		}
		return
	}
	s.stats.repliesOut.Add(1)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= 64<<10 {
		bufPool.Put(b)
	}
}
