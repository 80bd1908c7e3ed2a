package commands

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rivetr/rivetr/apps"
	"github.com/rivetr/rivetr/store"
)

// fakeSources plays gitserver.Repos for git:from-*: one commit r2 made
// after r1, and a branch that sits at head.
type fakeSources struct {
	head  string
	moved []string // SetBranch calls: "rev from old"
}

func (f *fakeSources) FromImage(context.Context, string, string, string, apps.GitAuthor) (string, string, bool, error) {
	return "r2", "r1", true, nil
}

func (f *fakeSources) FromArchive(context.Context, string, string, string, io.Reader, string, apps.GitAuthor) (string, string, bool, error) {
	return "r2", "r1", true, nil
}

func (f *fakeSources) SetBranch(_ context.Context, _, _, rev, old string) error {
	f.moved = append(f.moved, rev+" from "+old)
	f.head = rev
	return nil
}

func (f *fakeSources) RefRev(string, string) (string, error) { return f.head, nil }

func (f *fakeSources) CommitFiles(context.Context, string, string, map[string][]byte, string) (string, error) {
	return "", nil
}

// deployRecorder runs a deploy's Precheck and OnSuccess as apps.Deployer
// does around a build it does not make.
type deployRecorder struct {
	deployer // only Deploy is called
	deployed []string
}

func (f *deployRecorder) Deploy(_ context.Context, req apps.DeployRequest) error {
	if req.Precheck != nil {
		if err := req.Precheck(); err != nil {
			return err
		}
	}
	f.deployed = append(f.deployed, req.Rev+" "+req.Reason)
	if req.OnSuccess != nil {
		req.OnSuccess()
	}
	return nil
}

func TestFromSourceMovesTheBranchOnlyAfterTheDeploy(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(context.Background(), filepath.Join(dir, "rivetr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	src := &fakeSources{head: "r1"}
	dep := &deployRecorder{}
	reg := NewRegistry()
	RegisterCore(reg, Deps{Apps: apps.NewService(db), Deployer: dep, Version: "test", DataDir: dir, Repos: src})
	h := &harness{t: t, reg: reg}
	h.ok("apps:create", "web")

	out := h.ok("git:from-image", "web", "me/web:1")
	if !strings.Contains(out, "Committed r2 after the main branch of web") || len(dep.deployed) != 1 || dep.deployed[0] != "r2 from-image" {
		t.Errorf("from-image: %q, deployed %v", out, dep.deployed)
	}
	if len(src.moved) != 1 || src.moved[0] != "r2 from r1" {
		t.Errorf("branch moves: %v", src.moved)
	}
	if b := h.ok("git:report", "web", "--git-deploy-branch"); strings.TrimSpace(b) != "main" {
		t.Errorf("deploy branch %q", b)
	}
	if r := h.ok("git:report", "web", "--git-source-image"); strings.TrimSpace(r) != "me/web:1" {
		t.Errorf("git-source-image %q", r)
	}

	// The branch moved (a push) while the deploy waited: refused, nothing moved.
	src.head, src.moved = "r9", nil
	h.fails(1, "moved while this waited", "git:from-archive", "web", "--")
	if len(src.moved) != 0 || len(dep.deployed) != 1 {
		t.Errorf("after the refusal: moves %v, deploys %v", src.moved, dep.deployed)
	}
	h.ok("builder:set", "web", "selected", "static")
	h.fails(1, "needs the Dockerfile builder", "git:from-image", "web", "me/web:2")
	h.ok("builder:set", "web", "selected", "dockerfile")
	h.fails(1, "Usage", "git:from-image", "web")
	h.fails(1, "Usage", "git:from-archive", "web", "--", "only-a-name")
	h.fails(20, "App nope does not exist", "git:from-image", "nope", "me/web:1")
}
