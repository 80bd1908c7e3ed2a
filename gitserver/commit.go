package gitserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"

	"github.com/rivetr/rivetr/apps"
)

// validateAuthor checks an author given on the command line: no line
// breaks or angle brackets, which would corrupt the commit header.
func validateAuthor(a apps.GitAuthor) error {
	for _, v := range []string{a.Name, a.Email} {
		if len(v) > 200 || strings.ContainsAny(v, "<>\r\n\x00") {
			return apps.Errorf(apps.ErrInvalidName, "Invalid git author %q: use up to 200 characters without <, > or line breaks", clip(v))
		}
	}
	return nil
}

func signature(a apps.GitAuthor) object.Signature {
	sig := object.Signature{Name: "rivetr", Email: "rivetr@localhost", When: time.Now()}
	if a.Name != "" {
		sig.Name = a.Name
	}
	if a.Email != "" {
		sig.Email = a.Email
	}
	return sig
}

// CommitFiles writes a commit holding exactly files (at the root) on
// branch of app's repository, after its current head, with go-git and no
// hooks (templates:deploy puts a compose file there this way). It returns
// the new commit.
func (r *Repos) CommitFiles(ctx context.Context, app, branch string, files map[string][]byte, message string) (string, error) {
	repo, err := r.open(app)
	if err != nil {
		return "", err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var tree object.Tree
	for _, n := range names {
		h, err := writeObject(repo.Storer, plumbing.BlobObject, bytes.NewReader(files[n]))
		if err != nil {
			return "", err
		}
		tree.Entries = append(tree.Entries, object.TreeEntry{Name: n, Mode: filemode.Regular, Hash: h})
	}
	th, err := encodeObject(repo.Storer, &tree)
	if err != nil {
		return "", err
	}
	head, err := branchHead(repo, app, branch)
	if err != nil {
		return "", err
	}
	h, err := newCommit(repo.Storer, th, head, message, apps.GitAuthor{})
	if err != nil {
		return "", err
	}
	old := ""
	if head != nil {
		old = head.Hash.String()
	}
	return h.String(), r.SetBranch(ctx, app, branch, h.String(), old)
}

// CommitDir writes a commit holding the tree under dir (files, their
// executable bit, symlinks; .git left out) after the head of branch in
// app's repository, without moving the branch: SetBranch does, once the
// commit deployed. parent is the head it was made on ("" for none). When
// the tree is the head's already, nothing is written, rev is the head and
// changed is false. git:from-image and git:from-archive fill an app's
// repository this way.
func (r *Repos) CommitDir(_ context.Context, app, branch, dir, message string, author apps.GitAuthor) (rev, parent string, changed bool, err error) {
	if err := validateAuthor(author); err != nil {
		return "", "", false, err
	}
	repo, err := r.open(app)
	if err != nil {
		return "", "", false, err
	}
	th, err := writeTree(repo.Storer, dir)
	if err != nil {
		return "", "", false, fmt.Errorf("write the files of %s: %w", app, err)
	}
	head, err := branchHead(repo, app, branch)
	if err != nil {
		return "", "", false, err
	}
	if head != nil {
		parent = head.Hash.String()
		if head.TreeHash == th {
			return parent, parent, false, nil
		}
	}
	h, err := newCommit(repo.Storer, th, head, message, author)
	if err != nil {
		return "", "", false, err
	}
	return h.String(), parent, true, nil
}

// SetBranch moves branch of app's repository to rev, only from old (""
// for a branch that does not exist yet): a push landing meanwhile is never
// overwritten.
func (r *Repos) SetBranch(_ context.Context, app, branch, rev, old string) error {
	repo, err := r.open(app)
	if err != nil {
		return err
	}
	var cur *plumbing.Reference
	ref := plumbing.NewBranchReferenceName(branch)
	if old != "" {
		cur = plumbing.NewHashReference(ref, plumbing.NewHash(old))
	}
	if err := repo.Storer.CheckAndSetReference(plumbing.NewHashReference(ref, plumbing.NewHash(rev)), cur); err != nil {
		return fmt.Errorf("move branch %s of %s to %s (a push landed meanwhile?): %w", branch, app, apps.ShortRev(rev), err)
	}
	return r.SetHead(app, branch)
}

// branchHead is the commit at branch, nil when there is no such branch.
func branchHead(repo *git.Repository, app, branch string) (*object.Commit, error) {
	cur, err := repo.Storer.Reference(plumbing.NewBranchReferenceName(branch))
	if errors.Is(err, plumbing.ErrReferenceNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read branch %s of %s: %w", branch, app, err)
	}
	c, err := repo.CommitObject(cur.Hash())
	if err != nil {
		return nil, fmt.Errorf("read the head of %s of %s: %w", branch, app, err)
	}
	return c, nil
}

// newCommit stores a commit of tree th after parent (nil: a root commit).
func newCommit(st storer.EncodedObjectStorer, th plumbing.Hash, parent *object.Commit, message string, author apps.GitAuthor) (plumbing.Hash, error) {
	sig := signature(author)
	c := &object.Commit{Author: sig, Committer: sig, Message: message, TreeHash: th}
	if parent != nil {
		c.ParentHashes = []plumbing.Hash{parent.Hash}
	}
	return encodeObject(st, c)
}

func (r *Repos) open(app string) (*git.Repository, error) {
	if _, err := r.Ensure(app); err != nil {
		return nil, err
	}
	repo, err := git.PlainOpen(r.Path(app))
	if err != nil {
		return nil, fmt.Errorf("open repository of %s: %w", app, err)
	}
	return repo, nil
}

// encodable is an object go-git can write (a tree, a commit).
type encodable interface {
	Encode(plumbing.EncodedObject) error
}

func encodeObject(st storer.EncodedObjectStorer, o encodable) (plumbing.Hash, error) {
	obj := st.NewEncodedObject()
	if err := o.Encode(obj); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(obj)
}

func writeObject(st storer.EncodedObjectStorer, t plumbing.ObjectType, content io.Reader) (plumbing.Hash, error) {
	obj := st.NewEncodedObject()
	obj.SetType(t)
	w, err := obj.Writer()
	if err != nil {
		return plumbing.ZeroHash, err
	}
	if _, err := io.Copy(w, content); err != nil {
		w.Close()
		return plumbing.ZeroHash, err
	}
	if err := w.Close(); err != nil {
		return plumbing.ZeroHash, err
	}
	return st.SetEncodedObject(obj)
}

// writeTree stores dir's files and subdirectories as git objects and
// returns the tree's hash. Entries are sorted as git sorts them (a
// directory as its name plus "/"); anything but regular files, symlinks
// and directories is refused.
func writeTree(st storer.EncodedObjectStorer, dir string) (plumbing.Hash, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return plumbing.ZeroHash, err
	}
	var tree object.Tree
	for _, e := range entries {
		if e.Name() == ".git" {
			continue
		}
		p := filepath.Join(dir, e.Name())
		var te object.TreeEntry
		switch t := e.Type(); {
		case t.IsDir():
			h, err := writeTree(st, p)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			te = object.TreeEntry{Name: e.Name(), Mode: filemode.Dir, Hash: h}
		case t&os.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			h, err := writeObject(st, plumbing.BlobObject, strings.NewReader(target))
			if err != nil {
				return plumbing.ZeroHash, err
			}
			te = object.TreeEntry{Name: e.Name(), Mode: filemode.Symlink, Hash: h}
		case t.IsRegular():
			info, err := e.Info()
			if err != nil {
				return plumbing.ZeroHash, err
			}
			f, err := os.Open(p)
			if err != nil {
				return plumbing.ZeroHash, err
			}
			h, err := writeObject(st, plumbing.BlobObject, f)
			f.Close()
			if err != nil {
				return plumbing.ZeroHash, fmt.Errorf("%s: %w", e.Name(), err)
			}
			mode := filemode.Regular
			if info.Mode()&0o111 != 0 {
				mode = filemode.Executable
			}
			te = object.TreeEntry{Name: e.Name(), Mode: mode, Hash: h}
		default:
			return plumbing.ZeroHash, fmt.Errorf("%s is not a file, directory or symlink", e.Name())
		}
		if te.Mode == filemode.Dir && te.Hash == emptyTree {
			continue // git keeps no empty directories
		}
		tree.Entries = append(tree.Entries, te)
	}
	sort.Slice(tree.Entries, func(i, j int) bool { return treeKey(tree.Entries[i]) < treeKey(tree.Entries[j]) })
	return encodeObject(st, &tree)
}

// emptyTree is the hash of a tree with no entries.
var emptyTree = plumbing.NewHash("4b825dc642cb6eb9a060e54bf8d69288fbee4904")

func treeKey(e object.TreeEntry) string {
	if e.Mode == filemode.Dir {
		return e.Name + "/"
	}
	return e.Name
}
