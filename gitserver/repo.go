package gitserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/rivetr/rivetr/apps"
	"github.com/rivetr/rivetr/envfile"
)

// Repos manages the bare repositories at Dir/APP.git.
type Repos struct {
	Dir     string // $RIVETR_DATA_DIR/repos
	DataDir string // written into hooks so they find the daemon's socket
	Binary  string // the rivetr binary the hooks run
}

// ParsePath turns a remote path ("/app.git", "app", "'app.git'") into an
// app name, refusing anything else: "..", absolute or nested paths, bad names.
func ParsePath(p string) (string, error) {
	p = strings.TrimPrefix(p, "/")
	p = strings.TrimSuffix(p, "/")
	p = strings.TrimSuffix(p, ".git")
	if p == "" || strings.Contains(p, "/") || strings.Contains(p, "..") || strings.ContainsAny(p, "\\\x00") {
		return "", apps.Errorf(apps.ErrInvalidName, "Invalid repository path %q: use APP or APP.git", clip(p))
	}
	if err := apps.ValidateAppName(p); err != nil {
		return "", err
	}
	return p, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Path is the repository of app; app must be a valid name.
func (r *Repos) Path(app string) string {
	return filepath.Join(r.Dir, app+".git")
}

// Exists reports whether app has a repository.
func (r *Repos) Exists(app string) bool {
	_, err := os.Stat(filepath.Join(r.Path(app), "objects"))
	return err == nil
}

// Ensure creates app's bare repository when missing and (re)writes its
// pre-receive hook, so the hook always runs the current binary.
func (r *Repos) Ensure(app string) (string, error) {
	if err := apps.ValidateAppName(app); err != nil {
		return "", err
	}
	path := r.Path(app)
	if !r.Exists(app) {
		if err := os.MkdirAll(r.Dir, 0o700); err != nil {
			return "", fmt.Errorf("create repos dir: %w", err)
		}
		repo, err := git.PlainInit(path, true)
		if err != nil && !errors.Is(err, git.ErrRepositoryAlreadyExists) {
			return "", fmt.Errorf("init repository of %s: %w", app, err)
		}
		if repo != nil {
			cfg, err := repo.Config()
			if err == nil {
				cfg.Raw.Section("http").SetOption("receivepack", "true")
				cfg.Raw.Section("receive").SetOption("denyDeleteCurrent", "warn")
				repo.SetConfig(cfg)
			}
		}
	}
	hook := "#!/bin/sh\n# Written by rivetr: hands the pushed refs to the daemon, which builds and deploys.\n" +
		"RIVETR_DATA_DIR=" + envfile.Quote(r.DataDir) + " exec " + envfile.Quote(r.Binary) + " hook pre-receive\n"
	hookPath := filepath.Join(path, "hooks", "pre-receive")
	if cur, err := os.ReadFile(hookPath); err != nil || string(cur) != hook {
		if err := os.MkdirAll(filepath.Dir(hookPath), 0o755); err != nil {
			return "", fmt.Errorf("write hook: %w", err)
		}
		tmp := hookPath + ".tmp"
		if err := os.WriteFile(tmp, []byte(hook), 0o755); err != nil {
			return "", fmt.Errorf("write hook: %w", err)
		}
		if err := os.Rename(tmp, hookPath); err != nil {
			return "", fmt.Errorf("write hook: %w", err)
		}
	}
	return path, nil
}

// Remove deletes app's repository.
func (r *Repos) Remove(_ context.Context, app string) error {
	if err := apps.ValidateAppName(app); err != nil {
		return err
	}
	if err := os.RemoveAll(r.Path(app)); err != nil {
		return fmt.Errorf("remove repository of %s: %w", app, err)
	}
	return nil
}

// Rename moves a repository to a new app name.
func (r *Repos) Rename(_ context.Context, oldName, newName string) error {
	if err := apps.ValidateAppName(oldName); err != nil {
		return err
	}
	if err := apps.ValidateAppName(newName); err != nil {
		return err
	}
	if !r.Exists(oldName) {
		return nil
	}
	if err := os.Rename(r.Path(oldName), r.Path(newName)); err != nil {
		return fmt.Errorf("move repository of %s: %w", oldName, err)
	}
	return nil
}

// Copy copies src's repository (objects, refs, config) to dst, for apps:clone.
func (r *Repos) Copy(_ context.Context, src, dst string) error {
	if !r.Exists(src) {
		return nil
	}
	from, to := r.Path(src), r.Path(dst)
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		target := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
	if err != nil {
		return fmt.Errorf("copy repository of %s: %w", src, err)
	}
	_, err = r.Ensure(dst)
	return err
}

// SetHead points the repository's HEAD at branch, so a clone checks out
// the deploy branch.
func (r *Repos) SetHead(app, branch string) error {
	repo, err := git.PlainOpen(r.Path(app))
	if err != nil {
		return fmt.Errorf("open repository of %s: %w", app, err)
	}
	head := plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName(branch))
	if cur, err := repo.Storer.Reference(plumbing.HEAD); err == nil && cur.Target() == head.Target() {
		return nil
	}
	if err := repo.Storer.SetReference(head); err != nil {
		return fmt.Errorf("set HEAD of %s: %w", app, err)
	}
	return nil
}

// RefRev returns the commit a ref points to.
func (r *Repos) RefRev(app, ref string) (string, error) {
	repo, err := git.PlainOpen(r.Path(app))
	if err != nil {
		return "", err
	}
	h, err := repo.Reference(plumbing.ReferenceName(ref), true)
	if err != nil {
		return "", err
	}
	return h.Hash().String(), nil
}
