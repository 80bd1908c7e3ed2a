package commands

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rivetr/rivetr/apps"
	"github.com/rivetr/rivetr/store"
)

// harness runs commands against a real SQLite store in a temp dir.
type harness struct {
	t   *testing.T
	reg *Registry
}

type result struct {
	code        int
	out, errOut string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(context.Background(), filepath.Join(dir, "rivetr.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg := NewRegistry()
	RegisterCore(reg, Deps{Apps: apps.NewService(db), Version: "test", DataDir: dir})
	return &harness{t: t, reg: reg}
}

func (h *harness) run(stdin string, admin bool, args ...string) result {
	var out, errOut bytes.Buffer
	s := &Session{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errOut, Admin: admin, User: "test"}
	code := h.reg.Run(context.Background(), s, args)
	return result{code, out.String(), errOut.String()}
}

func (h *harness) ok(args ...string) string {
	h.t.Helper()
	r := h.run("", false, args...)
	if r.code != 0 {
		h.t.Fatalf("%v: exit %d\n%s%s", args, r.code, r.out, r.errOut)
	}
	return r.out
}

func (h *harness) fails(code int, errPart string, args ...string) {
	h.t.Helper()
	r := h.run("", false, args...)
	if r.code != code {
		h.t.Errorf("%v: exit %d, want %d (stderr %q)", args, r.code, code, r.errOut)
	}
	if errPart != "" && !strings.Contains(r.errOut, errPart) {
		h.t.Errorf("%v: stderr %q does not contain %q", args, r.errOut, errPart)
	}
	if errPart != "" && !strings.HasPrefix(r.errOut, " !     ") {
		h.t.Errorf("%v: stderr %q lacks the ' !     ' prefix", args, r.errOut)
	}
}

func TestHelpAndUnknown(t *testing.T) {
	h := newHarness(t)
	for _, args := range [][]string{nil, {"help"}, {"--help"}} {
		out := h.ok(args...)
		for _, ns := range []string{"apps", "config", "ssh-keys", "version"} {
			if !strings.Contains(out, "    "+ns+" ") {
				t.Errorf("help %v lacks %s:\n%s", args, ns, out)
			}
		}
	}
	for _, args := range [][]string{{"apps"}, {"apps:help"}, {"apps", "--help"}, {"config"}, {"help", "apps"}} {
		out := h.ok(args...)
		if !strings.Contains(out, "apps:create") && !strings.Contains(out, "config:set") {
			t.Errorf("%v: no namespace help:\n%s", args, out)
		}
	}
	if out := h.ok("apps:create", "--help"); !strings.HasPrefix(out, "Usage: rivetr apps:create <app>") {
		t.Errorf("command help: %q", out)
	}
	r := h.run("", false, "frobnicate")
	if r.code != 1 || r.errOut != " !     `frobnicate` is not a rivetr command.\n" {
		t.Errorf("unknown: %d %q", r.code, r.errOut)
	}
	h.fails(1, "is not a rivetr command", "apps:frob")
	if out := h.ok("help", "--all"); !strings.Contains(out, "config:bundle") {
		t.Errorf("help --all lacks commands")
	}
}

func TestAppsLifecycle(t *testing.T) {
	h := newHarness(t)
	if out := h.ok("apps:create", "web"); out != "-----> Creating web...\n" {
		t.Errorf("create output %q", out)
	}
	h.fails(1, "Name is already taken", "apps:create", "web")
	h.fails(20, "App nope does not exist", "apps:exists", "nope")
	h.ok("apps:exists", "web")
	for _, bad := range []string{"Web", "my_app", "a/b", "a;b", "a$b", "a|b", "a&b", "..", "a b"} {
		h.fails(1, "", "apps:create", bad)
	}
	h.fails(1, "is invalid", "apps:create", "-x")
	if out := h.ok("apps:list"); out != "=====> My Apps\nweb\n" {
		t.Errorf("list %q", out)
	}
	if out := h.ok("--quiet", "apps:list"); out != "web\n" {
		t.Errorf("quiet list %q", out)
	}
	var list []map[string]any
	json.Unmarshal([]byte(h.ok("apps:list", "--format", "json")), &list)
	if len(list) != 1 || list[0]["name"] != "web" {
		t.Errorf("json list %v", list)
	}
	h.ok("apps:lock", "web")
	h.ok("apps:locked", "web")
	if v := h.ok("apps:report", "web", "--app-locked"); v != "true\n" {
		t.Errorf("report flag %q", v)
	}
	h.ok("apps:unlock", "web")
	h.fails(1, "Deploy lock does not exist", "apps:locked", "web")
	h.ok("config:set", "web", "A=1")
	h.ok("apps:rename", "web", "site")
	h.fails(20, "", "apps:exists", "web")
	if v := h.ok("config:get", "site", "A"); v != "1\n" {
		t.Errorf("config after rename %q", v)
	}
	h.ok("apps:clone", "site", "copy")
	if v := h.ok("config:get", "copy", "A"); v != "1\n" {
		t.Errorf("config after clone %q", v)
	}
	h.fails(1, "Name is already taken", "apps:clone", "site", "copy")
	h.ok("apps:clone", "--ignore-existing", "site", "copy")

	// destroy: wrong confirmation aborts, right one destroys, --force skips.
	r := h.run("nope\n", false, "apps:destroy", "site")
	if r.code != 1 || !strings.Contains(r.errOut, "Confirmation did not match site") {
		t.Errorf("bad confirmation: %d %q", r.code, r.errOut)
	}
	h.ok("apps:exists", "site")
	if r = h.run("site\n", false, "apps:destroy", "site"); r.code != 0 {
		t.Errorf("confirmed destroy: %d %q", r.code, r.errOut)
	}
	h.fails(20, "", "apps:exists", "site")
	h.ok("apps:destroy", "copy", "--force")
	h.fails(20, "App copy does not exist", "apps:destroy", "copy", "--force")
}

func TestGlobalAppFlag(t *testing.T) {
	h := newHarness(t)
	h.ok("apps:create", "web")
	h.ok("config:set", "--app", "web", "A=1")
	if v := h.ok("config:get", "A", "--app=web"); v != "1\n" {
		t.Errorf("--app: %q", v)
	}
	if v := h.ok("--app", "web", "apps:report", "--app-locked"); v != "false\n" {
		t.Errorf("--app report: %q", v)
	}
}

func TestAppsSet(t *testing.T) {
	h := newHarness(t)
	h.ok("apps:create", "web")
	h.ok("apps:set", "web", "deploy-source", "git")
	if v := h.ok("apps:report", "web", "--app-deploy-source"); v != "git\n" {
		t.Errorf("%q", v)
	}
	h.ok("apps:set", "--global", "disable-autocreation", "true")
	h.fails(1, "Invalid key", "apps:set", "web", "colour", "red")
	h.fails(1, "Invalid value", "apps:set", "--global", "disable-autocreation", "maybe")
	var rep map[string]string
	json.Unmarshal([]byte(h.ok("apps:report", "web", "--format", "json")), &rep)
	if rep["app-deploy-source"] != "git" || rep["app-locked"] != "false" {
		t.Errorf("json report %v", rep)
	}
	h.fails(1, "Invalid flag passed", "apps:report", "web", "--app-colour")
}

func TestConfigCommands(t *testing.T) {
	h := newHarness(t)
	h.ok("apps:create", "web")
	h.ok("config:set", "--no-restart", "web", "B=two words", "A=it's")
	h.ok("config:set", "--global", "G=1", "A=global")
	if out := h.ok("config:show", "web"); out != "=====> web env vars\nA:  it's\nB:  two words\n" {
		t.Errorf("show %q", out)
	}
	if out := h.ok("config:export", "web"); out != "export A='it'\\''s'\nexport B='two words'\n" {
		t.Errorf("export %q", out)
	}
	if out := h.ok("config:keys", "web", "--merged"); out != "A\nB\nG\n" {
		t.Errorf("merged keys %q", out)
	}
	if out := h.ok("config:get", "web", "--quoted", "A"); out != "'it'\\''s'\n" {
		t.Errorf("quoted %q", out)
	}
	if r := h.run("", false, "config:get", "web", "NOPE"); r.code != 1 || r.errOut != "" {
		t.Errorf("missing key: %d %q", r.code, r.errOut)
	}
	// Bad input changes nothing.
	h.fails(1, "Invalid env var name", "config:set", "web", "C=1", "1BAD=x")
	h.fails(1, "expected KEY=VALUE", "config:set", "web", "C=1", "NOVALUE")
	h.fails(1, "not valid base64", "config:set", "--encoded", "web", "C=!!!")
	h.fails(1, "NUL", "config:set", "--encoded", "web", "C="+base64.StdEncoding.EncodeToString([]byte("a\x00b")))
	if out := h.ok("config:keys", "web"); out != "A\nB\n" {
		t.Errorf("bad input changed config: %q", out)
	}
	h.fails(20, "App nope does not exist", "config:set", "nope", "A=1")
	h.ok("config:unset", "web", "B")
	if out := h.ok("config:keys", "web"); out != "A\n" {
		t.Errorf("unset: %q", out)
	}
	h.ok("config:clear", "web")
	if out := h.ok("config:export", "web", "--format", "json"); out != "{}\n" {
		t.Errorf("clear: %q", out)
	}
	h.fails(1, "unknown format", "config:export", "web", "--format", "yaml")
}

func TestConfigImport(t *testing.T) {
	h := newHarness(t)
	h.ok("apps:create", "web")
	h.ok("config:set", "web", "OLD=1")
	r := h.run("A='x y'\nexport B=\"q\\\"q\"\n", false, "config:import", "web")
	if r.code != 0 {
		t.Fatalf("import: %d %s", r.code, r.errOut)
	}
	if out := h.ok("config:export", "web", "--format", "json"); out != `{"A":"x y","B":"q\"q","OLD":"1"}`+"\n" {
		t.Errorf("after import %q", out)
	}
	if r = h.run(`{"N":"1"}`, false, "config:import", "web", "--replace"); r.code != 0 {
		t.Fatalf("json import: %s", r.errOut)
	}
	if out := h.ok("config:keys", "web"); out != "N\n" {
		t.Errorf("replace: %q", out)
	}
	if r = h.run("A='open\n", false, "config:import", "web"); r.code != 1 || !strings.Contains(r.errOut, "nothing was imported") {
		t.Errorf("malformed import: %d %q", r.code, r.errOut)
	}
	if r = h.run(strings.Repeat("A=1\n", MaxImport/4+10), false, "config:import", "web"); r.code != 1 || !strings.Contains(r.errOut, "too large") {
		t.Errorf("oversized import: %d %q", r.code, r.errOut)
	}
	if r = h.run("", false, "config:import", "web", "/etc/passwd"); r.code != 1 || !strings.Contains(r.errOut, "only on the server") {
		t.Errorf("file import over ssh: %d %q", r.code, r.errOut)
	}
	if out := h.ok("config:keys", "web"); out != "N\n" {
		t.Errorf("failed imports changed config: %q", out)
	}
}

func TestAdminOnly(t *testing.T) {
	h := newHarness(t)
	r := h.run("", false, "ssh-keys:add", "me", "-")
	if r.code != 1 || !strings.Contains(r.errOut, "only be run on the server") {
		t.Errorf("ssh-keys:add over ssh: %d %q", r.code, r.errOut)
	}
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl test"
	if r = h.run(key, true, "ssh-keys:add", "me", "-"); r.code != 0 {
		t.Fatalf("add: %s", r.errOut)
	}
	if r = h.run(key, true, "ssh-keys:add", "me2", "-"); r.code != 1 || !strings.Contains(r.errOut, "Duplicate ssh public key") {
		t.Errorf("dup key: %q", r.errOut)
	}
	if r = h.run("garbage", true, "ssh-keys:add", "bad", "-"); r.code != 1 {
		t.Errorf("garbage key accepted")
	}
	if out := h.ok("ssh-keys:list"); !strings.HasSuffix(out, ` NAME="me"`+"\n") || !strings.HasPrefix(out, "SHA256:") {
		t.Errorf("list %q", out)
	}
	if r = h.run("", true, "ssh-keys:remove", "me"); r.code != 0 {
		t.Errorf("remove: %s", r.errOut)
	}
}
