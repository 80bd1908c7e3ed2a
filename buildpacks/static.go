package buildpacks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/rivetr/rivetr/apps"
)

// static makes req.SiteDir the site's tree: the static dir of the code, or
// what its build step produced in a one-off build (a Dockerfile whose
// last stage holds only the built directory, exported from the image).
// The tree is complete before Build returns, so the route can move to it
// at once.
func (b *Builder) static(ctx context.Context, req apps.BuildRequest, plan apps.BuildPlan) error {
	if req.SiteDir == "" {
		return errors.New("static: no site directory given")
	}
	if err := os.MkdirAll(filepath.Dir(req.SiteDir), 0o755); err != nil {
		return fmt.Errorf("static: %w", err)
	}
	os.RemoveAll(req.SiteDir) // a left-over of a build cut off
	if plan.StaticBuild == "" {
		return copyTree(filepath.Join(req.Dir, filepath.FromSlash(plan.StaticDir)), req.SiteDir)
	}
	fmt.Fprintf(req.Out, "-----> Running the build step: %s\n", plan.StaticBuild)
	if err := writeGenerated(req.Dir, plan); err != nil {
		return err
	}
	tag := req.Tag + "-site"
	if err := b.Images.BuildImage(ctx, apps.ImageBuild{
		Dir: req.Dir, Dockerfile: generatedDockerfile, Tag: tag, Labels: req.Labels, BuildArgs: req.BuildArgs, Out: req.Out,
	}); err != nil {
		return err
	}
	defer b.Images.RemoveImage(context.WithoutCancel(ctx), tag)
	if err := b.Images.ExportPath(ctx, tag, "/site", req.SiteDir); err != nil {
		return fmt.Errorf("static: copy the built site out: %w", err)
	}
	if !isFile(req.SiteDir, "index.html") {
		os.RemoveAll(req.SiteDir)
		return fmt.Errorf("static: the build step did not produce %s/index.html", plan.StaticDir)
	}
	return nil
}

// copyTree copies the regular files and directories of src into dst (new),
// hard-linking where it can. Links and special files are left out, as is
// .git: nothing served can point outside the tree.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" && rel != "." {
			return filepath.SkipDir
		}
		if rel == generatedDockerfile {
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			if err := os.Link(p, target); err == nil {
				return nil
			}
			return copyFile(p, target)
		}
		return nil
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
