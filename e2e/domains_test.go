package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// hostGet asks the proxy for / with the Host header host.
func (s *server) hostGet(host string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/", s.httpPort), nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

// wantHost polls until the proxy answers host with status want (and body
// body when want is 200).
func wantHost(t *testing.T, srv *server, host string, want int, body string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, got, err := srv.hostGet(host)
		if err == nil && code == want && (want != http.StatusOK || got == body) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET http://%s/: status %d, body %q, err %v; want %d %q", host, code, got, err, want, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDomainsReroute checks that domain changes reach the proxy at once,
// without a redeploy, and that ports:set changes PORT on a restart.
func TestDomainsReroute(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	srv, c := startPushServer(t, eng)
	app := randomName("dom")
	cleanupApp(t, srv, eng, app)
	repo := newAppRepo(t, c, "v1")
	wantDeployed(t, srv, c.git(t, repo, "push", c.sshRemote(app), "main"), app, "remote: ")
	wantServes(t, srv, app, "/", "hello v1")
	web := runningWeb(t, eng, app)

	custom := "www." + app + ".test"
	wantHost(t, srv, custom, http.StatusNotFound, "")
	c.must(t, "domains:add", app, custom, "*.wild-"+app+".test")
	wantHost(t, srv, custom, http.StatusOK, "hello v1")
	wantHost(t, srv, "a.b.wild-"+app+".test", http.StatusOK, "hello v1")
	wantHost(t, srv, app+".localhost", http.StatusOK, "hello v1")

	c.must(t, "domains:disable", app)
	wantHost(t, srv, custom, http.StatusNotFound, "")
	wantHost(t, srv, app+".localhost", http.StatusNotFound, "")
	c.must(t, "domains:enable", app)
	wantHost(t, srv, app+".localhost", http.StatusOK, "hello v1")

	c.must(t, "domains:remove", app, custom)
	wantHost(t, srv, custom, http.StatusNotFound, "")
	if id := runningWeb(t, eng, app); id != web {
		t.Errorf("web container changed from %.12s to %.12s on domain changes", web, id)
	}

	c.must(t, "ports:set", app, "http:80:6000")
	c.must(t, "ps:restart", app)
	wantServes(t, srv, app, "/env/PORT", "6000")
}
