package gitserver

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
)

// CommitFiles writes a commit holding exactly files (at the root) on
// branch of app's repository, after its current head, with go-git and no
// hooks (templates:deploy puts a compose file there this way). It returns
// the new commit.
func (r *Repos) CommitFiles(_ context.Context, app, branch string, files map[string][]byte, message string) (string, error) {
	if _, err := r.Ensure(app); err != nil {
		return "", err
	}
	repo, err := git.PlainOpen(r.Path(app))
	if err != nil {
		return "", fmt.Errorf("open repository of %s: %w", app, err)
	}
	st := repo.Storer
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var tree object.Tree
	for _, n := range names {
		obj := st.NewEncodedObject()
		obj.SetType(plumbing.BlobObject)
		w, err := obj.Writer()
		if err != nil {
			return "", err
		}
		if _, err := w.Write(files[n]); err != nil {
			return "", err
		}
		w.Close()
		h, err := st.SetEncodedObject(obj)
		if err != nil {
			return "", err
		}
		tree.Entries = append(tree.Entries, object.TreeEntry{Name: n, Mode: filemode.Regular, Hash: h})
	}
	tobj := st.NewEncodedObject()
	if err := tree.Encode(tobj); err != nil {
		return "", err
	}
	th, err := st.SetEncodedObject(tobj)
	if err != nil {
		return "", err
	}
	ref := plumbing.NewBranchReferenceName(branch)
	var parents []plumbing.Hash
	if cur, err := st.Reference(ref); err == nil {
		parents = []plumbing.Hash{cur.Hash()}
	}
	sig := object.Signature{Name: "rivetr", Email: "rivetr@localhost", When: time.Now()}
	c := object.Commit{Author: sig, Committer: sig, Message: message, TreeHash: th, ParentHashes: parents}
	cobj := st.NewEncodedObject()
	if err := c.Encode(cobj); err != nil {
		return "", err
	}
	ch, err := st.SetEncodedObject(cobj)
	if err != nil {
		return "", err
	}
	if err := st.SetReference(plumbing.NewHashReference(ref, ch)); err != nil {
		return "", err
	}
	return ch.String(), r.SetHead(app, branch)
}
