package apps

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// In these tests one healthcheck "second" lasts a millisecond.
const testUnit = time.Millisecond

// runTestChecks runs checks against t with millisecond units.
func runTestChecks(t *testing.T, target CheckTarget, checks []Healthcheck, defaultWait time.Duration) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := runChecks(context.Background(), target, checks, defaultWait, &out, testUnit)
	t.Logf("output:\n%s", out.String())
	return out.String(), err
}

// checkServer is an httptest server that counts requests.
type checkServer struct {
	*httptest.Server
	hits  atomic.Int32
	mu    sync.Mutex
	first time.Time
	hosts []string
}

func newCheckServer(t *testing.T, h func(n int, w http.ResponseWriter, r *http.Request)) *checkServer {
	s := &checkServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(s.hits.Add(1))
		s.mu.Lock()
		if n == 1 {
			s.first = time.Now()
		}
		s.hosts = append(s.hosts, r.Host)
		s.mu.Unlock()
		h(n, w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *checkServer) addr() string { return s.Listener.Addr().String() }

// closedAddr is an address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestHealthcheckDefaults(t *testing.T) {
	got := Healthcheck{Path: "/"}.WithDefaults()
	want := Healthcheck{Type: "startup", Path: "/", Scheme: "http", Attempts: 3, Timeout: 5, Wait: 5}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	kept := Healthcheck{Type: "liveness", Attempts: 1, Timeout: 2, Wait: 3, InitialDelay: 4, Scheme: "https"}
	if !reflect.DeepEqual(kept.WithDefaults(), kept) {
		t.Errorf("set values changed: %+v", kept.WithDefaults())
	}
	for h, kind := range map[*Healthcheck]string{
		{}:                       "uptime",
		{Uptime: 3}:              "uptime",
		{Path: "/x"}:             "path",
		{Listening: true}:        "listening",
		{Command: []string{"x"}}: "command",
	} {
		if h.Kind() != kind {
			t.Errorf("%+v.Kind() = %s, want %s", *h, h.Kind(), kind)
		}
	}
}

func TestParseChecksFile(t *testing.T) {
	env := map[string]string{"CHECK_PATH": "/status", "APP_NAME": "My App", "DOMAIN": "admin.example.com"}
	in := `# zero-downtime checks
WAIT=2     # seconds between attempts
TIMEOUT=7  # per attempt
ATTEMPTS=4
OTHER=ignored

/                        {{ var "APP_NAME" }} is up
{{ var "CHECK_PATH" }}?full=1
//{{ var "DOMAIN" }}     Admin Dashboard
https://static.example.com/logo.png
/unset{{ var "NOT_SET" }}  {{"{"}}"ok":true{{"}"}}
`
	got, err := ParseChecksFile([]byte(in), env)
	if err != nil {
		t.Fatal(err)
	}
	base := Healthcheck{Type: "startup", Attempts: 4, Timeout: 7, Wait: 2, InitialDelay: 2}
	with := func(name, path, content, scheme string, headers ...HTTPHeader) Healthcheck {
		h := base
		h.Name, h.Path, h.Content, h.Scheme, h.HTTPHeaders = name, path, content, scheme, headers
		return h
	}
	want := []Healthcheck{
		with("check-1", "/", "My App is up", ""),
		with("check-2", "/status?full=1", "", ""),
		with("check-3", "/", "Admin Dashboard", "", HTTPHeader{"Host", "admin.example.com"}),
		with("check-4", "/logo.png", "", "https", HTTPHeader{"Host", "static.example.com"}),
		with("check-5", "/unset", `{"ok":true}`, ""),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}

	t.Run("defaults", func(t *testing.T) {
		got, err := ParseChecksFile([]byte("/health\n"), nil)
		want := []Healthcheck{{Type: "startup", Name: "check-1", Path: "/health", Attempts: 5, Timeout: 30, Wait: 5, InitialDelay: 5}}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v, %v", got, err)
		}
	})
	t.Run("no checks", func(t *testing.T) {
		got, err := ParseChecksFile([]byte("WAIT=3\n# nothing\n"), nil)
		if err != nil || len(got) != 0 {
			t.Errorf("got %+v, %v", got, err)
		}
	})
}

func TestParseChecksFileErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"bad setting", "WAIT=soon\n/", `line 1: invalid WAIT value "soon"`},
		{"negative setting", "\nATTEMPTS=-1\n/", "line 2: invalid ATTEMPTS"},
		{"huge attempts", "ATTEMPTS=100000\n/", "invalid ATTEMPTS"},
		{"not a path", "health ok", `line 1: check "health" must be a path`},
		{"ftp", "ftp://example.com/", "must be a path"},
		{"empty host", "https:///x", "not a valid URL"},
		{"template syntax", "/ {{ var }", "template: CHECKS:1"},
		{"unknown function", `/ {{ env "X" }}`, `function "env" not defined`},
		{"recursive template", "/\n" + `{{define "T"}}x{{template "T"}}{{end}}{{template "T"}}`, "template: CHECKS:2: {{range}}, {{template}} and {{block}} are not allowed"},
		{"range", "/ {{if true}}{{else}}{{range 1000000000000}}{{end}}{{end}}", "are not allowed"},
		{"block", `{{block "B" .}}/{{end}}`, "are not allowed"},
		{"expands too much", strings.Repeat(`{{printf "%999999s" "x"}}`, 2), "expands to more than"},
		{"too large", "/ " + strings.Repeat("x", MaxChecksSize), "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseChecksFile([]byte(tt.in), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %+v, %v; want an error containing %q", got, err, tt.want)
			}
		})
	}
}

func TestRunChecksPath(t *testing.T) {
	srv := newCheckServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("service is healthy"))
		case "/redirect":
			http.Redirect(w, r, "/missing", http.StatusFound)
		case "/slow":
			<-r.Context().Done()
		case "/error":
			http.Error(w, "boom", http.StatusInternalServerError)
		default:
			http.NotFound(w, r)
		}
	})
	tests := []struct {
		name    string
		check   Healthcheck
		wantErr string
		wantOut []string
	}{
		{name: "200 passes", check: Healthcheck{Name: "ok", Path: "/ok"},
			wantOut: []string{
				"-----> Executing 1 healthcheck (web.1)",
				"       Running healthcheck name='ok' attempts=3 delay=0 path='/ok' port=" + strconv.Itoa(checkPort(srv.addr())) + " timeout=2000 type='path' wait=5 (web.1)",
				"       Healthcheck succeeded name='ok' (web.1)",
				"       All checks successful (web.1)",
			}},
		{name: "404 fails", check: Healthcheck{Name: "missing", Path: "/missing", Attempts: 2},
			wantErr: "1 of 1 healthcheck failed: name='missing': GET /missing: status 404 Not Found (2 attempts)",
			wantOut: []string{
				" !     Check attempt 1/2 failed name='missing' (web.1): GET /missing: status 404 Not Found",
				" !     Check attempt 2/2 failed name='missing' (web.1): GET /missing: status 404 Not Found",
				" !     Failure in name='missing' (web.1): GET /missing: status 404 Not Found (2 attempts)",
			}},
		{name: "500 fails", check: Healthcheck{Path: "/error", Attempts: 1}, wantErr: "name='check-1': GET /error: status 500"},
		{name: "content matches", check: Healthcheck{Path: "/ok", Content: "is healthy"},
			wantOut: []string{"content='is healthy'", "Healthcheck succeeded name='check-1'"}},
		{name: "content mismatch fails", check: Healthcheck{Path: "/ok", Content: "database ready", Attempts: 2},
			wantErr: `GET /ok: expected content "database ready" not found in the response (2 attempts)`},
		{name: "timeout fails", check: Healthcheck{Path: "/slow", Attempts: 1, Timeout: 20}, wantErr: "name='check-1': no answer within 20ms (1 attempt)"},
		{name: "redirect passes, not followed", check: Healthcheck{Path: "/redirect"}},
		{name: "warn only", check: Healthcheck{Name: "soft", Path: "/missing", Attempts: 1, Warn: true},
			wantOut: []string{"warn=true", " !     Warning in name='soft' (web.1): GET /missing: status 404 Not Found", "All checks successful"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.check.Timeout == 0 {
				tt.check.Timeout = 2000 // 2 s in test units: no flaky timeouts
			}
			before := srv.hits.Load()
			out, err := runTestChecks(t, CheckTarget{Name: "web.1", Addr: srv.addr()}, []Healthcheck{tt.check}, time.Hour)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrDeployFailed)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if tt.name == "redirect passes, not followed" && srv.hits.Load()-before != 1 {
				t.Errorf("%d requests, want 1 (no redirect followed)", srv.hits.Load()-before)
			}
		})
	}
}

func TestRunChecksAttempts(t *testing.T) {
	// The server fails its first two requests, then answers.
	tests := []struct {
		attempts int
		wantErr  bool
		wantHits int32
	}{{attempts: 3, wantHits: 3}, {attempts: 2, wantErr: true, wantHits: 2}, {attempts: 5, wantHits: 3}}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.attempts), func(t *testing.T) {
			srv := newCheckServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
				if n <= 2 {
					http.Error(w, "starting", http.StatusServiceUnavailable)
				}
			})
			start := time.Now()
			check := Healthcheck{Path: "/", Attempts: tt.attempts, Wait: 1, InitialDelay: 30, Timeout: 2000}
			_, err := runTestChecks(t, CheckTarget{Name: "web.1", Addr: srv.addr()}, []Healthcheck{check}, 0)
			if (err != nil) != tt.wantErr {
				t.Errorf("err = %v", err)
			}
			if got := srv.hits.Load(); got != tt.wantHits {
				t.Errorf("%d requests, want %d", got, tt.wantHits)
			}
			if d := srv.first.Sub(start); d < 30*testUnit {
				t.Errorf("first request %s after start, before initialDelay", d)
			}
		})
	}
}

func TestRunChecksHostAndPort(t *testing.T) {
	srv := newCheckServer(t, func(int, http.ResponseWriter, *http.Request) {})
	checks := []Healthcheck{
		{Path: "/", Port: checkPort(srv.addr()), Timeout: 2000},
		{Path: "/", Port: checkPort(srv.addr()), Timeout: 2000, HTTPHeaders: []HTTPHeader{{"Host", "app.example.com"}}},
	}
	// The target's own port is closed: the checks must use Port.
	_, err := runTestChecks(t, CheckTarget{Name: "web.1", Addr: "127.0.0.1:" + strconv.Itoa(checkPort(closedAddr(t)))}, checks, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	hosts := strings.Join(srv.hosts, ",")
	if !strings.Contains(hosts, srv.addr()) || !strings.Contains(hosts, "app.example.com") {
		t.Errorf("Host headers %q", hosts)
	}
}

func TestRunChecksStopsWhenContainerExits(t *testing.T) {
	addr := closedAddr(t)
	var polls atomic.Int32
	target := CheckTarget{Name: "web.1", Addr: addr, Running: func(context.Context) (bool, error) {
		return polls.Add(1) < 2, nil
	}}
	_, err := runTestChecks(t, target, []Healthcheck{{Path: "/", Attempts: 100, Wait: 1, Timeout: 2000}}, 0)
	if err == nil || !strings.Contains(err.Error(), "the container stopped running") {
		t.Errorf("err = %v", err)
	}
	if polls.Load() != 2 {
		t.Errorf("Running called %d times, want 2 (stop at the first exit)", polls.Load())
	}
}

func TestRunChecksDefault(t *testing.T) {
	t.Run("passes when the container stays up", func(t *testing.T) {
		var polls atomic.Int32
		target := CheckTarget{Name: "worker.1", Running: func(context.Context) (bool, error) { polls.Add(1); return true, nil }}
		out, err := runTestChecks(t, target, nil, 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if polls.Load() < 2 {
			t.Errorf("Running called %d times", polls.Load())
		}
		for _, w := range []string{
			"-----> Executing 1 healthcheck (worker.1)",
			"       Running healthcheck name='default' type='uptime' uptime=0.05 (worker.1)",
			"       Healthcheck succeeded name='default' (worker.1)",
			"       All checks successful (worker.1)",
		} {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q", w)
			}
		}
		if strings.Contains(out, "listening") {
			t.Error("a worker got a listening check")
		}
	})

	t.Run("fails when the container dies early", func(t *testing.T) {
		var polls atomic.Int32
		target := CheckTarget{Name: "web.1", Running: func(context.Context) (bool, error) { return polls.Add(1) < 3, nil }}
		out, err := runTestChecks(t, target, nil, time.Second)
		if err == nil || !strings.Contains(err.Error(), "name='default': the container exited after") {
			t.Fatalf("err = %v", err)
		}
		if !strings.Contains(out, " !     Failure in name='default' (web.1): the container exited") {
			t.Error("no failure line")
		}
	})

	t.Run("fails when the engine cannot tell", func(t *testing.T) {
		target := CheckTarget{Name: "web.1", Running: func(context.Context) (bool, error) { return false, errors.New("no such container") }}
		if _, err := runTestChecks(t, target, nil, time.Hour); err == nil || !strings.Contains(err.Error(), "no such container") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("web warns when nothing listens", func(t *testing.T) {
		addr := closedAddr(t)
		out, err := runTestChecks(t, CheckTarget{Name: "web.1", Addr: addr}, nil, 30*time.Millisecond)
		if err != nil {
			t.Fatalf("a warn-only check failed the deploy: %v", err)
		}
		for _, w := range []string{
			"-----> Executing 2 healthchecks (web.1)",
			"       Running healthcheck name='port listening check' port=" + strconv.Itoa(checkPort(addr)) + " type='listening' warn=true (web.1)",
			" !     Warning in name='port listening check' (web.1): nothing accepted a connection on " + addr,
			"       All checks successful (web.1)",
		} {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q", w)
			}
		}
	})

	t.Run("web listening passes quietly", func(t *testing.T) {
		srv := newCheckServer(t, func(int, http.ResponseWriter, *http.Request) {})
		out, err := runTestChecks(t, CheckTarget{Name: "web.2", Addr: srv.addr()}, nil, 10*time.Millisecond)
		if err != nil || !strings.Contains(out, "Healthcheck succeeded name='port listening check' (web.2)") || strings.Contains(out, "Warning") {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("only liveness checks: the default runs", func(t *testing.T) {
		out, err := runTestChecks(t, CheckTarget{Name: "worker.1"}, []Healthcheck{{Type: "liveness", Path: "/"}}, 0)
		if err != nil || !strings.Contains(out, "Ignoring 1 liveness/readiness") || !strings.Contains(out, "name='default'") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestRunChecksKinds(t *testing.T) {
	srv := newCheckServer(t, func(int, http.ResponseWriter, *http.Request) {})
	closed := closedAddr(t)
	exec := func(code int, err error) func(context.Context, []string) (int, string, error) {
		return func(_ context.Context, cmd []string) (int, string, error) {
			return code, "checking " + strings.Join(cmd, " ") + "\nnot ready", err
		}
	}
	tests := []struct {
		name    string
		target  CheckTarget
		check   Healthcheck
		wantErr string
	}{
		{"listening passes", CheckTarget{Name: "web.1", Addr: srv.addr()}, Healthcheck{Listening: true}, ""},
		{"listening fails", CheckTarget{Name: "web.1", Addr: closed}, Healthcheck{Listening: true, Attempts: 2, Wait: 1}, "connect to " + closed},
		{"no address", CheckTarget{Name: "worker.1"}, Healthcheck{Listening: true}, "no network address"},
		{"uptime passes", CheckTarget{Name: "worker.1"}, Healthcheck{Uptime: 20}, ""},
		{"uptime fails", CheckTarget{Name: "worker.1", Running: func(context.Context) (bool, error) { return false, nil }}, Healthcheck{Uptime: 20}, "the container exited"},
		{"command passes", CheckTarget{Name: "worker.1", Exec: exec(0, nil)}, Healthcheck{Command: []string{"check", "-q"}}, ""},
		{"command fails", CheckTarget{Name: "worker.1", Exec: exec(3, nil)}, Healthcheck{Command: []string{"check"}, Attempts: 2, Wait: 1}, "command exited with status 3: not ready (2 attempts)"},
		{"command exec error", CheckTarget{Name: "worker.1", Exec: exec(0, errors.New("exec failed"))}, Healthcheck{Command: []string{"check"}, Attempts: 1}, "exec failed"},
		{"command unsupported", CheckTarget{Name: "worker.1"}, Healthcheck{Command: []string{"check"}}, "not supported"},
		{"invalid check", CheckTarget{Name: "web.1", Addr: srv.addr()}, Healthcheck{Path: "/", Uptime: 3}, "sets path and uptime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check.Timeout = 2000
			_, err := runTestChecks(t, tt.target, []Healthcheck{tt.check}, 0)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestRunChecksSeveral(t *testing.T) {
	srv := newCheckServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
		}
	})
	checks := []Healthcheck{
		{Name: "root", Path: "/", Timeout: 2000},
		{Name: "a", Path: "/a", Attempts: 1, Timeout: 2000},
		{Name: "b", Path: "/b", Attempts: 1, Timeout: 2000},
	}
	_, err := runTestChecks(t, CheckTarget{Name: "web.1", Addr: srv.addr()}, checks, 0)
	if err == nil || !strings.Contains(err.Error(), "2 of 3 healthchecks failed: name='a': GET /a: status 404 Not Found (1 attempt); name='b'") {
		t.Errorf("err = %v", err)
	}
}

func TestRunChecksContextCancel(t *testing.T) {
	for name, checks := range map[string][]Healthcheck{
		"default": nil,
		"path":    {{Path: "/", InitialDelay: 3600}},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(20*time.Millisecond, cancel)
			err := RunChecks(ctx, CheckTarget{Name: "web.1", Addr: closedAddr(t)}, checks, time.Hour, nil)
			if err == nil || !strings.Contains(err.Error(), "checks interrupted: context canceled") {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestRunChecksFromTemplatedChecksFile(t *testing.T) {
	srv := newCheckServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/status" && r.Host == "app.example.com" {
			w.Write([]byte("version 42 running"))
			return
		}
		http.NotFound(w, r)
	})
	file := "WAIT=1\nTIMEOUT=2000\nATTEMPTS=2\n//{{ var \"DOMAIN\" }}{{ var \"CHECK_PATH\" }}  version {{ var \"VERSION\" }}\n"
	checks, err := ParseChecksFile([]byte(file), map[string]string{"DOMAIN": "app.example.com", "CHECK_PATH": "/status", "VERSION": "42"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runTestChecks(t, CheckTarget{Name: "web.1", Addr: srv.addr()}, checks, 0); err != nil {
		t.Errorf("templated CHECKS failed: %v", err)
	}
	checks, _ = ParseChecksFile([]byte(file), map[string]string{"DOMAIN": "app.example.com", "CHECK_PATH": "/status", "VERSION": "43"})
	if _, err := runTestChecks(t, CheckTarget{Name: "web.1", Addr: srv.addr()}, checks, 0); err == nil {
		t.Error("a content mismatch passed")
	}
}
