package gitserver

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/rivetr/rivetr/apps"
)

// member is one entry of a test archive.
type member struct {
	name, body, link string
	mode             int64
	kind             byte // tar type flag; 0 means a regular file
}

func tarOf(t *testing.T, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		h := &tar.Header{Name: m.name, Mode: m.mode, Size: int64(len(m.body)), Typeflag: m.kind, Linkname: m.link}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(m.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipOf(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func zipOf(t *testing.T, members ...member) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		h := &zip.FileHeader{Name: m.name, Method: zip.Deflate}
		mode := os.FileMode(m.mode)
		if mode == 0 {
			mode = 0o644
		}
		if m.kind == tar.TypeSymlink {
			mode |= os.ModeSymlink
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if m.kind == tar.TypeSymlink {
			w.Write([]byte(m.link))
		} else {
			w.Write([]byte(m.body))
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExtractArchive(t *testing.T) {
	app := []member{
		{name: "app-1.0/", kind: tar.TypeDir, mode: 0o755},
		{name: "app-1.0/Dockerfile", body: "FROM scratch\n"},
		{name: "app-1.0/bin/run", body: "#!/bin/sh\n", mode: 0o755},
		{name: "app-1.0/current", kind: tar.TypeSymlink, link: "bin/run"},
		{name: "app-1.0/.git/config", body: "[core]\n"},
	}
	for _, tc := range []struct {
		kind string
		data []byte
	}{
		{ArchiveTar, tarOf(t, app...)},
		{ArchiveTarGz, gzipOf(t, tarOf(t, app...))},
		{ArchiveZip, zipOf(t, app...)},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			dir := t.TempDir()
			if err := extractArchive(bytes.NewReader(tc.data), tc.kind, dir); err != nil {
				t.Fatal(err)
			}
			// The one top-level directory became the root.
			if b, err := os.ReadFile(filepath.Join(dir, "Dockerfile")); err != nil || string(b) != "FROM scratch\n" {
				t.Errorf("Dockerfile: %q %v", b, err)
			}
			if fi, err := os.Stat(filepath.Join(dir, "bin/run")); err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("bin/run: %v %v", fi, err)
			}
			if l, err := os.Readlink(filepath.Join(dir, "current")); err != nil || l != "bin/run" {
				t.Errorf("symlink: %q %v", l, err)
			}
			if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
				t.Error(".git was extracted")
			}
		})
	}

	// A hard link to a file extracted before is a copy; two top-level
	// entries stay where they are.
	dir := t.TempDir()
	if err := extractArchive(bytes.NewReader(tarOf(t,
		member{name: "a.txt", body: "a"},
		member{name: "b.txt", kind: tar.TypeLink, link: "a.txt"},
	)), ArchiveTar, dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "b.txt")); string(b) != "a" {
		t.Errorf("hard link copy: %q", b)
	}

	// The top directory may hold an entry named like the name it steps
	// aside under.
	dir = t.TempDir()
	if err := extractArchive(bytes.NewReader(tarOf(t,
		member{name: "top/.rivetr-top", body: "1"},
		member{name: "top/x", body: "2"},
	)), ArchiveTar, dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ".rivetr-top")); string(b) != "1" {
		t.Errorf("hoisted .rivetr-top: %q", b)
	}

	outside := t.TempDir()
	for name, data := range map[string][]byte{
		"absolute path":              tarOf(t, member{name: "/etc/evil", body: "x"}),
		"parent traversal":           tarOf(t, member{name: "a/../../evil", body: "x"}),
		"symlink out":                tarOf(t, member{name: "l", kind: tar.TypeSymlink, link: "../../etc"}),
		"absolute symlink":           tarOf(t, member{name: "l", kind: tar.TypeSymlink, link: "/etc"}),
		"zip traversal":              zipOf(t, member{name: "../evil", body: "x"}),
		"hard link out":              tarOf(t, member{name: "h", kind: tar.TypeLink, link: "../../etc/passwd"}),
		"device":                     tarOf(t, member{name: "dev", kind: tar.TypeChar}),
		"empty":                      tarOf(t),
		"write through a link chain": tarOf(t, member{name: "a/s", kind: tar.TypeSymlink, link: "."}, member{name: "a/l", kind: tar.TypeSymlink, link: "s/../.."}, member{name: "a/l/x", body: "x"}),
	} {
		kind := ArchiveTar
		if strings.HasPrefix(name, "zip") {
			kind = ArchiveZip
		}
		dest := filepath.Join(outside, strings.ReplaceAll(name, " ", "-"), "dest")
		os.MkdirAll(dest, 0o755)
		if err := extractArchive(bytes.NewReader(data), kind, dest); err == nil {
			t.Errorf("%s: extracted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(dest), "x")); err == nil {
			t.Errorf("%s: a file was written outside the destination", name)
		}
	}
	if err := extractArchive(strings.NewReader("not a tar at all, longer than one block? no"), ArchiveTarGz, t.TempDir()); err == nil {
		t.Error("garbage as tar.gz extracted")
	}
	if _, err := parseArchiveType("rar"); err == nil {
		t.Error("rar accepted")
	}
}

func TestFromArchiveAndImage(t *testing.T) {
	repos := newRepos(t)
	ctx := context.Background()
	src := &Source{Repos: repos}
	archive := tarOf(t,
		member{name: "Dockerfile", body: "FROM scratch\nCOPY run /run\n"},
		member{name: "run", body: "#!/bin/sh\n", mode: 0o755},
		member{name: "deep/a/b.txt", body: "b"},
		member{name: "empty/", kind: tar.TypeDir},
	)
	author := apps.GitAuthor{Name: "Camila", Email: "camila@example.com"}
	rev, parent, changed, err := repos.FromArchive(ctx, "web", "main", "--", bytes.NewReader(archive), "", author)
	if err != nil || !changed || parent != "" {
		t.Fatalf("FromArchive = %q %q %v %v", rev, parent, changed, err)
	}
	// The branch moves only when told to.
	if _, err := src.Resolve(ctx, "web", "main"); err == nil {
		t.Error("main exists before SetBranch")
	}
	if err := repos.SetBranch(ctx, "web", "main", rev, ""); err != nil {
		t.Fatal(err)
	}
	if got := gitRun(t, repos.Path("web"), "log", "-1", "--format=%an <%ae> %s"); got != "Camila <camila@example.com> Deploy an archive from stdin" {
		t.Errorf("commit: %s", got)
	}
	if got := gitRun(t, repos.Path("web"), "ls-tree", "-r", "--format=%(objectmode) %(path)", "main"); got != "100644 Dockerfile\n100644 deep/a/b.txt\n100755 run" {
		t.Errorf("tree:\n%s", got)
	}
	gitRun(t, repos.Path("web"), "fsck", "--strict")
	dir := t.TempDir()
	if err := src.Checkout(ctx, "web", rev, dir, false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "deep/a/b.txt")); string(b) != "b" {
		t.Errorf("checked out %q", b)
	}

	// The same files again: no commit.
	again, _, changed, err := repos.FromArchive(ctx, "web", "main", "--", bytes.NewReader(archive), ArchiveTar, apps.GitAuthor{})
	if err != nil || changed || again != rev {
		t.Errorf("same archive again = %q %v %v, want %s unchanged", again, changed, err, rev)
	}

	// An archive served over HTTP, as zip; a failing URL; bad input.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/app.zip" {
			http.NotFound(w, r)
			return
		}
		w.Write(zipOf(t, member{name: "Dockerfile", body: "FROM scratch\n"}))
	}))
	defer srv.Close()
	rev2, parent, changed, err := repos.FromArchive(ctx, "web", "main", srv.URL+"/app.zip", nil, ArchiveZip, apps.GitAuthor{})
	if err != nil || !changed || parent != rev {
		t.Fatalf("zip from URL = %q %q %v %v, want a commit after %s", rev2, parent, changed, err, rev)
	}
	if got := gitRun(t, repos.Path("web"), "rev-parse", rev2+"^"); got != rev {
		t.Errorf("parent of the second commit %s, want %s", got, rev)
	}
	// Moving from a head that is not the branch's any more is refused.
	if err := repos.SetBranch(ctx, "web", "main", rev2, rev2); err == nil {
		t.Error("SetBranch from a stale head succeeded")
	}
	if err := repos.SetBranch(ctx, "web", "main", rev2, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := fetchArchive(ctx, "http://169.254.169.254/latest/meta-data/"); err == nil || !strings.Contains(err.Error(), "link-local") {
		t.Errorf("the metadata address: %v", err)
	}
	for _, bad := range []struct{ source, kind string }{
		{srv.URL + "/missing.tar", ""},
		{"file:///etc/passwd", ""},
		{"ftp://example.com/a.tar", ""},
		{srv.URL + "/app.zip", "rar"},
		{srv.URL + "/app.zip", ArchiveTar}, // a zip read as tar
	} {
		if _, _, _, err := repos.FromArchive(ctx, "web", "main", bad.source, nil, bad.kind, apps.GitAuthor{}); err == nil {
			t.Errorf("FromArchive(%s, %s) accepted", bad.source, bad.kind)
		}
	}
	if head := gitRun(t, repos.Path("web"), "rev-parse", "main"); head != rev2 {
		t.Errorf("a refused archive moved the branch to %s", head)
	}
	if _, _, _, err := repos.FromArchive(ctx, "web", "main", "--", bytes.NewReader(archive), "", apps.GitAuthor{Name: "x\nparent 0000"}); err == nil {
		t.Error("an author with a line break accepted")
	}

	// FROM image: a Dockerfile of one line; the same image again changes nothing.
	rev3, _, changed, err := repos.FromImage(ctx, "web", "main", "registry.example.com:5000/team/app@sha256:"+strings.Repeat("a", 64), apps.GitAuthor{})
	if err != nil || !changed {
		t.Fatalf("FromImage = %q %v %v", rev3, changed, err)
	}
	if err := repos.SetBranch(ctx, "web", "main", rev3, rev2); err != nil {
		t.Fatal(err)
	}
	if got := gitRun(t, repos.Path("web"), "show", "main:Dockerfile"); got != "FROM registry.example.com:5000/team/app@sha256:"+strings.Repeat("a", 64) {
		t.Errorf("Dockerfile: %q", got)
	}
	if _, _, changed, _ := repos.FromImage(ctx, "web", "main", "registry.example.com:5000/team/app@sha256:"+strings.Repeat("a", 64), apps.GitAuthor{}); changed {
		t.Error("the same image committed again")
	}
	for _, bad := range []string{"", "app\nRUN rm -rf /", "app latest", "-app", "a$(id)", strings.Repeat("a", 256)} {
		if _, _, _, err := repos.FromImage(ctx, "web", "main", bad, apps.GitAuthor{}); !errors.Is(err, apps.ErrInvalidName) {
			t.Errorf("image %q: %v", bad, err)
		}
	}
}

func TestAllowHost(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := &gossh.ServerConfig{NoClientAuth: false, PasswordCallback: func(gossh.ConnMetadata, []byte) (*gossh.Permissions, error) {
		return nil, errors.New("no")
	}}
	cfg.AddHostKey(signer)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				gossh.NewServerConn(c, cfg)
			}()
		}
	}()
	known := filepath.Join(t.TempDir(), "ssh_known_hosts")
	m := &Mirror{KnownHosts: known}
	host := ln.Addr().String()
	line, added, err := m.AllowHost(context.Background(), host)
	if err != nil || !added {
		t.Fatalf("AllowHost = %q %v %v", line, added, err)
	}
	b, _ := os.ReadFile(known)
	if !strings.Contains(string(b), strings.TrimSpace(string(gossh.MarshalAuthorizedKey(signer.PublicKey())))) {
		t.Errorf("known_hosts:\n%s", b)
	}
	if _, added, err := m.AllowHost(context.Background(), host); err != nil || added {
		t.Errorf("second AllowHost: added %v, %v", added, err)
	}
	// Another key on the same address is refused, and not recorded.
	_, priv2, _ := ed25519.GenerateKey(rand.Reader)
	signer2, _ := gossh.NewSignerFromKey(priv2)
	cfg.AddHostKey(signer2) // replaces the ed25519 key
	if _, _, err := m.AllowHost(context.Background(), host); err == nil || !strings.Contains(err.Error(), "changed") {
		t.Errorf("changed key: %v", err)
	}
	if b2, _ := os.ReadFile(known); !bytes.Equal(b, b2) {
		t.Error("a changed key was recorded")
	}
	if _, _, err := m.AllowHost(context.Background(), "127.0.0.1:1"); err == nil {
		t.Error("a closed port answered")
	}
}

// BenchmarkFromArchive: git:from-archive's work for an app of 2,000 files
// of 10 KB (20 MB): extract the tar, write the blobs and trees, commit.
func BenchmarkFromArchive(b *testing.B) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := bytes.Repeat([]byte("0123456789abcdef"), 640)
	for i := range 2000 {
		body[0] = byte(i) // every file differs
		body[1] = byte(i >> 8)
		name := fmt.Sprintf("app/src/pkg%02d/file%04d.go", i%40, i)
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write(body)
	}
	tw.Close()
	data := buf.Bytes()
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		repos := &Repos{Dir: filepath.Join(b.TempDir(), "repos"), DataDir: b.TempDir(), Binary: "/bin/true"}
		if _, _, changed, err := repos.FromArchive(ctx, "web", "main", "--", bytes.NewReader(data), ArchiveTar, apps.GitAuthor{}); err != nil || !changed {
			b.Fatal(err)
		}
	}
}

// FuzzExtractArchive feeds random tar, tar.gz and zip bytes to the
// extractor: it may refuse them, but never panics and never writes outside
// its destination.
func FuzzExtractArchive(f *testing.F) {
	t := &testing.T{}
	f.Add(byte(0), tarOf(t, member{name: "a/b", body: "x"}, member{name: "a/l", kind: tar.TypeSymlink, link: "b"}))
	f.Add(byte(0), tarOf(t, member{name: "a/s", kind: tar.TypeSymlink, link: "."}, member{name: "a/l", kind: tar.TypeSymlink, link: "s/../.."}, member{name: "a/l/x", body: "x"}))
	f.Add(byte(0), tarOf(t, member{name: "l", kind: tar.TypeSymlink, link: "sub"}, member{name: "sub/", kind: tar.TypeDir}, member{name: "h", kind: tar.TypeLink, link: "l/../x"}))
	f.Add(byte(1), gzipOf(t, tarOf(t, member{name: "top/run", body: "#!/bin/sh\n", mode: 0o755})))
	f.Add(byte(2), zipOf(t, member{name: "z/a.txt", body: "a"}, member{name: "z/l", kind: tar.TypeSymlink, link: "a.txt"}))
	kinds := []string{ArchiveTar, ArchiveTarGz, ArchiveZip}
	f.Fuzz(func(t *testing.T, kind byte, data []byte) {
		// dest sits three levels down, so a write escaping it by up to
		// three ".." lands where the test looks.
		parent := t.TempDir()
		dest := filepath.Join(parent, "l1", "l2", "l3", "dest")
		if err := os.MkdirAll(dest, 0o755); err != nil {
			t.Fatal(err)
		}
		extractArchive(bytes.NewReader(data), kinds[int(kind)%len(kinds)], dest)
		for dir, want := range map[string]string{parent: "l1", filepath.Join(parent, "l1"): "l2", filepath.Join(parent, "l1", "l2"): "l3", filepath.Join(parent, "l1", "l2", "l3"): "dest"} {
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != 1 || entries[0].Name() != want {
				t.Fatalf("the extractor wrote outside its destination, in %s: %v", dir, entries)
			}
		}
	})
}
