package e2e

// Helpers of the zero-downtime deploy tests (zerodowntime_test.go): app
// files beside the Dockerfile, releases, containers by label, a load
// generator (keep-alive, new-connection, slow and WebSocket clients) run
// against the proxy during deploys, and a kill -9 of the daemon.

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fastChecks makes deploys of srv quick: Dokku's default check wait is
// 10 s and old containers are retired up to 60 s after the swap.
func fastChecks(t *testing.T, srv *server) {
	t.Helper()
	srv.mustCLI(t, nil, "checks:set", "--global", "default-wait", "1")
	srv.mustCLI(t, nil, "checks:set", "--global", "wait-to-retire", "2")
}

// commitFiles writes files into the repository (an empty content removes
// the file), rewrites the Dockerfile for version (plus extra
// instructions), commits everything and returns the new commit.
func commitFiles(t *testing.T, c *client, dir, version string, files map[string]string, extra ...string) string {
	t.Helper()
	writeTree(t, dir, files)
	return commitDockerfile(t, c, dir, version, extra...)
}

// pushDeploys pushes main to app and checks it deployed.
func pushDeploys(t *testing.T, srv *server, c *client, repo, app string) result {
	t.Helper()
	res := c.git(t, repo, "push", c.sshRemote(app), "main")
	wantDeployed(t, srv, res, app, "remote: ")
	if t.Failed() {
		t.FailNow()
	}
	return res
}

// releaseInfo is one line of `releases APP --format json`.
type releaseInfo struct {
	Number int    `json:"number"`
	Status string `json:"status"`
	Image  string `json:"image"`
	Rev    string `json:"rev"`
	Reason string `json:"reason"`
	By     string `json:"created_by"`
}

// releases returns app's releases, newest first.
func (c *client) releases(t *testing.T, app string) []releaseInfo {
	t.Helper()
	res := c.must(t, "releases", app, "--format", "json")
	var list []releaseInfo
	if err := json.Unmarshal([]byte(res.Stdout), &list); err != nil {
		t.Fatalf("releases %s --format json: %v\n%s", app, err, res)
	}
	return list
}

// latestRelease returns app's newest release.
func (c *client) latestRelease(t *testing.T, app string) releaseInfo {
	t.Helper()
	list := c.releases(t, app)
	if len(list) == 0 {
		t.Fatalf("%s has no releases", app)
	}
	return list[0]
}

// containersWith lists the containers (running or not) carrying every
// label ("key=value").
func (e *engine) containersWith(t *testing.T, labels ...string) []engineContainer {
	t.Helper()
	f, _ := json.Marshal(map[string][]string{"label": labels})
	var list []engineContainer
	e.call(t, http.MethodGet, "/containers/json?all=1&filters="+url.QueryEscape(string(f)), &list, false)
	return list
}

// processes returns app's containers of process type typ.
func (e *engine) processes(t *testing.T, app, typ string) []engineContainer {
	t.Helper()
	return e.containersWith(t, "rivetr.app="+app, "rivetr.process="+typ)
}

// waitProcesses waits until app has exactly n containers of type typ and
// all of them run (old ones are retired in the background).
func waitProcesses(t *testing.T, eng *engine, app, typ string, n int) []engineContainer {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		list := eng.processes(t, app, typ)
		running := 0
		for _, c := range list {
			if c.State == "running" {
				running++
			}
		}
		if len(list) == n && running == n {
			return list
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s containers of %s: %d (%d running), want %d running: %+v", typ, app, len(list), running, n, list)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// containerIP is the container's address on the rivetr network.
func (e *engine) containerIP(t *testing.T, id string) string {
	t.Helper()
	d := e.inspect(t, id)
	raw, ok := d.NetworkSettings.Networks["rivetr"]
	if !ok {
		t.Fatalf("container %.12s is not on the rivetr network", id)
	}
	var ep struct {
		IPAddress string `json:"IPAddress"`
	}
	if err := json.Unmarshal(raw, &ep); err != nil || ep.IPAddress == "" {
		t.Fatalf("container %.12s has no address on the rivetr network: %s", id, raw)
	}
	return ep.IPAddress
}

// directGet asks a container itself (not the proxy) for path.
func directGet(addr, path string) (int, string, error) {
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := hc.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

// startedCmd is a command running in the background with its output
// collected as it comes.
type startedCmd struct {
	stdout, stderr syncBuffer
	done           chan result
}

// startGit starts `git ARGS...` in dir in the background.
func (c *client) startGit(t *testing.T, dir string, args ...string) *startedCmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
	cmd := c.gitCmd(ctx, dir, args...)
	s := &startedCmd{done: make(chan result, 1)}
	cmd.Stdout, cmd.Stderr = &s.stdout, &s.stderr
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() {
		defer cancel()
		err := cmd.Wait()
		res := result{Stdout: s.stdout.String(), Stderr: s.stderr.String()}
		if err != nil {
			res.Code = cmd.ProcessState.ExitCode()
		}
		s.done <- res
	}()
	return s
}

// waitOutput waits until the command printed want (on either stream).
func (s *startedCmd) waitOutput(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(s.stdout.String()+s.stderr.String(), want) {
		select {
		case res := <-s.done:
			t.Fatalf("command ended before it printed %q:\n%s", want, res)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("command did not print %q within %v:\n%s%s", want, timeout, s.stdout.String(), s.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL to the daemon, as a crash or an OOM kill would, and
// waits for it to be gone. start may be called again afterwards.
func (s *server) kill() {
	s.t.Helper()
	s.stopped = true
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		s.t.Fatalf("kill -9 rivetr serve: %v", err)
	}
	<-s.done
}

// maxRunning polls the engine until stop is closed and returns the most
// containers of type typ of app seen running at once.
func maxRunning(t *testing.T, eng *engine, app, typ string, stop <-chan struct{}) <-chan int {
	out := make(chan int, 1)
	go func() {
		most := 0
		for {
			var list []engineContainer
			f, _ := json.Marshal(map[string][]string{"label": {"rivetr.app=" + app, "rivetr.process=" + typ}})
			req, _ := http.NewRequest(http.MethodGet, "http://engine/containers/json?filters="+url.QueryEscape(string(f)), nil)
			if resp, err := eng.hc.Do(req); err == nil {
				json.NewDecoder(resp.Body).Decode(&list)
				resp.Body.Close()
			}
			most = max(most, len(list))
			select {
			case <-stop:
				out <- most
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return out
}

// loadOptions says how many clients of each kind a load runs.
type loadOptions struct {
	KeepAlive int  // goroutines reusing connections for GET /
	Fresh     int  // goroutines opening a new connection per GET /
	Slow      int  // goroutines doing GET /slow?ms=2000 on keep-alive connections
	WebSocket bool // one WebSocket client sending a message every 200 ms
}

// slowRequest is how long a slow request takes in the app.
const slowRequest = 2 * time.Second

// load is a load generator running against one app through the proxy.
// Every request must succeed: any transport error, non-200 status or
// unexpected body is a failure. Answers of GET / must come from a version
// allowed when the request started (see allow).
type load struct {
	t    *testing.T
	srv  *server
	app  string
	stop chan struct{}
	wg   sync.WaitGroup

	allowed atomic.Pointer[map[string]bool] // versions "/" may answer with

	requests, slow, wsMessages, wsReconnects atomic.Int64
	failures, versionErrors                  atomic.Int64

	mu       sync.Mutex
	problems []string       // the first failures, for the report
	versions map[string]int // answers of "/" by body
	start    time.Time
}

// loadTotals are a load's counts once stopped.
type loadTotals struct {
	Requests, Slow, WSMessages, WSReconnects, Failures, VersionErrors int64
	Versions                                                          map[string]int
	Problems                                                          []string
}

func (l loadTotals) String() string {
	return fmt.Sprintf("%d requests (%d slow of %v), %d WebSocket echoes, %d WebSocket reconnects, %d failures, %d answers from a version not allowed; answers of / by body: %v",
		l.Requests, l.Slow, slowRequest, l.WSMessages, l.WSReconnects, l.Failures, l.VersionErrors, l.Versions)
}

// startLoad starts clients against app through srv's proxy; versions are
// those GET / may answer with at first ("hello v1", ...).
func startLoad(t *testing.T, srv *server, app string, opts loadOptions, versions ...string) *load {
	l := &load{t: t, srv: srv, app: app, stop: make(chan struct{}), versions: map[string]int{}, start: time.Now()}
	l.allow(versions...)
	keepAlive := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}
	fresh := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	slow := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64, IdleConnTimeout: time.Minute}
	run := func(n int, f func()) {
		for i := 0; i < n; i++ {
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				f()
			}()
		}
	}
	run(opts.KeepAlive, func() { l.getLoop(keepAlive, 10*time.Millisecond) })
	run(opts.Fresh, func() { l.getLoop(fresh, 20*time.Millisecond) })
	run(opts.Slow, func() { l.slowLoop(slow) })
	if opts.WebSocket {
		run(1, l.wsLoop)
	}
	t.Cleanup(func() { l.finish() })
	return l
}

// allow sets the versions GET / may answer with from now on.
func (l *load) allow(versions ...string) {
	m := map[string]bool{}
	for _, v := range versions {
		m[v] = true
	}
	l.allowed.Store(&m)
}

func (l *load) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// problem records a failure (the first 20 are kept for the report).
func (l *load) problem(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.problems) < 20 {
		l.problems = append(l.problems, fmt.Sprintf("%6.2fs ", time.Since(l.start).Seconds())+fmt.Sprintf(format, args...))
	}
}

// get does one request through the proxy and returns its status and body.
func (l *load) get(tr *http.Transport, path string, timeout time.Duration) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", l.srv.httpPort, path), nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = l.app + ".localhost"
	resp, err := (&http.Client{Transport: tr, Timeout: timeout}).Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

func (l *load) getLoop(tr *http.Transport, pause time.Duration) {
	for !l.stopped() {
		allowed := *l.allowed.Load()
		code, body, err := l.get(tr, "/", 30*time.Second)
		l.requests.Add(1)
		switch {
		case err != nil || code != http.StatusOK || !strings.HasPrefix(body, "hello v"):
			l.failures.Add(1)
			l.problem("GET /: status %d, body %.80q, err %v", code, body, err)
		default:
			l.mu.Lock()
			l.versions[body]++
			l.mu.Unlock()
			if !allowed[body] {
				l.versionErrors.Add(1)
				l.problem("GET /: answered %q, allowed when the request started: %v", body, allowed)
			}
		}
		time.Sleep(pause)
	}
}

func (l *load) slowLoop(tr *http.Transport) {
	for !l.stopped() {
		start := time.Now()
		code, body, err := l.get(tr, fmt.Sprintf("/slow?ms=%d", slowRequest.Milliseconds()), 30*time.Second)
		l.requests.Add(1)
		l.slow.Add(1)
		if err != nil || code != http.StatusOK || !strings.HasPrefix(body, "slow v") {
			l.failures.Add(1)
			l.problem("GET /slow (started at %.2fs): status %d, body %.80q, err %v", start.Sub(l.start).Seconds(), code, body, err)
		}
	}
}

// wsLoop keeps a WebSocket open and sends a message every 200 ms,
// expecting its echo within 5 s. A connection closed by the server (at the
// end of a drain) is reopened and counted as a reconnect; a refused
// handshake, a lost or wrong echo are failures.
func (l *load) wsLoop() {
	addr := "127.0.0.1:" + strconv.Itoa(l.srv.httpPort)
	n := 0
	for !l.stopped() {
		ws, err := dialWebSocket(addr, l.app+".localhost", "/ws")
		if err != nil {
			l.failures.Add(1)
			l.problem("WebSocket handshake: %v", err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		for !l.stopped() {
			n++
			msg := fmt.Sprintf("message %d", n)
			ws.conn.SetDeadline(time.Now().Add(5 * time.Second))
			if err := ws.write(msg); err != nil {
				break // closed: reconnect
			}
			op, payload, err := ws.read()
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					l.failures.Add(1)
					l.problem("WebSocket: no echo of %q within 5s", msg)
				}
				break
			}
			if op == wsClose {
				break
			}
			if string(payload) != msg {
				l.failures.Add(1)
				l.problem("WebSocket: sent %q, echo %q", msg, payload)
				break
			}
			l.wsMessages.Add(1)
			select {
			case <-l.stop:
			case <-time.After(200 * time.Millisecond):
			}
		}
		ws.conn.Close()
		if !l.stopped() {
			l.wsReconnects.Add(1)
		}
	}
}

// finish stops the clients (letting requests in flight end) and returns
// the totals. It may be called more than once.
func (l *load) finish() loadTotals {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	versions := make(map[string]int, len(l.versions))
	for k, v := range l.versions {
		versions[k] = v
	}
	return loadTotals{
		Requests: l.requests.Load(), Slow: l.slow.Load(), WSMessages: l.wsMessages.Load(),
		WSReconnects: l.wsReconnects.Load(), Failures: l.failures.Load(), VersionErrors: l.versionErrors.Load(),
		Versions: versions, Problems: append([]string(nil), l.problems...),
	}
}

// wantNoFailures checks a finished load saw no failure.
func wantNoFailures(t *testing.T, tot loadTotals) {
	t.Helper()
	if tot.Failures != 0 || tot.VersionErrors != 0 {
		t.Errorf("load: %s\nfirst problems:\n  %s", tot, strings.Join(tot.Problems, "\n  "))
	}
	if tot.Requests == 0 {
		t.Errorf("load made no requests")
	}
}

// WebSocket opcodes (RFC 6455).
const (
	wsText  = 0x1
	wsClose = 0x8
)

// webSocket is a minimal RFC 6455 client connection.
type webSocket struct {
	conn net.Conn
	br   *bufio.Reader
}

// dialWebSocket opens a WebSocket to path on addr with Host host.
func dialWebSocket(addr, host, path string) (*webSocket, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", path, host, key)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
	if err != nil {
		conn.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		conn.Close()
		return nil, fmt.Errorf("handshake answered %s: %q", resp.Status, b)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		conn.Close()
		return nil, fmt.Errorf("Sec-WebSocket-Accept %q, want %q", got, want)
	}
	return &webSocket{conn: conn, br: br}, nil
}

// write sends a masked text frame, as a client must.
func (w *webSocket) write(msg string) error {
	b := []byte{0x80 | wsText}
	n := len(msg)
	switch {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	var mask [4]byte
	rand.Read(mask[:])
	b = append(b, mask[:]...)
	for i := 0; i < n; i++ {
		b = append(b, msg[i]^mask[i%4])
	}
	_, err := w.conn.Write(b)
	return err
}

// read reads one (unmasked, unfragmented) frame from the server.
func (w *webSocket) read() (byte, []byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(w.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(w.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 || h[1]&0x80 != 0 {
		return 0, nil, fmt.Errorf("bad frame header %x", h)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(w.br, payload); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0f, payload, nil
}
