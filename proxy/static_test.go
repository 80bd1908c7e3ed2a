package proxy

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rivetr/rivetr/apps"
)

// siteTree writes files (name -> content) under a new directory.
func siteTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestStaticSite(t *testing.T) { bothPaths(t, testStaticSite) }

func testStaticSite(t *testing.T, opts Options) {
	dir := siteTree(t, map[string]string{
		"index.html":       "<h1>home</h1>",
		"about/index.html": "<h1>about</h1>",
		"app.js":           "console.log('plain')",
		"app.js.br":        "BROTLI",
		"app.js.gz":        "GZIP",
		"style.css":        "body{}",
		"404.html":         "<h1>custom 404</h1>",
		".env":             "SECRET=1",
		"big.bin":          "0123456789",
	})
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("outside"), 0o644)
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}

	tp := startProxy(t, zerolog.Nop(), opts)
	tp.SetStatic("site", []string{"site.example.com"}, apps.StaticSite{Dir: dir, NotFound: "404.html"})
	get := func(path string, hdr map[string]string) result {
		t.Helper()
		return tp.do(t, "GET", "site.example.com", path, nil, hdr)
	}

	res := get("/", nil)
	if res.status != 200 || res.body != "<h1>home</h1>" || res.header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %q %v", res.status, res.body, res.header)
	}
	tag := res.header.Get("ETag")
	if !strings.HasPrefix(tag, `W/"`) || res.header.Get("Last-Modified") == "" || res.header.Get("X-Request-Id") == "" {
		t.Errorf("validators: ETag %q Last-Modified %q", tag, res.header.Get("Last-Modified"))
	}
	if r := get("/", map[string]string{"If-None-Match": tag}); r.status != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", r.status)
	}
	if r := get("/big.bin", map[string]string{"Range": "bytes=2-5"}); r.status != http.StatusPartialContent || r.body != "2345" || r.header.Get("Content-Range") != "bytes 2-5/10" {
		t.Errorf("Range: %d %q %q", r.status, r.body, r.header.Get("Content-Range"))
	}
	for _, tc := range []struct{ accept, body, enc string }{
		{"gzip, br", "BROTLI", "br"},
		{"gzip", "GZIP", "gzip"},
		{"br;q=0, gzip", "GZIP", "gzip"},
		{"identity", "console.log('plain')", ""},
	} {
		// Set on the request by hand: the Go client would ask for gzip and
		// decode it itself.
		r := get("/app.js", map[string]string{"Accept-Encoding": tc.accept})
		if r.body != tc.body || r.header.Get("Content-Encoding") != tc.enc || r.header.Get("Vary") != "Accept-Encoding" ||
			!strings.HasPrefix(r.header.Get("Content-Type"), "text/javascript") {
			t.Errorf("Accept-Encoding %q: %q, encoding %q, vary %q, type %q", tc.accept, r.body, r.header.Get("Content-Encoding"), r.header.Get("Vary"), r.header.Get("Content-Type"))
		}
	}
	if r := get("/style.css", nil); r.header.Get("Content-Type") != "text/css; charset=utf-8" || r.header.Get("Vary") != "" {
		t.Errorf("css: %v", r.header)
	}

	noFollow := &http.Client{Transport: tp.client.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", "http://"+tp.addr+"/about?x=1", nil)
	req.Host = "site.example.com"
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/about/?x=1" {
		t.Errorf("/about: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if r := get("/about/", nil); r.body != "<h1>about</h1>" {
		t.Errorf("/about/: %d %q", r.status, r.body)
	}
	for _, p := range []string{"/missing", "/.env", "/../../etc/passwd", "/link.txt", "/about/../.env"} {
		if r := get(p, nil); r.status != 404 || r.body != "<h1>custom 404</h1>" {
			t.Errorf("GET %s: %d %q, want the custom 404", p, r.status, r.body)
		}
	}
	if r := tp.do(t, "POST", "site.example.com", "/", strings.NewReader("x"), nil); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d %v", r.status, r.header)
	}
	if r := tp.do(t, "HEAD", "site.example.com", "/", nil, nil); r.status != 200 || r.body != "" {
		t.Errorf("HEAD: %d %q", r.status, r.body)
	}

	// SPA: page-like paths fall back to index.html; files still 404.
	tp.SetStatic("site", []string{"site.example.com"}, apps.StaticSite{Dir: dir, SPA: true})
	if r := get("/dashboard/settings", nil); r.status != 200 || r.body != "<h1>home</h1>" {
		t.Errorf("SPA fallback: %d %q", r.status, r.body)
	}
	if r := get("/missing.png", nil); r.status != 404 || !strings.Contains(r.body, "There is no page at this address") {
		t.Errorf("SPA missing file: %d %q", r.status, r.body)
	}
}

// TestStaticSwap: switching a site between trees under load: every request
// gets a complete page of one release, never an error.
func TestStaticSwap(t *testing.T) {
	v1 := siteTree(t, map[string]string{"index.html": "v1"})
	v2 := siteTree(t, map[string]string{"index.html": "v2"})
	tp := startProxy(t, zerolog.Nop(), Options{})
	tp.SetStatic("site", []string{"site.example.com"}, apps.StaticSite{Dir: v1})
	var bad atomic.Int32
	var sawV2 atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := tp.get(t, "site.example.com")
				switch {
				case r.status == 200 && r.body == "v2":
					sawV2.Store(true)
				case r.status == 200 && r.body == "v1":
				default:
					bad.Add(1)
				}
			}
		})
	}
	for i := range 50 {
		dir := v1
		if i >= 25 {
			dir = v2
		}
		tp.SetStatic("site", []string{"site.example.com"}, apps.StaticSite{Dir: dir})
	}
	for range 100 {
		tp.get(t, "site.example.com")
	}
	close(stop)
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Errorf("%d requests failed during the swaps", n)
	}
	if !sawV2.Load() {
		t.Error("never served v2")
	}
	var m strings.Builder
	tp.WriteMetrics(&m)
	if !strings.Contains(m.String(), `rivetr_proxy_requests_total{app="site",code="200"}`) {
		t.Errorf("static requests not counted:\n%s", m.String())
	}
}

// TestStaticFastPathMatchesNetHTTP: the answers the fast path gives from
// its cache are net/http's, header for header, and what it cannot answer
// still works.
func TestStaticFastPathMatchesNetHTTP(t *testing.T) {
	dir := siteTree(t, map[string]string{
		"index.html":      "<h1>home</h1>",
		"docs/index.html": "<h1>docs</h1>",
		"a.txt":           "plain text",
		"empty.json":      "",
		"big.bin":         strings.Repeat("x", cacheFileMax+1),
		"mid.css":         strings.Repeat("y", 40<<10),
	})
	fast := startProxy(t, zerolog.Nop(), Options{})
	slow := startProxy(t, zerolog.Nop(), Options{netHTTPOnly: true})
	for _, tp := range []*testProxy{fast, slow} {
		tp.SetStatic("site", []string{"site.example.com"}, apps.StaticSite{Dir: dir})
	}
	for _, path := range []string{"/", "/a.txt", "/a.txt?v=3", "/empty.json", "/docs/", "/mid.css", "/big.bin"} {
		for _, method := range []string{"GET", "HEAD"} {
			for range 2 { // the second from the cache
				f := fast.do(t, method, "site.example.com", path, nil, nil)
				s := slow.do(t, method, "site.example.com", path, nil, nil)
				if f.status != s.status || f.body != s.body {
					t.Errorf("%s %s: fast %d %d bytes, net/http %d %d bytes", method, path, f.status, len(f.body), s.status, len(s.body))
				}
				for _, h := range []http.Header{f.header, s.header} {
					if h.Get("Date") == "" || len(h.Get("X-Request-Id")) != 32 {
						t.Errorf("%s %s: Date %q, X-Request-Id %q", method, path, h.Get("Date"), h.Get("X-Request-Id"))
					}
					h.Del("Date")
					h.Del("X-Request-Id")
				}
				if fmt.Sprint(f.header) != fmt.Sprint(s.header) {
					t.Errorf("%s %s headers:\nfast     %v\nnet/http %v", method, path, f.header, s.header)
				}
			}
		}
	}
	rt := fast.table.Load().lookup("site.example.com")
	rt.site.cache.mu.RLock()
	cached := map[string]bool{}
	for k, v := range rt.site.cache.m {
		cached[k] = v != nil
	}
	rt.site.cache.mu.RUnlock()
	for path, want := range map[string]bool{"/": true, "/a.txt": true, "/docs/": true, "/mid.css": true, "/big.bin": false} {
		if cached[path] != want {
			t.Errorf("cache of %s: %v, want %v (all: %v)", path, cached[path], want, cached)
		}
	}
	// A client's request ID is kept; conditional requests still get 304.
	r := fast.do(t, "GET", "site.example.com", "/a.txt", nil, map[string]string{"X-Request-Id": "trace-1"})
	if r.header.Get("X-Request-Id") != "trace-1" {
		t.Errorf("request id %q", r.header.Get("X-Request-Id"))
	}
	if c := fast.do(t, "GET", "site.example.com", "/a.txt", nil, map[string]string{"If-None-Match": r.header.Get("ETag")}); c.status != http.StatusNotModified {
		t.Errorf("If-None-Match on the fast path's file: %d", c.status)
	}
	if c := fast.do(t, "GET", "site.example.com", "/a.txt", nil, map[string]string{"Range": "bytes=0-4"}); c.status != http.StatusPartialContent || c.body != "plain" {
		t.Errorf("Range on the fast path's file: %d %q", c.status, c.body)
	}
}
