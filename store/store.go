// Package store keeps rivetr's state in one SQLite file (modernc.org/sqlite,
// pure Go) in WAL mode with foreign keys on, and implements apps.Store.
// Schema changes are embedded, numbered migrations applied at open.
package store

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rivetr/rivetr/apps"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// SQLite is the SQLite implementation of apps.Store.
type SQLite struct {
	db *sql.DB
}

var _ apps.Store = (*SQLite)(nil)

// Open opens (creating if needed) the database at path and migrates it.
func Open(ctx context.Context, path string) (*SQLite, error) {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open state %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(2)
	s := &SQLite{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate state %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *SQLite) Close() error { return s.db.Close() }

// migrate applies every embedded migration newer than PRAGMA user_version,
// each in its own transaction together with the version bump.
func (s *SQLite) migrate(ctx context.Context) error {
	var current int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return err
	}
	files, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(files)
	for _, f := range files {
		base := strings.TrimPrefix(f, "migrations/")
		n, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with a number", base)
		}
		if n <= current {
			continue
		}
		body, err := migrations.ReadFile(f)
		if err != nil {
			return err
		}
		err = s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("migration %s: %w", base, err)
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", n))
			return err
		})
		if err != nil {
			return err
		}
		current = n
	}
	return nil
}

// SchemaVersion returns the applied migration number.
func (s *SQLite) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v)
	return v, err
}

func (s *SQLite) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// appID resolves an app name to its row id; Global resolves to a NULL id.
func appID(ctx context.Context, q querier, scope string) (sql.NullInt64, error) {
	if scope == apps.Global {
		return sql.NullInt64{}, nil
	}
	var id int64
	err := q.QueryRowContext(ctx, "SELECT id FROM apps WHERE name = ?", scope).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return sql.NullInt64{}, apps.NotFound(scope)
	}
	if err != nil {
		return sql.NullInt64{}, err
	}
	return sql.NullInt64{Int64: id, Valid: true}, nil
}

// scopeClause matches rows of a scope, where a NULL app_id is the global one.
const scopeClause = "ifnull(app_id, 0) = ifnull(?, 0)"

// CreateApp inserts a new app; its name must be free.
func (s *SQLite) CreateApp(ctx context.Context, app apps.App) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		return insertApp(ctx, tx, app)
	})
}

func insertApp(ctx context.Context, tx *sql.Tx, app apps.App) error {
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM apps WHERE name = ?", app.Name).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return apps.Errorf(apps.ErrAppExists, "Name is already taken")
	}
	_, err := tx.ExecContext(ctx, "INSERT INTO apps (name, created_at, locked) VALUES (?, ?, ?)",
		app.Name, app.CreatedAt.Unix(), app.Locked)
	return err
}

// App returns one app.
func (s *SQLite) App(ctx context.Context, name string) (apps.App, error) {
	var a apps.App
	var created int64
	err := s.db.QueryRowContext(ctx, "SELECT name, created_at, locked FROM apps WHERE name = ?", name).
		Scan(&a.Name, &created, &a.Locked)
	if errors.Is(err, sql.ErrNoRows) {
		return apps.App{}, apps.NotFound(name)
	}
	if err != nil {
		return apps.App{}, fmt.Errorf("read app %s: %w", name, err)
	}
	a.CreatedAt = time.Unix(created, 0).UTC()
	return a, nil
}

// Apps returns every app ordered by name.
func (s *SQLite) Apps(ctx context.Context) ([]apps.App, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT name, created_at, locked FROM apps ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list apps: %w", err)
	}
	defer rows.Close()
	var list []apps.App
	for rows.Next() {
		var a apps.App
		var created int64
		if err := rows.Scan(&a.Name, &created, &a.Locked); err != nil {
			return nil, err
		}
		a.CreatedAt = time.Unix(created, 0).UTC()
		list = append(list, a)
	}
	return list, rows.Err()
}

// RenameApp renames an app; the new name must be free.
func (s *SQLite) RenameApp(ctx context.Context, oldName, newName string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		id, err := appID(ctx, tx, oldName)
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM apps WHERE name = ?", newName).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return apps.Errorf(apps.ErrAppExists, "Name is already taken")
		}
		_, err = tx.ExecContext(ctx, "UPDATE apps SET name = ? WHERE id = ?", newName, id)
		return err
	})
}

// CloneApp creates dst with a copy of src's env and settings.
func (s *SQLite) CloneApp(ctx context.Context, src string, dst apps.App) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		srcID, err := appID(ctx, tx, src)
		if err != nil {
			return err
		}
		if err := insertApp(ctx, tx, dst); err != nil {
			return err
		}
		dstID, err := appID(ctx, tx, dst.Name)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO env (app_id, key, value) SELECT ?, key, value FROM env WHERE app_id = ?", dstID, srcID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO settings (app_id, namespace, key, value) SELECT ?, namespace, key, value FROM settings WHERE app_id = ?", dstID, srcID)
		return err
	})
}

// DeleteApp removes an app; its env and settings go with it.
func (s *SQLite) DeleteApp(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM apps WHERE name = ?", name)
	if err != nil {
		return fmt.Errorf("delete app %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apps.NotFound(name)
	}
	return nil
}

// SetAppLocked sets the deploy lock of an app.
func (s *SQLite) SetAppLocked(ctx context.Context, name string, locked bool) error {
	res, err := s.db.ExecContext(ctx, "UPDATE apps SET locked = ? WHERE name = ?", locked, name)
	if err != nil {
		return fmt.Errorf("lock app %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apps.NotFound(name)
	}
	return nil
}

// Env returns the config of a scope.
func (s *SQLite) Env(ctx context.Context, scope string) (map[string]string, error) {
	id, err := appID(ctx, s.db, scope)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, "SELECT key, value FROM env WHERE "+scopeClause, id)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer rows.Close()
	env := map[string]string{}
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		env[k] = string(v)
	}
	return env, rows.Err()
}

// UpdateEnv applies a change to a scope's config in one transaction.
func (s *SQLite) UpdateEnv(ctx context.Context, scope string, change apps.EnvChange) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		id, err := appID(ctx, tx, scope)
		if err != nil {
			return err
		}
		if change.Clear {
			if _, err := tx.ExecContext(ctx, "DELETE FROM env WHERE "+scopeClause, id); err != nil {
				return err
			}
		}
		for _, k := range change.Unset {
			if _, err := tx.ExecContext(ctx, "DELETE FROM env WHERE "+scopeClause+" AND key = ?", id, k); err != nil {
				return err
			}
		}
		for k, v := range change.Set {
			if _, err := tx.ExecContext(ctx, "DELETE FROM env WHERE "+scopeClause+" AND key = ?", id, k); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO env (app_id, key, value) VALUES (?, ?, ?)", id, k, []byte(v)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Settings returns a scope's settings in one namespace.
func (s *SQLite) Settings(ctx context.Context, scope, namespace string) (map[string]string, error) {
	id, err := appID(ctx, s.db, scope)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, "SELECT key, value FROM settings WHERE "+scopeClause+" AND namespace = ?", id, namespace)
	if err != nil {
		return nil, fmt.Errorf("read %s settings: %w", namespace, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k string
		var v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		out[k] = string(v)
	}
	return out, rows.Err()
}

// AppsSettings returns every app's settings in one namespace, by app, in
// one query (apps without any are left out).
func (s *SQLite) AppsSettings(ctx context.Context, namespace string) (map[string]map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT a.name, s.key, s.value FROM settings s JOIN apps a ON a.id = s.app_id
		WHERE s.namespace = ?`, namespace)
	if err != nil {
		return nil, fmt.Errorf("read %s settings: %w", namespace, err)
	}
	defer rows.Close()
	out := map[string]map[string]string{}
	for rows.Next() {
		var app, k string
		var v []byte
		if err := rows.Scan(&app, &k, &v); err != nil {
			return nil, err
		}
		if out[app] == nil {
			out[app] = map[string]string{}
		}
		out[app][k] = string(v)
	}
	return out, rows.Err()
}

// SetSetting stores or (with an empty value) removes one setting.
func (s *SQLite) SetSetting(ctx context.Context, scope, namespace, key, value string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		id, err := appID(ctx, tx, scope)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM settings WHERE "+scopeClause+" AND namespace = ? AND key = ?", id, namespace, key); err != nil {
			return err
		}
		if value == "" {
			return nil
		}
		_, err = tx.ExecContext(ctx, "INSERT INTO settings (app_id, namespace, key, value) VALUES (?, ?, ?, ?)", id, namespace, key, []byte(value))
		return err
	})
}

// AddSSHKey stores a key; its name and its fingerprint must both be new.
func (s *SQLite) AddSSHKey(ctx context.Context, key apps.SSHKey) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM ssh_keys WHERE name = ?", key.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return apps.Errorf(apps.ErrKeyNameTaken, "Duplicate ssh key name %s", key.Name)
		}
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM ssh_keys WHERE fingerprint = ?", key.Fingerprint).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return apps.Errorf(apps.ErrKeyExists, "Duplicate ssh public key specified (%s)", key.Fingerprint)
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO ssh_keys (name, fingerprint, public_key, created_at) VALUES (?, ?, ?, ?)",
			key.Name, key.Fingerprint, key.PublicKey, key.CreatedAt.Unix())
		return err
	})
}

// SSHKeys lists the keys by name.
func (s *SQLite) SSHKeys(ctx context.Context) ([]apps.SSHKey, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT name, fingerprint, public_key, created_at FROM ssh_keys ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list ssh keys: %w", err)
	}
	defer rows.Close()
	var list []apps.SSHKey
	for rows.Next() {
		var k apps.SSHKey
		var created int64
		if err := rows.Scan(&k.Name, &k.Fingerprint, &k.PublicKey, &created); err != nil {
			return nil, err
		}
		k.CreatedAt = time.Unix(created, 0).UTC()
		list = append(list, k)
	}
	return list, rows.Err()
}

// SSHKeyByFingerprint finds the key with that fingerprint.
func (s *SQLite) SSHKeyByFingerprint(ctx context.Context, fingerprint string) (apps.SSHKey, error) {
	var k apps.SSHKey
	var created int64
	err := s.db.QueryRowContext(ctx, "SELECT name, fingerprint, public_key, created_at FROM ssh_keys WHERE fingerprint = ?", fingerprint).
		Scan(&k.Name, &k.Fingerprint, &k.PublicKey, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return apps.SSHKey{}, apps.Errorf(apps.ErrKeyNotFound, "No ssh key with fingerprint %s", fingerprint)
	}
	if err != nil {
		return apps.SSHKey{}, fmt.Errorf("find ssh key: %w", err)
	}
	k.CreatedAt = time.Unix(created, 0).UTC()
	return k, nil
}

// RemoveSSHKey removes a key by name or by fingerprint.
func (s *SQLite) RemoveSSHKey(ctx context.Context, nameOrFingerprint string, byFingerprint bool) error {
	col, what := "name", "name"
	if byFingerprint {
		col, what = "fingerprint", "fingerprint"
	}
	res, err := s.db.ExecContext(ctx, "DELETE FROM ssh_keys WHERE "+col+" = ?", nameOrFingerprint)
	if err != nil {
		return fmt.Errorf("remove ssh key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apps.Errorf(apps.ErrKeyNotFound, "No ssh key with %s %s", what, nameOrFingerprint)
	}
	return nil
}

// CreateRelease stores r as the app's next release.
func (s *SQLite) CreateRelease(ctx context.Context, r apps.Release) (int, error) {
	var number int
	err := s.tx(ctx, func(tx *sql.Tx) error {
		id, err := appID(ctx, tx, r.App)
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, "SELECT ifnull(max(number), 0) + 1 FROM releases WHERE app_id = ?", id).Scan(&number); err != nil {
			return err
		}
		env, err := json.Marshal(r.Env)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO releases (app_id, number, image, rev, builder, env, status, reason, created_by, created_at, log, procfile, appjson, checks)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, number, r.Image, r.Rev, r.Builder, env, r.Status, r.Reason, r.CreatedBy, r.CreatedAt.Unix(), r.Log, r.Procfile, r.AppJSON, r.Checks)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("create release of %s: %w", r.App, err)
	}
	return number, nil
}

// UpdateRelease stores a release's status, image, builder, env and log.
func (s *SQLite) UpdateRelease(ctx context.Context, r apps.Release) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		id, err := appID(ctx, tx, r.App)
		if err != nil {
			return err
		}
		env, err := json.Marshal(r.Env)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "UPDATE releases SET status = ?, image = ?, builder = ?, env = ?, log = ?, procfile = ?, appjson = ?, checks = ? WHERE app_id = ? AND number = ?",
			r.Status, r.Image, r.Builder, env, r.Log, r.Procfile, r.AppJSON, r.Checks, id, r.Number)
		return err
	})
}

// MarkDeployed makes number the deployed release and supersedes the last.
func (s *SQLite) MarkDeployed(ctx context.Context, app string, number int) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		id, err := appID(ctx, tx, app)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE releases SET status = ? WHERE app_id = ? AND status = ?", apps.ReleaseSuperseded, id, apps.ReleaseDeployed); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "UPDATE releases SET status = ? WHERE app_id = ? AND number = ?", apps.ReleaseDeployed, id, number)
		return err
	})
}

const releaseCols = "number, image, rev, builder, env, status, reason, created_by, created_at, log, procfile, appjson, checks"

func scanRelease(app string, sc scanner) (apps.Release, error) {
	r := apps.Release{App: app}
	var env []byte
	var created int64
	if err := sc.Scan(&r.Number, &r.Image, &r.Rev, &r.Builder, &env, &r.Status, &r.Reason, &r.CreatedBy, &created, &r.Log, &r.Procfile, &r.AppJSON, &r.Checks); err != nil {
		return r, err
	}
	r.CreatedAt = time.Unix(created, 0).UTC()
	if err := json.Unmarshal(env, &r.Env); err != nil {
		return r, fmt.Errorf("release %d env: %w", r.Number, err)
	}
	return r, nil
}

// Release returns release number of app.
func (s *SQLite) Release(ctx context.Context, app string, number int) (apps.Release, error) {
	id, err := appID(ctx, s.db, app)
	if err != nil {
		return apps.Release{}, err
	}
	r, err := scanRelease(app, s.db.QueryRowContext(ctx, "SELECT "+releaseCols+" FROM releases WHERE app_id = ? AND number = ?", id, number))
	if errors.Is(err, sql.ErrNoRows) {
		return apps.Release{}, apps.Errorf(apps.ErrNoRelease, "Release %d of %s not found", number, app)
	}
	return r, err
}

// FailPending marks every pending release failed (a deploy cut off by a
// restart) and returns how many.
func (s *SQLite) FailPending(ctx context.Context, reason string) (int, error) {
	res, err := s.db.ExecContext(ctx, "UPDATE releases SET status = ?, log = log || ? WHERE status = ?", apps.ReleaseFailed, "\n"+reason, apps.ReleasePending)
	if err != nil {
		return 0, fmt.Errorf("fail pending releases: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// Releases lists an app's releases, newest first.
func (s *SQLite) Releases(ctx context.Context, app string) ([]apps.Release, error) {
	id, err := appID(ctx, s.db, app)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, "SELECT "+releaseCols+" FROM releases WHERE app_id = ? ORDER BY number DESC", id)
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	defer rows.Close()
	var list []apps.Release
	for rows.Next() {
		r, err := scanRelease(app, rows)
		if err != nil {
			return nil, err
		}
		list = append(list, r)
	}
	return list, rows.Err()
}

// CurrentRelease returns the deployed release of app.
func (s *SQLite) CurrentRelease(ctx context.Context, app string) (apps.Release, bool, error) {
	id, err := appID(ctx, s.db, app)
	if err != nil {
		return apps.Release{}, false, err
	}
	row := s.db.QueryRowContext(ctx, "SELECT "+releaseCols+" FROM releases WHERE app_id = ? AND status = ? ORDER BY number DESC LIMIT 1", id, apps.ReleaseDeployed)
	r, err := scanRelease(app, row)
	if errors.Is(err, sql.ErrNoRows) {
		return apps.Release{}, false, nil
	}
	if err != nil {
		return apps.Release{}, false, err
	}
	return r, true, nil
}

// AddToken stores a token; name and hash must be new.
func (s *SQLite) AddToken(ctx context.Context, t apps.Token) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM tokens WHERE name = ?", t.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return apps.Errorf(apps.ErrTokenExists, "Token %s already exists", t.Name)
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO tokens (name, hash, created_at) VALUES (?, ?, ?)", t.Name, t.Hash, t.CreatedAt.Unix())
		return err
	})
}

// Tokens lists tokens by name (hashes included; never the secrets).
func (s *SQLite) Tokens(ctx context.Context) ([]apps.Token, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT name, hash, created_at, last_used FROM tokens ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var list []apps.Token
	for rows.Next() {
		var t apps.Token
		var created, used int64
		if err := rows.Scan(&t.Name, &t.Hash, &created, &used); err != nil {
			return nil, err
		}
		t.CreatedAt = time.Unix(created, 0).UTC()
		if used > 0 {
			t.LastUsed = time.Unix(used, 0).UTC()
		}
		list = append(list, t)
	}
	return list, rows.Err()
}

// TokenByHash finds a token by the hash of its secret and records its use.
func (s *SQLite) TokenByHash(ctx context.Context, hash string) (apps.Token, error) {
	var t apps.Token
	var created int64
	err := s.db.QueryRowContext(ctx, "SELECT name, hash, created_at FROM tokens WHERE hash = ?", hash).Scan(&t.Name, &t.Hash, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return apps.Token{}, apps.Errorf(apps.ErrTokenNotFound, "Invalid token")
	}
	if err != nil {
		return apps.Token{}, fmt.Errorf("find token: %w", err)
	}
	t.CreatedAt = time.Unix(created, 0).UTC()
	s.db.ExecContext(ctx, "UPDATE tokens SET last_used = ? WHERE hash = ?", time.Now().Unix(), hash)
	return t, nil
}

// RemoveToken deletes a token by name.
func (s *SQLite) RemoveToken(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM tokens WHERE name = ?", name)
	if err != nil {
		return fmt.Errorf("remove token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apps.Errorf(apps.ErrTokenNotFound, "No token named %s", name)
	}
	return nil
}
