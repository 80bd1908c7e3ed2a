package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTemplates: the catalogue, a template's variables, one template
// deployed end to end (nginx, pointed at a local image that speaks HTTP
// on PORT) and served at INSTANCE.<domain>, its generated values kept in
// the app's config, and a template that mounts the engine's socket
// refused over SSH.
func TestTemplates(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	srv, c := startPushServer(t, eng)

	list := c.must(t, "templates:list").Stdout
	if n := len(nonEmptyLines(list)) - 1; n != 26 {
		t.Errorf("templates:list shows %d templates, want 26:\n%s", n, list)
	}
	for _, name := range []string{"wordpress", "outline", "plausible", "vaultwarden", "filebrowser"} {
		if !strings.Contains(list, name) {
			t.Errorf("templates:list lacks %s", name)
		}
	}
	info := c.must(t, "templates:info", "gitea").Stdout
	if !strings.Contains(info, "DB_PASSWORD=(generated secret)") || !strings.Contains(info, "GITEA_IMAGE=gitea/gitea:") {
		t.Errorf("templates:info gitea:\n%s", info)
	}
	wantError(t, c.ssh(t, nil, "templates:deploy", "portainer"), 1, "engine's socket")
	wantError(t, c.ssh(t, nil, "templates:deploy", "nginx", "--set", "NOPE=1"), 1, "has no variable NOPE")
	wantError(t, c.ssh(t, nil, "templates:deploy", "../etc"), 1, "")

	// A local image standing in for nginx: the test app, which serves on PORT.
	ctxDir := t.TempDir()
	bin, err := os.ReadFile(pushApp(t))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(ctxDir, "server"), bin, 0o755)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\nCOPY server /server\nENV VERSION_TAG=tpl\nCMD [\"/server\"]\n"), 0o644)
	if out, err := exec.Command("docker", "build", "-q", "-t", "rivetr-test/pushapp:tpl", ctxDir).CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	instance := randomName("site")
	cleanupApp(t, srv, eng, instance)
	res := c.must(t, "templates:deploy", "nginx", instance, "--set", "NGINX_IMAGE=rivetr-test/pushapp:tpl", "--set", "NGINX_PORT=5000")
	if !strings.Contains(res.Stdout, "as a compose app") || !strings.Contains(res.Stdout, "=====> Application deployed:") {
		t.Errorf("templates:deploy output:\n%s", res)
	}
	wantServes(t, srv, instance, "/", "hello tpl")
	wantServes(t, srv, instance, "/env/PORT", "5000")
	if v := strings.TrimSpace(c.must(t, "config:get", instance, "DOMAIN").Stdout); v != instance+".localhost" {
		t.Errorf("DOMAIN = %q", v)
	}
	// A redeploy keeps the values (and would keep generated secrets).
	c.must(t, "ps:rebuild", instance)
	wantServes(t, srv, instance, "/", "hello tpl")
	wantError(t, c.ssh(t, nil, "templates:deploy", "nginx", instance), 1, "already taken")
}
