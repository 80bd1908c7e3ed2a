package apps

import (
	"context"
	"errors"
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
	// other name). allow sees the name the archive gives it (Podman's
	// "localhost/ref") before the load and may refuse it; that name is
	// returned. The engine's output goes to out.
	LoadImage(ctx context.Context, r io.Reader, ref string, allow func(name string) error, out io.Writer) (string, error)
}

// loadedImagesKey lists, in GitSyncNS, the images app loaded.
const loadedImagesKey = "loaded-images"

// LoadImage loads a `docker save` archive of image for app
// (git:load-image) and returns the name it was loaded under. A name
// already on the engine may only be replaced when app loaded it before: a
// load replaces the image behind a tag, and the tag may be another app's
// or a managed database's.
func (d *Deployer) LoadImage(ctx context.Context, app, image string, r io.Reader, out io.Writer) (string, error) {
	loader, ok := d.runtime.(ImageLoader)
	if !ok {
		return "", Errorf(ErrDeployFailed, "This server's container engine cannot load images")
	}
	loaded, err := d.loadedImages(ctx, app)
	if err != nil {
		return "", err
	}
	allow := func(name string) error {
		if slices.Contains(loaded, name) {
			return nil
		}
		exists, err := loader.HasImage(ctx, name)
		if err != nil {
			return err
		}
		if exists {
			return Errorf(ErrInvalidName, "Image %s is on this server already and %s did not load it: load the image under a name of its own", name, app)
		}
		return nil
	}
	name, err := loader.LoadImage(ctx, r, image, allow, out)
	if err != nil {
		var ae *Error
		if errors.As(err, &ae) {
			return "", err
		}
		return "", Errorf(ErrDeployFailed, "%v", err)
	}
	if slices.Contains(loaded, name) {
		return name, nil
	}
	return name, d.svc.SetSetting(ctx, app, GitSyncNS, loadedImagesKey, strings.Join(append(loaded, name), " "))
}

func (d *Deployer) loadedImages(ctx context.Context, app string) ([]string, error) {
	v, err := d.svc.Setting(ctx, app, GitSyncNS, loadedImagesKey, "")
	if err != nil {
		return nil, err
	}
	return strings.Fields(v), nil
}

// ForgetLoadedImages drops the names of the images app loaded before
// keep, once keep is deployed: the engine keeps each image as long as a
// kept release's image is built on it, and removes it with the last of
// them, so old loads do not pile up on the server. A name the engine will
// not drop stays recorded, for the next time and for apps:destroy.
func (d *Deployer) ForgetLoadedImages(ctx context.Context, app, keep string) error {
	loaded, err := d.loadedImages(ctx, app)
	if err != nil {
		return err
	}
	left := []string{keep}
	for _, img := range loaded {
		if img == keep {
			continue
		}
		if err := d.runtime.RemoveImage(ctx, img); err != nil {
			d.log.Printf("forget loaded image %s of %s: %v", img, app, err)
			left = append(left, img)
		}
	}
	return d.svc.SetSetting(ctx, app, GitSyncNS, loadedImagesKey, strings.Join(left, " "))
}
