package e2e

// Helpers of the git-push tests (push_test.go): the test app, git
// repositories driven by the real git client, the container engine's API
// for checking what rivetr left on it, and reading apps through the proxy.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// pushTimeout bounds one git push: it builds an image and starts a
// container. Generous; never a performance assertion.
const pushTimeout = 3 * time.Minute

// Fixed identity for the test commits.
var gitIdentity = []string{
	"GIT_AUTHOR_NAME=Rivetr Test", "GIT_AUTHOR_EMAIL=test@rivetr.invalid",
	"GIT_COMMITTER_NAME=Rivetr Test", "GIT_COMMITTER_EMAIL=test@rivetr.invalid",
	"GIT_AUTHOR_DATE=2024-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2024-01-02T03:04:05Z",
}

var (
	pushAppOnce sync.Once
	pushAppPath string
	pushAppErr  error
)

// pushApp returns the test app (testdata/pushapp) built once as a static
// Linux binary, next to the rivetr binary TestMain built (and removes).
func pushApp(t *testing.T) string {
	t.Helper()
	pushAppOnce.Do(func() {
		out := filepath.Join(filepath.Dir(rivetrBin), "pushapp")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
		cmd.Dir = filepath.Join("testdata", "pushapp")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goruntime.GOARCH,
			"GOWORK=off", "GOFLAGS=", "GOTOOLCHAIN=local")
		if b, err := cmd.CombinedOutput(); err != nil {
			pushAppErr = fmt.Errorf("build testdata/pushapp: %v\n%s", err, b)
			return
		}
		pushAppPath = out
	})
	if pushAppErr != nil {
		t.Fatal(pushAppErr)
	}
	return pushAppPath
}

// randomName returns an app name unique to this run: prefix-xxxxxx.
func randomName(prefix string) string {
	b := make([]byte, 3)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// engine is the container engine the push tests run against, reached
// through its (Docker-compatible) Engine API on a unix socket.
type engine struct {
	kind   string // "docker" or "podman"
	socket string
	hc     *http.Client
}

// testRuntime is the engine the tests use: RIVETR_TEST_RUNTIME=podman
// selects Podman, anything else Docker.
func testRuntime() string {
	if os.Getenv("RIVETR_TEST_RUNTIME") == "podman" {
		return "podman"
	}
	return "docker"
}

// needEngine returns the test's container engine. When none answers, the
// test fails under CI=true and is skipped otherwise, saying why.
func needEngine(t *testing.T) *engine {
	t.Helper()
	kind := testRuntime()
	// The places rivetr looks, in its order: DOCKER_HOST, then the
	// engine's usual socket.
	socket := "/var/run/docker.sock"
	if kind == "podman" {
		socket = "/run/podman/podman.sock"
		if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
			if _, err := os.Stat(socket); err != nil {
				socket = filepath.Join(x, "podman", "podman.sock")
			}
		}
	}
	if h, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://"); ok {
		socket = h
	}
	e := &engine{kind: kind, socket: socket, hc: &http.Client{
		Timeout: waitTimeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", socket)
			},
		},
	}}
	if err := e.ping(); err != nil {
		msg := fmt.Sprintf("no %s engine answers on %s (%v): these tests push to a real engine; start one (scripts/engine.sh, or `podman system service` for RIVETR_TEST_RUNTIME=podman)", kind, socket, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return e
}

func (e *engine) ping() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://engine/_ping", nil)
	resp, err := e.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /_ping: %s", resp.Status)
	}
	return nil
}

// call does one Engine API request and decodes a JSON answer into out
// (nil to ignore it). notFoundOK makes a 404 a success.
func (e *engine) call(t *testing.T, method, path string, out any, notFoundOK bool) {
	t.Helper()
	req, err := http.NewRequest(method, "http://engine"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatalf("%s engine %s %s: %v", e.kind, method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNotFound && notFoundOK {
		return
	}
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s engine %s %s: %s: %s", e.kind, method, path, resp.Status, body)
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("%s engine %s %s: decode: %v\n%s", e.kind, method, path, err, body)
		}
	}
}

func labelFilter(label string) string {
	f, _ := json.Marshal(map[string][]string{"label": {label}})
	return url.QueryEscape(string(f))
}

// engineContainer is a container as the engine's list call reports it.
type engineContainer struct {
	ID     string            `json:"Id"`
	Names  []string          `json:"Names"`
	Image  string            `json:"Image"`
	State  string            `json:"State"`
	Labels map[string]string `json:"Labels"`
	Ports  []struct {
		IP          string `json:"IP"`
		PrivatePort int    `json:"PrivatePort"`
		PublicPort  int    `json:"PublicPort"`
	} `json:"Ports"`
}

// containers lists every container (running or not) carrying label
// ("key=value"), like `docker ps -a --filter label=...`.
func (e *engine) containers(t *testing.T, label string) []engineContainer {
	t.Helper()
	var list []engineContainer
	e.call(t, http.MethodGet, "/containers/json?all=1&filters="+labelFilter(label), &list, false)
	return list
}

// containerDetails is the part of `docker inspect` the tests check.
type containerDetails struct {
	ID     string `json:"Id"`
	Config struct {
		Labels map[string]string `json:"Labels"`
		Env    []string          `json:"Env"`
	} `json:"Config"`
	HostConfig struct {
		PortBindings map[string][]struct {
			HostIP   string `json:"HostIp"`
			HostPort string `json:"HostPort"`
		} `json:"PortBindings"`
	} `json:"HostConfig"`
	NetworkSettings struct {
		Ports map[string][]struct {
			HostIP   string `json:"HostIp"`
			HostPort string `json:"HostPort"`
		} `json:"Ports"`
		Networks map[string]json.RawMessage `json:"Networks"`
	} `json:"NetworkSettings"`
}

func (e *engine) inspect(t *testing.T, id string) containerDetails {
	t.Helper()
	var d containerDetails
	e.call(t, http.MethodGet, "/containers/"+url.PathEscape(id)+"/json", &d, false)
	return d
}

// engineImage is an image as the engine's list call reports it.
type engineImage struct {
	ID       string            `json:"Id"`
	RepoTags []string          `json:"RepoTags"`
	Labels   map[string]string `json:"Labels"`
}

// images lists the images carrying label, like `docker images --filter label=...`.
func (e *engine) images(t *testing.T, label string) []engineImage {
	t.Helper()
	var list []engineImage
	e.call(t, http.MethodGet, "/images/json?filters="+labelFilter(label), &list, false)
	return list
}

func (e *engine) removeContainer(t *testing.T, id string) {
	t.Helper()
	e.call(t, http.MethodDelete, "/containers/"+url.PathEscape(id)+"?force=1&v=1", nil, true)
}

func (e *engine) removeImage(t *testing.T, ref string) {
	t.Helper()
	e.call(t, http.MethodDelete, "/images/"+url.PathEscape(ref)+"?force=1", nil, true)
}

// startPushServer starts a daemon on the test engine (RIVETR_RUNTIME forced
// to it, domain localhost) with quick checks (fastChecks) and returns it
// with an SSH client whose key is added as "admin".
func startPushServer(t *testing.T, eng *engine) (*server, *client) {
	t.Helper()
	srv := newServer(t)
	srv.extraEnv = []string{"RIVETR_DOMAIN=localhost"}
	if eng != nil {
		srv.extraEnv = append(srv.extraEnv, "RIVETR_RUNTIME="+eng.kind)
	}
	srv.start()
	fastChecks(t, srv)
	key := newKey(t, "admin")
	srv.mustCLI(t, nil, "ssh-keys:add", "admin", key.Public)
	return srv, srv.client(t, key)
}

// cleanupApp destroys app when the test ends, before the daemon stops,
// then removes whatever the engine still holds of it.
func cleanupApp(t *testing.T, srv *server, eng *engine, app string) {
	t.Cleanup(func() {
		if !srv.stopped {
			srv.cli(t, nil, "apps:destroy", app, "--force")
		}
		if eng == nil {
			return
		}
		for _, c := range eng.containers(t, "rivetr.app="+app) {
			eng.removeContainer(t, c.ID)
		}
		for _, img := range eng.images(t, "rivetr.app="+app) {
			eng.removeImage(t, img.ID)
		}
	})
}

// gitEnv is the git client's environment: no user or system config, an
// empty HOME, a fixed identity, English messages, never a prompt, and
// OpenSSH with this client's key.
func (c *client) gitEnv() []string {
	ssh := strings.Join([]string{
		"ssh", "-F", "/dev/null", "-i", shellQuote(c.key.Private),
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
	}, " ")
	env := append(baseEnv(), "HOME="+c.home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0", "GIT_ASKPASS=", "SSH_ASKPASS=", "LC_ALL=C", "GIT_SSH_COMMAND="+ssh)
	return append(env, gitIdentity...)
}

// gitCmd prepares `git ARGS...` in dir.
func (c *client) gitCmd(ctx context.Context, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = c.gitEnv()
	return cmd
}

// git runs `git ARGS...` in dir and returns what it printed.
func (c *client) git(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
	defer cancel()
	return run(t, c.gitCmd(ctx, dir, args...), nil)
}

// mustGit runs git and fails the test unless it exits 0.
func (c *client) mustGit(t *testing.T, dir string, args ...string) result {
	t.Helper()
	res := c.git(t, dir, args...)
	if res.Code != 0 {
		t.Fatalf("git %s: %s", strings.Join(args, " "), res)
	}
	return res
}

// sshRemote is the SSH remote of app in the CONTRACT's URL form.
func (c *client) sshRemote(app string) string {
	return fmt.Sprintf("ssh://%s@127.0.0.1:%d/%s", c.user, c.srv.sshPort, app)
}

// httpRemote is the smart-HTTP remote of app with token as the password
// ("" for no credentials).
func (s *server) httpRemote(token, app string) string {
	if token == "" {
		return fmt.Sprintf("http://127.0.0.1:%d/%s.git", s.apiPort, app)
	}
	return fmt.Sprintf("http://x:%s@127.0.0.1:%d/%s.git", url.PathEscape(token), s.apiPort, app)
}

// dockerfile is the test app's Dockerfile for version, with extra
// instructions appended.
func dockerfile(version string, extra ...string) string {
	lines := []string{"FROM scratch", "COPY server /server", "ENV VERSION_TAG=" + version}
	lines = append(lines, extra...)
	lines = append(lines, `CMD ["/server"]`)
	return strings.Join(lines, "\n") + "\n"
}

// newAppRepo makes a git repository on branch main holding the test app
// and a Dockerfile for version, committed.
func newAppRepo(t *testing.T, c *client, version string) string {
	t.Helper()
	dir := t.TempDir()
	c.mustGit(t, dir, "init", "-q", "-b", "main")
	bin, err := os.ReadFile(pushApp(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "server"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	commitDockerfile(t, c, dir, version)
	return dir
}

// commitDockerfile rewrites the repository's Dockerfile for version (plus
// extra instructions), commits it and returns the new commit.
func commitDockerfile(t *testing.T, c *client, dir, version string, extra ...string) string {
	t.Helper()
	writeFile(t, filepath.Join(dir, "Dockerfile"), dockerfile(version, extra...))
	c.mustGit(t, dir, "add", "-A")
	c.mustGit(t, dir, "commit", "-q", "--allow-empty", "-m", "version "+version)
	return headRev(t, c, dir)
}

// headRev returns the commit HEAD points to.
func headRev(t *testing.T, c *client, dir string) string {
	t.Helper()
	return strings.TrimSpace(c.mustGit(t, dir, "rev-parse", "HEAD").Stdout)
}

// remoteRef returns what ref points to on remote ("" when it does not exist).
func remoteRef(t *testing.T, c *client, dir, remote, ref string) string {
	t.Helper()
	res := c.mustGit(t, dir, "ls-remote", remote, ref)
	for _, line := range nonEmptyLines(res.Stdout) {
		f := strings.Fields(line)
		if len(f) == 2 && f[1] == ref {
			return f[0]
		}
	}
	return ""
}

// wantDeployed checks a push (or ps:rebuild) exited 0 and printed the
// deploy in Dokku's shape, in order. prefix is "remote: " for a push.
func wantDeployed(t *testing.T, srv *server, res result, app, prefix string) {
	t.Helper()
	if res.Code != 0 {
		t.Fatalf("deploy of %s: exit %d, want 0\n%s", app, res.Code, res)
	}
	out := res.Stdout + res.Stderr
	last := -1
	for _, want := range []string{
		"-----> Building " + app + " from Dockerfile",
		"-----> Releasing " + app + "...",
		"-----> Deploying " + app + "...",
		"=====> Application deployed:",
		"       http://" + app + ".localhost:" + strconv.Itoa(srv.httpPort),
	} {
		i := strings.Index(out, prefix+want)
		switch {
		case i < 0:
			t.Errorf("deploy output lacks %q:\n%s", prefix+want, res)
		case i < last:
			t.Errorf("deploy output has %q out of order:\n%s", want, res)
		default:
			last = i
		}
	}
}

// wantPushRefused checks a push failed: non-zero exit, git's report that
// the hook declined it, and our error line among the remote lines.
func wantPushRefused(t *testing.T, res result, msg string) {
	t.Helper()
	if res.Code == 0 {
		t.Errorf("push exited 0, want a failure\n%s", res)
	}
	if !strings.Contains(res.Stderr, "pre-receive hook declined") {
		t.Errorf("push output lacks %q:\n%s", "pre-receive hook declined", res)
	}
	if !strings.Contains(res.Stderr, "remote: "+errPrefix) {
		t.Errorf("push output lacks an error line %q:\n%s", "remote: "+errPrefix, res)
	}
	if msg != "" && !strings.Contains(res.Stderr, msg) {
		t.Errorf("push output does not mention %q:\n%s", msg, res)
	}
}

// proxyGet asks the proxy for path on host APP.localhost and returns the
// status and body.
func (s *server) proxyGet(app, path string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", s.httpPort, path), nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = app + ".localhost"
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

// wantServes checks the proxy answers 200 with body want on app's host at
// path, polling up to waitTimeout while the answer differs.
func wantServes(t *testing.T, srv *server, app, path, want string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		code, body, err := srv.proxyGet(app, path)
		if err == nil && code == http.StatusOK && body == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET http://%s.localhost%s through the proxy: status %d, body %q, err %v; want 200 %q (waited %v)",
				app, path, code, body, err, want, waitTimeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// wantStillServes checks, once, that the proxy answers 200 with body want:
// for a version that must not have changed.
func wantStillServes(t *testing.T, srv *server, app, want string) {
	t.Helper()
	code, body, err := srv.proxyGet(app, "/")
	if err != nil || code != http.StatusOK || body != want {
		t.Errorf("GET http://%s.localhost/ through the proxy: status %d, body %q, err %v; want 200 %q", app, code, body, err, want)
	}
}

// runningWeb returns the ID of app's one container, failing unless app
// comes to have exactly one container and it runs. Old containers are
// retired in the background after a push returns, so it waits up to 30 s.
func runningWeb(t *testing.T, eng *engine, app string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		list := eng.containers(t, "rivetr.app="+app)
		var ids []string
		for _, c := range list {
			if c.State == "running" {
				ids = append(ids, c.ID)
			}
		}
		if len(list) == 1 && len(ids) == 1 {
			return ids[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("containers of %s: %d (%d running), want exactly 1 running: %+v", app, len(list), len(ids), list)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// buildStepImage matches the image a build step made, as Docker (" ---> ID")
// and Podman ("--> ID") print it.
var buildStepImage = regexp.MustCompile(`(?m)^(?:remote: )?\s*-{2,3}> ([0-9a-f]{12,64})\s*$`)

// removeFailedBuildImages removes, when the test ends, the intermediate
// images a failed build printed after the line holding marker: the engine
// keeps them (untagged, unlabelled) as build cache. Images in use stay: the
// removal is not forced.
func removeFailedBuildImages(t *testing.T, eng *engine, output, marker string) {
	i := strings.Index(output, marker)
	if i < 0 {
		return
	}
	var ids []string
	for _, m := range buildStepImage.FindAllStringSubmatch(output[i:], -1) {
		ids = append(ids, m[1])
	}
	t.Cleanup(func() {
		for j := len(ids) - 1; j >= 0; j-- { // children first
			req, _ := http.NewRequest(http.MethodDelete, "http://engine/images/"+ids[j], nil)
			if resp, err := eng.hc.Do(req); err == nil {
				resp.Body.Close()
			}
		}
	})
}
