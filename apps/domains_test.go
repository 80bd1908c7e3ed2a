package apps_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rivetr/rivetr/apps"
	"github.com/rivetr/rivetr/store"
)

type fakeRuntime struct {
	apps.Runtime
	containers []apps.Container
}

func (f *fakeRuntime) List(_ context.Context, labels map[string]string) ([]apps.Container, error) {
	var out []apps.Container
	for _, c := range f.containers {
		match := true
		for k, v := range labels {
			if c.Labels[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, c)
		}
	}
	return out, nil
}

type fakeRouter struct {
	hosts, ups []string
	site       *apps.StaticSite
	removed    bool
}

func (r *fakeRouter) SetRoute(_ string, hosts, ups []string) {
	r.hosts, r.ups, r.site, r.removed = hosts, ups, nil, false
}
func (r *fakeRouter) SetStatic(_ string, hosts []string, site apps.StaticSite) {
	r.hosts, r.ups, r.site, r.removed = hosts, nil, &site, false
}
func (r *fakeRouter) RemoveRoute(string)                             { r.hosts, r.ups, r.removed = nil, nil, true }
func (r *fakeRouter) Drain(context.Context, []string, time.Duration) {}

type nopLog struct{}

func (nopLog) Printf(string, ...any) {}

func TestHostsAndReroute(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "rivetr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	svc := apps.NewService(db)
	if _, err := svc.Create(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	rt := &fakeRuntime{containers: []apps.Container{
		{ID: "1", Running: true, Addr: "10.0.0.2:5000", Labels: map[string]string{apps.LabelApp: "web", apps.LabelProcess: "web", apps.LabelRelease: "1"}},
		{ID: "2", Running: true, Addr: "10.0.0.3:5000", Labels: map[string]string{apps.LabelApp: "web", apps.LabelProcess: "worker", apps.LabelRelease: "1"}},
		{ID: "3", Running: false, Addr: "10.0.0.4:5000", Labels: map[string]string{apps.LabelApp: "web", apps.LabelProcess: "web", apps.LabelRelease: "1"}},
	}}
	router := &fakeRouter{}
	d := apps.NewDeployer(svc, nil, nil, rt, router, nopLog{}, apps.DeployerConfig{Domain: "example.test"})
	if h := d.Hosts(ctx, "web"); !slices.Equal(h, []string{"web.example.test"}) {
		t.Errorf("default hosts %v", h)
	}
	// Not deployed yet: no route.
	if err := d.Reroute(ctx, "web"); err != nil || router.ups != nil {
		t.Fatalf("reroute before deploy: %v %v", err, router.ups)
	}
	n, err := db.CreateRelease(ctx, apps.Release{App: "web", Status: apps.ReleaseDeployed})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.MarkDeployed(ctx, "web", n); err != nil {
		t.Fatal(err)
	}
	svc.SetSetting(ctx, "web", apps.DomainsNS, apps.DomainsVhosts, "www.example.com\n*.example.com")
	svc.SetSetting(ctx, apps.Global, apps.DomainsNS, apps.DomainsVhosts, "other.test")
	if err := d.Reroute(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if want := []string{"www.example.com", "*.example.com", "web.example.test", "web.other.test"}; !slices.Equal(router.hosts, want) {
		t.Errorf("hosts %v, want %v", router.hosts, want)
	}
	if !slices.Equal(router.ups, []string{"10.0.0.2:5000"}) {
		t.Errorf("upstreams %v", router.ups)
	}
	svc.SetSetting(ctx, "web", apps.DomainsNS, apps.DomainsEnabled, "false")
	if err := d.Reroute(ctx, "web"); err != nil || !router.removed {
		t.Errorf("disabled: route not removed (%v)", err)
	}
}

func TestPortMappings(t *testing.T) {
	for _, bad := range []string{"", "http", "http:80", "udp:80:80", "http:80:0", "http:-1:80", "http:80:99999", "http:80:80:80"} {
		if _, err := apps.ParsePortMapping(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	p, err := apps.ParsePortMapping("https:443:8443")
	if err != nil || p.Scheme != "https" || p.HostPort != 443 || p.ContainerPort != 8443 || p.String() != "https:443:8443" {
		t.Errorf("%v %v", p, err)
	}
}
