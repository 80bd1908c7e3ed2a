package engine

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// ignoreRule is one line of a .dockerignore.
type ignoreRule struct {
	segments []string // pattern split on "/"
	include  bool     // the line started with "!"
}

// dockerignore holds the rules of a .dockerignore (see BuildImage for the
// subset supported).
type dockerignore struct {
	rules      []ignoreRule
	exceptions bool // some rule re-includes
}

// readDockerignore reads dir/.dockerignore; a missing file ignores nothing.
func readDockerignore(dir string) (*dockerignore, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return &dockerignore{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read .dockerignore: %w", err)
	}
	defer f.Close()
	return parseDockerignore(f)
}

func parseDockerignore(r io.Reader) (*dockerignore, error) {
	d := &dockerignore{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		include := false
		if rest, ok := strings.CutPrefix(line, "!"); ok {
			include, line = true, strings.TrimSpace(rest)
		}
		p := strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(line)), "/")
		if p == "" {
			continue // "/" or ".": the root itself is never excluded
		}
		segs := strings.Split(p, "/")
		for _, s := range segs {
			if _, err := path.Match(s, ""); err != nil {
				return nil, fmt.Errorf(".dockerignore line %d: %q: %w", n, line, err)
			}
		}
		d.rules = append(d.rules, ignoreRule{segments: segs, include: include})
		d.exceptions = d.exceptions || include
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read .dockerignore: %w", err)
	}
	return d, nil
}

// excluded reports whether rel (slash-separated, relative to the context
// root) is left out of the context.
func (d *dockerignore) excluded(rel string) bool {
	segs := strings.Split(rel, "/")
	out := false
	for _, r := range d.rules {
		if r.include == !out {
			continue // cannot change the outcome
		}
		for k := 1; k <= len(segs); k++ { // rel itself or a parent directory
			if matchSegments(r.segments, segs[:k]) {
				out = !r.include
				break
			}
		}
	}
	return out
}

// matchSegments matches path segments against pattern segments, where
// "**" stands for any number of segments.
func matchSegments(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := len(segs); i >= 0; i-- {
				if matchSegments(pat[1:], segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], segs[0]); !ok {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}

// writeContext writes dir as a tar stream to w, leaving out what ignore
// excludes except the paths in always.
func writeContext(ctx context.Context, w io.Writer, dir string, ignore *dockerignore, always []string) error {
	tw := tar.NewWriter(w)
	keep := map[string]bool{}
	for _, p := range always {
		keep[p] = true
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		if ignore.excluded(rel) && !keep[rel] {
			if d.IsDir() && !ignore.exceptions && !keepsBelow(keep, rel) {
				return filepath.SkipDir
			}
			return nil // something below may still be sent
		}
		return addEntry(tw, p, rel, d)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// keepsBelow reports whether a path in keep lies below directory rel.
func keepsBelow(keep map[string]bool, rel string) bool {
	for p := range keep {
		if strings.HasPrefix(p, rel+"/") {
			return true
		}
	}
	return false
}

// addEntry writes one file, directory or symlink; other kinds (sockets,
// devices, pipes) are skipped.
func addEntry(tw *tar.Writer, p, rel string, d fs.DirEntry) error {
	info, err := d.Info()
	if err != nil {
		return err
	}
	mode := info.Mode()
	var link string
	switch {
	case mode.IsRegular(), mode.IsDir():
	case mode&fs.ModeSymlink != 0:
		if link, err = os.Readlink(p); err != nil {
			return err
		}
	default:
		return nil
	}
	hdr, err := tar.FileInfoHeader(info, link)
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	hdr.Name = rel
	if mode.IsDir() {
		hdr.Name += "/"
	}
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	if !mode.IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	return nil
}
