package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestComposeApp: a pushed repository with a compose file is deployed as
// a compose app: a service built from the repository (web, routed), an
// image service with a healthcheck and a named volume (db), and a
// one-shot service (migrate) that web waits to complete; a redeploy that
// changes web only keeps db's container and swaps web with no downtime.
func TestComposeApp(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	testImages(t, "redis")
	srv, c := startPushServer(t, eng)
	app := randomName("compose")
	cleanupApp(t, srv, eng, app)
	bin, err := os.ReadFile(pushApp(t))
	if err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	c.mustGit(t, repo, "init", "-q", "-b", "main")
	if err := os.WriteFile(filepath.Join(repo, "server"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	compose := func(tag string) string {
		return `services:
  web:
    build: .
    ports: ["5000"]
    environment:
      VERSION_TAG: ` + tag + `
      DB_HOST: db
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
  db:
    image: rivetr-test/redis:7
    command: ["redis-server", "--appendonly", "yes", "--protected-mode", "no"]
    healthcheck:
      test: ["CMD", "redis-cli", "ping"]
      interval: 1s
      retries: 20
    volumes: [data:/data]
  migrate:
    image: rivetr-test/redis:7
    command: ["sh", "-c", "redis-cli -h db set migrated yes"]
    depends_on:
      db: {condition: service_healthy}
volumes:
  data: {}
`
	}
	commitTree(t, c, repo, map[string]string{
		"Dockerfile":  "FROM scratch\nCOPY server /server\nCMD [\"/server\"]\n",
		"compose.yml": compose("c1"),
	}, "v1")
	res := c.git(t, repo, "push", c.sshRemote(app), "main")
	wantPushOK(t, res, "-----> Building "+app+" from Dockerfile")
	// A Dockerfile at the root wins over the compose file, as documented;
	// the compose builder is chosen explicitly.
	c.must(t, "builder:set", app, "selected", "compose")
	res = c.must(t, "ps:rebuild", app)
	for _, w := range []string{"as a compose app", "-----> Building service web", "Waiting for migrate to complete", "=====> Application deployed:"} {
		if !strings.Contains(res.Stdout+res.Stderr, w) {
			t.Errorf("compose deploy output lacks %q:\n%s", w, res)
		}
	}
	wantServes(t, srv, app, "/", "hello c1")
	wantServes(t, srv, app, "/env/DB_HOST", "db")
	db := eng.containers(t, "rivetr.app="+app)
	var dbID string
	for _, x := range db {
		switch x.Labels["rivetr.process"] {
		case "db":
			dbID = x.ID
		case "migrate":
			if x.State != "exited" {
				t.Errorf("migrate is %s, want exited", x.State)
			}
		}
	}
	if dbID == "" {
		t.Fatalf("no db container: %+v", db)
	}
	if !eng.volumeExists(t, "rivetr."+app+".data") {
		t.Error("the named volume is not rivetr.APP.data")
	}
	plan := c.must(t, "builder:plan", app).Stdout
	if !strings.Contains(plan, "# web: rivetr/"+app) || !strings.Contains(plan, "after db (service_healthy), migrate (service_completed_successfully)") {
		t.Errorf("builder:plan:\n%s", plan)
	}

	// Change web only: db keeps its container.
	commitTree(t, c, repo, map[string]string{"compose.yml": compose("c2")}, "v2")
	res = c.git(t, repo, "push", c.sshRemote(app), "main")
	wantPushOK(t, res, "db: unchanged, kept")
	wantServes(t, srv, app, "/", "hello c2")
	found := false
	for _, x := range eng.containers(t, "rivetr.app="+app) {
		found = found || x.ID == dbID
	}
	if !found {
		t.Error("db was recreated although it did not change")
	}
	wantError(t, c.ssh(t, nil, "run", app, "ls"), 1, "compose app")
	// migrate reached db by its name on the app's network, and wrote to it.
	if v := strings.TrimSpace(c.must(t, "enter", app, "db", "--", "redis-cli", "get", "migrated").Stdout); v != "yes" {
		t.Errorf("db has migrated=%q, want yes", v)
	}

	// A bind mount is refused before anything changes.
	commitTree(t, c, repo, map[string]string{"compose.yml": strings.Replace(compose("c3"), "volumes: [data:/data]", "volumes: [\"/etc:/host-etc\"]", 1)}, "v3")
	wantPushRefused(t, c.git(t, repo, "push", c.sshRemote(app), "main"), "only named volumes are supported")
	wantServes(t, srv, app, "/", "hello c2")
}
