package e2e

import (
	"context"
	"encoding/base64"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// keyscan returns the daemon's host keys as ssh-keyscan prints them.
func keyscan(t *testing.T, srv *server) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	res := run(t, exec.CommandContext(ctx, "ssh-keyscan", "-T", "30", "-p", strconv.Itoa(srv.sshPort), "127.0.0.1"), nil)
	if res.Code != 0 || !strings.Contains(res.Stdout, " ssh-ed25519 ") {
		t.Fatalf("ssh-keyscan: %s\nwant an ssh-ed25519 host key", res)
	}
	return res.Stdout
}

func TestRestartKeepsState(t *testing.T) {
	t.Parallel()
	srv, c := setup(t)
	second := newKey(t, "second")
	srv.mustCLI(t, nil, "ssh-keys:add", "second", second.Public)

	c.must(t, "apps:create", "alpha")
	c.must(t, "apps:create", "beta")
	c.must(t, "apps:create", "gamma")
	c.must(t, "apps:lock", "beta")
	c.must(t, "apps:rename", "gamma", "delta")
	c.must(t, "apps:create", "gone")
	c.must(t, "apps:destroy", "gone", "--force")
	args := []string{"config:set", "--encoded", "alpha"}
	for k, v := range oddValues {
		args = append(args, k+"="+base64.StdEncoding.EncodeToString([]byte(v)))
	}
	c.must(t, args...)
	c.must(t, "config:set", "delta", "RENAMED=kept")
	c.must(t, "config:set", "--global", "GLOBAL=1")

	snapshot := func(t *testing.T) map[string]string {
		t.Helper()
		return map[string]string{
			"apps":        c.must(t, "apps:list").Stdout,
			"report":      c.must(t, "apps:report", "--format", "json").Stdout,
			"alpha env":   c.must(t, "config:export", "alpha", "--format", "json").Stdout,
			"delta env":   c.must(t, "config:export", "delta", "--format", "json").Stdout,
			"global env":  c.must(t, "config:export", "--global", "--format", "json").Stdout,
			"merged env":  c.must(t, "config:export", "beta", "--merged", "--format", "json").Stdout,
			"keys":        c.must(t, "ssh-keys:list").Stdout,
			"beta locked": c.must(t, "apps:report", "beta", "--app-locked").Stdout,
		}
	}
	before := snapshot(t)
	hostKeys := keyscan(t, srv)
	if got := c.env(t, "alpha"); !maps.Equal(got, oddValues) {
		t.Fatalf("alpha env before restart = %q", got)
	}

	// A known_hosts file built before the restart must still match after.
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	writeFile(t, knownHosts, hostKeys)

	srv.stop()
	if t.Failed() {
		t.FailNow()
	}
	srv.start()

	after := snapshot(t)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s changed across the restart:\nbefore %q\nafter  %q", k, v, after[k])
		}
	}
	if got := c.env(t, "alpha"); !maps.Equal(got, oddValues) {
		t.Errorf("alpha env after restart = %q, want %q", got, oddValues)
	}
	if got := keyscan(t, srv); got != hostKeys {
		t.Errorf("host key changed across the restart:\nbefore %q\nafter  %q", hostKeys, got)
	}

	strict := srv.client(t, c.key)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cmd := strict.sshCommand(ctx, "apps:exists", "alpha")
	for i, a := range cmd.Args {
		switch a {
		case "StrictHostKeyChecking=no":
			cmd.Args[i] = "StrictHostKeyChecking=yes"
		case "UserKnownHostsFile=/dev/null":
			cmd.Args[i] = "UserKnownHostsFile=" + knownHosts
		}
	}
	if res := run(t, cmd, nil); res.Code != 0 {
		t.Errorf("ssh with strict host key checking against the pre-restart known_hosts: %s", res)
	}

	srv.client(t, second).must(t, "apps:exists", "delta")
	wantError(t, c.ssh(t, nil, "apps:exists", "gone"), 20, "App gone does not exist")
	wantError(t, c.ssh(t, nil, "apps:exists", "gamma"), 20, "does not exist")
	if res := srv.client(t, newKey(t, "stranger")).ssh(t, nil, "version"); res.Code == 0 {
		t.Error("an unknown key was let in after the restart")
	}
	// The restarted daemon still takes changes.
	c.must(t, "apps:create", "epsilon")
	c.must(t, "apps:unlock", "beta")
}

// serveOnce runs `rivetr serve` expecting it to fail at start.
func serveOnce(t *testing.T, srv *server, args []string, env ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, rivetrBin, append([]string{"serve"}, args...)...)
	cmd.Dir = srv.cwd
	cmd.Env = srv.serveEnv(env...)
	return run(t, cmd, nil)
}

// wantOneLineError checks that serve exited 1 with a single error line.
func wantOneLineError(t *testing.T, res result, mention string) {
	t.Helper()
	lines := nonEmptyLines(res.Stderr)
	if res.Code != 1 {
		t.Errorf("exit %d, want 1\n%s", res.Code, res)
	}
	if len(lines) != 1 {
		t.Errorf("stderr has %d lines, want one:\n%s", len(lines), res.Stderr)
	}
	if !strings.HasPrefix(res.Stderr, errPrefix) {
		t.Errorf("stderr does not start with %q:\n%s", errPrefix, res.Stderr)
	}
	if !strings.Contains(res.Stderr, mention) {
		t.Errorf("stderr does not mention %q:\n%s", mention, res.Stderr)
	}
}

func TestServeBadConfig(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		args    []string
		env     []string
		mention string
	}{
		{"ssh addr", nil, []string{"RIVETR_SSH_ADDR=notanaddress"}, "RIVETR_SSH_ADDR"},
		{"http port", nil, []string{"RIVETR_HTTP_ADDR=127.0.0.1:99999"}, "RIVETR_HTTP_ADDR"},
		{"api addr", nil, []string{"RIVETR_API_ADDR=nope"}, "RIVETR_API_ADDR"},
		{"https addr", nil, []string{"RIVETR_HTTPS_ADDR=:https:"}, "RIVETR_HTTPS_ADDR"},
		{"runtime", nil, []string{"RIVETR_RUNTIME=lxc"}, "RIVETR_RUNTIME"},
		{"domain", nil, []string{"RIVETR_DOMAIN=not a domain"}, "RIVETR_DOMAIN"},
		{"flag beats env", []string{"--ssh-addr", "notanaddress"}, nil, "notanaddress"},
		{"missing config file", nil, []string{"RIVETR_CONFIG=/nonexistent/rivetr.toml"}, "/nonexistent/rivetr.toml"},
		{"argument", []string{"extra"}, nil, "extra"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t)
			wantOneLineError(t, serveOnce(t, srv, tc.args, tc.env...), tc.mention)
		})
	}

	t.Run("ssh port in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		srv := newServer(t)
		res := serveOnce(t, srv, nil, "RIVETR_SSH_ADDR="+ln.Addr().String())
		wantOneLineError(t, res, "address already in use")
		if _, err := os.Stat(srv.socket()); err == nil {
			t.Errorf("a daemon that failed to start left its socket %s", srv.socket())
		}
	})

	t.Run("second daemon on the same data dir", func(t *testing.T) {
		first, c := setup(t)
		res := serveOnce(t, first, nil,
			"RIVETR_SSH_ADDR=127.0.0.1:"+strconv.Itoa(freePort(t)),
			"RIVETR_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(freePort(t)),
			"RIVETR_API_ADDR=127.0.0.1:"+strconv.Itoa(freePort(t)))
		if res.Code != 1 || !strings.Contains(res.Stderr, errPrefix) || !strings.Contains(res.Stderr, "already running") {
			t.Errorf("second rivetr serve on one data dir: %s\nwant exit 1 saying one is already running", res)
		}
		// The first one is untouched.
		c.must(t, "apps:create", "still-here")
		first.mustCLI(t, nil, "apps:exists", "still-here")
	})
}

func TestNothingWrittenOutsideDataDir(t *testing.T) {
	t.Parallel()
	srv, c := setup(t)

	info, err := os.Stat(srv.socket())
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("socket mode %v, want 0600", perm)
	}

	c.must(t, "apps:create", "app")
	c.must(t, "config:set", "app", "A=1")
	c.mustIn(t, []byte("B=2\n"), "config:import", "app")
	c.must(t, "config:bundle", "app")
	c.must(t, "apps:rename", "app", "app2")
	c.must(t, "apps:lock", "app2")
	srv.mustCLI(t, nil, "apps:create", "local")
	srv.mustCLI(t, nil, "config:set", "--global", "G=1")
	c.must(t, "apps:destroy", "local", "--force")
	srv.stop()
	srv.start()
	c.must(t, "apps:list")
	srv.stop()

	for name, dir := range map[string]string{"working directory": srv.cwd, "HOME": srv.home, "TMPDIR": srv.tmp} {
		if left := dirEntries(t, dir); len(left) > 0 {
			t.Errorf("rivetr wrote to its %s %s: %q", name, dir, left)
		}
	}
	if left := dirEntries(t, srv.dataDir); len(left) == 0 {
		t.Errorf("data dir %s is empty: the state went elsewhere", srv.dataDir)
	}
}
