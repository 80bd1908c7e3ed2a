package apps

import (
	"context"
	"io"
	"slices"
	"strings"
)

// ImageLoader loads images saved with `docker save` (git:load-image); the
// container runtime implements it.
type ImageLoader interface {
	// HasImage reports whether the engine holds an image by ref.
	HasImage(ctx context.Context, ref string) (bool, error)
	// LoadImage loads an archive that holds one image named ref (and no
	// other name), writing the engine's output to out.
	LoadImage(ctx context.Context, r io.Reader, ref string, out io.Writer) error
}

// loadedImagesKey lists, in GitSyncNS, the images app loaded.
const loadedImagesKey = "loaded-images"

// LoadImage loads a `docker save` archive of image for app
// (git:load-image). A name already on the engine may only be replaced when
// app loaded it before: a load replaces the image behind a tag, and the
// tag may be another app's or a managed database's.
func (d *Deployer) LoadImage(ctx context.Context, app, image string, r io.Reader, out io.Writer) error {
	loader, ok := d.runtime.(ImageLoader)
	if !ok {
		return Errorf(ErrDeployFailed, "This server's container engine cannot load images")
	}
	loaded, err := d.loadedImages(ctx, app)
	if err != nil {
		return err
	}
	if !slices.Contains(loaded, image) {
		exists, err := loader.HasImage(ctx, image)
		if err != nil {
			return err
		}
		if exists {
			return Errorf(ErrInvalidName, "Image %s is on this server already and %s did not load it: load the image under a name of its own", image, app)
		}
	}
	if err := loader.LoadImage(ctx, r, image, out); err != nil {
		return Errorf(ErrDeployFailed, "%v", err)
	}
	if slices.Contains(loaded, image) {
		return nil
	}
	return d.svc.SetSetting(ctx, app, GitSyncNS, loadedImagesKey, strings.Join(append(loaded, image), " "))
}

func (d *Deployer) loadedImages(ctx context.Context, app string) ([]string, error) {
	v, err := d.svc.Setting(ctx, app, GitSyncNS, loadedImagesKey, "")
	if err != nil {
		return nil, err
	}
	return strings.Fields(v), nil
}
