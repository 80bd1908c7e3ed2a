package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// target is the proxy's state for one upstream address, shared by every
// route that lists it: its own transport (so that draining it closes its
// idle keep-alive connections and no other upstream's), the number of
// requests in flight to it, and its upgraded connections (WebSockets).
//
// A target lives in Proxy.targets from the first SetRoute that lists its
// address until Drain forgets it. Once Drain marks it draining it is never
// routed again: a later SetRoute with the same address (a new container
// that got a recycled IP) makes a fresh target.
type target struct {
	addr      string
	transport *http.Transport

	// inflight counts requests being forwarded to the upstream, from
	// before the request is sent until its response is copied; an upgraded
	// request leaves the count when its connection is hijacked.
	inflight atomic.Int64
	// draining is set once, by Drain, after the address left the route
	// table. A request that counted itself and then sees it goes elsewhere.
	draining atomic.Bool
	// idle gets a token when inflight drops to zero while draining.
	idle chan struct{}

	// drained is made by the Drain that owns the target (under Proxy.mu)
	// and closed when that Drain ends; other Drains of it wait on it.
	drained chan struct{}

	// timedOut is set when a drain ran out of time and closed the
	// connections of the requests still in flight: they get 504.
	timedOut atomic.Bool

	mu       sync.Mutex
	upgraded map[io.Closer]struct{}    // both ends of upgraded connections
	conns    map[*trackedConn]struct{} // every open connection to the upstream
	closed   bool                      // the drain ended: late upgrades are closed at once

	dialer *net.Dialer
	poolMu sync.Mutex
	pool   []*upConn // idle connections of the fast path, newest last
}

func newTarget(addr string, opts Options, dialer *net.Dialer) *target {
	tg := &target{
		addr:     addr,
		idle:     make(chan struct{}, 1),
		upgraded: map[io.Closer]struct{}{},
		conns:    map[*trackedConn]struct{}{},
		dialer:   dialer,
	}
	tg.transport = newTransport(opts, func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return tg.trackConn(c), nil
	})
	return tg
}

// trackedConn is a connection to the upstream, known to its target until
// it closes, so a drain that times out can close it.
type trackedConn struct {
	net.Conn
	tg   *target
	once sync.Once
}

func (tg *target) trackConn(c net.Conn) *trackedConn {
	tc := &trackedConn{Conn: c, tg: tg}
	tg.mu.Lock()
	tg.conns[tc] = struct{}{}
	tg.mu.Unlock()
	return tc
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.tg.mu.Lock()
		delete(c.tg.conns, c)
		c.tg.mu.Unlock()
	})
	return c.Conn.Close()
}

// upConn is a fast-path connection to the upstream with its read buffer.
type upConn struct {
	*trackedConn
	br        *bufio.Reader
	idleSince time.Time
	dl        deadline
}

// getConn returns an idle connection to the upstream (reused true) or a
// new one.
func (tg *target) getConn(p *Proxy) (uc *upConn, reused bool, err error) {
	now := time.Now()
	tg.poolMu.Lock()
	for n := len(tg.pool); n > 0; n = len(tg.pool) {
		uc = tg.pool[n-1]
		tg.pool[n-1] = nil
		tg.pool = tg.pool[:n-1]
		if now.Sub(uc.idleSince) < idleConnTimeout {
			tg.poolMu.Unlock()
			return uc, true, nil
		}
		uc.Close()
	}
	tg.poolMu.Unlock()
	uc, err = tg.dial(p)
	return uc, false, err
}

// dial opens a new fast-path connection to the upstream.
func (tg *target) dial(p *Proxy) (*upConn, error) {
	c, err := tg.dialer.DialContext(p.baseCtx, "tcp", tg.addr)
	if err != nil {
		return nil, err
	}
	return &upConn{trackedConn: tg.trackConn(c), br: bufio.NewReaderSize(c, upstreamBufSize)}, nil
}

// putConn keeps uc for the next request, unless the upstream is draining
// or enough connections are idle.
func (tg *target) putConn(uc *upConn) {
	if tg.draining.Load() {
		uc.Close()
		return
	}
	uc.idleSince = time.Now()
	tg.poolMu.Lock()
	if len(tg.pool) >= maxIdleConnsPerHost {
		tg.poolMu.Unlock()
		uc.Close()
		return
	}
	tg.pool = append(tg.pool, uc)
	tg.poolMu.Unlock()
}

// closeIdle closes the idle keep-alive connections of both paths.
func (tg *target) closeIdle() {
	tg.transport.CloseIdleConnections()
	tg.poolMu.Lock()
	pool := tg.pool
	tg.pool = nil
	tg.poolMu.Unlock()
	for _, uc := range pool {
		uc.Close()
	}
}

// acquire counts a request in flight. It fails, counting nothing, once the
// target is draining: the request was routed from a table older than the
// Drain and must look its host up again. Counting first and checking the
// flag second is what makes Drain never miss a request: with Drain setting
// the flag first and reading the count second (both sequentially
// consistent atomics), either Drain sees the request or the request sees
// the flag.
func (tg *target) acquire() bool {
	tg.inflight.Add(1)
	if tg.draining.Load() {
		tg.release()
		return false
	}
	return true
}

// release ends a request counted by acquire.
func (tg *target) release() {
	if tg.inflight.Add(-1) == 0 && tg.draining.Load() {
		select {
		case tg.idle <- struct{}{}:
		default:
		}
		tg.mu.Lock()
		closed := tg.closed
		tg.mu.Unlock()
		if closed {
			// A request that outlived the drain timeout: its connection
			// goes back to no pool.
			tg.closeIdle()
		}
	}
}

// track registers one end of an upgraded connection, so the end of a drain
// closes it; after the drain it is closed at once.
func (tg *target) track(c io.Closer) {
	tg.mu.Lock()
	if tg.closed {
		tg.mu.Unlock()
		c.Close()
		return
	}
	tg.upgraded[c] = struct{}{}
	tg.mu.Unlock()
}

func (tg *target) untrack(c io.Closer) {
	tg.mu.Lock()
	delete(tg.upgraded, c)
	tg.mu.Unlock()
}

// upgrades is the number of upgraded connections (each counted once, by
// its client end).
func (tg *target) upgrades() int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	n := 0
	for c := range tg.upgraded {
		if _, ok := c.(*upstreamConn); !ok {
			n++
		}
	}
	return n
}

// drain waits, up to timeout or ctx, until no request is in flight, then
// closes the upgraded connections and the idle ones. The caller has set
// draining. It returns the number of requests still in flight and of
// upgraded connections it closed.
func (tg *target) drain(ctx context.Context, timeout time.Duration) (left int64, upgrades int) {
	timer := time.NewTimer(max(timeout, 0))
	defer timer.Stop()
wait:
	for tg.inflight.Load() > 0 {
		select {
		case <-tg.idle:
		case <-timer.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	tg.mu.Lock()
	tg.closed = true
	conns := tg.upgraded
	tg.upgraded = nil
	var open []*trackedConn
	if tg.inflight.Load() > 0 {
		// Out of time: the requests still in flight get 504 once their
		// upstream connections close.
		tg.timedOut.Store(true)
		for c := range tg.conns {
			open = append(open, c)
		}
	}
	tg.mu.Unlock()
	for _, c := range open {
		c.Conn.Close()
	}
	for c := range conns {
		if _, ok := c.(*upstreamConn); !ok {
			upgrades++
		}
		c.Close()
	}
	// Idle keep-alive connections get a FIN; a response still being
	// copied puts its connection back to a transport that now closes it.
	tg.closeIdle()
	return tg.inflight.Load(), upgrades
}

// upstreamConn is the upstream end of an upgraded connection (the body of a
// 101 response), tracked by its target until ReverseProxy closes it.
type upstreamConn struct {
	io.ReadWriteCloser
	tg *target
}

func (c *upstreamConn) Close() error {
	c.tg.untrack(c)
	return c.ReadWriteCloser.Close()
}

// trackUpgrade is ReverseProxy's ModifyResponse hook for 101 responses: the
// upstream end of the connection is tracked until it closes.
func (tg *target) trackUpgrade(resp *http.Response) {
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok {
		c := &upstreamConn{ReadWriteCloser: rwc, tg: tg}
		resp.Body = c
		tg.track(c)
	}
}

// exchange is the ResponseWriter a request is forwarded with: it knows the
// target of the current attempt, moves the request from in flight to
// upgraded when ReverseProxy hijacks the client connection, and carries a
// dial error back to serve so it can retry on another upstream.
type exchange struct {
	http.ResponseWriter
	tg   *target
	conn net.Conn     // the hijacked client connection of an upgrade
	body *bodyTracker // nil: the request has no body

	// Set by the ErrorHandler when the attempt could not reach the
	// upstream and may be retried.
	retry bool
	err   error
	req   *http.Request // the outgoing request of the failed attempt

	tried [maxAttempts]*target
	n     int // attempts made

	begin   time.Time     // start of the current attempt
	code    int           // status code sent to the client (0: none yet)
	local   bool          // the response is the proxy's own error page
	latency time.Duration // time to the upstream's response headers
}

// maxAttempts bounds the upstreams one request tries when they refuse.
const maxAttempts = 8

// start makes tg the target of the next attempt; tg is acquired.
func (x *exchange) start(tg *target) {
	x.tg, x.conn, x.retry, x.err, x.req = tg, nil, false, nil, nil
	x.begin = time.Now()
	x.tried[x.n] = tg
	x.n++
}

// finish ends the attempt: the request leaves the in-flight count, or the
// upgraded connection stops being tracked.
func (x *exchange) finish() {
	if x.conn != nil {
		x.tg.untrack(x.conn)
		return
	}
	x.tg.release()
}

func (x *exchange) triedTarget(tg *target) bool {
	for _, t := range x.tried[:x.n] {
		if t == tg {
			return true
		}
	}
	return false
}

// Hijack is called by ReverseProxy for an upgrade, once the upstream
// answered 101: the client connection is tracked, then the request stops
// counting as in flight (in that order, so a drain that sees no request in
// flight closes this connection).
func (x *exchange) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(x.ResponseWriter).Hijack()
	if err != nil {
		return conn, brw, err
	}
	x.conn = conn
	x.tg.track(conn)
	x.tg.release()
	return conn, brw, nil
}

// Unwrap lets http.ResponseController (used by ReverseProxy to flush)
// reach the server's ResponseWriter.
func (x *exchange) Unwrap() http.ResponseWriter { return x.ResponseWriter }

// WriteHeader records the status code and, for an upstream's response,
// how long its headers took.
func (x *exchange) WriteHeader(code int) {
	if x.code == 0 && code >= 200 {
		x.code = code
		if !x.local {
			x.latency = time.Since(x.begin)
		}
	}
	x.ResponseWriter.WriteHeader(code)
}

// status is the code the client got: 101 for an upgrade.
func (x *exchange) status() int {
	switch {
	case x.code != 0:
		return x.code
	case x.conn != nil:
		return http.StatusSwitchingProtocols
	}
	return http.StatusOK
}

// retryable reports whether a failed attempt may be made again elsewhere:
// the upstream could not be dialed (so it got nothing), the request body
// was not read, and the client is still there.
func (x *exchange) retryable(r *http.Request, err error) bool {
	if x.n >= maxAttempts || r.Context().Err() != nil {
		return false
	}
	if x.body != nil && x.body.read.Load() {
		return false
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// bodyTracker records whether a request body was read, which would make
// the request unsafe to send again.
type bodyTracker struct {
	io.ReadCloser
	read atomic.Bool
}

func (t *bodyTracker) Read(p []byte) (int, error) {
	if !t.read.Load() {
		t.read.Store(true)
	}
	return t.ReadCloser.Read(p)
}

// Drain retires upstreams that no longer get requests: it waits until no
// request to them is in flight, up to timeout or until ctx ends, then
// closes their upgraded connections (WebSockets, both ends) and idle
// keep-alive connections, and forgets them, so an upstream that later
// reuses an address starts fresh. Upstreams are drained in parallel. An
// address still routed by the current table, or unknown, is left alone.
// Requests that still run at the timeout are cut: their upstream
// connections are closed and their clients get 504 (or, when the response
// had started, a truncated response).
func (p *Proxy) Drain(ctx context.Context, upstreams []string, timeout time.Duration) {
	type job struct {
		tg    *target
		owner bool // this call drains tg; others wait for it
	}
	var jobs []job
	p.mu.Lock()
	routed := p.table.Load().routed()
	for _, addr := range upstreams {
		tg := p.targets[addr]
		if tg == nil || routed[tg] {
			continue
		}
		dup := false
		for _, j := range jobs {
			dup = dup || j.tg == tg
		}
		if dup {
			continue
		}
		owner := tg.drained == nil
		if owner {
			tg.drained = make(chan struct{})
			tg.draining.Store(true)
		}
		jobs = append(jobs, job{tg, owner})
	}
	p.mu.Unlock()

	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Go(func() {
			if !j.owner {
				// Another Drain runs; wait for it as long as we may.
				timer := time.NewTimer(max(timeout, 0))
				defer timer.Stop()
				select {
				case <-j.tg.drained:
				case <-timer.C:
				case <-ctx.Done():
				}
				return
			}
			start := time.Now()
			left, upgrades := j.tg.drain(ctx, timeout)
			p.mu.Lock()
			if p.targets[j.tg.addr] == j.tg {
				delete(p.targets, j.tg.addr)
			}
			p.mu.Unlock()
			close(j.tg.drained)
			ev := p.log.Info()
			if left > 0 {
				ev = p.log.Warn()
			}
			ev.Str("upstream", j.tg.addr).Int64("in_flight_left", left).Int("upgrades_closed", upgrades).
				Dur("duration", time.Since(start)).Msg("upstream drained")
		})
	}
	wg.Wait()
}

// InFlight is the number of requests being forwarded to upstream (host:port)
// now, upgraded connections not counted; 0 for an address the proxy does
// not know.
func (p *Proxy) InFlight(upstream string) int {
	p.mu.Lock()
	tg := p.targets[upstream]
	p.mu.Unlock()
	if tg == nil {
		return 0
	}
	return int(tg.inflight.Load())
}

// routed is the set of targets some route of t lists.
func (t *table) routed() map[*target]bool {
	m := make(map[*target]bool, len(t.apps))
	for _, r := range t.apps {
		for _, u := range r.upstreams {
			m[u.tg] = true
		}
	}
	return m
}
