package e2e

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testImages makes the local base images of the builder tests (once per
// machine; scripts/testimages.sh): "go", "node". Outside CI a missing tool
// skips the test, saying why; in CI it fails.
func testImages(t *testing.T, names ...string) {
	t.Helper()
	imagesMu.Lock()
	defer imagesMu.Unlock()
	cmd := exec.Command("../scripts/testimages.sh", names...)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 && os.Getenv("CI") != "true" {
		t.Skipf("base images for the builder tests cannot be made here: %s", strings.TrimSpace(string(out)))
	}
	t.Fatalf("scripts/testimages.sh %s: %v\n%s", strings.Join(names, " "), err, out)
}

var imagesMu sync.Mutex

// writeTree writes files (name -> content) into dir and removes those
// mapped to "".
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if content == "" {
			if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, content)
	}
}

// commitTree writes files into the repository dir (see writeTree) and
// commits.
func commitTree(t *testing.T, c *client, dir string, files map[string]string, msg string) {
	t.Helper()
	writeTree(t, dir, files)
	c.mustGit(t, dir, "add", "-A")
	c.mustGit(t, dir, "commit", "-q", "--allow-empty", "-m", msg)
}

func newRepo(t *testing.T, c *client, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	c.mustGit(t, dir, "init", "-q", "-b", "main")
	commitTree(t, c, dir, files, "first")
	return dir
}

// wantPushOK checks a push exited 0 and printed each of wants.
func wantPushOK(t *testing.T, res result, wants ...string) {
	t.Helper()
	if res.Code != 0 {
		t.Fatalf("push: exit %d\n%s", res.Code, res)
	}
	for _, w := range wants {
		if !strings.Contains(res.Stdout+res.Stderr, w) {
			t.Errorf("push output lacks %q:\n%s", w, res)
		}
	}
}

// proxyRequest is proxyGet with request headers, returning the response.
func (s *server) proxyRequest(t *testing.T, app, path string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(s.httpPort)+path, nil)
	req.Host = app + ".localhost"
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true, DisableCompression: true}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestStaticSiteNoContainer: a pushed static site is served by the proxy
// itself (no container runs), switches release at once, keeps two trees,
// survives a restart, and builder:plan says so.
func TestStaticSiteNoContainer(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	srv, c := startPushServer(t, eng)
	app := randomName("site")
	cleanupApp(t, srv, eng, app)
	repo := newRepo(t, c, map[string]string{
		"index.html":  "<h1>v1</h1>",
		"app.js":      "console.log(1)",
		"app.js.gz":   "GZ-BYTES",
		"404.html":    "<h1>lost</h1>",
		"docs/a.html": "<p>a</p>",
	})
	res := c.git(t, repo, "push", c.sshRemote(app), "main")
	wantPushOK(t, res, "-----> Building "+app+" as a static site (index.html found)", "static site, no container", "=====> Application deployed (static site):")
	wantServes(t, srv, app, "/", "<h1>v1</h1>")
	wantServes(t, srv, app, "/docs/a.html", "<p>a</p>")
	if cs := eng.containers(t, "rivetr.app="+app); len(cs) != 0 {
		t.Errorf("%d containers run for a static site", len(cs))
	}
	resp, body := srv.proxyRequest(t, app, "/app.js", map[string]string{"Accept-Encoding": "gzip"})
	if body != "GZ-BYTES" || resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("ETag") == "" {
		t.Errorf("precompressed: %q %v", body, resp.Header)
	}
	resp, body = srv.proxyRequest(t, app, "/nope", nil)
	if resp.StatusCode != 404 || body != "<h1>lost</h1>" {
		t.Errorf("404: %d %q", resp.StatusCode, body)
	}
	plan := c.must(t, "builder:plan", app).Stdout
	for _, w := range []string{"Builder:        static", "Container:      none"} {
		if !strings.Contains(plan, w) {
			t.Errorf("builder:plan lacks %q:\n%s", w, plan)
		}
	}

	for _, v := range []string{"v2", "v3"} {
		commitTree(t, c, repo, map[string]string{"index.html": "<h1>" + v + "</h1>"}, v)
		wantPushOK(t, c.git(t, repo, "push", c.sshRemote(app), "main"), "static site")
		wantServes(t, srv, app, "/", "<h1>"+v+"</h1>")
	}
	trees, _ := os.ReadDir(filepath.Join(srv.dataDir, "sites", app))
	if len(trees) != 2 {
		t.Errorf("%d site trees kept, want 2 (current and previous)", len(trees))
	}
	c.must(t, "releases:rollback", app)
	wantServes(t, srv, app, "/", "<h1>v2</h1>")
	wantError(t, c.ssh(t, nil, "run", app, "ls"), 1, "static site")

	srv.stop()
	srv.start()
	wantServes(t, srv, app, "/", "<h1>v2</h1>")
}

// TestBuiltinPacks: a Go app built by the go pack on a local Go base
// image, a Node app by the node pack on Debian's nodejs, and an external
// builder whose CLI is missing failing clearly with the last release
// still serving.
func TestBuiltinPacks(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	testImages(t, "go", "node")
	srv, c := startPushServer(t, eng)
	c.must(t, "buildpacks:set", "--global", "go-image", "rivetr-test/go:local")
	c.must(t, "buildpacks:set", "--global", "go-runtime-image", "scratch")
	c.must(t, "buildpacks:set", "--global", "node-image", "rivetr-test/node:debian")

	t.Run("go", func(t *testing.T) {
		app := randomName("gopack")
		cleanupApp(t, srv, eng, app)
		src, err := os.ReadFile("testdata/pushapp/main.go")
		if err != nil {
			t.Fatal(err)
		}
		repo := newRepo(t, c, map[string]string{"go.mod": "module example.com/pushapp\n\ngo 1.22\n", "main.go": string(src)})
		c.must(t, "apps:create", app)
		c.must(t, "config:set", "--no-restart", app, "VERSION_TAG=gopack")
		res := c.git(t, repo, "push", c.sshRemote(app), "main")
		wantPushOK(t, res, "-----> Building "+app+" with the go pack (go.mod found)", "=====> Application deployed:")
		wantServes(t, srv, app, "/", "hello gopack")
		plan := c.must(t, "builder:plan", app).Stdout
		if !strings.Contains(plan, "FROM rivetr-test/go:local AS build") || !strings.Contains(plan, "FROM scratch") {
			t.Errorf("builder:plan:\n%s", plan)
		}

		// An external builder whose CLI is not installed: a clear error,
		// and v1 keeps serving.
		commitTree(t, c, repo, map[string]string{"nixpacks.toml": "[phases.setup]\n"}, "nixpacks")
		res = c.git(t, repo, "push", c.sshRemote(app), "main")
		wantPushRefused(t, res, "nixpacks is not installed on this server")
		wantServes(t, srv, app, "/", "hello gopack")
	})

	t.Run("node", func(t *testing.T) {
		app := randomName("nodepack")
		cleanupApp(t, srv, eng, app)
		repo := newRepo(t, c, map[string]string{
			"package.json":      `{"name":"web","version":"1.0.0","scripts":{"start":"node server.js"}}`,
			"package-lock.json": `{"name":"web","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{"":{"name":"web","version":"1.0.0"}}}`,
			"server.js":         "require('http').createServer((q, s) => s.end('node ' + process.getuid() + ' ' + process.env.NODE_ENV)).listen(process.env.PORT)\n",
		})
		res := c.git(t, repo, "push", c.sshRemote(app), "main")
		wantPushOK(t, res, "-----> Building "+app+" with the node pack (package.json found)", "=====> Application deployed:")
		wantServes(t, srv, app, "/", "node 1000 production")
	})

	t.Run("static build step", func(t *testing.T) {
		app := randomName("sitebuild")
		cleanupApp(t, srv, eng, app)
		repo := newRepo(t, c, map[string]string{
			"package.json":      `{"name":"site","version":"1.0.0","scripts":{"build":"node build.js"}}`,
			"package-lock.json": `{"name":"site","version":"1.0.0","lockfileVersion":3,"requires":true,"packages":{"":{"name":"site","version":"1.0.0"}}}`,
			"build.js":          "const fs = require('fs'); fs.mkdirSync('dist/assets', {recursive: true}); fs.writeFileSync('dist/index.html', 'built by node ' + process.version); fs.writeFileSync('dist/assets/a.txt', 'asset')\n",
		})
		c.must(t, "apps:create", app)
		c.must(t, "buildpacks:set", app, "static-dir", "dist")
		c.must(t, "buildpacks:set", app, "static-spa", "true")
		res := c.git(t, repo, "push", c.sshRemote(app), "main")
		wantPushOK(t, res, "-----> Running the build step: npm run build", "=====> Application deployed (static site):")
		code, body, err := srv.proxyGet(app, "/")
		if err != nil || code != 200 || !strings.HasPrefix(body, "built by node v") {
			t.Errorf("GET /: %d %q %v", code, body, err)
		}
		wantServes(t, srv, app, "/assets/a.txt", "asset")
		if code, body, _ := srv.proxyGet(app, "/some/page"); code != 200 || !strings.HasPrefix(body, "built by node") {
			t.Errorf("SPA fallback: %d %q", code, body)
		}
		if cs := eng.containers(t, "rivetr.app="+app); len(cs) != 0 {
			t.Errorf("%d containers left by the build step", len(cs))
		}
		if imgs := eng.images(t, "rivetr.app="+app); len(imgs) != 0 {
			t.Errorf("images left by the build step: %v", imgs)
		}
	})
}

// TestBuilderDetectHook: a plugin's builder-detect trigger overrides the
// detection (here: a Dockerfile is present, the plugin says static), and
// builder:set APP selected overrides the plugin.
func TestBuilderDetectHook(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	srv, c := startPushServer(t, eng)
	plugin := filepath.Join(srv.dataDir, "plugins", "detector")
	if err := os.MkdirAll(plugin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plugin, "builder-detect"), []byte("#!/bin/sh\n[ -f \"$2/index.html\" ] && echo static\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	app := randomName("hook")
	cleanupApp(t, srv, eng, app)
	repo := newRepo(t, c, map[string]string{"Dockerfile": "FROM scratch\n", "index.html": "from the hook"})
	wantPushOK(t, c.git(t, repo, "push", c.sshRemote(app), "main"), "as a static site")
	wantServes(t, srv, app, "/", "from the hook")
	c.must(t, "builder:set", app, "selected", "dockerfile")
	if plan := c.must(t, "builder:plan", app).Stdout; !strings.Contains(plan, "Builder:        dockerfile") || !strings.Contains(plan, "selected with builder:set") {
		t.Errorf("builder:plan with selected dockerfile:\n%s", plan)
	}
	wantError(t, c.ssh(t, nil, "builder:set", app, "selected", "heroku"), 1, "unknown builder")
	wantError(t, c.ssh(t, nil, "buildpacks:set", app, "static-dir", "../etc"), 1, "relative path")
}
