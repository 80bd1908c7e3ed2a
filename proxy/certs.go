package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/rivetr/rivetr/apps"
)

var _ apps.Certs = (*Certs)(nil)

// customTag marks custom certificates in certmagic's cache.
const customTag = "rivetr-custom"

// Certs implements apps.Certs: custom certificates (certs:add) are kept
// under DataDir/certs/custom/APP as cert.pem and key.pem (0600), and served
// from the TLS cache when HTTPS is on; ACME certificates are the TLS
// cache's own. With HTTPS off, custom certificates are still stored and
// reported, and served once HTTPS is turned on.
type Certs struct {
	dir string

	mu     sync.Mutex
	tls    *TLS              // nil: HTTPS is off
	hashes map[string]string // app -> cache hash of its custom certificate
}

// NewCerts returns the certificate store of dataDir.
func NewCerts(dataDir string) *Certs {
	return &Certs{dir: filepath.Join(dataDir, "certs", "custom"), hashes: map[string]string{}}
}

// Attach serves the stored custom certificates through t (HTTPS on). A
// certificate that no longer loads is logged and skipped.
func (c *Certs) Attach(ctx context.Context, t *TLS) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tls = t
	t.certs = c
	entries, _ := os.ReadDir(c.dir)
	for _, e := range entries {
		app := e.Name()
		if !e.IsDir() || apps.ValidateAppName(app) != nil {
			continue
		}
		certPEM, keyPEM, err := c.read(app)
		if err == nil {
			err = c.cacheLocked(ctx, app, certPEM, keyPEM)
		}
		if err != nil {
			t.p.log.Warn().Str("app", app).Err(err).Msg("custom certificate not loaded")
		}
	}
}

// HTTPS reports whether HTTPS is on.
func (c *Certs) HTTPS() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tls != nil
}

// Dir is where app's custom certificate is stored.
func (c *Certs) Dir(app string) string { return filepath.Join(c.dir, app) }

// AddCustom validates certPEM (leaf first, then intermediates) and keyPEM,
// stores them and serves them at once.
func (c *Certs) AddCustom(ctx context.Context, app string, certPEM, keyPEM []byte) (apps.Certificate, error) {
	if err := apps.ValidateAppName(app); err != nil {
		return apps.Certificate{}, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return apps.Certificate{}, apps.Errorf(apps.ErrBadCertificate, "Invalid certificate or key: %s", tlsErrorText(err))
	}
	info, err := describe(pair.Certificate, true)
	if err != nil {
		return apps.Certificate{}, err
	}
	if len(info.Names) == 0 {
		return apps.Certificate{}, apps.Errorf(apps.ErrBadCertificate, "Invalid certificate: it names no DNS host (subject alternative name)")
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	dir := c.Dir(app)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return apps.Certificate{}, fmt.Errorf("store certificate: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, "key.pem"), keyPEM); err != nil {
		return apps.Certificate{}, err
	}
	if err := writeFileAtomic(filepath.Join(dir, "cert.pem"), certPEM); err != nil {
		return apps.Certificate{}, err
	}
	if c.tls != nil {
		if err := c.cacheLocked(ctx, app, certPEM, keyPEM); err != nil {
			return apps.Certificate{}, err
		}
	}
	return info, nil
}

// cacheLocked puts app's custom certificate in the TLS cache in place of
// its previous one. c.mu is held.
func (c *Certs) cacheLocked(ctx context.Context, app string, certPEM, keyPEM []byte) error {
	hash, err := c.tls.magic.CacheUnmanagedCertificatePEMBytes(ctx, certPEM, keyPEM, []string{customTag, "app:" + app})
	if err != nil {
		return fmt.Errorf("serve certificate: %w", err)
	}
	if old, ok := c.hashes[app]; ok && old != hash {
		c.tls.cache.Remove([]string{old})
	}
	c.hashes[app] = hash
	return nil
}

// RemoveCustom deletes app's custom certificate and stops serving it.
func (c *Certs) RemoveCustom(_ context.Context, app string) error {
	if err := apps.ValidateAppName(app); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	dir := c.Dir(app)
	if _, err := os.Stat(filepath.Join(dir, "cert.pem")); errors.Is(err, os.ErrNotExist) {
		return apps.Errorf(apps.ErrNoCertificate, "App %s has no custom certificate", app)
	}
	if c.tls != nil {
		if h, ok := c.hashes[app]; ok {
			c.tls.cache.Remove([]string{h})
		}
	}
	delete(c.hashes, app)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove certificate: %w", err)
	}
	return nil
}

// Forget removes app's custom certificate if it has one (apps:destroy).
func (c *Certs) Forget(ctx context.Context, app string) error {
	err := c.RemoveCustom(ctx, app)
	if errors.Is(err, apps.ErrNoCertificate) {
		return nil
	}
	return err
}

// Rename moves a custom certificate along with its app.
func (c *Certs) Rename(_ context.Context, oldName, newName string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, err := os.Stat(c.Dir(oldName)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := os.Rename(c.Dir(oldName), c.Dir(newName)); err != nil {
		return fmt.Errorf("move certificate: %w", err)
	}
	if h, ok := c.hashes[oldName]; ok {
		delete(c.hashes, oldName)
		c.hashes[newName] = h
	}
	return nil
}

// Custom returns app's custom certificate.
func (c *Certs) Custom(_ context.Context, app string) (apps.Certificate, error) {
	if err := apps.ValidateAppName(app); err != nil {
		return apps.Certificate{}, err
	}
	c.mu.Lock()
	certPEM, _, err := c.read(app)
	c.mu.Unlock()
	if errors.Is(err, os.ErrNotExist) {
		return apps.Certificate{}, apps.Errorf(apps.ErrNoCertificate, "App %s has no custom certificate", app)
	}
	if err != nil {
		return apps.Certificate{}, err
	}
	return describePEM(certPEM)
}

// Served returns the certificate served for each host: from the TLS cache
// when HTTPS is on (a stored ACME certificate not loaded yet is loaded),
// else the app's custom certificates on disk that cover it.
func (c *Certs) Served(ctx context.Context, hosts []string) map[string]apps.Certificate {
	out := map[string]apps.Certificate{}
	c.mu.Lock()
	t := c.tls
	c.mu.Unlock()
	if t == nil {
		c.mu.Lock()
		entries, _ := os.ReadDir(c.dir)
		var customs []apps.Certificate
		for _, e := range entries {
			if certPEM, _, err := c.read(e.Name()); err == nil {
				if ci, err := describePEM(certPEM); err == nil {
					customs = append(customs, ci)
				}
			}
		}
		c.mu.Unlock()
		for _, h := range hosts {
			for _, ci := range customs {
				if covers(ci.Names, h) {
					out[h] = ci
					break
				}
			}
		}
		return out
	}
	for _, h := range hosts {
		if cert, ok := t.served(ctx, h); ok {
			if ci, err := describe(cert.Certificate.Certificate, slices.Contains(cert.Tags, customTag)); err == nil {
				out[h] = ci
			}
		}
	}
	return out
}

// read returns app's stored certificate and key. c.mu is held.
func (c *Certs) read(app string) (certPEM, keyPEM []byte, err error) {
	dir := c.Dir(app)
	certPEM, err = os.ReadFile(filepath.Join(dir, "cert.pem"))
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = os.ReadFile(filepath.Join(dir, "key.pem"))
	return certPEM, keyPEM, err
}

// describe summarises a DER chain (leaf first). custom chains are verified
// against the system roots.
func describe(chain [][]byte, custom bool) (apps.Certificate, error) {
	if len(chain) == 0 {
		return apps.Certificate{}, apps.Errorf(apps.ErrBadCertificate, "Invalid certificate: no certificate in the PEM data")
	}
	leaf, err := x509.ParseCertificate(chain[0])
	if err != nil {
		return apps.Certificate{}, apps.Errorf(apps.ErrBadCertificate, "Invalid certificate: %v", err)
	}
	info := apps.Certificate{
		Names:     leaf.DNSNames,
		Subject:   leaf.Subject.String(),
		Issuer:    leaf.Issuer.String(),
		NotBefore: leaf.NotBefore,
		NotAfter:  leaf.NotAfter,
		Custom:    custom,
		Verified:  !custom,
	}
	if custom {
		inter := x509.NewCertPool()
		for _, der := range chain[1:] {
			if c, err := x509.ParseCertificate(der); err == nil {
				inter.AddCert(c)
			}
		}
		_, err := leaf.Verify(x509.VerifyOptions{Intermediates: inter, CurrentTime: time.Now()})
		info.Verified = err == nil
	}
	return info, nil
}

// describePEM is describe for a PEM chain.
func describePEM(certPEM []byte) (apps.Certificate, error) {
	var ders [][]byte
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			ders = append(ders, b.Bytes)
		}
	}
	return describe(ders, true)
}

// covers reports whether a certificate for names is valid for host
// (exactly, or through a wildcard of its leftmost label).
func covers(names []string, host string) bool {
	for _, n := range names {
		n = strings.ToLower(n)
		if n == host {
			return true
		}
		if suffix, ok := strings.CutPrefix(n, "*."); ok {
			if i := strings.IndexByte(host, '.'); i > 0 && host[i+1:] == suffix {
				return true
			}
		}
	}
	return false
}

// served returns the certificate the cache would serve for host, loading
// a stored ACME certificate for it first when none is cached.
func (t *TLS) served(ctx context.Context, host string) (certmagic.Certificate, bool) {
	host = normalizeHost(host)
	if c, ok := t.cached(host); ok {
		return c, true
	}
	if t.p.routedExactly(host) {
		if _, err := t.magic.CacheManagedCertificate(ctx, host); err == nil {
			return t.cached(host)
		}
	}
	return certmagic.Certificate{}, false
}

// cached returns an unexpired cached certificate for host (a custom one
// first).
func (t *TLS) cached(host string) (certmagic.Certificate, bool) {
	var found certmagic.Certificate
	ok := false
	for _, c := range t.cache.AllMatchingCertificates(host) {
		if c.Expired() {
			continue
		}
		if slices.Contains(c.Tags, customTag) {
			return c, true
		}
		if !ok {
			found, ok = c, true
		}
	}
	return found, ok
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("store certificate: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("store certificate: %w", err)
	}
	return nil
}

// tlsErrorText shortens crypto/tls's key pair errors.
func tlsErrorText(err error) string {
	return strings.TrimPrefix(err.Error(), "tls: ")
}
