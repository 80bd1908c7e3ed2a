package proxy

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"path"
	"strconv"
	"sync"
	"time"
)

// The fast path's static files: the small files of a static site are read
// once into memory, with their response head, and answered without
// net/http. A release's tree never changes (a deploy swaps in a new site
// with a new cache), so an entry lives as long as its site. Everything
// that needs more than "200 and the bytes" stays with net/http: ranges,
// conditional requests, precompressed variants, directories without their
// slash, 404s and the SPA fallback, large files.
const (
	cacheFileMax    = 256 << 10 // largest file kept
	cacheSiteMax    = 8 << 20   // bytes of bodies kept per site
	cacheEntriesMax = 4096      // paths remembered per site, kept or not
)

// cachedFile is a file the fast path answers: the status line and fixed
// headers, and the body.
type cachedFile struct {
	head []byte
	body []byte
}

// fileCache maps request paths to their file; a nil entry is a path the
// fast path hands to net/http.
type fileCache struct {
	mu    sync.RWMutex
	m     map[string]*cachedFile
	bytes int
}

// fastFile returns the cached answer for the request path p (no query),
// loading it on first use; nil means net/http serves p.
func (s *staticSite) fastFile(p []byte) *cachedFile {
	c := &s.cache
	c.mu.RLock()
	e, seen := c.m[bytesString(p)]
	c.mu.RUnlock()
	if seen {
		return e
	}
	key := string(p)
	e = s.loadFast(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*cachedFile{}
	}
	if len(c.m) >= cacheEntriesMax {
		return e // serve it, remember nothing more
	}
	if e != nil && c.bytes+len(e.body) > cacheSiteMax {
		c.m[key] = nil
		return e
	}
	if e != nil {
		c.bytes += len(e.body)
	}
	c.m[key] = e
	return e
}

// loadFast resolves p as serve does and builds its answer when the fast
// path can give it; nil otherwise.
func (s *staticSite) loadFast(p string) *cachedFile {
	if s == nil || s.root == nil || !fastPath(p) {
		return nil
	}
	name, f, fi, redirect, err := s.lookup(p)
	if err != nil || redirect != "" {
		return nil // 404, SPA fallback or the redirect to the slash: net/http
	}
	defer f.Close()
	if fi.Size() > cacheFileMax {
		return nil
	}
	for _, ext := range []string{".br", ".gz"} {
		if _, err := s.root.Stat(name + ext); err == nil {
			return nil // Accept-Encoding negotiation: net/http
		}
	}
	body := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, body); err != nil {
		return nil
	}
	// The headers http.ServeContent sends for a whole file, with the
	// Content-Type and ETag send sets.
	h := []byte("HTTP/1.1 200 OK\r\nAccept-Ranges: bytes\r\nContent-Length: ")
	h = strconv.AppendInt(h, fi.Size(), 10)
	h = append(h, "\r\nContent-Type: "...)
	h = append(h, contentType(name)...)
	h = append(h, "\r\nEtag: "...)
	h = append(h, etag(fi)...)
	if mt := fi.ModTime(); !mt.IsZero() && !mt.Equal(time.Unix(0, 0)) {
		h = append(h, "\r\nLast-Modified: "...)
		h = append(h, mt.UTC().Format(http.TimeFormat)...)
	}
	h = append(h, "\r\n"...)
	return &cachedFile{head: h, body: body}
}

// fastPath reports whether p is a path net/http would see unchanged: clean
// (but for a trailing slash), printable ASCII, nothing escaped.
func fastPath(p string) bool {
	if len(p) == 0 || p[0] != '/' || len(p) > 1024 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || c == '%' || c == '\\' {
			return false
		}
	}
	clean := path.Clean(p)
	return p == clean || p == clean+"/"
}

// serveStatic answers the request at the head of the buffer (head bytes
// long) from rt's site cache. ok is false when net/http must serve it.
func (fc *fastConn) serveStatic(rt *route, headLen int) (keep, ok bool) {
	req := &fc.req
	get := string(req.method) == http.MethodGet
	if req.contentLength != 0 || !(get || req.head) {
		return false, false
	}
	for _, f := range req.fields[:req.n] {
		if fold(f.name, "Range") || fold(f.name, "If-Range") || fold(f.name, "If-None-Match") ||
			fold(f.name, "If-Modified-Since") || fold(f.name, "If-Match") || fold(f.name, "If-Unmodified-Since") {
			return false, false
		}
	}
	target := req.target
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	e := rt.site.fastFile(target)
	if e == nil {
		return false, false
	}
	start := time.Now()
	if id := req.requestID; validRequestID(bytesString(id)) {
		fc.idLen = copy(fc.id[:], id)
	} else {
		fc.idLen = putRequestID(fc.id[:])
	}
	outp := outBuffers.Get().(*[]byte)
	defer outBuffers.Put(outp)
	out := append((*outp)[:0], e.head...)
	out = append(out, "Date: "...)
	out = append(out, httpDate()...)
	if req.close {
		out = append(out, "\r\nConnection: close"...)
	}
	out = append(out, "\r\nX-Request-Id: "...)
	out = append(out, fc.id[:fc.idLen]...)
	out = append(out, "\r\n\r\n"...)
	fc.br.Discard(headLen)
	var err error
	switch {
	case req.head || len(e.body) == 0:
		_, err = fc.c.Write(out)
	case len(out)+len(e.body) <= cap(out):
		_, err = fc.c.Write(append(out, e.body...))
	default:
		bufs := net.Buffers{out, e.body} // one writev, no copy of the body
		_, err = bufs.WriteTo(fc.c)
	}
	rt.m.request(http.StatusOK)
	if fc.p.opts.AccessLog {
		n := int64(len(e.body))
		if req.head {
			n = 0
		}
		fc.p.log.Info().Str("method", string(req.method)).Str("host", string(req.host)).
			Str("path", pathOnly(req.target)).Int("status", http.StatusOK).Int64("bytes", n).
			Dur("duration", time.Since(start)).Str("app", rt.app).Msg("request")
	}
	return err == nil && !req.close, true
}
