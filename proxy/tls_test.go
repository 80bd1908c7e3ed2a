package proxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/challtestsrv"
	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/rs/zerolog"
)

// certValidity is the lifetime of the certificates the test CA issues:
// short, so that certmagic's background maintenance renews them during
// the test (in the last third of their lifetime).
const certValidity = 24 // seconds

// acmeCA is pebble run in-process.
type acmeCA struct {
	dirURL   string // ACME directory
	rootFile string // PEM of the WFE's own HTTPS certificate
	roots    *x509.CertPool
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startACME runs challtestsrv (DNS only, every name is 127.0.0.1) and
// pebble, whose VA checks HTTP-01 challenges on httpPort of loopback.
func startACME(t *testing.T, httpPort int) *acmeCA {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	logger := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		logger = log.New(os.Stderr, "pebble ", log.Lmicroseconds)
	}

	dnsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	cts, err := challtestsrv.New(challtestsrv.Config{Log: logger, DNSAddrs: []string{dnsAddr}})
	if err != nil {
		t.Fatal(err)
	}
	cts.SetDefaultDNSIPv4("127.0.0.1")
	cts.SetDefaultDNSIPv6("")
	cts.Run()
	t.Cleanup(cts.Shutdown)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", dnsAddr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("challtestsrv DNS not up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{
		"default": {Description: "test", ValidityPeriod: certValidity},
	})
	validator := va.New(logger, httpPort, freePort(t), false, dnsAddr, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewTLSServer(front.Handler())
	t.Cleanup(srv.Close)

	rootFile := filepath.Join(t.TempDir(), "acme-root.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(rootFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(authority.GetRootCert(0).PEM()) {
		t.Fatal("no pebble root")
	}
	return &acmeCA{dirURL: srv.URL + wfe.DirectoryPath, rootFile: rootFile, roots: roots}
}

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
	acme := startACME(t, httpPort)

	var redirect atomic.Bool
	redirect.Store(true)
	p := New(zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel), Options{})
	tl, err := p.EnableTLS(TLSConfig{
		DataDir:    t.TempDir(),
		Email:      "admin@example.com",
		CA:         acme.dirURL,
		CARootFile: acme.rootFile,
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
		TLSClientConfig: &tls.Config{RootCAs: acme.roots},
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
	first, err := handshake(httpsAddr, "app.localhost", acme.roots)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.DNSNames) != 1 || first.DNSNames[0] != "app.localhost" {
		t.Errorf("certificate names %v, want [app.localhost]", first.DNSNames)
	}

	// Names without an exact route get no certificate, wildcard matches
	// included.
	for _, name := range []string{"other.localhost", "x.wild.localhost"} {
		if _, err := handshake(httpsAddr, name, acme.roots); err == nil {
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
		leaf, err := handshake(httpsAddr, "app.localhost", acme.roots)
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
