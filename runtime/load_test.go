package engine

import (
	"archive/tar"
	"bytes"
	"strings"
	"testing"
)

func TestNormalizeRef(t *testing.T) {
	for in, want := range map[string]string{
		"app":                           "docker.io/library/app:latest",
		"app:1":                         "docker.io/library/app:1",
		"docker.io/app:1":               "docker.io/library/app:1",
		"docker.io/library/app:1":       "docker.io/library/app:1",
		"me/app":                        "docker.io/me/app:latest",
		"registry.example.com:5000/app": "registry.example.com:5000/app:latest",
		"localhost/app:2":               "docker.io/library/app:2", // Podman's name for app:2
		"app@sha256:abc":                "docker.io/library/app@sha256:abc",
	} {
		if got := normalizeRef(in); got != want {
			t.Errorf("normalizeRef(%q) = %q, want %q", in, got, want)
		}
	}
}

func imageTar(t *testing.T, files map[string]string) *bytes.Reader {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	return bytes.NewReader(buf.Bytes())
}

func TestCheckImageArchive(t *testing.T) {
	ok := map[string]map[string]string{
		"docker 20.10": {"manifest.json": `[{"Config":"abc.json","RepoTags":["me/app:1"],"Layers":["l/layer.tar"]}]`, "abc.json": "{}"},
		"full name":    {"manifest.json": `[{"RepoTags":["docker.io/me/app:1"]}]`},
		"docker 25 with an OCI index": {"manifest.json": `[{"RepoTags":["me/app:1"]}]`,
			"index.json": `{"manifests":[{"annotations":{"io.containerd.image.name":"docker.io/me/app:1","org.opencontainers.image.ref.name":"1"}}]}`},
	}
	for name, files := range ok {
		if got, err := checkImageArchive(imageTar(t, files), "me/app:1"); err != nil || got == "" {
			t.Errorf("%s: %q %v", name, got, err)
		}
	}
	// Podman saves me/app:1 as localhost/me/app:1, and loads it so.
	got, err := checkImageArchive(imageTar(t, map[string]string{"manifest.json": `[{"RepoTags":["localhost/me/app:1"]}]`}), "me/app:1")
	if err != nil || got != "localhost/me/app:1" {
		t.Errorf("podman's archive: %q %v", got, err)
	}
	bad := map[string]map[string]string{
		"another tag too":  {"manifest.json": `[{"RepoTags":["me/app:1","postgres:16"]}]`},
		"another name":     {"manifest.json": `[{"RepoTags":["postgres:16"]}]`},
		"two images":       {"manifest.json": `[{"RepoTags":["me/app:1"]},{"RepoTags":["me/app:1"]}]`},
		"no name":          {"manifest.json": `[{"RepoTags":null}]`},
		"no manifest":      {"x": "y"},
		"index names more": {"manifest.json": `[{"RepoTags":["me/app:1"]}]`, "index.json": `{"manifests":[{"annotations":{"io.containerd.image.name":"docker.io/library/postgres:16"}}]}`},
		"bad json":         {"manifest.json": `[{`},
	}
	for name, files := range bad {
		if _, err := checkImageArchive(imageTar(t, files), "me/app:1"); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if _, err := checkImageArchive(strings.NewReader("not a tar"), "me/app:1"); err == nil {
		t.Error("not a tar: accepted")
	}
}
