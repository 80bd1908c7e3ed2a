package apps

import (
	"context"
	"time"
)

// Certificate describes a TLS certificate the proxy serves: one obtained
// from the ACME CA for a single domain, or a custom one added with
// certs:add.
type Certificate struct {
	Names     []string // subject alternative names (DNS)
	Subject   string
	Issuer    string
	NotBefore time.Time
	NotAfter  time.Time
	// Custom is true for a certificate added with certs:add, false for one
	// obtained (and renewed) from the ACME CA.
	Custom bool
	// Verified reports whether the chain verifies against the system's
	// roots (custom certificates; ACME ones are trusted by construction).
	Verified bool
}

// Certs keeps the certificates the proxy serves. The proxy implements it.
type Certs interface {
	// HTTPS reports whether the HTTPS listener (and ACME) is on.
	HTTPS() bool
	// AddCustom validates a PEM certificate chain and its private key and
	// makes them app's custom certificate, replacing any previous one;
	// it is served at once for the names it covers.
	AddCustom(ctx context.Context, app string, certPEM, keyPEM []byte) (Certificate, error)
	// RemoveCustom removes app's custom certificate; ErrNoCertificate if
	// it has none.
	RemoveCustom(ctx context.Context, app string) error
	// Custom returns app's custom certificate, or ErrNoCertificate.
	Custom(ctx context.Context, app string) (Certificate, error)
	// Dir is where app's custom certificate is stored.
	Dir(app string) string
	// Served returns, for each of hosts, the certificate served for it now
	// (custom or ACME), if any.
	Served(ctx context.Context, hosts []string) map[string]Certificate
}
