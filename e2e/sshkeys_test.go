package e2e

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

func TestSSHKeys(t *testing.T) {
	t.Parallel()
	srv, admin := setup(t)
	adminFP := fingerprint(t, admin.key.Public)
	other := newKey(t, "other")
	otherFP := fingerprint(t, other.Public)
	otherClient := srv.client(t, other)

	t.Run("list", func(t *testing.T) {
		want := adminFP + ` NAME="admin"` + "\n"
		if got := admin.must(t, "ssh-keys:list").Stdout; got != want {
			t.Errorf("ssh-keys:list = %q, want %q", got, want)
		}
		if got := srv.mustCLI(t, nil, "ssh-keys:list").Stdout; got != want {
			t.Errorf("local ssh-keys:list = %q, want %q", got, want)
		}
		res := admin.must(t, "ssh-keys:list", "--format", "json")
		var list []struct {
			Name        string `json:"name"`
			Fingerprint string `json:"fingerprint"`
		}
		if err := json.Unmarshal([]byte(res.Stdout), &list); err != nil {
			t.Fatalf("decode: %v\n%s", err, res)
		}
		if len(list) != 1 || list[0].Name != "admin" || list[0].Fingerprint != adminFP {
			t.Errorf("ssh-keys:list --format json = %s", res.Stdout)
		}
	})

	t.Run("unknown key refused", func(t *testing.T) {
		res := otherClient.ssh(t, nil, "apps:list")
		if res.Code == 0 {
			t.Fatalf("an unknown key was let in: %s", res)
		}
		if !strings.Contains(res.Stderr, "Permission denied") {
			t.Errorf("ssh with an unknown key: %s", res)
		}
	})

	t.Run("any user name", func(t *testing.T) {
		for _, user := range []string{"git", "dokku", "root"} {
			c := srv.client(t, admin.key)
			c.user = user
			if res := c.must(t, "apps:list", "--format", "json"); res.Stdout != "[]\n" {
				t.Errorf("ssh %s@: %s", user, res)
			}
		}
	})

	t.Run("add and remove are refused over SSH", func(t *testing.T) {
		res := admin.ssh(t, readFile(t, other.Public), "ssh-keys:add", "other", "-")
		wantError(t, res, 1, "ssh-keys:add can only be run on the server")
		if res := otherClient.ssh(t, nil, "version"); res.Code == 0 {
			t.Fatal("a key added over SSH was let in")
		}
		wantError(t, admin.ssh(t, nil, "ssh-keys:remove", "admin"), 1, "ssh-keys:remove can only be run on the server")
		wantError(t, admin.ssh(t, nil, "ssh-keys:remove", "--fingerprint", adminFP), 1, "can only be run on the server")
		admin.must(t, "version")
	})

	t.Run("duplicates refused", func(t *testing.T) {
		wantError(t, srv.cli(t, nil, "ssh-keys:add", "admin", other.Public), 1, "Duplicate ssh key name admin")
		wantError(t, srv.cli(t, nil, "ssh-keys:add", "admin2", admin.key.Public), 1, "Duplicate ssh public key specified")
		wantError(t, srv.cli(t, readFile(t, admin.key.Public), "ssh-keys:add", "admin3", "-"), 1, "Duplicate ssh public key")
		if got := admin.must(t, "ssh-keys:list").Stdout; got != adminFP+` NAME="admin"`+"\n" {
			t.Errorf("keys after refused duplicates = %q", got)
		}
	})

	t.Run("bad input refused", func(t *testing.T) {
		garbage := filepath.Join(t.TempDir(), "garbage.pub")
		writeFile(t, garbage, "not a key\n")
		wantError(t, srv.cli(t, nil, "ssh-keys:add", "garbage", garbage), 1, "")
		wantError(t, srv.cli(t, []byte("ssh-ed25519 AAAAnope\n"), "ssh-keys:add", "garbage", "-"), 1, "")
		wantError(t, srv.cli(t, nil, "ssh-keys:add", "missing", filepath.Join(t.TempDir(), "none.pub")), 1, "")
		for _, name := range []string{"-dash", "a/b", "a b", "a;b", "$x", strings.Repeat("k", 65)} {
			wantError(t, srv.cli(t, nil, "ssh-keys:add", name, other.Public), 1, "")
		}
		wantError(t, srv.cli(t, nil, "ssh-keys:add", "only-name"), 1, "Usage")
		if got := len(nonEmptyLines(srv.mustCLI(t, nil, "ssh-keys:list").Stdout)); got != 1 {
			t.Errorf("%d keys after refused adds, want 1", got)
		}
	})

	t.Run("add from stdin and remove by name", func(t *testing.T) {
		res := srv.mustCLI(t, readFile(t, other.Public), "ssh-keys:add", "other", "-")
		if !strings.Contains(res.Stdout, otherFP) {
			t.Errorf("ssh-keys:add stdout = %q, want the fingerprint %s", res.Stdout, otherFP)
		}
		otherClient.must(t, "apps:list")
		list := admin.must(t, "ssh-keys:list").Stdout
		if !strings.Contains(list, otherFP+` NAME="other"`) || !strings.Contains(list, adminFP+` NAME="admin"`) {
			t.Errorf("ssh-keys:list = %q", list)
		}
		srv.mustCLI(t, nil, "ssh-keys:remove", "other")
		if res := otherClient.ssh(t, nil, "version"); res.Code == 0 {
			t.Fatal("a removed key was still let in")
		}
		wantError(t, srv.cli(t, nil, "ssh-keys:remove", "other"), 1, "")
	})

	t.Run("add a file and remove by fingerprint", func(t *testing.T) {
		srv.mustCLI(t, nil, "ssh-keys:add", "other", other.Public)
		otherClient.must(t, "version")
		srv.mustCLI(t, nil, "ssh-keys:remove", "--fingerprint", otherFP)
		if res := otherClient.ssh(t, nil, "version"); res.Code == 0 {
			t.Fatal("a key removed by fingerprint was still let in")
		}
		wantError(t, srv.cli(t, nil, "ssh-keys:remove", "--fingerprint", otherFP), 1, "")
		admin.must(t, "version")
	})

	t.Run("add a file relative to the working directory", func(t *testing.T) {
		// `rivetr ssh-keys:add NAME FILE` run where FILE is: the path is
		// the user's, not the daemon's working directory.
		res := srv.cliIn(t, filepath.Dir(other.Public), nil, "ssh-keys:add", "relative", filepath.Base(other.Public))
		wantOK(t, res)
		if res.Code == 0 {
			otherClient.must(t, "version")
			srv.mustCLI(t, nil, "ssh-keys:remove", "relative")
		}
	})
}

func TestCLIWithoutDaemon(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, srv *server) {
		t.Helper()
		for _, args := range [][]string{{"apps:list"}, {"ssh-keys:add", "admin", "-"}, {"config:get", "app", "KEY"}} {
			res := srv.cli(t, nil, args...)
			lines := nonEmptyLines(res.Stderr)
			if res.Code != 1 || len(lines) != 1 || !strings.HasPrefix(res.Stderr, errPrefix) || !strings.Contains(res.Stderr, "not running") {
				t.Errorf("rivetr %q without a daemon: %s\nwant exit 1 and one line saying it is not running", args, res)
			}
			if res.Stdout != "" {
				t.Errorf("rivetr %q without a daemon printed %q", args, res.Stdout)
			}
		}
		res := srv.cli(t, nil, "version")
		if res.Code != 0 || !strings.HasPrefix(res.Stdout, "rivetr ") {
			t.Errorf("rivetr version without a daemon: %s", res)
		}
		res = srv.cli(t, nil, "help")
		if res.Code != 0 || !strings.Contains(res.Stdout, "    apps ") {
			t.Errorf("rivetr help without a daemon: %s", res)
		}
	}
	t.Run("never started", func(t *testing.T) {
		check(t, newServer(t))
	})
	t.Run("stopped", func(t *testing.T) {
		srv := startServer(t)
		srv.mustCLI(t, nil, "apps:create", "app")
		srv.stop()
		check(t, srv)
	})
}
