package buildpacks

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rivetr/rivetr/apps"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestDetectGolden")

// detectCases are the fixture trees under testdata/detect with the
// settings each is detected with; their plans are in NAME.golden.
var detectCases = []struct {
	name     string
	selected string
	settings map[string]string // builder-dockerfile
	packs    map[string]string // buildpacks
}{
	{name: "dockerfile"},
	{name: "containerfile"},
	{name: "dockerfile-path", settings: map[string]string{"dockerfile-path": "docker/prod.Dockerfile"}},
	{name: "pack"},
	{name: "railpack"},
	{name: "nixpacks"},
	{name: "static-root"},
	{name: "static-dir", packs: map[string]string{"static-dir": "public"}},
	{name: "static-build", packs: map[string]string{"static-dir": "dist"}},
	{name: "go-root"},
	{name: "go-cmd"},
	{name: "node-npm"},
	{name: "node-yarn"},
	{name: "node-pnpm"},
	{name: "python-gunicorn"},
	{name: "python-uvicorn"},
	{name: "python-pipfile"},
	{name: "ruby-rack"},
	{name: "ruby-procfile"},
	{name: "selected-go", selected: "go"},
	{name: "go-local-images", packs: map[string]string{"go-image": "rivetr-test/go:{version}", "go-runtime-image": "scratch"}},
	{name: "go-many-mains"},
	{name: "none"},
	{name: "compose-app"},
	{name: "compose-under-dockerfile"},
}

// render is a plan as the golden files hold it.
func render(plan apps.BuildPlan, err error) string {
	if err != nil {
		return "error: " + err.Error() + "\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "builder: %s\nreason: %s\n", plan.Builder, plan.Reason)
	if plan.DockerfilePath != "" {
		fmt.Fprintf(&b, "dockerfile_path: %s\n", plan.DockerfilePath)
	}
	if plan.StaticDir != "" {
		fmt.Fprintf(&b, "static_dir: %s\n", plan.StaticDir)
	}
	if plan.StaticBuild != "" {
		fmt.Fprintf(&b, "static_build: %s\n", plan.StaticBuild)
	}
	if len(plan.Command) > 0 {
		fmt.Fprintf(&b, "command: %s\n", strings.Join(plan.Command, " "))
	}
	if plan.Dockerfile != "" {
		b.WriteString("---\n" + plan.Dockerfile)
	}
	return b.String()
}

// TestDetectGolden: each fixture tree gives the builder and Dockerfile of
// its golden file (go test ./buildpacks -run TestDetectGolden -args -update
// rewrites them).
func TestDetectGolden(t *testing.T) {
	for _, c := range detectCases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join("testdata", "detect", c.name)
			plan, err := Detect(apps.BuildRequest{App: "web", Dir: dir, Tag: "rivetr/web:7", Selected: c.selected, Settings: c.settings, Packs: c.packs})
			got := render(plan, err)
			golden := filepath.Join("testdata", "detect", c.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("plan of %s:\n%s\nwant:\n%s", c.name, got, want)
			}
		})
	}
}

func TestDetectRefusesEscapes(t *testing.T) {
	dir := filepath.Join("testdata", "detect", "static-dir")
	for _, req := range []apps.BuildRequest{
		{App: "web", Dir: dir, Packs: map[string]string{"static-dir": "../.."}},
		{App: "web", Dir: dir, Settings: map[string]string{"dockerfile-path": "../../detect_test.go"}},
		{App: "web", Dir: dir, Selected: "make"},
		{App: "web", Dir: dir, Selected: "dockerfile"},
	} {
		if plan, err := Detect(req); err == nil {
			t.Errorf("%+v: plan %+v, want an error", req, plan)
		}
	}
}
