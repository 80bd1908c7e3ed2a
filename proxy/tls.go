package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
)

// LetsEncryptCA is the ACME directory used when TLSConfig.CA is empty.
const LetsEncryptCA = certmagic.LetsEncryptProductionCA

// acmeChallengePrefix is the path of HTTP-01 challenges; it is never
// redirected to HTTPS.
const acmeChallengePrefix = "/.well-known/acme-challenge/"

// TLSConfig configures automatic HTTPS (see Proxy.EnableTLS).
type TLSConfig struct {
	// DataDir is rivetr's data directory; certificates, keys and the ACME
	// account live under DataDir/certs.
	DataDir string
	// Email is the ACME account's contact (RIVETR_ACME_EMAIL); may be empty.
	Email string
	// CA is the ACME directory URL (RIVETR_ACME_CA); empty means Let's
	// Encrypt production.
	CA string
	// CARootFile is a PEM file of extra roots to trust when talking to the
	// CA (RIVETR_ACME_CA_ROOT), e.g. pebble's in tests.
	CARootFile string
	// HTTPPort is the port of the proxy's HTTP listener. HTTP-01 challenges
	// are answered by the handler of ServeHTTPWithACME on that listener;
	// the port is given so certmagic never opens a listener of its own.
	// The CA itself always connects to port 80, which must reach it.
	HTTPPort int
	// HTTPSPort is the port of the HTTPS listener, used in redirects; 0 or
	// 443 leaves the port out of the redirect URL.
	HTTPSPort int
	// RedirectAllowed, if set, is asked before a plain HTTP request for a
	// host with a certificate is redirected to HTTPS (an app setting such
	// as `proxy:set APP https-redirect false`). nil means always.
	RedirectAllowed func(host string) bool

	// renewCheckInterval overrides certmagic's background renewal check
	// interval (tests).
	renewCheckInterval time.Duration
}

// TLS is the proxy's automatic HTTPS: certificates obtained on demand from
// an ACME CA for hosts routed by exact name, one certificate per name,
// renewed in the background by certmagic and served from its in-memory
// cache, so a renewed certificate is served at once.
type TLS struct {
	p        *Proxy
	cfg      TLSConfig
	cache    *certmagic.Cache
	magic    *certmagic.Config
	issuer   *certmagic.ACMEIssuer
	tlsConf  *tls.Config
	redirect func(string) bool
	certs    *Certs // custom certificates, once attached
}

// EnableTLS sets up automatic HTTPS for p. Serve the HTTPS listener with
// ServeHTTPS and the HTTP listener with ServeHTTPWithACME; call Stop after
// Shutdown to end background renewals.
//
// A certificate is only ever requested for a host that has an exact route
// at the time of the TLS handshake (never for an arbitrary SNI name, nor a
// name only matched by a wildcard route: on-demand issuance for any
// subdomain would let anyone exhaust the CA's rate limits).
func (p *Proxy) EnableTLS(cfg TLSConfig) (*TLS, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("tls: no data directory")
	}
	ca := cfg.CA
	if ca == "" {
		ca = LetsEncryptCA
	}
	var roots *x509.CertPool
	if cfg.CARootFile != "" {
		pem, err := os.ReadFile(cfg.CARootFile)
		if err != nil {
			return nil, fmt.Errorf("tls: reading CA roots: %w", err)
		}
		roots, err = x509.SystemCertPool()
		if err != nil || roots == nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: no PEM certificate in %s", cfg.CARootFile)
		}
	}
	dir := filepath.Join(cfg.DataDir, "certs")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}

	t := &TLS{p: p, cfg: cfg, redirect: cfg.RedirectAllowed}
	logger := zap.NewNop()
	t.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) {
			return t.magic, nil
		},
		RenewCheckInterval: cfg.renewCheckInterval,
		Logger:             logger,
	})
	t.magic = certmagic.New(t.cache, certmagic.Config{
		Storage: &certmagic.FileStorage{Path: dir},
		OnDemand: &certmagic.OnDemandConfig{
			DecisionFunc: func(_ context.Context, name string) error {
				if !p.routedExactly(name) {
					return fmt.Errorf("%s is not a domain of any app", name)
				}
				return nil
			},
		},
		OnEvent: t.onEvent,
		Logger:  logger,
	})
	t.issuer = certmagic.NewACMEIssuer(t.magic, certmagic.ACMEIssuer{
		CA:                      ca,
		Email:                   cfg.Email,
		Agreed:                  true,
		TrustedRoots:            roots,
		DisableTLSALPNChallenge: true,
		AltHTTPPort:             cfg.HTTPPort,
		Logger:                  logger,
	})
	t.magic.Issuers = []certmagic.Issuer{t.issuer}

	t.tlsConf = &tls.Config{
		GetCertificate: t.magic.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
		MinVersion:     tls.VersionTLS12,
	}
	return t, nil
}

func (t *TLS) onEvent(_ context.Context, event string, data map[string]any) error {
	switch event {
	case "cert_obtained", "cert_failed":
		ev := t.p.log.Info()
		if event == "cert_failed" {
			ev = t.p.log.Warn()
			if err, ok := data["error"].(error); ok {
				ev = ev.Err(err)
			}
		}
		ev.Str("event", event).Interface("identifier", data["identifier"]).
			Interface("renewal", data["renewal"]).Msg("certificate")
	}
	return nil
}

// routedExactly reports whether host has a route of its own (not through a
// wildcard).
func (p *Proxy) routedExactly(host string) bool {
	_, ok := p.table.Load().exact[normalizeHost(host)]
	return ok
}

// TLSConfig returns the configuration of the HTTPS listener: certificates
// from the cache, obtained during the handshake when missing.
func (t *TLS) TLSConfig() *tls.Config { return t.tlsConf }

// HasCertificate reports whether an unexpired certificate for host (its
// own, or a custom wildcard one) is in the cache.
func (t *TLS) HasCertificate(host string) bool {
	_, ok := t.cached(normalizeHost(host))
	return ok
}

// Preload loads the stored ACME certificates of the routed hosts into the
// cache, so that they are renewed in the background and HTTP requests for
// them are redirected from the start, not only after a first HTTPS
// handshake.
func (t *TLS) Preload(ctx context.Context) {
	for h := range t.p.table.Load().exact {
		if _, ok := t.cached(h); ok {
			continue
		}
		if _, err := t.magic.CacheManagedCertificate(ctx, h); err == nil {
			t.p.log.Debug().Str("host", h).Msg("certificate loaded from storage")
		}
	}
}

// WriteMetrics writes rivetr_certificate_expiry_seconds for the
// certificate served for each routed host.
func (t *TLS) WriteMetrics(w io.Writer) error {
	tb := t.p.table.Load()
	hosts := make([]string, 0, len(tb.exact)+len(tb.wild))
	for h := range tb.exact {
		hosts = append(hosts, h)
	}
	for h := range tb.wild {
		hosts = append(hosts, "*."+h)
	}
	slices.Sort(hosts)
	fmt.Fprintln(w, "# HELP rivetr_certificate_expiry_seconds Seconds until the certificate served for a domain expires (negative: expired).")
	fmt.Fprintln(w, "# TYPE rivetr_certificate_expiry_seconds gauge")
	now := time.Now()
	seen := map[string]bool{}
	for _, h := range hosts {
		h = normalizeHost(h)
		if seen[h] {
			continue
		}
		seen[h] = true
		var leafEnd time.Time
		custom := false
		for _, c := range t.cache.AllMatchingCertificates(h) {
			if c.Leaf != nil && c.Leaf.NotAfter.After(leafEnd) {
				leafEnd, custom = c.Leaf.NotAfter, slices.Contains(c.Tags, customTag)
			}
		}
		if leafEnd.IsZero() {
			continue
		}
		source := "acme"
		if custom {
			source = "custom"
		}
		if _, err := fmt.Fprintf(w, "rivetr_certificate_expiry_seconds{domain=%s,source=%q} %d\n", quoteLabel(h), source, int64(leafEnd.Sub(now).Seconds())); err != nil {
			return err
		}
	}
	return nil
}

// HTTPHandler wraps the proxy for the plain HTTP listener: it answers ACME
// HTTP-01 challenges, redirects (308) routed hosts that have a certificate
// to HTTPS unless RedirectAllowed says no, and proxies everything else.
func (t *TLS) HTTPHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, acmeChallengePrefix) {
			if t.issuer.HandleHTTPChallenge(w, r) {
				return
			}
			t.p.ServeHTTP(w, r)
			return
		}
		host := normalizeHost(r.Host)
		if rt := t.p.table.Load().lookup(host); rt != nil && t.HasCertificate(host) &&
			(t.redirect == nil || t.redirect(host)) {
			http.Redirect(w, r, t.httpsURL(host, r), http.StatusPermanentRedirect)
			rt.m.request(http.StatusPermanentRedirect)
			return
		}
		t.p.ServeHTTP(w, r)
	})
}

func (t *TLS) httpsURL(host string, r *http.Request) string {
	if strings.Contains(host, ":") { // IPv6 literal
		host = "[" + strings.Trim(host, "[]") + "]"
	}
	if port := t.cfg.HTTPSPort; port != 0 && port != 443 {
		host = net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(port))
	}
	return "https://" + host + r.URL.RequestURI()
}

// ServeHTTPWithACME is Proxy.Serve on the plain HTTP listener with
// HTTPHandler. It returns nil after Shutdown.
func (t *TLS) ServeHTTPWithACME(ln net.Listener) error {
	return t.p.serveWith(ln, t.HTTPHandler(), nil)
}

// ServeHTTPS serves the proxy over TLS (HTTP/2 and HTTP/1.1) on ln, a plain
// TCP listener. It returns nil after Shutdown.
func (t *TLS) ServeHTTPS(ln net.Listener) error {
	return t.p.serveWith(ln, t.p, t.tlsConf)
}

// Stop ends background certificate maintenance.
func (t *TLS) Stop() { t.cache.Stop() }
