package engine

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// maxImageArchive bounds a `docker save` archive git:load-image reads.
const maxImageArchive = 16 << 30

// HasImage reports whether the engine holds an image by that reference.
func (e *Engine) HasImage(ctx context.Context, ref string) (bool, error) {
	_, err := e.cli.ImageInspect(ctx, ref)
	if cerrdefs.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, e.errorf("inspect image %s: %w", ref, err)
	}
	return true, nil
}

// LoadImage loads the image of a `docker save` archive read from r into
// the engine, after checking that it holds exactly one image and names it
// ref and nothing else: an archive can carry any tags, and loading one
// replaces whatever image had the tag before (another app's, a managed
// database's). allow sees the name the archive gives (Podman saves
// "me/app:1" as "localhost/me/app:1") before anything is loaded, and may
// refuse it; that name is returned. The engine's output goes to out.
func (e *Engine) LoadImage(ctx context.Context, r io.Reader, ref string, allow func(name string) error, out io.Writer) (string, error) {
	f, err := os.CreateTemp("", "rivetr-load-*.tar")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := io.Copy(f, io.LimitReader(r, maxImageArchive+1))
	if err != nil {
		return "", fmt.Errorf("read the image archive: %w", err)
	}
	if n > maxImageArchive {
		return "", fmt.Errorf("the image archive is larger than %d GiB", maxImageArchive>>30)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	name, err := checkImageArchive(f, ref)
	if err != nil {
		return "", err
	}
	if err := allow(name); err != nil {
		return "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	res, err := e.cli.ImageLoad(ctx, f, client.ImageLoadWithQuiet(false))
	if err != nil {
		return "", e.errorf("load image %s: %w", name, err)
	}
	defer res.Close()
	if err := relayBuild(res, out); err != nil {
		return "", e.errorf("load image %s: %w", name, err)
	}
	if ok, err := e.HasImage(ctx, name); err != nil || !ok {
		return "", e.errorf("load image %s: the engine does not show it after the load (%v)", name, err)
	}
	return name, nil
}

// checkImageArchive reads a `docker save` archive's manifest.json (and an
// OCI index.json, which newer Docker writes beside it), refuses archives
// holding more than one image or names other than ref, and returns the
// name the archive gives its image.
func checkImageArchive(r io.Reader, ref string) (string, error) {
	want := normalizeRef(ref)
	tr := tar.NewReader(r)
	name := ""
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("read the image archive (make it with docker save %s): %w", ref, err)
		}
		switch strings.TrimPrefix(h.Name, "./") {
		case "manifest.json":
			var m []struct {
				RepoTags []string
			}
			if err := json.NewDecoder(io.LimitReader(tr, 16<<20)).Decode(&m); err != nil {
				return "", fmt.Errorf("read manifest.json of the image archive: %w", err)
			}
			if len(m) != 1 {
				return "", fmt.Errorf("the archive holds %d images: save one (docker save %s)", len(m), ref)
			}
			if len(m[0].RepoTags) == 0 {
				return "", fmt.Errorf("the image in the archive has no name: save it by name (docker save %s)", ref)
			}
			for _, t := range m[0].RepoTags {
				if normalizeRef(t) != want {
					return "", fmt.Errorf("the archive names its image %s, not %s: an archive may carry only the name given", t, ref)
				}
			}
			name = m[0].RepoTags[0]
		case "index.json":
			var idx struct {
				Manifests []struct {
					Annotations map[string]string
				}
			}
			if err := json.NewDecoder(io.LimitReader(tr, 16<<20)).Decode(&idx); err != nil {
				return "", fmt.Errorf("read index.json of the image archive: %w", err)
			}
			for _, m := range idx.Manifests {
				if name := m.Annotations["io.containerd.image.name"]; name != "" && normalizeRef(name) != want {
					return "", fmt.Errorf("the archive names its image %s, not %s: an archive may carry only the name given", name, ref)
				}
			}
		}
	}
	if name == "" {
		return "", fmt.Errorf("the archive has no manifest.json: make it with docker save %s", ref)
	}
	return name, nil
}

// normalizeRef writes an image reference in full, as the engine resolves
// it: "app" is docker.io/library/app:latest, "me/app:1" is
// docker.io/me/app:1, "registry:5000/app" keeps its registry, and
// Podman's "localhost/me/app:1" is "me/app:1".
func normalizeRef(ref string) string {
	name, digest, hasDigest := strings.Cut(ref, "@")
	slash := strings.LastIndexByte(name, '/')
	if colon := strings.LastIndexByte(name, ':'); colon <= slash && !hasDigest {
		name += ":latest"
	}
	// Podman qualifies a name without a registry with localhost/.
	name = strings.TrimPrefix(name, "localhost/")
	first, rest, hasPath := strings.Cut(name, "/")
	switch {
	case !hasPath:
		name = "docker.io/library/" + name
	case first == "docker.io" && !strings.Contains(rest, "/"):
		name = "docker.io/library/" + rest
	case !strings.ContainsAny(first, ".:") && first != "localhost":
		name = "docker.io/" + name
	}
	if hasDigest {
		return name + "@" + digest
	}
	return name
}
