package plugins

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rivetr/rivetr/apps"
	"github.com/rivetr/rivetr/commands"
	"github.com/rivetr/rivetr/hooks"
	"github.com/rivetr/rivetr/store"
)

// env is a Manager over a fresh data dir with the real hook runner and
// SQLite state, and a registry with the plugin namespace.
type env struct {
	t    *testing.T
	data string
	m    *Manager
	hk   *hooks.Runner
	reg  *commands.Registry
}

func newEnv(t *testing.T, timeout time.Duration) *env {
	t.Helper()
	data := t.TempDir()
	db, err := store.Open(context.Background(), filepath.Join(data, "rivetr.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := apps.NewService(db)
	m := &Manager{Settings: svc}
	hk := hooks.New(hooks.Config{DataDir: data, Timeout: timeout, PluginEnv: m.Env}, zerolog.Nop())
	m.Dir, m.Hooks = hk.PluginsDir(), hk
	reg := commands.NewRegistry()
	commands.RegisterCore(reg, commands.Deps{Apps: svc, Version: "test", DataDir: data})
	m.Reserved = func(n string) bool { return reg.HasNamespace(n) || n == "help" || n == "plugin" }
	Register(reg, m)
	return &env{t: t, data: data, m: m, hk: hk, reg: reg}
}

// run runs a command as the local admin and returns exit code and output.
func (e *env) run(stdin string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	s := &commands.Session{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut, User: "admin", Admin: true}
	code := e.reg.Run(context.Background(), s, args)
	return code, out.String(), errOut.String()
}

func (e *env) ok(args ...string) string {
	e.t.Helper()
	code, out, errOut := e.run("", args...)
	if code != 0 {
		e.t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
	}
	return out
}

// writePlugin makes a plugin source directory with files (name → content;
// names ending in "*" are made executable without the star).
func writePlugin(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		mode := os.FileMode(0o644)
		if n, ok := strings.CutSuffix(name, "*"); ok {
			name, mode = n, 0o755
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const manifest = "[plugin]\ndescription = \"Says hello\"\nversion = \"0.1.0\"\n[plugin.config]\ngreeting = \"hello\"\n"

func hello(t *testing.T) string {
	return writePlugin(t, filepath.Join(t.TempDir(), "hello"), map[string]string{
		"plugin.toml":        manifest,
		"post-create*":       "#!/bin/sh\necho \"$RIVETR_PLUGIN_CONFIG_GREETING $1\" >> \"$RIVETR_DATA_DIR/created\"\n",
		"install*":           "#!/bin/sh\necho installed > \"$RIVETR_DATA_DIR/hello-installed\"\n",
		"README.md":          "not executable",
		"pre-deploy":         "#!/bin/sh\nexit 1\n", // not executable: ignored
		"commands*":          "#!/bin/sh\ncase \"$1\" in help) echo '    hello:world <name>, Greets someone';; *) exit 10;; esac\n",
		"subcommands/world*": "#!/bin/sh\nread line\necho \"$RIVETR_PLUGIN_CONFIG_GREETING $2 and $line ($1, $RIVETR_USER)\"\nexit 3\n",
	})
}

func TestReadManifest(t *testing.T) {
	bad := map[string]string{
		"":                                "no plugin.toml",
		"[plugin]\nversion = \"1\"\n":     "description",
		"[plugin]\ndescription = \"d\"\n": "version",
		"[other]\nx = 1\n":                "no [plugin] table",
		"[plugin\n":                       "plugin.toml",
		"[plugin]\ndescription = 3\nversion = \"1\"\n":                                       "description",
		"[plugin]\ndescription = \"d\"\nversion = \"1\"\n[plugin.config]\n\"a b\" = \"x\"\n": "config key",
		"[plugin]\ndescription = \"d\"\nversion = \"1\"\n[plugin.config]\nx = [1]\n":         "must be a string",
	}
	for content, want := range bad {
		dir := t.TempDir()
		if content != "" {
			os.WriteFile(filepath.Join(dir, ManifestFile), []byte(content), 0o644)
		}
		if _, err := ReadManifest(dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("manifest %q: %v, want an error about %q", content, err, want)
		}
	}
	dir := writePlugin(t, t.TempDir(), map[string]string{"plugin.toml": manifest + "timeout = 10\nverbose = true\n"})
	m, err := ReadManifest(dir)
	if err != nil || m.Description != "Says hello" || m.Version != "0.1.0" || m.Config["greeting"] != "hello" || m.Config["timeout"] != "10" || m.Config["verbose"] != "true" {
		t.Errorf("manifest %+v, %v", m, err)
	}
}

func TestInstallFromADirectory(t *testing.T) {
	e := newEnv(t, 0)
	src := hello(t)
	out := e.ok("plugin:install", src)
	if !strings.Contains(out, "Plugin hello 0.1.0 installed") {
		t.Errorf("install output:\n%s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(e.data, "hello-installed")); string(b) != "installed\n" {
		t.Errorf("install trigger did not run: %q", b)
	}
	p, err := e.m.Get("hello")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(p.Triggers, ",") != "install,post-create" || !p.HasCommands || strings.Join(p.Subcommands, ",") != "world" || p.Source.Kind != "dir" {
		t.Errorf("plugin %+v", p)
	}
	list := e.ok("plugin:list")
	if !strings.Contains(list, "hello") || !strings.Contains(list, "0.1.0") || !strings.Contains(list, "enabled") || !strings.Contains(list, "Says hello") {
		t.Errorf("plugin:list:\n%s", list)
	}

	// The trigger runs with the plugin's config, which plugin:set changes.
	e.hk.Run(context.Background(), "post-create", []string{"web"}, apps.HookOpts{})
	e.ok("plugin:set", "hello", "greeting", "bonjour")
	e.hk.Run(context.Background(), "post-create", []string{"api"}, apps.HookOpts{})
	if b, _ := os.ReadFile(filepath.Join(e.data, "created")); string(b) != "hello web\nbonjour api\n" {
		t.Errorf("post-create runs: %q", b)
	}
	if code, _, errOut := e.run("", "plugin:set", "hello", "nope", "x"); code == 0 || !strings.Contains(errOut, "has no config key") {
		t.Errorf("plugin:set of an undeclared key: %d %s", code, errOut)
	}

	// Disabled: its triggers and commands stop.
	e.ok("plugin:disable", "hello")
	e.hk.Run(context.Background(), "post-create", []string{"off"}, apps.HookOpts{})
	if b, _ := os.ReadFile(filepath.Join(e.data, "created")); strings.Contains(string(b), "off") {
		t.Error("a disabled plugin's trigger ran")
	}
	if code, _, errOut := e.run("x\n", "hello:world", "bob"); code == 0 || !strings.Contains(errOut, "not a rivetr command") {
		t.Errorf("a disabled plugin's command: %d %s", code, errOut)
	}
	if !strings.Contains(e.ok("plugin:list"), "disabled") {
		t.Error("plugin:list does not show it disabled")
	}
	e.ok("plugin:enable", "hello")

	// Refused: bad names, built-in namespaces, a second install.
	for _, args := range [][]string{
		{"plugin:install", src, "--name", "../x"},
		{"plugin:install", src, "--name", "Bad"},
		{"plugin:install", src, "--name", "apps"},
		{"plugin:install", src, "--name", "plugin"},
		{"plugin:install", src},
		{"plugin:install", "/nonexistent/dir"},
	} {
		if code, _, errOut := e.run("", args...); code == 0 || errOut == "" {
			t.Errorf("%v accepted (%d)", args, code)
		}
	}
	if _, err := os.Stat(filepath.Join(e.m.Dir, "..", "x")); err == nil {
		t.Error("../x was written")
	}
	// An invalid plugin leaves nothing behind.
	broken := writePlugin(t, filepath.Join(t.TempDir(), "broken"), map[string]string{"plugin.toml": "[plugin]\nversion = \"1\"\n"})
	if code, _, errOut := e.run("", "plugin:install", broken); code == 0 || !strings.Contains(errOut, "description") {
		t.Errorf("invalid manifest: %d %s", code, errOut)
	}
	entries, _ := os.ReadDir(e.m.Dir)
	if len(entries) != 1 || entries[0].Name() != "hello" {
		t.Errorf("plugins dir after a refused install: %v", entries)
	}

	e.ok("plugin:uninstall", "hello")
	if _, err := os.Stat(filepath.Join(e.m.Dir, "hello")); err == nil {
		t.Error("plugin still there after uninstall")
	}
}

func TestPluginCommands(t *testing.T) {
	e := newEnv(t, 0)
	e.ok("plugin:install", hello(t))
	code, out, _ := e.run("stdin line\n", "hello:world", "bob")
	if code != 3 || out != "hello bob and stdin line (hello:world, admin)\n" {
		t.Errorf("hello:world: exit %d, out %q", code, out)
	}
	help := e.ok("help")
	if !strings.Contains(help, "    hello ") || !strings.Contains(help, "Says hello") {
		t.Errorf("help does not list the plugin:\n%s", help)
	}
	if h := e.ok("hello:help"); !strings.Contains(h, "hello:world <name>") || !strings.Contains(h, "Greets someone") {
		t.Errorf("hello:help:\n%s", h)
	}
	if h := e.ok("help", "--all"); !strings.Contains(h, "hello:world <name>") {
		t.Errorf("help --all lacks the plugin command:\n%s", h)
	}
	if code, _, errOut := e.run("", "hello:nope"); code == 0 || !strings.Contains(errOut, "not a rivetr command") {
		t.Errorf("unknown plugin command: %d %s", code, errOut)
	}
}

func TestInstallTriggerFailureRemovesThePlugin(t *testing.T) {
	e := newEnv(t, 0)
	src := writePlugin(t, filepath.Join(t.TempDir(), "fails"), map[string]string{
		"plugin.toml": manifest,
		"install*":    "#!/bin/sh\necho 'missing dependency: jq' >&2\nexit 2\n",
	})
	code, _, errOut := e.run("", "plugin:install", src)
	if code == 0 || !strings.Contains(errOut, "missing dependency: jq") {
		t.Errorf("install with a failing trigger: %d %s", code, errOut)
	}
	if _, err := e.m.Get("fails"); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("plugin left installed: %v", err)
	}
}

func TestInstallAndUpdateFromGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	e := newEnv(t, 0)
	repo := filepath.Join(t.TempDir(), "greeter")
	writePlugin(t, repo, map[string]string{"plugin.toml": manifest, "post-create*": "#!/bin/sh\necho v1\n"})
	gitIn := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = repo
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	gitIn("init", "-q", "-b", "main")
	gitIn("add", "-A")
	gitIn("commit", "-q", "-m", "v1")
	bare := filepath.Join(t.TempDir(), "greeter.git")
	gitIn("clone", "-q", "--bare", repo, bare)

	e.ok("plugin:install", "file://"+bare)
	p, _ := e.m.Get("greeter")
	if p.Source.Kind != "git" || len(p.Source.Commit) != 40 || p.Manifest.Version != "0.1.0" {
		t.Errorf("installed from git: %+v", p)
	}
	if _, err := os.Stat(filepath.Join(p.Dir, ".git")); err == nil {
		t.Error(".git kept in the plugin directory")
	}
	// A local repository path works too.
	e.ok("plugin:install", repo, "--name", "greeter2")

	e.ok("plugin:disable", "greeter")
	writePlugin(t, repo, map[string]string{"plugin.toml": strings.Replace(manifest, "0.1.0", "0.2.0", 1)})
	gitIn("commit", "-q", "-am", "v2")
	gitIn("push", "-q", bare, "main")
	if out := e.ok("plugin:update", "greeter"); !strings.Contains(out, "updated to 0.2.0") {
		t.Errorf("plugin:update:\n%s", out)
	}
	p, _ = e.m.Get("greeter")
	if p.Manifest.Version != "0.2.0" || p.Enabled {
		t.Errorf("after update: version %s, enabled %v (want 0.2.0, still disabled)", p.Manifest.Version, p.Enabled)
	}
}

func TestHangingTriggerIsKilledAtTheTimeout(t *testing.T) {
	e := newEnv(t, time.Second)
	src := writePlugin(t, filepath.Join(t.TempDir(), "hangs"), map[string]string{
		"plugin.toml": manifest,
		"pre-build*":  "#!/bin/sh\necho 'checking...' >&2\nsleep 60\n",
	})
	e.ok("plugin:install", src)
	start := time.Now()
	code, out, errOut := e.run("", "plugin:trigger", "pre-build", "dockerfile", "web", "/tmp")
	if code == 0 || !strings.Contains(errOut, "hangs/pre-build timed out after 1s and was killed") {
		t.Errorf("hanging trigger: %d %q %q", code, out, errOut)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestExamplePlugins(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is not installed")
		}
		t.Skip("curl is not installed (the notifier example uses it)")
	}
	e := newEnv(t, 0)
	e.ok("plugin:install", filepath.Join("examples", "notifier"))
	e.ok("plugin:install", filepath.Join("examples", "deploy-window"))

	got := make(chan map[string]string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]string
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &m)
		m["content-type"] = r.Header.Get("Content-Type")
		got <- m
	}))
	defer srv.Close()

	// Without a url the notifier says so and does not fail the deploy.
	var out bytes.Buffer
	if _, err := e.hk.Run(context.Background(), "post-deploy", []string{"web", "5000", "", "rivetr/web:3"}, apps.HookOpts{Out: &out}); err != nil || !strings.Contains(out.String(), "no url set") {
		t.Errorf("notifier without url: %v %q", err, out.String())
	}
	e.ok("plugin:set", "notifier", "url", srv.URL)
	out.Reset()
	if _, err := e.hk.Run(context.Background(), "post-deploy", []string{"web", "5000", "", "rivetr/web:3"}, apps.HookOpts{Out: &out}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		if m["event"] != "deploy" || m["app"] != "web" || m["image"] != "rivetr/web:3" || m["time"] == "" || m["content-type"] != "application/json" {
			t.Errorf("notification %v", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification")
	}
	if !strings.Contains(out.String(), "Notified the configured url of the deploy of web") {
		t.Errorf("notifier output %q", out.String())
	}
	if code, o, _ := e.run("", "notifier:test", "web"); code != 0 || !strings.Contains(o, "Sent a test message") {
		t.Errorf("notifier:test: %d %q", code, o)
	} else if m := <-got; m["event"] != "test" {
		t.Errorf("test notification %v", m)
	}
	if h := e.ok("notifier:help"); !strings.Contains(h, "notifier:test [<app>]") {
		t.Errorf("notifier:help:\n%s", h)
	}

	// The deploy window: one that excludes now refuses, one that holds now allows.
	now := time.Now().UTC()
	hhmm := func(t time.Time) string { return t.Format("15:04") }
	e.ok("plugin:set", "deploy-window", "days", "Mon,Tue,Wed,Thu,Fri,Sat,Sun")
	e.ok("plugin:set", "deploy-window", "window", hhmm(now.Add(2*time.Hour))+"-"+hhmm(now.Add(3*time.Hour)))
	out.Reset()
	_, err := e.hk.Run(context.Background(), "pre-deploy", []string{"web", "rivetr/web:4"}, apps.HookOpts{Out: &out})
	if err == nil || !strings.Contains(err.Error(), "deploy-window: deploys of web are allowed "+hhmm(now.Add(2*time.Hour))) {
		t.Errorf("outside the window: %v", err)
	}
	e.ok("plugin:set", "deploy-window", "window", hhmm(now.Add(-time.Hour))+"-"+hhmm(now.Add(time.Hour)))
	if _, err := e.hk.Run(context.Background(), "pre-deploy", []string{"web", "rivetr/web:4"}, apps.HookOpts{}); err != nil {
		t.Errorf("inside the window: %v", err)
	}
	e.ok("plugin:set", "deploy-window", "days", "Nowhereday")
	if _, err := e.hk.Run(context.Background(), "pre-deploy", []string{"web", "rivetr/web:4"}, apps.HookOpts{}); err == nil || !strings.Contains(err.Error(), "allowed on Nowhereday") {
		t.Errorf("on a day not allowed: %v", err)
	}
}
