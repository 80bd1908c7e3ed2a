package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rivetr/rivetr/acmetest"
)

// httpsClient talks HTTPS to the daemon's HTTPS port whatever the URL's
// host, trusting roots (nil: trusting anything, to inspect self-signed
// certificates).
func httpsClient(port int, roots *x509.CertPool) *http.Client {
	tr := &http.Transport{
		Proxy:           nil,
		TLSClientConfig: &tls.Config{RootCAs: roots, InsecureSkipVerify: roots == nil},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, "127.0.0.1:"+strconv.Itoa(port))
		},
		ForceAttemptHTTP2: true,
		DisableKeepAlives: true,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// leafFor returns the certificate the daemon serves for SNI name.
func leafFor(t *testing.T, port int, name string) (*x509.Certificate, error) {
	t.Helper()
	chain, err := chainFor(t, port, name)
	if err != nil {
		return nil, err
	}
	return chain[0], nil
}

// chainFor returns the chain the daemon serves for SNI name, leaf first.
func chainFor(t *testing.T, port int, name string) ([]*x509.Certificate, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", "127.0.0.1:"+strconv.Itoa(port), &tls.Config{ServerName: name, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates, nil
}

// certTar is a tar of server.crt and server.key, as Dokku's certs:add takes.
func certTar(t *testing.T, certPEM, keyPEM []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, data := range map[string][]byte{"server.crt": certPEM, "server.key": keyPEM} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	return b.Bytes()
}

// TestHTTPSEndToEnd: the daemon with HTTPS on and pebble as its ACME CA
// gets a certificate for a deployed app on the first HTTPS request,
// redirects HTTP to HTTPS (unless proxy:set says no), refuses unknown SNI
// names, serves custom certificates from certs:add/generate at once and
// ACME again after certs:remove, reports them, exports /metrics, and
// serves the same certificate after a restart without asking the CA.
func TestHTTPSEndToEnd(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	srv := newServer(t)
	httpsPort := freePort(t)
	acme := acmetest.Start(t, srv.httpPort, 90*24*3600)
	srv.extraEnv = []string{
		"RIVETR_DOMAIN=localhost", "RIVETR_RUNTIME=" + eng.kind,
		"RIVETR_HTTPS_ADDR=127.0.0.1:" + strconv.Itoa(httpsPort),
		"RIVETR_ACME_CA=" + acme.DirURL, "RIVETR_ACME_CA_ROOT=" + acme.RootFile,
		"RIVETR_ACME_EMAIL=ops@example.com",
	}
	srv.start()
	fastChecks(t, srv)
	key := newKey(t, "admin")
	srv.mustCLI(t, nil, "ssh-keys:add", "admin", key.Public)
	c := srv.client(t, key)

	app := randomName("tls")
	cleanupApp(t, srv, eng, app)
	repo := newAppRepo(t, c, "v1")
	wantDeployed(t, srv, c.git(t, repo, "push", c.sshRemote(app), "main"), app, "remote: ")
	host := app + ".localhost"

	// First HTTPS request: the certificate is obtained on demand.
	hc := httpsClient(httpsPort, acme.Roots)
	resp, err := hc.Get("https://" + host + "/")
	if err != nil {
		t.Fatalf("HTTPS GET: %v\n%s", err, srv.stderr.String())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "hello v1" || resp.ProtoMajor != 2 {
		t.Fatalf("HTTPS GET: %s %d %q", resp.Proto, resp.StatusCode, body)
	}
	acmeLeaf, err := leafFor(t, httpsPort, host)
	if err != nil {
		t.Fatal(err)
	}
	if len(acmeLeaf.DNSNames) != 1 || acmeLeaf.DNSNames[0] != host {
		t.Errorf("certificate for %v, want [%s]", acmeLeaf.DNSNames, host)
	}
	if _, err := leafFor(t, httpsPort, "nobody.localhost"); err == nil {
		t.Error("a certificate was served for an unknown SNI name")
	}

	// HTTP redirects, unless the app opts out.
	plain := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	httpGet := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/x?y=1", srv.httpPort), nil)
		req.Host = host
		resp, err := plain.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	want := fmt.Sprintf("https://%s:%d/x?y=1", host, httpsPort)
	if r := httpGet(); r.StatusCode != http.StatusPermanentRedirect || r.Header.Get("Location") != want {
		t.Errorf("HTTP GET: %d %q, want 308 to %q", r.StatusCode, r.Header.Get("Location"), want)
	}
	c.must(t, "proxy:set", app, "https-redirect", "false")
	if r := httpGet(); r.StatusCode != http.StatusOK {
		t.Errorf("HTTP GET with https-redirect false: %d, want 200", r.StatusCode)
	}
	c.must(t, "proxy:set", app, "https-redirect")

	rep := c.must(t, "certs:report", app, "--ssl-served").Stdout
	if !strings.Contains(rep, host+" (acme, ") {
		t.Errorf("certs:report --ssl-served = %q", rep)
	}
	if v := strings.TrimSpace(c.must(t, "certs:report", app, "--ssl-enabled").Stdout); v != "true" {
		t.Errorf("ssl-enabled %q", v)
	}

	// A self-signed custom certificate for an added domain.
	custom := "www." + app + ".test"
	c.must(t, "domains:add", app, custom)
	c.must(t, "certs:generate", app, custom)
	leaf, err := leafFor(t, httpsPort, custom)
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.Subject.Organization) == 0 || leaf.Subject.Organization[0] != "rivetr self-signed" {
		t.Errorf("served %v for %s, want the generated certificate", leaf.Subject, custom)
	}
	rep = c.must(t, "certs:report", app).Stdout
	for _, want := range []string{"Ssl custom:", "true", "Ssl hostnames:", custom, "self signed"} {
		if !strings.Contains(rep, want) {
			t.Errorf("certs:report lacks %q:\n%s", want, rep)
		}
	}

	// certs:add over SSH takes a tar on stdin; files only on the server.
	certPEM := readFile(t, filepath.Join(srv.dataDir, "certs", "custom", app, "cert.pem"))
	keyPEM := readFile(t, filepath.Join(srv.dataDir, "certs", "custom", app, "key.pem"))
	wantOK(t, c.ssh(t, certTar(t, certPEM, keyPEM), "certs:add", app))
	wantError(t, c.ssh(t, nil, "certs:add", app, "/etc/passwd", "/etc/shadow"), 1, "reads files only on the server")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "c.crt"), string(certPEM))
	writeFile(t, filepath.Join(dir, "c.key"), "garbage")
	wantError(t, srv.cliIn(t, dir, nil, "certs:add", app, "c.crt", "c.key"), 1, "Invalid certificate or key")
	writeFile(t, filepath.Join(dir, "c.key"), string(keyPEM))
	wantOK(t, srv.cliIn(t, dir, nil, "certs:update", app, "c.crt", "c.key"))

	// Removed: the next handshake gets an ACME certificate for the domain.
	c.must(t, "certs:remove", app)
	wantError(t, c.ssh(t, nil, "certs:remove", app), 1, "has no custom certificate")
	chain, err := chainFor(t, httpsPort, custom)
	if err != nil {
		t.Fatalf("after certs:remove: %v", err)
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: acme.Roots, Intermediates: inter, DNSName: custom}); err != nil {
		t.Errorf("after certs:remove the certificate for %s is not pebble's: %v", custom, err)
	}

	// /metrics on the API listener.
	mresp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", srv.apiPort))
	if err != nil {
		t.Fatal(err)
	}
	mbody, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{
		fmt.Sprintf(`rivetr_proxy_requests_total{app=%q,code="200"} `, app),
		fmt.Sprintf(`rivetr_proxy_requests_total{app=%q,code="308"} `, app),
		fmt.Sprintf(`rivetr_proxy_upstream_latency_seconds_count{app=%q} `, app),
		fmt.Sprintf(`rivetr_certificate_expiry_seconds{domain=%q,source="acme"} `, host),
		"rivetr_proxy_open_connections ",
	} {
		if !strings.Contains(string(mbody), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, mbody)
		}
	}

	// A restart serves the stored certificate (same serial) at once, and
	// redirects from the first HTTP request.
	srv.stop()
	srv.start()
	if r := httpGet(); r.StatusCode != http.StatusPermanentRedirect {
		t.Errorf("HTTP GET after restart: %d, want 308", r.StatusCode)
	}
	again, err := leafFor(t, httpsPort, host)
	if err != nil {
		t.Fatal(err)
	}
	if again.SerialNumber.Cmp(acmeLeaf.SerialNumber) != 0 {
		t.Errorf("after a restart a new certificate was served (serial %v, was %v)", again.SerialNumber, acmeLeaf.SerialNumber)
	}
	if _, err := os.Stat(filepath.Join(srv.dataDir, "certs")); err != nil {
		t.Errorf("certificates not under the data dir: %v", err)
	}
}
