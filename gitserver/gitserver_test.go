package gitserver

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rivetr/rivetr/apps"
)

func TestParsePath(t *testing.T) {
	good := map[string]string{"app": "app", "/app": "app", "app.git": "app", "/app.git": "app", "my.app.git": "my.app", "app/": "app"}
	for in, want := range good {
		got, err := ParsePath(in)
		if err != nil || got != want {
			t.Errorf("ParsePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "/", "../etc", "/../etc", "//etc/passwd", "a/b", "a/../b", "App", "a_b", "x;rm", ".git", "..git", "a\x00b", `a\b`} {
		if got, err := ParsePath(in); err == nil {
			t.Errorf("ParsePath(%q) = %q, accepted", in, got)
		}
	}
}

// gitRun runs the real git in dir.
func gitRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// pushed makes a work tree with files, pushes it into app's bare repo and
// returns the commit.
func pushed(t *testing.T, repos *Repos, app string, files map[string]string, extra func(dir string)) string {
	t.Helper()
	if _, err := repos.Ensure(app); err != nil {
		t.Fatal(err)
	}
	// No hook in unit tests: the daemon is not running.
	os.Remove(filepath.Join(repos.Path(app), "hooks", "pre-receive"))
	work := t.TempDir()
	gitRun(t, work, "init", "-q", "-b", "main")
	for name, body := range files {
		os.MkdirAll(filepath.Join(work, filepath.Dir(name)), 0o755)
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		os.WriteFile(filepath.Join(work, name), []byte(body), mode)
	}
	gitRun(t, work, "add", "-A")
	if extra != nil {
		extra(work) // runs after add, so it can stage what add -A would undo
	}
	gitRun(t, work, "commit", "-q", "-m", "c")
	gitRun(t, work, "push", "-q", repos.Path(app), "main")
	return gitRun(t, work, "rev-parse", "HEAD")
}

func newRepos(t *testing.T) *Repos {
	data := t.TempDir()
	return &Repos{Dir: filepath.Join(data, "repos"), DataDir: data, Binary: "/bin/true"}
}

func TestCheckoutModesAndSymlinks(t *testing.T) {
	repos := newRepos(t)
	rev := pushed(t, repos, "web", map[string]string{
		"Dockerfile": "FROM scratch\n", "bin/run.sh": "#!/bin/sh\n", "deep/a/b/c.txt": "c",
	}, func(dir string) {
		os.Symlink("deep/a/b/c.txt", filepath.Join(dir, "link"))
		gitRun(t, dir, "add", "link")
	})
	src := &Source{Repos: repos}
	dir := t.TempDir()
	if err := src.Checkout(context.Background(), "web", rev, dir, false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "deep/a/b/c.txt")); string(b) != "c" {
		t.Errorf("content %q", b)
	}
	if fi, err := os.Stat(filepath.Join(dir, "bin/run.sh")); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("executable bit lost: %v %v", fi.Mode(), err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "link")); err != nil || target != "deep/a/b/c.txt" {
		t.Errorf("symlink %q %v", target, err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
		t.Error(".git present without keep-git-dir")
	}
	got, err := src.Resolve(context.Background(), "web", "main")
	if err != nil || got != rev {
		t.Errorf("Resolve = %q %v", got, err)
	}
	if _, err := src.Resolve(context.Background(), "web", "nope"); !errors.Is(err, apps.ErrNoRelease) {
		t.Errorf("missing branch: %v", err)
	}
	// keep-git-dir clones with history.
	dir2 := t.TempDir()
	if err := src.Checkout(context.Background(), "web", rev, dir2, true); err != nil {
		t.Fatal(err)
	}
	if head := gitRun(t, dir2, "rev-parse", "HEAD"); head != rev {
		t.Errorf("kept .git at %s, want %s", head, rev)
	}
	if err := src.Checkout(context.Background(), "web", "HEAD; rm -rf /", t.TempDir(), false); err == nil {
		t.Error("bad revision accepted")
	}
}

func TestCheckoutRefusesSubmodules(t *testing.T) {
	repos := newRepos(t)
	sub := t.TempDir()
	gitRun(t, sub, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(sub, "f"), []byte("x"), 0o644)
	gitRun(t, sub, "add", "f")
	gitRun(t, sub, "commit", "-q", "-m", "s")
	subRev := gitRun(t, sub, "rev-parse", "HEAD")
	rev := pushed(t, repos, "web", map[string]string{"Dockerfile": "FROM scratch\n"}, func(dir string) {
		// A gitlink entry, as `git submodule add` records it.
		gitRun(t, dir, "update-index", "--add", "--cacheinfo", "160000,"+subRev+",vendor/lib")
	})
	err := (&Source{Repos: repos}).Checkout(context.Background(), "web", rev, t.TempDir(), false)
	if !errors.Is(err, ErrSubmodules) || !strings.Contains(err.Error(), "vendor/lib") {
		t.Fatalf("err = %v", err)
	}
}

func TestEnsureWritesHookAndHead(t *testing.T) {
	repos := newRepos(t)
	repos.Binary = "/opt/it's/rivetr"
	path, err := repos.Ensure("web")
	if err != nil {
		t.Fatal(err)
	}
	hook, err := os.ReadFile(filepath.Join(path, "hooks", "pre-receive"))
	if err != nil || !strings.Contains(string(hook), `'/opt/it'\''s/rivetr' hook pre-receive`) {
		t.Fatalf("hook %q %v", hook, err)
	}
	if _, err := repos.Ensure("Bad"); err == nil {
		t.Error("bad name accepted")
	}
	if err := repos.SetHead("web", "trunk"); err != nil {
		t.Fatal(err)
	}
	if head := gitRun(t, path, "symbolic-ref", "HEAD"); head != "refs/heads/trunk" {
		t.Errorf("HEAD %q", head)
	}
	if err := repos.Rename(context.Background(), "web", "site"); err != nil || !repos.Exists("site") || repos.Exists("web") {
		t.Errorf("rename: %v", err)
	}
	if err := repos.Copy(context.Background(), "site", "copy"); err != nil || !repos.Exists("copy") {
		t.Errorf("copy: %v", err)
	}
	if err := repos.Remove(context.Background(), "site"); err != nil || repos.Exists("site") {
		t.Errorf("remove: %v", err)
	}
}

func TestLinkQuarantineStaysInside(t *testing.T) {
	repos := newRepos(t)
	repos.Ensure("web")
	if err := repos.LinkQuarantine("web", "/tmp"); err == nil {
		t.Error("quarantine outside the repo accepted")
	}
	q := filepath.Join(repos.Path("web"), "objects", "tmp_objdir-incoming-x")
	os.MkdirAll(filepath.Join(q, "ab"), 0o755)
	os.WriteFile(filepath.Join(q, "ab", "cdef"), []byte("obj"), 0o444)
	if err := repos.LinkQuarantine("web", q); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(repos.Path("web"), "objects", "ab", "cdef")); err != nil || string(b) != "obj" {
		t.Errorf("linked object %q %v", b, err)
	}
	// Linking twice (git moves them in later) is fine.
	if err := repos.LinkQuarantine("web", q); err != nil {
		t.Errorf("second link: %v", err)
	}
}
