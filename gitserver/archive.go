package gitserver

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rivetr/rivetr/apps"
)

// Archive types git:from-archive reads.
const (
	ArchiveTar   = "tar"
	ArchiveTarGz = "tar.gz"
	ArchiveZip   = "zip"
)

// Limits of an archive: its size as fetched, its size and entries once
// extracted. An app's code past these is not what git:from-archive is for.
const (
	maxArchiveBytes   = 1 << 30
	maxExtractedBytes = 2 << 30
	maxArchiveEntries = 100_000
)

// parseArchiveType checks --archive-type ("tgz" is accepted for tar.gz).
func parseArchiveType(t string) (string, error) {
	switch t {
	case "", ArchiveTar:
		return ArchiveTar, nil
	case ArchiveTarGz, "tgz":
		return ArchiveTarGz, nil
	case ArchiveZip:
		return ArchiveZip, nil
	}
	return "", apps.Errorf(apps.ErrInvalidName, "Invalid archive type %q: use tar, tar.gz or zip", clip(t))
}

// archiveClient fetches archives: redirects followed (release downloads
// redirect to storage), a generous overall timeout, and never a link-local
// address (a cloud's metadata service at 169.254.169.254 hands out the
// server's credentials; no archive lives there).
var archiveClient = &http.Client{
	Timeout: 30 * time.Minute,
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, Control: refuseLinkLocal}).DialContext,
		TLSHandshakeTimeout:   30 * time.Second,
		ResponseHeaderTimeout: 5 * time.Minute,
	},
}

// refuseLinkLocal is a dialer's Control that refuses link-local addresses.
func refuseLinkLocal(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip, err := netip.ParseAddr(host); err == nil && (ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast()) {
		return fmt.Errorf("refusing to fetch from the link-local address %s", host)
	}
	return nil
}

// fetchArchive opens an http(s) URL for git:from-archive. Only http and
// https are fetched; the body is the caller's to close.
func fetchArchive(ctx context.Context, rawURL string) (io.ReadCloser, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, apps.Errorf(apps.ErrInvalidName, "Invalid archive URL %q: use an http:// or https:// URL, or -- to read the archive from stdin", clip(RedactURL(rawURL)))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := archiveClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", RedactURL(rawURL), redactErr(err, rawURL))
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("fetch %s: %s", RedactURL(rawURL), resp.Status)
	}
	return resp.Body, nil
}

// redactErr keeps a token written into a URL out of an error's text.
func redactErr(err error, rawURL string) error {
	if red := RedactURL(rawURL); red != rawURL {
		return errors.New(strings.ReplaceAll(err.Error(), rawURL, red))
	}
	return err
}

// extractArchive unpacks an archive of kind from r into dest, an empty
// directory. Entries must stay inside dest: absolute paths, "..", links
// pointing out of the tree and special files are refused, and so is an
// archive past the size limits. When everything sits in one top-level
// directory (GitHub's source archives), its contents become the root.
func extractArchive(r io.Reader, kind, dest string) error {
	realDest, err := filepath.EvalSymlinks(dest)
	if err != nil {
		return err
	}
	x := &extractor{dest: dest, realDest: realDest}
	switch kind {
	case ArchiveTar:
		err = x.tar(r)
	case ArchiveTarGz:
		var zr *gzip.Reader
		if zr, err = gzip.NewReader(bufio.NewReader(r)); err == nil {
			err = x.tar(zr)
		}
	case ArchiveZip:
		err = x.zip(r)
	default:
		_, err = parseArchiveType(kind)
	}
	if err != nil {
		return fmt.Errorf("extract the %s archive: %w", kind, err)
	}
	if x.entries == 0 {
		return fmt.Errorf("extract the %s archive: it holds no files", kind)
	}
	return hoistSingleDir(dest)
}

// extractor writes an archive's entries under dest, counting them.
type extractor struct {
	dest     string
	realDest string // dest with its own links resolved
	entries  int
	bytes    int64
}

// target is where a member named name goes, or an error if it would
// leave dest. An empty result means the archive's root itself.
func (x *extractor) target(name string) (string, error) {
	clean := path.Clean(strings.ReplaceAll(name, "\\", "/"))
	if strings.HasPrefix(name, "/") || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(name, "\x00") {
		return "", fmt.Errorf("%q points outside the archive", clip(name))
	}
	if clean == "." {
		return "", nil
	}
	for _, part := range strings.Split(clean, "/") {
		if part == ".git" {
			return "", errSkip
		}
	}
	p := filepath.Join(x.dest, filepath.FromSlash(clean))
	// A symlink extracted before may not carry later members outside:
	// the deepest existing directory above p must resolve inside dest.
	dir := filepath.Dir(p)
	for {
		if _, err := os.Lstat(dir); err == nil || dir == x.dest {
			break
		}
		dir = filepath.Dir(dir)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("%q: %w", clip(name), err)
	}
	if rel, err := filepath.Rel(x.realDest, real); err != nil || !(rel == "." || filepath.IsLocal(rel)) {
		return "", fmt.Errorf("%q is written through a link leading outside the archive", clip(name))
	}
	return p, nil
}

// errSkip marks members left out (a .git directory inside the archive).
var errSkip = errors.New("skip")

func (x *extractor) count(size int64) error {
	x.entries++
	x.bytes += max(size, 0)
	if x.entries > maxArchiveEntries {
		return fmt.Errorf("more than %d entries", maxArchiveEntries)
	}
	if x.bytes > maxExtractedBytes {
		return fmt.Errorf("more than %d GiB once extracted", maxExtractedBytes>>30)
	}
	return nil
}

func (x *extractor) tar(r io.Reader) error {
	tr := tar.NewReader(io.LimitReader(r, maxArchiveBytes+1))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue // git archive's pax header: metadata only
		}
		if err := x.member(h.Name, h.FileInfo().Mode(), h.Linkname, h.Typeflag == tar.TypeLink, tr, h.Size); err != nil {
			return err
		}
	}
}

func (x *extractor) zip(r io.Reader) error {
	// zip needs random access: spool the archive to a temporary file.
	f, err := os.CreateTemp("", "rivetr-archive-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := io.Copy(f, io.LimitReader(r, maxArchiveBytes+1))
	if err != nil {
		return err
	}
	if n > maxArchiveBytes {
		return fmt.Errorf("larger than %d GiB", maxArchiveBytes>>30)
	}
	zr, err := zip.NewReader(f, n)
	if err != nil {
		return err
	}
	for _, zf := range zr.File {
		mode := zf.Mode()
		var link string
		if mode&fs.ModeSymlink != 0 {
			rc, err := zf.Open()
			if err != nil {
				return err
			}
			b, err := io.ReadAll(io.LimitReader(rc, 4096))
			rc.Close()
			if err != nil {
				return err
			}
			link = string(b)
		}
		err := func() error {
			var body io.Reader = strings.NewReader("")
			if mode.IsRegular() {
				rc, err := zf.Open()
				if err != nil {
					return err
				}
				defer rc.Close()
				body = rc
			}
			return x.member(zf.Name, mode, link, false, body, int64(zf.UncompressedSize64))
		}()
		if err != nil {
			return err
		}
	}
	return nil
}

// member writes one archive entry: a directory, a regular file (its
// executable bit kept), a symlink inside the tree, or a hard link to a
// file extracted before (copied).
func (x *extractor) member(name string, mode fs.FileMode, link string, hardlink bool, body io.Reader, size int64) error {
	if err := x.count(size); err != nil {
		return err
	}
	p, err := x.target(name)
	if errors.Is(err, errSkip) || (err == nil && p == "") {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	switch {
	case hardlink:
		src, err := x.target(link)
		if err != nil || src == "" {
			return fmt.Errorf("hard link %q to %q: the target is not in the archive", clip(name), clip(link))
		}
		in, err := os.Open(src)
		if err != nil {
			return fmt.Errorf("hard link %q to %q: the target is not in the archive", clip(name), clip(link))
		}
		defer in.Close()
		info, err := in.Stat()
		if err != nil || !info.Mode().IsRegular() {
			return fmt.Errorf("hard link %q to %q: the target is not a file", clip(name), clip(link))
		}
		return writeFile(p, info.Mode().Perm(), in)
	case mode.IsDir():
		return os.MkdirAll(p, 0o755)
	case mode&fs.ModeSymlink != 0:
		if link == "" || filepath.IsAbs(link) || strings.HasPrefix(link, "/") {
			return fmt.Errorf("symlink %q to %q points outside the archive", clip(name), clip(link))
		}
		resolved := filepath.Join(filepath.Dir(p), filepath.FromSlash(link))
		if rel, err := filepath.Rel(x.dest, resolved); err != nil || !(rel == "." || filepath.IsLocal(rel)) {
			return fmt.Errorf("symlink %q to %q points outside the archive", clip(name), clip(link))
		}
		os.Remove(p)
		return os.Symlink(link, p)
	case mode.IsRegular():
		return writeFile(p, mode.Perm(), io.LimitReader(body, max(size, 0)))
	}
	return fmt.Errorf("%q is not a file, directory or link (%v)", clip(name), mode.Type())
}

func writeFile(p string, perm fs.FileMode, body io.Reader) error {
	if perm&0o111 != 0 {
		perm = 0o755
	} else {
		perm = 0o644
	}
	os.Remove(p) // a link extracted at this name before is replaced, not followed
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// hoistSingleDir makes the contents of dest's only entry, a directory,
// dest's own.
func hoistSingleDir(dest string) error {
	entries, err := os.ReadDir(dest)
	if err != nil || len(entries) != 1 || !entries[0].IsDir() {
		return err
	}
	top := filepath.Join(dest, entries[0].Name())
	inner, err := os.ReadDir(top)
	if err != nil {
		return err
	}
	// The top directory steps aside under a name none of its entries has.
	taken := map[string]bool{}
	for _, e := range inner {
		taken[e.Name()] = true
	}
	aside := ".rivetr-top"
	for i := 0; taken[aside]; i++ {
		aside = fmt.Sprintf(".rivetr-top-%d", i)
	}
	moved := filepath.Join(dest, aside)
	if err := os.Rename(top, moved); err != nil {
		return err
	}
	for _, e := range inner {
		if err := os.Rename(filepath.Join(moved, e.Name()), filepath.Join(dest, e.Name())); err != nil {
			return err
		}
	}
	return os.Remove(moved)
}
