package buildpacks

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rivetr/rivetr/apps"
)

// Dockerfile builds apps that carry a Dockerfile (or Containerfile) at the
// root, or at the path set with builder-dockerfile:set APP dockerfile-path.
type Dockerfile struct {
	Images apps.ImageBuilder
}

var _ apps.Builder = (*Dockerfile)(nil)

// ErrNoBuilder means no builder recognised the code.
var ErrNoBuilder = fmt.Errorf("no builder detected")

// Detect returns the Dockerfile to use, relative to dir, or "".
func (b *Dockerfile) Detect(dir string, settings map[string]string) (string, error) {
	if p := settings["dockerfile-path"]; p != "" {
		clean := filepath.Clean(filepath.FromSlash(p))
		if !filepath.IsLocal(clean) {
			return "", fmt.Errorf("dockerfile-path %q must be a relative path inside the repository", p)
		}
		if fi, err := os.Stat(filepath.Join(dir, clean)); err != nil || !fi.Mode().IsRegular() {
			return "", fmt.Errorf("dockerfile-path %q: no such file in the pushed code", p)
		}
		return filepath.ToSlash(clean), nil
	}
	for _, name := range []string{"Dockerfile", "Containerfile"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err == nil && fi.Mode().IsRegular() {
			return name, nil
		}
	}
	return "", nil
}

// Build builds the image from the detected Dockerfile.
func (b *Dockerfile) Build(ctx context.Context, req apps.BuildRequest) (string, error) {
	path, err := b.Detect(req.Dir, req.Settings)
	if err != nil {
		return "", err
	}
	if path == "" {
		return "", fmt.Errorf("%w: no Dockerfile or Containerfile at the root of the pushed code (or set one with builder-dockerfile:set %s dockerfile-path PATH)", ErrNoBuilder, req.App)
	}
	fmt.Fprintf(req.Out, "-----> Building %s from %s\n", req.App, filepath.Base(path))
	err = b.Images.BuildImage(ctx, apps.ImageBuild{
		Dir: req.Dir, Dockerfile: path, Tag: req.Tag, Labels: req.Labels, BuildArgs: req.BuildArgs, Out: req.Out,
	})
	if err != nil {
		return "", fmt.Errorf("build of %s failed: %w", req.App, err)
	}
	return "dockerfile", nil
}
