package proxy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/rivetr/rivetr/apps"
)

var _ apps.Router = (*Proxy)(nil)
var _ http.Handler = (*Proxy)(nil)

// DefaultResponseHeaderTimeout is used when Options.ResponseHeaderTimeout
// is zero.
const DefaultResponseHeaderTimeout = 60 * time.Second

// Upstream connection settings. An app container is on the same host or
// network, so a dial that takes seconds means it is not there.
const (
	dialTimeout         = 5 * time.Second
	dialKeepAlive       = 30 * time.Second
	maxIdleConnsPerHost = 256 // each upstream has its own transport
	idleConnTimeout     = 90 * time.Second
)

// Server settings for Serve. There is no write timeout: responses may be
// streams or WebSockets that last for hours.
const (
	readHeaderTimeout = 10 * time.Second
	serverIdleTimeout = 120 * time.Second
	maxHeaderBytes    = 1 << 20
)

// Options tune a Proxy. The zero value is usable.
type Options struct {
	// ResponseHeaderTimeout bounds the wait for an upstream's response
	// headers after the request is sent; past it the client gets 504.
	// Zero means DefaultResponseHeaderTimeout.
	ResponseHeaderTimeout time.Duration
	// MaxBodyBytes limits the size of a request body; a larger one gets 413.
	// Zero means no limit.
	MaxBodyBytes int64
	// AccessLog logs one info line per request: method, host, path (never
	// the query), status, bytes, duration and app.
	AccessLog bool

	// netHTTPOnly turns the fast path off (tests compare both paths).
	netHTTPOnly bool
}

// Proxy is rivetr's reverse proxy. It implements apps.Router and
// http.Handler; create it with New.
type Proxy struct {
	log     zerolog.Logger
	opts    Options
	dialer  *net.Dialer
	buffers *bufferPool
	errLog  *log.Logger // net/http's own messages, sent to log at debug
	metrics *metrics

	mu      sync.Mutex // serialises writers of table; guards targets
	table   atomic.Pointer[table]
	targets map[string]*target // by address: routed ones, and unrouted ones not drained yet

	srvMu   sync.Mutex
	servers []*http.Server
	fastLns []net.Listener // listeners of the fast path (Serve)
	closed  bool

	closing   atomic.Bool // Shutdown started: fast connections end
	fastMu    sync.Mutex
	fastConns map[*fastConn]struct{}
	baseCtx   context.Context // parent of every request served by Serve
	cancel    context.CancelFunc
}

// New returns a Proxy with an empty route table. log should already carry
// the component field (component=proxy).
func New(log zerolog.Logger, opts Options) *Proxy {
	if opts.ResponseHeaderTimeout <= 0 {
		opts.ResponseHeaderTimeout = DefaultResponseHeaderTimeout
	}
	if opts.MaxBodyBytes < 0 {
		opts.MaxBodyBytes = 0
	}
	p := &Proxy{
		log:     log,
		opts:    opts,
		dialer:  &net.Dialer{Timeout: dialTimeout, KeepAlive: dialKeepAlive},
		buffers: newBufferPool(),
		errLog:  newStdLogger(log),
		metrics: newMetrics(),
		targets: map[string]*target{},

		fastConns: map[*fastConn]struct{}{},
	}
	p.baseCtx, p.cancel = context.WithCancel(context.Background())
	p.table.Store(newTable())
	return p
}

// newTransport makes the transport of one upstream; dial makes its
// connections.
func newTransport(opts Options, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Transport {
	// HTTP/1.1 to upstreams: apps speak it, and it needs no TLS.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	return &http.Transport{
		Proxy:                 nil, // never through $HTTP_PROXY
		DialContext:           dial,
		MaxIdleConns:          maxIdleConnsPerHost,
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       idleConnTimeout,
		ResponseHeaderTimeout: opts.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		// The fast path relays response heads up to its buffer's size;
		// both paths refuse larger ones alike (502), as nginx does.
		MaxResponseHeaderBytes: upstreamBufSize,
		// Pass Accept-Encoding and bodies through untouched.
		DisableCompression: true,
		ForceAttemptHTTP2:  false,
		Protocols:          &protocols,
	}
}

// SetRoute routes every host in hosts to upstreams (host:port), replacing
// the previous route of app at once: hosts no longer listed stop routing to
// it, and a request sees either the old route or the new one, never a mix.
// A host "*.example.com" matches any name ending in ".example.com". A host
// already routed to another app moves to this one (and is logged); hosts
// that can never match (empty, "*") are skipped.
func (p *Proxy) SetRoute(app string, hosts []string, upstreams []string) {
	p.setRoute(app, hosts, upstreams, nil)
}

// SetStatic serves app's hosts from the files of site (see static.go),
// replacing its previous route at once. A site whose directory cannot be
// opened gets a 503 until the next change.
func (p *Proxy) SetStatic(app string, hosts []string, site apps.StaticSite) {
	s, err := openSite(site)
	if err != nil {
		p.log.Error().Str("app", app).Err(err).Msg("static site not served")
	}
	p.setRoute(app, hosts, nil, s)
}

func (p *Proxy) setRoute(app string, hosts []string, upstreams []string, site *staticSite) {
	r := &route{app: app, m: p.metrics.forApp(app), site: site}
	seen := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		n := normalizeRouteHost(h)
		if n == "" {
			p.log.Warn().Str("app", app).Str("host", h).Msg("ignoring invalid host")
			continue
		}
		if !seen[n] {
			seen[n] = true
			r.hosts = append(r.hosts, n)
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	for _, addr := range upstreams {
		if addr = strings.TrimSpace(addr); addr != "" {
			// An address being drained is never routed again: a new
			// container that got the same address starts fresh.
			tg := p.targets[addr]
			if tg == nil || tg.draining.Load() {
				tg = newTarget(addr, p.opts, p.dialer)
				p.targets[addr] = tg
			}
			r.upstreams = append(r.upstreams, p.newUpstream(app, tg))
		}
	}
	t := p.table.Load().clone()
	if prev := t.apps[app]; prev != nil && prev.site != nil && prev.site != site {
		prev.site.retire()
	}
	t.remove(app)
	for _, h := range r.hosts {
		m, key := t.entry(h)
		if other, ok := m[key]; ok {
			p.log.Warn().Str("app", app).Str("host", h).Str("previous_app", other.app).
				Msg("host moves to another app")
		}
		m[key] = r
	}
	t.apps[app] = r
	p.table.Store(t)
}

// RemoveRoute stops routing app; its hosts get 404 from then on.
func (p *Proxy) RemoveRoute(app string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur := p.table.Load()
	if _, ok := cur.apps[app]; !ok {
		return
	}
	if prev := cur.apps[app]; prev.site != nil {
		prev.site.retire()
	}
	t := cur.clone()
	t.remove(app)
	p.table.Store(t)
}

// remove deletes app's route and those of its hosts it still owns.
func (t *table) remove(app string) {
	old, ok := t.apps[app]
	if !ok {
		return
	}
	for _, h := range old.hosts {
		if m, key := t.entry(h); m[key] == old {
			delete(m, key)
		}
	}
	delete(t.apps, app)
}

// Lookup reports which app serves host (a Host header value, port
// allowed), if any.
func (p *Proxy) Lookup(host string) (app string, ok bool) {
	if r := p.table.Load().lookup(normalizeHost(host)); r != nil {
		return r.app, true
	}
	return "", false
}

// newUpstream binds a ReverseProxy to one upstream address of app, so the
// request path needs no per-request state beyond what ReverseProxy makes
// and the exchange.
func (p *Proxy) newUpstream(app string, tg *target) *upstream {
	addr := tg.addr
	u := &upstream{addr: addr, tg: tg}
	u.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = addr
			// pr.Out.Host stays the client's Host: apps route on it.
			setForwardedHeaders(pr)
		},
		Transport: tg.transport,
		// Responses of known length need no periodic flush; ReverseProxy
		// flushes SSE and bodies of unknown length (chunked) after every
		// write by itself.
		FlushInterval: 0,
		BufferPool:    p.buffers,
		ErrorLog:      p.errLog,
		ModifyResponse: func(resp *http.Response) error {
			if resp.StatusCode == http.StatusSwitchingProtocols {
				tg.trackUpgrade(resp)
			}
			return setResponseID(resp)
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if tg.timedOut.Load() {
				// The drain timed out and closed the connection.
				p.upstreamError(w, r, context.DeadlineExceeded, app, addr)
				return
			}
			if x, ok := w.(*exchange); ok && x.retryable(r, err) {
				// serve tries another upstream, or answers with err.
				x.retry, x.err, x.req = true, err, r
				return
			}
			p.upstreamError(w, r, err, app, addr)
		},
	}
	return u
}

// ServeHTTP routes r by its Host header.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.opts.AccessLog {
		p.serveLogged(w, r)
		return
	}
	p.serve(w, w, r)
}

// maxRepicks bounds how often a request looks its host up again because
// the upstream it picked started draining meanwhile. Each repick needs a
// route change between the lookup and the pick, so it is never reached in
// practice; past it the request goes to the draining upstream, counted.
const maxRepicks = 16

// serve proxies r, writing to w; raw is the server's own ResponseWriter
// (MaxBytesReader uses it to close the connection after a too large body).
// It returns the app that served the request, if any.
//
// The request is counted in flight on its upstream before it is
// forwarded, and goes elsewhere if that upstream started draining (see
// target.acquire). An attempt that cannot dial its upstream is made
// again on another upstream of the host, once per upstream, when the body
// was not read: a container that died before its route changed costs the
// client nothing.
func (p *Proxy) serve(w, raw http.ResponseWriter, r *http.Request) string {
	host := normalizeHost(r.Host)
	rt := p.table.Load().lookup(host)
	if rt == nil {
		writePage(w, r, http.StatusNotFound)
		p.metrics.none.request(http.StatusNotFound)
		return ""
	}
	if rt.site != nil {
		rt.m.request(rt.site.serve(w, r))
		return rt.app
	}
	if len(rt.upstreams) == 0 {
		writePage(w, r, http.StatusServiceUnavailable)
		rt.m.request(http.StatusServiceUnavailable)
		return rt.app
	}
	if limit := p.opts.MaxBodyBytes; limit > 0 && r.ContentLength != 0 {
		if r.ContentLength > limit {
			writePage(w, r, http.StatusRequestEntityTooLarge)
			rt.m.request(http.StatusRequestEntityTooLarge)
			return rt.app
		}
		// Unknown length (chunked): fail once the limit is crossed; the
		// transport's error reaches upstreamError as a MaxBytesError.
		r.Body = http.MaxBytesReader(raw, r.Body, limit)
	}
	x := &exchange{ResponseWriter: w}
	if r.Body != nil && r.Body != http.NoBody {
		x.body = &bodyTracker{ReadCloser: r.Body}
		r.Body = x.body
	}

	up := rt.pick()
	for i := 0; !up.tg.acquire(); i++ {
		if i == maxRepicks {
			up.tg.inflight.Add(1)
			break
		}
		if rt = p.table.Load().lookup(host); rt == nil {
			writePage(w, r, http.StatusNotFound)
			p.metrics.none.request(http.StatusNotFound)
			return ""
		}
		if up = rt.pick(); up == nil {
			writePage(w, r, http.StatusServiceUnavailable)
			rt.m.request(http.StatusServiceUnavailable)
			return rt.app
		}
	}
	for {
		x.start(up.tg)
		up.rp.ServeHTTP(x, r)
		x.finish()
		if !x.retry {
			if x.latency > 0 {
				rt.m.latency(x.latency)
			}
			rt.m.request(x.status())
			return rt.app
		}
		failed := up
		if rt2, next := p.retryUpstream(host, x); next != nil {
			p.log.Warn().Str("app", rt.app).Str("upstream", failed.addr).Str("retry_upstream", next.addr).
				Err(x.err).Msg("upstream refused, retrying on another")
			rt, up = rt2, next
			continue
		}
		p.upstreamError(x, x.req, x.err, rt.app, failed.addr)
		rt.m.request(x.status())
		return rt.app
	}
}

// retryUpstream picks, from the current route of host, an upstream the
// request has not tried yet, and acquires it.
func (p *Proxy) retryUpstream(host string, x *exchange) (*route, *upstream) {
	if x.n >= maxAttempts {
		return nil, nil
	}
	rt := p.table.Load().lookup(host)
	if rt == nil || len(rt.upstreams) == 0 {
		return nil, nil
	}
	n := len(rt.upstreams)
	start := int(rt.next.Load() % uint32(n))
	for k := range n {
		u := rt.upstreams[(start+k)%n]
		if !x.triedTarget(u.tg) && u.tg.acquire() {
			return rt, u
		}
	}
	return nil, nil
}

// upstreamError answers a request that could not be proxied.
func (p *Proxy) upstreamError(w http.ResponseWriter, r *http.Request, err error, app, addr string) {
	if x, ok := w.(*exchange); ok {
		x.local = true // the page below is the proxy's, not an upstream's
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writePage(w, r, http.StatusRequestEntityTooLarge)
	case r.Context().Err() != nil && errors.Is(err, context.Canceled):
		// The client went away (or the proxy is shutting down): nobody
		// reads the answer, and it is not the upstream's fault.
		p.log.Debug().Str("app", app).Str("upstream", addr).Err(err).Msg("request canceled")
		writePage(w, r, http.StatusBadGateway)
	default:
		status := http.StatusBadGateway
		if isTimeout(err) {
			status = http.StatusGatewayTimeout
		}
		p.log.Warn().Str("app", app).Str("upstream", addr).Int("status", status).Err(err).
			Msg("upstream error")
		writePage(w, r, status)
	}
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// serveLogged serves r and logs it, even when ReverseProxy aborts the
// response with a panic (http.ErrAbortHandler).
func (p *Proxy) serveLogged(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	lw := &logWriter{ResponseWriter: w}
	app := ""
	defer func() {
		p.log.Info().
			Str("method", r.Method).
			Str("host", r.Host).
			Str("path", r.URL.Path).
			Int("status", lw.status()).
			Int64("bytes", lw.bytes).
			Dur("duration", time.Since(start)).
			Str("app", app).
			Msg("request")
	}()
	app = p.serve(lw, w, r)
}

// newServer is the http.Server of the net/http path, with a front
// proxy's timeouts: 10s to read request headers, 120s idle keep-alive, and
// no write timeout (responses may be streams or WebSockets that last for
// hours). tlsConf, when not nil, is served with HTTP/2.
func (p *Proxy) newServer(h http.Handler, tlsConf *tls.Config) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       serverIdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          p.errLog,
		ConnState:         p.metrics.connState,
		BaseContext:       func(net.Listener) context.Context { return p.baseCtx },
	}
}

// register adds srv (and fastLn, the listener of a fast path) to what
// Shutdown stops; it fails, closing fastLn, once Shutdown has begun.
func (p *Proxy) register(srv *http.Server, fastLn net.Listener) bool {
	p.srvMu.Lock()
	defer p.srvMu.Unlock()
	if p.closed {
		if fastLn != nil {
			fastLn.Close()
		}
		return false
	}
	p.servers = append(p.servers, srv)
	if fastLn != nil {
		p.fastLns = append(p.fastLns, fastLn)
	}
	return true
}

// serveWith serves h (p wrapped) on ln with net/http alone and, when
// tlsConf is not nil, TLS (HTTP/2 included). It returns nil after Shutdown.
func (p *Proxy) serveWith(ln net.Listener, h http.Handler, tlsConf *tls.Config) error {
	srv := p.newServer(h, tlsConf)
	if !p.register(srv, nil) {
		ln.Close()
		return nil
	}
	var err error
	if tlsConf != nil {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops every Serve: it stops accepting, waits until in-flight
// requests finish or ctx ends, then cancels what still runs, upgraded
// connections (WebSockets) included, and closes idle upstream connections.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.srvMu.Lock()
	p.closed = true
	servers := p.servers
	p.servers = nil
	p.srvMu.Unlock()

	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	wg.Go(func() { p.shutdownFast(ctx.Done()) })
	for i, srv := range servers {
		wg.Go(func() { errs[i] = srv.Shutdown(ctx) })
	}
	wg.Wait()
	p.cancel()
	p.mu.Lock()
	for _, tg := range p.targets {
		tg.closeIdle()
	}
	p.mu.Unlock()
	return errors.Join(errs...)
}

// bufferPool recycles ReverseProxy's copy buffers. It pools pointers to
// arrays, so neither Get nor Put allocates.
type bufferPool struct{ pool sync.Pool }

const bufferSize = 32 << 10

func newBufferPool() *bufferPool {
	return &bufferPool{pool: sync.Pool{New: func() any { return new([bufferSize]byte) }}}
}

func (b *bufferPool) Get() []byte { return b.pool.Get().(*[bufferSize]byte)[:] }

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) == bufferSize {
		b.pool.Put((*[bufferSize]byte)(buf[:bufferSize]))
	}
}

// logWriter records the status and size of a response for the access log.
type logWriter struct {
	http.ResponseWriter
	code  int
	bytes int64
}

func (l *logWriter) WriteHeader(code int) {
	if l.code == 0 && code >= 200 {
		l.code = code
	}
	l.ResponseWriter.WriteHeader(code)
}

func (l *logWriter) Write(b []byte) (int, error) {
	if l.code == 0 {
		l.code = http.StatusOK
	}
	n, err := l.ResponseWriter.Write(b)
	l.bytes += int64(n)
	return n, err
}

// Hijack is called for upgrades: ReverseProxy writes the 101 response to
// the hijacked connection itself.
func (l *logWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if l.code == 0 {
		l.code = http.StatusSwitchingProtocols
	}
	return http.NewResponseController(l.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController (used by ReverseProxy to flush)
// reach the server's ResponseWriter.
func (l *logWriter) Unwrap() http.ResponseWriter { return l.ResponseWriter }

func (l *logWriter) status() int {
	if l.code == 0 {
		return http.StatusOK
	}
	return l.code
}

// newStdLogger sends net/http's own log lines (TLS handshake errors,
// aborted copies) to log at debug.
func newStdLogger(l zerolog.Logger) *log.Logger {
	return log.New(debugWriter{l}, "", 0)
}

type debugWriter struct{ log zerolog.Logger }

func (d debugWriter) Write(b []byte) (int, error) {
	d.log.Debug().Msg(strings.TrimSpace(string(b)))
	return len(b), nil
}
