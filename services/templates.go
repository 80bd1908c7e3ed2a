package services

import (
	"crypto/rand"
	"embed"
	"encoding/hex"
	"fmt"
	"path"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// One-click templates: compose files embedded in the binary, each with an
// x-rivetr header (ignored by compose) that describes it and its
// variables. Deploying one makes an app of the instance's name whose
// config holds the variables (defaults, --set values and generated
// secrets, kept across redeploys) and whose repository holds the compose
// file; the compose builder interpolates ${VAR} from that config.

//go:embed templates/*.yaml
var templateFS embed.FS

// Template is one entry of the catalogue.
type Template struct {
	Name        string
	Description string
	Web         string // the routed service; "" for none
	// EngineSocket: the template mounts the container engine's socket
	// (root on the host): only the server's admin may deploy it.
	EngineSocket bool
	Variables    []TemplateVar
	Compose      []byte // the file as embedded
}

// TemplateVar is one variable of a template.
type TemplateVar struct {
	Name    string
	Default string
	Secret  bool // generated at deploy time (Length bytes, hex)
	Length  int
}

type templateHeader struct {
	X struct {
		Description  string `yaml:"description"`
		Web          string `yaml:"web"`
		EngineSocket bool   `yaml:"engine-socket"`
		Variables    map[string]struct {
			Default string `yaml:"default"`
			Secret  bool   `yaml:"secret"`
			Length  int    `yaml:"length"`
		} `yaml:"variables"`
	} `yaml:"x-rivetr"`
}

// Templates returns the catalogue, by name.
func Templates() ([]Template, error) {
	entries, err := templateFS.ReadDir("templates")
	if err != nil {
		return nil, err
	}
	var out []Template
	for _, e := range entries {
		t, err := loadTemplate(strings.TrimSuffix(e.Name(), ".yaml"))
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// LookupTemplate returns one template.
func LookupTemplate(name string) (Template, error) {
	if name == "" || strings.ContainsAny(name, "/\\.") {
		return Template{}, fmt.Errorf("invalid template name %q", name)
	}
	t, err := loadTemplate(name)
	if err != nil {
		return Template{}, fmt.Errorf("no template %q (see templates:list)", name)
	}
	return t, nil
}

func loadTemplate(name string) (Template, error) {
	b, err := templateFS.ReadFile(path.Join("templates", name+".yaml"))
	if err != nil {
		return Template{}, err
	}
	var h templateHeader
	if err := yaml.Unmarshal(b, &h); err != nil {
		return Template{}, fmt.Errorf("template %s: %w", name, err)
	}
	t := Template{Name: name, Description: h.X.Description, Web: h.X.Web, EngineSocket: h.X.EngineSocket, Compose: b}
	for k, v := range h.X.Variables {
		t.Variables = append(t.Variables, TemplateVar{Name: k, Default: v.Default, Secret: v.Secret, Length: v.Length})
	}
	sort.Slice(t.Variables, func(i, j int) bool { return t.Variables[i].Name < t.Variables[j].Name })
	return t, nil
}

// TemplateBuiltins are the variables every template gets: the instance
// (app) name and the domain it is served at.
var TemplateBuiltins = []string{"INSTANCE", "DOMAIN"}

// Values resolves a template's variables for an instance: builtins,
// defaults, overrides (which must name declared variables) and a fresh
// secret for every secret variable not overridden. existing are values
// kept from an earlier deploy (secrets are generated once).
func (t Template) Values(instance, domain string, overrides, existing map[string]string) (map[string]string, error) {
	declared := map[string]TemplateVar{}
	for _, v := range t.Variables {
		declared[v.Name] = v
	}
	for k, v := range overrides {
		if _, ok := declared[k]; !ok {
			var names []string
			for _, d := range t.Variables {
				names = append(names, d.Name)
			}
			return nil, fmt.Errorf("template %s has no variable %s (variables: %s)", t.Name, k, strings.Join(names, ", "))
		}
		if strings.ContainsAny(v, "\n\r\x00") {
			return nil, fmt.Errorf("value of %s: no newlines or NUL bytes", k)
		}
	}
	out := map[string]string{"INSTANCE": instance, "DOMAIN": domain}
	for _, v := range t.Variables {
		switch val, ok := overrides[v.Name]; {
		case ok:
			out[v.Name] = val
		case existing[v.Name] != "":
			out[v.Name] = existing[v.Name]
		case v.Secret:
			n := v.Length
			if n <= 0 {
				n = 32
			}
			b := make([]byte, (n+1)/2)
			if _, err := rand.Read(b); err != nil {
				return nil, err
			}
			out[v.Name] = hex.EncodeToString(b)[:n]
		default:
			out[v.Name] = v.Default
		}
	}
	return out, nil
}
