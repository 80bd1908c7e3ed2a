package e2e

// The redeploy benchmark of issue 4 ("Figures to report"): failed requests
// during 10 redeploys under constant load, and the switch latency from "new
// container healthy" to "all new requests on it". It is a figure, not a
// test: it asserts nothing about time, and it runs only with
// RIVETR_BENCH=1 (bench/redeploy.sh sets it). It is a Test rather than a
// Benchmark because the e2e helpers take *testing.T.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Settings of the redeploy benchmark.
const (
	// rbMaxDuration is the hard stop of the whole run: pushes and load are
	// cut off when it passes, and the benchmark fails.
	rbMaxDuration = 5 * time.Minute
	// rbDefaultWait and rbWaitToRetire are set with checks:set --global.
	rbDefaultWait  = "2"
	rbWaitToRetire = "5"
	// rbKeepAlive clients reuse one connection each; rbFresh clients open a
	// new connection per request. Each pauses between requests.
	rbKeepAlive      = 8
	rbFresh          = 2
	rbKeepAlivePause = 2 * time.Millisecond
	rbFreshPause     = 5 * time.Millisecond
	// rbRequestTimeout bounds one request.
	rbRequestTimeout = 10 * time.Second
	// rbSettle is the load on each version alone after its push returns,
	// and on v0 before the first redeploy.
	rbSettle = time.Second
	// rbHealthyLine is the push line saying the new container is healthy.
	rbHealthyLine = "All checks successful (web.1)"
)

// TestBenchRedeploysUnderLoad deploys v0 of the test app, then runs a
// constant load through the proxy (loopback, Host: APP.localhost) during
// RIVETR_BENCH_REDEPLOYS (default 10) consecutive redeploys (git push of
// v1, v2, ...), recording every request. It logs, and writes as Markdown
// to $RIVETR_BENCH_OUT when set, the failed requests and per redeploy the
// switch latency: the start of the first request from which on every
// later-started request got the new version, minus the moment the new
// container was healthy. That moment is taken two ways: when the git client
// read the push's "All checks successful (web.1)" line (through SSH and
// git's sideband, so late), and the daemon's own swap time from its debug
// log line "APP vN live: ... swapped at TIME" (the swap follows the checks
// at once).
func TestBenchRedeploysUnderLoad(t *testing.T) {
	if os.Getenv("RIVETR_BENCH") != "1" {
		t.Skip("benchmark: runs only with RIVETR_BENCH=1 (bench/redeploy.sh)")
	}
	redeploys := 10
	if v := os.Getenv("RIVETR_BENCH_REDEPLOYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("RIVETR_BENCH_REDEPLOYS=%q: want a positive number", v)
		}
		redeploys = n
	}
	ctx, cancel := context.WithTimeout(context.Background(), rbMaxDuration)
	defer cancel()

	eng := needEngine(t)
	srv := newServer(t)
	// serveEnv already sets RIVETR_LOG_LEVEL=debug, which the swap line needs.
	srv.extraEnv = []string{"RIVETR_DOMAIN=localhost", "RIVETR_RUNTIME=" + eng.kind}
	srv.start()
	srv.mustCLI(t, nil, "checks:set", "--global", "default-wait", rbDefaultWait)
	srv.mustCLI(t, nil, "checks:set", "--global", "wait-to-retire", rbWaitToRetire)
	key := newKey(t, "admin")
	srv.mustCLI(t, nil, "ssh-keys:add", "admin", key.Public)
	c := srv.client(t, key)
	app := randomName("rdbench")
	cleanupApp(t, srv, eng, app)

	repo := newAppRepo(t, c, "v0")
	first := rbPushStream(ctx, t, c, repo, c.sshRemote(app))
	wantDeployed(t, srv, first.res, app, "remote: ")
	if t.Failed() {
		t.FailNow()
	}
	wantServes(t, srv, app, "/", "hello v0")
	swaps := rbSwaps(srv.stderr.String(), app)
	if len(swaps) != 1 {
		t.Fatalf("daemon log: %d swap lines for %s after the first deploy, want 1 (is RIVETR_LOG_LEVEL=debug set?)", len(swaps), app)
	}

	l := rbStartLoad(ctx, srv, app)
	defer l.halt()
	rbSleep(ctx, rbSettle)

	pushes := make([]rbPush, 0, redeploys)
	for i := 1; i <= redeploys; i++ {
		if ctx.Err() != nil {
			t.Fatalf("hard stop after %v, during redeploy %d", rbMaxDuration, i)
		}
		version := "v" + strconv.Itoa(i)
		commitDockerfile(t, c, repo, version)
		p := rbPushStream(ctx, t, c, repo, c.sshRemote(app))
		p.version = i
		wantDeployed(t, srv, p.res, app, "remote: ")
		if p.healthy.IsZero() {
			t.Errorf("push of %s: no %q line:\n%s", version, rbHealthyLine, p.res)
		}
		all := rbSwaps(srv.stderr.String(), app)
		if len(all) != len(swaps)+1 {
			t.Fatalf("daemon log: %d swap lines for %s after redeploy %d, want %d", len(all), app, i, len(swaps)+1)
		}
		swaps = all
		p.swap = all[len(all)-1]
		pushes = append(pushes, p)
		if t.Failed() {
			t.FailNow()
		}
		rbSleep(ctx, rbSettle)
	}
	end := l.halt()
	if ctx.Err() != nil {
		t.Fatalf("hard stop after %v", rbMaxDuration)
	}
	reqs := l.requests()

	rep := rbAnalyze(reqs, pushes, end)
	rep.daemonRetries = strings.Count(srv.stderr.String(), "upstream refused, retrying on another")
	rep.daemonErrors = strings.Count(srv.stderr.String(), `"message":"upstream error"`)
	md := rep.markdown()
	t.Logf("\n%s", md)
	if out := os.Getenv("RIVETR_BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
			t.Errorf("write %s: %v", out, err)
		}
	}
	if rep.failed > 0 {
		// The figure must be 0; a failure is reported, and the run says so.
		t.Errorf("%d of %d requests failed; first: %s", rep.failed, len(reqs), strings.Join(rep.failures, "; "))
	}
}

// rbSleep sleeps for d or until ctx is done.
func rbSleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// rbPush is one git push with the times seen from the client.
type rbPush struct {
	version int
	start   time.Time // git push started
	healthy time.Time // the healthy line was read from git's stderr (zero if never)
	done    time.Time // git push exited
	swap    rbSwap    // the daemon's swap of this deploy
	res     result
}

// rbSplitLines is a bufio.SplitFunc ending lines at '\n' or '\r' (git
// ends progress lines with '\r').
func rbSplitLines(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// rbPushStream runs `git push REMOTE main` in repo, reading its stderr line
// by line as it arrives and noting when the healthy line is read.
func rbPushStream(ctx context.Context, t *testing.T, c *client, repo, remote string) rbPush {
	t.Helper()
	pctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	cmd := c.gitCmd(pctx, repo, "push", remote, "main")
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.WaitDelay = 5 * time.Second
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var p rbPush
	p.start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("git push: %v", err)
	}
	var stderr strings.Builder
	sc := bufio.NewScanner(pipe)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sc.Split(rbSplitLines)
	for sc.Scan() {
		line := sc.Text()
		if p.healthy.IsZero() && strings.Contains(line, rbHealthyLine) {
			p.healthy = time.Now()
		}
		stderr.WriteString(line)
		stderr.WriteByte('\n')
	}
	io.Copy(io.Discard, pipe)
	err = cmd.Wait()
	p.done = time.Now()
	p.res = result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && exit.Exited():
		p.res.Code = exit.ExitCode()
	default:
		t.Fatalf("git push: %v\n%s", err, p.res)
	}
	return p
}

// rbSwap is one daemon log line "APP vN live: K web upstreams swapped at T".
type rbSwap struct {
	release int
	at      time.Time
}

// rbSwaps returns app's swap lines from the daemon's (JSON) log, in order.
func rbSwaps(log, app string) []rbSwap {
	re := regexp.MustCompile(`"message":"` + regexp.QuoteMeta(app) + ` v(\d+) live: \d+ web upstreams swapped at ([^"]+)"`)
	var out []rbSwap
	for _, m := range re.FindAllStringSubmatch(log, -1) {
		n, _ := strconv.Atoi(m[1])
		at, err := time.Parse(time.RFC3339Nano, m[2])
		if err != nil {
			continue
		}
		out = append(out, rbSwap{release: n, at: at})
	}
	return out
}

// rbRequest is one request of the load.
type rbRequest struct {
	start, end time.Time
	code       int
	version    int // N of a "hello vN" answer, -1 for anything else
	fresh      bool
	conns      int32  // connections the transport got: 2 or more is a client retry
	err        string // transport or read error
}

func (r rbRequest) failed() bool { return r.err != "" || r.code != http.StatusOK || r.version < 0 }

// rbLoad runs the clients; each writes only its own shard of records.
type rbLoad struct {
	stop   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup
	end    time.Time
	shards [][]rbRequest
}

// rbStartLoad starts rbKeepAlive + rbFresh clients against app through the
// proxy. They stop on halt or when ctx is done.
func rbStartLoad(ctx context.Context, srv *server, app string) *rbLoad {
	l := &rbLoad{stop: make(chan struct{}), shards: make([][]rbRequest, rbKeepAlive+rbFresh)}
	url := fmt.Sprintf("http://127.0.0.1:%d/", srv.httpPort)
	host := app + ".localhost"
	for g := range l.shards {
		fresh := g >= rbKeepAlive
		tr := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute, DisableKeepAlives: fresh}
		hc := &http.Client{Transport: tr, Timeout: rbRequestTimeout}
		pause := rbKeepAlivePause
		if fresh {
			pause = rbFreshPause
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer tr.CloseIdleConnections()
			recs := make([]rbRequest, 0, 1<<14)
			defer func() { l.shards[g] = recs }()
			for {
				select {
				case <-l.stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				recs = append(recs, rbGet(hc, url, host, fresh))
				time.Sleep(pause)
			}
		}()
	}
	return l
}

// halt stops the clients, waits for the requests in flight and returns when
// the load stopped. It may be called more than once.
func (l *rbLoad) halt() time.Time {
	l.once.Do(func() {
		l.end = time.Now()
		close(l.stop)
		l.wg.Wait()
	})
	return l.end
}

// requests returns every record, sorted by start time (after halt).
func (l *rbLoad) requests() []rbRequest {
	var all []rbRequest
	for _, s := range l.shards {
		all = append(all, s...)
	}
	slices.SortFunc(all, func(a, b rbRequest) int { return a.start.Compare(b.start) })
	return all
}

// rbGet does one GET / and records it.
func rbGet(hc *http.Client, url, host string, fresh bool) rbRequest {
	r := rbRequest{version: -1, fresh: fresh}
	var conns atomic.Int32
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		r.err = err.Error()
		return r
	}
	req.Host = host
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { conns.Add(1) },
	}))
	r.start = time.Now()
	resp, err := hc.Do(req)
	if err == nil {
		var b []byte
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		r.code = resp.StatusCode
		if v, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "hello v"); ok {
			if n, aerr := strconv.Atoi(v); aerr == nil {
				r.version = n
			}
		}
	}
	r.end = time.Now()
	r.conns = conns.Load()
	if err != nil {
		r.err = err.Error()
	}
	return r
}

// rbRedeploy is the analysis of one redeploy.
type rbRedeploy struct {
	p                rbPush
	requests, failed int
	rate             float64       // requests per second in the window
	switchAt         time.Time     // start of the first request from which on all got the new version
	lastOld          time.Time     // start of the last request answered by an older version
	afterHealthy     time.Duration // switchAt - healthy line read
	afterSwap        time.Duration // switchAt - daemon swap
	sideband         time.Duration // healthy line read - daemon swap
	ok               bool          // a switch point was found
}

// rbReport is the whole run.
type rbReport struct {
	start, end                  time.Time
	requests, keepAlive, fresh  int
	failed, retried             int
	failures                    []string
	redeploys                   []rbRedeploy
	daemonRetries, daemonErrors int
}

// rbAnalyze splits the requests (sorted by start) into one window per
// redeploy, from its push's start to the next push's start (or the end of
// the load), and finds each window's switch point.
func rbAnalyze(reqs []rbRequest, pushes []rbPush, end time.Time) rbReport {
	rep := rbReport{end: end, requests: len(reqs)}
	if len(reqs) > 0 {
		rep.start = reqs[0].start
	}
	for _, r := range reqs {
		if r.fresh {
			rep.fresh++
		} else {
			rep.keepAlive++
		}
		if r.conns > 1 {
			rep.retried++
		}
		if r.failed() {
			rep.failed++
			if len(rep.failures) < 10 {
				rep.failures = append(rep.failures, fmt.Sprintf("%s: status %d, version %d, err %q",
					r.start.Format("15:04:05.000000"), r.code, r.version, r.err))
			}
		}
	}
	for i, p := range pushes {
		from, to := p.start, end
		if i+1 < len(pushes) {
			to = pushes[i+1].start
		}
		lo, _ := slices.BinarySearchFunc(reqs, from, func(r rbRequest, t time.Time) int { return r.start.Compare(t) })
		hi, _ := slices.BinarySearchFunc(reqs, to, func(r rbRequest, t time.Time) int { return r.start.Compare(t) })
		win := reqs[lo:hi]
		d := rbRedeploy{p: p, requests: len(win)}
		if span := to.Sub(from).Seconds(); span > 0 {
			d.rate = float64(len(win)) / span
		}
		last := -1 // the last request not answered by the new version
		for j, r := range win {
			if r.failed() {
				d.failed++
			}
			if r.failed() || r.version != p.version {
				last = j
			}
		}
		if last >= 0 {
			d.lastOld = win[last].start
		}
		if last+1 < len(win) {
			d.ok = true
			d.switchAt = win[last+1].start
			d.afterSwap = d.switchAt.Sub(p.swap.at)
			if !p.healthy.IsZero() {
				d.afterHealthy = d.switchAt.Sub(p.healthy)
				d.sideband = p.healthy.Sub(p.swap.at)
			}
		}
		rep.redeploys = append(rep.redeploys, d)
	}
	return rep
}

// rbMs formats d in milliseconds with one decimal (never "-0.0").
func rbMs(d time.Duration) string {
	s := strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64)
	if s == "-0.0" {
		s = "0.0"
	}
	return s
}

// rbStats returns the median (mean of the two middle values for an even
// count) and the max of ds.
func rbStats(ds []time.Duration) (med, hi time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		med = s[n/2]
	} else {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[n-1]
}

func (rep rbReport) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	secs := rep.end.Sub(rep.start).Seconds()
	w("### Redeploys under load: %d redeploys, default-wait %s s, wait-to-retire %s s\n\n", len(rep.redeploys), rbDefaultWait, rbWaitToRetire)
	w("Load: %d keep-alive clients (%v pause) + %d new-connection clients (%v pause), GET / through the proxy on loopback, %.1f s.\n\n",
		rbKeepAlive, rbKeepAlivePause, rbFresh, rbFreshPause, secs)
	w("| requests | keep-alive | new connection | req/s | failed (non-200, transport error, wrong body) | client transport retries | proxy upstream retries (daemon log) | proxy upstream errors (daemon log) |\n")
	w("|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	w("| %d | %d | %d | %.0f | **%d** | %d | %d | %d |\n\n", rep.requests, rep.keepAlive, rep.fresh, float64(rep.requests)/secs,
		rep.failed, rep.retried, rep.daemonRetries, rep.daemonErrors)
	if len(rep.failures) > 0 {
		w("First failures: %s\n\n", strings.Join(rep.failures, "; "))
	}
	w("Per redeploy, in ms. *healthy read*: when git's stderr gave the line %q; *swap*: the daemon's log line \"APP vN live: ... swapped at T\"; *switch*: start of the first request from which on every later-started request got the new version.\n\n", rbHealthyLine)
	w("| redeploy | push s | requests | req/s | failed | switch - healthy read | switch - swap | last old start - swap | healthy read - swap (sideband delay) |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var byHealthy, bySwap, sideband []time.Duration
	for _, d := range rep.redeploys {
		row := fmt.Sprintf("| v%d (release %d) | %.2f | %d | %.0f | %d | ", d.p.version, d.p.swap.release,
			d.p.done.Sub(d.p.start).Seconds(), d.requests, d.rate, d.failed)
		if !d.ok {
			row += "none | none | | |"
		} else {
			h, sb := "n/a", "n/a"
			if !d.p.healthy.IsZero() {
				h, sb = rbMs(d.afterHealthy), rbMs(d.sideband)
				byHealthy = append(byHealthy, d.afterHealthy)
				sideband = append(sideband, d.sideband)
			}
			bySwap = append(bySwap, d.afterSwap)
			lastOld := ""
			if !d.lastOld.IsZero() {
				lastOld = rbMs(d.lastOld.Sub(d.p.swap.at))
			}
			row += fmt.Sprintf("%s | %s | %s | %s |", h, rbMs(d.afterSwap), lastOld, sb)
		}
		w("%s\n", row)
	}
	w("\n| switch latency, ms | median | max |\n|---|---:|---:|\n")
	med, hi := rbStats(byHealthy)
	w("| from the healthy line read by git (client) | %s | %s |\n", rbMs(med), rbMs(hi))
	med, hi = rbStats(bySwap)
	w("| from the daemon's swap (checks passed) | %s | %s |\n", rbMs(med), rbMs(hi))
	med, hi = rbStats(sideband)
	w("| (healthy line read - swap: sideband delay) | %s | %s |\n", rbMs(med), rbMs(hi))
	w("\nGoal: under 100 ms plus one check interval (the default check polls every min(250 ms, default-wait/10) = 200 ms here). ")
	w("A negative value means the switch came first: a request started just before the swap reached the proxy after it, ")
	w("or the healthy line reached git after the swap. At about %.0f req/s the switch point is known to within about %.1f ms.\n",
		float64(rep.requests)/secs, 1e3*secs/float64(max(rep.requests, 1)))
	return b.String()
}
