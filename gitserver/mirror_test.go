package gitserver

import (
	"context"
	"crypto/subtle"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rivetr/rivetr/apps"
	"github.com/rivetr/rivetr/store"
)

// upstream is a private repository served over smart HTTP by the real
// `git http-backend`, behind basic auth: it plays GitHub's part.
type upstream struct {
	work string // a clone to commit and push from
	url  string
}

func newUpstream(t *testing.T, user, token string) *upstream {
	t.Helper()
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not installed")
	}
	root := t.TempDir()
	bare := filepath.Join(root, "hello.git")
	gitRun(t, root, "init", "-q", "--bare", "-b", "main", bare)
	gitRun(t, bare, "config", "http.receivepack", "true")
	backend := &cgi.Handler{Path: gitPath, Args: []string{"http-backend"},
		Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u+":"+p), []byte(user+":"+token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="upstream"`)
			http.Error(w, "auth", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	up := &upstream{work: filepath.Join(root, "work"), url: srv.URL + "/hello.git"}
	gitRun(t, root, "init", "-q", "-b", "main", up.work)
	gitRun(t, up.work, "remote", "add", "origin", bare)
	return up
}

// commit writes file=content, commits and pushes branch; it returns the rev.
func (u *upstream) commit(t *testing.T, branch, file, content string, push ...string) string {
	t.Helper()
	if err := os.WriteFile(filepath.Join(u.work, file), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	gitRun(t, u.work, "add", "-A")
	gitRun(t, u.work, "commit", "-q", "-m", "change "+file)
	gitRun(t, u.work, append([]string{"push", "-q", "-f", "origin", "HEAD:" + branch}, push...)...)
	return gitRun(t, u.work, "rev-parse", "HEAD")
}

func newMirror(t *testing.T) (*Mirror, *store.SQLite) {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(context.Background(), filepath.Join(dir, "rivetr.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := apps.NewService(db)
	if _, err := svc.Create(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	repos := &Repos{Dir: filepath.Join(dir, "repos"), DataDir: dir, Binary: "/bin/true"}
	return &Mirror{Repos: repos, Apps: svc, Store: db, KnownHosts: KnownHostsPath(dir)}, db
}

func TestSyncPrivateHTTPSRepository(t *testing.T) {
	ctx := context.Background()
	up := newUpstream(t, "deployer", "tok-123")
	first := up.commit(t, "main", "a.txt", "one")
	m, db := newMirror(t)

	// No login yet: refused, with what to do.
	_, err := m.Sync(ctx, "web", up.url, "", io.Discard)
	if err == nil || !strings.Contains(err.Error(), "git:auth") {
		t.Fatalf("sync without a login: %v", err)
	}
	if strings.Contains(err.Error(), "tok-123") {
		t.Fatalf("error shows the token: %v", err)
	}
	host := strings.TrimPrefix(strings.Split(up.url, "/hello.git")[0], "http://")
	if err := db.SetGitCredential(ctx, apps.GitCredential{Host: host, User: "deployer", Token: "tok-123"}); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	res, err := m.Sync(ctx, "web", up.url, "", &out)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rev != first || res.Previous != "" || res.Branch != "main" || res.Ref != "refs/heads/main" || !res.Changed() {
		t.Errorf("first sync %+v", res)
	}
	if rev, _ := m.Repos.RefRev("web", "refs/heads/main"); rev != first {
		t.Errorf("main of web is %s, want %s", rev, first)
	}
	if b, _ := m.Apps.Setting(ctx, "web", "git", apps.GitDeployBranch, ""); b != "main" {
		t.Errorf("deploy branch %q", b)
	}
	if !strings.Contains(out.String(), "now at "+first[:7]) {
		t.Errorf("output %q", out.String())
	}
	// Nothing new: unchanged.
	res, err = m.Sync(ctx, "web", up.url, "main", io.Discard)
	if err != nil || res.Changed() {
		t.Errorf("second sync %+v %v", res, err)
	}
	// A force-push upstream moves the branch too.
	gitRun(t, up.work, "reset", "-q", "--hard", "HEAD")
	gitRun(t, up.work, "checkout", "-q", "--orphan", "rewrite")
	rewritten := up.commit(t, "main", "b.txt", "rewritten")
	res, err = m.Sync(ctx, "web", up.url, "main", io.Discard)
	if err != nil || res.Rev != rewritten || res.Previous != first {
		t.Errorf("sync after a force-push %+v %v", res, err)
	}
	// Another branch, an annotated tag and a commit land in the deploy branch.
	other := up.commit(t, "staging", "c.txt", "staging")
	if res, err := m.Sync(ctx, "web", up.url, "staging", io.Discard); err != nil || res.Rev != other || res.Branch != "main" {
		t.Errorf("sync of staging %+v %v", res, err)
	}
	gitRun(t, up.work, "tag", "-a", "-m", "v1", "v1", rewritten)
	gitRun(t, up.work, "push", "-q", "origin", "v1")
	if res, err := m.Sync(ctx, "web", up.url, "v1", io.Discard); err != nil || res.Rev != rewritten || res.Ref != "refs/tags/v1" {
		t.Errorf("sync of tag v1 %+v %v", res, err)
	}
	if res, err := m.Sync(ctx, "web", up.url, other, io.Discard); err != nil || res.Rev != other {
		t.Errorf("sync of a commit %+v %v", res, err)
	}
	if _, err := m.Sync(ctx, "web", up.url, "no-such-branch", io.Discard); err == nil {
		t.Error("sync of a missing branch succeeded")
	}
	// The temporary refs of the fetches are gone.
	refs := gitRun(t, m.Repos.Path("web"), "for-each-ref", "--format=%(refname)")
	if refs != "refs/heads/main" {
		t.Errorf("refs left in the app's repository: %q", refs)
	}
	// Bad input is refused before anything runs.
	for _, u := range []string{"/etc", "file:///srv/x.git", "-oProxyCommand=x"} {
		if _, err := m.Sync(ctx, "web", u, "", io.Discard); err == nil {
			t.Errorf("sync from %q accepted", u)
		}
	}
	if _, err := m.Sync(ctx, "web", up.url, "--upload-pack=x", io.Discard); err == nil {
		t.Error("a ref starting with - accepted")
	}
}

func TestSyncSSHNeedsADeployKey(t *testing.T) {
	m, _ := newMirror(t)
	_, err := m.Sync(context.Background(), "web", "git@127.0.0.1:octo/hello.git", "", io.Discard)
	if err == nil || !strings.Contains(err.Error(), "git:generate-deploy-key web") {
		t.Fatalf("ssh sync without a deploy key: %v", err)
	}
	k, err := GenerateDeployKey("web")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.Public, "ssh-ed25519 ") || !strings.HasSuffix(k.Public, " rivetr-web") || !strings.Contains(k.Private, "OPENSSH PRIVATE KEY") {
		t.Errorf("deploy key %q", k.Public)
	}
}
