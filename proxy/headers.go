package proxy

import (
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
)

// Canonical header keys, used directly on the map to skip
// canonicalisation on the request path.
const (
	hdrRequestID      = "X-Request-Id"
	hdrForwardedPort  = "X-Forwarded-Port"
	maxRequestIDBytes = 128
)

// setForwardedHeaders sets the headers an upstream sees about the client:
// X-Forwarded-For (the client's address appended to any the client sent,
// as nginx's $proxy_add_x_forwarded_for: only the last entry is the proxy's
// word), -Proto, -Host, -Port (the port the client connected to) and
// X-Request-Id. ReverseProxy has removed the client's X-Forwarded-For,
// -Host, -Proto and Forwarded from pr.Out before Rewrite runs; the client's
// -Host and -Proto stay dropped.
func setForwardedHeaders(pr *httputil.ProxyRequest) {
	if prior := pr.In.Header["X-Forwarded-For"]; len(prior) > 0 {
		pr.Out.Header["X-Forwarded-For"] = prior // SetXForwarded replaces, not appends to, this slice
	}
	pr.SetXForwarded()
	h := pr.Out.Header
	if port := localPort(pr.In); port != "" {
		h[hdrForwardedPort] = []string{port}
	} else {
		delete(h, hdrForwardedPort)
	}
	h[hdrRequestID] = []string{requestID(pr.In.Header)}
}

// setResponseID is ReverseProxy's ModifyResponse: the response carries the
// request's id, whatever the upstream put there.
func setResponseID(resp *http.Response) error {
	if resp.Request != nil {
		if id := resp.Request.Header[hdrRequestID]; len(id) > 0 {
			resp.Header[hdrRequestID] = id[:1:1]
		}
	}
	return nil
}

// localPort is the port of the listener that accepted r.
func localPort(r *http.Request) string {
	switch a := r.Context().Value(http.LocalAddrContextKey).(type) {
	case *net.TCPAddr:
		switch a.Port {
		case 80:
			return "80"
		case 443:
			return "443"
		}
		return strconv.Itoa(a.Port)
	case net.Addr:
		if _, port, err := net.SplitHostPort(a.String()); err == nil {
			return port
		}
	}
	return ""
}

// requestID returns the request's X-Request-Id if it is a sane one, else a
// new random id.
func requestID(h http.Header) string {
	if v := h[hdrRequestID]; len(v) > 0 && validRequestID(v[0]) {
		return v[0]
	}
	return newRequestID()
}

// validRequestID accepts what tracing systems send (UUIDs, hex, base64,
// "Root=1-..." of AWS) and nothing that could break a log line.
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > maxRequestIDBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '+', c == '/', c == '=', c == ';', c == '@':
		default:
			return false
		}
	}
	return true
}

// newRequestID returns 16 random bytes in hex. The runtime's ChaCha8
// generator is unpredictable and needs no lock, which crypto/rand would not
// add anything to for an id.
func newRequestID() string {
	var dst [32]byte
	putRequestID(dst[:])
	return string(dst[:])
}

// putRequestID writes a new request id into dst (32 bytes at least) and
// returns its length.
func putRequestID(dst []byte) int {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	return hex.Encode(dst, b[:])
}

// Error pages, built once.
var pages = map[int][]byte{
	http.StatusNotFound:              page(http.StatusNotFound, "No app is configured for this host."),
	http.StatusRequestEntityTooLarge: page(http.StatusRequestEntityTooLarge, "The request body is too large."),
	http.StatusBadGateway:            page(http.StatusBadGateway, "The app is not responding. It may be starting, stopped or crashed."),
	http.StatusServiceUnavailable:    page(http.StatusServiceUnavailable, "The app has no running web process."),
	http.StatusGatewayTimeout:        page(http.StatusGatewayTimeout, "The app took too long to respond."),
}

func page(code int, msg string) []byte {
	title := strconv.Itoa(code) + " " + http.StatusText(code)
	return []byte("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>" + title +
		"</title></head>\n<body><h1>" + title + "</h1>\n<p>" + msg +
		"</p>\n<hr><p>rivetr</p></body></html>\n")
}

// writePage answers r with the error page of code. The request id is the
// one forwarded (r may be the outgoing request) or a new one.
func writePage(w http.ResponseWriter, r *http.Request, code int) {
	writePageBody(w, r, code, pages[code])
}

// writePageBody sends one of the proxy's small pages.
func writePageBody(w http.ResponseWriter, r *http.Request, code int, body []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"text/html; charset=utf-8"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	h["Cache-Control"] = []string{"no-store"}
	if _, ok := h[hdrRequestID]; !ok {
		h[hdrRequestID] = []string{requestID(r.Header)}
	}
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
