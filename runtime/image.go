package engine

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/rivetr/rivetr/apps"
)

// errContextAbandoned stops the build-context writer once the engine no
// longer reads it.
var errContextAbandoned = errors.New("build context no longer read")

// BuildImage builds b.Dir with the engine's classic builder (BuildKit
// needs a session this client does not offer on Docker 20.10), tags the
// image b.Tag and labels it with b.Labels plus rivetr.managed=true.
//
// The context is a tar of b.Dir (regular files, directories and symlinks
// with their modes; owners reset to root) streamed to the engine while it
// is written. A .dockerignore at the root of b.Dir is honoured with this
// subset of Docker's rules: one pattern per line; blank lines and lines
// starting with # are skipped; a leading ! re-includes; patterns are
// slash-separated, relative to the root (a leading / is dropped) and
// cleaned; * ? [ ] and \ work as in path.Match within one path segment and
// ** matches any number of segments; a pattern matching a directory
// matches everything below it; the last matching line wins. The
// Dockerfile and .dockerignore are always sent.
//
// The engine's output is written to b.Out as it arrives: build steps
// verbatim, status lines once per change, progress bars left out. An error
// from the engine (a failed step, a bad Dockerfile) is returned with the
// engine's message.
func (e *Engine) BuildImage(ctx context.Context, b apps.ImageBuild) error {
	out := b.Out
	if out == nil {
		out = io.Discard
	}
	if b.Tag == "" || b.Dir == "" {
		return e.errorf("build image %q: tag and directory are required", b.Tag)
	}
	dockerfile := b.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	if !filepath.IsLocal(dockerfile) {
		return e.errorf("build image %s: Dockerfile path %q is not inside the build directory", b.Tag, b.Dockerfile)
	}
	dockerfile = filepath.ToSlash(filepath.Clean(dockerfile))
	if fi, err := os.Stat(filepath.Join(b.Dir, dockerfile)); err != nil {
		return e.errorf("build image %s: %w", b.Tag, err)
	} else if !fi.Mode().IsRegular() {
		return e.errorf("build image %s: %s is not a file", b.Tag, dockerfile)
	}
	ignore, err := readDockerignore(b.Dir)
	if err != nil {
		return e.errorf("build image %s: %w", b.Tag, err)
	}

	labels := maps.Clone(b.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[apps.LabelManaged] = "true"
	var args map[string]*string
	if len(b.BuildArgs) > 0 {
		args = make(map[string]*string, len(b.BuildArgs))
		for k, v := range b.BuildArgs {
			args[k] = &v
		}
	}

	auth, err := e.authConfigs(ctx)
	if err != nil {
		return e.errorf("build image %s: %w", b.Tag, err)
	}
	opts := client.ImageBuildOptions{
		AuthConfigs: auth,
		Tags:        []string{b.Tag},
		Dockerfile:  dockerfile,
		Labels:      labels,
		BuildArgs:   args,
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
	}
	for attempt := 1; ; attempt++ {
		err := e.buildOnce(ctx, b.Dir, ignore, dockerfile, opts, out)
		if err != nil && attempt < buildAttempts && cacheRace(err) {
			// An image whose layers this build took from the cache was
			// removed meanwhile (an app's old images pruned, another app
			// destroyed): the engine cannot commit onto the missing parent.
			// Building again makes the layers anew.
			fmt.Fprintf(out, "-----> A cached layer was removed during the build (%v); building again\n", err)
			continue
		}
		if err != nil && pullDenied(err) {
			return e.errorf("build image %s: %w (a private base image? registry:login <server> <username> <password> lets builds pull it)", b.Tag, err)
		}
		if err != nil {
			return e.errorf("build image %s: %w", b.Tag, err)
		}
		return nil
	}
}

// pullDenied reports whether a build failed because a registry wanted a
// login to hand out its base image.
func pullDenied(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "no basic auth credentials") || strings.Contains(msg, "authentication required")
}

// buildAttempts bounds how often a build is started again after losing a
// cached layer (see cacheRace).
const buildAttempts = 3

// cacheRace reports whether a build failed because a layer it reused from
// the cache was deleted while it ran. The engine says so in several ways,
// depending on the step that finds the layer gone.
func cacheRace(err error) bool {
	msg := err.Error()
	for _, sign := range []string{
		"unknown parent image ID",
		"No such image: sha256:",
		"failed to get digest sha256:",
		`unable to find image "sha256:`,
		"layer not known",          // Podman
		`locating image with ID "`, // Podman
	} {
		if strings.Contains(msg, sign) {
			return true
		}
	}
	// Podman again, when the layer goes between two steps.
	return strings.Contains(msg, "creating build container") && strings.Contains(msg, "image not known")
}

// buildOnce streams the build context of dir to the engine and relays the
// build's output.
func (e *Engine) buildOnce(ctx context.Context, dir string, ignore *dockerignore, dockerfile string, opts client.ImageBuildOptions, out io.Writer) error {
	pr, pw := io.Pipe()
	tarDone := make(chan error, 1)
	go func() {
		err := writeContext(ctx, pw, dir, ignore, []string{dockerfile, ".dockerignore"})
		pw.CloseWithError(err)
		tarDone <- err
	}()
	res, err := e.cli.ImageBuild(ctx, pr, opts)
	if err == nil {
		err = relayBuild(res.Body, out)
		res.Body.Close()
	}
	pr.CloseWithError(errContextAbandoned)
	if terr := <-tarDone; terr != nil && !errors.Is(terr, errContextAbandoned) {
		return fmt.Errorf("build context: %w", terr)
	}
	return err
}

// buildMessage is one JSON message of the engine's build stream.
type buildMessage struct {
	Stream      string `json:"stream"`
	Status      string `json:"status"`
	Progress    string `json:"progress"`
	ID          string `json:"id"`
	Error       string `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// relayBuild copies the human text of a build stream to out as it arrives
// and returns the stream's error message, if any, as an error. Writes to
// out are best effort: a vanished reader does not stop the build.
func relayBuild(body io.Reader, out io.Writer) error {
	w := &bestEffort{w: out}
	lastStatus := map[string]string{}
	dec := json.NewDecoder(body)
	for {
		var m buildMessage
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read build output: %w", err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return errors.New(strings.TrimSpace(m.ErrorDetail.Message))
		}
		if m.Error != "" {
			return errors.New(strings.TrimSpace(m.Error))
		}
		if m.Stream != "" {
			w.write(m.Stream)
		}
		if m.Status != "" && lastStatus[m.ID] != m.Status {
			lastStatus[m.ID] = m.Status
			line := m.Status
			if m.ID != "" {
				line = m.ID + ": " + m.Status
			}
			w.write(line + "\n")
		}
	}
}

// bestEffort writes until the first error, then drops the rest.
type bestEffort struct {
	w      io.Writer
	failed bool
}

func (b *bestEffort) write(s string) {
	if b.failed {
		return
	}
	if _, err := io.WriteString(b.w, s); err != nil {
		b.failed = true
	}
}

// RemoveImage removes an image by reference or ID, and its untagged
// parents. A missing image is not an error; one still used by a container
// is.
func (e *Engine) RemoveImage(ctx context.Context, ref string) error {
	_, err := e.cli.ImageRemove(ctx, ref, client.ImageRemoveOptions{PruneChildren: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return e.errorf("remove image %s: %w", ref, err)
	}
	return nil
}

// Images lists the images whose labels include all of labels: their tags
// in Docker's short form (Podman's "docker.io/rivetr/app:3" is reported as
// "rivetr/app:3"), or the image ID for an untagged image; sorted.
func (e *Engine) Images(ctx context.Context, labels map[string]string) ([]string, error) {
	res, err := e.cli.ImageList(ctx, client.ImageListOptions{Filters: labelFilters(labels)})
	if err != nil {
		return nil, e.errorf("list images %s: %w", formatLabels(labels), err)
	}
	var out []string
	for _, img := range res.Items {
		n := len(out)
		for _, t := range img.RepoTags {
			if t != "<none>:<none>" {
				out = append(out, familiarName(t))
			}
		}
		if len(out) == n {
			out = append(out, img.ID)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// familiarName shortens a fully qualified Docker Hub reference to the form
// it was given in, as Docker reports it: "docker.io/library/x:1" is
// "x:1" and "docker.io/rivetr/app:3" is "rivetr/app:3". Podman's API
// reports the long forms.
func familiarName(ref string) string {
	if rest, ok := strings.CutPrefix(ref, "docker.io/library/"); ok && !strings.Contains(rest, "/") {
		return rest
	}
	if rest, ok := strings.CutPrefix(ref, "docker.io/"); ok {
		return rest
	}
	return ref
}

// ExportPath copies directory path of image into dst, which must not
// exist: a container is created from the image (never started), the
// engine's archive of path is unpacked, and the container removed. Only
// regular files and directories are written, each checked to stay inside
// dst; links and special files are left out.
func (e *Engine) ExportPath(ctx context.Context, image, path, dst string) error {
	created, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Image:  image,
		Config: &container.Config{Cmd: []string{"/rivetr-export-never-runs"}, Labels: map[string]string{apps.LabelManaged: "true"}},
	})
	if err != nil {
		return e.errorf("export %s from %s: create: %w", path, image, err)
	}
	defer e.cli.ContainerRemove(context.WithoutCancel(ctx), created.ID, client.ContainerRemoveOptions{Force: true})
	res, err := e.cli.CopyFromContainer(ctx, created.ID, client.CopyFromContainerOptions{SourcePath: path})
	if err != nil {
		return e.errorf("export %s from %s: %w", path, image, err)
	}
	defer res.Content.Close()
	if err := os.Mkdir(dst, 0o755); err != nil {
		return e.errorf("export %s from %s: %w", path, image, err)
	}
	if err := untar(res.Content, dst); err != nil {
		os.RemoveAll(dst)
		return e.errorf("export %s from %s: %w", path, image, err)
	}
	return nil
}

// untar unpacks the regular files and directories of the engine's archive
// of a directory into dst: the archive's entries are under the directory's
// base name ("site/index.html"), which is dropped.
func untar(r io.Reader, dst string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.Clean(filepath.FromSlash(strings.TrimPrefix(h.Name, "/")))
		_, name, _ = strings.Cut(name, string(filepath.Separator))
		if name == "" {
			continue
		}
		if !filepath.IsLocal(name) {
			return fmt.Errorf("archive entry %q leaves the directory", h.Name)
		}
		target := filepath.Join(dst, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}
