package e2e

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serviceCase is one engine tested against its stand-in image: a client
// command run in the linked app's container (the app's image is built
// FROM the stand-in, so it has the client) that writes, and one that reads
// back, through the URL the link put in the app's config.
type serviceCase struct {
	engine, image, version, testImage string
	envVar, scheme, color             string
	write, read                       string // sh -c scripts, $URL is the linked variable's value
	want                              string
}

var serviceCases = []serviceCase{
	{
		engine: "postgres", image: "rivetr-test/postgres", version: "15", testImage: "postgres",
		envVar: "DATABASE_URL", scheme: "postgres://postgres:", color: "RIVETR_POSTGRES_AQUA_URL",
		write: `psql "$URL" -v ON_ERROR_STOP=1 -qc "CREATE TABLE t (v text); INSERT INTO t VALUES ('from-app')"`,
		read:  `psql "$URL" -tAc "SELECT v FROM t"`,
		want:  "from-app",
	},
	{
		// MySQL's definition against the MariaDB stand-in (MySQL protocol).
		engine: "mysql", image: "rivetr-test/mariadb", version: "10.11", testImage: "mariadb",
		envVar: "DATABASE_URL", scheme: "mysql://mysql:", color: "RIVETR_MYSQL_AQUA_URL",
		write: mysqlFromURL + ` -e "CREATE TABLE t (v text); INSERT INTO t VALUES ('from-app')"`,
		read:  mysqlFromURL + ` -N -e "SELECT v FROM t"`,
		want:  "from-app",
	},
	{
		engine: "redis", image: "rivetr-test/redis", version: "7", testImage: "redis",
		envVar: "REDIS_URL", scheme: "redis://:", color: "RIVETR_REDIS_AQUA_URL",
		// Dokku's form redis://:PASS@HOST:6379 (redis-cli 7.0's -u sends an
		// empty user name with it, so the test passes the parts).
		write: redisFromURL + ` set k from-app | grep -q OK`,
		read:  redisFromURL + ` get k`,
		want:  "from-app",
	},
}

// redisFromURL runs redis-cli with the parts of redis://:PASS@HOST:PORT.
const redisFromURL = `pw=${URL#redis://:}; pw=${pw%%@*}; hp=${URL##*@}; redis-cli -h "${hp%:*}" -p "${hp##*:}" -a "$pw" --no-auth-warning`

// mysqlFromURL runs the mysql client with the parts of mysql://u:p@h:port/db.
const mysqlFromURL = `r=${URL#mysql://}; up=${r%%@*}; hp=${r#*@}; hp=${hp%%/*}; db=${r##*/}; mysql -u"${up%%:*}" -p"${up#*:}" -h"${hp%%:*}" -P"${hp##*:}" "$db"`

// TestServices: for PostgreSQL, MySQL (MariaDB stand-in) and Redis:
// create, link to an app whose container writes and reads through the
// linked URL, export and import into a second service, the colour alias
// of a second link, destroy refused while linked, unlink, destroy.
func TestServices(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	testImages(t, "postgres", "mariadb", "redis")
	srv, c := startPushServer(t, eng)
	bin, err := os.ReadFile(pushApp(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range serviceCases {
		t.Run(tc.engine, func(t *testing.T) {
			ns := tc.engine
			db, db2 := randomName("db"), randomName("db")
			t.Cleanup(func() {
				for _, n := range []string{db, db2} {
					srv.cli(t, nil, ns+":destroy", n, "--force")
				}
			})
			res := c.must(t, ns+":create", db, "--image", tc.image, "--image-version", tc.version)
			if !strings.Contains(res.Stdout, "container created: "+db) {
				t.Errorf("create output:\n%s", res)
			}
			if st := strings.TrimSpace(c.must(t, ns+":info", db, "--status").Stdout); st != "running" {
				t.Errorf("status %q", st)
			}
			dsn := strings.TrimSpace(c.must(t, ns+":info", db, "--dsn").Stdout)
			if !strings.HasPrefix(dsn, tc.scheme) || !strings.Contains(dsn, "@rivetr-"+ns+"-"+db+":") {
				t.Errorf("dsn %q", dsn)
			}
			cs := eng.containers(t, "rivetr.service="+db)
			if len(cs) != 1 || cs[0].Labels["rivetr.process"] != ns {
				t.Fatalf("containers of %s: %+v", db, cs)
			}
			if d := eng.inspect(t, cs[0].ID); len(d.HostConfig.PortBindings) != 0 {
				t.Errorf("a port is published: %v", d.HostConfig.PortBindings)
			}
			wantOK(t, c.ssh(t, nil, ns+":exists", db))
			wantError(t, c.ssh(t, nil, ns+":exists", "nope-"+db), 1, "")
			wantError(t, c.ssh(t, nil, ns+":create", "bad/name"), 1, "")
			wantError(t, c.ssh(t, nil, ns+":create", db), 1, "already exists")

			// An app built FROM the stand-in (so it has the client) linked.
			app := randomName("svcapp")
			cleanupApp(t, srv, eng, app)
			repo := t.TempDir()
			c.mustGit(t, repo, "init", "-q", "-b", "main")
			if err := os.WriteFile(filepath.Join(repo, "server"), bin, 0o755); err != nil {
				t.Fatal(err)
			}
			commitTree(t, c, repo, map[string]string{"Dockerfile": "FROM " + tc.image + ":" + tc.version + "\nCOPY server /server\nENTRYPOINT []\nCMD [\"/server\"]\n"}, "app")
			pushDeploys(t, srv, c, repo, app)

			res = c.must(t, ns+":link", db, app)
			if !strings.Contains(res.Stdout, tc.envVar) || !strings.Contains(res.Stdout, "Restarting app "+app) {
				t.Errorf("link output:\n%s", res)
			}
			if v := strings.TrimSpace(c.must(t, "config:get", app, tc.envVar).Stdout); v != dsn {
				t.Errorf("%s = %q, want %q", tc.envVar, v, dsn)
			}
			runIn := func(script string) string {
				t.Helper()
				r := srv.cli(t, nil, "run", app, "--", "sh", "-c", "URL=$"+tc.envVar+"; "+script)
				if r.Code != 0 {
					t.Fatalf("run %s: %s", script, r)
				}
				return strings.TrimSpace(r.Stdout)
			}
			runIn(tc.write)
			if got := runIn(tc.read); got != tc.want {
				t.Errorf("read back %q, want %q", got, tc.want)
			}
			wantError(t, c.ssh(t, nil, ns+":link", db, app), 1, "Already linked as "+tc.envVar)
			wantOK(t, c.ssh(t, nil, ns+":linked", db, app))
			if l := strings.TrimSpace(c.must(t, ns+":links", db).Stdout); l != app {
				t.Errorf("links %q", l)
			}

			// Export, and import into a second service.
			dump := srv.mustCLI(t, nil, ns+":export", db).Stdout
			if len(dump) == 0 {
				t.Fatal("empty export")
			}
			c.must(t, ns+":create", db2, "--image", tc.image, "--image-version", tc.version)
			res = srv.cli(t, []byte(dump), ns+":import", db2)
			wantOK(t, res)
			res = c.must(t, ns+":link", db2, app, "--no-restart")
			if !strings.Contains(res.Stdout, tc.color) {
				t.Errorf("second link did not take %s:\n%s", tc.color, res)
			}
			if got := strings.TrimSpace(srv.mustCLI(t, nil, "run", app, "--", "sh", "-c", "URL=$"+tc.color+"; "+tc.read).Stdout); got != tc.want {
				t.Errorf("imported copy reads %q, want %q", got, tc.want)
			}
			if apps := strings.TrimSpace(c.must(t, ns+":app-links", app).Stdout); apps != strings.Join(sortedPair(db, db2), "\n") {
				t.Errorf("app-links %q", apps)
			}

			wantError(t, c.ssh(t, nil, ns+":destroy", db, "--force"), 1, "Cannot delete linked service")
			c.must(t, ns+":unlink", db2, app, "--no-restart")
			c.must(t, ns+":unlink", db, app)
			wantError(t, c.ssh(t, nil, ns+":unlink", db, app), 1, "Not linked to app")
			if r := c.ssh(t, nil, "config:get", app, tc.envVar); r.Code == 0 {
				t.Errorf("%s still set after unlink", tc.envVar)
			}
			// destroy asks for the name; a wrong answer keeps everything.
			wantError(t, c.ssh(t, []byte("nope\n"), ns+":destroy", db), 1, "Confirmation did not match")
			c.mustIn(t, []byte(db+"\n"), ns+":destroy", db)
			if cs := eng.containers(t, "rivetr.service="+db); len(cs) != 0 {
				t.Errorf("container left after destroy")
			}
			if eng.volumeExists(t, "rivetr."+ns+"."+db) {
				t.Errorf("volume rivetr.%s.%s left after destroy", ns, db)
			}
		})
	}
}

func sortedPair(a, b string) []string {
	if a < b {
		return []string{a, b}
	}
	return []string{b, a}
}

// volumeExists reports whether the engine has a volume of that name.
func (e *engine) volumeExists(t *testing.T, name string) bool {
	t.Helper()
	var v struct{ Name string }
	e.call(t, http.MethodGet, "/volumes/"+url.PathEscape(name), &v, true)
	return v.Name == name
}
