package e2e

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// archiveFile is one file of a test archive.
type archiveFile struct {
	name string
	body []byte
	mode int64
}

func tarArchive(t *testing.T, files ...archiveFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(f.body)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// pushAppFiles are the test app and a Dockerfile serving "hello TAG", in
// a top-level directory as release archives have.
func pushAppFiles(t *testing.T, tag string, dockerfileExtra string) []archiveFile {
	bin, err := os.ReadFile(pushApp(t))
	if err != nil {
		t.Fatal(err)
	}
	return []archiveFile{
		{name: "app-" + tag + "/Dockerfile", mode: 0o644, body: []byte("FROM scratch\nCOPY server /server\n" + dockerfileExtra + "ENV VERSION_TAG=" + tag + "\nCMD [\"/server\"]\n")},
		{name: "app-" + tag + "/server", mode: 0o755, body: bin},
	}
}

// TestGitSources: Dokku's other ways to fill an app's repository.
// git:from-image deploys a local image through a FROM Dockerfile;
// git:from-archive deploys a tar read from stdin over SSH and a tar.gz and
// a zip fetched over HTTP; the same input again deploys nothing; a bad
// image, an archive escaping its directory and a failing build leave the
// serving release alone; git:allow-host pins an SSH host's key.
func TestGitSources(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	cli := eng.kind // the engine's own CLI builds and saves the images: docker or podman
	srv, c := startPushServer(t, eng)
	app := randomName("src")
	image := "rivetr-test/" + app + ":v1"
	cleanupApp(t, srv, eng, app)
	c.must(t, "apps:create", app)

	// An image built elsewhere (a CI), deployed as it is.
	buildAppImage(t, cli, image, "img1")
	res := c.must(t, "git:from-image", app, image)
	t.Logf("git:from-image:\n%s", res)
	if !strings.Contains(res.Stdout, "Committed") || !strings.Contains(res.Stdout, "=====> Application deployed:") {
		t.Errorf("git:from-image output:\n%s", res)
	}
	wantServes(t, srv, app, "/", "hello img1")
	if report := c.must(t, "git:report", app).Stdout; !strings.Contains(report, image) {
		t.Errorf("git:report after from-image lacks the image:\n%s", report)
	}
	if r := c.latestRelease(t, app); r.Reason != "from-image" {
		t.Errorf("release reason %q, want from-image", r.Reason)
	}
	repo := filepath.Join(srv.dataDir, "repos", app+".git")
	if got := gitOut(t, repo, "show", "main:Dockerfile"); got != "FROM "+image {
		t.Errorf("Dockerfile in the repository: %q", got)
	}
	n := len(c.releases(t, app))
	res = c.must(t, "git:from-image", app, image)
	if !strings.Contains(res.Stdout, "No changes") || len(c.releases(t, app)) != n {
		t.Errorf("the same image again deployed (%d releases, were %d):\n%s", len(c.releases(t, app)), n, res)
	}
	wantError(t, c.ssh(t, nil, "git:from-image", app, "bad image"), 1, "Invalid image")
	wantError(t, c.ssh(t, nil, "git:from-image", app, "x\nRUN id"), 1, "Invalid image")
	wantError(t, c.ssh(t, nil, "git:from-image", "no-such-app", image), -1, "no-such-app")

	// An image from `docker save` on stdin, which the server does not
	// have: loaded under its name only, then deployed like from-image.
	loaded := "rivetr-test/" + app + "-loaded:v2"
	other := "rivetr-test/" + app + "-other:v2"
	t.Cleanup(func() { exec.Command(cli, "rmi", "-f", other).Run() })
	buildAppImage(t, cli, loaded, "load2")
	saved := saveImages(t, cli, loaded)
	exec.Command(cli, "tag", loaded, other).Run()
	savedTwoNames := saveImages(t, cli, loaded, other)
	if out, err := exec.Command(cli, "rmi", loaded, other).CombinedOutput(); err != nil {
		t.Fatalf("%s rmi: %v\n%s", cli, err, out)
	}
	wantError(t, c.ssh(t, savedTwoNames, "git:load-image", app, loaded), 1, "may carry only the name given")
	wantError(t, c.ssh(t, []byte("not a tar"), "git:load-image", app, loaded), 1, "image archive")
	wantStillServes(t, srv, app, "hello img1")
	res = c.mustIn(t, saved, "git:load-image", app, loaded)
	t.Logf("git:load-image:\n%s", res)
	if !strings.Contains(res.Stdout, "Loaded image") {
		t.Errorf("git:load-image output:\n%s", res)
	}
	wantServes(t, srv, app, "/", "hello load2")
	if r := c.latestRelease(t, app); r.Reason != "load-image" {
		t.Errorf("release reason %q, want load-image", r.Reason)
	}
	// The same archive again: its own image may be replaced; no change to deploy.
	if res := c.mustIn(t, saved, "git:load-image", app, loaded); !strings.Contains(res.Stdout, "No changes") {
		t.Errorf("the same image loaded again:\n%s", res)
	}
	// Another app may not replace an image it did not load (nor any
	// other image on the server: a database's, another app's).
	app2 := randomName("src2")
	cleanupApp(t, srv, eng, app2)
	c.must(t, "apps:create", app2)
	wantError(t, c.ssh(t, saved, "git:load-image", app2, loaded), 1, "did not load it")

	// A newer image: once it is deployed the name of the one before is
	// dropped (its image stays while a kept release is built on it), so
	// a rollback still finds everything.
	v2 := c.latestRelease(t, app).Number
	loaded3 := "rivetr-test/" + app + "-loaded:v3"
	buildAppImage(t, cli, loaded3, "load3")
	saved3 := saveImages(t, cli, loaded3)
	exec.Command(cli, "rmi", loaded3).Run()
	c.mustIn(t, saved3, "git:load-image", app, loaded3)
	wantServes(t, srv, app, "/", "hello load3")
	if err := exec.Command(cli, "image", "inspect", loaded).Run(); err == nil {
		t.Errorf("%s is still tagged after %s replaced it", loaded, loaded3)
	}
	c.must(t, "releases:rollback", app, strconv.Itoa(v2))
	wantServes(t, srv, app, "/", "hello load2")

	// A tar on stdin over SSH, with an author.
	res = c.mustIn(t, tarArchive(t, pushAppFiles(t, "arc1", "")...), "git:from-archive", app, "--", "Camila", "camila@example.com")
	wantServes(t, srv, app, "/", "hello arc1")
	if got := gitOut(t, repo, "log", "-1", "--format=%an <%ae>"); got != "Camila <camila@example.com>" {
		t.Errorf("author %q", got)
	}
	if got := gitOut(t, repo, "ls-tree", "--format=%(objectmode) %(path)", "main"); got != "100644 Dockerfile\n100755 server" {
		t.Errorf("tree of the archive commit (top directory hoisted, modes kept):\n%s", got)
	}

	// A tar.gz and a zip from an HTTP server (a release download).
	var targz, zipped bytes.Buffer
	zw := gzip.NewWriter(&targz)
	zw.Write(tarArchive(t, pushAppFiles(t, "arc2", "")...))
	zw.Close()
	zipw := zip.NewWriter(&zipped)
	for _, f := range pushAppFiles(t, "arc3", "COPY missing-file /x\n") {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate}
		h.SetMode(os.FileMode(f.mode))
		w, _ := zipw.CreateHeader(h)
		w.Write(f.body)
	}
	zipw.Close()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/app.tar.gz":
			w.Write(targz.Bytes())
		case "/broken.zip":
			w.Write(zipped.Bytes())
		default:
			http.NotFound(w, r)
		}
	}))
	defer web.Close()
	c.must(t, "git:from-archive", "--archive-type", "tar.gz", app, web.URL+"/app.tar.gz")
	wantServes(t, srv, app, "/", "hello arc2")
	report := c.must(t, "git:report", app).Stdout
	if !strings.Contains(report, "Git source archive:") || !strings.Contains(report, web.URL+"/app.tar.gz") || strings.Contains(report, image) {
		t.Errorf("git:report after from-archive:\n%s", report)
	}
	res = c.must(t, "git:from-archive", "--archive-type", "tar.gz", app, web.URL+"/app.tar.gz")
	if !strings.Contains(res.Stdout, "No changes") {
		t.Errorf("the same archive again:\n%s", res)
	}

	// Refused before anything is built, or failing in the build: arc2 serves on.
	head := gitOut(t, repo, "rev-parse", "main")
	evil := tarArchive(t, archiveFile{name: "../../evil", mode: 0o644, body: []byte("x")})
	res = c.ssh(t, evil, "git:from-archive", app, "--")
	t.Logf("an archive escaping its directory:\n%s", res)
	wantError(t, res, 1, "points outside the archive")
	wantError(t, c.ssh(t, nil, "git:from-archive", app, web.URL+"/missing.tar"), 1, "404")
	wantError(t, c.ssh(t, nil, "git:from-archive", app, "file:///etc/passwd"), 1, "Invalid archive URL")
	wantError(t, c.ssh(t, nil, "git:from-archive", "--archive-type", "rar", app, web.URL+"/app.tar.gz"), 1, "Invalid archive type")
	wantError(t, c.ssh(t, []byte("not an archive"), "git:from-archive", app, "--"), 1, "archive")
	if got := gitOut(t, repo, "rev-parse", "main"); got != head {
		t.Errorf("a refused archive moved main from %s to %s", head, got)
	}
	res = c.ssh(t, nil, "git:from-archive", "--archive-type", "zip", app, web.URL+"/broken.zip")
	t.Logf("a zip whose build fails:\n%s", res)
	if res.Code == 0 || !strings.Contains(res.Stderr+res.Stdout, "missing-file") {
		t.Errorf("a zip whose build fails:\n%s", res)
	}
	wantStillServes(t, srv, app, "hello arc2")
	if got := gitOut(t, repo, "rev-parse", "main"); got != head {
		t.Errorf("a failed deploy moved main from %s to %s (a failed push leaves it)", head, got)
	}
	if res := c.must(t, "git:from-archive", "--archive-type", "tar.gz", app, web.URL+"/app.tar.gz"); !strings.Contains(res.Stdout, "No changes") {
		t.Errorf("main should still hold arc2's files:\n%s", res)
	}

	// git:allow-host pins a host's key before any sync: rivetr's own SSH server.
	res = c.must(t, "git:allow-host", srv.sshAddr())
	if !strings.Contains(res.Stdout, "Trusted") {
		t.Errorf("git:allow-host:\n%s", res)
	}
	known, err := os.ReadFile(filepath.Join(srv.dataDir, "ssh_known_hosts"))
	if err != nil || !strings.Contains(string(known), "[127.0.0.1]:") {
		t.Errorf("ssh_known_hosts: %q %v", known, err)
	}
	if res := c.must(t, "git:allow-host", srv.sshAddr()); !strings.Contains(res.Stdout, "trusted already") {
		t.Errorf("git:allow-host again:\n%s", res)
	}
	wantError(t, c.ssh(t, nil, "git:allow-host", "bad host;id"), 1, "Invalid host")
}

// buildAppImage builds, with the engine's CLI, an image of the test app
// serving "hello TAG", removed when the test ends.
func buildAppImage(t *testing.T, cli, image, tag string) {
	t.Helper()
	t.Cleanup(func() { exec.Command(cli, "rmi", "-f", image).Run() })
	dir := t.TempDir()
	for _, f := range pushAppFiles(t, tag, "") {
		os.WriteFile(filepath.Join(dir, filepath.Base(f.name)), f.body, os.FileMode(f.mode))
	}
	if out, err := exec.Command(cli, "build", "-q", "-t", image, dir).CombinedOutput(); err != nil {
		t.Fatalf("%s build: %v\n%s", cli, err, out)
	}
}

// saveImages is `CLI save IMAGES...` (one archive for all the names).
func saveImages(t *testing.T, cli string, images ...string) []byte {
	t.Helper()
	out, err := exec.Command(cli, append([]string{"save"}, images...)...).Output()
	if err != nil {
		t.Fatalf("%s save %v: %v", cli, images, err)
	}
	return out
}

// gitOut runs git in dir and returns its trimmed output.
func gitOut(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}
