package gitserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/rivetr/rivetr/apps"
)

// Source implements apps.Source over the bare repositories with go-git,
// in-process: no `git archive` pipe, no shell.
type Source struct {
	Repos *Repos
}

var _ apps.Source = (*Source)(nil)

var revRe = regexp.MustCompile(`^[0-9a-f]{40}$`)

// ErrSubmodules is returned for code that uses git submodules.
var ErrSubmodules = errors.New("git submodules are not supported")

// Resolve returns the commit branch points to.
func (s *Source) Resolve(_ context.Context, app, branch string) (string, error) {
	repo, err := git.PlainOpen(s.Repos.Path(app))
	if err != nil {
		return "", fmt.Errorf("open repository of %s: %w", app, err)
	}
	ref, err := repo.Reference(plumbing.NewBranchReferenceName(branch), true)
	if err != nil {
		return "", apps.Errorf(apps.ErrNoRelease, "Branch %s of %s not found: push it first", branch, app)
	}
	return ref.Hash().String(), nil
}

// Checkout writes the tree of rev into dir.
func (s *Source) Checkout(ctx context.Context, app, rev, dir string, keepGitDir bool) error {
	if !revRe.MatchString(rev) {
		return fmt.Errorf("invalid revision %q", rev)
	}
	path := s.Repos.Path(app)
	if keepGitDir {
		return cloneAt(ctx, path, rev, dir)
	}
	repo, err := git.PlainOpen(path)
	if err != nil {
		return fmt.Errorf("open repository of %s: %w", app, err)
	}
	commit, err := repo.CommitObject(plumbing.NewHash(rev))
	if err != nil {
		return fmt.Errorf("read commit %s of %s: %w", rev[:7], app, err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return fmt.Errorf("read tree of %s: %w", rev[:7], err)
	}
	return extractTree(ctx, repo, tree, dir)
}

// extractTree writes tree into dir, entry by entry. It walks the trees
// itself because go-git's TreeWalker skips submodule entries silently, and
// a submodule must be reported, not dropped.
func extractTree(ctx context.Context, repo *git.Repository, tree *object.Tree, dir string) error {
	return walkTree(ctx, repo, tree, "", dir)
}

// walkTree extracts tree below prefix into dir; with dir "" it only checks
// the entries.
func walkTree(ctx context.Context, repo *git.Repository, tree *object.Tree, prefix, dir string) error {
	for _, entry := range tree.Entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := entry.Name
		if prefix != "" {
			name = prefix + "/" + entry.Name
		}
		if !filepath.IsLocal(name) || strings.Contains(entry.Name, "/") {
			return fmt.Errorf("refusing path %q outside the build dir", name)
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		if dir == "" && entry.Mode != filemode.Dir && entry.Mode != filemode.Submodule {
			continue
		}
		switch entry.Mode {
		case filemode.Dir:
			sub, err := repo.TreeObject(entry.Hash)
			if err != nil {
				return fmt.Errorf("read tree %s: %w", name, err)
			}
			if dir != "" {
				if err := os.MkdirAll(target, 0o755); err != nil {
					return err
				}
			}
			if err := walkTree(ctx, repo, sub, name, dir); err != nil {
				return err
			}
		case filemode.Submodule:
			return fmt.Errorf("%w (found submodule %s); vendor its code into the repository instead", ErrSubmodules, name)
		case filemode.Symlink:
			link, err := readBlob(repo, entry.Hash)
			if err != nil {
				return fmt.Errorf("read symlink %s: %w", name, err)
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return fmt.Errorf("create symlink %s: %w", name, err)
			}
		case filemode.Regular, filemode.Executable, filemode.Deprecated:
			mode := os.FileMode(0o644)
			if entry.Mode == filemode.Executable {
				mode = 0o755
			}
			if err := writeBlob(repo, entry.Hash, target, mode); err != nil {
				return fmt.Errorf("extract %s: %w", name, err)
			}
		default:
			return fmt.Errorf("unsupported tree entry %s (mode %o)", name, uint32(entry.Mode))
		}
	}
	return nil
}

func readBlob(repo *git.Repository, h plumbing.Hash) (string, error) {
	var b strings.Builder
	obj, err := repo.BlobObject(h)
	if err != nil {
		return "", err
	}
	r, err := obj.Reader()
	if err != nil {
		return "", err
	}
	defer r.Close()
	_, err = io.Copy(&b, io.LimitReader(r, 4096))
	return b.String(), err
}

func writeBlob(repo *git.Repository, h plumbing.Hash, target string, mode os.FileMode) error {
	blob, err := repo.BlobObject(h)
	if err != nil {
		return err
	}
	r, err := blob.Reader()
	if err != nil {
		return err
	}
	defer r.Close()
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cloneAt makes dir a repository holding every branch of the bare one and
// checks out rev, keeping .git (git:set APP keep-git-dir true).
func cloneAt(ctx context.Context, repoPath, rev, dir string) error {
	repo, err := git.PlainInit(dir, false)
	if err != nil {
		return fmt.Errorf("clone for build: %w", err)
	}
	remote, err := repo.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{repoPath}})
	if err != nil {
		return fmt.Errorf("clone for build: %w", err)
	}
	err = remote.FetchContext(ctx, &git.FetchOptions{RefSpecs: []config.RefSpec{"+refs/heads/*:refs/remotes/origin/*"}})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return fmt.Errorf("clone for build: %w", err)
	}
	commit, err := repo.CommitObject(plumbing.NewHash(rev))
	if err != nil {
		return fmt.Errorf("read commit %s: %w", rev[:7], err)
	}
	tree, err := commit.Tree()
	if err != nil {
		return err
	}
	// Refuse submodules before checking anything out.
	if err := walkTree(ctx, repo, tree, "", ""); err != nil {
		return err
	}
	wt, err := repo.Worktree()
	if err != nil {
		return err
	}
	if err := wt.Checkout(&git.CheckoutOptions{Hash: commit.Hash, Force: true}); err != nil {
		return fmt.Errorf("check out %s: %w", rev[:7], err)
	}
	return nil
}

// LinkQuarantine makes objects a pre-receive hook sees in git's quarantine
// directory visible in the repository itself (by hard links), so go-git can
// read the pushed revision before git moves them in after the hook.
func (r *Repos) LinkQuarantine(app, quarantine string) error {
	if quarantine == "" {
		return nil
	}
	objects := filepath.Join(r.Path(app), "objects")
	q, err := filepath.Abs(quarantine)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(objects, q)
	if err != nil || !filepath.IsLocal(rel) || strings.Contains(rel, string(filepath.Separator)) {
		return fmt.Errorf("quarantine path %q is not inside %s", quarantine, objects)
	}
	return filepath.WalkDir(q, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		relp, _ := filepath.Rel(q, p)
		target := filepath.Join(objects, relp)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		if err := os.Link(p, target); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("link pushed object %s: %w", relp, err)
		}
		return nil
	})
}
