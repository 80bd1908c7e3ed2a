package buildpacks

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rivetr/rivetr/apps"
)

// Detect decides how the code in dir is built, in this order:
//
//  1. the builder chosen with builder:set APP selected (or printed by a
//     builder-detect hook): req.Selected;
//  2. a Dockerfile or Containerfile (or builder-dockerfile's
//     dockerfile-path); then a compose file (compose.yaml, ...);
//  3. project.toml: Paketo buildpacks through pack;
//  4. railpack.json: railpack;
//  5. nixpacks.toml: nixpacks;
//  6. a static site: index.html at the root or in static-dir, or
//     static-dir set with a package.json "build" script that makes it;
//  7. language markers: go.mod (go), package.json (node),
//     requirements.txt, pyproject.toml or Pipfile (python), Gemfile (ruby).
func Detect(req apps.BuildRequest) (apps.BuildPlan, error) {
	dir := req.Dir
	if req.Selected != "" {
		if !slices.Contains(apps.Builders, req.Selected) {
			return apps.BuildPlan{}, fmt.Errorf("unknown builder %q (builders: %s)", req.Selected, strings.Join(apps.Builders, ", "))
		}
		return planFor(req.Selected, "selected with builder:set", req)
	}
	if p, err := dockerfilePath(dir, req.Settings); err != nil || p != "" {
		return apps.BuildPlan{Builder: apps.BuilderDockerfile, Reason: p + " found", DockerfilePath: p}, err
	}
	if f := composeFile(dir); f != "" {
		return planFor(apps.BuilderCompose, f+" found", req)
	}
	for _, m := range []struct{ file, builder string }{
		{"project.toml", "pack"},
		{"railpack.json", "railpack"},
		{"nixpacks.toml", "nixpacks"},
	} {
		if isFile(dir, m.file) {
			return planFor(m.builder, m.file+" found", req)
		}
	}
	if plan, ok, err := detectStatic(req); ok || err != nil {
		return plan, err
	}
	for _, m := range []struct{ file, builder string }{
		{"go.mod", "go"},
		{"package.json", "node"},
		{"requirements.txt", "python"},
		{"pyproject.toml", "python"},
		{"Pipfile", "python"},
		{"Gemfile", "ruby"},
	} {
		if isFile(dir, m.file) {
			return planFor(m.builder, m.file+" found", req)
		}
	}
	return apps.BuildPlan{}, fmt.Errorf("%w: found no Dockerfile, compose file, project.toml, railpack.json, nixpacks.toml, index.html, go.mod, package.json, requirements.txt, pyproject.toml, Pipfile or Gemfile; add one, or choose a builder with builder:set %s selected NAME", ErrNoBuilder, req.App)
}

// planFor makes the plan of a named builder.
func planFor(builder, reason string, req apps.BuildRequest) (apps.BuildPlan, error) {
	plan := apps.BuildPlan{Builder: builder, Reason: reason}
	var err error
	switch builder {
	case apps.BuilderDockerfile:
		plan.DockerfilePath, err = dockerfilePath(req.Dir, req.Settings)
		if err == nil && plan.DockerfilePath == "" {
			err = fmt.Errorf("%w: builder dockerfile selected but there is no Dockerfile or Containerfile at the root of the pushed code", ErrNoBuilder)
		}
	case apps.BuilderCompose:
		return composePlan(req, reason)
	case apps.BuilderStatic:
		var ok bool
		plan, ok, err = detectStatic(req)
		if err == nil && !ok {
			dir := staticDir(req.Packs)
			err = fmt.Errorf("%w: builder static selected but %s has no index.html (set buildpacks:set %s static-dir DIR, and for a build step a package.json with a \"build\" script)", ErrNoBuilder, dirLabel(dir), req.App)
		}
		plan.Reason = reason
	case "go":
		plan.Dockerfile, err = goDockerfile(req)
	case "node":
		plan.Dockerfile, err = nodeDockerfile(req)
	case "python":
		plan.Dockerfile, err = pythonDockerfile(req)
	case "ruby":
		plan.Dockerfile, err = rubyDockerfile(req)
	case "nixpacks", "railpack", "pack":
		plan.Command = externalCommand(builder, req)
	}
	return plan, err
}

// detectStatic finds a static site: index.html in the static dir, or a
// build step (static-dir set, package.json with a build script).
func detectStatic(req apps.BuildRequest) (apps.BuildPlan, bool, error) {
	sd := staticDir(req.Packs)
	clean := filepath.Clean(filepath.FromSlash(sd))
	if !filepath.IsLocal(clean) && clean != "." {
		return apps.BuildPlan{}, false, fmt.Errorf("static-dir %q must be a relative path inside the repository", sd)
	}
	plan := apps.BuildPlan{Builder: apps.BuilderStatic, StaticDir: filepath.ToSlash(clean)}
	if isFile(req.Dir, filepath.Join(clean, "index.html")) {
		plan.Reason = filepath.ToSlash(filepath.Join(clean, "index.html")) + " found"
		return plan, true, nil
	}
	if _, set := req.Packs["static-dir"]; set && sd != "" && sd != "." && isFile(req.Dir, "package.json") {
		pkg, err := readPackageJSON(req.Dir)
		if err != nil {
			return apps.BuildPlan{}, false, err
		}
		if pkg.Scripts["build"] != "" {
			plan.Reason = "static-dir " + plan.StaticDir + " is made by package.json's build script"
			plan.StaticBuild = pkg.manager().run("build")
			df, err := staticBuildDockerfile(req, pkg, plan.StaticDir)
			plan.Dockerfile = df
			return plan, true, err
		}
	}
	return apps.BuildPlan{}, false, nil
}

// staticDir is the static-dir setting, "." by default.
func staticDir(packs map[string]string) string {
	if d := strings.TrimSpace(packs["static-dir"]); d != "" {
		return d
	}
	return "."
}

func dirLabel(d string) string {
	if d == "." {
		return "the root of the code"
	}
	return d
}

// dockerfilePath returns the Dockerfile to use, relative to dir, or "".
func dockerfilePath(dir string, settings map[string]string) (string, error) {
	if p := settings["dockerfile-path"]; p != "" {
		clean := filepath.Clean(filepath.FromSlash(p))
		if !filepath.IsLocal(clean) {
			return "", fmt.Errorf("dockerfile-path %q must be a relative path inside the repository", p)
		}
		if !isFile(dir, clean) {
			return "", fmt.Errorf("dockerfile-path %q: no such file in the pushed code", p)
		}
		return filepath.ToSlash(clean), nil
	}
	for _, name := range []string{"Dockerfile", "Containerfile"} {
		if isFile(dir, name) {
			return name, nil
		}
	}
	return "", nil
}

// isFile reports whether dir/name is a regular file (not a link).
func isFile(dir, name string) bool {
	fi, err := os.Lstat(filepath.Join(dir, name))
	return err == nil && fi.Mode().IsRegular()
}

// readFile reads dir/name ("" when absent), up to 1 MiB.
func readFile(dir, name string) string {
	if !isFile(dir, name) {
		return ""
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil || len(b) > 1<<20 {
		return ""
	}
	return string(b)
}

// packageJSON is the part of package.json the node pack reads.
type packageJSON struct {
	Main    string            `json:"main"`
	Scripts map[string]string `json:"scripts"`
	Engines struct {
		Node string `json:"node"`
	} `json:"engines"`
	PackageManager string `json:"packageManager"`
	dir            string
}

func readPackageJSON(dir string) (packageJSON, error) {
	var p packageJSON
	if err := json.Unmarshal([]byte(readFile(dir, "package.json")), &p); err != nil {
		return p, fmt.Errorf("package.json: %w", err)
	}
	p.dir = dir
	return p, nil
}
