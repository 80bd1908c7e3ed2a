package services

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestTemplatesGolden")

// TestTemplatesGolden renders each of the 26 templates as a deploy would
// (instance demo at demo.example.com, secrets fixed for the test) through
// compose-go and compares the resolved project with its golden file
// (go test ./services -run TestTemplatesGolden -args -update rewrites them).
func TestTemplatesGolden(t *testing.T) {
	list, err := Templates()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 26 {
		t.Errorf("%d templates, want the seed's 26", len(list))
	}
	for _, tpl := range list {
		t.Run(tpl.Name, func(t *testing.T) {
			if tpl.Description == "" {
				t.Error("no description")
			}
			fixed := map[string]string{}
			for _, v := range tpl.Variables {
				if v.Secret {
					fixed[v.Name] = "secret-" + strings.ToLower(v.Name)
				}
			}
			values, err := tpl.Values("demo", "demo.example.com", nil, fixed)
			if err != nil {
				t.Fatal(err)
			}
			env := types.Mapping{}
			for k, v := range values {
				env[k] = v
			}
			p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
				WorkingDir:  t.TempDir(),
				ConfigFiles: []types.ConfigFile{{Filename: "compose.yaml", Content: tpl.Compose}},
				Environment: env,
			}, func(o *loader.Options) { o.SetProjectName("demo", true) })
			if err != nil {
				t.Fatalf("compose: %v", err)
			}
			if tpl.Web != "" {
				svc, ok := p.Services[tpl.Web]
				if !ok || (len(svc.Ports) == 0 && len(svc.Expose) == 0) {
					t.Errorf("web service %q missing or without a port", tpl.Web)
				}
			}
			for name, svc := range p.Services {
				if strings.Contains(svc.Image, "${") || svc.Image == "" {
					t.Errorf("service %s: image %q", name, svc.Image)
				}
				for _, v := range svc.Volumes {
					if v.Type == types.VolumeTypeBind && !(tpl.EngineSocket && v.Source == "/var/run/docker.sock") {
						t.Errorf("service %s mounts host path %s", name, v.Source)
					}
				}
			}
			got, err := p.MarshalYAML()
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "templates", tpl.Name+".golden")
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if string(got) != string(want) {
				t.Errorf("rendered %s differs from %s:\n%s", tpl.Name, golden, got)
			}
		})
	}
}

func TestTemplateValues(t *testing.T) {
	tpl, err := LookupTemplate("gitea")
	if err != nil {
		t.Fatal(err)
	}
	v, err := tpl.Values("git", "git.example.com", map[string]string{"GITEA_IMAGE": "local/gitea:1"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v["GITEA_IMAGE"] != "local/gitea:1" || v["POSTGRES_IMAGE"] != "postgres:17" || len(v["DB_PASSWORD"]) != 32 || v["DOMAIN"] != "git.example.com" {
		t.Errorf("values %v", v)
	}
	again, _ := tpl.Values("git", "git.example.com", nil, v)
	if again["DB_PASSWORD"] != v["DB_PASSWORD"] {
		t.Error("a secret kept from an earlier deploy was generated anew")
	}
	if _, err := tpl.Values("git", "x", map[string]string{"NOPE": "1"}, nil); err == nil {
		t.Error("an undeclared variable was accepted")
	}
	for _, bad := range []string{"../gitea", "", "gitea.yaml", "nope"} {
		if _, err := LookupTemplate(bad); err == nil {
			t.Errorf("template %q found", bad)
		}
	}
}
