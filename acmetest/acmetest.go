// Package acmetest runs a real ACME CA (pebble, with challtestsrv as its
// DNS) inside a test process, on loopback only, for tests of automatic
// HTTPS: every name resolves to 127.0.0.1 and HTTP-01 challenges are
// checked on the port the test gives.
package acmetest

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/letsencrypt/challtestsrv"
	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// CA is pebble run in-process.
type CA struct {
	DirURL   string         // ACME directory URL (RIVETR_ACME_CA)
	RootFile string         // PEM of the directory's own HTTPS certificate (RIVETR_ACME_CA_ROOT)
	Roots    *x509.CertPool // pebble's root: trust it to verify issued certificates
	RootPEM  []byte         // the same root, PEM-encoded
}

// FreePort returns a loopback port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Start runs challtestsrv (DNS only, every name is 127.0.0.1) and pebble,
// whose VA checks HTTP-01 challenges on httpPort of loopback and which
// issues certificates valid for validity seconds. Both stop at the end of
// the test.
func Start(t testing.TB, httpPort int, validity uint64) *CA {
	t.Helper()
	// Process-wide (t.Setenv would forbid parallel tests); only pebble reads it.
	os.Setenv("PEBBLE_VA_NOSLEEP", "1")
	logger := log.New(io.Discard, "", 0)
	if testing.Verbose() {
		logger = log.New(os.Stderr, "pebble ", log.Lmicroseconds)
	}

	dnsAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
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
		"default": {Description: "test", ValidityPeriod: validity},
	})
	validator := va.New(logger, httpPort, FreePort(t), false, dnsAddr, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewTLSServer(front.Handler())
	t.Cleanup(srv.Close)

	rootFile := filepath.Join(t.TempDir(), "acme-root.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(rootFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	rootPEM := authority.GetRootCert(0).PEM()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		t.Fatal("no pebble root")
	}
	return &CA{DirURL: srv.URL + wfe.DirectoryPath, RootFile: rootFile, Roots: roots, RootPEM: rootPEM}
}
