package e2e

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// serviceCase is one engine tested against its stand-in image: a client
// command run in the linked app's container (the app's image is built
// FROM the stand-in, so it has the client) that writes, and one that reads
// back, through the URL the link put in the app's config.
type serviceCase struct {
	engine, image, version, testImage string
	envVar, scheme, color             string
	write, change, read               string // sh -c scripts, $URL is the linked variable's value
	want                              string
}

var serviceCases = []serviceCase{
	{
		engine: "postgres", image: "rivetr-test/postgres", version: "15", testImage: "postgres",
		envVar: "DATABASE_URL", scheme: "postgres://postgres:", color: "RIVETR_POSTGRES_AQUA_URL",
		write:  `psql "$URL" -v ON_ERROR_STOP=1 -qc "CREATE TABLE t (v text); INSERT INTO t VALUES ('from-app')"`,
		change: `psql "$URL" -qc "UPDATE t SET v = 'changed'"`,
		read:   `psql "$URL" -tAc "SELECT v FROM t"`,
		want:   "from-app",
	},
	{
		// MySQL's definition against the MariaDB stand-in (MySQL protocol).
		engine: "mysql", image: "rivetr-test/mariadb", version: "10.11", testImage: "mariadb",
		envVar: "DATABASE_URL", scheme: "mysql://mysql:", color: "RIVETR_MYSQL_AQUA_URL",
		write:  mysqlFromURL + ` -e "CREATE TABLE t (v text); INSERT INTO t VALUES ('from-app')"`,
		change: mysqlFromURL + ` -e "UPDATE t SET v = 'changed'"`,
		read:   mysqlFromURL + ` -N -e "SELECT v FROM t"`,
		want:   "from-app",
	},
	{
		engine: "redis", image: "rivetr-test/redis", version: "7", testImage: "redis",
		envVar: "REDIS_URL", scheme: "redis://:", color: "RIVETR_REDIS_AQUA_URL",
		// Dokku's form redis://:PASS@HOST:6379 (redis-cli 7.0's -u sends an
		// empty user name with it, so the test passes the parts).
		write:  redisFromURL + ` set k from-app | grep -q OK`,
		change: redisFromURL + ` set k changed`,
		read:   redisFromURL + ` get k`,
		want:   "from-app",
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

			// Backup and restore: a backup, the data changed, the backup
			// restored.
			res = c.must(t, ns+":backup", db)
			if !strings.Contains(res.Stdout, "Backup written: "+filepath.Join(srv.dataDir, "backups", ns, db)) {
				t.Errorf("backup output:\n%s", res)
			}
			runIn(tc.change)
			if got := runIn(tc.read); !strings.Contains(got, "changed") {
				t.Fatalf("after the change the app reads %q", got)
			}
			c.must(t, ns+":backup-restore", db)
			if got := runIn(tc.read); got != tc.want {
				t.Errorf("after backup-restore the app reads %q, want %q", got, tc.want)
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

// TestServiceBackups: encrypted local backups, S3 backups against a local
// S3-compatible server (gofakes3, in this test process, checking SigV4),
// restore from each, a schedule that survives a restart of rivetr, and
// --dir refused over SSH.
func TestServiceBackups(t *testing.T) {
	t.Parallel()
	eng := needEngine(t)
	testImages(t, "postgres")
	srv, c := startPushServer(t, eng)
	backend := s3mem.New()
	if err := backend.CreateBucket("backups"); err != nil {
		t.Fatal(err)
	}
	s3 := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(s3.Close)

	db := randomName("bk")
	t.Cleanup(func() { srv.cli(t, nil, "postgres:destroy", db, "--force") })
	c.must(t, "postgres:create", db, "--image", "rivetr-test/postgres", "--image-version", "15")
	sql := func(q string) string {
		t.Helper()
		return strings.TrimSpace(c.mustIn(t, []byte(q+"\n"), "postgres:connect", db).Stdout)
	}
	sql("CREATE TABLE t (v text); INSERT INTO t VALUES ('v1');")
	count := func(bucket ...string) int {
		t.Helper()
		out := c.must(t, append([]string{"postgres:backup-list", db}, bucket...)...).Stdout
		return len(nonEmptyLines(out)) - 1 // the header
	}

	// Encrypted local backup.
	c.must(t, "postgres:backup-set-encryption", db, "a long passphrase")
	c.must(t, "postgres:backup", db)
	list := c.must(t, "postgres:backup-list", db).Stdout
	if !strings.Contains(list, ".dump.enc") {
		t.Fatalf("backup-list:\n%s", list)
	}
	dir := filepath.Join(srv.dataDir, "backups", "postgres", db)
	files, _ := os.ReadDir(dir)
	if len(files) != 1 {
		t.Fatalf("%d files in %s", len(files), dir)
	}
	raw := readFile(t, filepath.Join(dir, files[0].Name()))
	if !strings.HasPrefix(string(raw), "RIVETRBK1\n") {
		t.Errorf("backup file is not encrypted")
	}
	sql("UPDATE t SET v = 'changed';")
	c.must(t, "postgres:backup-restore", db)
	if v := sql(`\pset tuples_only on` + "\nSELECT v FROM t;"); !strings.Contains(v, "v1") || strings.Contains(v, "changed") {
		t.Errorf("after restoring the encrypted backup: %q", v)
	}
	c.must(t, "postgres:backup-unset-encryption", db)

	// S3.
	wantError(t, c.ssh(t, nil, "postgres:backup", db, "backups"), 1, "No S3 credentials")
	c.must(t, "postgres:backup-auth", db, s3.URL, "AKID", "SECRET", "us-east-1", "backups")
	res := c.must(t, "postgres:backup", db, "backups")
	if !strings.Contains(res.Stdout, "s3://backups/rivetr/postgres/"+db+"/") {
		t.Errorf("S3 backup output:\n%s", res)
	}
	if n := count("backups"); n != 1 {
		t.Errorf("%d backups in the bucket, want 1", n)
	}
	sql("UPDATE t SET v = 'changed again';")
	c.must(t, "postgres:backup-restore", db, "--bucket", "backups")
	if v := sql(`\pset tuples_only on` + "\nSELECT v FROM t;"); !strings.Contains(v, "v1") {
		t.Errorf("after restoring from S3: %q", v)
	}
	if out := c.must(t, "postgres:info", db).Stdout + srv.stderr.String(); strings.Contains(out, "SECRET") || strings.Contains(out, "a long passphrase") {
		t.Error("the S3 secret or the passphrase is shown or logged")
	}

	// --dir is for the server's admin only.
	wantError(t, c.ssh(t, nil, "postgres:backup", db, "--dir", "/tmp"), 1, "only on the server")
	other := t.TempDir()
	srv.mustCLI(t, nil, "postgres:backup", db, "--dir", other)
	if files, _ := os.ReadDir(other); len(files) != 1 {
		t.Errorf("--dir wrote %d files", len(files))
	}

	// A schedule every minute, across a restart of rivetr.
	wantError(t, c.ssh(t, nil, "postgres:backup-schedule", db, "every day"), 1, "Invalid schedule")
	before := count()
	c.must(t, "postgres:backup-schedule", db, "* * * * *")
	if v := strings.TrimSpace(c.must(t, "postgres:backup-schedule-cat", db).Stdout); v != "* * * * * (local)" {
		t.Errorf("backup-schedule-cat %q", v)
	}
	srv.stop()
	srv.start()
	deadline := time.Now().Add(150 * time.Second)
	for count() <= before {
		if time.Now().After(deadline) {
			t.Fatalf("no scheduled backup within 150 s\n%s", srv.stderr.String())
		}
		time.Sleep(2 * time.Second)
	}
	c.must(t, "postgres:backup-unschedule", db)
}
