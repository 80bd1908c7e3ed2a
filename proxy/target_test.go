package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// gate is a backend whose requests block until released: started gets one
// value per request that reached the handler.
type gate struct {
	addr    string
	started chan struct{}
	release func()
}

func newGate(t *testing.T, name string) *gate {
	t.Helper()
	ch := make(chan struct{})
	var once sync.Once
	g := &gate{started: make(chan struct{}, 16), release: func() { once.Do(func() { close(ch) }) }}
	g.addr = backend(t, func(w http.ResponseWriter, r *http.Request) {
		g.started <- struct{}{}
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, name)
	})
	t.Cleanup(g.release) // registered after the backend, so it runs before it closes
	return g
}

func (g *gate) waitStarted(t *testing.T) {
	t.Helper()
	select {
	case <-g.started:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach the upstream")
	}
}

// getAsync sends a GET through the proxy and delivers the result.
func (tp *testProxy) getAsync(host string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest("GET", "http://"+tp.addr+"/", nil)
		req.Host = host
		resp, err := tp.client.Do(req)
		if err != nil {
			ch <- result{status: -1, body: err.Error()}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			ch <- result{status: -1, body: err.Error()}
			return
		}
		ch <- result{resp.StatusCode, string(b), resp.Header}
	}()
	return ch
}

// drainAsync runs Drain in the background; the channel closes when it
// returns.
func (tp *testProxy) drainAsync(ctx context.Context, ups []string, timeout time.Duration) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tp.Drain(ctx, ups, timeout)
	}()
	return done
}

func (tp *testProxy) target(addr string) *target {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.targets[addr]
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: still running after 10s", what)
	}
}

// A request to the old upstream that started before the swap completes;
// Drain returns only once it has; new requests go to the new upstream
// meanwhile.
func TestDrainWaitsForInFlight(t *testing.T) {
	old := newGate(t, "old")
	next := named(t, "new")
	tp := startProxy(t, zerolog.Nop(), Options{})
	tp.SetRoute("app", []string{"app.example.com"}, []string{old.addr})

	slow := tp.getAsync("app.example.com")
	old.waitStarted(t)
	if n := tp.InFlight(old.addr); n != 1 {
		t.Fatalf("InFlight(old) = %d, want 1", n)
	}

	tp.SetRoute("app", []string{"app.example.com"}, []string{next})
	drained := tp.drainAsync(context.Background(), []string{old.addr}, time.Minute)
	for i := range 20 {
		if res := tp.get(t, "app.example.com"); res.status != http.StatusOK || res.body != "new" {
			t.Fatalf("request %d after the swap: %d %q, want new", i, res.status, res.body)
		}
	}
	select {
	case <-drained:
		t.Fatal("Drain returned while a request to the upstream was in flight")
	case <-time.After(200 * time.Millisecond):
	}
	if n := tp.InFlight(old.addr); n != 1 {
		t.Errorf("InFlight(old) during the drain = %d, want 1", n)
	}

	old.release()
	if res := <-slow; res.status != http.StatusOK || res.body != "old" {
		t.Errorf("slow request: %d %q, want 200 old", res.status, res.body)
	}
	waitClosed(t, drained, "Drain")
	if tp.target(old.addr) != nil {
		t.Error("the drained upstream is still known")
	}
	if n := tp.InFlight(next); n != 0 {
		t.Errorf("InFlight(new) = %d, want 0", n)
	}
}

// A request longer than the timeout does not hold Drain past it: its
// upstream connection is closed and the client gets 504. Drain also ends
// with its context.
func TestDrainTimeout(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		old := newGate(t, "old")
		tp := startProxy(t, zerolog.Nop(), Options{})
		tp.SetRoute("app", []string{"app.example.com"}, []string{old.addr})
		slow := tp.getAsync("app.example.com")
		old.waitStarted(t)
		tp.SetRoute("app", []string{"app.example.com"}, []string{named(t, "new")})

		const timeout = 300 * time.Millisecond
		start := time.Now()
		tp.Drain(context.Background(), []string{old.addr}, timeout)
		if d := time.Since(start); d < timeout-50*time.Millisecond || d > 5*time.Second {
			t.Errorf("Drain returned after %v, want about %v", d, timeout)
		}
		if res := <-slow; res.status != http.StatusGatewayTimeout {
			t.Errorf("request past the timeout: %d %q, want 504", res.status, res.body)
		}
		old.release()
	})
	t.Run("context", func(t *testing.T) {
		old := newGate(t, "old")
		tp := startProxy(t, zerolog.Nop(), Options{})
		tp.SetRoute("app", []string{"app.example.com"}, []string{old.addr})
		slow := tp.getAsync("app.example.com")
		old.waitStarted(t)
		tp.RemoveRoute("app")

		ctx, cancel := context.WithCancel(context.Background())
		drained := tp.drainAsync(ctx, []string{old.addr}, time.Hour)
		time.Sleep(50 * time.Millisecond)
		cancel()
		waitClosed(t, drained, "Drain after its context ended")
		old.release()
		<-slow
	})
}

// wsServer is an upstream that upgrades every request and echoes lines,
// prefixed with its name, until the connection closes.
type wsServer struct {
	addr string
	open atomic.Int32 // upgraded connections the handler still serves
}

func newWSServer(t *testing.T, name string) *wsServer {
	t.Helper()
	s := &wsServer{}
	s.addr = backend(t, func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			io.WriteString(w, name)
			return
		}
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		s.open.Add(1)
		defer s.open.Add(-1)
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		for {
			line, err := brw.ReadString('\n')
			if err != nil {
				return
			}
			brw.WriteString(name + ": " + line)
			brw.Flush()
		}
	})
	return s
}

// ws is a client's upgraded connection through the proxy.
type ws struct {
	conn net.Conn
	br   *bufio.Reader
}

func (tp *testProxy) dialWS(t *testing.T, host string) *ws {
	t.Helper()
	conn, err := net.Dial("tcp", tp.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: "+host+"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %d", resp.StatusCode)
	}
	return &ws{conn, br}
}

// echo sends msg and returns the answer line.
func (c *ws) echo(msg string) (string, error) {
	if _, err := io.WriteString(c.conn, msg+"\n"); err != nil {
		return "", err
	}
	return c.br.ReadString('\n')
}

// An upgraded connection to the old upstream does not hold the drain (it
// is not a request in flight) and is closed, both ends, when the drain
// ends; one opened after the swap, on the new upstream, stays open.
func TestDrainClosesWebSockets(t *testing.T) {
	old, next := newWSServer(t, "old"), newWSServer(t, "new")
	tp := startProxy(t, zerolog.Nop(), Options{})
	tp.SetRoute("app", []string{"app.example.com"}, []string{old.addr})

	before := tp.dialWS(t, "app.example.com")
	if line, err := before.echo("hi"); err != nil || line != "old: hi\n" {
		t.Fatalf("old socket: %q, %v", line, err)
	}
	if n := tp.InFlight(old.addr); n != 0 {
		t.Errorf("InFlight(old) with an open WebSocket = %d, want 0", n)
	}

	tp.SetRoute("app", []string{"app.example.com"}, []string{next.addr})
	after := tp.dialWS(t, "app.example.com")
	if line, err := after.echo("hi"); err != nil || line != "new: hi\n" {
		t.Fatalf("new socket: %q, %v", line, err)
	}
	if line, err := before.echo("still"); err != nil || line != "old: still\n" {
		t.Fatalf("old socket before the drain: %q, %v", line, err)
	}

	if n, m := tp.target(old.addr).upgrades(), tp.target(next.addr).upgrades(); n != 1 || m != 1 {
		t.Errorf("upgraded connections: old %d, new %d; want 1 and 1", n, m)
	}
	start := time.Now()
	tp.Drain(context.Background(), []string{old.addr}, 30*time.Second)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Drain took %v: the WebSocket held it", d)
	}
	if line, err := before.echo("gone?"); err == nil {
		t.Errorf("old socket still answers after the drain: %q", line)
	}
	deadline := time.Now().Add(10 * time.Second)
	for old.open.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the old upstream's end of the WebSocket is still open")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, msg := range []string{"one", "two"} {
		if line, err := after.echo(msg); err != nil || line != "new: "+msg+"\n" {
			t.Errorf("new socket after the drain: %q, %v", line, err)
		}
	}
	if next.open.Load() != 1 {
		t.Errorf("new upstream serves %d sockets, want 1", next.open.Load())
	}
}

// Drain leaves alone an address still routed (by the same app or another),
// and an address routed again while it drains gets fresh state.
func TestDrainSkipsRoutedUpstream(t *testing.T) {
	a, b, c := newWSServer(t, "a"), newWSServer(t, "b"), named(t, "c")
	tp := startProxy(t, zerolog.Nop(), Options{})
	tp.SetRoute("app", []string{"app.example.com"}, []string{a.addr, b.addr})
	tp.SetRoute("other", []string{"other.example.com"}, []string{c})

	// One socket on each of a and b (round-robin).
	socks := map[string]*ws{}
	for range 2 {
		s := tp.dialWS(t, "app.example.com")
		line, err := s.echo("x")
		if err != nil {
			t.Fatal(err)
		}
		socks[strings.TrimSuffix(line, ": x\n")] = s
	}
	if socks["a"] == nil || socks["b"] == nil {
		t.Fatalf("sockets %v, want one on a and one on b", socks)
	}

	// b stays, a goes; c moves from "other" to "app" and stays routed.
	tp.SetRoute("app", []string{"app.example.com"}, []string{b.addr, c})
	tb, tc := tp.target(b.addr), tp.target(c)
	tp.Drain(context.Background(), []string{a.addr, b.addr, c, "127.0.0.1:1"}, 5*time.Second)

	if tp.target(a.addr) != nil {
		t.Error("a is still known after its drain")
	}
	if tp.target(b.addr) != tb || tb.draining.Load() || tp.target(c) != tc || tc.draining.Load() {
		t.Error("a routed upstream was drained")
	}
	if line, err := socks["b"].echo("y"); err != nil || line != "b: y\n" {
		t.Errorf("socket on the routed upstream: %q, %v", line, err)
	}
	if _, err := socks["a"].echo("y"); err == nil {
		t.Error("socket on the drained upstream still open")
	}
	for range 4 {
		if res := tp.get(t, "app.example.com"); res.status != http.StatusOK || (res.body != "b" && res.body != "c") {
			t.Errorf("after the drain: %d %q", res.status, res.body)
		}
	}
	if res := tp.get(t, "other.example.com"); res.status != http.StatusOK || res.body != "c" {
		t.Errorf("other app: %d %q", res.status, res.body)
	}

	t.Run("routed again while draining", func(t *testing.T) {
		g := newGate(t, "g")
		tp.SetRoute("app", []string{"app.example.com"}, []string{g.addr})
		slow := tp.getAsync("app.example.com")
		g.waitStarted(t)
		tp.SetRoute("app", []string{"app.example.com"}, []string{c})
		old := tp.target(g.addr)
		drained := tp.drainAsync(context.Background(), []string{g.addr}, time.Minute)
		for !old.draining.Load() {
			time.Sleep(time.Millisecond)
		}
		// A new container got the same address.
		tp.SetRoute("app", []string{"app.example.com"}, []string{g.addr})
		fresh := tp.target(g.addr)
		if fresh == old || fresh.draining.Load() {
			t.Fatal("the address routed again kept its draining state")
		}
		again := tp.getAsync("app.example.com")
		g.waitStarted(t)
		if fresh.inflight.Load() != 1 || old.inflight.Load() != 1 {
			t.Errorf("in flight: fresh %d, old %d; want 1 and 1", fresh.inflight.Load(), old.inflight.Load())
		}
		g.release()
		for _, ch := range []<-chan result{slow, again} {
			if res := <-ch; res.status != http.StatusOK || res.body != "g" {
				t.Errorf("got %d %q", res.status, res.body)
			}
		}
		waitClosed(t, drained, "Drain")
		if tp.target(g.addr) != fresh {
			t.Error("the old drain forgot the fresh state of the address")
		}
	})
}

// swapBackend is an app container of the swap test: it answers its name
// (and the body length for a POST) after a short random delay, so requests
// are in flight across swaps.
func swapBackend(name string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		fmt.Fprintf(w, "%s %d", name, n)
	}))
}

// Clients with keep-alive and with new connections send requests without
// pause while the app is redeployed every 100ms (new containers, route
// swap, drain of the old ones, then the old containers stop): not one
// request fails.
func TestZeroDowntimeSwap(t *testing.T) {
	if testing.Short() {
		t.Skip("2s load test")
	}
	var logs lockedBuffer
	tp := startProxy(t, zerolog.New(&logs).Level(zerolog.WarnLevel), Options{})
	const host = "app.example.com"

	deploy := func(gen int) (srvs []*httptest.Server, ups []string) {
		for range 1 + gen%2 { // one or two web containers
			s := swapBackend("v" + strconv.Itoa(gen))
			t.Cleanup(s.Close)
			srvs = append(srvs, s)
			ups = append(ups, s.Listener.Addr().String())
		}
		return srvs, ups
	}
	live, ups := deploy(0)
	tp.SetRoute("app", []string{host}, ups)

	var ok, failed atomic.Int64
	var failures sync.Map
	fail := func(s string) {
		failed.Add(1)
		failures.Store(s, true)
	}
	stop := make(chan struct{})
	client := func(c *http.Client, post bool) {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var body io.Reader
			method, size := "GET", 0
			if post && i%2 == 1 {
				method, size = "POST", 100+i%900
				body = strings.NewReader(strings.Repeat("x", size))
			}
			req, _ := http.NewRequest(method, "http://"+tp.addr+"/", body)
			req.Host = host
			resp, err := c.Do(req)
			if err != nil {
				fail(err.Error())
				continue
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			var gen, n int
			if _, serr := fmt.Sscanf(string(b), "v%d %d", &gen, &n); err != nil || serr != nil ||
				resp.StatusCode != http.StatusOK || n != size {
				fail(fmt.Sprintf("%d %q %v", resp.StatusCode, b, err))
				continue
			}
			ok.Add(1)
		}
	}
	keepAlive := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	t.Cleanup(keepAlive.CloseIdleConnections)
	var clients sync.WaitGroup
	for i := range 8 {
		clients.Go(func() { client(keepAlive, i%2 == 0) })
	}
	for range 3 {
		clients.Go(func() { client(fresh, false) })
	}

	var retiring sync.WaitGroup
	deploys := 0
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); {
		time.Sleep(100 * time.Millisecond)
		deploys++
		srvs, next := deploy(deploys)
		tp.SetRoute("app", []string{host}, next)
		old, oldUps := live, ups
		live, ups = srvs, next
		retiring.Go(func() {
			tp.Drain(context.Background(), oldUps, 5*time.Second)
			for _, s := range old {
				s.Close()
			}
		})
	}
	close(stop)
	clients.Wait()
	retiring.Wait()

	t.Logf("%d deploys, %d requests ok, %d failed", deploys, ok.Load(), failed.Load())
	if failed.Load() != 0 {
		failures.Range(func(k, _ any) bool {
			t.Errorf("failure: %v", k)
			return true
		})
		t.Fatalf("%d of %d requests failed", failed.Load(), ok.Load()+failed.Load())
	}
	// The drain alone did it: no request met a stopped container, which
	// the retry on refused connections would have hidden.
	if l := logs.String(); l != "" {
		t.Errorf("warnings during the deploys: %s", l)
	}
	if ok.Load() < 100 {
		t.Errorf("only %d requests in 2s", ok.Load())
	}
	tp.mu.Lock()
	known := len(tp.targets)
	tp.mu.Unlock()
	if known != len(ups) {
		t.Errorf("%d upstreams known after the drains, want the %d routed", known, len(ups))
	}
}

// A route with a dead upstream and a live one: requests that reach the dead
// one first are made again on the live one.
func TestRetryOnRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	live := backend(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "live %s %d", r.Method, n)
	})
	var logs lockedBuffer
	tp := startProxy(t, zerolog.New(&logs), Options{})
	tp.SetRoute("app", []string{"app.example.com"}, []string{dead, live})

	for i := range 10 {
		for _, method := range []string{"GET", "HEAD", "OPTIONS"} {
			res := tp.do(t, method, "app.example.com", "/", nil, nil)
			want := "live " + method + " 0"
			if method == "HEAD" {
				want = ""
			}
			if res.status != http.StatusOK || res.body != want {
				t.Errorf("%s %d: %d %q, want 200 %q", method, i, res.status, res.body, want)
			}
		}
	}
	// A body the dead upstream never read is sent again too.
	for i := range 4 {
		res := tp.do(t, "POST", "app.example.com", "/", strings.NewReader("hello"), nil)
		if res.status != http.StatusOK || res.body != "live POST 5" {
			t.Errorf("POST %d: %d %q", i, res.status, res.body)
		}
	}
	if !strings.Contains(logs.String(), dead) {
		t.Errorf("the dead upstream was not logged: %s", logs.String())
	}
	for _, addr := range []string{dead, live} {
		if n := tp.InFlight(addr); n != 0 {
			t.Errorf("InFlight(%s) = %d after the requests", addr, n)
		}
	}

	// With every upstream dead, the client gets 502 after one try of each.
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	dead2 := ln2.Addr().String()
	ln2.Close()
	tp.SetRoute("app", []string{"app.example.com"}, []string{dead, dead2})
	if res := tp.get(t, "app.example.com"); res.status != http.StatusBadGateway {
		t.Errorf("all dead: %d, want 502", res.status)
	}
}

// The race the drain closes: a request looks its route up in a table
// older than the swap, and counts itself on the old upstream only after
// Drain started. Such a request must either be waited for by Drain or go
// elsewhere; it must never be forwarded to an upstream whose Drain
// returned.
func TestDrainNeverMissesARequest(t *testing.T) {
	p := New(zerolog.Nop(), Options{})
	const host = "app.example.com"
	for round := range 500 {
		oldAddr := "10.0.0.1:" + strconv.Itoa(1000+round)
		p.SetRoute("app", []string{host}, []string{oldAddr})
		var drained, violations atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 4 {
			wg.Go(func() {
				<-start
				for drained.Load() == 0 {
					// serve's first steps, on a table that may be stale.
					up := p.table.Load().lookup(host).pick()
					if !up.tg.acquire() {
						continue
					}
					if up.addr == oldAddr && drained.Load() != 0 {
						violations.Add(1)
					}
					up.tg.release()
					runtime.Gosched() // spinning goroutines would starve Drain's
				}
			})
		}
		close(start)
		time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
		p.SetRoute("app", []string{host}, []string{"10.0.0.2:" + strconv.Itoa(1000+round)})
		p.Drain(context.Background(), []string{oldAddr}, time.Minute)
		drained.Store(1)
		wg.Wait()
		if violations.Load() != 0 {
			t.Fatalf("round %d: %d requests counted on the old upstream after its Drain returned", round, violations.Load())
		}
	}
}
