package hooks

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// newRunner returns a Runner over a fresh data directory and the path of
// its (not yet created) plugins directory.
func newRunner(t *testing.T, cfg Config) (*Runner, string) {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	r := New(cfg, zerolog.Nop())
	return r, r.PluginsDir()
}

// writeTrigger writes an executable trigger file and returns its path.
func writeTrigger(t *testing.T, plugins, plugin, trigger, script string) string {
	t.Helper()
	return writeFile(t, plugins, plugin, trigger, script, 0o755)
}

func writeFile(t *testing.T, plugins, plugin, name, content string, mode os.FileMode) string {
	t.Helper()
	dir := filepath.Join(plugins, plugin)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestInProcessOrderArgsAndOutput(t *testing.T) {
	r, _ := newRunner(t, Config{})
	var order []string
	reg := func(name, out string) {
		r.Register(PostDeploy, name, func(ctx context.Context, args []string, hio IO) (string, error) {
			order = append(order, name)
			if got := strings.Join(args, ","); got != "app,5000,,rivetr/app:3" {
				t.Errorf("%s: args %q", name, got)
			}
			args[0] = "mutated" // must not leak into the next hook
			in, _ := io.ReadAll(hio.Stdin)
			if string(in) != "payload" {
				t.Errorf("%s: stdin %q", name, in)
			}
			if hio.Out == nil || hio.Env["RIVETR_APP"] != "app" {
				t.Errorf("%s: IO %+v", name, hio)
			}
			return out, nil
		})
	}
	reg("zeta", "  one\n")
	reg("alpha", "")
	reg("mid", "three\n\n")
	r.Register(PreDeploy, "other", func(context.Context, []string, IO) (string, error) {
		t.Error("hook of another point ran")
		return "", nil
	})

	got, err := r.Run(context.Background(), PostDeploy, []string{"app", "5000", "", "rivetr/app:3"},
		Opts{Stdin: strings.NewReader("payload"), Env: map[string]string{"RIVETR_APP": "app"}})
	if err != nil {
		t.Fatal(err)
	}
	if got != "one\nthree" {
		t.Errorf("output %q, want %q", got, "one\nthree")
	}
	if strings.Join(order, " ") != "zeta alpha mid" {
		t.Errorf("order %v: want registration order", order)
	}
}

func TestInProcessErrorStops(t *testing.T) {
	r, _ := newRunner(t, Config{})
	veto := errors.New("deploys are frozen")
	ran := false
	r.Register(PreDeploy, "first", func(context.Context, []string, IO) (string, error) { return "ok", nil })
	r.Register(PreDeploy, "freeze", func(context.Context, []string, IO) (string, error) { return "", veto })
	r.Register(PreDeploy, "last", func(context.Context, []string, IO) (string, error) { ran = true; return "", nil })

	got, err := r.Run(context.Background(), PreDeploy, []string{"app", "img"}, Opts{})
	if !errors.Is(err, veto) || !strings.Contains(err.Error(), "freeze/pre-deploy") {
		t.Fatalf("err = %v", err)
	}
	if got != "ok" || ran {
		t.Errorf("output %q, last ran %v", got, ran)
	}
}

func TestRegisterPanicsOnWiringMistakes(t *testing.T) {
	r, _ := newRunner(t, Config{})
	fn := func(context.Context, []string, IO) (string, error) { return "", nil }
	r.Register(PostCreate, "a", fn)
	for name, f := range map[string]func(){
		"bad point": func() { r.Register("../x", "b", fn) },
		"no name":   func() { r.Register(PostCreate, "", fn) },
		"nil func":  func() { r.Register(PostCreate, "c", nil) },
		"duplicate": func() { r.Register(PostCreate, "a", fn) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}

func TestInProcessRunBeforePlugins(t *testing.T) {
	r, plugins := newRunner(t, Config{})
	writeTrigger(t, plugins, "aaa", PostExtract, "#!/bin/sh\necho plugin\n")
	r.Register(PostExtract, "core", func(context.Context, []string, IO) (string, error) { return "core", nil })
	got, err := r.Run(context.Background(), PostExtract, []string{"app", "/tmp/x", "abc"}, Opts{})
	if err != nil || got != "core\nplugin" {
		t.Fatalf("Run = %q, %v", got, err)
	}
}

func TestExternalOrderArgsStdinAndEnv(t *testing.T) {
	data := t.TempDir()
	r, plugins := newRunner(t, Config{DataDir: data, Path: "/usr/bin:/bin"})
	script := `#!/bin/sh
echo "$RIVETR_PLUGIN_NAME argc=$# 1=$1 2=$2 3=$3 stdin=$(cat)"
`
	for _, p := range []string{"b-second", "c_third", "a-first", "0-zero"} {
		writeTrigger(t, plugins, p, CheckDeploy, script)
	}
	got, err := r.Run(context.Background(), CheckDeploy, []string{"app", "", "web with space"},
		Opts{Stdin: strings.NewReader("in")})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"0-zero argc=3 1=app 2= 3=web with space stdin=in",
		"a-first argc=3 1=app 2= 3=web with space stdin=in",
		"b-second argc=3 1=app 2= 3=web with space stdin=in",
		"c_third argc=3 1=app 2= 3=web with space stdin=in",
	}, "\n")
	if got != want {
		t.Errorf("output:\n%s\nwant:\n%s", got, want)
	}

	// The environment: documented variables only, plus the caller's Env,
	// which cannot override them; nothing inherited from rivetr.
	t.Setenv("RIVETR_SECRET_TEST", "leaked")
	envDir := filepath.Join(plugins, "env")
	writeTrigger(t, plugins, "env", PostCreate, "#!/bin/sh\nenv | sort\necho PWD=$(pwd)\n")
	got, err = r.Run(context.Background(), PostCreate, []string{"app"},
		Opts{Env: map[string]string{"RIVETR_APP": "app", "RIVETR_TRIGGER": "forged", "BAD KEY": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(got, "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	realPlugins, _ := filepath.EvalSymlinks(plugins)
	wantEnv := map[string]string{
		"PATH":               "/usr/bin:/bin",
		"HOME":               data,
		"RIVETR_DATA_DIR":    data,
		"RIVETR_PLUGINS_DIR": realPlugins,
		"RIVETR_PLUGIN_PATH": filepath.Join(realPlugins, "env"),
		"RIVETR_PLUGIN_NAME": "env",
		"RIVETR_TRIGGER":     PostCreate,
		"RIVETR_APP":         "app",
	}
	for k, v := range wantEnv {
		if env[k] != v {
			t.Errorf("%s=%q, want %q", k, env[k], v)
		}
	}
	if real, _ := filepath.EvalSymlinks(envDir); env["PWD"] != real && env["PWD"] != envDir {
		t.Errorf("working directory %q, want %q", env["PWD"], envDir)
	}
	for _, k := range []string{"RIVETR_SECRET_TEST", "BAD KEY"} {
		if _, ok := env[k]; ok {
			t.Errorf("%s reached the trigger", k)
		}
	}
}

func TestStdoutIsTheValueStderrGoesToTheUser(t *testing.T) {
	r, plugins := newRunner(t, Config{})
	writeTrigger(t, plugins, "detect", BuilderDetect, "#!/bin/sh\necho 'looking...' >&2\n[ -f \"$2/Dockerfile\" ] && echo dockerfile\nexit 0\n")
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	got, err := r.Run(context.Background(), BuilderDetect, []string{"app", src}, Opts{Out: &out})
	if err != nil || got != "dockerfile" {
		t.Fatalf("Run = %q, %v", got, err)
	}
	if out.String() != "looking...\n" {
		t.Errorf("user saw %q", out.String())
	}
}

func TestFailureAbortsWithStderrAndStopsLaterPlugins(t *testing.T) {
	r, plugins := newRunner(t, Config{})
	marker := filepath.Join(t.TempDir(), "ran")
	writeTrigger(t, plugins, "a-ok", PreBuild, "#!/bin/sh\necho fine\n")
	writeTrigger(t, plugins, "b-veto", PreBuild, "#!/bin/sh\necho partial\necho 'deploys are frozen until monday' >&2\nexit 3\n")
	writeTrigger(t, plugins, "c-after", PreBuild, "#!/bin/sh\ntouch "+marker+"\n")

	var out syncBuffer
	got, err := r.Run(context.Background(), PreBuild, []string{"dockerfile", "app", "/src"}, Opts{Out: &out})
	if !errors.Is(err, ErrHookFailed) || errors.Is(err, ErrHookTimeout) {
		t.Fatalf("err = %v", err)
	}
	if want := "b-veto/pre-build exited with status 3: deploys are frozen until monday"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	var he *Error
	if !errors.As(err, &he) || he.Plugin != "b-veto" || he.Status != 3 || he.TimedOut {
		t.Errorf("Error = %+v", he)
	}
	if got != "fine\npartial" {
		t.Errorf("output %q", got)
	}
	if !strings.Contains(out.String(), "deploys are frozen") {
		t.Errorf("user did not see stderr: %q", out.String())
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("a plugin after the failing one ran")
	}
}

func TestStderrTailIsBounded(t *testing.T) {
	r, plugins := newRunner(t, Config{})
	writeTrigger(t, plugins, "noisy", PreDeploy,
		"#!/bin/sh\ni=0\nwhile [ $i -lt 2000 ]; do echo \"line $i\" >&2; i=$((i+1)); done\necho last >&2\nexit 1\n")
	_, err := r.Run(context.Background(), PreDeploy, []string{"app", "img"}, Opts{})
	var he *Error
	if !errors.As(err, &he) {
		t.Fatalf("err = %v", err)
	}
	if len(he.Stderr) > StderrTail+3 || !strings.HasPrefix(he.Stderr, "...") || !strings.HasSuffix(he.Stderr, "line 1999\nlast") {
		t.Errorf("stderr tail (%d bytes) %q...", len(he.Stderr), he.Stderr[:40])
	}
}

func TestStdoutIsBounded(t *testing.T) {
	r, plugins := newRunner(t, Config{})
	writeTrigger(t, plugins, "big", PostDeploy, "#!/bin/sh\nhead -c 3000000 /dev/zero | tr '\\0' a\n")
	got, err := r.Run(context.Background(), PostDeploy, []string{"app", "5000", "", "img"}, Opts{})
	if err != nil || len(got) != MaxOutput {
		t.Fatalf("Run: %d bytes, %v", len(got), err)
	}
}

func TestTimeoutKillsTheProcessGroup(t *testing.T) {
	r, plugins := newRunner(t, Config{Timeout: 300 * time.Millisecond})
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	writeTrigger(t, plugins, "hang", PreDeploy,
		"#!/bin/sh\necho starting >&2\nsleep 60 &\necho $! > "+pidFile+"\nsleep 60\n")

	start := time.Now()
	_, err := r.Run(context.Background(), PreDeploy, []string{"app", "img"}, Opts{})
	elapsed := time.Since(start)
	if !errors.Is(err, ErrHookTimeout) || !errors.Is(err, ErrHookFailed) {
		t.Fatalf("err = %v", err)
	}
	if want := "hang/pre-deploy timed out after 300ms and was killed: starting"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
	if elapsed > 3*time.Second {
		t.Errorf("Run took %v with a 300ms timeout", elapsed)
	}
	data, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatal(rerr)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	if pid <= 0 {
		t.Fatalf("bad pid %q", data)
	}
	deadline := time.Now().Add(3 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d of the trigger survived the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid runs (a zombie counts as dead).
func alive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || (s[i+2] != 'Z' && s[i+2] != 'X')
}

func TestCallerCancelKillsTheTrigger(t *testing.T) {
	r, plugins := newRunner(t, Config{})
	writeTrigger(t, plugins, "hang", PostDeploy, "#!/bin/sh\nsleep 60\n")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := r.Run(ctx, PostDeploy, []string{"app", "5000", "", "img"}, Opts{})
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrHookTimeout) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Errorf("Run took %v after the caller's deadline", time.Since(start))
	}
}

func TestLeftoverChildDoesNotHangRun(t *testing.T) {
	r, plugins := newRunner(t, Config{})
	writeTrigger(t, plugins, "bg", PostDeploy, "#!/bin/sh\nsleep 3 &\necho done\n")
	start := time.Now()
	got, err := r.Run(context.Background(), PostDeploy, []string{"app", "5000", "", "img"}, Opts{})
	if err != nil || got != "done" {
		t.Fatalf("Run = %q, %v", got, err)
	}
	if time.Since(start) > 2500*time.Millisecond {
		t.Errorf("Run waited %v for a background child", time.Since(start))
	}
}

func TestDisabledPluginsAreSkipped(t *testing.T) {
	r, plugins := newRunner(t, Config{Disabled: func(p string) bool { return p == "by-config" }})
	for _, p := range []string{"by-marker", "by-config", "enabled"} {
		writeTrigger(t, plugins, p, PostCreate, "#!/bin/sh\necho "+p+"\n")
	}
	writeFile(t, plugins, "by-marker", DisabledMarker, "", 0o644)
	got, err := r.Run(context.Background(), PostCreate, []string{"app"}, Opts{})
	if err != nil || got != "enabled" {
		t.Fatalf("Run = %q, %v", got, err)
	}

	list, err := r.Plugins()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list {
		names = append(names, p.Name+"="+strconv.FormatBool(p.Disabled))
	}
	if strings.Join(names, " ") != "by-config=true by-marker=true enabled=false" {
		t.Errorf("Plugins = %v", names)
	}
}

func TestInvalidNamesAreSkippedOrRefused(t *testing.T) {
	r, plugins := newRunner(t, Config{})
	for _, p := range []string{"Upper", "-dash", "has space", ".hidden", "_under", "ok"} {
		writeTrigger(t, plugins, p, PostCreate, "#!/bin/sh\necho '"+p+"'\n")
	}
	got, err := r.Run(context.Background(), PostCreate, []string{"app"}, Opts{})
	if err != nil || got != "ok" {
		t.Fatalf("Run = %q, %v", got, err)
	}
	for _, point := range []string{"../ok/post-create", "", "Post-Create", "a/b", ".."} {
		if _, err := r.Run(context.Background(), point, nil, Opts{}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("Run(%q): %v, want ErrInvalidName", point, err)
		}
	}
	for name, want := range map[string]bool{"dokku-postgres": true, "a_b": true, "9": true,
		"../x": false, "x/y": false, "": false, "X": false, strings.Repeat("a", 65): false} {
		if ValidName(name) != want {
			t.Errorf("ValidName(%q) = %v", name, !want)
		}
	}
}

func TestNonExecutableFilesAreIgnored(t *testing.T) {
	r, plugins := newRunner(t, Config{})
	writeFile(t, plugins, "a-plain", PostCreate, "#!/bin/sh\necho plain\n", 0o644)
	if err := os.MkdirAll(filepath.Join(plugins, "b-dir", PostCreate), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, plugins, ".", "c-file-not-dir", "#!/bin/sh\n", 0o755)
	writeTrigger(t, plugins, "d-exec", PostCreate, "#!/bin/sh\necho exec\n")
	got, err := r.Run(context.Background(), PostCreate, []string{"app"}, Opts{})
	if err != nil || got != "exec" {
		t.Fatalf("Run = %q, %v", got, err)
	}
}

func TestSymlinksOutsideThePluginsDirAreSkipped(t *testing.T) {
	r, plugins := newRunner(t, Config{})
	outside := t.TempDir()
	evil := filepath.Join(outside, PostCreate)
	if err := os.WriteFile(evil, []byte("#!/bin/sh\necho evil\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A trigger file linking outside.
	if err := os.MkdirAll(filepath.Join(plugins, "a-link-file"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(evil, filepath.Join(plugins, "a-link-file", PostCreate)); err != nil {
		t.Fatal(err)
	}
	// A plugin directory linking outside.
	if err := os.Symlink(outside, filepath.Join(plugins, "b-link-dir")); err != nil {
		t.Fatal(err)
	}
	// A trigger linking up out of its plugin, through "..".
	if err := os.MkdirAll(filepath.Join(plugins, "b-dotdot"), 0o755); err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(filepath.Join(plugins, "b-dotdot"), evil)
	if err := os.Symlink(rel, filepath.Join(plugins, "b-dotdot", PostCreate)); err != nil {
		t.Fatal(err)
	}
	// Links that stay inside are fine.
	shared := writeTrigger(t, plugins, "c-real", PostCreate, "#!/bin/sh\necho \"inside $RIVETR_PLUGIN_NAME\"\n")
	if err := os.MkdirAll(filepath.Join(plugins, "d-link-inside"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(shared, filepath.Join(plugins, "d-link-inside", PostCreate)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(plugins, "c-real"), filepath.Join(plugins, "e-dir-inside")); err != nil {
		t.Fatal(err)
	}

	got, err := r.Run(context.Background(), PostCreate, []string{"app"}, Opts{})
	want := "inside c-real\ninside d-link-inside\ninside e-dir-inside"
	if err != nil || got != want {
		t.Fatalf("Run = %q, %v; want %q", got, err, want)
	}
}

func TestStartFailureIsAHookFailure(t *testing.T) {
	r, plugins := newRunner(t, Config{})
	writeTrigger(t, plugins, "noshebang", PostCreate, "echo hi\n")
	_, err := r.Run(context.Background(), PostCreate, []string{"app"}, Opts{})
	if !errors.Is(err, ErrHookFailed) || !strings.Contains(err.Error(), "noshebang/post-create could not run") {
		t.Fatalf("err = %v", err)
	}
}

// failReader fails the test if read: stdin must not be consumed when no
// handler runs.
type failReader struct{ t *testing.T }

func (f failReader) Read([]byte) (int, error) {
	f.t.Error("stdin read with no handler")
	return 0, io.EOF
}

func TestNoHandlersIsANoOp(t *testing.T) {
	r, _ := newRunner(t, Config{DataDir: filepath.Join(t.TempDir(), "missing")})
	got, err := r.Run(context.Background(), PostCreate, []string{"app"}, Opts{Stdin: failReader{t}})
	if err != nil || got != "" {
		t.Fatalf("Run = %q, %v", got, err)
	}
	list, err := r.Plugins()
	if err != nil || len(list) != 0 {
		t.Fatalf("Plugins = %v, %v", list, err)
	}
	empty := New(Config{}, zerolog.Nop())
	if got, err := empty.Run(context.Background(), PostCreate, nil, Opts{}); err != nil || got != "" {
		t.Fatalf("Run without data dir = %q, %v", got, err)
	}
}

func TestConcurrentRuns(t *testing.T) {
	r, plugins := newRunner(t, Config{})
	writeTrigger(t, plugins, "echo", CheckDeploy, "#!/bin/sh\necho \"$2\"\n")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := strconv.Itoa(i)
			got, err := r.Run(context.Background(), CheckDeploy, []string{"app", id, "web", "5000", "10.0.0.2"}, Opts{Out: io.Discard})
			if err != nil || got != id {
				t.Errorf("Run %d = %q, %v", i, got, err)
			}
		}()
	}
	wg.Wait()
}

func TestKilledBySignalIsAHookFailure(t *testing.T) {
	r, plugins := newRunner(t, Config{})
	writeTrigger(t, plugins, "crash", PostDeploy, "#!/bin/sh\necho dying >&2\nkill -TERM $$\n")
	_, err := r.Run(context.Background(), PostDeploy, []string{"app", "5000", "", "img"}, Opts{})
	var he *Error
	if !errors.As(err, &he) || he.Status != -1 || he.TimedOut {
		t.Fatalf("err = %v", err)
	}
	if want := "crash/post-deploy was killed by signal 15 (terminated): dying"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}
