package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The fast path of the plain HTTP listener. net/http's server and
// Transport cost two goroutine hand-offs, a background read and a dozen
// allocations per proxied request, which is most of the proxy's CPU time.
// For the common request (HTTP/1.1, a path, no body or a small one, no
// upgrade) the proxy parses the head itself, writes it to a pooled
// upstream connection with one write, and relays the response with as few
// writes as the data allows: a small response costs one read and one
// write on each side.
//
// Anything else is handed, with the bytes already read, to an
// http.Server that runs the full ReverseProxy path (serve in proxy.go),
// and that connection stays there: upgrades (WebSockets), Expect,
// chunked or large request bodies, HTTP/1.0, unknown hosts (404), apps
// without upstreams (503), over-long heads, and any request whose first
// dial fails (so net/http's retry on another upstream and its 502 apply).
// Both paths share the route table, the targets' drain accounting and the
// metrics.

const (
	clientBufSize   = 8 << 10  // request head and small bodies
	upstreamBufSize = 16 << 10 // response heads up to this size
	outBufSize      = 32 << 10 // batched writes to the client
)

// Connection states of a fast connection, for Shutdown.
const (
	connIdle int32 = iota
	connActive
	connClosed
)

// fastConn is one client connection on the fast path.
type fastConn struct {
	p         *Proxy
	c         net.Conn
	br        *bufio.Reader
	state     atomic.Int32
	clientIP  []byte // for X-Forwarded-For
	localPort []byte // for X-Forwarded-Port
	req       fastRequest
	resp      fastResponse
	id        [maxRequestIDBytes]byte
	idLen     int
	dl        deadline
}

// deadlineSlack is how much earlier than asked a read deadline may fall:
// a deadline is only moved when it must come sooner or is off by more,
// since every change is a timer update in the runtime. With the timeouts
// of a proxy (seconds to minutes) this is invisible; per request it saves
// two timer updates.
const deadlineSlack = time.Second

// deadline is a connection's read deadline as last set.
type deadline struct{ at time.Time }

func (d *deadline) set(c net.Conn, now time.Time, timeout time.Duration) {
	want := now.Add(timeout)
	if !d.at.IsZero() && !want.Before(d.at) && want.Sub(d.at) < deadlineSlack {
		return
	}
	d.at = want
	c.SetReadDeadline(want)
}

func (d *deadline) clear(c net.Conn) {
	if !d.at.IsZero() {
		d.at = time.Time{}
		c.SetReadDeadline(time.Time{})
	}
}

// handoff is the listener of the http.Server that takes connections the
// fast path hands over.
type handoff struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newHandoff(addr net.Addr) *handoff {
	return &handoff{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (h *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.ch:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handoff) Close() error   { h.once.Do(func() { close(h.done) }); return nil }
func (h *handoff) Addr() net.Addr { return h.addr }

// replayConn is a handed-over connection: what the fast path buffered is
// read first.
type replayConn struct {
	net.Conn
	br *bufio.Reader
}

func (c *replayConn) Read(b []byte) (int, error) { return c.br.Read(b) }

var clientReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, clientBufSize) }}

var outBuffers = sync.Pool{New: func() any { b := make([]byte, 0, outBufSize); return &b }}

// Serve serves the proxy on ln until Shutdown: common requests on the fast
// path, the others through net/http with a front proxy's server timeouts
// (10s to read request headers, 120s idle keep-alive, no write timeout).
// It may be called for several listeners. It returns nil after Shutdown.
func (p *Proxy) Serve(ln net.Listener) error {
	if p.opts.netHTTPOnly {
		return p.serveWith(ln, p, nil)
	}
	h := newHandoff(ln.Addr())
	srv := p.newServer(p, nil)
	if !p.register(srv, ln) {
		return nil
	}
	go srv.Serve(h)

	var delay time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if p.isClosed() {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		go p.serveFast(c, h)
	}
}

func (p *Proxy) isClosed() bool {
	p.srvMu.Lock()
	defer p.srvMu.Unlock()
	return p.closed
}

// serveFast runs one client connection until it closes, is handed over or
// the proxy shuts down.
func (p *Proxy) serveFast(c net.Conn, h *handoff) {
	fc := &fastConn{p: p, c: c}
	fc.br = clientReaders.Get().(*bufio.Reader)
	fc.br.Reset(c)
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		fc.clientIP = []byte(a.IP.String())
	}
	if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
		fc.localPort = strconv.AppendInt(nil, int64(a.Port), 10)
	}
	if !p.trackFast(fc, true) {
		c.Close()
		return
	}
	p.metrics.conns.Add(1)
	handedOff := false
	defer func() {
		p.trackFast(fc, false)
		if !handedOff {
			p.metrics.conns.Add(-1)
			c.Close()
			fc.br.Reset(nil)
			clientReaders.Put(fc.br)
		}
	}()
	for {
		if fc.br.Buffered() == 0 {
			fc.dl.set(c, time.Now(), serverIdleTimeout)
			if _, err := fc.br.Peek(1); err != nil {
				return
			}
		}
		if !fc.state.CompareAndSwap(connIdle, connActive) {
			return // Shutdown closed it
		}
		switch keep, slow := fc.serveOne(); {
		case slow:
			fc.state.Store(connClosed)
			fc.dl.clear(c)
			p.metrics.conns.Add(-1)
			select {
			case h.ch <- &replayConn{Conn: c, br: fc.br}:
				handedOff = true
			case <-h.done:
				p.metrics.conns.Add(1) // counted down by the deferred func
			}
			return
		case !keep:
			return
		}
		if !fc.state.CompareAndSwap(connActive, connIdle) || p.isClosing() {
			return
		}
	}
}

// serveOne serves the request at the head of the buffer. slow means the
// connection goes to net/http with the request unread; keep means the
// connection may serve another request.
func (fc *fastConn) serveOne() (keep, slow bool) {
	p, br := fc.p, fc.br
	head, _, err := peekHead(br, func() { fc.dl.set(fc.c, time.Now(), readHeaderTimeout) })
	if errors.Is(err, errHeadTooLarge) {
		return false, true
	}
	if err != nil {
		return false, false
	}
	req := &fc.req
	if !parseRequest(head, req) {
		return false, true
	}
	total := len(head) + int(req.contentLength)
	if req.contentLength > 0 {
		if total > br.Size() || (p.opts.MaxBodyBytes > 0 && req.contentLength > p.opts.MaxBodyBytes) {
			return false, true
		}
		fc.dl.set(fc.c, time.Now(), serverIdleTimeout)
		if _, err := br.Peek(total); err != nil {
			return false, false
		}
	}
	host := normalizeHost(bytesString(req.host))
	rt := p.table.Load().lookup(host)
	if rt != nil && rt.site != nil {
		if keep, ok := fc.serveStatic(rt, total); ok {
			return keep, false
		}
		return false, true
	}
	if rt == nil || len(rt.upstreams) == 0 {
		return false, true
	}
	up := rt.pick()
	if !up.tg.acquire() {
		return false, true // draining: net/http's path picks again
	}
	uc, reused, err := up.tg.getConn(p)
	if err != nil {
		up.tg.release()
		return false, true // net/http's path retries elsewhere or answers 502
	}
	start := time.Now()
	data, _ := br.Peek(total)
	code, written, keep := fc.exchange(rt, up, uc, reused, data, start)
	up.tg.release()
	rt.m.request(code)
	if p.opts.AccessLog {
		p.log.Info().Str("method", string(req.method)).Str("host", string(req.host)).
			Str("path", pathOnly(req.target)).Int("status", code).Int64("bytes", written).
			Dur("duration", time.Since(start)).Str("app", rt.app).Msg("request")
	}
	return keep && !req.close, false
}

// exchange forwards the request in data (head and body, still in the
// client buffer) on uc and relays the response. It returns the status
// sent, the body bytes written and whether both connections are still in
// a state to serve another request.
func (fc *fastConn) exchange(rt *route, up *upstream, uc *upConn, reused bool, data []byte, start time.Time) (code int, written int64, keep bool) {
	p, req := fc.p, &fc.req
	outp := outBuffers.Get().(*[]byte)
	defer outBuffers.Put(outp)
	out := fc.appendUpstreamRequest((*outp)[:0], data[len(data)-int(req.contentLength):])
	fc.br.Discard(len(data))

	var head []byte
	for attempt := 0; ; attempt++ {
		var empty bool
		_, err := uc.Write(out)
		if err == nil {
			uc.dl.set(uc, start, p.opts.ResponseHeaderTimeout)
			head, empty, err = peekHead(uc.br, nil)
		}
		if err == nil {
			break
		}
		// A reused connection the upstream closed while idle: send again
		// on a new one (the whole request is in out), as net/http does.
		if reused && attempt == 0 && (empty || !errors.Is(err, errHeadTooLarge)) && uc.br.Buffered() == 0 && !up.tg.timedOut.Load() {
			uc.Close()
			if uc, err = up.tg.dial(p); err == nil {
				reused = false
				continue
			}
		}
		uc.Close()
		code = http.StatusBadGateway
		if isTimeout(err) || up.tg.timedOut.Load() {
			code = http.StatusGatewayTimeout
		}
		p.log.Warn().Str("app", rt.app).Str("upstream", up.addr).Int("status", code).Err(err).Msg("upstream error")
		*outp = fc.appendPage(out[:0], code)
		_, werr := fc.c.Write(*outp)
		return code, 0, werr == nil
	}

	resp := &fc.resp
	for {
		if !parseResponse(head, resp) || resp.code == http.StatusSwitchingProtocols {
			uc.Close()
			p.log.Warn().Str("app", rt.app).Str("upstream", up.addr).Msg("upstream sent a malformed or unexpected response head")
			*outp = fc.appendPage(out[:0], http.StatusBadGateway)
			_, werr := fc.c.Write(*outp)
			return http.StatusBadGateway, 0, werr == nil
		}
		if resp.code >= 200 {
			break
		}
		// 1xx informational (103 Early Hints): relay and read on.
		out = fc.appendResponseHead(out[:0], false)
		uc.br.Discard(len(head))
		if _, err := fc.c.Write(out); err != nil {
			uc.Close()
			return resp.code, 0, false
		}
		var err error
		if head, _, err = peekHead(uc.br, nil); err != nil {
			uc.Close()
			return http.StatusBadGateway, 0, false
		}
	}
	rt.m.latency(time.Since(start))
	uc.br.Discard(len(head))
	code = resp.code

	noBody := req.head || code == http.StatusNoContent || code == http.StatusNotModified
	rechunk := !noBody && !resp.chunked && resp.contentLength < 0
	out = fc.appendResponseHead(out[:0], rechunk)
	if !noBody && uc.br.Buffered() == 0 || resp.chunked || rechunk {
		// The body is not here yet, or is a stream: no deadline on it.
		uc.dl.clear(uc)
	}
	var err error
	switch {
	case noBody:
	case resp.chunked:
		out, written, err = fc.copyChunked(uc.br, out)
	case rechunk:
		out, written, err = fc.copyRechunked(uc.br, out)
	default:
		out, written, err = fc.copyLength(uc.br, out, resp.contentLength)
	}
	if err == nil && len(out) > 0 {
		_, err = fc.c.Write(out)
	}
	*outp = out
	if err != nil {
		uc.Close()
		return code, written, false
	}
	if resp.close || rechunk {
		uc.Close()
	} else {
		up.tg.putConn(uc)
	}
	return code, written, true
}

// appendUpstreamRequest renders the request for the upstream: the
// client's head without hop-by-hop headers, with the proxy's forwarding
// headers, then body.
func (fc *fastConn) appendUpstreamRequest(b, body []byte) []byte {
	req := &fc.req
	b = append(b, req.method...)
	b = append(b, ' ')
	b = append(b, req.target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, req.host...)
	b = append(b, "\r\n"...)
	for _, f := range req.fields[:req.n] {
		b = appendField(b, f.name, f.value)
	}
	b = append(b, "X-Forwarded-For: "...)
	for _, v := range req.xff[:req.nxff] {
		b = append(b, v...)
		b = append(b, ", "...)
	}
	b = append(b, fc.clientIP...)
	b = append(b, "\r\nX-Forwarded-Host: "...)
	b = append(b, req.host...)
	b = append(b, "\r\nX-Forwarded-Proto: http\r\n"...)
	if len(fc.localPort) > 0 {
		b = append(b, "X-Forwarded-Port: "...)
		b = append(b, fc.localPort...)
		b = append(b, "\r\n"...)
	}
	if req.teTrailers {
		b = append(b, "Te: trailers\r\n"...)
	}
	if id := req.requestID; validRequestID(bytesString(id)) {
		fc.idLen = copy(fc.id[:], id)
	} else {
		fc.idLen = putRequestID(fc.id[:])
	}
	b = append(b, "X-Request-Id: "...)
	b = append(b, fc.id[:fc.idLen]...)
	b = append(b, "\r\n\r\n"...)
	return append(b, body...)
}

// appendResponseHead renders the response head for the client.
func (fc *fastConn) appendResponseHead(b []byte, chunked bool) []byte {
	resp := &fc.resp
	b = append(b, "HTTP/1.1 "...)
	b = append(b, resp.status...)
	b = append(b, "\r\n"...)
	for _, f := range resp.fields[:resp.n] {
		if resp.ndrop > 0 && resp.dropped(f.name) {
			continue
		}
		b = appendField(b, f.name, f.value)
	}
	if resp.code < 200 {
		return append(b, "\r\n"...)
	}
	if resp.chunked || chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if !resp.hasDate {
		b = append(b, "Date: "...)
		b = append(b, httpDate()...)
		b = append(b, "\r\n"...)
	}
	if fc.req.close {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "X-Request-Id: "...)
	b = append(b, fc.id[:fc.idLen]...)
	return append(b, "\r\n\r\n"...)
}

// appendPage renders one of the proxy's error pages.
func (fc *fastConn) appendPage(b []byte, code int) []byte {
	body := pages[code]
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	b = append(b, "\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nX-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\nDate: "...)
	b = append(b, httpDate()...)
	if fc.req.close {
		b = append(b, "\r\nConnection: close"...)
	}
	b = append(b, "\r\nX-Request-Id: "...)
	b = append(b, fc.id[:fc.idLen]...)
	b = append(b, "\r\n\r\n"...)
	if !fc.req.head {
		b = append(b, body...)
	}
	return b
}

func appendField(b, name, value []byte) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

// flushOut writes out to the client when it holds anything.
func (fc *fastConn) flushOut(out []byte) ([]byte, error) {
	if len(out) == 0 {
		return out, nil
	}
	_, err := fc.c.Write(out)
	return out[:0], err
}

// fill makes ur hold at least one byte, flushing out to the client first
// when that means waiting: streamed data reaches the client as it comes.
func (fc *fastConn) fill(ur *bufio.Reader, out []byte) ([]byte, error) {
	if ur.Buffered() > 0 {
		return out, nil
	}
	out, err := fc.flushOut(out)
	if err != nil {
		return out, err
	}
	_, err = ur.Peek(1)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return out, err
}

// relay moves n buffered bytes of ur to the client through out.
func (fc *fastConn) relay(ur *bufio.Reader, out []byte, n int) ([]byte, error) {
	b, _ := ur.Peek(n)
	var err error
	if len(out)+n > cap(out) {
		if out, err = fc.flushOut(out); err != nil {
			return out, err
		}
		if n > cap(out) {
			_, err = fc.c.Write(b)
			ur.Discard(n)
			return out, err
		}
	}
	out = append(out, b...)
	ur.Discard(n)
	return out, nil
}

// copyLength relays a body of n bytes.
func (fc *fastConn) copyLength(ur *bufio.Reader, out []byte, n int64) ([]byte, int64, error) {
	var written int64
	for written < n {
		var err error
		if out, err = fc.fill(ur, out); err != nil {
			return out, written, err
		}
		k := int(min(int64(ur.Buffered()), n-written))
		if out, err = fc.relay(ur, out, k); err != nil {
			return out, written, err
		}
		written += int64(k)
	}
	return out, written, nil
}

// copyChunked relays a chunked body as it is, chunk extensions and
// trailers included, checking its framing.
func (fc *fastConn) copyChunked(ur *bufio.Reader, out []byte) ([]byte, int64, error) {
	var written int64
	errFraming := errors.New("malformed chunked body from upstream")
	line := func() ([]byte, error) {
		var err error
		if out, err = fc.fill(ur, out); err != nil {
			return nil, err
		}
		if b, _ := ur.Peek(ur.Buffered()); bytes.IndexByte(b, '\n') < 0 {
			if out, err = fc.flushOut(out); err != nil {
				return nil, err
			}
		}
		l, err := ur.ReadSlice('\n')
		if err != nil {
			return nil, err
		}
		if len(l) < 2 || l[len(l)-2] != '\r' {
			return nil, errFraming
		}
		return l, nil
	}
	for {
		l, err := line()
		if err != nil {
			return out, written, err
		}
		size, ok := parseChunkSize(l)
		if !ok {
			return out, written, errFraming
		}
		out = append(out, l...)
		if size == 0 {
			for { // trailers, then the blank line
				l, err := line()
				if err != nil {
					return out, written, err
				}
				out = append(out, l...)
				if len(l) == 2 {
					return out, written, nil
				}
			}
		}
		for left := size; left > 0; {
			if out, err = fc.fill(ur, out); err != nil {
				return out, written, err
			}
			k := int(min(int64(ur.Buffered()), left))
			if out, err = fc.relay(ur, out, k); err != nil {
				return out, written, err
			}
			left -= int64(k)
			written += int64(k)
		}
		if out, err = fc.fill(ur, out); err != nil {
			return out, written, err
		}
		if crlf, err := ur.Peek(2); err != nil || crlf[0] != '\r' || crlf[1] != '\n' {
			return out, written, errFraming
		}
		ur.Discard(2)
		out = append(out, "\r\n"...)
	}
}

// copyRechunked relays a body that ends when the upstream closes, as
// chunks.
func (fc *fastConn) copyRechunked(ur *bufio.Reader, out []byte) ([]byte, int64, error) {
	var written int64
	for {
		var err error
		if out, err = fc.fill(ur, out); err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return append(out, "0\r\n\r\n"...), written, nil
			}
			return out, written, err
		}
		k := ur.Buffered()
		out = strconv.AppendInt(out, int64(k), 16)
		out = append(out, "\r\n"...)
		if out, err = fc.relay(ur, out, k); err != nil {
			return out, written, err
		}
		out = append(out, "\r\n"...)
		written += int64(k)
	}
}

// pathOnly is a request target without its query, for the access log.
func pathOnly(target []byte) string {
	for i, c := range target {
		if c == '?' {
			return string(target[:i])
		}
	}
	return string(target)
}

// httpDate is the current time in the HTTP date format, formatted once a
// second.
func httpDate() []byte {
	now := time.Now().Unix()
	if d := dateCache.Load(); d != nil && d.sec == now {
		return d.text
	}
	d := &cachedDate{sec: now, text: []byte(time.Unix(now, 0).UTC().Format(http.TimeFormat))}
	dateCache.Store(d)
	return d.text
}

type cachedDate struct {
	sec  int64
	text []byte
}

var dateCache atomic.Pointer[cachedDate]

// trackFast adds (or removes) a fast connection to the set Shutdown
// closes; adding fails once the proxy is closing.
func (p *Proxy) trackFast(fc *fastConn, add bool) bool {
	p.fastMu.Lock()
	defer p.fastMu.Unlock()
	if !add {
		delete(p.fastConns, fc)
		return true
	}
	if p.closing.Load() {
		return false
	}
	p.fastConns[fc] = struct{}{}
	return true
}

func (p *Proxy) isClosing() bool { return p.closing.Load() }

// shutdownFast stops the fast path: listeners close, idle connections
// close at once, active ones when their request is done or when ctx ends.
func (p *Proxy) shutdownFast(ctx <-chan struct{}) {
	p.closing.Store(true)
	p.srvMu.Lock()
	for _, ln := range p.fastLns {
		ln.Close()
	}
	p.fastLns = nil
	p.srvMu.Unlock()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		p.fastMu.Lock()
		for fc := range p.fastConns {
			if fc.state.CompareAndSwap(connIdle, connClosed) {
				fc.c.Close()
			}
		}
		n := len(p.fastConns)
		p.fastMu.Unlock()
		if n == 0 {
			return
		}
		select {
		case <-ctx:
			p.fastMu.Lock()
			for fc := range p.fastConns {
				fc.c.Close()
			}
			p.fastMu.Unlock()
			return
		case <-tick.C:
		}
	}
}
