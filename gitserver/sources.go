package gitserver

import (
	"context"
	"io"
	"os"
	"path/filepath"

	"github.com/rivetr/rivetr/apps"
)

// FromImage commits a Dockerfile holding only `FROM image` after branch's
// head in app's repository (CommitDir), Dokku's git:from-image: the app is
// built from (and runs) the image. changed is false when the branch holds
// exactly that already.
func (r *Repos) FromImage(ctx context.Context, app, branch, image string, author apps.GitAuthor) (rev, parent string, changed bool, err error) {
	if err := apps.ValidateImageRef(image); err != nil {
		return "", "", false, err
	}
	dir, err := os.MkdirTemp("", "rivetr-from-image-")
	if err != nil {
		return "", "", false, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+image+"\n"), 0o644); err != nil {
		return "", "", false, err
	}
	return r.CommitDir(ctx, app, branch, dir, "Deploy image "+image, author)
}

// FromArchive commits the files of an archive after branch's head in
// app's repository (CommitDir), Dokku's git:from-archive: source is an
// http(s) URL, or "--" to read the archive from stdin. changed is false
// when the branch holds exactly those files already.
func (r *Repos) FromArchive(ctx context.Context, app, branch, source string, stdin io.Reader, kind string, author apps.GitAuthor) (rev, parent string, changed bool, err error) {
	kind, err = parseArchiveType(kind)
	if err != nil {
		return "", "", false, err
	}
	if err := validateAuthor(author); err != nil {
		return "", "", false, err
	}
	body := stdin
	what := "an archive from stdin"
	if source != "--" {
		rc, err := fetchArchive(ctx, source)
		if err != nil {
			return "", "", false, err
		}
		defer rc.Close()
		body, what = rc, RedactURL(source)
	}
	dir, err := os.MkdirTemp("", "rivetr-from-archive-")
	if err != nil {
		return "", "", false, err
	}
	defer os.RemoveAll(dir)
	if err := extractArchive(body, kind, dir); err != nil {
		return "", "", false, apps.Errorf(apps.ErrDeployFailed, "%s: %v", what, err)
	}
	return r.CommitDir(ctx, app, branch, dir, "Deploy "+what, author)
}
