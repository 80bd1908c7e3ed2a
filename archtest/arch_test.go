package archtest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/rivetr/rivetr"

type pkg struct {
	ImportPath string
	Doc        string
	Name       string
	Imports    []string
	Deps       []string
	Standard   bool
}

func list(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestEveryPackageHasDocComment(t *testing.T) {
	for _, p := range list(t) {
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("package %s has no doc comment", p.ImportPath)
		}
	}
}

// TestCoreImportsStdlibOnly: apps is the core; it may import nothing but
// the standard library.
func TestCoreImportsStdlibOnly(t *testing.T) {
	for _, p := range list(t) {
		if p.ImportPath != module+"/apps" {
			continue
		}
		for _, imp := range p.Imports {
			if strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
				t.Errorf("core package apps imports %s", imp)
			}
		}
	}
}

// Adapters talk through the core's interfaces, never to each other. The
// packages listed as shared are small libraries any adapter may use.
var shared = map[string]bool{
	"apps": true, "envfile": true, "sshkey": true, "settings": true,
}

func TestAdaptersDoNotImportEachOther(t *testing.T) {
	for _, p := range list(t) {
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		if rel == p.ImportPath || strings.HasPrefix(rel, "cmd/") || strings.HasPrefix(rel, "bench/") || rel == "e2e" || rel == "archtest" {
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(imp, module+"/")
			top := strings.SplitN(dep, "/", 2)[0]
			if shared[top] || top == strings.SplitN(rel, "/", 2)[0] {
				continue
			}
			if allowed[rel+" -> "+top] {
				continue
			}
			t.Errorf("%s imports %s: adapters must go through the core (apps)", rel, dep)
		}
	}
}

// allowed lists the deliberate exceptions: namespaces of other packages
// register themselves on the command registry.
var allowed = map[string]bool{"plugins -> commands": true}

// TestThirdPartyStaysInAdapters: the command language and core must not
// expose the Docker SDK, ssh or certmagic.
func TestForbiddenDepsInCore(t *testing.T) {
	forbidden := []string{"github.com/moby/", "github.com/docker/", "github.com/gliderlabs/ssh", "github.com/caddyserver/"}
	for _, p := range list(t) {
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		if rel != "apps" && rel != "commands" && rel != "store" {
			continue
		}
		for _, d := range p.Deps {
			for _, f := range forbidden {
				if strings.HasPrefix(d, f) {
					t.Errorf("%s depends on %s", rel, d)
				}
			}
		}
	}
}

func TestGofmt(t *testing.T) {
	out, err := exec.Command("gofmt", "-l", "..").CombinedOutput()
	if err != nil {
		t.Skipf("gofmt unavailable: %v", err)
	}
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("files need gofmt:\n%s", s)
	}
}

func TestStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "rivetr")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/rivetr")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "/lib64/ld-linux") || strings.Contains(string(data), "/lib/ld-linux") {
		t.Error("binary asks for a dynamic loader; it must be static")
	}
}
