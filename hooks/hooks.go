package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/rivetr/rivetr/apps"
)

// Hook points the pipeline calls; see the package documentation for each
// one's arguments and when it runs.
const (
	PostCreate         = "post-create"
	PreDelete          = "pre-delete"
	PostDelete         = "post-delete"
	PostExtract        = "post-extract"
	BuilderDetect      = "builder-detect"
	PreBuild           = "pre-build"
	PostBuild          = "post-build"
	PreReleaseBuilder  = "pre-release-builder"
	PostReleaseBuilder = "post-release-builder"
	DockerArgsBuild    = "docker-args-build"
	DockerArgsDeploy   = "docker-args-deploy"
	DockerArgsRun      = "docker-args-run"
	PreDeploy          = "pre-deploy"
	CheckDeploy        = "check-deploy"
	PostDeploy         = "post-deploy"
	PostConfigUpdate   = "post-config-update"
	PostDomainsUpdate  = "post-domains-update"
)

// Limits and defaults of external runs.
const (
	// DefaultTimeout bounds one run of one trigger executable.
	DefaultTimeout = 60 * time.Second
	// DefaultPath is the PATH of a trigger when Config.Path is empty.
	DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	// MaxOutput is how much of one trigger's stdout is kept.
	MaxOutput = 1 << 20
	// MaxStdin is the largest Opts.Stdin Run accepts.
	MaxStdin = 1 << 20
	// StderrTail is how much of a trigger's stderr an error quotes.
	StderrTail = 4 << 10
	// DisabledMarker is the file whose presence in a plugin's directory
	// disables the plugin.
	DisabledMarker = ".disabled"
)

// Errors Run returns; test with errors.Is.
var (
	// ErrHookFailed: a trigger executable exited non-zero, was killed, timed
	// out or could not be started.
	ErrHookFailed = errors.New("hook failed")
	// ErrHookTimeout: a trigger executable ran longer than the timeout and
	// was killed (the error also matches ErrHookFailed).
	ErrHookTimeout = errors.New("hook timed out")
	// ErrInvalidName: a hook point or plugin name outside the allowed
	// charset.
	ErrInvalidName = errors.New("invalid hook or plugin name")
)

// Opts are the streams and extra environment of one Run. Stdin is read
// once (at most MaxStdin bytes) and given in full to every handler; the
// triggers' stderr is streamed to Out; Env is added to every external run.
type Opts = apps.HookOpts

var _ apps.Hooks = (*Runner)(nil)

// IO is what an in-process hook gets besides its arguments: its own reader
// of the caller's stdin, the user-facing writer (never nil) and the
// caller's extra environment (read only).
type IO struct {
	Stdin io.Reader
	Out   io.Writer
	Env   map[string]string
}

// Func is an in-process hook. Its returned string counts as its stdout; an
// error stops Run and is returned wrapped with the hook's name.
type Func func(ctx context.Context, args []string, io IO) (string, error)

// Config configures a Runner.
type Config struct {
	// DataDir is $RIVETR_DATA_DIR: exported to triggers as RIVETR_DATA_DIR
	// and HOME.
	DataDir string
	// PluginsDir holds the plugins; default DataDir/plugins. With neither
	// set, only in-process hooks run.
	PluginsDir string
	// Timeout bounds each external run; default DefaultTimeout.
	Timeout time.Duration
	// Path is the PATH of external runs; default DefaultPath.
	Path string
	// Disabled, if set, reports plugins to skip besides those holding a
	// DisabledMarker file.
	Disabled func(plugin string) bool
	// PluginEnv, if set, returns extra environment of one plugin's runs
	// (its configuration); it cannot override the documented variables.
	PluginEnv func(plugin string) map[string]string
}

// ValuePoints are the hook points whose stdout is a return value; the
// stdout of every other point is streamed to the user as well.
var ValuePoints = map[string]bool{
	BuilderDetect: true, DockerArgsBuild: true, DockerArgsDeploy: true, DockerArgsRun: true,
}

// Runner runs the hooks registered on hook points. It is safe for
// concurrent use; Register is meant for wiring, before the first Run.
type Runner struct {
	dataDir    string
	pluginsDir string
	path       string
	timeout    time.Duration
	disabled   func(string) bool
	pluginEnv  func(string) map[string]string
	waitDelay  time.Duration
	log        zerolog.Logger

	mu    sync.RWMutex
	funcs map[string][]namedFunc
}

type namedFunc struct {
	name string
	fn   Func
}

// New returns a Runner for cfg that logs to log.
func New(cfg Config, log zerolog.Logger) *Runner {
	r := &Runner{
		dataDir:    cfg.DataDir,
		pluginsDir: cfg.PluginsDir,
		path:       cfg.Path,
		timeout:    cfg.Timeout,
		disabled:   cfg.Disabled,
		pluginEnv:  cfg.PluginEnv,
		waitDelay:  time.Second,
		log:        log.With().Str("component", "hooks").Logger(),
		funcs:      map[string][]namedFunc{},
	}
	if r.pluginsDir == "" && r.dataDir != "" {
		r.pluginsDir = filepath.Join(r.dataDir, "plugins")
	}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	if r.path == "" {
		r.path = DefaultPath
	}
	return r
}

// PluginsDir is the directory Run looks for plugins in ("" if none).
func (r *Runner) PluginsDir() string { return r.pluginsDir }

// ValidName reports whether name may name a plugin or a hook point (see
// apps.ValidPluginName): one plain path element, no "..", no "/".
func ValidName(name string) bool { return apps.ValidPluginName(name) }

// Register adds an in-process hook named name on point. In-process hooks
// run before plugins' executables, in registration order. It panics on an
// invalid point, an empty name, a nil fn or a name already registered on
// point: these are wiring mistakes.
func (r *Runner) Register(point, name string, fn Func) {
	if !ValidName(point) {
		panic(fmt.Sprintf("hooks: Register: invalid hook point %q", point))
	}
	if name == "" || fn == nil {
		panic("hooks: Register: empty name or nil func")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, h := range r.funcs[point] {
		if h.name == name {
			panic(fmt.Sprintf("hooks: Register: %q already registered on %s", name, point))
		}
	}
	r.funcs[point] = append(r.funcs[point], namedFunc{name: name, fn: fn})
}

// Run runs the handlers of point with args: the in-process hooks in
// registration order, then the enabled plugins' executables named point in
// lexical order of plugin name. It returns their trimmed stdout, the
// non-empty ones joined with "\n", and stops at the first failure: an
// external failure is an *Error matching ErrHookFailed, an in-process
// hook's error is returned wrapped with its name. The output of the
// handlers that ran before a failure is returned with the error.
func (r *Runner) Run(ctx context.Context, point string, args []string, opts Opts) (string, error) {
	if !ValidName(point) {
		return "", fmt.Errorf("hook point %q: %w", point, ErrInvalidName)
	}
	r.mu.RLock()
	funcs := slices.Clone(r.funcs[point])
	r.mu.RUnlock()
	exts, err := r.triggers(point)
	if err != nil {
		return "", err
	}
	return r.run(ctx, point, args, opts, funcs, exts)
}

// RunPlugin runs one plugin's trigger for point (if it has an enabled,
// executable one) and returns its trimmed stdout; no in-process hooks run.
// ran is false when the plugin has no such trigger.
func (r *Runner) RunPlugin(ctx context.Context, plugin, point string, args []string, opts Opts) (out string, ran bool, err error) {
	if !ValidName(point) || !ValidName(plugin) {
		return "", false, fmt.Errorf("%s/%s: %w", plugin, point, ErrInvalidName)
	}
	exts, err := r.triggers(point)
	if err != nil {
		return "", false, err
	}
	exts = slices.DeleteFunc(exts, func(x external) bool { return x.plugin != plugin })
	if len(exts) == 0 {
		return "", false, nil
	}
	out, err = r.run(ctx, point, args, opts, nil, exts)
	return out, true, err
}

// run runs funcs, then exts, as Run describes.
func (r *Runner) run(ctx context.Context, point string, args []string, opts Opts, funcs []namedFunc, exts []external) (string, error) {
	if len(funcs) == 0 && len(exts) == 0 {
		return "", nil
	}
	var stdin []byte
	var err error
	if opts.Stdin != nil {
		stdin, err = io.ReadAll(io.LimitReader(opts.Stdin, MaxStdin+1))
		if err != nil {
			return "", fmt.Errorf("%s: read stdin: %w", point, err)
		}
		if len(stdin) > MaxStdin {
			return "", fmt.Errorf("%s: stdin larger than %d bytes", point, MaxStdin)
		}
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}

	var outputs []string
	joined := func() string { return strings.Join(outputs, "\n") }
	add := func(s string) {
		if s = strings.TrimSpace(s); s != "" {
			outputs = append(outputs, s)
		}
	}
	for _, h := range funcs {
		if err := ctx.Err(); err != nil {
			return joined(), fmt.Errorf("%s/%s: %w", h.name, point, err)
		}
		start := time.Now()
		s, err := h.fn(ctx, slices.Clone(args), IO{Stdin: bytes.NewReader(stdin), Out: out, Env: opts.Env})
		r.log.Debug().Str("hook", h.name).Str("trigger", point).Dur("duration", time.Since(start)).
			Bool("ok", err == nil).Msg("in-process hook ran")
		add(s)
		if err != nil {
			return joined(), fmt.Errorf("%s/%s: %w", h.name, point, err)
		}
	}
	for _, x := range exts {
		if err := ctx.Err(); err != nil {
			return joined(), fmt.Errorf("%s/%s: %w", x.plugin, point, err)
		}
		s, err := r.runExternal(ctx, x, point, args, stdin, out, opts.Env)
		add(s)
		if err != nil {
			return joined(), err
		}
	}
	return joined(), nil
}

// Exec runs the executable file (a path inside the plugin's directory,
// e.g. "commands" or "subcommands/hello") of an enabled plugin with args,
// the caller's streams and the documented environment plus env, without a
// timeout: it is a user's command, ended by ctx (its whole process group
// is killed then). It returns the exit status; ok is false when the plugin
// or the file does not exist, is disabled or is not executable.
func (r *Runner) Exec(ctx context.Context, plugin, file string, args []string, st apps.Streams, env map[string]string) (status int, ok bool, err error) {
	if !ValidName(plugin) {
		return 0, false, nil
	}
	root, _, err := r.readPluginsDir()
	if err != nil || root == "" {
		return 0, false, err
	}
	dir, found := r.pluginDir(root, plugin)
	if !found || r.isDisabled(plugin, dir) || !filepath.IsLocal(file) {
		return 0, false, nil
	}
	if _, err := os.Lstat(filepath.Join(dir, file)); err != nil {
		return 0, false, nil
	}
	x, found := r.executable(root, plugin, dir, file)
	if !found {
		return 0, false, nil
	}
	cmd := r.command(ctx, x, args, r.environ(x, "", env))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = st.Stdin, st.Stdout, st.Stderr
	err = cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return 0, true, nil
	case ctx.Err() != nil:
		return -1, true, ctx.Err()
	case errors.As(err, &exitErr) && exitErr.ExitCode() >= 0:
		return exitErr.ExitCode(), true, nil
	case errors.Is(err, exec.ErrWaitDelay):
		return 0, true, nil
	}
	return -1, true, fmt.Errorf("%s/%s: %w", plugin, file, err)
}

// Plugin is one plugin directory found under the plugins directory.
type Plugin struct {
	Name     string
	Dir      string
	Disabled bool
}

// Plugins lists the plugins under the plugins directory in the order Run
// runs them, disabled ones included. Entries with an invalid name, that are
// not directories or that resolve outside the plugins directory are left
// out.
func (r *Runner) Plugins() ([]Plugin, error) {
	root, entries, err := r.readPluginsDir()
	if err != nil || root == "" {
		return nil, err
	}
	var out []Plugin
	for _, e := range entries {
		dir, ok := r.pluginDir(root, e.Name())
		if !ok {
			continue
		}
		out = append(out, Plugin{Name: e.Name(), Dir: dir, Disabled: r.isDisabled(e.Name(), dir)})
	}
	return out, nil
}

// external is one trigger executable to run.
type external struct {
	plugin string
	dir    string // the plugin's directory: working directory, RIVETR_PLUGIN_PATH
	path   string // the trigger file, symlinks resolved
}

// readPluginsDir returns the resolved plugins directory and its entries,
// sorted by name; ("", nil, nil) when there is none.
func (r *Runner) readPluginsDir() (string, []os.DirEntry, error) {
	if r.pluginsDir == "" {
		return "", nil, nil
	}
	root, err := filepath.EvalSymlinks(r.pluginsDir)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("plugins directory: %w", err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return "", nil, fmt.Errorf("plugins directory: %w", err)
	}
	return root, entries, nil // os.ReadDir sorts by name
}

// pluginDir checks the plugin directory name under the resolved plugins
// directory root and returns its path.
func (r *Runner) pluginDir(root, name string) (string, bool) {
	if !ValidName(name) {
		if !strings.HasPrefix(name, ".") {
			r.log.Debug().Str("plugin", name).Msg("skipping plugin with an invalid name")
		}
		return "", false
	}
	dir := filepath.Join(root, name)
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		r.log.Debug().Str("plugin", name).Err(err).Msg("skipping plugin")
		return "", false
	}
	if !within(root, real) {
		r.log.Warn().Str("plugin", name).Msg("skipping plugin: symlink points outside the plugins directory")
		return "", false
	}
	if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
		return "", false
	}
	return dir, true
}

func (r *Runner) isDisabled(name, dir string) bool {
	if r.disabled != nil && r.disabled(name) {
		return true
	}
	_, err := os.Lstat(filepath.Join(dir, DisabledMarker))
	return err == nil
}

// triggers returns the executables of the enabled plugins for point, in
// lexical order of plugin name.
func (r *Runner) triggers(point string) ([]external, error) {
	root, entries, err := r.readPluginsDir()
	if err != nil || root == "" {
		return nil, err
	}
	var out []external
	for _, e := range entries {
		name := e.Name()
		dir, ok := r.pluginDir(root, name)
		if !ok {
			continue
		}
		if _, err := os.Lstat(filepath.Join(dir, point)); err != nil {
			continue // no such trigger: the common case
		}
		if r.isDisabled(name, dir) {
			r.log.Debug().Str("plugin", name).Str("trigger", point).Msg("skipping disabled plugin")
			continue
		}
		if x, ok := r.executable(root, name, dir, point); ok {
			out = append(out, x)
		}
	}
	return out, nil
}

// executable resolves file of the plugin in dir (under the resolved
// plugins directory root) to an executable regular file that stays inside
// root; ok is false, with the reason logged, otherwise.
func (r *Runner) executable(root, plugin, dir, file string) (external, bool) {
	real, err := filepath.EvalSymlinks(filepath.Join(dir, file))
	if err != nil {
		r.log.Debug().Str("plugin", plugin).Str("file", file).Err(err).Msg("skipping plugin file")
		return external{}, false
	}
	if !within(root, real) {
		r.log.Warn().Str("plugin", plugin).Str("file", file).Msg("skipping plugin file: symlink points outside the plugins directory")
		return external{}, false
	}
	if fi, err := os.Stat(real); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		r.log.Debug().Str("plugin", plugin).Str("file", file).Msg("ignoring plugin file: not an executable file")
		return external{}, false
	}
	return external{plugin: plugin, dir: dir, path: real}, true
}

// command prepares the run of x in its directory with env: the process
// leads its own group, so cancelling ctx kills the children it started too.
func (r *Runner) command(ctx context.Context, x external, args, env []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, x.path, args...)
	cmd.Dir = x.dir
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = r.waitDelay
	return cmd
}

// within reports whether path lies strictly inside root (both resolved).
func within(root, path string) bool {
	rel, err := filepath.Rel(root, path)
	if err != nil || rel == "." || filepath.IsAbs(rel) {
		return false
	}
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// environ is the documented environment of one external run.
func (r *Runner) environ(x external, point string, extra map[string]string) []string {
	home := r.dataDir
	if home == "" {
		home = x.dir
	}
	fixed := map[string]string{
		"PATH":               r.path,
		"HOME":               home,
		"RIVETR_DATA_DIR":    r.dataDir,
		"RIVETR_PLUGINS_DIR": filepath.Dir(x.dir),
		"RIVETR_PLUGIN_PATH": x.dir,
		"RIVETR_PLUGIN_NAME": x.plugin,
		"RIVETR_TRIGGER":     point,
	}
	if point == "" {
		delete(fixed, "RIVETR_TRIGGER")
	}
	merged := map[string]string{}
	if r.pluginEnv != nil {
		for k, v := range r.pluginEnv(x.plugin) {
			merged[k] = v
		}
	}
	for k, v := range extra {
		merged[k] = v
	}
	env := make([]string, 0, len(fixed)+len(merged))
	for k, v := range merged {
		if _, ok := fixed[k]; ok || !envKeyRE.MatchString(k) || strings.ContainsRune(v, 0) {
			continue
		}
		env = append(env, k+"="+v)
	}
	for k, v := range fixed {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// runExternal runs one trigger executable and returns its stdout.
func (r *Runner) runExternal(ctx context.Context, x external, point string, args []string, stdin []byte, out io.Writer, extra map[string]string) (string, error) {
	runCtx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()

	stdout := &capBuffer{max: MaxOutput}
	out = &apps.LockedWriter{W: out} // stdout and stderr are copied by two goroutines
	stderr := &tailWriter{out: out, max: StderrTail}
	cmd := r.command(runCtx, x, args, r.environ(x, point, extra))
	if len(stdin) > 0 {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if !ValuePoints[point] {
		// Not a return value: the user sees it as it comes, like stderr.
		cmd.Stdout = io.MultiWriter(stdout, &tailWriter{out: out}) // keeps no tail
	}

	start := time.Now()
	err := cmd.Run()
	code := -1
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	r.log.Debug().Str("plugin", x.plugin).Str("trigger", point).Dur("duration", time.Since(start)).
		Int("exit_code", code).Msg("trigger ran")
	if stdout.dropped {
		r.log.Warn().Str("plugin", x.plugin).Str("trigger", point).
			Msgf("trigger printed more than %d bytes; the rest was discarded", MaxOutput)
	}
	if errors.Is(err, exec.ErrWaitDelay) && ctx.Err() == nil && runCtx.Err() == nil {
		// It exited 0 but left something holding its output open.
		r.log.Warn().Str("plugin", x.plugin).Str("trigger", point).
			Msg("trigger left a process holding its output; closed it")
		err = nil
	}
	if err == nil {
		return stdout.String(), nil
	}

	e := &Error{Plugin: x.plugin, Trigger: point, Status: -1, Stderr: stderr.String()}
	var exitErr *exec.ExitError
	isExit := errors.As(err, &exitErr)
	signaled := false
	if isExit {
		ws, ok := exitErr.Sys().(syscall.WaitStatus)
		signaled = ok && ws.Signaled()
	}
	switch {
	case ctx.Err() != nil:
		return stdout.String(), fmt.Errorf("%s/%s: %w", x.plugin, point, ctx.Err())
	case isExit && !signaled:
		// It exited on its own, even if the timeout expired meanwhile.
		e.Status = exitErr.ExitCode()
		e.msg = fmt.Sprintf("exited with status %d", e.Status)
	case errors.Is(runCtx.Err(), context.DeadlineExceeded):
		e.TimedOut = true
		e.msg = fmt.Sprintf("timed out after %s and was killed", r.timeout)
		e.cause = ErrHookTimeout
	case isExit:
		sig := exitErr.Sys().(syscall.WaitStatus).Signal()
		e.msg = fmt.Sprintf("was killed by signal %d (%s)", int(sig), sig)
	default:
		e.msg = fmt.Sprintf("could not run: %v", err)
		e.cause = err
	}
	return stdout.String(), e
}

// Error is the failure of one trigger executable. It matches ErrHookFailed,
// and ErrHookTimeout when TimedOut.
type Error struct {
	Plugin   string
	Trigger  string
	Status   int    // exit status; -1 if killed or not started
	TimedOut bool   // killed at the timeout
	Stderr   string // the end of its stderr, trimmed

	msg   string
	cause error
}

// Error reads "<plugin>/<trigger> exited with status N: <stderr tail>".
func (e *Error) Error() string {
	s := e.Plugin + "/" + e.Trigger + " " + e.msg
	if e.Stderr != "" {
		s += ": " + e.Stderr
	}
	return s
}

// Unwrap returns ErrHookFailed and the cause, if any.
func (e *Error) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrHookFailed}
	}
	return []error{ErrHookFailed, e.cause}
}

// capBuffer keeps the first max bytes written and discards the rest; it
// never fails, so the trigger is never blocked on a full pipe.
type capBuffer struct {
	buf     bytes.Buffer
	max     int
	dropped bool
}

func (b *capBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room < len(p) {
		b.dropped = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	b.buf.Write(p)
	return len(p), nil
}

func (b *capBuffer) String() string { return b.buf.String() }

// tailWriter streams to out and keeps the last max bytes. It never fails:
// once out fails (the user went away) it only keeps the tail.
type tailWriter struct {
	out       io.Writer
	outFailed bool
	max       int
	buf       []byte
	cut       bool
}

func (t *tailWriter) Write(p []byte) (int, error) {
	if !t.outFailed {
		if _, err := t.out.Write(p); err != nil {
			t.outFailed = true
		}
	}
	if t.max == 0 {
		return len(p), nil
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
		t.cut = true
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(t.buf), ""))
	if t.cut && s != "" {
		s = "..." + s
	}
	return s
}
