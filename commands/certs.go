package commands

import (
	"archive/tar"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path"
	"strings"
	"time"

	"github.com/rivetr/rivetr/apps"
)

// maxCertInput bounds a certificate, key or tar read from a file or stdin.
const maxCertInput = 1 << 20

// expiryWarning is how close to its expiry a certificate is flagged in
// certs:report.
const expiryWarning = 30 * 24 * time.Hour

func registerCerts(r *Registry, d Deps) {
	if d.Certs == nil {
		return
	}
	ns := r.Namespace("certs", "Manage an app's TLS certificates")
	r.Add(ns,
		Command{Name: "certs:add", Usage: "certs:add <app> (<crt-file> <key-file> | < tar)", Help: "Add a custom certificate (a PEM chain and key, or a tar of a .crt and a .key on stdin)", Run: d.certsAdd("certs:add")},
		Command{Name: "certs:update", Usage: "certs:update <app> (<crt-file> <key-file> | < tar)", Help: "Replace an app's custom certificate", Run: d.certsAdd("certs:update")},
		Command{Name: "certs:remove", Usage: "certs:remove <app>", Help: "Remove an app's custom certificate (ACME certificates take over)", Run: d.certsRemove},
		Command{Name: "certs:generate", Usage: "certs:generate <app> [<domain>...]", Help: "Add a self-signed custom certificate for the given domains (default: the app's hosts)", Run: d.certsGenerate},
		Command{Name: "certs:report", Usage: "certs:report [<app>] [--format json] [<flag>]", Help: "Display an app's certificates: custom one, served ones, upcoming expiries", Run: d.certsReport().Run},
	)
}

func (d Deps) certsAdd(name string) func(ctx context.Context, s *Session, args []string) error {
	return func(ctx context.Context, s *Session, args []string) error {
		if len(args) == 0 {
			return Failf("Please specify an app to run the command on")
		}
		app, files := args[0], args[1:]
		if _, err := d.Apps.App(ctx, app); err != nil {
			return err
		}
		var certPEM, keyPEM []byte
		switch len(files) {
		case 0:
			var err error
			if certPEM, keyPEM, err = readCertTar(s.Stdin); err != nil {
				return err
			}
		case 2:
			// Reading server paths is for the server's admin only: over SSH
			// it would let a user read any file the daemon can.
			if !s.Admin {
				return Failf("%s reads files only on the server; over SSH send a tar of the .crt and .key on stdin", name)
			}
			var err error
			if certPEM, err = readLimited(s.Path(files[0])); err != nil {
				return err
			}
			if keyPEM, err = readLimited(s.Path(files[1])); err != nil {
				return err
			}
		default:
			return Failf("Usage: rivetr %s <app> (<crt-file> <key-file> | < tar)", name)
		}
		s.Step("Adding certificate to %s...", app)
		info, err := d.Certs.AddCustom(ctx, app, certPEM, keyPEM)
		if err != nil {
			return err
		}
		s.Detail("Hostnames: %s", strings.Join(info.Names, " "))
		s.Detail("Expires:   %s", info.NotAfter.UTC().Format(time.RFC3339))
		if time.Now().After(info.NotAfter) {
			s.Warn("The certificate has expired")
		}
		if !d.Certs.HTTPS() {
			s.Warn("HTTPS is off (RIVETR_HTTPS_ADDR is empty): the certificate is stored and served once HTTPS is on")
		}
		return nil
	}
}

func readLimited(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, Failf("Cannot read %s: %v", p, errors.Unwrap(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxCertInput+1))
	if err != nil {
		return nil, Failf("Cannot read %s: %v", p, err)
	}
	if len(b) > maxCertInput {
		return nil, Failf("%s is too large (over %d bytes)", p, maxCertInput)
	}
	return b, nil
}

// readCertTar reads a tar with one .crt (or cert.pem) and one .key (or
// key.pem) file, as Dokku's certs:add takes on stdin.
func readCertTar(r io.Reader) (certPEM, keyPEM []byte, err error) {
	tr := tar.NewReader(io.LimitReader(r, 4*maxCertInput))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, Failf("Cannot read the tar on stdin: %v (send a tar of a .crt and a .key, or give both files on the server)", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		base := path.Base(h.Name)
		var dst *[]byte
		switch {
		case strings.HasSuffix(base, ".crt") || base == "cert.pem":
			dst = &certPEM
		case strings.HasSuffix(base, ".key") || base == "key.pem":
			dst = &keyPEM
		default:
			continue
		}
		if *dst != nil {
			return nil, nil, Failf("The tar holds more than one %s file", path.Ext(base))
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxCertInput+1))
		if err != nil {
			return nil, nil, Failf("Cannot read %s from the tar: %v", h.Name, err)
		}
		if len(b) > maxCertInput {
			return nil, nil, Failf("%s in the tar is too large", h.Name)
		}
		*dst = b
	}
	if certPEM == nil || keyPEM == nil {
		return nil, nil, Failf("The tar on stdin must hold a .crt and a .key file")
	}
	return certPEM, keyPEM, nil
}

func (d Deps) certsRemove(ctx context.Context, s *Session, args []string) error {
	if len(args) != 1 {
		return Failf("Usage: rivetr certs:remove <app>")
	}
	if _, err := d.Apps.App(ctx, args[0]); err != nil {
		return err
	}
	s.Step("Removing certificate from %s...", args[0])
	return d.Certs.RemoveCustom(ctx, args[0])
}

// certsGenerate makes a self-signed ECDSA P-256 certificate for a year.
func (d Deps) certsGenerate(ctx context.Context, s *Session, args []string) error {
	if len(args) == 0 {
		return Failf("Please specify an app to run the command on")
	}
	app := args[0]
	if _, err := d.Apps.App(ctx, app); err != nil {
		return err
	}
	names, err := normalizeDomains(args[1:], false)
	if err != nil {
		return err
	}
	if len(names) == 0 {
		if names, err = d.Apps.Hosts(ctx, app, d.globalDomain()); err != nil {
			return err
		}
	}
	if len(names) == 0 {
		return Failf("App %s has no domains; give the certificate's domains", app)
	}
	certPEM, keyPEM, err := selfSigned(names)
	if err != nil {
		return err
	}
	s.Step("Generating a self-signed certificate for %s...", strings.Join(names, " "))
	if _, err := d.Certs.AddCustom(ctx, app, certPEM, keyPEM); err != nil {
		return err
	}
	if !d.Certs.HTTPS() {
		s.Warn("HTTPS is off (RIVETR_HTTPS_ADDR is empty): the certificate is stored and served once HTTPS is on")
	}
	return nil
}

func selfSigned(names []string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("generate serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[0], Organization: []string{"rivetr self-signed"}},
		DNSNames:              names,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}

func (d Deps) certsReport() Report {
	return Report{
		Title:    "%s ssl information",
		Subjects: d.appNames,
		Fields: func(ctx context.Context, app string) ([]Field, error) {
			if _, err := d.Apps.App(ctx, app); err != nil {
				return nil, err
			}
			custom, err := d.Certs.Custom(ctx, app)
			hasCustom := err == nil
			if err != nil && !errors.Is(err, apps.ErrNoCertificate) {
				return nil, err
			}
			hosts, err := d.Apps.Hosts(ctx, app, d.globalDomain())
			if err != nil {
				return nil, err
			}
			served := d.Certs.Served(ctx, hosts)
			var lines []string
			now := time.Now()
			for _, h := range hosts {
				c, ok := served[h]
				if !ok {
					continue
				}
				source := "acme"
				if c.Custom {
					source = "custom"
				}
				left := c.NotAfter.Sub(now)
				note := fmt.Sprintf("expires in %d days", int(left.Hours()/24))
				switch {
				case left <= 0:
					note = "EXPIRED"
				case left < expiryWarning:
					note += ", SOON"
				}
				lines = append(lines, fmt.Sprintf("%s (%s, %s, %s)", h, source, c.NotAfter.UTC().Format(time.RFC3339), note))
			}
			f := []Field{
				{"ssl-enabled", "Ssl enabled", boolString(d.Certs.HTTPS() && len(served) > 0)},
				{"ssl-auto", "Ssl auto", boolString(d.Certs.HTTPS())},
				{"ssl-dir", "Ssl dir", d.Certs.Dir(app)},
				{"ssl-custom", "Ssl custom", boolString(hasCustom)},
			}
			if hasCustom {
				f = append(f,
					Field{"ssl-hostnames", "Ssl hostnames", strings.Join(custom.Names, " ")},
					Field{"ssl-expires-at", "Ssl expires at", custom.NotAfter.UTC().Format(time.RFC3339)},
					Field{"ssl-starts-at", "Ssl starts at", custom.NotBefore.UTC().Format(time.RFC3339)},
					Field{"ssl-issuer", "Ssl issuer", custom.Issuer},
					Field{"ssl-subject", "Ssl subject", custom.Subject},
					Field{"ssl-verified", "Ssl verified", verifiedText(custom)},
				)
			} else {
				for _, k := range []string{"hostnames", "expires-at", "starts-at", "issuer", "subject", "verified"} {
					f = append(f, Field{"ssl-" + k, "Ssl " + strings.ReplaceAll(k, "-", " "), ""})
				}
			}
			f = append(f, Field{"ssl-served", "Ssl served", strings.Join(lines, "; ")})
			return f, nil
		},
	}
}

func verifiedText(c apps.Certificate) string {
	if c.Verified {
		return "verified by a certificate authority"
	}
	return "self signed"
}
