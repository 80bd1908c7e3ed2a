package buildpacks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/rivetr/rivetr/apps"
)

// ErrNoBuilder means no builder recognised the code.
var ErrNoBuilder = errors.New("no builder detected")

// generatedDockerfile is where a pack's Dockerfile is written in the build
// directory (it is sent with the context, whatever .dockerignore says).
const generatedDockerfile = ".rivetr.Dockerfile"

// Builder builds apps with the builder Detect picks: Dockerfiles and the
// built-in packs through the container engine, static sites into a tree of
// files, nixpacks, railpack and pack through their CLIs when installed.
type Builder struct {
	Images apps.ImageBuilder
	// LookPath finds an external CLI; nil means exec.LookPath.
	LookPath func(string) (string, error)
}

var _ apps.Builder = (*Builder)(nil)

// Plan detects how req.Dir would be built.
func (b *Builder) Plan(_ context.Context, req apps.BuildRequest) (apps.BuildPlan, error) {
	return Detect(req)
}

// Build builds req.Dir and returns the builder's name.
func (b *Builder) Build(ctx context.Context, req apps.BuildRequest) (string, error) {
	var plan apps.BuildPlan
	var err error
	if req.Plan != nil {
		plan = *req.Plan
	} else if plan, err = Detect(req); err != nil {
		return "", err
	}
	out := req.Out
	if out == nil {
		out = io.Discard
	}
	switch plan.Builder {
	case apps.BuilderDockerfile:
		fmt.Fprintf(out, "-----> Building %s from %s\n", req.App, filepath.Base(plan.DockerfilePath))
		err = b.image(ctx, req, plan.DockerfilePath)
	case apps.BuilderStatic:
		fmt.Fprintf(out, "-----> Building %s as a static site (%s)\n", req.App, plan.Reason)
		err = b.static(ctx, req, plan)
	case apps.BuilderCompose:
		fmt.Fprintf(out, "-----> Building %s as a compose app (%s)\n", req.App, plan.Reason)
		err = b.compose(ctx, req)
	case "nixpacks", "railpack", "pack":
		fmt.Fprintf(out, "-----> Building %s with %s (%s)\n", req.App, plan.Builder, plan.Reason)
		err = b.external(ctx, req, plan)
	default:
		fmt.Fprintf(out, "-----> Building %s with the %s pack (%s)\n", req.App, plan.Builder, plan.Reason)
		err = b.pack(ctx, req, plan)
	}
	if err != nil {
		return "", fmt.Errorf("build of %s failed: %w", req.App, err)
	}
	return plan.Builder, nil
}

func (b *Builder) image(ctx context.Context, req apps.BuildRequest, dockerfile string) error {
	return b.Images.BuildImage(ctx, apps.ImageBuild{
		Dir: req.Dir, Dockerfile: dockerfile, Tag: req.Tag, Labels: req.Labels, BuildArgs: req.BuildArgs, Out: req.Out,
	})
}

// pack builds a built-in pack's generated Dockerfile.
func (b *Builder) pack(ctx context.Context, req apps.BuildRequest, plan apps.BuildPlan) error {
	if err := writeGenerated(req.Dir, plan); err != nil {
		return err
	}
	return b.image(ctx, req, generatedDockerfile)
}

// writeGenerated writes plan's Dockerfile into dir and, for node builds
// without a .dockerignore, one that keeps local node_modules out.
func writeGenerated(dir string, plan apps.BuildPlan) error {
	if err := os.WriteFile(filepath.Join(dir, generatedDockerfile), []byte(plan.Dockerfile), 0o644); err != nil {
		return fmt.Errorf("write the generated Dockerfile: %w", err)
	}
	if isFile(dir, "package.json") && !isFile(dir, ".dockerignore") {
		if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("node_modules\n.git\n"), 0o644); err != nil {
			return fmt.Errorf("write .dockerignore: %w", err)
		}
	}
	return nil
}

// external runs nixpacks, railpack or pack, then labels its image as
// rivetr's own (a one-line build FROM it), so retention and clean-up
// apply.
func (b *Builder) external(ctx context.Context, req apps.BuildRequest, plan apps.BuildPlan) error {
	look := b.LookPath
	if look == nil {
		look = exec.LookPath
	}
	bin, err := look(plan.Command[0])
	if err != nil {
		return fmt.Errorf("%s is not installed on this server: install it (%s) or choose another builder with builder:set %s selected dockerfile|go|node|python|ruby|static", plan.Builder, installHint[plan.Builder], req.App)
	}
	tmp := req.Tag + "-" + plan.Builder
	args := externalArgs(plan.Builder, req, tmp)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = req.Dir
	cmd.Stdout, cmd.Stderr = req.Out, req.Out
	cmd.Env = externalEnv()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s build: %w", plan.Builder, err)
	}
	defer b.Images.RemoveImage(context.WithoutCancel(ctx), tmp)
	dir, err := os.MkdirTemp("", "rivetr-label-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM "+tmp+"\n"), 0o644); err != nil {
		return err
	}
	return b.Images.BuildImage(ctx, apps.ImageBuild{Dir: dir, Tag: req.Tag, Labels: req.Labels, Out: io.Discard})
}

var installHint = map[string]string{
	"nixpacks": "https://nixpacks.com/docs/install",
	"railpack": "https://railpack.com/installation",
	"pack":     "https://buildpacks.io/docs/for-platform-operators/how-to/integrate-ci/pack/",
}

// DefaultPackBuilder is the builder image pack uses unless pack-builder is
// set.
const DefaultPackBuilder = "paketobuildpacks/builder-jammy-base"

// externalCommand is the command line builder:plan shows.
func externalCommand(builder string, req apps.BuildRequest) []string {
	return append([]string{builder}, externalArgs(builder, req, req.Tag)...)
}

func externalArgs(builder string, req apps.BuildRequest, tag string) []string {
	switch builder {
	case "pack":
		builder := req.Packs["pack-builder"]
		if builder == "" {
			builder = DefaultPackBuilder
		}
		return []string{"build", tag, "--path", ".", "--builder", builder}
	default: // nixpacks, railpack
		return []string{"build", ".", "--name", tag}
	}
}

// externalEnv passes the server's PATH, HOME and engine address on, and
// nothing else of rivetr's environment.
func externalEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "DOCKER_HOST", "XDG_RUNTIME_DIR", "BUILDKIT_HOST"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
