package e2e

// End-to-end tests of zero-downtime deploys (issue 4) on the real engine:
// redeploys under load, checks, scaling, release tasks, app.json env,
// one-off containers, releases and rollback, config restarts, logs, and a
// kill -9 of rivetr in the middle of a deploy.

import (
	"context"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// failingChecksJSON is an app.json whose web check asks for a 404 page.
const failingChecksJSON = `{"healthchecks": {"web": [
  {"type": "startup", "name": "status", "path": "/status/404", "attempts": 2, "wait": 1, "timeout": 2}
]}}
`

// TestZeroDowntimeRedeploys runs a load (keep-alive and new connections,
// 2-second requests, a WebSocket) through the proxy during five redeploys,
// the third of which fails its checks: no request may fail, and every
// answer must come from a version live when the request started.
func TestZeroDowntimeRedeploys(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	srv, c := startPushServer(t, eng)
	app := randomName("zdt")
	cleanupApp(t, srv, eng, app)
	repo := newAppRepo(t, c, "v1")
	pushDeploys(t, srv, c, repo, app)
	wantServes(t, srv, app, "/", "hello v1")
	// Old containers must outlive the longest request (2 s) by a margin.
	srv.mustCLI(t, nil, "checks:set", app, "wait-to-retire", "4")

	start := time.Now()
	l := startLoad(t, srv, app, loadOptions{KeepAlive: 4, Fresh: 2, Slow: 2, WebSocket: true}, "hello v1")
	time.Sleep(time.Second)

	serving := "hello v1"
	var failedRelease int
	for _, step := range []struct {
		version string
		files   map[string]string
		fails   bool
	}{
		{"v2", nil, false},
		{"v3", nil, false},
		{"v4", map[string]string{"app.json": failingChecksJSON}, true},
		{"v5", map[string]string{"app.json": ""}, false},
		{"v6", nil, false},
	} {
		next := "hello " + step.version
		commitFiles(t, c, repo, step.version, step.files)
		if step.fails {
			l.allow(serving) // the failing version must never answer
		} else {
			l.allow(serving, next)
		}
		pushStart := time.Now()
		res := c.git(t, repo, "push", c.sshRemote(app), "main")
		if step.fails {
			wantPushRefused(t, res, "Could not start due to 1 failed checks (web.1)")
			if !strings.Contains(res.Stderr, "Failure in name='status' (web.1)") {
				t.Errorf("push of %s does not show the failed check:\n%s", step.version, res)
			}
			failedRelease = c.latestRelease(t, app).Number
		} else {
			wantDeployed(t, srv, res, app, "remote: ")
			serving = next
		}
		l.allow(serving)
		t.Logf("push of %s: %v (exit %d)", step.version, time.Since(pushStart).Round(time.Millisecond), res.Code)
		wantStillServes(t, srv, app, serving)
		time.Sleep(500 * time.Millisecond) // some load on each version alone
	}
	time.Sleep(time.Second)
	tot := l.finish()
	t.Logf("during 5 redeploys (one failing its checks) in %v: %s", time.Since(start).Round(time.Millisecond), tot)
	wantNoFailures(t, tot)
	if tot.Slow == 0 || tot.WSMessages == 0 {
		t.Errorf("the load made %d slow requests and %d WebSocket echoes, want some of each", tot.Slow, tot.WSMessages)
	}
	if n := tot.Versions["hello v4"]; n != 0 {
		t.Errorf("v4, whose checks failed, answered %d requests", n)
	}
	for _, v := range []string{"hello v1", "hello v2", "hello v3", "hello v5", "hello v6"} {
		if tot.Versions[v] == 0 {
			t.Errorf("no request was answered by %q: %v", v, tot.Versions)
		}
	}
	wantServes(t, srv, app, "/", "hello v6")

	rels := c.releases(t, app)
	statuses := map[int]string{}
	for _, r := range rels {
		statuses[r.Number] = r.Status
	}
	if statuses[failedRelease] != "failed" {
		t.Errorf("release %d (v4) is %q, want failed: %+v", failedRelease, statuses[failedRelease], rels)
	}
	if rels[0].Status != "deployed" {
		t.Errorf("newest release %d is %q, want deployed", rels[0].Number, rels[0].Status)
	}
	if list := eng.containersWith(t, "rivetr.app="+app, "rivetr.release="+strconv.Itoa(failedRelease)); len(list) != 0 {
		t.Errorf("containers of the failed release %d are left: %+v", failedRelease, list)
	}
	waitProcesses(t, eng, app, "web", 1)
}

// TestChecks covers the checks of a deploy: app.json healthchecks and the
// CHECKS file failing and passing, templating, and checks:disable/skip.
func TestChecks(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	srv, c := startPushServer(t, eng)
	app := randomName("checks")
	cleanupApp(t, srv, eng, app)
	repo := newAppRepo(t, c, "v1")
	pushDeploys(t, srv, c, repo, app)
	wantServes(t, srv, app, "/", "hello v1")
	serving := "hello v1"

	refused := func(t *testing.T, version string, files map[string]string, mentions ...string) {
		t.Helper()
		commitFiles(t, c, repo, version, files)
		res := c.git(t, repo, "push", c.sshRemote(app), "main")
		wantPushRefused(t, res, "Could not start due to 1 failed checks (web.1)")
		for _, m := range mentions {
			if !strings.Contains(res.Stderr, m) {
				t.Errorf("push output does not mention %q:\n%s", m, res)
			}
		}
		wantStillServes(t, srv, app, serving)
		rel := c.latestRelease(t, app)
		if rel.Status != "failed" {
			t.Errorf("release %d of the refused push is %q, want failed", rel.Number, rel.Status)
		}
		if list := eng.containersWith(t, "rivetr.app="+app, "rivetr.release="+strconv.Itoa(rel.Number)); len(list) != 0 {
			t.Errorf("containers of the failed release %d are left: %+v", rel.Number, list)
		}
		waitProcesses(t, eng, app, "web", 1)
	}
	deploys := func(t *testing.T, version string, files map[string]string, mentions ...string) result {
		t.Helper()
		commitFiles(t, c, repo, version, files)
		res := pushDeploys(t, srv, c, repo, app)
		for _, m := range mentions {
			if !strings.Contains(res.Stderr, m) {
				t.Errorf("push output does not mention %q:\n%s", m, res)
			}
		}
		serving = "hello " + version
		wantServes(t, srv, app, "/", serving)
		return res
	}

	t.Run("app.json path answering 404 fails", func(t *testing.T) {
		refused(t, "v2", map[string]string{"app.json": failingChecksJSON},
			"Running healthcheck name='status' attempts=2 delay=0 path='/status/404'",
			"Failure in name='status' (web.1)", "404")
		// The failed release is recorded with its log, and cannot be
		// rolled back to.
		rel := c.latestRelease(t, app)
		info := c.must(t, "releases:info", app, strconv.Itoa(rel.Number)).Stdout
		for _, want := range []string{"failed", "Failure in name='status' (web.1)", "Could not start due to 1 failed checks (web.1)"} {
			if !strings.Contains(info, want) {
				t.Errorf("releases:info %s %d lacks %q:\n%s", app, rel.Number, want, info)
			}
		}
		wantError(t, c.ssh(t, nil, "releases:rollback", app, strconv.Itoa(rel.Number)), -1, "failed")
	})
	t.Run("CHECKS content mismatch fails", func(t *testing.T) {
		refused(t, "v3", map[string]string{"app.json": "", "CHECKS": "WAIT=1\nATTEMPTS=2\nTIMEOUT=2\n/ goodbye\n"},
			"content='goodbye'", `expected content "goodbye" not found`)
	})
	t.Run("CHECKS content match passes", func(t *testing.T) {
		deploys(t, "v4", map[string]string{"CHECKS": "WAIT=1\nATTEMPTS=2\n/ hello v4\n"},
			"content='hello v4'", "All checks successful (web.1)")
	})
	t.Run("app.json content match passes", func(t *testing.T) {
		deploys(t, "v5", map[string]string{"CHECKS": "", "app.json": `{"healthchecks": {"web": [
  {"name": "home", "path": "/", "content": "hello v5", "attempts": 3, "wait": 1}
]}}`}, "Healthcheck succeeded name='home' (web.1)", "All checks successful (web.1)")
	})
	t.Run("templated CHECKS passes", func(t *testing.T) {
		srv.mustCLI(t, nil, "config:set", "--no-restart", app, "CHECK_PATH=/env/CHECK_WORD", "CHECK_WORD=templated")
		deploys(t, "v6", map[string]string{"app.json": "",
			"CHECKS": "WAIT=1\nATTEMPTS=3\n{{ var \"CHECK_PATH\" }} {{ var \"CHECK_WORD\" }}\n"},
			"path='/env/CHECK_WORD'", "content='templated'", "All checks successful (web.1)")
	})
	t.Run("templated CHECKS with another value fails", func(t *testing.T) {
		srv.mustCLI(t, nil, "config:set", "--no-restart", app, "CHECK_PATH=/env/OTHER")
		refused(t, "v7", nil, "path='/env/OTHER'")
		srv.mustCLI(t, nil, "config:set", "--no-restart", app, "CHECK_PATH=/env/CHECK_WORD")
	})
	t.Run("checks:run checks the running containers", func(t *testing.T) {
		res := c.must(t, "checks:run", app)
		if !strings.Contains(res.Stdout+res.Stderr, "All checks successful (web.1)") {
			t.Errorf("checks:run output lacks the success line:\n%s", res)
		}
	})
	t.Run("checks:disable stops the old container first", func(t *testing.T) {
		c.must(t, "checks:disable", app)
		wantChecksList(t, c, app, "disabled", "_all_")
		stop := make(chan struct{})
		most := maxRunning(t, eng, app, "web", stop)
		res := deploys(t, "v8", map[string]string{"CHECKS": ""}, "Checks for web.1 are disabled")
		close(stop)
		if strings.Contains(res.Stderr, "Running healthcheck") {
			t.Errorf("checks ran although disabled:\n%s", res)
		}
		if n := <-most; n > 1 {
			t.Errorf("%d web containers ran at once with checks disabled; the old one must stop before the new one starts", n)
		}
		waitProcesses(t, eng, app, "web", 1)
	})
	t.Run("checks:skip deploys without waiting", func(t *testing.T) {
		c.must(t, "checks:skip", app)
		wantChecksList(t, c, app, "skipped", "_all_")
		wantChecksList(t, c, app, "disabled", "none") // a type is never in both lists
		res := deploys(t, "v9", nil, "Checks for web.1 are skipped")
		if strings.Contains(res.Stderr, "Running healthcheck") {
			t.Errorf("checks ran although skipped:\n%s", res)
		}
		waitProcesses(t, eng, app, "web", 1)
	})
	t.Run("checks:enable", func(t *testing.T) {
		c.must(t, "checks:enable", app)
		wantChecksList(t, c, app, "skipped", "none")
		wantChecksList(t, c, app, "disabled", "none")
		res := deploys(t, "v10", nil, "All checks successful (web.1)")
		if strings.Contains(res.Stderr, "are skipped") || strings.Contains(res.Stderr, "are disabled") {
			t.Errorf("checks still skipped or disabled after checks:enable:\n%s", res)
		}
	})
}

// wantChecksList checks Dokku's `checks:report APP --checks-disabled-list`
// (or skipped): the process types, "_all_", or "none" when empty.
func wantChecksList(t *testing.T, c *client, app, list, want string) {
	t.Helper()
	flag := "--checks-" + list + "-list"
	res := c.ssh(t, nil, "checks:report", app, flag)
	got := strings.TrimSpace(res.Stdout)
	if res.Code != 0 || (got != want && !(want == "none" && got == "")) {
		t.Errorf("checks:report %s %s: want %q\n%s", app, flag, want, res)
	}
}

// TestScale covers ps:scale: before the first deploy, web replicas served
// round robin, scaling down, a worker without a route, and app.json
// formation winning over ps:scale.
func TestScale(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	srv, c := startPushServer(t, eng)
	app := randomName("scale")
	cleanupApp(t, srv, eng, app)
	c.must(t, "apps:create", app)

	c.must(t, "ps:scale", app, "web=2")
	if res := c.must(t, "ps:scale", app); !regexp.MustCompile(`(?m)^web:\s*2$`).MatchString(res.Stdout) {
		t.Errorf("ps:scale %s does not show web: 2 before the first deploy:\n%s", app, res)
	}
	repo := newAppRepo(t, c, "v1")
	commitFiles(t, c, repo, "v1", map[string]string{"Procfile": "web: /server\nworker: /server worker\n"})
	pushDeploys(t, srv, c, repo, app)

	dynos := func(t *testing.T, n int) map[string]int {
		t.Helper()
		seen := map[string]int{}
		for i := 0; i < n; i++ {
			code, body, err := srv.proxyGet(app, "/env/DYNO")
			if err != nil || code != http.StatusOK {
				t.Fatalf("GET /env/DYNO: %d %q %v", code, body, err)
			}
			seen[body]++
		}
		return seen
	}

	t.Run("scale set before the first deploy applies", func(t *testing.T) {
		waitProcesses(t, eng, app, "web", 2)
		if list := eng.processes(t, app, "worker"); len(list) != 0 {
			t.Errorf("worker containers run without being scaled: %+v", list)
		}
		seen := dynos(t, 20)
		if seen["web.1"] == 0 || seen["web.2"] == 0 || len(seen) != 2 {
			t.Errorf("20 requests were answered by %v, want both web.1 and web.2 (round robin)", seen)
		}
	})
	t.Run("scale down web and up worker", func(t *testing.T) {
		c.must(t, "ps:scale", app, "web=1", "worker=1")
		waitProcesses(t, eng, app, "web", 1)
		waitProcesses(t, eng, app, "worker", 1)
		if seen := dynos(t, 10); seen["web.1"] != 10 {
			t.Errorf("10 requests were answered by %v, want web.1 only (the worker has no route)", seen)
		}
		if got := strings.TrimSpace(c.must(t, "ps:report", app, "--ps-running").Stdout); got != "web=1 worker=1" {
			t.Errorf("ps:report --ps-running = %q, want %q", got, "web=1 worker=1")
		}
		// The worker runs its Procfile command: it logs, it does not listen.
		deadline := time.Now().Add(waitTimeout)
		for {
			res := c.must(t, "logs", app, "-p", "worker")
			if strings.Contains(res.Stdout, app+"[worker.1]: worker worker.1 started") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("logs -p worker lacks the worker's first line:\n%s", res)
			}
			time.Sleep(250 * time.Millisecond)
		}
	})
	t.Run("app.json formation wins and locks ps:scale", func(t *testing.T) {
		commitFiles(t, c, repo, "v2", map[string]string{"app.json": `{"formation": {"web": {"quantity": 1}, "worker": {"quantity": 0}}}`})
		pushDeploys(t, srv, c, repo, app)
		wantServes(t, srv, app, "/", "hello v2")
		waitProcesses(t, eng, app, "web", 1)
		waitProcesses(t, eng, app, "worker", 0)
		wantError(t, c.ssh(t, nil, "ps:scale", app, "web=2"), -1, "formation")
		waitProcesses(t, eng, app, "web", 1)
	})
	dir := t.TempDir() // mounted until the end of the test
	t.Run("resources, storage and ps settings apply on ps:restart", func(t *testing.T) {
		writeFile(t, filepath.Join(dir, "mounted.txt"), "from the host\n")
		wantError(t, c.ssh(t, nil, "ps:set", app, "restart-policy", "sometimes"), -1, "restart-policy")
		wantError(t, c.ssh(t, nil, "storage:mount", app, dir+":/data"), -1, "must be under")
		c.must(t, "resource:limit", "--memory", "256m", "--cpu", "0.5", app)
		c.must(t, "ps:set", app, "restart-policy", "on-failure:3")
		srv.mustCLI(t, nil, "storage:mount", app, dir+":/data:ro")
		if got := c.must(t, "storage:list", app).Stdout; !strings.Contains(got, dir+":/data:ro") {
			t.Errorf("storage:list lacks the mount:\n%s", got)
		}
		web := waitProcesses(t, eng, app, "web", 1)[0].ID
		c.must(t, "ps:restart", app)
		wantServes(t, srv, app, "/", "hello v2")
		ct := waitProcesses(t, eng, app, "web", 1)[0]
		if ct.ID == web {
			t.Fatalf("ps:restart left the same container %.12s", web)
		}
		var d struct {
			HostConfig struct {
				Memory        int64    `json:"Memory"`
				NanoCpus      int64    `json:"NanoCpus"`
				Binds         []string `json:"Binds"`
				RestartPolicy struct {
					Name              string `json:"Name"`
					MaximumRetryCount int    `json:"MaximumRetryCount"`
				} `json:"RestartPolicy"`
			} `json:"HostConfig"`
			Mounts []struct {
				Source      string `json:"Source"`
				Destination string `json:"Destination"`
				RW          bool   `json:"RW"`
			} `json:"Mounts"`
		}
		eng.call(t, http.MethodGet, "/containers/"+ct.ID+"/json", &d, false)
		if d.HostConfig.Memory != 256<<20 || d.HostConfig.NanoCpus != 5e8 {
			t.Errorf("container memory %d, NanoCpus %d; want %d and %d", d.HostConfig.Memory, d.HostConfig.NanoCpus, 256<<20, int64(5e8))
		}
		if rp := d.HostConfig.RestartPolicy; rp.Name != "on-failure" || rp.MaximumRetryCount != 3 {
			t.Errorf("restart policy %+v, want on-failure:3", rp)
		}
		mounted := false
		for _, m := range d.Mounts {
			mounted = mounted || (m.Source == dir && m.Destination == "/data" && !m.RW)
		}
		if !mounted {
			t.Errorf("container mounts %+v, want %s on /data read-only", d.Mounts, dir)
		}
	})
	t.Run("ps:stop and ps:start", func(t *testing.T) {
		c.must(t, "ps:stop", app)
		if code, body, err := srv.proxyGet(app, "/"); err != nil || code == http.StatusOK {
			t.Errorf("a stopped app answers %d %q (err %v)", code, body, err)
		}
		waitProcesses(t, eng, app, "web", 0)
		if got := strings.TrimSpace(c.must(t, "ps:report", app, "--ps-stopped").Stdout); got != "true" {
			t.Errorf("ps:report --ps-stopped = %q after ps:stop, want true", got)
		}
		c.must(t, "ps:start", app)
		wantServes(t, srv, app, "/", "hello v2")
		waitProcesses(t, eng, app, "web", 1)
		if got := strings.TrimSpace(c.must(t, "ps:report", app, "--ps-stopped").Stdout); got != "false" {
			t.Errorf("ps:report --ps-stopped = %q after ps:start, want false", got)
		}
	})
}

// TestReleaseTasks covers the Procfile release command and app.json's
// predeploy and postdeploy scripts: their output reaches the pusher, and a
// failing one aborts the deploy with the previous release serving.
func TestReleaseTasks(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	srv, c := startPushServer(t, eng)
	app := randomName("tasks")
	cleanupApp(t, srv, eng, app)
	repo := newAppRepo(t, c, "v1")
	commitFiles(t, c, repo, "v1", map[string]string{"Procfile": "web: /server\nrelease: /server echo release task ran\n"})
	res := pushDeploys(t, srv, c, repo, app)
	if !strings.Contains(res.Stderr, "remote:        release task ran") {
		t.Errorf("the release task's output did not reach the pusher:\n%s", res)
	}
	wantServes(t, srv, app, "/", "hello v1")

	leftovers := func(t *testing.T) {
		t.Helper()
		for _, typ := range []string{"release", "predeploy", "postdeploy"} {
			if list := eng.processes(t, app, typ); len(list) != 0 {
				t.Errorf("%s task containers are left: %+v", typ, list)
			}
		}
	}
	refused := func(t *testing.T, version string, files map[string]string, msg, output string) {
		t.Helper()
		commitFiles(t, c, repo, version, files)
		res := c.git(t, repo, "push", c.sshRemote(app), "main")
		wantPushRefused(t, res, msg)
		if !strings.Contains(res.Stderr, output) {
			t.Errorf("the failing task's output %q did not reach the pusher:\n%s", output, res)
		}
		if strings.Contains(res.Stderr, "Application deployed") {
			t.Errorf("a failed task says it deployed:\n%s", res)
		}
		wantStillServes(t, srv, app, "hello v1")
		if rel := c.latestRelease(t, app); rel.Status != "failed" {
			t.Errorf("release %d is %q, want failed", rel.Number, rel.Status)
		}
		waitProcesses(t, eng, app, "web", 1)
		leftovers(t)
	}

	t.Run("Procfile release failing", func(t *testing.T) {
		refused(t, "v2", map[string]string{"Procfile": "web: /server\nrelease: /server exit 1\n"},
			"Execution of release task failed", "remote:        exit 1")
	})
	t.Run("predeploy failing", func(t *testing.T) {
		refused(t, "v3", map[string]string{
			"Procfile": "web: /server\n",
			"app.json": `{"scripts": {"dokku": {"predeploy": "/server exit 2"}}}`,
		}, "Execution of predeploy task failed", "remote:        exit 2")
	})
	t.Run("postdeploy failing", func(t *testing.T) {
		refused(t, "v4", map[string]string{"app.json": `{"scripts": {"dokku": {"postdeploy": "/server exit 4"}}}`},
			"Execution of postdeploy task failed", "remote:        exit 4")
	})
	t.Run("all tasks passing", func(t *testing.T) {
		commitFiles(t, c, repo, "v5", map[string]string{
			"Procfile": "web: /server\nrelease: /server echo release ok\n",
			"app.json": `{"scripts": {"dokku": {"predeploy": "/server echo predeploy ok", "postdeploy": "/server echo postdeploy ok"}}}`,
		})
		res := pushDeploys(t, srv, c, repo, app)
		out := res.Stderr
		last := -1
		for _, want := range []string{"predeploy ok", "release ok", "postdeploy ok", "Application deployed"} {
			i := strings.Index(out, want)
			if i < 0 || i < last {
				t.Errorf("push output lacks %q or has it out of order (predeploy, release, postdeploy):\n%s", want, res)
			}
			last = i
		}
		wantServes(t, srv, app, "/", "hello v5")
		leftovers(t)
	})
}

// TestAppJSONEnv covers app.json env: plain and {"value"} forms, an
// existing value kept, a generated secret made once, and a required key
// missing.
func TestAppJSONEnv(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	srv, c := startPushServer(t, eng)
	app := randomName("env")
	cleanupApp(t, srv, eng, app)
	c.must(t, "apps:create", app)
	c.must(t, "config:set", app, "KEPT=mine")
	const envJSON = `{"env": {
  "PLAIN": "plain-value",
  "OBJECT": {"value": "object-value", "description": "an object"},
  "KEPT": "from-app-json",
  "SECRET": {"generator": "secret"},
  "OPTIONAL": {"description": "no value, not required"}%s
}}`
	repo := newAppRepo(t, c, "v1")
	commitFiles(t, c, repo, "v1", map[string]string{"app.json": strings.Replace(envJSON, "%s", "", 1)})
	pushDeploys(t, srv, c, repo, app)
	wantServes(t, srv, app, "/", "hello v1")

	env := c.env(t, app)
	for k, want := range map[string]string{"PLAIN": "plain-value", "OBJECT": "object-value", "KEPT": "mine"} {
		if env[k] != want {
			t.Errorf("config %s = %q, want %q", k, env[k], want)
		}
		wantServes(t, srv, app, "/env/"+k, want)
	}
	if _, ok := env["OPTIONAL"]; ok {
		t.Errorf("OPTIONAL, with no value, was set to %q", env["OPTIONAL"])
	}
	secret := env["SECRET"]
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(secret) {
		t.Errorf("generated SECRET = %q, want 64 hex characters", secret)
	}
	wantServes(t, srv, app, "/env/SECRET", secret)

	t.Run("secret generated once", func(t *testing.T) {
		commitFiles(t, c, repo, "v2", nil)
		pushDeploys(t, srv, c, repo, app)
		wantServes(t, srv, app, "/", "hello v2")
		if got := c.env(t, app)["SECRET"]; got != secret {
			t.Errorf("SECRET changed on the next deploy: %q, was %q", got, secret)
		}
		wantServes(t, srv, app, "/env/SECRET", secret)
	})
	t.Run("required key missing fails", func(t *testing.T) {
		commitFiles(t, c, repo, "v3", map[string]string{"app.json": strings.Replace(envJSON, "%s",
			`,
  "NEEDED": {"description": "must be set", "required": true}`, 1)})
		res := c.git(t, repo, "push", c.sshRemote(app), "main")
		wantPushRefused(t, res, "NEEDED")
		wantStillServes(t, srv, app, "hello v2")
		if _, ok := c.env(t, app)["NEEDED"]; ok {
			t.Errorf("NEEDED was set by a failed deploy")
		}
		c.must(t, "config:set", "--no-restart", app, "NEEDED=given")
		pushDeploys(t, srv, c, repo, app)
		wantServes(t, srv, app, "/", "hello v3")
		wantServes(t, srv, app, "/env/NEEDED", "given")
	})
}

// TestRunAndLogs covers one-off containers (run with -e, exit status,
// stdin, removal; run:detached, run:list; enter) and logs.
func TestRunAndLogs(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	srv, c := startPushServer(t, eng)
	app := randomName("run")
	cleanupApp(t, srv, eng, app)
	repo := newAppRepo(t, c, "v1")
	pushDeploys(t, srv, c, repo, app)
	wantServes(t, srv, app, "/", "hello v1")
	c.must(t, "config:set", "--no-restart", app, "FROM_CONFIG=configured")

	noRunContainers := func(t *testing.T) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			list := eng.processes(t, app, "run")
			if len(list) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("one-off containers left after run: %+v", list)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	t.Run("run with -e", func(t *testing.T) {
		res := c.must(t, "run", app, "-e", "FOO=bar", "--", "/server", "printenv", "FOO")
		if res.Stdout != "bar\n" {
			t.Errorf("run -e FOO=bar printenv FOO printed %q, want %q\n%s", res.Stdout, "bar\n", res)
		}
		res = c.must(t, "run", app, "/server", "printenv", "FROM_CONFIG")
		if res.Stdout != "configured\n" {
			t.Errorf("run printenv FROM_CONFIG printed %q, want the app's config %q", res.Stdout, "configured\n")
		}
		noRunContainers(t)
	})
	t.Run("exit status forwarded", func(t *testing.T) {
		res := c.ssh(t, nil, "run", app, "/server", "exit", "3")
		if res.Code != 3 {
			t.Errorf("run /server exit 3: exit %d, want 3\n%s", res.Code, res)
		}
		if !strings.Contains(res.Stdout, "exit 3") {
			t.Errorf("run /server exit 3 did not print its output:\n%s", res)
		}
		noRunContainers(t)
	})
	t.Run("stdin piped", func(t *testing.T) {
		res := c.mustIn(t, []byte("hi\nthere\n"), "run", app, "/server", "cat")
		if res.Stdout != "hi\nthere\n" {
			t.Errorf("echo | run /server cat printed %q, want %q\n%s", res.Stdout, "hi\nthere\n", res)
		}
		noRunContainers(t)
	})
	t.Run("run:detached and run:list", func(t *testing.T) {
		res := c.must(t, "run:detached", app, "/server", "sleep", "60s")
		lines := nonEmptyLines(res.Stdout)
		if len(lines) == 0 {
			t.Fatalf("run:detached printed no container name:\n%s", res)
		}
		name := strings.TrimSpace(lines[len(lines)-1])
		if !strings.HasPrefix(name, app+".run.") {
			t.Errorf("run:detached printed %q, want a name starting %s.run.", name, app)
		}
		if list := c.must(t, "run:list", app).Stdout; !strings.Contains(list, name) {
			t.Errorf("run:list does not show %s:\n%s", name, list)
		}
		for _, ct := range eng.processes(t, app, "run") {
			eng.removeContainer(t, ct.ID)
		}
	})
	t.Run("enter", func(t *testing.T) {
		res := c.must(t, "enter", app, "web", "--", "/server", "printenv", "DYNO")
		if res.Stdout != "web.1\n" {
			t.Errorf("enter web printenv DYNO printed %q, want %q", res.Stdout, "web.1\n")
		}
	})
	t.Run("logs", func(t *testing.T) {
		mark := "/logmark-" + randomName("x")
		if code, _, err := srv.proxyGet(app, mark); err != nil || code != http.StatusOK {
			t.Fatalf("GET %s: %d %v", mark, code, err)
		}
		want := app + "[web.1]: request GET " + mark
		var res result
		deadline := time.Now().Add(waitTimeout)
		for {
			res = c.must(t, "logs", app)
			if strings.Contains(res.Stdout, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("logs %s lacks %q:\n%s", app, want, res)
			}
			time.Sleep(250 * time.Millisecond)
		}
		if got := nonEmptyLines(c.must(t, "logs", app, "-n", "1").Stdout); len(got) != 1 || got[0] != want {
			t.Errorf("logs -n 1 = %q, want [%q]", got, want)
		}
		if got := c.must(t, "logs", app, "-p", "web").Stdout; !strings.Contains(got, want) {
			t.Errorf("logs -p web lacks %q:\n%s", want, got)
		}
		got := nonEmptyLines(c.must(t, "logs", app, "-q", "-n", "1").Stdout)
		if len(got) != 1 || got[0] != "request GET "+mark {
			t.Errorf("logs -q -n 1 = %q, want [%q]", got, "request GET "+mark)
		}
		wantError(t, c.ssh(t, nil, "logs", app, "-p", "worker"), -1, "worker")

		// -t follows: a request made after it started shows up.
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		cmd := c.sshCommand(ctx, "logs", app, "-t", "-n", "0")
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			cancel()
			cmd.Wait()
		}()
		mark2 := "/followed-" + randomName("x")
		deadline = time.Now().Add(waitTimeout)
		for !strings.Contains(out.String(), "request GET "+mark2) {
			srv.proxyGet(app, mark2)
			if time.Now().After(deadline) {
				t.Fatalf("logs -t did not show a new request line %q:\n%s", mark2, out.String())
			}
			time.Sleep(500 * time.Millisecond)
		}
	})
}

// TestReleasesRollbackConfig covers releases, releases:rollback to release
// N (image and config), and config changes restarting with zero downtime
// unless --no-restart.
func TestReleasesRollbackConfig(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	srv, c := startPushServer(t, eng)
	app := randomName("rel")
	cleanupApp(t, srv, eng, app)
	repo := newAppRepo(t, c, "v1")
	rev1 := headRev(t, c, repo)
	pushDeploys(t, srv, c, repo, app)
	wantServes(t, srv, app, "/", "hello v1")
	first := c.latestRelease(t, app)

	var withOne releaseInfo
	t.Run("config:set restarts with a new release, without downtime", func(t *testing.T) {
		web := waitProcesses(t, eng, app, "web", 1)[0].ID
		l := startLoad(t, srv, app, loadOptions{KeepAlive: 2, Fresh: 1}, "hello v1")
		time.Sleep(300 * time.Millisecond)
		res := c.must(t, "config:set", app, "FOO=one")
		if !strings.Contains(res.Stdout+res.Stderr, "Restarting app "+app) {
			t.Errorf("config:set does not say it restarts the app:\n%s", res)
		}
		wantServes(t, srv, app, "/env/FOO", "one")
		time.Sleep(300 * time.Millisecond)
		tot := l.finish()
		t.Logf("during config:set: %s", tot)
		wantNoFailures(t, tot)
		withOne = c.latestRelease(t, app)
		if withOne.Number <= first.Number || withOne.Status != "deployed" || withOne.Image != first.Image {
			t.Errorf("after config:set the newest release is %+v, want a new deployed release of image %s", withOne, first.Image)
		}
		if id := waitProcesses(t, eng, app, "web", 1)[0].ID; id == web {
			t.Errorf("config:set left the same container %.12s running", web)
		}
	})
	if withOne.Number == 0 {
		t.FailNow()
	}

	commitFiles(t, c, repo, "v2", nil)
	pushDeploys(t, srv, c, repo, app)
	wantServes(t, srv, app, "/", "hello v2")
	wantServes(t, srv, app, "/env/FOO", "one")
	second := c.latestRelease(t, app)

	t.Run("config:set --no-restart makes no release", func(t *testing.T) {
		before := c.latestRelease(t, app)
		web := waitProcesses(t, eng, app, "web", 1)[0].ID
		res := c.must(t, "config:set", "--no-restart", app, "FOO=two")
		if strings.Contains(res.Stdout+res.Stderr, "Restarting") {
			t.Errorf("config:set --no-restart restarts:\n%s", res)
		}
		if after := c.latestRelease(t, app); after.Number != before.Number {
			t.Errorf("config:set --no-restart made release %d", after.Number)
		}
		wantStillServes(t, srv, app, "hello v2")
		if _, body, _ := srv.proxyGet(app, "/env/FOO"); body != "one" {
			t.Errorf("FOO = %q after config:set --no-restart, want the running container's %q", body, "one")
		}
		if id := waitProcesses(t, eng, app, "web", 1)[0].ID; id != web {
			t.Errorf("config:set --no-restart replaced the container")
		}
	})

	t.Run("releases lists every release", func(t *testing.T) {
		rels := c.releases(t, app)
		if len(rels) < 3 {
			t.Fatalf("releases: %+v, want at least 3 (push, config, push)", rels)
		}
		for i := 1; i < len(rels); i++ {
			if rels[i].Number >= rels[i-1].Number {
				t.Errorf("releases not newest first: %+v", rels)
			}
		}
		if rels[0].Status != "deployed" {
			t.Errorf("newest release: %+v, want deployed", rels[0])
		}
		res := c.must(t, "releases", app)
		for _, r := range rels {
			if !strings.Contains(res.Stdout, "v"+strconv.Itoa(r.Number)+" ") {
				t.Errorf("releases output lacks v%d:\n%s", r.Number, res.Stdout)
			}
		}
	})

	t.Run("rollback to release N", func(t *testing.T) {
		before := c.latestRelease(t, app)
		res := c.must(t, "releases:rollback", app, strconv.Itoa(withOne.Number))
		if !strings.Contains(res.Stdout+res.Stderr, "Rolling back "+app+" to release "+strconv.Itoa(withOne.Number)) {
			t.Errorf("rollback output lacks its step line:\n%s", res)
		}
		wantServes(t, srv, app, "/", "hello v1")
		wantServes(t, srv, app, "/env/FOO", "one")
		wantServes(t, srv, app, "/env/GIT_REV", rev1)
		after := c.latestRelease(t, app)
		if after.Number <= before.Number || after.Status != "deployed" || after.Image != first.Image {
			t.Errorf("after rollback the newest release is %+v, want a new deployed release of %s", after, first.Image)
		}
		// The rollback restores release N's config snapshot: what runs is
		// what config shows, and a later restart keeps it.
		if got := c.env(t, app)["FOO"]; got != "one" {
			t.Errorf("config FOO = %q after rolling back to release %d, whose FOO was %q", got, withOne.Number, "one")
		}
		c.must(t, "ps:restart", app)
		wantServes(t, srv, app, "/", "hello v1")
		if _, body, _ := srv.proxyGet(app, "/env/FOO"); body != "one" {
			t.Errorf("FOO = %q after ps:restart following the rollback, want %q", body, "one")
		}
	})
	t.Run("rollback to a missing release is refused", func(t *testing.T) {
		wantError(t, c.ssh(t, nil, "releases:rollback", app, "999"), -1, "not found")
	})

	// releases:set retention 3 keeps the images of the newest 3 deployed
	// releases (distinct images): after v3 and v4, those of v4, v3 and the
	// rolled-back v1; v2's is pruned.
	t.Run("retention keeps the images of kept releases", func(t *testing.T) {
		c.must(t, "releases:set", app, "retention", "3")
		commitFiles(t, c, repo, "v3", nil)
		pushDeploys(t, srv, c, repo, app)
		v3 := c.latestRelease(t, app)
		commitFiles(t, c, repo, "v4", nil)
		pushDeploys(t, srv, c, repo, app)
		wantServes(t, srv, app, "/", "hello v4")
		v4 := c.latestRelease(t, app)
		want := map[string]bool{v4.Image: true, v3.Image: true, first.Image: true}
		got := map[string]bool{}
		for _, img := range eng.images(t, "rivetr.app="+app) {
			for _, tag := range img.RepoTags {
				got[tag] = true
			}
		}
		if len(got) != len(want) || !got[v4.Image] || !got[v3.Image] || !got[first.Image] {
			t.Errorf("images of %s with retention 3: %v, want %v", app, got, want)
		}
		wantError(t, c.ssh(t, nil, "releases:rollback", app, strconv.Itoa(second.Number)), -1, "pruned")
		res := c.ssh(t, nil, "releases:rollback", app, strconv.Itoa(withOne.Number))
		wantOK(t, res)
		if res.Code == 0 {
			wantServes(t, srv, app, "/", "hello v1")
		}
	})
}

// TestKillMidDeploy kills rivetr with SIGKILL while a deploy waits for its
// new container's checks. The old container keeps answering while rivetr
// is down; after a restart the proxy serves the previous release, the cut
// off release is marked failed and its container removed.
func TestKillMidDeploy(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	srv, c := startPushServer(t, eng)
	app := randomName("kill")
	cleanupApp(t, srv, eng, app)
	repo := newAppRepo(t, c, "v1")
	pushDeploys(t, srv, c, repo, app)
	wantServes(t, srv, app, "/", "hello v1")
	old := waitProcesses(t, eng, app, "web", 1)[0]
	oldAddr := eng.containerIP(t, old.ID) + ":5000"

	// v2 listens after 5 s; its check retries until then.
	commitFiles(t, c, repo, "v2", map[string]string{"app.json": `{"healthchecks": {"web": [
  {"name": "slow-start", "path": "/", "attempts": 20, "wait": 1, "timeout": 2}
]}}`}, "ENV START_DELAY=5s")
	push := c.startGit(t, repo, "push", c.sshRemote(app), "main")
	push.waitOutput(t, "Running healthcheck name='slow-start'", pushTimeout)
	srv.kill()
	res := <-push.done
	if res.Code == 0 {
		t.Errorf("push cut off by kill -9 exited 0:\n%s", res)
	}

	// rivetr is down: the old container still answers, directly.
	for i := 0; i < 10; i++ {
		code, body, err := directGet(oldAddr, "/")
		if err != nil || code != http.StatusOK || body != "hello v1" {
			t.Errorf("old container at %s while rivetr is down: %d %q %v; want 200 hello v1", oldAddr, code, body, err)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	cut := startedRelease(t, eng, app, old)
	if cut == 0 {
		t.Errorf("no container of the cut-off deploy found while rivetr was down")
	}

	srv.start()
	wantServes(t, srv, app, "/", "hello v1")
	for i := 0; i < 20; i++ {
		wantStillServes(t, srv, app, "hello v1")
		time.Sleep(100 * time.Millisecond)
	}
	rels := c.releases(t, app)
	if len(rels) < 2 || rels[0].Status != "failed" {
		t.Errorf("releases after the restart: %+v, want the cut-off deploy failed", rels)
	} else if rels[0].Number != cut {
		t.Errorf("newest release %d, but the cut-off deploy's container was of release %d", rels[0].Number, cut)
	}
	if len(rels) >= 2 && rels[1].Status != "deployed" {
		t.Errorf("release %d (v1) is %q after the restart, want deployed", rels[1].Number, rels[1].Status)
	}
	list := waitProcesses(t, eng, app, "web", 1)
	if list[0].ID != old.ID {
		t.Errorf("the web container after the restart is %.12s, want the old one %.12s", list[0].ID, old.ID)
	}
	// The daemon still deploys.
	commitFiles(t, c, repo, "v3", map[string]string{"app.json": ""})
	pushDeploys(t, srv, c, repo, app)
	wantServes(t, srv, app, "/", "hello v3")

	// A clean stop leaves the app running; once the proxy accepts again,
	// its first answer is the app's (the routes are rebuilt before).
	web := waitProcesses(t, eng, app, "web", 1)[0]
	addr := eng.containerIP(t, web.ID) + ":5000"
	srv.stop()
	if code, body, err := directGet(addr, "/"); err != nil || code != http.StatusOK || body != "hello v3" {
		t.Errorf("container at %s after rivetr stopped: %d %q %v; want 200 hello v3", addr, code, body, err)
	}
	srv.start()
	deadline := time.Now().Add(waitTimeout)
	for {
		code, body, err := srv.proxyGet(app, "/")
		if err == nil {
			if code != http.StatusOK || body != "hello v3" {
				t.Errorf("first answer of the restarted proxy: %d %q, want 200 hello v3", code, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restarted proxy does not answer: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if id := waitProcesses(t, eng, app, "web", 1)[0].ID; id != web.ID {
		t.Errorf("the restart replaced the web container %.12s with %.12s", web.ID, id)
	}
}

// startedRelease returns the release number of a web container of app
// other than old (the cut-off deploy's), or 0 if none is there.
func startedRelease(t *testing.T, eng *engine, app string, old engineContainer) int {
	t.Helper()
	for _, ct := range eng.processes(t, app, "web") {
		if ct.ID != old.ID {
			n, _ := strconv.Atoi(ct.Labels["rivetr.release"])
			return n
		}
	}
	return 0
}
