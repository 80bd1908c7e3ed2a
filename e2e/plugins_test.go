package e2e

// Plugins end to end: installed with the CLI on a real daemon, their
// triggers run on real pushes (Docker), their commands over OpenSSH.

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pluginDir writes a plugin (plugin.toml plus files; names ending in "*"
// are executable) and returns its directory.
func pluginDir(t *testing.T, name string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	files["plugin.toml"] = "[plugin]\ndescription = \"e2e " + name + "\"\nversion = \"1.0.0\"\n"
	for f, content := range files {
		mode := os.FileMode(0o644)
		if n, ok := strings.CutSuffix(f, "*"); ok {
			f, mode = n, 0o755
		}
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPlugins(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	srv := newServer(t)
	srv.extraEnv = []string{"RIVETR_DOMAIN=localhost", "RIVETR_RUNTIME=" + eng.kind, "RIVETR_HOOK_TIMEOUT=3s"}
	srv.start()
	fastChecks(t, srv)
	key := newKey(t, "admin")
	srv.mustCLI(t, nil, "ssh-keys:add", "admin", key.Public)
	c := srv.client(t, key)
	app := randomName("plug")
	cleanupApp(t, srv, eng, app)
	remote := c.sshRemote(app)
	repo := newAppRepo(t, c, "v1")
	wantDeployed(t, srv, c.git(t, repo, "push", remote, "main"), app, "remote: ")
	wantServes(t, srv, app, "/", "hello v1")

	t.Run("install refuses bad names and SSH", func(t *testing.T) {
		dir := pluginDir(t, "guard", map[string]string{})
		wantError(t, srv.cli(t, nil, "plugin:install", dir, "--name", "../x"), 1, "Invalid plugin name")
		wantError(t, srv.cli(t, nil, "plugin:install", dir, "--name", "config"), 1, "taken by a built-in namespace")
		wantError(t, c.ssh(t, nil, "plugin:install", dir), 1, "can only be run on the server")
		if _, err := os.Stat(filepath.Join(srv.dataDir, "x")); err == nil {
			t.Error("../x was written")
		}
	})

	t.Run("a failing pre-build trigger aborts the push", func(t *testing.T) {
		dir := pluginDir(t, "guard", map[string]string{
			"pre-build*": "#!/bin/sh\necho \"guard: builds of $2 are frozen ($RIVETR_APP, $1)\" >&2\nexit 1\n",
		})
		srv.mustCLI(t, nil, "plugin:install", dir)
		commitDockerfile(t, c, repo, "v2")
		res := c.git(t, repo, "push", remote, "main")
		wantPushRefused(t, res, "guard: builds of "+app+" are frozen ("+app+", dockerfile)")
		if strings.Contains(res.Stderr, "Releasing") {
			t.Errorf("the push went on after pre-build failed:\n%s", res)
		}
		wantStillServes(t, srv, app, "hello v1")

		// Disabled, it no longer runs.
		srv.mustCLI(t, nil, "plugin:disable", "guard")
		if !strings.Contains(srv.mustCLI(t, nil, "plugin:list").Stdout, "disabled") {
			t.Error("plugin:list does not show guard disabled")
		}
	})

	t.Run("docker-args-deploy adds an environment variable", func(t *testing.T) {
		// Installed from a local git repository, cloned with go-git.
		src := pluginDir(t, "envadd", map[string]string{
			"docker-args-deploy*": "#!/bin/sh\necho \"-e FROM_PLUGIN=hello-$1-$3 --label team=plugins\"\n",
			"post-deploy*":        "#!/bin/sh\necho \"envadd: deployed $1 ($4)\"\n",
		})
		c.mustGit(t, src, "init", "-q", "-b", "main")
		c.mustGit(t, src, "add", "-A")
		c.mustGit(t, src, "commit", "-q", "-m", "envadd")
		srv.mustCLI(t, nil, "plugin:install", "file://"+src)
		res := c.git(t, repo, "push", remote, "main")
		wantDeployed(t, srv, res, app, "remote: ")
		if !strings.Contains(res.Stderr, "remote: envadd: deployed "+app+" (rivetr/"+app+":") {
			t.Errorf("post-deploy output is not streamed to the pusher:\n%s", res)
		}
		wantServes(t, srv, app, "/", "hello v2")
		wantServes(t, srv, app, "/env/FROM_PLUGIN", "hello-"+app+"-web")
		id := runningWeb(t, eng, app)
		if got := eng.inspect(t, id).Config.Labels["team"]; got != "plugins" {
			t.Errorf("label team = %q, want plugins", got)
		}
	})

	t.Run("docker-options and docker-args-build reach the build", func(t *testing.T) {
		c.must(t, "docker-options:add", app, "build", "--build-arg GREETING=hi there")
		dir := pluginDir(t, "buildarg", map[string]string{
			"docker-args-build*": "#!/bin/sh\necho \"--build-arg 'FROM_BUILD_PLUGIN=$1 $2'\"\n",
		})
		srv.mustCLI(t, nil, "plugin:install", dir)
		commitDockerfile(t, c, repo, "v2", "ARG GREETING", "ENV GREETING=$GREETING", "ARG FROM_BUILD_PLUGIN", "ENV FROM_BUILD_PLUGIN=$FROM_BUILD_PLUGIN")
		wantDeployed(t, srv, c.git(t, repo, "push", remote, "main"), app, "remote: ")
		wantServes(t, srv, app, "/env/GREETING", "hi there")
		wantServes(t, srv, app, "/env/FROM_BUILD_PLUGIN", app+" dockerfile")
		srv.mustCLI(t, nil, "plugin:uninstall", "buildarg")
	})

	t.Run("docker-options deploy and run phases reach the containers", func(t *testing.T) {
		c.must(t, "docker-options:add", app, "deploy", "-e 'OPT_GREETING=hello world' --label tier=web")
		c.must(t, "docker-options:add", app, "run", "-e RUN_ONLY=yes")
		wantError(t, c.ssh(t, nil, "docker-options:add", app, "deploy", "-v /:/host"), 1, "-v is not supported")
		wantError(t, c.ssh(t, nil, "docker-options:add", app, "run", "--label rivetr.app=other"), 1, "rivetr's own")
		wantDeployed(t, srv, c.must(t, "ps:rebuild", app), app, "")
		wantServes(t, srv, app, "/env/OPT_GREETING", "hello world")
		wantServes(t, srv, app, "/env/RUN_ONLY", "")
		if got := eng.inspect(t, runningWeb(t, eng, app)).Config.Labels["tier"]; got != "web" {
			t.Errorf("label tier = %q, want web", got)
		}
		if got := strings.TrimSpace(c.must(t, "run", app, "/server", "printenv", "RUN_ONLY").Stdout); got != "yes" {
			t.Errorf("run phase option in a one-off container: %q", got)
		}
		c.must(t, "docker-options:clear", app)
	})

	t.Run("a plugin command runs over SSH with stdin and exit code", func(t *testing.T) {
		dir := pluginDir(t, "shout", map[string]string{
			"commands*":         "#!/bin/sh\ncase \"$1\" in help) echo '    shout:it <words>, Shouts stdin and the words';; *) exit 10;; esac\n",
			"subcommands/it*":   "#!/bin/sh\nshift\ntr a-z A-Z\necho \"$*\" | tr a-z A-Z\nexit 7\n",
			"subcommands/fail*": "#!/bin/sh\necho ' !     shout: nothing to shout' >&2\nexit 1\n",
		})
		srv.mustCLI(t, nil, "plugin:install", dir)
		res := c.ssh(t, []byte("from stdin\n"), "shout:it", "and", "words")
		if res.Code != 7 || res.Stdout != "FROM STDIN\nAND WORDS\n" {
			t.Errorf("shout:it: %s", res)
		}
		wantError(t, c.ssh(t, nil, "shout:fail"), 1, "shout: nothing to shout")
		help := c.must(t, "help").Stdout
		if !strings.Contains(help, "    shout ") {
			t.Errorf("help does not list the plugin:\n%s", help)
		}
		if h := c.must(t, "shout:help").Stdout; !strings.Contains(h, "shout:it <words>") || !strings.Contains(h, "Shouts stdin") {
			t.Errorf("shout:help:\n%s", h)
		}
		srv.mustCLI(t, nil, "plugin:disable", "shout")
		wantError(t, c.ssh(t, nil, "shout:it"), 1, "not a rivetr command")
	})

	t.Run("a hanging trigger is killed at the timeout", func(t *testing.T) {
		dir := pluginDir(t, "slow", map[string]string{
			"pre-deploy*": "#!/bin/sh\necho 'slow: waiting for approval' >&2\nsleep 300\n",
		})
		srv.mustCLI(t, nil, "plugin:install", dir)
		commitDockerfile(t, c, repo, "v3")
		res := c.git(t, repo, "push", remote, "main")
		wantPushRefused(t, res, "slow/pre-deploy timed out after 3s and was killed")
		if !strings.Contains(res.Stderr, "remote: slow: waiting for approval") {
			t.Errorf("the trigger's output is not streamed:\n%s", res)
		}
		wantStillServes(t, srv, app, "hello v2")
		srv.mustCLI(t, nil, "plugin:uninstall", "slow")
		wantDeployed(t, srv, c.git(t, repo, "push", remote, "main"), app, "remote: ")
		wantServes(t, srv, app, "/", "hello v3")
	})

	t.Run("the example plugins", func(t *testing.T) {
		got := make(chan map[string]string, 4)
		hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var m map[string]string
			json.NewDecoder(r.Body).Decode(&m)
			got <- m
		}))
		defer hook.Close()
		examples, err := filepath.Abs(filepath.Join("..", "plugins", "examples"))
		if err != nil {
			t.Fatal(err)
		}
		srv.mustCLI(t, nil, "plugin:install", filepath.Join(examples, "notifier"))
		srv.mustCLI(t, nil, "plugin:install", filepath.Join(examples, "deploy-window"))
		srv.mustCLI(t, nil, "plugin:set", "notifier", "url", hook.URL)
		srv.mustCLI(t, nil, "plugin:set", "deploy-window", "days", "Mon,Tue,Wed,Thu,Fri,Sat,Sun")
		now := time.Now().UTC()
		closed := now.Add(2*time.Hour).Format("15:04") + "-" + now.Add(3*time.Hour).Format("15:04")
		srv.mustCLI(t, nil, "plugin:set", "deploy-window", "window", closed)
		commitDockerfile(t, c, repo, "v4")
		wantPushRefused(t, c.git(t, repo, "push", remote, "main"), "deploy-window: deploys of "+app+" are allowed "+closed)
		wantStillServes(t, srv, app, "hello v3")

		open := now.Add(-time.Hour).Format("15:04") + "-" + now.Add(time.Hour).Format("15:04")
		srv.mustCLI(t, nil, "plugin:set", "deploy-window", "window", open)
		res := c.git(t, repo, "push", remote, "main")
		wantDeployed(t, srv, res, app, "remote: ")
		wantServes(t, srv, app, "/", "hello v4")
		select {
		case m := <-got:
			if m["event"] != "deploy" || m["app"] != app || !strings.HasPrefix(m["image"], "rivetr/"+app+":") {
				t.Errorf("notification %v", m)
			}
		case <-time.After(waitTimeout):
			t.Errorf("no notification after the deploy:\n%s", res)
		}
	})
}
