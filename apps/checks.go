package apps

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"text/template/parse"
	"time"
)

// Zero-downtime checks, in Dokku's formats:
// https://dokku.com/docs/deployment/zero-downtime-deploys/ (the legacy
// CHECKS file, its defaults and templating) and the app.json
// "healthchecks" key, whose fields and defaults are those of Dokku's
// docker-container-healthchecker (docs/file-format.md there).

// Healthcheck types. Only startup checks gate a deploy, as with Dokku's
// docker-local scheduler; liveness and readiness checks are ignored.
const (
	CheckStartup   = "startup"
	CheckLiveness  = "liveness"
	CheckReadiness = "readiness"
)

// Defaults of an app.json healthcheck (docker-container-healthchecker's
// file format): 3 attempts, 5 s timeout per attempt, 5 s between
// attempts, no initial delay. A zero value means the default.
const (
	DefaultCheckAttempts = 3
	DefaultCheckTimeout  = 5
	DefaultCheckWait     = 5
)

// Defaults of the legacy CHECKS file (Dokku's zero-downtime docs: "wait
// for 5 seconds before running the checks, timeout the checks after 30
// seconds, and attempt the checks 5 times"). WAIT is both the delay
// before the first attempt and the pause between attempts.
const (
	ChecksFileAttempts = 5
	ChecksFileTimeout  = 30
	ChecksFileWait     = 5
)

// Bounds on check values, so a manifest cannot overflow a duration or
// retry forever; MaxChecksSize bounds the CHECKS file.
const (
	maxCheckSeconds  = 24 * 60 * 60
	maxCheckAttempts = 1000
	MaxChecksSize    = 256 << 10
	maxChecksOutput  = 1 << 20 // the CHECKS file once templated
	maxCheckBody     = 1 << 20 // bytes of a response searched for Content
)

// HTTPHeader is a header a path check sends (app.json "httpHeaders").
type HTTPHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Healthcheck is one check of a process type, as in app.json. Its kind
// follows from the fields set (at most one of them): Command runs in the
// container, Path is an HTTP GET, Listening is a TCP connect, otherwise it
// is an uptime check (the container must stay up Uptime seconds).
// Durations are in seconds.
type Healthcheck struct {
	Type         string       `json:"type,omitempty"` // startup (default), liveness, readiness
	Name         string       `json:"name,omitempty"`
	Path         string       `json:"path,omitempty"`
	Scheme       string       `json:"scheme,omitempty"` // http (default) or https
	HTTPHeaders  []HTTPHeader `json:"httpHeaders,omitempty"`
	Content      string       `json:"content,omitempty"` // the body must contain it
	Attempts     int          `json:"attempts,omitempty"`
	Timeout      int          `json:"timeout,omitempty"`
	Wait         int          `json:"wait,omitempty"`
	InitialDelay int          `json:"initialDelay,omitempty"`
	Port         int          `json:"port,omitempty"` // default: the process's port
	Command      []string     `json:"command,omitempty"`
	Uptime       int          `json:"uptime,omitempty"`
	Listening    bool         `json:"listening,omitempty"`
	Warn         bool         `json:"warn,omitempty"` // a failure only warns
}

// Kind returns how h checks: "command", "listening", "path" or "uptime".
func (h Healthcheck) Kind() string {
	switch {
	case len(h.Command) > 0:
		return "command"
	case h.Listening:
		return "listening"
	case h.Path != "":
		return "path"
	}
	return "uptime"
}

// WithDefaults returns h with Dokku's defaults for the values left zero:
// type startup, 3 attempts, timeout 5, wait 5, scheme http.
func (h Healthcheck) WithDefaults() Healthcheck {
	if h.Type == "" {
		h.Type = CheckStartup
	}
	if h.Attempts <= 0 {
		h.Attempts = DefaultCheckAttempts
	}
	if h.Timeout <= 0 {
		h.Timeout = DefaultCheckTimeout
	}
	if h.Wait <= 0 {
		h.Wait = DefaultCheckWait
	}
	if h.Scheme == "" {
		h.Scheme = "http"
	}
	return h
}

var headerNameRe = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// Validate reports a healthcheck that cannot run.
func (h Healthcheck) Validate() error {
	switch h.Type {
	case "", CheckStartup, CheckLiveness, CheckReadiness:
	default:
		return fmt.Errorf("type must be %q, %q or %q, got %q", CheckStartup, CheckLiveness, CheckReadiness, h.Type)
	}
	var kinds []string
	if len(h.Command) > 0 {
		kinds = append(kinds, "command")
	}
	if h.Path != "" {
		kinds = append(kinds, "path")
	}
	if h.Listening {
		kinds = append(kinds, "listening")
	}
	if h.Uptime != 0 {
		kinds = append(kinds, "uptime")
	}
	if len(kinds) > 1 {
		return fmt.Errorf("name=%q sets %s: a healthcheck is one of command, path, listening or uptime", h.Name, strings.Join(kinds, " and "))
	}
	for _, n := range []struct {
		name string
		v    int
	}{{"timeout", h.Timeout}, {"wait", h.Wait}, {"initialDelay", h.InitialDelay}, {"uptime", h.Uptime}} {
		if n.v < 0 || n.v > maxCheckSeconds {
			return fmt.Errorf("%s must be from 0 to %d seconds, got %d", n.name, maxCheckSeconds, n.v)
		}
	}
	if h.Attempts < 0 || h.Attempts > maxCheckAttempts {
		return fmt.Errorf("attempts must be from 0 to %d, got %d", maxCheckAttempts, h.Attempts)
	}
	if h.Port < 0 || h.Port > 65535 {
		return fmt.Errorf("port must be from 1 to 65535, got %d", h.Port)
	}
	if h.Path != "" {
		if !strings.HasPrefix(h.Path, "/") || strings.HasPrefix(h.Path, "//") {
			return fmt.Errorf("path must start with a single '/', got %q", clip(h.Path))
		}
		if _, err := url.ParseRequestURI(h.Path); err != nil || strings.ContainsAny(h.Path, " \t\r\n") {
			return fmt.Errorf("path %q is not a valid URL path", clip(h.Path))
		}
	}
	if h.Content != "" && h.Path == "" {
		return errors.New("content is only checked by a path check: set a path")
	}
	if h.Scheme != "" && h.Scheme != "http" && h.Scheme != "https" {
		return fmt.Errorf("scheme must be http or https, got %q", h.Scheme)
	}
	for _, hd := range h.HTTPHeaders {
		if !headerNameRe.MatchString(hd.Name) || strings.ContainsAny(hd.Value, "\r\n\x00") {
			return fmt.Errorf("invalid httpHeaders entry %q", clip(hd.Name+": "+hd.Value))
		}
	}
	if len(h.Command) > 0 && h.Command[0] == "" {
		return errors.New("command must start with a program")
	}
	return nil
}

var checksSettingRe = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)

// ParseChecksFile parses Dokku's legacy CHECKS file into startup checks
// of the web process. The file is first run through text/template, where
// {{ var "NAME" }} is the app's config value NAME ("" when unset, as with
// Dokku's sigil). Then each line is blank, a comment (starting with '#'),
// a setting WAIT=N, TIMEOUT=N or ATTEMPTS=N (other NAME=VALUE lines are
// ignored; a trailing "# comment" is allowed) applying to every check, or
// a check: a path ("/health"), a host-relative URL ("//admin.example.com/")
// or a URL ("https://example.com/"), optionally followed by content the
// response must contain (the rest of the line). A host becomes the Host
// header. Checks are named check-1, check-2, ... Defaults are Dokku's
// (ChecksFileAttempts, ...); WAIT is both the initial delay and the wait
// between attempts (WAIT=0: no initial delay, the app.json default wait).
// {{range}}, {{template}} and {{block}} are refused, so templating ends.
func ParseChecksFile(data []byte, env map[string]string) ([]Healthcheck, error) {
	if len(data) > MaxChecksSize {
		return nil, fmt.Errorf("CHECKS is larger than %d bytes", MaxChecksSize)
	}
	tmpl, err := template.New("CHECKS").Funcs(template.FuncMap{
		"var": func(name string) string { return env[name] },
	}).Parse(string(data))
	if err != nil {
		return nil, err
	}
	if err := checksTemplateSafe(tmpl.Tree.Root, string(data)); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&checksLimitWriter{w: &buf, n: maxChecksOutput}, nil); err != nil {
		return nil, err
	}

	attempts, timeout, wait := ChecksFileAttempts, ChecksFileTimeout, ChecksFileWait
	var checks []Healthcheck
	for n, line := range strings.Split(buf.String(), "\n") {
		n++
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if m := checksSettingRe.FindStringSubmatch(line); m != nil {
			val, _, _ := strings.Cut(m[2], "#")
			val = strings.TrimSpace(val)
			var dst *int
			switch m[1] {
			case "ATTEMPTS":
				dst = &attempts
			case "TIMEOUT":
				dst = &timeout
			case "WAIT":
				dst = &wait
			default:
				continue
			}
			v, err := strconv.Atoi(val)
			if err != nil || v < 0 || v > maxCheckSeconds || (dst == &attempts && v > maxCheckAttempts) {
				return nil, fmt.Errorf("line %d: invalid %s value %q: expected a whole number", n, m[1], clip(val))
			}
			*dst = v
			continue
		}
		target, content := line, ""
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			target, content = line[:i], strings.TrimSpace(line[i:])
		}
		h, err := checksTarget(target)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		h.Name = fmt.Sprintf("check-%d", len(checks)+1)
		h.Type = CheckStartup
		h.Content = content
		checks = append(checks, h)
	}
	for i := range checks {
		checks[i].Attempts, checks[i].Timeout = attempts, timeout
		checks[i].Wait, checks[i].InitialDelay = wait, wait
		if err := checks[i].Validate(); err != nil {
			return nil, fmt.Errorf("%s: %v", checks[i].Name, err)
		}
	}
	return checks, nil
}

// checksTemplateSafe rejects loops and template calls in the CHECKS
// template src, which could make templating it run for ever.
func checksTemplateSafe(n parse.Node, src string) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checksTemplateSafe(c, src); err != nil {
				return err
			}
		}
	case *parse.IfNode:
		return checksTemplateBranch(&n.BranchNode, src)
	case *parse.WithNode:
		return checksTemplateBranch(&n.BranchNode, src)
	case *parse.RangeNode, *parse.TemplateNode:
		line := 1 + strings.Count(src[:min(int(n.Position()), len(src))], "\n")
		return fmt.Errorf("template: CHECKS:%d: {{range}}, {{template}} and {{block}} are not allowed", line)
	}
	return nil
}

func checksTemplateBranch(b *parse.BranchNode, src string) error {
	if err := checksTemplateSafe(b.List, src); err != nil {
		return err
	}
	return checksTemplateSafe(b.ElseList, src)
}

// checksTarget parses the target of a CHECKS line into a path check.
func checksTarget(s string) (Healthcheck, error) {
	var h Healthcheck
	raw := s
	switch {
	case strings.HasPrefix(s, "//"):
		raw = "http:" + s
	case strings.HasPrefix(s, "/"):
		raw = "http://localhost" + s
	case strings.HasPrefix(s, "http://"), strings.HasPrefix(s, "https://"):
	default:
		return h, fmt.Errorf("check %q must be a path (/health), //host/path or a http(s) URL", clip(s))
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return h, fmt.Errorf("check %q is not a valid URL", clip(s))
	}
	h.Path = u.RequestURI()
	if strings.HasPrefix(s, "https://") {
		h.Scheme = "https"
	}
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") {
		h.HTTPHeaders = []HTTPHeader{{Name: "Host", Value: u.Host}}
	}
	return h, nil
}

// checksLimitWriter fails once more than n bytes are written.
type checksLimitWriter struct {
	w io.Writer
	n int
}

func (l *checksLimitWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, fmt.Errorf("CHECKS expands to more than %d bytes", maxChecksOutput)
	}
	l.n -= len(p)
	return l.w.Write(p)
}

// CheckTarget is one new container to check.
type CheckTarget struct {
	Name string // "web.1"; a "web." prefix marks a web process
	Addr string // host:port the process listens on; "" if none
	// Running reports whether the container is still up (nil: assume so).
	Running func(ctx context.Context) (bool, error)
	// Exec runs a command check in the container; nil fails such checks.
	Exec func(ctx context.Context, cmd []string) (exitCode int, output string, err error)
}

// RunChecks runs the startup checks of one container and returns an error
// naming the failed ones. With no startup checks it runs the default: the
// container must stay up for defaultWait, and for a web process with an
// address a warn-only check that something accepts TCP connections on it.
// Checks run in parallel; every wait respects ctx. out gets Dokku-shaped
// lines, each suffixed with the container's name:
//
//	-----> Executing 2 healthchecks (web.1)
//	       Running healthcheck name='check-1' attempts=3 delay=0 path='/' port=5000 timeout=5 type='path' wait=5 (web.1)
//	 !     Check attempt 1/3 failed name='check-1' (web.1): GET /: status 404 Not Found
//	       Healthcheck succeeded name='check-1' (web.1)
//	 !     Failure in name='check-1' (web.1): GET /: status 404 Not Found (3 attempts)
//	 !     Warning in name='port listening check' (web.1): ...
//	       All checks successful (web.1)
//
// Path checks GET scheme://Addr+path with Go's default Host header (the
// address, as Dokku's healthchecker sends) unless httpHeaders set one,
// follow no redirects, and pass on a 2xx or 3xx status whose body (first
// MiB) contains Content. https skips certificate verification: a
// container reached by its address has no certificate for it.
func RunChecks(ctx context.Context, t CheckTarget, checks []Healthcheck, defaultWait time.Duration, out io.Writer) error {
	return runChecks(ctx, t, checks, defaultWait, out, time.Second)
}

// checkRun runs the checks of one target; unit is what one "second" of a
// Healthcheck lasts (tests shrink it).
type checkRun struct {
	t    CheckTarget
	out  *checkLineWriter
	unit time.Duration
}

// preparedCheck is one check ready to run: a description and its function.
type preparedCheck struct {
	name, desc string
	warn       bool
	run        func(ctx context.Context) error
}

func runChecks(ctx context.Context, t CheckTarget, checks []Healthcheck, defaultWait time.Duration, out io.Writer, unit time.Duration) error {
	r := &checkRun{t: t, out: &checkLineWriter{w: out}, unit: unit}
	var list []preparedCheck
	ignored := 0
	for i, h := range checks {
		h = h.WithDefaults()
		if h.Type != CheckStartup {
			ignored++
			continue
		}
		if h.Name == "" {
			h.Name = fmt.Sprintf("check-%d", i+1)
		}
		list = append(list, r.prepare(h))
	}
	if ignored > 0 {
		r.out.printf("       Ignoring %d liveness/readiness healthcheck(s): only startup checks run on deploy (%s)\n", ignored, t.Name)
	}
	if len(list) == 0 {
		list = r.defaults(max(defaultWait, 0))
	}

	r.out.printf("-----> Executing %d healthcheck%s (%s)\n", len(list), checkPlural(len(list)), t.Name)
	for _, c := range list {
		r.out.printf("       Running healthcheck %s (%s)\n", c.desc, t.Name)
	}
	errs := make([]error, len(list))
	var wg sync.WaitGroup
	for i, c := range list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.run(ctx)
			switch {
			case err == nil:
				r.out.printf("       Healthcheck succeeded name='%s' (%s)\n", c.name, t.Name)
			case c.warn && ctx.Err() == nil:
				r.out.printf(" !     Warning in name='%s' (%s): %v\n", c.name, t.Name, err)
			default:
				r.out.printf(" !     Failure in name='%s' (%s): %v\n", c.name, t.Name, err)
				errs[i] = fmt.Errorf("name='%s': %v", c.name, err)
			}
		}()
	}
	wg.Wait()
	var failed []string
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) > 0 {
		return Errorf(ErrDeployFailed, "%d of %d healthcheck%s failed: %s", len(failed), len(list), checkPlural(len(list)), strings.Join(failed, "; "))
	}
	r.out.printf("       All checks successful (%s)\n", t.Name)
	return nil
}

// defaults are the checks of a container without startup checks.
func (r *checkRun) defaults(wait time.Duration) []preparedCheck {
	list := []preparedCheck{{
		name: "default",
		desc: fmt.Sprintf("name='default' type='uptime' uptime=%s", checkSeconds(wait)),
		run:  func(ctx context.Context) error { return r.stayUp(ctx, wait) },
	}}
	if strings.HasPrefix(r.t.Name, "web.") && r.t.Addr != "" {
		const name = "port listening check"
		list = append(list, preparedCheck{
			name: name, warn: true,
			desc: fmt.Sprintf("name='%s' port=%d type='listening' warn=true", name, checkPort(r.t.Addr)),
			run:  func(ctx context.Context) error { return r.listenWithin(ctx, r.t.Addr, wait) },
		})
	}
	return list
}

// prepare turns a startup healthcheck (with defaults) into a check.
func (r *checkRun) prepare(h Healthcheck) preparedCheck {
	c := preparedCheck{name: h.Name, warn: h.Warn}
	if err := h.Validate(); err != nil {
		c.desc = fmt.Sprintf("name='%s' type='invalid'", h.Name)
		c.run = func(context.Context) error { return err }
		return c
	}
	addr, addrErr := r.addr(h)
	switch h.Kind() {
	case "uptime": // counted from when the checks start
		c.desc = fmt.Sprintf("name='%s' type='uptime' uptime=%d", h.Name, h.Uptime)
		c.run = func(ctx context.Context) error { return r.stayUp(ctx, time.Duration(h.Uptime)*r.unit) }
	case "listening":
		c.desc = fmt.Sprintf("name='%s' attempts=%d port=%d timeout=%d type='listening' wait=%d", h.Name, h.Attempts, checkPort(addr), h.Timeout, h.Wait)
		c.run = func(ctx context.Context) error {
			if addrErr != nil {
				return addrErr
			}
			return r.retry(ctx, h, func(ctx context.Context) error { return checkDial(ctx, addr) })
		}
	case "path":
		c.desc = fmt.Sprintf("name='%s' attempts=%d delay=%d path='%s' port=%d timeout=%d type='path' wait=%d", h.Name, h.Attempts, h.InitialDelay, h.Path, checkPort(addr), h.Timeout, h.Wait)
		if h.Content != "" {
			c.desc += fmt.Sprintf(" content='%s'", h.Content)
		}
		c.run = func(ctx context.Context) error {
			if addrErr != nil {
				return addrErr
			}
			client, done := checkClient()
			defer done()
			u := h.Scheme + "://" + addr + h.Path
			return r.retry(ctx, h, func(ctx context.Context) error { return r.get(ctx, client, u, h) })
		}
	case "command":
		c.desc = fmt.Sprintf("name='%s' attempts=%d command='%s' timeout=%d type='command' wait=%d", h.Name, h.Attempts, strings.Join(h.Command, " "), h.Timeout, h.Wait)
		c.run = func(ctx context.Context) error {
			if r.t.Exec == nil {
				return errors.New("command healthchecks are not supported for this container")
			}
			return r.retry(ctx, h, func(ctx context.Context) error {
				code, output, err := r.t.Exec(ctx, h.Command)
				if err != nil {
					return err
				}
				if code != 0 {
					return fmt.Errorf("command exited with status %d%s", code, checkLastLine(output))
				}
				return nil
			})
		}
	}
	if h.Warn {
		c.desc += " warn=true"
	}
	return c
}

// addr is where h connects: the target's address, with h.Port if set.
func (r *checkRun) addr(h Healthcheck) (string, error) {
	if r.t.Addr == "" {
		return "", errors.New("the container has no network address to check")
	}
	if h.Port == 0 {
		return r.t.Addr, nil
	}
	host, _, err := net.SplitHostPort(r.t.Addr)
	if err != nil {
		return "", fmt.Errorf("bad container address %q: %v", r.t.Addr, err)
	}
	return net.JoinHostPort(host, strconv.Itoa(h.Port)), nil
}

// retry waits h.InitialDelay, then tries up to h.Attempts times, each
// bounded by h.Timeout, h.Wait apart. It stops early when the container
// is no longer running.
func (r *checkRun) retry(ctx context.Context, h Healthcheck, try func(context.Context) error) error {
	if err := checkSleep(ctx, time.Duration(h.InitialDelay)*r.unit); err != nil {
		return err
	}
	timeout := time.Duration(h.Timeout) * r.unit
	var last error
	for i := 1; i <= h.Attempts; i++ {
		actx, cancel := context.WithTimeout(ctx, timeout)
		last = try(actx)
		timedOut := actx.Err() != nil
		cancel()
		if last == nil {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("checks interrupted: %w", err)
		}
		if timedOut {
			last = fmt.Errorf("no answer within %s", timeout)
		}
		r.out.printf(" !     Check attempt %d/%d failed name='%s' (%s): %v\n", i, h.Attempts, h.Name, r.t.Name, last)
		if i == h.Attempts {
			break
		}
		if up, err := r.running(ctx); err == nil && !up {
			return fmt.Errorf("the container stopped running (%v)", last)
		}
		if err := checkSleep(ctx, time.Duration(h.Wait)*r.unit); err != nil {
			return err
		}
	}
	return fmt.Errorf("%v (%d attempt%s)", last, h.Attempts, checkPlural(h.Attempts))
}

// get is one attempt of a path check.
func (r *checkRun) get(ctx context.Context, client *http.Client, u string, h Healthcheck) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "*/*")
	req.Header.Set("User-Agent", "rivetr-healthcheck")
	for _, hd := range h.HTTPHeaders {
		if strings.EqualFold(hd.Name, "Host") {
			req.Host = hd.Value
		} else {
			req.Header.Set(hd.Name, hd.Value)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("GET %s: %v", h.Path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("GET %s: status %s", h.Path, resp.Status)
	}
	if h.Content == "" {
		return nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCheckBody))
	if err != nil {
		return fmt.Errorf("GET %s: read body: %v", h.Path, err)
	}
	if !bytes.Contains(body, []byte(h.Content)) {
		return fmt.Errorf("GET %s: expected content %q not found in the response", h.Path, h.Content)
	}
	return nil
}

// checkClient is an HTTP client for one path check: no proxy from the
// environment, no keep-alive, no redirects followed.
func checkClient() (*http.Client, func()) {
	tr := &http.Transport{
		DialContext:       (&net.Dialer{}).DialContext,
		DisableKeepAlives: true,
		// A container reached by its address has no certificate for it.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec
	}
	c := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, tr.CloseIdleConnections
}

// stayUp checks that the container keeps running for d.
func (r *checkRun) stayUp(ctx context.Context, d time.Duration) error {
	start := time.Now()
	poll := checkPollInterval(d)
	for {
		up, err := r.running(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("checks interrupted: %w", ctx.Err())
			}
			return fmt.Errorf("cannot inspect the container: %v", err)
		}
		if !up {
			return fmt.Errorf("the container exited after %s; it must stay up for %s", time.Since(start).Round(10*time.Millisecond), d)
		}
		left := d - time.Since(start)
		if left <= 0 {
			return nil
		}
		if err := checkSleep(ctx, min(poll, left)); err != nil {
			return err
		}
	}
}

// listenWithin dials addr until it accepts a connection or d has passed.
func (r *checkRun) listenWithin(ctx context.Context, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	poll := checkPollInterval(d)
	for {
		dctx, cancel := context.WithTimeout(ctx, min(time.Second, max(time.Until(deadline), 100*time.Millisecond)))
		err := checkDial(dctx, addr)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("checks interrupted: %w", ctx.Err())
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("nothing accepted a connection on %s within %s (%v); the app should listen on 0.0.0.0:$PORT", addr, d, errors.Unwrap(err))
		}
		if err := checkSleep(ctx, min(poll, time.Until(deadline))); err != nil {
			return err
		}
	}
}

func (r *checkRun) running(ctx context.Context) (bool, error) {
	if r.t.Running == nil {
		return true, nil
	}
	return r.t.Running(ctx)
}

func checkDial(ctx context.Context, addr string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		cause := err
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			cause = oe.Err
		}
		var se *os.SyscallError
		if errors.As(cause, &se) {
			cause = se.Err
		}
		return fmt.Errorf("connect to %s: %w", addr, cause)
	}
	return c.Close()
}

// sleep waits d or until ctx is done.
func checkSleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("checks interrupted: %w", ctx.Err())
	}
}

// pollInterval is how often a wait of d looks at the container: every
// 250 ms, more often for short waits.
func checkPollInterval(d time.Duration) time.Duration {
	return min(250*time.Millisecond, max(d/10, 5*time.Millisecond))
}

func checkPort(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// seconds prints d in seconds: "10", or "0.3" for fractions.
func checkSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

func checkPlural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// lastLine is ": <last line of output>" for an error, or "".
func checkLastLine(output string) string {
	output = strings.TrimSpace(output)
	if i := strings.LastIndexByte(output, '\n'); i >= 0 {
		output = output[i+1:]
	}
	if output == "" {
		return ""
	}
	return ": " + clip(output)
}

// checkLineWriter writes whole lines to w, one at a time, so the lines of
// checks running in parallel do not mix.
type checkLineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *checkLineWriter) printf(format string, args ...any) {
	if l.w == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}
