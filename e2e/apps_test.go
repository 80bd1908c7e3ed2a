package e2e

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestApps(t *testing.T) {
	t.Parallel()
	_, c := setup(t)

	t.Run("list empty", func(t *testing.T) {
		res := c.ssh(t, nil, "apps:list")
		wantOK(t, res)
		if res.Stdout != "" || !strings.Contains(res.Stderr, "You haven't deployed any applications yet") {
			t.Errorf("apps:list with no apps:\n%s", res)
		}
		if got := c.appNames(t); len(got) != 0 {
			t.Errorf("apps:list --format json = %q, want none", got)
		}
	})

	t.Run("create", func(t *testing.T) {
		res := c.must(t, "apps:create", "web")
		if res.Stdout != "-----> Creating web...\n" {
			t.Errorf("apps:create stdout = %q", res.Stdout)
		}
		c.must(t, "apps:create", "api-2.v1")
		c.must(t, "apps:create", "0day")
		if got, want := c.appNames(t), []string{"0day", "api-2.v1", "web"}; !slices.Equal(got, want) {
			t.Errorf("apps = %q, want %q", got, want)
		}
	})

	t.Run("list", func(t *testing.T) {
		res := c.must(t, "apps:list")
		if want := "=====> My Apps\n0day\napi-2.v1\nweb\n"; res.Stdout != want {
			t.Errorf("apps:list stdout = %q, want %q", res.Stdout, want)
		}
	})

	t.Run("list json", func(t *testing.T) {
		res := c.must(t, "apps:list", "--format", "json")
		var list []map[string]any
		if err := json.Unmarshal([]byte(res.Stdout), &list); err != nil {
			t.Fatalf("decode: %v\n%s", err, res)
		}
		if len(list) != 3 {
			t.Fatalf("got %d apps, want 3: %s", len(list), res.Stdout)
		}
		for _, a := range list {
			if _, ok := a["name"].(string); !ok {
				t.Errorf("app without a name: %v", a)
			}
			if n, ok := a["created_at"].(float64); !ok || n <= 0 {
				t.Errorf("app without created_at: %v", a)
			}
			if l, ok := a["locked"].(bool); !ok || l {
				t.Errorf("new app should be unlocked: %v", a)
			}
		}
	})

	t.Run("duplicate create", func(t *testing.T) {
		wantError(t, c.ssh(t, nil, "apps:create", "web"), -1, "Name is already taken")
		if got := c.appNames(t); len(got) != 3 {
			t.Errorf("apps after duplicate create = %q", got)
		}
	})

	t.Run("exists", func(t *testing.T) {
		res := c.ssh(t, nil, "apps:exists", "web")
		wantOK(t, res)
		wantError(t, c.ssh(t, nil, "apps:exists", "nope"), 20, "App nope does not exist")
	})

	t.Run("missing app exits 20", func(t *testing.T) {
		for _, args := range [][]string{
			{"apps:exists", "ghost"},
			{"apps:lock", "ghost"},
			{"apps:report", "ghost"},
			{"apps:destroy", "ghost", "--force"},
			{"apps:rename", "ghost", "ghost2"},
			{"config:get", "ghost", "KEY"},
			{"config:set", "ghost", "KEY=v"},
			{"config:export", "ghost"},
		} {
			t.Run(args[0], func(t *testing.T) {
				wantError(t, c.ssh(t, nil, args...), 20, "App ghost does not exist")
			})
		}
		if slices.Contains(c.appNames(t), "ghost2") {
			t.Error("renaming a missing app created the new name")
		}
	})

	t.Run("rename", func(t *testing.T) {
		c.must(t, "config:set", "api-2.v1", "KEPT=yes")
		res := c.must(t, "apps:rename", "api-2.v1", "api")
		if !strings.HasPrefix(res.Stdout, "-----> ") {
			t.Errorf("apps:rename stdout = %q", res.Stdout)
		}
		if got, want := c.appNames(t), []string{"0day", "api", "web"}; !slices.Equal(got, want) {
			t.Errorf("apps after rename = %q, want %q", got, want)
		}
		wantError(t, c.ssh(t, nil, "apps:exists", "api-2.v1"), 20, "does not exist")
		if got := c.env(t, "api")["KEPT"]; got != "yes" {
			t.Errorf("config after rename: KEPT = %q, want yes", got)
		}
		wantError(t, c.ssh(t, nil, "apps:rename", "api", "web"), -1, "Name is already taken")
		wantError(t, c.ssh(t, nil, "apps:rename", "api", "Bad_Name"), 1, "invalid")
		if got, want := c.appNames(t), []string{"0day", "api", "web"}; !slices.Equal(got, want) {
			t.Errorf("apps after refused renames = %q, want %q", got, want)
		}
	})

	t.Run("lock", func(t *testing.T) {
		wantError(t, c.ssh(t, nil, "apps:locked", "web"), 1, "Deploy lock does not exist")
		res := c.must(t, "apps:lock", "web")
		if res.Stdout != "-----> Deploy lock created\n" {
			t.Errorf("apps:lock stdout = %q", res.Stdout)
		}
		res = c.must(t, "apps:locked", "web")
		if res.Stdout != "-----> Deploy lock exists\n" {
			t.Errorf("apps:locked stdout = %q", res.Stdout)
		}
		if got := strings.TrimSpace(c.must(t, "apps:report", "web", "--app-locked").Stdout); got != "true" {
			t.Errorf("apps:report --app-locked = %q, want true", got)
		}
		res = c.must(t, "apps:unlock", "web")
		if res.Stdout != "-----> Deploy lock removed\n" {
			t.Errorf("apps:unlock stdout = %q", res.Stdout)
		}
		wantError(t, c.ssh(t, nil, "apps:locked", "web"), 1, "Deploy lock does not exist")
		if got := c.must(t, "apps:report", "web", "--app-locked").Stdout; got != "false\n" {
			t.Errorf("apps:report --app-locked = %q, want false", got)
		}
	})

	t.Run("report", func(t *testing.T) {
		res := c.must(t, "apps:report", "web", "--format", "json")
		var one map[string]string
		if err := json.Unmarshal([]byte(res.Stdout), &one); err != nil {
			t.Fatalf("decode: %v\n%s", err, res)
		}
		for _, k := range []string{"app-created-at", "app-deploy-source", "app-deploy-source-metadata", "app-dir", "app-locked"} {
			if _, ok := one[k]; !ok {
				t.Errorf("apps:report --format json lacks %q: %s", k, res.Stdout)
			}
		}
		if one["app-locked"] != "false" {
			t.Errorf("app-locked = %q", one["app-locked"])
		}
		if n, err := strconv.ParseInt(one["app-created-at"], 10, 64); err != nil || n <= 0 {
			t.Errorf("app-created-at = %q, want a Unix time", one["app-created-at"])
		}
		if got := c.must(t, "apps:report", "web", "--app-created-at").Stdout; got != one["app-created-at"]+"\n" {
			t.Errorf("apps:report --app-created-at = %q, want %q", got, one["app-created-at"])
		}

		res = c.must(t, "apps:report", "--format", "json")
		var all map[string]map[string]string
		if err := json.Unmarshal([]byte(res.Stdout), &all); err != nil {
			t.Fatalf("decode: %v\n%s", err, res)
		}
		if len(all) != 3 || all["web"] == nil || all["api"] == nil || all["0day"] == nil {
			t.Errorf("apps:report --format json for all apps = %s", res.Stdout)
		}

		res = c.must(t, "apps:report", "web")
		if !strings.HasPrefix(res.Stdout, "=====> web app information\n") || !strings.Contains(res.Stdout, "\n       App locked:") {
			t.Errorf("apps:report web:\n%s", res.Stdout)
		}

		wantError(t, c.ssh(t, nil, "apps:report", "web", "--app-nonsense"), 1, "Invalid flag passed")
	})

	t.Run("clone", func(t *testing.T) {
		c.must(t, "config:set", "web", "CLONED=1")
		c.must(t, "apps:clone", "web", "web-copy")
		if got := c.env(t, "web-copy"); !maps.Equal(got, c.env(t, "web")) {
			t.Errorf("clone env = %v, want %v", got, c.env(t, "web"))
		}
		wantError(t, c.ssh(t, nil, "apps:clone", "web", "api"), -1, "Name is already taken")
		res := c.must(t, "apps:clone", "web", "api", "--ignore-existing")
		if !strings.Contains(res.Stderr, "Name is already taken") {
			t.Errorf("apps:clone --ignore-existing onto an existing app: %s", res)
		}
		if _, ok := c.env(t, "api")["CLONED"]; ok {
			t.Error("apps:clone --ignore-existing overwrote the existing app's config")
		}
		wantError(t, c.ssh(t, nil, "apps:clone", "web", "Web_2"), 1, "invalid")
		c.must(t, "apps:destroy", "web-copy", "--force")
		c.must(t, "config:unset", "web", "CLONED")
	})

	t.Run("set", func(t *testing.T) {
		c.must(t, "apps:set", "--global", "disable-autocreation", "true")
		c.must(t, "apps:set", "--global", "disable-autocreation")
		wantError(t, c.ssh(t, nil, "apps:set", "--global", "disable-autocreation", "maybe"), 1, "disable-autocreation")
		wantError(t, c.ssh(t, nil, "apps:set", "--global", "nonsense", "1"), 1, "Invalid key")
		c.must(t, "apps:set", "web", "deploy-source", "git")
		if got := c.must(t, "apps:report", "web", "--app-deploy-source").Stdout; got != "git\n" {
			t.Errorf("app-deploy-source = %q, want git", got)
		}
		c.must(t, "apps:set", "web", "deploy-source")
		if got := c.must(t, "apps:report", "web", "--app-deploy-source").Stdout; got != "\n" {
			t.Errorf("app-deploy-source after unset = %q, want empty", got)
		}
	})

	t.Run("destroy", func(t *testing.T) {
		c.must(t, "apps:create", "doomed")
		c.must(t, "config:set", "doomed", "SECRET=1")

		res := c.ssh(t, []byte("wrong\n"), "apps:destroy", "doomed")
		wantError(t, res, 1, "Confirmation did not match doomed. Aborted.")
		if !strings.Contains(res.Stderr, `To proceed, type "doomed"`) {
			t.Errorf("destroy did not ask for confirmation:\n%s", res)
		}
		if !slices.Contains(c.appNames(t), "doomed") {
			t.Fatal("a wrong confirmation destroyed the app")
		}

		// No stdin at all is no confirmation.
		wantError(t, c.ssh(t, nil, "apps:destroy", "doomed"), 1, "Aborted")
		if !slices.Contains(c.appNames(t), "doomed") {
			t.Fatal("an empty confirmation destroyed the app")
		}

		res = c.mustIn(t, []byte("doomed\n"), "apps:destroy", "doomed")
		if !strings.Contains(res.Stdout, "-----> Destroying doomed") {
			t.Errorf("apps:destroy stdout = %q", res.Stdout)
		}
		if slices.Contains(c.appNames(t), "doomed") {
			t.Fatal("app still listed after destroy")
		}
		wantError(t, c.ssh(t, nil, "apps:exists", "doomed"), 20, "does not exist")

		// A new app of the same name starts with no config.
		c.must(t, "apps:create", "doomed")
		if env := c.env(t, "doomed"); len(env) != 0 {
			t.Errorf("re-created app has config %v", env)
		}

		res = c.must(t, "apps:destroy", "doomed", "--force")
		if strings.Contains(res.Stderr, "To proceed") {
			t.Errorf("--force still asked for confirmation:\n%s", res)
		}
		c.must(t, "apps:create", "doomed")
		c.must(t, "--force", "apps:destroy", "doomed")
		if slices.Contains(c.appNames(t), "doomed") {
			t.Fatal("app still listed after destroy --force")
		}
	})
}

func TestBadAppNames(t *testing.T) {
	t.Parallel()
	srv, c := setup(t)
	bad := []string{
		"MyApp", "my_app", "a/b", "a;b", ";", "a$b", "$HOME", "a|b", "a&b", "a b",
		"-app", "--app-name", "..", "a..b", ".hidden", "../etc", "a\nb", "é",
		strings.Repeat("a", 64),
	}
	for _, name := range bad {
		t.Run(strconv.Quote(name), func(t *testing.T) {
			res := c.ssh(t, nil, "apps:create", name)
			if res.Code == 0 {
				t.Errorf("apps:create %q succeeded:\n%s", name, res)
			}
			if !strings.HasPrefix(res.Stderr, errPrefix) {
				t.Errorf("stderr does not start with %q:\n%s", errPrefix, res)
			}
			if strings.Contains(res.Stdout, "Creating") {
				t.Errorf("stdout claims the app is created:\n%s", res)
			}
			// The local CLI refuses it the same way.
			res = srv.cli(t, nil, "apps:create", name)
			if res.Code == 0 || !strings.HasPrefix(res.Stderr, errPrefix) {
				t.Errorf("local apps:create %q:\n%s", name, res)
			}
		})
	}
	// The longest valid name is accepted, so the length check is exact.
	c.must(t, "apps:create", strings.Repeat("a", 63))
	if got := c.appNames(t); len(got) != 1 || got[0] != strings.Repeat("a", 63) {
		t.Errorf("apps after bad creates = %q, want only the 63-character one", got)
	}
}

func TestCommandLanguage(t *testing.T) {
	t.Parallel()
	srv, c := setup(t)

	t.Run("unknown command", func(t *testing.T) {
		for _, name := range []string{"foo", "apps:foo", "frobnicate:now"} {
			res := c.ssh(t, nil, name)
			want := errPrefix + "`" + name + "` is not a rivetr command.\n"
			if res.Code != 1 || res.Stderr != want {
				t.Errorf("ssh %s: got %s\nwant exit 1 and stderr %q", name, res, want)
			}
			if local := srv.cli(t, nil, name); local != res {
				t.Errorf("local CLI differs from SSH for %s:\nlocal: %s\nssh: %s", name, local, res)
			}
		}
	})

	t.Run("help lists namespaces", func(t *testing.T) {
		for _, args := range [][]string{{"help"}, {"--help"}, {}} {
			res := c.ssh(t, nil, args...)
			wantOK(t, res)
			for _, ns := range []string{"apps", "config", "ssh-keys", "version"} {
				if !containsLineWithPrefix(res.Stdout, "    "+ns+" ") {
					t.Errorf("help %q does not list %s:\n%s", args, ns, res.Stdout)
				}
			}
		}
		res := c.must(t, "help", "--all")
		for _, cmd := range []string{"apps:create", "config:export", "ssh-keys:list"} {
			if !strings.Contains(res.Stdout, cmd) {
				t.Errorf("help --all does not list %s:\n%s", cmd, res.Stdout)
			}
		}
	})

	t.Run("namespace help forms", func(t *testing.T) {
		want := c.must(t, "apps").Stdout
		if !strings.HasPrefix(want, "Usage: rivetr apps[:COMMAND]") {
			t.Errorf("apps help:\n%s", want)
		}
		for _, cmd := range []string{"apps:create", "apps:destroy", "apps:list", "apps:exists", "apps:rename", "apps:lock", "apps:unlock", "apps:locked", "apps:report"} {
			if !strings.Contains(want, "    "+cmd) {
				t.Errorf("apps help does not list %s:\n%s", cmd, want)
			}
		}
		for _, args := range [][]string{{"apps:help"}, {"apps", "--help"}, {"help", "apps"}} {
			if got := c.must(t, args...).Stdout; got != want {
				t.Errorf("%q printed\n%s\nwant the same as `apps`:\n%s", args, got, want)
			}
		}
		for _, args := range [][]string{{"config"}, {"config:help"}, {"config", "--help"}, {"ssh-keys:help"}} {
			res := c.must(t, args...)
			if !strings.HasPrefix(res.Stdout, "Usage: rivetr "+strings.TrimSuffix(args[0], ":help")+"[:COMMAND]") {
				t.Errorf("%q:\n%s", args, res.Stdout)
			}
		}
		res := c.must(t, "apps:create", "--help")
		if !strings.HasPrefix(res.Stdout, "Usage: rivetr apps:create <app>") {
			t.Errorf("apps:create --help:\n%s", res.Stdout)
		}
		if got := c.appNames(t); len(got) != 0 {
			t.Errorf("help created apps: %q", got)
		}
	})

	t.Run("global flags anywhere", func(t *testing.T) {
		res := c.must(t, "--quiet", "apps:create", "q1")
		if res.Stdout != "" {
			t.Errorf("--quiet before the command printed %q", res.Stdout)
		}
		res = c.must(t, "apps:create", "q2", "--quiet")
		if res.Stdout != "" {
			t.Errorf("--quiet after the command printed %q", res.Stdout)
		}
		c.must(t, "--app", "q1", "config:set", "A=1")
		c.must(t, "config:set", "--app", "q1", "B=2")
		c.must(t, "config:set", "C=3", "--app", "q1")
		c.must(t, "config:set", "--app=q1", "D=4")
		for _, args := range [][]string{
			{"--app", "q1", "config:get", "A"},
			{"config:get", "--app", "q1", "A"},
			{"config:get", "A", "--app", "q1"},
			{"--quiet", "config:get", "A", "--app=q1"},
		} {
			if got := c.must(t, args...).Stdout; got != "1\n" {
				t.Errorf("%q = %q, want 1", args, got)
			}
		}
		if got, want := c.env(t, "q1"), map[string]string{"A": "1", "B": "2", "C": "3", "D": "4"}; !maps.Equal(got, want) {
			t.Errorf("q1 env = %v, want %v", got, want)
		}
		if got := c.must(t, "apps:exists", "--app", "q2").Code; got != 0 {
			t.Errorf("apps:exists --app q2 exit %d", got)
		}
		res = c.must(t, "apps:destroy", "--app", "q2", "--force", "--quiet")
		if res.Stdout != "" || res.Stderr != "" {
			t.Errorf("quiet forced destroy printed:\n%s", res)
		}
		if got := c.appNames(t); !slices.Equal(got, []string{"q1"}) {
			t.Errorf("apps = %q, want [q1]", got)
		}
		wantError(t, c.ssh(t, nil, "apps:list", "--app"), 1, "--app")
	})

	t.Run("version", func(t *testing.T) {
		res := c.must(t, "version")
		if !strings.HasPrefix(res.Stdout, "rivetr ") || len(nonEmptyLines(res.Stdout)) != 1 {
			t.Errorf("ssh version = %q", res.Stdout)
		}
		local := srv.mustCLI(t, nil, "version")
		if !strings.HasPrefix(local.Stdout, "rivetr ") || len(nonEmptyLines(local.Stdout)) != 1 {
			t.Errorf("rivetr version = %q", local.Stdout)
		}
		if local.Stdout != res.Stdout {
			t.Errorf("rivetr version = %q, ssh version = %q", local.Stdout, res.Stdout)
		}
	})

	t.Run("same output locally and over SSH", func(t *testing.T) {
		for _, args := range [][]string{
			{"apps:list"},
			{"apps:report", "q1", "--format", "json"},
			{"config:export", "q1", "--format", "shell"},
			{"apps:exists", "nope"},
			{"config:get", "q1", "MISSING"},
		} {
			if local, remote := srv.cli(t, nil, args...), c.ssh(t, nil, args...); local != remote {
				t.Errorf("%q differs:\nlocal: %s\nssh: %s", args, local, remote)
			}
		}
	})
}

func containsLineWithPrefix(s, prefix string) bool {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}
