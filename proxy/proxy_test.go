package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// testProxy is a Proxy served on a loopback listener.
type testProxy struct {
	*Proxy
	addr   string // host:port of the listener
	client *http.Client
}

func startProxy(t testing.TB, log zerolog.Logger, opts Options) *testProxy {
	t.Helper()
	p := New(log, opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(ln) }()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &testProxy{Proxy: p, addr: ln.Addr().String(), client: &http.Client{Transport: tr}}
}

// bothPaths runs test on the fast path and on the net/http path alone,
// which must behave alike.
func bothPaths(t *testing.T, test func(t *testing.T, opts Options)) {
	t.Run("fast", func(t *testing.T) { test(t, Options{}) })
	t.Run("net-http", func(t *testing.T) { test(t, Options{netHTTPOnly: true}) })
}

// backend starts an httptest server and returns its host:port.
func backend(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// closedAddr is a loopback address that was just closed: it refuses
// connections.
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// named is a backend answering its name.
func named(t testing.TB, name string) string {
	t.Helper()
	return backend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })
}

type result struct {
	status int
	body   string
	header http.Header
}

func (tp *testProxy) do(t testing.TB, method, host, path string, body io.Reader, hdr map[string]string) result {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+tp.addr+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := tp.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s (Host %s): %v", method, path, host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return result{resp.StatusCode, string(b), resp.Header}
}

func (tp *testProxy) get(t testing.TB, host string) result {
	t.Helper()
	return tp.do(t, http.MethodGet, host, "/", nil, nil)
}

// lockedBuffer collects log lines written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestRoutesByHost(t *testing.T) {
	tp := startProxy(t, zerolog.Nop(), Options{})
	tp.SetRoute("alpha", []string{"alpha.example.com", "www.alpha.test"}, []string{named(t, "alpha")})
	tp.SetRoute("beta", []string{"Beta.Example.com"}, []string{named(t, "beta")})

	for _, tc := range []struct{ host, want string }{
		{"alpha.example.com", "alpha"},
		{"alpha.example.com:8080", "alpha"},
		{"ALPHA.example.COM", "alpha"},
		{"alpha.example.com.", "alpha"},
		{"www.alpha.test:80", "alpha"},
		{"beta.example.com", "beta"},
		{"beta.example.com:443", "beta"},
	} {
		t.Run(tc.host, func(t *testing.T) {
			res := tp.get(t, tc.host)
			if res.status != http.StatusOK || res.body != tc.want {
				t.Fatalf("got %d %q, want 200 %q", res.status, res.body, tc.want)
			}
		})
	}
}

func TestErrorPages(t *testing.T) { bothPaths(t, testErrorPages) }

func testErrorPages(t *testing.T, opts Options) {
	tp := startProxy(t, zerolog.Nop(), opts)

	closed := closedAddr(t)
	tp.SetRoute("down", []string{"down.example.com"}, []string{closed})
	tp.SetRoute("idle", []string{"idle.example.com"}, nil)

	for _, tc := range []struct {
		name, host string
		status     int
		text       string
	}{
		{"unknown host", "nobody.example.com", http.StatusNotFound, "No app is configured for this host"},
		{"no host", "", http.StatusNotFound, "No app is configured for this host"},
		{"upstream refuses", "down.example.com", http.StatusBadGateway, "502 Bad Gateway"},
		{"no upstreams", "idle.example.com", http.StatusServiceUnavailable, "503 Service Unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := tp.get(t, tc.host)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d", res.status, tc.status)
			}
			if !strings.Contains(res.body, tc.text) {
				t.Errorf("body %q lacks %q", res.body, tc.text)
			}
			if ct := res.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if id := res.header.Get("X-Request-Id"); !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(id) {
				t.Errorf("X-Request-Id %q", id)
			}
		})
	}
}

func TestUpstreamErrorIsLogged(t *testing.T) {
	var logs lockedBuffer
	tp := startProxy(t, zerolog.New(&logs), Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	tp.SetRoute("down", []string{"down.example.com"}, []string{closed})
	if res := tp.do(t, "GET", "down.example.com", "/", nil, map[string]string{"Authorization": "Bearer secret"}); res.status != http.StatusBadGateway {
		t.Fatalf("status %d", res.status)
	}
	var found bool
	for _, l := range logs.lines(t) {
		if l["level"] == "warn" && l["app"] == "down" && l["upstream"] == closed && l["error"] != nil {
			found = true
		}
	}
	if !found {
		t.Errorf("no warn line with app, upstream and error in %s", logs.String())
	}
	if strings.Contains(logs.String(), "secret") {
		t.Errorf("log holds a header value: %s", logs.String())
	}
}

func TestRoundRobin(t *testing.T) {
	tp := startProxy(t, zerolog.Nop(), Options{})
	tp.SetRoute("app", []string{"app.example.com"}, []string{named(t, "one"), named(t, "two")})

	counts := map[string]int{}
	var prev string
	for i := 0; i < 10; i++ {
		res := tp.get(t, "app.example.com")
		if res.status != http.StatusOK {
			t.Fatalf("status %d", res.status)
		}
		if res.body == prev {
			t.Errorf("request %d went to %s twice in a row", i, res.body)
		}
		prev = res.body
		counts[res.body]++
	}
	if counts["one"] != 5 || counts["two"] != 5 {
		t.Errorf("counts %v, want 5 each", counts)
	}
}

func TestSetRouteReplacesHosts(t *testing.T) {
	tp := startProxy(t, zerolog.Nop(), Options{})
	tp.SetRoute("app", []string{"old.example.com", "kept.example.com"}, []string{named(t, "v1")})
	if res := tp.get(t, "old.example.com"); res.body != "v1" {
		t.Fatalf("before: %d %q", res.status, res.body)
	}

	tp.SetRoute("app", []string{"new.example.com", "kept.example.com"}, []string{named(t, "v2")})
	if res := tp.get(t, "old.example.com"); res.status != http.StatusNotFound {
		t.Errorf("old host: %d %q, want 404", res.status, res.body)
	}
	for _, h := range []string{"new.example.com", "kept.example.com"} {
		if res := tp.get(t, h); res.status != http.StatusOK || res.body != "v2" {
			t.Errorf("%s: %d %q, want v2", h, res.status, res.body)
		}
	}
}

func TestRemoveRoute(t *testing.T) {
	tp := startProxy(t, zerolog.Nop(), Options{})
	tp.SetRoute("app", []string{"app.example.com", "*.app.test"}, []string{named(t, "app")})
	tp.SetRoute("other", []string{"other.example.com"}, []string{named(t, "other")})

	tp.RemoveRoute("app")
	tp.RemoveRoute("never-existed")
	for _, h := range []string{"app.example.com", "x.app.test"} {
		if res := tp.get(t, h); res.status != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", h, res.status)
		}
		if _, ok := tp.Lookup(h); ok {
			t.Errorf("Lookup(%s) still finds a route", h)
		}
	}
	if res := tp.get(t, "other.example.com"); res.body != "other" {
		t.Errorf("other app: %d %q", res.status, res.body)
	}
}

// A host claimed by a second app moves to it, and removing the first app
// does not take the host away from the second.
func TestHostMovesBetweenApps(t *testing.T) {
	tp := startProxy(t, zerolog.Nop(), Options{})
	tp.SetRoute("first", []string{"shared.example.com", "first.example.com"}, []string{named(t, "first")})
	tp.SetRoute("second", []string{"shared.example.com"}, []string{named(t, "second")})
	if res := tp.get(t, "shared.example.com"); res.body != "second" {
		t.Fatalf("shared: %q, want second", res.body)
	}
	tp.RemoveRoute("first")
	if res := tp.get(t, "shared.example.com"); res.body != "second" {
		t.Errorf("after removing first: %d %q, want second", res.status, res.body)
	}
	if res := tp.get(t, "first.example.com"); res.status != http.StatusNotFound {
		t.Errorf("first.example.com: %d, want 404", res.status)
	}
}

func TestWildcardHosts(t *testing.T) {
	tp := startProxy(t, zerolog.Nop(), Options{})
	tp.SetRoute("wild", []string{"*.example.com"}, []string{named(t, "wild")})
	tp.SetRoute("eu", []string{"*.EU.example.com"}, []string{named(t, "eu")})
	tp.SetRoute("exact", []string{"exact.example.com", "a.eu.example.com"}, []string{named(t, "exact")})

	for _, tc := range []struct {
		host string
		want string // "" for 404
	}{
		{"x.example.com", "wild"},
		{"x.example.com:8080", "wild"},
		{"a.b.c.example.com", "wild"},
		{"eu.example.com", "wild"},
		{"x.eu.example.com", "eu"},
		{"a.b.eu.example.com", "eu"},
		{"exact.example.com", "exact"},
		{"a.eu.example.com", "exact"},
		{"example.com", ""},
		{"otherexample.com", ""},
		{"x.example.org", ""},
	} {
		t.Run(tc.host, func(t *testing.T) {
			res := tp.get(t, tc.host)
			if tc.want == "" {
				if res.status != http.StatusNotFound {
					t.Fatalf("got %d %q, want 404", res.status, res.body)
				}
				return
			}
			if res.status != http.StatusOK || res.body != tc.want {
				t.Fatalf("got %d %q, want %q", res.status, res.body, tc.want)
			}
		})
	}
}

func TestForwardedHeaders(t *testing.T) { bothPaths(t, testForwardedHeaders) }

func testForwardedHeaders(t *testing.T, opts Options) {
	seen := make(chan http.Header, 1)
	hosts := make(chan string, 1)
	addr := backend(t, func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		hosts <- r.Host
		w.Header().Set("X-Request-Id", "set-by-upstream")
		io.WriteString(w, "ok")
	})
	tp := startProxy(t, zerolog.Nop(), opts)
	tp.SetRoute("app", []string{"app.example.com"}, []string{addr})
	_, proxyPort, _ := net.SplitHostPort(tp.addr)

	t.Run("client id kept", func(t *testing.T) {
		res := tp.do(t, "GET", "app.example.com:"+proxyPort, "/x?y=1", nil, map[string]string{
			"X-Forwarded-For":   "203.0.113.9",
			"X-Forwarded-Proto": "https", // spoofed: the proxy says what it saw
			"X-Forwarded-Host":  "evil.example",
			"X-Forwarded-Port":  "9999",
			"X-Request-Id":      "abc-123",
		})
		h, host := <-seen, <-hosts
		if res.status != http.StatusOK {
			t.Fatalf("status %d", res.status)
		}
		want := map[string]string{
			"X-Forwarded-For":   "203.0.113.9, 127.0.0.1",
			"X-Forwarded-Proto": "http",
			"X-Forwarded-Host":  "app.example.com:" + proxyPort,
			"X-Forwarded-Port":  proxyPort,
			"X-Request-Id":      "abc-123",
		}
		for k, v := range want {
			if got := h.Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("upstream saw %s %q, want %q", k, got, v)
			}
		}
		if host != "app.example.com:"+proxyPort {
			t.Errorf("upstream saw Host %q", host)
		}
		if got := res.header.Values("X-Request-Id"); len(got) != 1 || got[0] != "abc-123" {
			t.Errorf("response X-Request-Id %q, want abc-123", got)
		}
	})

	for name, id := range map[string]string{"no client id": "", "invalid client id": "has spaces <b>"} {
		t.Run(name, func(t *testing.T) {
			hdr := map[string]string{}
			if id != "" {
				hdr["X-Request-Id"] = id
			}
			res := tp.do(t, "GET", "app.example.com", "/", nil, hdr)
			h := <-seen
			<-hosts
			got := h.Get("X-Request-Id")
			if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(got) {
				t.Fatalf("upstream saw X-Request-Id %q, want 32 hex digits", got)
			}
			if r := res.header.Values("X-Request-Id"); len(r) != 1 || r[0] != got {
				t.Errorf("response X-Request-Id %q, want %q", r, got)
			}
			if h.Get("X-Forwarded-For") != "127.0.0.1" {
				t.Errorf("X-Forwarded-For %q", h.Get("X-Forwarded-For"))
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	var reached atomic.Int32
	addr := backend(t, func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		fmt.Fprint(w, len(b))
	})
	tp := startProxy(t, zerolog.Nop(), Options{MaxBodyBytes: 1024})
	tp.SetRoute("app", []string{"app.example.com"}, []string{addr})

	post := func(n int, chunked bool) result {
		t.Helper()
		req, err := http.NewRequest("POST", "http://"+tp.addr+"/", bytes.NewReader(make([]byte, n)))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = "app.example.com"
		if chunked {
			req.ContentLength = -1
			req.Body = io.NopCloser(bytes.NewReader(make([]byte, n)))
		}
		resp, err := tp.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return result{resp.StatusCode, string(b), resp.Header}
	}

	if res := post(1024, false); res.status != http.StatusOK || res.body != "1024" {
		t.Errorf("at the limit: %d %q", res.status, res.body)
	}
	if res := post(1000, true); res.status != http.StatusOK || res.body != "1000" {
		t.Errorf("chunked under the limit: %d %q", res.status, res.body)
	}
	before := reached.Load()
	if res := post(2048, false); res.status != http.StatusRequestEntityTooLarge || !strings.Contains(res.body, "too large") {
		t.Errorf("Content-Length over the limit: %d %q, want 413", res.status, res.body)
	}
	if reached.Load() != before {
		t.Errorf("a body announced too large reached the upstream")
	}
	if res := post(64<<10, true); res.status != http.StatusRequestEntityTooLarge {
		t.Errorf("chunked over the limit: %d %q, want 413", res.status, res.body)
	}
}

// streamBackend writes a first chunk, then holds the response open until
// release is closed, so the first chunk can only reach the client if the
// proxy flushed it.
func streamBackend(t *testing.T, contentType, first, second string) (addr string, release func()) {
	t.Helper()
	ch := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(ch) }) }
	defer t.Cleanup(release) // registered last, so it runs before the backend closes
	addr = backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		io.WriteString(w, first)
		w.(http.Flusher).Flush()
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, second)
	})
	return addr, release
}

func TestStreamingIsFlushed(t *testing.T) {
	for _, tc := range []struct{ name, contentType, first, second string }{
		{"server-sent events", "text/event-stream", "data: one\n\n", "data: two\n\n"},
		{"chunked body", "application/octet-stream", "first line\n", "second line\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, release := streamBackend(t, tc.contentType, tc.first, tc.second)
			tp := startProxy(t, zerolog.Nop(), Options{})
			tp.SetRoute("app", []string{"app.example.com"}, []string{addr})

			req, _ := http.NewRequest("GET", "http://"+tp.addr+"/events", nil)
			req.Host = "app.example.com"
			resp, err := tp.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}

			got := make(chan string, 1)
			go func() {
				buf := make([]byte, len(tc.first))
				_, err := io.ReadFull(resp.Body, buf)
				if err != nil {
					got <- "error: " + err.Error()
					return
				}
				got <- string(buf)
			}()
			// The backend still holds the response open: the first chunk
			// arrives only if the proxy flushed it.
			select {
			case s := <-got:
				if s != tc.first {
					t.Fatalf("first chunk %q, want %q", s, tc.first)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("first chunk did not arrive while the upstream held the response open")
			}
			release()
			rest, err := io.ReadAll(resp.Body)
			if err != nil || string(rest) != tc.second {
				t.Fatalf("rest %q, %v; want %q", rest, err, tc.second)
			}
		})
	}
}

func TestWebSocketUpgrade(t *testing.T) {
	addr := backend(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "upgrade required", http.StatusUpgradeRequired)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		// Echo line by line until the client closes.
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString("echo: " + line)
			brw.Flush()
		}
	})
	var logs lockedBuffer
	tp := startProxy(t, zerolog.New(&logs), Options{AccessLog: true})
	tp.SetRoute("app", []string{"app.example.com"}, []string{addr})

	conn, err := net.Dial("tcp", tp.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: app.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		t.Fatalf("handshake: %d %v", resp.StatusCode, resp.Header)
	}
	for _, msg := range []string{"hello", "second message"} {
		io.WriteString(conn, msg+"\n")
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line != "echo: "+msg+"\n" {
			t.Errorf("got %q", line)
		}
	}
	conn.Close()

	// The access log records the upgrade once the connection ends.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var status float64
		for _, l := range logs.lines(t) {
			if l["message"] == "request" && l["path"] == "/ws" {
				status, _ = l["status"].(float64)
			}
		}
		if status == http.StatusSwitchingProtocols {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access log line with status 101: %s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSlowRequestCompletes(t *testing.T) {
	addr := backend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "slow but fine")
	})
	tp := startProxy(t, zerolog.Nop(), Options{})
	tp.SetRoute("app", []string{"app.example.com"}, []string{addr})
	if res := tp.get(t, "app.example.com"); res.status != http.StatusOK || res.body != "slow but fine" {
		t.Errorf("got %d %q", res.status, res.body)
	}
}

func TestResponseHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	addr := backend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(release) }) // runs before the backend closes
	tp := startProxy(t, zerolog.Nop(), Options{ResponseHeaderTimeout: 200 * time.Millisecond})
	tp.SetRoute("app", []string{"app.example.com"}, []string{addr})
	res := tp.get(t, "app.example.com")
	if res.status != http.StatusGatewayTimeout || !strings.Contains(res.body, "took too long") {
		t.Errorf("got %d %q, want 504", res.status, res.body)
	}
}

func TestAccessLog(t *testing.T) {
	var logs lockedBuffer
	tp := startProxy(t, zerolog.New(&logs), Options{AccessLog: true})
	tp.SetRoute("app", []string{"app.example.com"}, []string{named(t, "hello")})
	tp.do(t, "GET", "app.example.com", "/path?token=secret", nil, nil)
	tp.get(t, "unknown.example.com")

	lines := logs.lines(t)
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want 2: %s", len(lines), logs.String())
	}
	first := lines[0]
	want := map[string]any{
		"level": "info", "method": "GET", "host": "app.example.com", "path": "/path",
		"status": float64(200), "bytes": float64(5), "app": "app",
	}
	for k, v := range want {
		if first[k] != v {
			t.Errorf("%s = %v, want %v", k, first[k], v)
		}
	}
	if _, ok := first["duration"]; !ok {
		t.Error("no duration")
	}
	if lines[1]["status"] != float64(404) || lines[1]["app"] != "" {
		t.Errorf("unknown host line: %v", lines[1])
	}
	if strings.Contains(logs.String(), "secret") {
		t.Error("the access log holds the query")
	}
}

// Eight clients send requests while the route flips between two backends:
// every request must succeed, served by one backend or the other.
func TestConcurrentSetRoute(t *testing.T) {
	one, two := named(t, "one"), named(t, "two")
	tp := startProxy(t, zerolog.Nop(), Options{})
	tp.SetRoute("app", []string{"app.example.com"}, []string{one})

	stop := make(chan struct{})
	var swapper sync.WaitGroup
	swapper.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			up := one
			if i%2 == 1 {
				up = two
			}
			tp.SetRoute("app", []string{"app.example.com", "alias" + strconv.Itoa(i%3) + ".example.com"}, []string{up})
			time.Sleep(100 * time.Microsecond)
		}
	})

	const clients, perClient = 8, 200
	var failed, ok atomic.Int64
	var served sync.Map
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for range perClient {
				req, _ := http.NewRequest("GET", "http://"+tp.addr+"/", nil)
				req.Host = "app.example.com"
				resp, err := tp.client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || (string(b) != "one" && string(b) != "two") {
					failed.Add(1)
					continue
				}
				served.Store(string(b), true)
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	close(stop)
	swapper.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed", failed.Load(), clients*perClient)
	}
	t.Logf("%d requests ok", ok.Load())
}

func TestShutdown(t *testing.T) {
	p := New(zerolog.Nop(), Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(ln) }()
	// Serve has registered its server once a request is answered.
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 100 {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve returned %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := p.Serve(ln2); err != nil {
		t.Errorf("Serve after Shutdown: %v", err)
	}
}

func TestLookupDoesNotAllocate(t *testing.T) {
	p := New(zerolog.Nop(), Options{})
	for i := range 1000 {
		p.SetRoute("app"+strconv.Itoa(i), []string{"app" + strconv.Itoa(i) + ".example.com"}, []string{"127.0.0.1:1"})
	}
	p.SetRoute("wild", []string{"*.wild.test"}, []string{"127.0.0.1:1"})
	for _, host := range []string{"app500.example.com:8080", "a.b.wild.test", "unknown.example.com"} {
		if n := testing.AllocsPerRun(100, func() { p.table.Load().lookup(normalizeHost(host)) }); n != 0 {
			t.Errorf("lookup(%s): %v allocations", host, n)
		}
	}
}

func TestNormalizeHost(t *testing.T) {
	for in, want := range map[string]string{
		"example.com":      "example.com",
		"Example.COM:8080": "example.com",
		"example.com.":     "example.com",
		"[::1]:8080":       "[::1]",
		"[::1]":            "[::1]",
		"127.0.0.1:80":     "127.0.0.1",
		"":                 "",
	} {
		if got := normalizeHost(in); got != want {
			t.Errorf("normalizeHost(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{
		"*.Example.com": "*.example.com",
		" app.test ":    "app.test",
		"*":             "",
		"a.*.test":      "",
		"":              "",
	} {
		if got := normalizeRouteHost(in); got != want {
			t.Errorf("normalizeRouteHost(%q) = %q, want %q", in, got, want)
		}
	}
}

// benchClient makes parallel GETs with Host set, reading whole bodies.
func benchLoad(b *testing.B, url, host string) {
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", url, nil)
			req.Host = host
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

var benchBody = strings.Repeat("x", 1024)

func benchBackend(b *testing.B) string {
	return backend(b, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, benchBody)
	})
}

func BenchmarkProxy(b *testing.B) {
	addr := benchBackend(b)
	tp := startProxy(b, zerolog.Nop(), Options{})
	tp.SetRoute("app", []string{"app.example.com"}, []string{addr})
	benchLoad(b, "http://"+tp.addr+"/", "app.example.com")
}

func BenchmarkDirect(b *testing.B) {
	addr := benchBackend(b)
	benchLoad(b, "http://"+addr+"/", "app.example.com")
}
