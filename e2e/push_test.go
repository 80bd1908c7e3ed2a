package e2e

// End-to-end tests of git push to live (issue 3): the real git and OpenSSH
// clients push a FROM scratch Go app to `rivetr serve`, which builds it on
// the real container engine (Docker; Podman with RIVETR_TEST_RUNTIME=podman)
// and serves it through its proxy.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPushSSH follows one app through its life over SSH: first push, a new
// version, a push to another branch, broken builds, clone, labels, lock,
// ps:rebuild and destroy. The steps share the app, in order.
func TestPushSSH(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	srv, c := startPushServer(t, eng)
	app := randomName("web")
	cleanupApp(t, srv, eng, app)
	remote := c.sshRemote(app)
	repo := newAppRepo(t, c, "v1")
	rev1 := headRev(t, c, repo)
	var rev2, web2 string // v2's commit and container

	// The first two steps are what every later step builds on.
	if !t.Run("first push deploys v1", func(t *testing.T) {
		res := c.git(t, repo, "push", remote, "main")
		wantDeployed(t, srv, res, app, "remote: ")
		if !strings.Contains(res.Stderr, "-----> Creating "+app+"...") {
			t.Errorf("first push does not say it creates the app:\n%s", res)
		}
		wantServes(t, srv, app, "/", "hello v1")
		wantServes(t, srv, app, "/env/PORT", "5000")
		wantServes(t, srv, app, "/env/GIT_REV", rev1)
		if got := remoteRef(t, c, repo, remote, "refs/heads/main"); got != rev1 {
			t.Errorf("remote main = %q, want %s", got, rev1)
		}
		if got := strings.TrimSpace(c.must(t, "git:report", app, "--git-deploy-branch").Stdout); got != "main" {
			t.Errorf("deploy branch = %q, want main (adopted from the first push)", got)
		}
		if _, err := os.Stat(filepath.Join(srv.dataDir, "repos", app+".git", "objects")); err != nil {
			t.Errorf("no bare repository at $RIVETR_DATA_DIR/repos/%s.git: %v", app, err)
		}
	}) {
		return
	}

	if !t.Run("push v2 replaces v1", func(t *testing.T) {
		rev2 = commitDockerfile(t, c, repo, "v2")
		res := c.git(t, repo, "push", remote, "main")
		wantDeployed(t, srv, res, app, "remote: ")
		if strings.Contains(res.Stderr, "Creating") {
			t.Errorf("second push creates the app again:\n%s", res)
		}
		wantServes(t, srv, app, "/", "hello v2")
		wantServes(t, srv, app, "/env/GIT_REV", rev2)
		// The v1 container is retired (in the background, after the push).
		web2 = runningWeb(t, eng, app)
	}) {
		return
	}

	t.Run("push to another branch deploys nothing", func(t *testing.T) {
		res := c.git(t, repo, "push", remote, "main:feature")
		if res.Code != 0 {
			t.Errorf("push to feature: exit %d, want 0\n%s", res.Code, res)
		}
		if !strings.Contains(res.Stderr, "remote: -----> WARNING: deploy did not complete, you must push to main") {
			t.Errorf("push to feature lacks the deploy-branch warning:\n%s", res)
		}
		if strings.Contains(res.Stderr, "Building") || strings.Contains(res.Stderr, "Application deployed") {
			t.Errorf("push to feature deployed:\n%s", res)
		}
		if got := remoteRef(t, c, repo, remote, "refs/heads/feature"); got != rev2 {
			t.Errorf("remote feature = %q, want %s", got, rev2)
		}
		wantStillServes(t, srv, app, "hello v2")
		if id := runningWeb(t, eng, app); id != web2 {
			t.Errorf("web container changed from %.12s to %.12s on a push to another branch", web2, id)
		}
	})

	t.Run("broken Dockerfile fails the push", func(t *testing.T) {
		for _, tc := range []struct{ name, line string }{
			{"RUN without a shell", "RUN false"}, // FROM scratch has no /bin/sh
			{"COPY of a missing file", "COPY does-not-exist /x"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				commitDockerfile(t, c, repo, "broken", tc.line)
				defer c.mustGit(t, repo, "reset", "-q", "--hard", rev2)
				res := c.git(t, repo, "push", remote, "main")
				removeFailedBuildImages(t, eng, res.Stderr, "VERSION_TAG=broken")
				wantPushRefused(t, res, "build of "+app+" failed")
				if !strings.Contains(res.Stderr, "remote: -----> Building "+app+" from Dockerfile") {
					t.Errorf("the build log did not reach the pusher:\n%s", res)
				}
				if strings.Contains(res.Stderr, "Application deployed") {
					t.Errorf("a failed build says it deployed:\n%s", res)
				}
				wantStillServes(t, srv, app, "hello v2")
				if id := runningWeb(t, eng, app); id != web2 {
					t.Errorf("web container changed from %.12s to %.12s after a failed build", web2, id)
				}
				if got := remoteRef(t, c, repo, remote, "refs/heads/main"); got != rev2 {
					t.Errorf("remote main = %q after a refused push, want %s", got, rev2)
				}
			})
		}
		t.Run("no Dockerfile", func(t *testing.T) {
			c.mustGit(t, repo, "rm", "-q", "Dockerfile")
			c.mustGit(t, repo, "commit", "-q", "-m", "no Dockerfile")
			defer c.mustGit(t, repo, "reset", "-q", "--hard", rev2)
			res := c.git(t, repo, "push", remote, "main")
			wantPushRefused(t, res, "no builder detected: found no Dockerfile")
			wantStillServes(t, srv, app, "hello v2")
		})
	})

	t.Run("clone back over ssh", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "clone")
		res := c.mustGit(t, t.TempDir(), "clone", remote+".git", dst)
		if strings.Contains(res.Stderr, "remote HEAD refers to nonexistent ref") || strings.Contains(res.Stderr, "warning") {
			t.Errorf("clone warns:\n%s", res)
		}
		if got := strings.TrimSpace(c.mustGit(t, dst, "symbolic-ref", "--short", "HEAD").Stdout); got != "main" {
			t.Errorf("clone checked out %q, want the deploy branch main", got)
		}
		if got := headRev(t, c, dst); got != rev2 {
			t.Errorf("clone HEAD = %s, want %s", got, rev2)
		}
		if got := string(readFile(t, filepath.Join(dst, "Dockerfile"))); got != dockerfile("v2") {
			t.Errorf("cloned Dockerfile = %q, want %q", got, dockerfile("v2"))
		}
		if !bytes.Equal(readFile(t, filepath.Join(dst, "server")), readFile(t, pushApp(t))) {
			t.Errorf("cloned server binary differs from the pushed one")
		}
		// The other remote forms of the CONTRACT, straight over ssh: a bare
		// name and a quoted name with .git, as git's scp-like syntax sends them.
		for _, path := range []string{app, app + ".git", "/" + app} {
			res := c.ssh(t, nil, "git-upload-pack", path)
			if !strings.Contains(res.Stdout, rev2+" refs/heads/main") {
				t.Errorf("git-upload-pack %q does not advertise main at %s:\n%s", path, rev2, res)
			}
		}
		res = c.git(t, t.TempDir(), "clone", c.sshRemote("no-such-app"), "x")
		if res.Code == 0 || !strings.Contains(res.Stderr, "App no-such-app does not exist") {
			t.Errorf("clone of a missing app: want a failure saying it does not exist\n%s", res)
		}
	})

	t.Run("containers carry labels and publish no public port", func(t *testing.T) {
		list := eng.containers(t, "rivetr.app="+app)
		if len(list) == 0 {
			t.Fatalf("no container labelled rivetr.app=%s", app)
		}
		for _, sum := range list {
			d := eng.inspect(t, sum.ID)
			wantLabelledAndPrivate(t, sum, d, app)
		}
		imgs := eng.images(t, "rivetr.app="+app)
		if len(imgs) == 0 {
			t.Errorf("no image labelled rivetr.app=%s", app)
		}
		for _, img := range imgs {
			if img.Labels["rivetr.managed"] != "true" {
				t.Errorf("image %v lacks rivetr.managed=true: %v", img.RepoTags, img.Labels)
			}
		}
	})

	t.Run("apps:lock refuses pushes until apps:unlock", func(t *testing.T) {
		srv.mustCLI(t, nil, "apps:lock", app)
		rev3 := commitDockerfile(t, c, repo, "v3")
		res := c.git(t, repo, "push", remote, "main")
		wantPushRefused(t, res, "App "+app+" is currently being deployed or locked")
		wantStillServes(t, srv, app, "hello v2")
		if got := remoteRef(t, c, repo, remote, "refs/heads/main"); got != rev2 {
			t.Errorf("remote main = %q after a push to a locked app, want %s", got, rev2)
		}
		srv.mustCLI(t, nil, "apps:unlock", app)
		res = c.git(t, repo, "push", remote, "main")
		wantDeployed(t, srv, res, app, "remote: ")
		wantServes(t, srv, app, "/", "hello v3")
		wantServes(t, srv, app, "/env/GIT_REV", rev3)
	})

	t.Run("ps:rebuild over ssh redeploys", func(t *testing.T) {
		before := runningWeb(t, eng, app)
		_, want, _ := srv.proxyGet(app, "/")
		ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
		defer cancel()
		res := run(t, c.sshCommand(ctx, "ps:rebuild", app), nil)
		wantDeployed(t, srv, res, app, "")
		wantServes(t, srv, app, "/", want)
		if after := runningWeb(t, eng, app); after == before {
			t.Errorf("ps:rebuild left the same container %.12s running", before)
		}
	})

	t.Run("apps:destroy removes containers, images and repo", func(t *testing.T) {
		srv.mustCLI(t, nil, "apps:destroy", app, "--force")
		if list := eng.containers(t, "rivetr.app="+app); len(list) != 0 {
			t.Errorf("containers of %s left after apps:destroy: %+v", app, list)
		}
		if imgs := eng.images(t, "rivetr.app="+app); len(imgs) != 0 {
			t.Errorf("images of %s left after apps:destroy: %+v", app, imgs)
		}
		if _, err := os.Stat(filepath.Join(srv.dataDir, "repos", app+".git")); !os.IsNotExist(err) {
			t.Errorf("repository of %s left after apps:destroy (stat: %v)", app, err)
		}
		if code, body, err := srv.proxyGet(app, "/"); err != nil || code != http.StatusNotFound {
			t.Errorf("proxy for a destroyed app: status %d, body %q, err %v; want 404", code, body, err)
		}
	})
}

// wantLabelledAndPrivate checks one container rivetr made: the CONTRACT's
// labels, on the rivetr network, and no port published off loopback.
func wantLabelledAndPrivate(t *testing.T, sum engineContainer, d containerDetails, app string) {
	t.Helper()
	name := strings.Join(sum.Names, ",")
	if got := d.Config.Labels["rivetr.app"]; got != app {
		t.Errorf("container %s: label rivetr.app = %q, want %q", name, got, app)
	}
	if d.Config.Labels["rivetr.process"] == "" {
		t.Errorf("container %s has no rivetr.process label: %v", name, d.Config.Labels)
	}
	if _, ok := d.NetworkSettings.Networks["rivetr"]; !ok {
		t.Errorf("container %s is not on the rivetr network: %v", name, d.NetworkSettings.Networks)
	}
	loopback := func(ip string) bool { return ip == "127.0.0.1" || ip == "::1" }
	for port, binds := range d.HostConfig.PortBindings {
		for _, b := range binds {
			if !loopback(b.HostIP) {
				t.Errorf("container %s publishes %s on %q (not loopback)", name, port, b.HostIP)
			}
		}
	}
	for port, binds := range d.NetworkSettings.Ports {
		for _, b := range binds {
			if !loopback(b.HostIP) {
				t.Errorf("container %s has %s bound on %q (not loopback)", name, port, b.HostIP)
			}
		}
	}
	for _, p := range sum.Ports {
		if p.PublicPort != 0 && !loopback(p.IP) {
			t.Errorf("container %s publishes %d on %s:%d (not loopback)", name, p.PrivatePort, p.IP, p.PublicPort)
		}
	}
}

// TestPushHTTP pushes over smart HTTP with an API token, and checks that
// no token, a wrong token and a revoked token are refused.
func TestPushHTTP(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	srv, c := startPushServer(t, eng)
	app := randomName("http")
	cleanupApp(t, srv, eng, app)
	out := nonEmptyLines(srv.mustCLI(t, nil, "tokens:create", "ci").Stdout)
	token := strings.TrimSpace(out[len(out)-1])
	remote := srv.httpRemote(token, app)
	repo := newAppRepo(t, c, "v1")
	rev1 := headRev(t, c, repo)

	refused := func(t *testing.T, remote string) {
		t.Helper()
		res := c.git(t, repo, "push", remote, "main")
		if res.Code == 0 {
			t.Errorf("push exited 0, want a refusal\n%s", res)
		}
		if !strings.Contains(res.Stderr, "Authentication failed") && !strings.Contains(res.Stderr, "could not read Username") {
			t.Errorf("push refusal does not say authentication failed:\n%s", res)
		}
		if strings.Contains(res.Stderr, "----->") {
			t.Errorf("an unauthenticated push reached the hook:\n%s", res)
		}
	}
	wantNoApp := func(t *testing.T) {
		t.Helper()
		if res := srv.cli(t, nil, "apps:exists", app); res.Code == 0 {
			t.Errorf("app %s exists after refused pushes", app)
		}
		if _, err := os.Stat(filepath.Join(srv.dataDir, "repos", app+".git")); !os.IsNotExist(err) {
			t.Errorf("a refused push made a repository (stat: %v)", err)
		}
	}

	t.Run("no credentials refused", func(t *testing.T) {
		refused(t, srv.httpRemote("", app))
		req, _ := http.NewRequest(http.MethodGet, srv.httpRemote("", app)+"/info/refs?service=git-receive-pack", nil)
		resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("no credentials: %s, WWW-Authenticate %q; want 401 with a Basic challenge", resp.Status, resp.Header.Get("WWW-Authenticate"))
		}
		wantNoApp(t)
	})
	t.Run("bad token refused", func(t *testing.T) {
		refused(t, srv.httpRemote("rvt_not-a-token", app))
		refused(t, srv.httpRemote(token+"x", app))
		wantNoApp(t)
	})
	// The whole app (a 6 MB binary) in one push: git sends a request body
	// over http.postBuffer (1 MiB) chunked.
	t.Run("first push with a token deploys v1", func(t *testing.T) {
		res := c.git(t, repo, "push", remote, "main")
		wantDeployed(t, srv, res, app, "remote: ")
		wantServes(t, srv, app, "/", "hello v1")
		wantServes(t, srv, app, "/env/GIT_REV", rev1)
	})
	if res := c.git(t, repo, "ls-remote", c.sshRemote(app), "refs/heads/main"); !strings.HasPrefix(res.Stdout, rev1) {
		// Let the steps below run even so: they push small packs.
		t.Logf("the first push over HTTP did not land; deploying v1 over SSH so the other steps can run")
		wantDeployed(t, srv, c.git(t, repo, "push", c.sshRemote(app), "main"), app, "remote: ")
		wantServes(t, srv, app, "/", "hello v1")
	}
	rev2 := commitDockerfile(t, c, repo, "v2")
	t.Run("bad or revoked token changes nothing", func(t *testing.T) {
		refused(t, srv.httpRemote("rvt_not-a-token", app))
		oldOut := nonEmptyLines(srv.mustCLI(t, nil, "tokens:create", "older").Stdout)
		srv.mustCLI(t, nil, "tokens:revoke", "older")
		refused(t, srv.httpRemote(strings.TrimSpace(oldOut[len(oldOut)-1]), app))
		wantStillServes(t, srv, app, "hello v1")
		if got := remoteRef(t, c, repo, remote, "refs/heads/main"); got != rev1 {
			t.Errorf("remote main = %q after refused pushes, want %s", got, rev1)
		}
	})
	t.Run("push v2 with a token", func(t *testing.T) {
		res := c.git(t, repo, "push", remote, "main")
		wantDeployed(t, srv, res, app, "remote: ")
		wantServes(t, srv, app, "/", "hello v2")
		wantServes(t, srv, app, "/env/GIT_REV", rev2)
	})
	t.Run("clone over http", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "clone")
		res := c.mustGit(t, t.TempDir(), "clone", remote, dst)
		if strings.Contains(res.Stderr, "warning") {
			t.Errorf("clone warns:\n%s", res)
		}
		if got := headRev(t, c, dst); got != rev2 {
			t.Errorf("clone HEAD = %s, want %s", got, rev2)
		}
	})
}

// TestPushConcurrent pushes two different commits to one app at once, from
// two clones: the second arrives while the first deploys. Each push must
// end cleanly, either deployed or refused with a reason, the second must
// say it waits, and the app must serve the commit its deploy branch
// points to.
func TestPushConcurrent(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	srv, c := startPushServer(t, eng)
	app := randomName("race")
	cleanupApp(t, srv, eng, app)
	remote := c.sshRemote(app)
	repoA := newAppRepo(t, c, "v1")
	wantDeployed(t, srv, c.git(t, repoA, "push", remote, "main"), app, "remote: ")
	wantServes(t, srv, app, "/", "hello v1")

	repoB := filepath.Join(t.TempDir(), "b")
	c.mustGit(t, t.TempDir(), "clone", "-q", repoA, repoB)
	// A's app takes a while to listen and its check waits for it, so its
	// deploy is still running when B's push arrives (B waits for A's
	// "Running healthcheck" line first).
	revA := commitFiles(t, c, repoA, "a", map[string]string{"app.json": `{"healthchecks": {"web": [
  {"name": "listening", "path": "/", "attempts": 20, "wait": 1, "timeout": 2}
]}}`}, "ENV START_DELAY=8s")
	revB := commitDockerfile(t, c, repoB, "b")

	ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
	defer cancel()
	pushA := c.gitCmd(ctx, repoA, "push", remote, "main")
	var outA, errA syncBuffer
	pushA.Stdout, pushA.Stderr = &outA, &errA
	pushA.WaitDelay = 5 * time.Second
	if err := pushA.Start(); err != nil {
		t.Fatal(err)
	}
	doneA := make(chan result, 1)
	go func() {
		err := pushA.Wait()
		res := result{Stdout: outA.String(), Stderr: errA.String()}
		if err != nil {
			res.Code = pushA.ProcessState.ExitCode()
		}
		doneA <- res
	}()
	deadline := time.Now().Add(pushTimeout)
	for !strings.Contains(errA.String(), "Running healthcheck name='listening'") {
		select {
		case res := <-doneA:
			t.Fatalf("push A ended before its container listened:\n%s", res)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("push A did not reach its start wait within %v:\n%s", pushTimeout, errA.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	resB := c.git(t, repoB, "push", remote, "main")
	resA := <-doneA

	if resA.Code != 0 {
		t.Errorf("push A: exit %d, want 0 (it was first)\n%s", resA.Code, resA)
	}
	wantDeployed(t, srv, resA, app, "remote: ")
	if !strings.Contains(resB.Stderr, "remote: -----> Waiting for the deploy of "+app+" already running to finish") {
		t.Errorf("push B, made during A's deploy, does not say it waits:\n%s", resB)
	}
	main := remoteRef(t, c, repoA, remote, "refs/heads/main")
	served := map[string]string{revA: "hello a", revB: "hello b"}
	switch {
	case resB.Code == 0:
		wantDeployed(t, srv, resB, app, "remote: ")
		if main != revB {
			t.Errorf("push B succeeded but remote main = %s, want B's %s", main, revB)
		}
	case !strings.Contains(resB.Stderr, "remote: "+errPrefix) && !strings.Contains(resB.Stderr, "[rejected]") &&
		!strings.Contains(resB.Stderr, "[remote rejected]"):
		t.Errorf("push B failed without a clear reason:\n%s", resB)
	case main != revA:
		t.Errorf("push B was refused but remote main = %s, want A's %s", main, revA)
	}
	want, ok := served[main]
	if !ok {
		t.Fatalf("remote main = %q, neither A (%s) nor B (%s)", main, revA, revB)
	}
	// The app serves what the deploy branch holds: a push reported as
	// refused must not have left its code live.
	if code, body, err := srv.proxyGet(app, "/"); err != nil || code != http.StatusOK || body != want {
		t.Errorf("app serves %d %q (err %v), but main is at %.12s, which is %q\npush A:\n%s\npush B:\n%s",
			code, body, err, main, want, resA, resB)
	}
	if code, body, _ := srv.proxyGet(app, "/env/GIT_REV"); code != http.StatusOK || body != main {
		t.Errorf("app runs GIT_REV %q, but main is at %s", body, main)
	}
	runningWeb(t, eng, app)
	select {
	case <-srv.done:
		t.Fatalf("rivetr serve exited during concurrent pushes: %v", srv.waitErr)
	default:
	}
	if strings.Contains(srv.stderr.String(), "panic") {
		t.Errorf("rivetr serve logged a panic:\n%s", srv.stderr.String())
	}
}

// TestGitRemotesRefused pushes and fetches with remotes that try to leave
// the repos dir or use invalid names, and with an unknown key: each is
// refused with a clear error and nothing is created. No engine is needed.
func TestGitRemotesRefused(t *testing.T) {
	t.Parallel()
	srv, c := startPushServer(t, nil)
	repo := t.TempDir()
	c.mustGit(t, repo, "init", "-q", "-b", "main")
	writeFile(t, filepath.Join(repo, "Dockerfile"), dockerfile("v1"))
	c.mustGit(t, repo, "add", "-A")
	c.mustGit(t, repo, "commit", "-q", "-m", "v1")
	out := nonEmptyLines(srv.mustCLI(t, nil, "tokens:create", "ci").Stdout)
	token := strings.TrimSpace(out[len(out)-1])

	parent := filepath.Dir(srv.dataDir)
	snapshot := func() []string {
		var all []string
		for _, dir := range []string{parent, srv.dataDir, filepath.Join(srv.dataDir, "repos")} {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if e.IsDir() {
					all = append(all, filepath.Join(dir, e.Name()))
				}
			}
		}
		slices.Sort(all)
		return all
	}
	before := snapshot()

	base := "ssh://rivetr@" + srv.sshAddr()
	for _, path := range []string{"/../etc", "/..", "//etc/passwd", "/etc/passwd", "/a/b", "/a/b.git", "/Bad_Name",
		"/x;rm -rf /", "/-app", "/.git"} {
		t.Run("ssh "+path, func(t *testing.T) {
			for _, args := range [][]string{{"push", base + path, "main"}, {"ls-remote", base + path}} {
				res := c.git(t, repo, args...)
				if res.Code == 0 {
					t.Errorf("git %s: exit 0, want a refusal\n%s", strings.Join(args, " "), res)
				}
				if !strings.Contains(res.Stderr, errPrefix) ||
					!(strings.Contains(res.Stderr, "Invalid repository path") || strings.Contains(res.Stderr, "is invalid")) {
					t.Errorf("git %s: refusal does not say the path is invalid:\n%s", strings.Join(args, " "), res)
				}
			}
		})
	}
	t.Run("ssh exec with raw paths", func(t *testing.T) {
		for _, args := range [][]string{
			{"git-receive-pack", "../etc"}, {"git-upload-pack", "/etc/passwd"}, {"git-receive-pack", "a/b"},
			{"git-receive-pack", "Bad_Name"}, {"git-receive-pack", "x;rm -rf /"}, {"git-receive-pack", ""},
			{"git-receive-pack", "app", "extra"}, {"git-receive-pack", `..\etc`},
		} {
			res := c.ssh(t, nil, args...)
			if res.Code == 0 || !strings.HasPrefix(res.Stderr, errPrefix) {
				t.Errorf("ssh %q: want a refusal starting %q\n%s", args, errPrefix, res)
			}
		}
	})
	t.Run("http", func(t *testing.T) {
		for _, name := range []string{"Bad_Name", "x;rm -rf /", "..", "-app", "a/b"} {
			remote := srv.httpRemote(token, name)
			res := c.git(t, repo, "push", remote, "main")
			if res.Code == 0 {
				t.Errorf("push to %s: exit 0, want a refusal\n%s", remote, res)
			}
			// The same request without git's client-side URL handling.
			u := fmt.Sprintf("http://127.0.0.1:%d/%s.git/info/refs?service=git-receive-pack", srv.apiPort, url.PathEscape(name))
			req, _ := http.NewRequest(http.MethodGet, u, nil)
			req.SetBasicAuth("x", token)
			resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode/100 != 4 {
				t.Errorf("GET %s: %s, want a 4xx refusal\n%s", u, resp.Status, body)
			}
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		stranger := srv.client(t, newKey(t, "stranger"))
		res := stranger.git(t, repo, "push", stranger.sshRemote("stranger-app"), "main")
		if res.Code == 0 || !strings.Contains(res.Stderr, "Permission denied (publickey)") {
			t.Errorf("push with an unknown key: want Permission denied (publickey)\n%s", res)
		}
		res = stranger.git(t, repo, "ls-remote", stranger.sshRemote("stranger-app"))
		if res.Code == 0 || !strings.Contains(res.Stderr, "Permission denied (publickey)") {
			t.Errorf("ls-remote with an unknown key: want Permission denied (publickey)\n%s", res)
		}
	})

	if names := c.appNames(t); len(names) != 0 {
		t.Errorf("refused pushes created apps: %v", names)
	}
	if after := snapshot(); !slices.Equal(after, before) {
		t.Errorf("refused pushes changed directories:\nbefore %v\nafter  %v", before, after)
	}
	for _, p := range []string{"/etc.git", "/etc/passwd.git", filepath.Join(srv.dataDir, "etc"), filepath.Join(srv.dataDir, "etc.git")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s exists after refused pushes", p)
		}
	}
	if entries := dirEntries(t, srv.dataDir); slices.ContainsFunc(entries, func(e string) bool {
		return strings.HasPrefix(e, "repos"+string(filepath.Separator))
	}) {
		t.Errorf("refused pushes left something under repos: %v", entries)
	}
}
