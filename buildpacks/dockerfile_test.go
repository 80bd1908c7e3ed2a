package buildpacks

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rivetr/rivetr/apps"
)

// fakeImages records builds; it stands in for the container engine.
type fakeImages struct{ got []apps.ImageBuild }

func (f *fakeImages) BuildImage(_ context.Context, b apps.ImageBuild) error {
	f.got = append(f.got, b)
	return nil
}

func TestDetectAndBuild(t *testing.T) {
	cases := []struct {
		files    []string
		settings map[string]string
		want     string
		err      string
	}{
		{[]string{"Dockerfile"}, nil, "Dockerfile", ""},
		{[]string{"Containerfile"}, nil, "Containerfile", ""},
		{[]string{"Dockerfile", "Containerfile"}, nil, "Dockerfile", ""},
		{[]string{"docker/prod.Dockerfile"}, map[string]string{"dockerfile-path": "docker/prod.Dockerfile"}, "docker/prod.Dockerfile", ""},
		{[]string{"Dockerfile"}, map[string]string{"dockerfile-path": "../etc/passwd"}, "", "relative path inside"},
		{[]string{"Dockerfile"}, map[string]string{"dockerfile-path": "missing"}, "", "no such file"},
		{[]string{"main.go"}, nil, "", "no Dockerfile"},
	}
	for _, c := range cases {
		dir := t.TempDir()
		for _, f := range c.files {
			os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
			os.WriteFile(filepath.Join(dir, f), []byte("FROM scratch\n"), 0o644)
		}
		imgs := &fakeImages{}
		var out bytes.Buffer
		name, err := (&Dockerfile{Images: imgs}).Build(context.Background(), apps.BuildRequest{
			App: "web", Dir: dir, Tag: "rivetr/web:1", Settings: c.settings, Out: &out,
		})
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: err %v, want %q", c.files, err, c.err)
			}
			if c.err == "no Dockerfile" && !errors.Is(err, ErrNoBuilder) {
				t.Errorf("not ErrNoBuilder: %v", err)
			}
			continue
		}
		if err != nil || name != "dockerfile" || len(imgs.got) != 1 || imgs.got[0].Dockerfile != c.want {
			t.Errorf("%v: name %q err %v builds %+v", c.files, name, err, imgs.got)
			continue
		}
		if !strings.HasPrefix(out.String(), "-----> Building web from "+filepath.Base(c.want)) {
			t.Errorf("output %q", out.String())
		}
	}
}
