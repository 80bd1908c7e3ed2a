package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// privateRegistry is Debian's docker-registry (distribution) on loopback
// with htpasswd logins: it plays a private registry such as GHCR.
type privateRegistry struct {
	addr string // 127.0.0.1:PORT
}

func startRegistry(t *testing.T, user, password string) *privateRegistry {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("docker-registry is not installed (.ci/run installs Debian's docker-registry)")
		}
		t.Skip("needs Debian's docker-registry (apt-get install docker-registry)")
	}
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "htpasswd"), []byte(user+":"+string(hash)+"\n"), 0o600)
	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s/data
http:
  addr: %s
auth:
  htpasswd:
    realm: rivetr-test
    path: %s/htpasswd
`, dir, addr, dir)
	os.WriteFile(filepath.Join(dir, "config.yml"), []byte(config), 0o644)
	cmd := exec.Command(bin, "serve", filepath.Join(dir, "config.yml"))
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(waitTimeout)
	for {
		res, err := exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "http://"+addr+"/v2/").Output()
		if err == nil && string(res) == "401" { // up, and asking for a login
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("docker-registry did not answer on %s:\n%s", addr, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &privateRegistry{addr: addr}
}

// docker runs the docker CLI with its own config dir (logins stay there).
func dockerCLI(t *testing.T, configDir string, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), pushTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+configDir)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestRegistryLogin: an image in a private registry (a real
// docker-registry with a password) deploys with git:from-image only after
// registry:login; a wrong password is refused by the registry itself;
// the password is never printed or logged.
func TestRegistryLogin(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	if eng.kind != "docker" {
		t.Skip("pushes to the registry with the docker CLI")
	}
	const user, password = "ci", "s3cret-Registry-pass"
	reg := startRegistry(t, user, password)
	srv, c := startPushServer(t, eng)
	app := randomName("reg")
	image := reg.addr + "/team/" + app + ":v1"
	cleanupApp(t, srv, eng, app)

	// CI builds and pushes the image; the server does not have it.
	buildAppImage(t, "docker", image, "reg1")
	cfgDir := t.TempDir()
	dockerCLI(t, cfgDir, password, "login", reg.addr, "-u", user, "--password-stdin")
	dockerCLI(t, cfgDir, "", "push", image)
	dockerCLI(t, cfgDir, "", "rmi", image)

	c.must(t, "apps:create", app)
	res := c.ssh(t, nil, "git:from-image", app, image)
	t.Logf("a private image without a login:\n%s", res)
	if res.Code == 0 || !strings.Contains(strings.ToLower(res.Stderr+res.Stdout), "auth") {
		t.Errorf("a private image without a login:\n%s", res)
	}
	wantError(t, c.ssh(t, nil, "registry:login", reg.addr, user, "wrong-password"), 1, "refused")
	wantError(t, c.ssh(t, nil, "registry:login", "Bad Host", user, password), 1, "Invalid registry")
	if out := c.must(t, "registry:report").Stdout; strings.Contains(out, reg.addr) {
		t.Errorf("a refused login was kept:\n%s", out)
	}
	res = c.mustIn(t, []byte(password+"\n"), "registry:login", "--password-stdin", reg.addr, user)
	if !strings.Contains(res.Stdout, "Login succeeded") {
		t.Errorf("registry:login:\n%s", res)
	}
	report := c.must(t, "registry:report").Stdout
	if !strings.Contains(report, reg.addr) || !strings.Contains(report, user) || strings.Contains(report, password) {
		t.Errorf("registry:report:\n%s", report)
	}

	c.must(t, "git:from-image", app, image)
	wantServes(t, srv, app, "/", "hello reg1")

	c.must(t, "registry:logout", reg.addr)
	wantError(t, c.ssh(t, nil, "registry:logout", reg.addr), 1, "No login")
	if strings.Contains(srv.stderr.String(), password) {
		t.Error("the registry password is in the daemon's log")
	}
}
