package proxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rivetr/rivetr/acmetest"
	"github.com/rivetr/rivetr/apps"
)

// certValidity is the lifetime of the certificates the test CA issues:
// short, so that certmagic's background maintenance renews them during
// the test (in the last third of their lifetime).
const certValidity = 24 // seconds

// handshake connects to addr with SNI name and returns the leaf.
func handshake(addr, name string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: name, RootCAs: roots})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

func TestAutomaticHTTPS(t *testing.T) {
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpPort := httpLn.Addr().(*net.TCPAddr).Port
	httpsPort := httpsLn.Addr().(*net.TCPAddr).Port
	acme := acmetest.Start(t, httpPort, certValidity)

	var redirect atomic.Bool
	redirect.Store(true)
	p := New(zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel), Options{})
	tl, err := p.EnableTLS(TLSConfig{
		DataDir:    t.TempDir(),
		Email:      "admin@example.com",
		CA:         acme.DirURL,
		CARootFile: acme.RootFile,
		HTTPPort:   httpPort,
		HTTPSPort:  httpsPort,
		RedirectAllowed: func(host string) bool {
			return redirect.Load()
		},
		renewCheckInterval: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { done <- tl.ServeHTTPWithACME(httpLn) }()
	go func() { done <- tl.ServeHTTPS(httpsLn) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		for range 2 {
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
		tl.Stop()
	})

	p.SetRoute("web", []string{"app.localhost", "*.wild.localhost"}, []string{named(t, "web")})
	httpsAddr := httpsLn.Addr().String()

	// HTTPS GET: the certificate is obtained during the first handshake.
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: acme.Roots},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, httpsAddr)
		},
		ForceAttemptHTTP2: true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	resp, err := client.Get("https://app.localhost/hello")
	if err != nil {
		t.Fatalf("HTTPS GET: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "web" {
		t.Fatalf("HTTPS GET: %d %q", resp.StatusCode, body)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("HTTPS GET over %s, want HTTP/2", resp.Proto)
	}
	first, err := handshake(httpsAddr, "app.localhost", acme.Roots)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.DNSNames) != 1 || first.DNSNames[0] != "app.localhost" {
		t.Errorf("certificate names %v, want [app.localhost]", first.DNSNames)
	}

	// Names without an exact route get no certificate, wildcard matches
	// included.
	for _, name := range []string{"other.localhost", "x.wild.localhost"} {
		if _, err := handshake(httpsAddr, name, acme.Roots); err == nil {
			t.Errorf("handshake for %s succeeded", name)
		}
		if tl.HasCertificate(name) {
			t.Errorf("certificate issued for %s", name)
		}
	}

	// Plain HTTP redirects to HTTPS for the host with a certificate.
	noFollow := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	httpGet := func(host, path string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+httpLn.Addr().String()+path, nil)
		req.Host = host
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp = httpGet("app.localhost", "/a/b?c=d")
	want := "https://app.localhost:" + strconv.Itoa(httpsPort) + "/a/b?c=d"
	if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
		t.Errorf("HTTP GET: %d %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
	}
	if resp = httpGet("x.wild.localhost", "/"); resp.StatusCode != 200 {
		t.Errorf("HTTP GET of a host without certificate: %d, want 200", resp.StatusCode)
	}
	if resp = httpGet("app.localhost", "/.well-known/acme-challenge/nope"); resp.StatusCode == http.StatusPermanentRedirect {
		t.Errorf("ACME challenge path redirected")
	}
	redirect.Store(false)
	if resp = httpGet("app.localhost", "/"); resp.StatusCode != 200 {
		t.Errorf("HTTP GET with redirect off: %d, want 200", resp.StatusCode)
	}

	// Renewal: certmagic's maintenance renews the short-lived certificate
	// and the new one is served without any restart.
	deadline := time.Now().Add(certValidity * time.Second)
	for {
		leaf, err := handshake(httpsAddr, "app.localhost", acme.Roots)
		if err == nil && leaf.SerialNumber.Cmp(first.SerialNumber) != 0 {
			if !leaf.NotAfter.After(first.NotAfter) {
				t.Errorf("renewed certificate expires %v, not after %v", leaf.NotAfter, first.NotAfter)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("certificate not renewed in time (last error %v)", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// selfSigned makes a certificate and key for names, valid for a day.
func selfSigned(t *testing.T, names ...string) (certPEM, keyPEM []byte, leaf *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ = x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), leaf
}

// TestCustomCertificates: certs:add's store serves a custom certificate at
// once (a wildcard one for a wildcard route too), keeps it on disk across
// a restart, reports it, and stops serving it when removed. No ACME CA
// answers here, so nothing else can be served.
func TestCustomCertificates(t *testing.T) {
	dataDir := t.TempDir()
	start := func() (*Proxy, *TLS, *Certs, string) {
		httpsLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := New(zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel), Options{})
		tl, err := p.EnableTLS(TLSConfig{DataDir: dataDir, CA: "https://127.0.0.1:1/directory", HTTPPort: acmetest.FreePort(t)})
		if err != nil {
			t.Fatal(err)
		}
		certs := NewCerts(dataDir)
		certs.Attach(context.Background(), tl)
		done := make(chan error, 1)
		go func() { done <- tl.ServeHTTPS(httpsLn) }()
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			p.Shutdown(ctx)
			<-done
			tl.Stop()
		})
		p.SetRoute("web", []string{"web.example.test", "*.wild.example.test"}, []string{named(t, "web")})
		return p, tl, certs, httpsLn.Addr().String()
	}
	ctx := context.Background()
	p, tl, certs, addr := start()

	certPEM, keyPEM, leaf := selfSigned(t, "web.example.test", "*.wild.example.test")
	roots := x509.NewCertPool()
	roots.AddCert(leaf)

	if _, err := certs.AddCustom(ctx, "web", certPEM, []byte("not a key")); !errors.Is(err, apps.ErrBadCertificate) {
		t.Fatalf("bad key: %v, want ErrBadCertificate", err)
	}
	_, otherKey, _ := selfSigned(t, "web.example.test")
	if _, err := certs.AddCustom(ctx, "web", certPEM, otherKey); !errors.Is(err, apps.ErrBadCertificate) {
		t.Fatalf("mismatched key: %v, want ErrBadCertificate", err)
	}
	if _, err := certs.AddCustom(ctx, "../x", certPEM, keyPEM); err == nil {
		t.Fatal("app name ../x accepted")
	}
	info, err := certs.AddCustom(ctx, "web", certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !info.Custom || info.Verified || len(info.Names) != 2 {
		t.Errorf("info %+v", info)
	}
	if st, err := os.Stat(filepath.Join(certs.Dir("web"), "key.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", st.Mode(), err)
	}
	for _, name := range []string{"web.example.test", "a.wild.example.test"} {
		got, err := handshake(addr, name, roots)
		if err != nil {
			t.Fatalf("handshake %s: %v", name, err)
		}
		if got.SerialNumber.Cmp(leaf.SerialNumber) != 0 {
			t.Errorf("%s: served another certificate", name)
		}
		if !tl.HasCertificate(name) {
			t.Errorf("HasCertificate(%s) = false", name)
		}
	}
	served := certs.Served(ctx, []string{"web.example.test", "a.wild.example.test", "nope.example.test"})
	if len(served) != 2 || !served["web.example.test"].Custom {
		t.Errorf("served %+v", served)
	}

	// HTTP over the custom certificate, and the metrics it leaves.
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://web.example.test/")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	var m strings.Builder
	p.WriteMetrics(&m)
	tl.WriteMetrics(&m)
	for _, want := range []string{`rivetr_proxy_requests_total{app="web",code="200"} 1`, `rivetr_certificate_expiry_seconds{domain="web.example.test",source="custom"} `, `rivetr_certificate_expiry_seconds{domain="*.wild.example.test",source="custom"} `} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, m.String())
		}
	}

	// A restarted proxy serves the stored certificate.
	_, _, certs2, addr2 := start()
	if _, err := handshake(addr2, "web.example.test", roots); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if c, err := certs2.Custom(ctx, "web"); err != nil || c.NotAfter.Unix() != leaf.NotAfter.Unix() {
		t.Errorf("Custom after restart: %+v %v", c, err)
	}

	// Removed: no longer served (the CA is unreachable, so nothing is).
	if err := certs.RemoveCustom(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if err := certs.RemoveCustom(ctx, "web"); !errors.Is(err, apps.ErrNoCertificate) {
		t.Errorf("second remove: %v", err)
	}
	if tl.HasCertificate("web.example.test") {
		t.Error("removed certificate still cached")
	}
	if _, err := handshake(addr, "a.wild.example.test", roots); err == nil {
		t.Error("removed certificate still served")
	}
}
