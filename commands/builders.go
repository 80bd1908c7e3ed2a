package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/rivetr/rivetr/apps"
)

// planner is the part of the deployer builder:plan needs.
type planner interface {
	Plan(ctx context.Context, app, rev string) (apps.BuildPlan, error)
}

// validRelDir accepts a relative directory inside the repository.
func validRelDir(v string) error {
	if v == "." {
		return nil
	}
	if strings.HasPrefix(v, "/") || path.Clean(v) != strings.TrimSuffix(v, "/") || strings.HasPrefix(path.Clean(v), "..") {
		return fmt.Errorf("%q must be a relative path inside the repository", v)
	}
	return nil
}

// validImage accepts an image reference, "{version}" allowed.
func validImage(v string) error {
	if strings.ContainsAny(v, " \t\n\"'$`\\") || strings.HasPrefix(v, "-") || len(v) > 255 {
		return fmt.Errorf("%q is not an image reference", v)
	}
	return nil
}

func registerBuilders(r *Registry, d Deps) {
	d.propertyNamespace(r, "builder", "Choose how an app is built", []property{
		{key: "selected", def: "", validate: func(v string) error {
			if !slices.Contains(apps.Builders, v) {
				return fmt.Errorf("unknown builder %q (builders: %s)", v, strings.Join(apps.Builders, ", "))
			}
			return nil
		}},
		{key: "build-dir", def: "", validate: validRelDir},
	})
	ns := r.Namespace("builder", "")
	r.Add(ns, Command{Name: "builder:plan", Usage: "builder:plan <app> [<rev>] [--format json]", Help: "Show the detected builder and the Dockerfile it would build, without building",
		Run: d.builderPlan})
	d.propertyNamespace(r, "buildpacks", "Settings of the built-in builders: base images, static sites", []property{
		{key: "go-image", def: "golang:{version}-bookworm", validate: validImage},
		{key: "go-runtime-image", def: "gcr.io/distroless/static-debian12:nonroot", validate: validImage},
		{key: "node-image", def: "node:{version}-bookworm-slim", validate: validImage},
		{key: "python-image", def: "python:{version}-slim-bookworm", validate: validImage},
		{key: "ruby-image", def: "ruby:{version}-slim-bookworm", validate: validImage},
		{key: "pack-builder", def: "paketobuildpacks/builder-jammy-base", validate: validImage},
		{key: "static-dir", def: ".", validate: validRelDir},
		{key: "static-spa", def: "false", validate: validBool},
		{key: "static-404", def: "404.html", validate: validRelDir},
	})
}

func (d Deps) builderPlan(ctx context.Context, s *Session, args []string) error {
	var format string
	args, err := NewFlags().String(&format, "format").Parse(args)
	if err != nil || len(args) == 0 || len(args) > 2 || (format != "" && format != "json") {
		return Failf("Usage: rivetr builder:plan <app> [<rev>] [--format json]")
	}
	p, ok := d.Deployer.(planner)
	if !ok {
		return Failf("Deploys are not available on this server")
	}
	rev := ""
	if len(args) == 2 {
		rev = args[1]
	}
	plan, err := p.Plan(ctx, args[0], rev)
	if err != nil {
		return err
	}
	if format == "json" {
		b, _ := json.MarshalIndent(map[string]any{
			"builder": plan.Builder, "reason": plan.Reason, "dockerfile_path": plan.DockerfilePath,
			"dockerfile": plan.Dockerfile, "static_dir": plan.StaticDir, "static_build": plan.StaticBuild,
			"command": plan.Command,
		}, "", "  ")
		s.Println(string(b))
		return nil
	}
	s.Header("%s build plan", args[0])
	s.Detail("Builder:        %s", plan.Builder)
	s.Detail("Reason:         %s", plan.Reason)
	if plan.DockerfilePath != "" {
		s.Detail("Dockerfile:     %s", plan.DockerfilePath)
	}
	if plan.Builder == apps.BuilderStatic {
		s.Detail("Static dir:     %s", plan.StaticDir)
		if plan.StaticBuild != "" {
			s.Detail("Build step:     %s", plan.StaticBuild)
		}
		s.Detail("Container:      none (the proxy serves the files)")
	}
	if len(plan.Command) > 0 {
		s.Detail("Command:        %s", strings.Join(plan.Command, " "))
	}
	if plan.Dockerfile != "" {
		s.Step("Generated Dockerfile:")
		s.Printf("%s", plan.Dockerfile)
	}
	return nil
}
