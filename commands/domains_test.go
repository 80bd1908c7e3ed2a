package commands

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rivetr/rivetr/apps"
	"github.com/rivetr/rivetr/store"
)

// fakeDeployer records Reroute calls; other methods are not used here.
type fakeDeployer struct {
	deployer
	svc      *apps.Service
	rerouted []string
	hosts    map[string][]string // hosts of each rerouted app at that time
}

func (f *fakeDeployer) GlobalDomain() string { return "example.test" }

func (f *fakeDeployer) Reroute(ctx context.Context, app string) error {
	f.rerouted = append(f.rerouted, app)
	h, err := f.svc.Hosts(ctx, app, f.GlobalDomain())
	f.hosts[app] = h
	return err
}

func newDeployHarness(t *testing.T) (*harness, *fakeDeployer, *apps.Service) {
	t.Helper()
	dir := t.TempDir()
	db, err := store.Open(context.Background(), filepath.Join(dir, "rivetr.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc := apps.NewService(db)
	fd := &fakeDeployer{svc: svc, hosts: map[string][]string{}}
	reg := NewRegistry()
	RegisterCore(reg, Deps{Apps: svc, Deployer: fd, Version: "test", DataDir: dir})
	return &harness{t: t, reg: reg}, fd, svc
}

func TestValidateDomain(t *testing.T) {
	for _, ok := range []string{"example.com", "a.b.example.com", "*.example.com", "x-1.example.co", "localhost", "a.localhost", strings.Repeat("a", 63) + ".com"} {
		if err := apps.ValidateDomain(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	long := strings.Repeat(strings.Repeat("a", 60)+".", 5) + "com"
	for _, bad := range []string{"", "Example.com", "example", "-a.com", "a-.com", "a..com", ".a.com", "a.com.", "a_b.com", "a.*.com", "*.com", "**.a.com", "*a.b.com",
		"example.com:80", "127.0.0.1", "::1", "[::1]:80", "1.2.3.4", "a b.com", "a/b.com", "a;b.com", strings.Repeat("a", 64) + ".com", long, "a.123"} {
		if err := apps.ValidateDomain(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDomainsCommands(t *testing.T) {
	h, fd, _ := newDeployHarness(t)
	h.ok("apps:create", "web")
	h.ok("apps:create", "api")
	h.ok("domains:add", "web", "www.example.com", "Shop.Example.com")
	if v := h.ok("domains:report", "web", "--domains-app-vhosts"); v != "www.example.com shop.example.com\n" {
		t.Errorf("vhosts %q", v)
	}
	if v := h.ok("domains:report", "web", "--domains-global-vhosts"); v != "example.test\n" {
		t.Errorf("global vhosts %q", v)
	}
	// Not deployed: nothing is rerouted.
	if len(fd.rerouted) != 0 {
		t.Errorf("rerouted before deploy: %v", fd.rerouted)
	}
	h.fails(1, "already added to web", "domains:add", "web", "www.example.com")
	h.fails(1, "given twice", "domains:add", "web", "a.example.com", "a.example.com")
	h.fails(1, "already used by app web", "domains:add", "api", "www.example.com")
	h.fails(1, "already used by app web", "domains:add", "api", "web.example.test")
	h.fails(1, "Invalid domain", "domains:add", "web", "bad_domain.com")
	h.fails(1, "IP addresses", "domains:add", "web", "10.0.0.1")
	h.fails(1, "ports are not part", "domains:add", "web", "example.com:8080")
	h.fails(1, "wildcard", "domains:add", "web", "a.*.example.com")
	h.fails(20, "App nope does not exist", "domains:add", "nope", "x.example.com")
	h.fails(1, "Please specify an app", "domains:add")
	h.fails(1, "Usage", "domains:add", "web")
	h.ok("domains:add", "api", "*.api.example.com")
	if v := h.ok("domains:report", "web", "--domains-app-vhosts"); v != "www.example.com shop.example.com\n" {
		t.Errorf("failed adds changed vhosts: %q", v)
	}

	// Once deployed, each change re-applies the route at once.
	id, err := fd.svc.Store().CreateRelease(context.Background(), apps.Release{App: "web", Status: apps.ReleaseDeployed})
	if err != nil {
		t.Fatal(err)
	}
	if err := fd.svc.Store().MarkDeployed(context.Background(), "web", id); err != nil {
		t.Fatal(err)
	}
	out := h.ok("domains:remove", "web", "shop.example.com")
	if !strings.Contains(out, "Reconfiguring the proxy for web") || !slices.Equal(fd.rerouted, []string{"web"}) {
		t.Errorf("no reroute: %q %v", out, fd.rerouted)
	}
	if want := []string{"www.example.com", "web.example.test"}; !slices.Equal(fd.hosts["web"], want) {
		t.Errorf("hosts %v, want %v", fd.hosts["web"], want)
	}
	h.fails(1, "not added to web", "domains:remove", "web", "shop.example.com")
	h.ok("domains:set", "web", "a.example.com", "b.example.com")
	if want := []string{"a.example.com", "b.example.com", "web.example.test"}; !slices.Equal(fd.hosts["web"], want) {
		t.Errorf("after set: %v", fd.hosts["web"])
	}
	h.ok("domains:disable", "web")
	if len(fd.hosts["web"]) != 0 {
		t.Errorf("disabled hosts %v", fd.hosts["web"])
	}
	if v := h.ok("domains:report", "web", "--domains-app-enabled"); v != "false\n" {
		t.Errorf("enabled %q", v)
	}
	h.ok("domains:enable", "web")
	h.ok("domains:clear", "web")
	if want := []string{"web.example.test"}; !slices.Equal(fd.hosts["web"], want) {
		t.Errorf("after clear: %v", fd.hosts["web"])
	}

	// Global domains add APP.<domain> to every app.
	h.ok("domains:add-global", "apps.example.org")
	if want := []string{"web.example.test", "web.apps.example.org"}; !slices.Equal(fd.hosts["web"], want) {
		t.Errorf("after add-global: %v", fd.hosts["web"])
	}
	h.fails(1, "already the global domain", "domains:add-global", "example.test")
	h.fails(1, "cannot be a wildcard", "domains:add-global", "*.example.org")
	h.fails(1, "cannot be removed", "domains:remove-global", "example.test")
	var rep map[string]string
	json.Unmarshal([]byte(h.ok("domains:report", "api", "--format", "json")), &rep)
	if rep["domains-global-vhosts"] != "example.test apps.example.org" || rep["domains-app-vhosts"] != "*.api.example.com" || rep["domains-app-enabled"] != "true" {
		t.Errorf("json report %v", rep)
	}
	h.ok("domains:set-global", "one.example.org")
	h.ok("domains:clear-global")
	if want := []string{"web.example.test"}; !slices.Equal(fd.hosts["web"], want) {
		t.Errorf("after clear-global: %v", fd.hosts["web"])
	}
	h.fails(1, "Too many arguments", "domains:clear", "web", "x.example.com")
	if out := h.ok("domains"); !strings.Contains(out, "domains:add-global") {
		t.Errorf("help: %q", out)
	}
}

func TestPortsAndProxy(t *testing.T) {
	h, _, svc := newDeployHarness(t)
	h.ok("apps:create", "web")
	if v := h.ok("ports:report", "web", "--ports-web-port"); v != "5000\n" {
		t.Errorf("default port %q", v)
	}
	out := h.ok("ports:add", "web", "https:443:9000", "http:80:8080")
	if !strings.Contains(out, "PORT=8080 from the next deploy") {
		t.Errorf("add output %q", out)
	}
	if p, _ := svc.WebPort(context.Background(), "web", 5000); p != 8080 {
		t.Errorf("web port %d", p)
	}
	h.fails(1, "already mapped", "ports:add", "web", "http:80:3000")
	for _, bad := range []string{"tcp:80:80", "http:0:80", "http:80:65536", "http:80", "http:x:80", "http:80:08080"} {
		h.fails(1, "Invalid port mapping", "ports:add", "web", bad)
	}
	if v := h.ok("ports:report", "web", "--ports-map"); v != "https:443:9000 http:80:8080\n" {
		t.Errorf("map %q", v)
	}
	var list []map[string]any
	json.Unmarshal([]byte(h.ok("ports:list", "web", "--format", "json")), &list)
	if len(list) != 2 || list[1]["container_port"] != float64(8080) {
		t.Errorf("json list %v", list)
	}
	h.ok("ports:remove", "web", "80")
	if v := h.ok("ports:report", "web", "--ports-web-port"); v != "5000\n" {
		t.Errorf("port after remove %q", v)
	}
	h.fails(1, "No port mapping", "ports:remove", "web", "http:80:8080")
	h.ok("ports:set", "web", "http:80:3000")
	if v := h.ok("proxy:report", "web", "--proxy-port-map"); v != "http:80:3000\n" {
		t.Errorf("proxy port map %q", v)
	}
	h.ok("ports:clear", "web")
	if v := h.ok("ports:report", "web", "--ports-map"); v != "\n" {
		t.Errorf("cleared map %q", v)
	}

	var rep map[string]string
	json.Unmarshal([]byte(h.ok("proxy:report", "web", "--format", "json")), &rep)
	if rep["proxy-type"] != "rivetr" || rep["proxy-enabled"] != "true" || rep["proxy-hosts"] != "web.example.test" || rep["proxy-https-redirect"] != "true" || rep["proxy-port-map"] != "http:80:5000" {
		t.Errorf("proxy report %v", rep)
	}
	h.ok("proxy:set", "web", "https-redirect", "false")
	if v := h.ok("proxy:report", "web", "--proxy-https-redirect"); v != "false\n" {
		t.Errorf("redirect %q", v)
	}
	h.fails(1, "Invalid value", "proxy:set", "web", "https-redirect", "maybe")
	h.fails(1, "Invalid key", "proxy:set", "web", "colour", "red")
	h.ok("proxy:set", "web", "https-redirect")
	if v := h.ok("proxy:report", "web", "--proxy-https-redirect"); v != "true\n" {
		t.Errorf("redirect after unset %q", v)
	}
	h.ok("domains:disable", "web")
	if v := h.ok("proxy:report", "web", "--proxy-enabled"); v != "false\n" {
		t.Errorf("proxy enabled when disabled %q", v)
	}
}
