package proxy

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/rivetr/rivetr/apps"
)

// staticSite serves a static release's tree: GET and HEAD only, through an
// os.Root so no path (with "..", or a link) leaves the tree; dot files are
// never served (but /.well-known/); index.html for directories; content
// types by extension; ETag and Last-Modified with conditional and range
// requests (http.ServeContent); a precompressed NAME.br or NAME.gz beside
// NAME when the client accepts it; an optional SPA fallback to index.html
// and a custom 404 page.
type staticSite struct {
	root     *os.Root
	spa      bool
	notFound string
	cache    fileCache // small files for the fast path (staticfast.go)
}

// rootGrace is how long a replaced site's root stays open, for requests
// that looked its route up just before the swap.
const rootGrace = time.Minute

func openSite(s apps.StaticSite) (*staticSite, error) {
	root, err := os.OpenRoot(s.Dir)
	if err != nil {
		return nil, fmt.Errorf("open static site: %w", err)
	}
	return &staticSite{root: root, spa: s.SPA, notFound: s.NotFound}, nil
}

// retire closes the site's root once requests that may still use it are
// done.
func (s *staticSite) retire() {
	if s != nil && s.root != nil {
		time.AfterFunc(rootGrace, func() { s.root.Close() })
	}
}

var errNotServed = errors.New("not served")

// serve answers r and returns the status code sent.
func (s *staticSite) serve(w http.ResponseWriter, r *http.Request) int {
	h := w.Header()
	h[hdrRequestID] = []string{requestID(r.Header)}
	if s == nil || s.root == nil {
		writePage(w, r, http.StatusServiceUnavailable)
		return http.StatusServiceUnavailable
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		writeStaticPage(w, r, http.StatusMethodNotAllowed)
		return http.StatusMethodNotAllowed
	}
	name, f, fi, redirect, err := s.lookup(r.URL.Path)
	if redirect != "" {
		if q := r.URL.RawQuery; q != "" {
			redirect += "?" + q
		}
		http.Redirect(w, r, redirect, http.StatusMovedPermanently)
		return http.StatusMovedPermanently
	}
	if errors.Is(err, errHidden) {
		return s.missing(w, r)
	}
	if err != nil {
		if s.spa && path.Ext(name) == "" {
			if f, fi, err = s.open("index.html"); err == nil {
				return s.send(w, r, "index.html", f, fi, http.StatusOK)
			}
		}
		return s.missing(w, r)
	}
	return s.send(w, r, name, f, fi, http.StatusOK)
}

// errHidden: the path names a dot file, which is never served.
var errHidden = errors.New("hidden")

// lookup resolves a URL path to the file of the tree it serves: name and
// the open file (index.html for a directory), or the target of the 301 a
// directory's URL without its slash gets, or an error (errHidden for dot
// files; name is then still the path looked for).
func (s *staticSite) lookup(urlPath string) (name string, f *os.File, fi fs.FileInfo, redirect string, err error) {
	clean := path.Clean("/" + urlPath)
	name = strings.TrimPrefix(clean, "/")
	if name == "" {
		name = "."
	}
	if hidden(name) {
		return name, nil, nil, "", errHidden
	}
	f, fi, err = s.open(name)
	if err != nil || !fi.IsDir() {
		return name, f, fi, "", err
	}
	f.Close()
	if !strings.HasSuffix(urlPath, "/") {
		// As nginx: a directory's URL ends with a slash.
		if clean == "/" {
			return name, nil, nil, "/", nil
		}
		return name, nil, nil, clean + "/", nil
	}
	name = path.Join(name, "index.html")
	f, fi, err = s.open(name)
	if err == nil && fi.IsDir() {
		f.Close()
		return name, nil, nil, "", errNotServed
	}
	return name, f, fi, "", err
}

// hidden reports whether a path has a dot-file segment (other than
// .well-known): .git, .env and the like are never served.
func hidden(name string) bool {
	for _, seg := range strings.Split(name, "/") {
		if strings.HasPrefix(seg, ".") && seg != "." && seg != ".well-known" {
			return true
		}
	}
	return false
}

// open opens name in the tree: a regular file or a directory.
func (s *staticSite) open(name string) (*os.File, fs.FileInfo, error) {
	f, err := s.root.Open(name)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil || !(fi.Mode().IsRegular() || fi.IsDir()) {
		f.Close()
		return nil, nil, errNotServed
	}
	return f, fi, nil
}

// missing answers 404 with the site's own page when it has one.
func (s *staticSite) missing(w http.ResponseWriter, r *http.Request) int {
	if s.notFound != "" {
		if f, fi, err := s.open(s.notFound); err == nil && fi.Mode().IsRegular() {
			defer f.Close()
			h := w.Header()
			h.Set("Content-Type", contentType(s.notFound))
			h.Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
			h.Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusNotFound)
			if r.Method != http.MethodHead {
				f.WriteTo(w)
			}
			return http.StatusNotFound
		}
	}
	writeStaticPage(w, r, http.StatusNotFound)
	return http.StatusNotFound
}

// send serves f (name in the tree), or its precompressed variant.
func (s *staticSite) send(w http.ResponseWriter, r *http.Request, name string, f *os.File, fi fs.FileInfo, code int) int {
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", contentType(name))
	body, info := f, fi
	accept := r.Header.Get("Accept-Encoding")
	varies := false
	for _, enc := range []struct{ token, ext string }{{"br", ".br"}, {"gzip", ".gz"}} {
		cf, cfi, err := s.open(name + enc.ext)
		if err != nil {
			continue
		}
		if cfi.IsDir() {
			cf.Close()
			continue
		}
		varies = true
		if body == f && acceptsEncoding(accept, enc.token) {
			body, info = cf, cfi
			h.Set("Content-Encoding", enc.token)
			defer cf.Close()
			continue
		}
		cf.Close()
	}
	if varies {
		h.Add("Vary", "Accept-Encoding")
	}
	h.Set("ETag", etag(info))
	sw := &statusWriter{ResponseWriter: w, code: code}
	http.ServeContent(sw, r, name, info.ModTime(), body)
	return sw.code
}

// etag is a weak validator from size and modification time, as nginx's.
func etag(fi fs.FileInfo) string {
	return `W/"` + strconv.FormatInt(fi.ModTime().UnixNano(), 16) + "-" + strconv.FormatInt(fi.Size(), 16) + `"`
}

// contentType is the type of a file by its extension; text types are
// UTF-8.
func contentType(name string) string {
	t := mime.TypeByExtension(path.Ext(name))
	if t == "" {
		return "application/octet-stream"
	}
	if strings.HasPrefix(t, "text/") && !strings.Contains(t, "charset") {
		t += "; charset=utf-8"
	}
	return t
}

// acceptsEncoding reports whether an Accept-Encoding value allows token
// (present and not with q=0).
func acceptsEncoding(accept, token string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), token) {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// statusWriter records the status ServeContent sends.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// ReadFrom keeps the server's sendfile path for file bodies.
func (s *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(s.ResponseWriter, r)
}

// writeStaticPage is the proxy's page for a static site's 404 and 405.
func writeStaticPage(w http.ResponseWriter, r *http.Request, code int) {
	writePageBody(w, r, code, staticPages[code])
}

var staticPages = map[int][]byte{
	http.StatusNotFound:         page(http.StatusNotFound, "There is no page at this address."),
	http.StatusMethodNotAllowed: page(http.StatusMethodNotAllowed, "This site only answers GET and HEAD."),
}
