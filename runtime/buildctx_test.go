package engine

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestDockerignore(t *testing.T) {
	ign, err := parseDockerignore(strings.NewReader(`
# comment
*.log
/tmp
node_modules/
**/*.bak
docs/**/draft*
build
!build/keep
secret?.txt
`))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"app.log":                      true,
		"sub/app.log":                  false, // * stays within one segment, as in Docker
		"tmp":                          true,
		"tmp/x":                        true,
		"tmpfile":                      false,
		"node_modules/a/b.js":          true,
		"a.bak":                        true,
		"deep/er/a.bak":                true,
		"docs/draft1":                  true,
		"docs/x/y/draft2.md":           true,
		"docs/final.md":                false,
		"build":                        true,
		"build/out":                    true,
		"build/keep":                   false,
		"build/keep/file":              false,
		"secret1.txt":                  true,
		"secret12.txt":                 false,
		"Dockerfile":                   false,
		"src/main.go":                  false,
		"node_modules_not_really/x.js": false,
	} {
		if got := ign.excluded(path); got != want {
			t.Errorf("excluded(%q) = %v, want %v", path, got, want)
		}
	}
	if _, err := parseDockerignore(strings.NewReader("[abc\n")); err == nil {
		t.Error("bad pattern accepted")
	}
}

// TestWriteContext reads back the tar stream: modes, symlinks, directories,
// .dockerignore applied, the Dockerfile and .dockerignore always sent.
func TestWriteContext(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	write("Dockerfile", "FROM scratch\n", 0o644)
	write(".dockerignore", ".dockerignore\nDockerfile\n*.log\nvendor\nignored/\n", 0o644)
	write("run.sh", "#!/bin/sh\n", 0o755)
	write("sub/data.txt", "data", 0o600)
	write("x.log", "noise", 0o644)
	write("vendor/a/b.go", "package a", 0o644)
	write("ignored/Dockerfile.dev", "FROM scratch\n", 0o644)
	if err := os.Symlink("sub/data.txt", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	ign, err := readDockerignore(dir)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeContext(context.Background(), pw, dir, ign, []string{"ignored/Dockerfile.dev", ".dockerignore"}))
	}()
	tr := tar.NewReader(pr)
	got := map[string]*tar.Header{}
	var names []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
		names = append(names, h.Name)
	}
	slices.Sort(names)
	want := []string{".dockerignore", "ignored/Dockerfile.dev", "link", "run.sh", "sub/", "sub/data.txt"}
	if !slices.Equal(names, want) {
		t.Fatalf("context = %v, want %v", names, want)
	}
	if m := got["run.sh"].FileInfo().Mode().Perm(); m != 0o755 {
		t.Errorf("run.sh mode %v", m)
	}
	if m := got["sub/data.txt"].FileInfo().Mode().Perm(); m != 0o600 {
		t.Errorf("sub/data.txt mode %v", m)
	}
	if h := got["link"]; h.Typeflag != tar.TypeSymlink || h.Linkname != "sub/data.txt" {
		t.Errorf("link = %+v", h)
	}
	if h := got["sub/"]; h.Typeflag != tar.TypeDir || h.Uid != 0 || h.Uname != "" {
		t.Errorf("sub/ = %+v", h)
	}
}
