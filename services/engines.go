package services

import (
	"net/url"
	"sort"
	"strconv"
)

// Engine is the definition of one kind of service.
type Engine struct {
	Name    string // namespace: postgres, mysql, mariadb, mongo, redis
	Title   string // "Postgres"
	Image   string // default image
	Version string // default image tag
	Port    int
	// DataPath is where the image keeps its data (the volume's mount).
	DataPath string
	// EnvVar is the config var a link sets by default; ColorPrefix the
	// prefix of the alternative ones (RIVETR_POSTGRES_AQUA_URL).
	EnvVar      string
	ColorPrefix string
	Scheme      string
	// Env is the container's environment; Cmd its command (nil: the
	// image's).
	Env func(s Instance) map[string]string
	Cmd func(s Instance) []string
	// URL is what a linked app gets, for host (the network alias).
	URL func(s Instance, host string) string
	// Ready is a command that succeeds once the server takes connections.
	Ready func(s Instance) []string
	// Client is the interactive client (connect); Dump writes a dump to
	// stdout (export, backup) and Restore reads one from stdin (import).
	Client, Dump, Restore func(s Instance) []string
	// KillAfterRestore: after Restore the container is killed (no chance
	// to save its memory over the restored file) and started again, as
	// Redis loads its data file only at start.
	KillAfterRestore bool
	// DumpExt names backup files.
	DumpExt string
}

// Instance is what an engine's functions need of one service.
type Instance struct {
	Name, Password, RootPassword string
	CustomEnv                    map[string]string
}

// Engines are the built-in engines by name.
var Engines = map[string]*Engine{}

// Names lists the engines, sorted.
func Names() []string {
	names := make([]string, 0, len(Engines))
	for n := range Engines {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func register(e *Engine) { Engines[e.Name] = e }

func withCustom(env map[string]string, s Instance) map[string]string {
	for k, v := range s.CustomEnv {
		if _, reserved := env[k]; !reserved {
			env[k] = v
		}
	}
	return env
}

func userURL(scheme, user, pass, host string, port int, path string) string {
	u := url.URL{Scheme: scheme, User: url.UserPassword(user, pass), Host: host + ":" + strconv.Itoa(port), Path: path}
	return u.String()
}

func init() {
	register(&Engine{
		Name: "postgres", Title: "Postgres", Image: "postgres", Version: "17.2", Port: 5432,
		DataPath: "/var/lib/postgresql/data", EnvVar: "DATABASE_URL", ColorPrefix: "RIVETR_POSTGRES_", Scheme: "postgres",
		Env: func(s Instance) map[string]string {
			return withCustom(map[string]string{"POSTGRES_PASSWORD": s.Password, "POSTGRES_DB": s.Name}, s)
		},
		URL: func(s Instance, host string) string {
			return userURL("postgres", "postgres", s.Password, host, 5432, "/"+s.Name)
		},
		Ready: func(s Instance) []string {
			return []string{"pg_isready", "-q", "-h", "127.0.0.1", "-p", "5432", "-U", "postgres"}
		},
		Client: func(s Instance) []string { return []string{"psql", "-v", "ON_ERROR_STOP=1", "-U", "postgres", s.Name} },
		Dump: func(s Instance) []string {
			return []string{"pg_dump", "-Fc", "--no-acl", "--no-owner", "-U", "postgres", s.Name}
		},
		Restore: func(s Instance) []string {
			return []string{"pg_restore", "--clean", "--if-exists", "--no-acl", "--no-owner", "-U", "postgres", "-d", s.Name}
		},
		DumpExt: "dump",
	})
	for _, m := range []struct{ name, title, image, version, client, admin, dump string }{
		{"mysql", "MySQL", "mysql", "8.4", "mysql", "mysqladmin", "mysqldump"},
		{"mariadb", "MariaDB", "mariadb", "11.4", "mariadb", "mariadb-admin", "mariadb-dump"},
	} {
		register(&Engine{
			Name: m.name, Title: m.title, Image: m.image, Version: m.version, Port: 3306,
			DataPath: "/var/lib/mysql", EnvVar: "DATABASE_URL", ColorPrefix: "RIVETR_" + map[string]string{"mysql": "MYSQL_", "mariadb": "MARIADB_"}[m.name], Scheme: "mysql",
			Env: func(s Instance) map[string]string {
				return withCustom(map[string]string{
					"MYSQL_ROOT_PASSWORD": s.RootPassword, "MYSQL_DATABASE": s.Name,
					"MYSQL_USER": "mysql", "MYSQL_PASSWORD": s.Password,
				}, s)
			},
			URL: func(s Instance, host string) string {
				return userURL("mysql", "mysql", s.Password, host, 3306, "/"+s.Name)
			},
			Ready: func(s Instance) []string {
				return []string{m.admin, "ping", "-h", "127.0.0.1", "-uroot", "-p" + s.RootPassword, "--silent"}
			},
			Client: func(s Instance) []string { return []string{m.client, "-uroot", "-p" + s.RootPassword, s.Name} },
			Dump: func(s Instance) []string {
				return []string{m.dump, "-uroot", "-p" + s.RootPassword, "--single-transaction", "--routines", "--triggers", s.Name}
			},
			Restore: func(s Instance) []string { return []string{m.client, "-uroot", "-p" + s.RootPassword, s.Name} },
			DumpExt: "sql",
		})
	}
	register(&Engine{
		Name: "mongo", Title: "Mongo", Image: "mongo", Version: "8.0", Port: 27017,
		DataPath: "/data/db", EnvVar: "MONGO_URL", ColorPrefix: "RIVETR_MONGO_", Scheme: "mongodb",
		Env: func(s Instance) map[string]string {
			return withCustom(map[string]string{
				"MONGO_INITDB_ROOT_USERNAME": "root", "MONGO_INITDB_ROOT_PASSWORD": s.Password, "MONGO_INITDB_DATABASE": s.Name,
			}, s)
		},
		URL: func(s Instance, host string) string {
			return userURL("mongodb", "root", s.Password, host, 27017, "/"+s.Name) + "?authSource=admin"
		},
		Ready: func(s Instance) []string {
			return []string{"mongosh", "--quiet", "-u", "root", "-p", s.Password, "--authenticationDatabase", "admin", "--eval", "db.adminCommand('ping').ok"}
		},
		Client: func(s Instance) []string {
			return []string{"mongosh", "--quiet", "-u", "root", "-p", s.Password, "--authenticationDatabase", "admin", s.Name}
		},
		Dump: func(s Instance) []string {
			return []string{"mongodump", "--archive", "--quiet", "-u", "root", "-p", s.Password, "--authenticationDatabase", "admin", "--db", s.Name}
		},
		Restore: func(s Instance) []string {
			return []string{"mongorestore", "--archive", "--drop", "--quiet", "-u", "root", "-p", s.Password, "--authenticationDatabase", "admin"}
		},
		DumpExt: "archive",
	})
	register(&Engine{
		Name: "redis", Title: "Redis", Image: "redis", Version: "7.4", Port: 6379,
		DataPath: "/data", EnvVar: "REDIS_URL", ColorPrefix: "RIVETR_REDIS_", Scheme: "redis",
		Env: func(s Instance) map[string]string { return withCustom(map[string]string{}, s) },
		Cmd: func(s Instance) []string {
			return []string{"redis-server", "--requirepass", s.Password, "--dir", "/data", "--bind", "0.0.0.0", "--protected-mode", "no"}
		},
		URL: func(s Instance, host string) string {
			return (&url.URL{Scheme: "redis", User: url.UserPassword("", s.Password), Host: host + ":6379"}).String()
		},
		Ready:  func(s Instance) []string { return []string{"redis-cli", "-a", s.Password, "--no-auth-warning", "ping"} },
		Client: func(s Instance) []string { return []string{"redis-cli", "-a", s.Password, "--no-auth-warning"} },
		// SAVE, then the RDB file; a restore replaces it and restarts.
		Dump: func(s Instance) []string {
			return []string{"sh", "-c", `redis-cli -a "$1" --no-auth-warning save >/dev/null && cat /data/dump.rdb`, "sh", s.Password}
		},
		// The new RDB file goes in place; the Manager then kills the server
		// (KillAfterRestore) and starts it on that file.
		Restore: func(s Instance) []string {
			return []string{"sh", "-c", `cat > /data/dump.rdb.import && mv /data/dump.rdb.import /data/dump.rdb`}
		},
		KillAfterRestore: true,
		DumpExt:          "rdb",
	})
}

// colors are the alternative link aliases, in Dokku's order.
var colors = []string{"AQUA", "BLACK", "BLUE", "FUCHSIA", "GRAY", "GREEN", "LIME", "MAROON", "NAVY", "OLIVE", "PURPLE", "RED", "SILVER", "TEAL", "WHITE", "YELLOW"}
