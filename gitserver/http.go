package gitserver

import (
	"context"
	"crypto/subtle"
	"io"
	"net"
	"net/http"
	"net/http/cgi"
	"strings"

	"github.com/rs/zerolog"

	"github.com/rivetr/rivetr/apps"
)

// TokenFinder finds an API token by the hash of its secret.
type TokenFinder interface {
	TokenByHash(ctx context.Context, hash string) (apps.Token, error)
}

// HTTP serves smart-HTTP git at /APP.git/... with HTTP basic auth: any user
// name, an API token as the password. It runs `git http-backend` through
// net/http/cgi, which keeps git's stderr out of the protocol stream and
// lets each request carry its pusher to the hook.
type HTTP struct {
	Access *Access
	Tokens TokenFinder
	Log    zerolog.Logger
}

func (h *HTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Paths: /APP.git/info/refs, /APP.git/git-upload-pack, /APP.git/git-receive-pack
	// (also without ".git").
	trimmed := strings.TrimPrefix(r.URL.Path, "/")
	repoPart, rest, ok := strings.Cut(trimmed, "/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	service := ""
	switch {
	case rest == "info/refs" && r.Method == http.MethodGet:
		service = r.URL.Query().Get("service")
	case rest == "git-upload-pack" && r.Method == http.MethodPost:
		service = "git-upload-pack"
	case rest == "git-receive-pack" && r.Method == http.MethodPost:
		service = "git-receive-pack"
	}
	if service != "git-upload-pack" && service != "git-receive-pack" {
		http.Error(w, "rivetr serves only smart-HTTP git here", http.StatusForbidden)
		return
	}
	user, ok := h.authenticate(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="rivetr"`)
		http.Error(w, "Authentication required: use an API token (rivetr tokens:create NAME) as the password", http.StatusUnauthorized)
		return
	}
	app, err := ParsePath(repoPart)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var path string
	if service == "git-receive-pack" {
		path, err = h.Access.ForPush(r.Context(), app, io.Discard)
	} else {
		path, err = h.Access.ForFetch(r.Context(), app)
	}
	if err != nil {
		code := http.StatusInternalServerError
		if isNotFound(err) {
			code = http.StatusNotFound
		}
		http.Error(w, err.Error(), code)
		return
	}
	h.Log.Info().Str("app", app).Str("service", service).Str("user", user).Msg("git over http")
	cgiH := &cgi.Handler{
		Path: h.Access.GitPath,
		Args: []string{"http-backend"},
		Dir:  path,
		Env: append(h.Access.Env(user),
			"GIT_PROJECT_ROOT="+h.Access.Repos.Dir,
			"GIT_HTTP_EXPORT_ALL=1",
			"REMOTE_USER="+user,
			"GIT_HTTP_MAX_REQUEST_BUFFER=100M",
		),
		Stderr: logWriter{h.Log, app},
	}
	// Canonical path for http-backend, whatever form the client used.
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/" + app + ".git/" + rest
	if len(r2.TransferEncoding) > 0 {
		// git sends packs over http.postBuffer (1 MiB) chunked, which
		// net/http/cgi refuses. With no CONTENT_LENGTH, http-backend reads
		// the body to EOF, so pass it on as a stream of unknown length.
		r2.TransferEncoding = nil
		r2.ContentLength = -1
	}
	cgiH.ServeHTTP(flushWriter{w}, r2)
}

// TokenOrLoopback wraps next so that only a request from a loopback
// address or one with a valid API token (HTTP basic auth as for git, or
// "Authorization: Bearer TOKEN") reaches it; others get 401.
func (h *HTTP) TokenOrLoopback(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
				next.ServeHTTP(w, r)
				return
			}
		}
		if _, ok := h.authenticate(r); !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="rivetr"`)
			http.Error(w, "an API token is required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate checks HTTP basic auth (or a bearer token): the password
// must be a valid token.
func (h *HTTP) authenticate(r *http.Request) (string, bool) {
	_, pass, ok := r.BasicAuth()
	if !ok {
		if bearer, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); found {
			pass, ok = strings.TrimSpace(bearer), true
		}
	}
	if !ok || pass == "" || len(pass) > 256 {
		return "", false
	}
	hash := apps.HashToken(pass)
	t, err := h.Tokens.TokenByHash(r.Context(), hash)
	if err != nil {
		return "", false
	}
	// The lookup matched on the hash; compare again in constant time so
	// no timing of ours depends on the secret.
	if subtle.ConstantTimeCompare([]byte(t.Hash), []byte(hash)) != 1 {
		return "", false
	}
	return "token:" + t.Name, true
}

// flushWriter flushes after every write so hook output (the build log)
// reaches the pusher as it happens.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Header() http.Header  { return f.w.Header() }
func (f flushWriter) WriteHeader(code int) { f.w.WriteHeader(code) }
func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}

type logWriter struct {
	log zerolog.Logger
	app string
}

func (l logWriter) Write(p []byte) (int, error) {
	l.log.Warn().Str("app", l.app).Str("stderr", strings.TrimSpace(string(p))).Msg("git http-backend")
	return len(p), nil
}
