package store

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rivetr/rivetr/apps"
)

func open(t *testing.T) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rivetr.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func mustApp(t *testing.T, s *SQLite, name string) {
	t.Helper()
	if err := s.CreateApp(context.Background(), apps.App{Name: name, CreatedAt: time.Unix(1700000000, 0)}); err != nil {
		t.Fatal(err)
	}
}

func TestPragmasAndMigrations(t *testing.T) {
	s, path := open(t)
	ctx := context.Background()
	var mode string
	var fk, busy int
	s.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
	s.db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk)
	s.db.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&busy)
	if mode != "wal" || fk != 1 || busy < 1000 {
		t.Errorf("journal_mode=%s foreign_keys=%d busy_timeout=%d", mode, fk, busy)
	}
	v, err := s.SchemaVersion(ctx)
	if err != nil || v < 1 {
		t.Fatalf("schema version %d, %v", v, err)
	}
	// Reopening applies nothing twice.
	s.Close()
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	v2, _ := s2.SchemaVersion(ctx)
	if v2 != v {
		t.Errorf("version changed on reopen: %d -> %d", v, v2)
	}
}

func TestApps(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	mustApp(t, s, "b")
	mustApp(t, s, "a")
	if err := s.CreateApp(ctx, apps.App{Name: "a"}); !errors.Is(err, apps.ErrAppExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	list, err := s.Apps(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "a" {
		t.Fatalf("apps = %v, %v", list, err)
	}
	if _, err := s.App(ctx, "nope"); !errors.Is(err, apps.ErrAppNotFound) {
		t.Fatalf("missing app: %v", err)
	}
	if err := s.SetAppLocked(ctx, "a", true); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.App(ctx, "a"); !a.Locked {
		t.Error("lock not stored")
	}
	if err := s.RenameApp(ctx, "a", "b"); !errors.Is(err, apps.ErrAppExists) {
		t.Errorf("rename onto existing: %v", err)
	}
	if err := s.UpdateEnv(ctx, "a", apps.EnvChange{Set: map[string]string{"K": "v"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RenameApp(ctx, "a", "c"); err != nil {
		t.Fatal(err)
	}
	if env, _ := s.Env(ctx, "c"); env["K"] != "v" {
		t.Errorf("config lost in rename: %v", env)
	}
	if err := s.DeleteApp(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	var n int
	s.db.QueryRow("SELECT count(*) FROM env").Scan(&n)
	if n != 0 {
		t.Errorf("env rows left after delete: %d", n)
	}
	if err := s.DeleteApp(ctx, "c"); !errors.Is(err, apps.ErrAppNotFound) {
		t.Errorf("double delete: %v", err)
	}
}

func TestEnvScopesAndAtomicity(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	mustApp(t, s, "a")
	if err := s.UpdateEnv(ctx, apps.Global, apps.EnvChange{Set: map[string]string{"G": "1", "K": "global"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateEnv(ctx, "a", apps.EnvChange{Set: map[string]string{"K": "app", "BIN": "\xff\xfe not utf8"}}); err != nil {
		t.Fatal(err)
	}
	g, _ := s.Env(ctx, apps.Global)
	a, _ := s.Env(ctx, "a")
	if g["K"] != "global" || a["K"] != "app" || len(a) != 2 || a["BIN"] != "\xff\xfe not utf8" {
		t.Fatalf("global %v app %q", g, a)
	}
	if err := s.UpdateEnv(ctx, "a", apps.EnvChange{Clear: true, Set: map[string]string{"N": "1"}}); err != nil {
		t.Fatal(err)
	}
	if a, _ = s.Env(ctx, "a"); len(a) != 1 || a["N"] != "1" {
		t.Errorf("replace: %v", a)
	}
	// A change to a missing app changes nothing.
	if err := s.UpdateEnv(ctx, "zz", apps.EnvChange{Clear: true}); !errors.Is(err, apps.ErrAppNotFound) {
		t.Errorf("missing scope: %v", err)
	}
	if g, _ = s.Env(ctx, apps.Global); len(g) != 2 {
		t.Errorf("global changed: %v", g)
	}
}

func TestCloneCopiesConfigAndSettings(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	mustApp(t, s, "src")
	s.UpdateEnv(ctx, "src", apps.EnvChange{Set: map[string]string{"A": "1"}})
	s.SetSetting(ctx, "src", "apps", "deploy-source", "git")
	if err := s.CloneApp(ctx, "src", apps.App{Name: "dst"}); err != nil {
		t.Fatal(err)
	}
	env, _ := s.Env(ctx, "dst")
	set, _ := s.Settings(ctx, "dst", "apps")
	if env["A"] != "1" || set["deploy-source"] != "git" {
		t.Errorf("clone env %v settings %v", env, set)
	}
	if err := s.CloneApp(ctx, "src", apps.App{Name: "dst"}); !errors.Is(err, apps.ErrAppExists) {
		t.Errorf("clone onto existing: %v", err)
	}
}

func TestSettings(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	mustApp(t, s, "a")
	s.SetSetting(ctx, apps.Global, "apps", "disable-autocreation", "true")
	s.SetSetting(ctx, "a", "apps", "deploy-source", "git")
	s.SetSetting(ctx, "a", "apps", "deploy-source", "docker-image")
	g, _ := s.Settings(ctx, apps.Global, "apps")
	a, _ := s.Settings(ctx, "a", "apps")
	if g["disable-autocreation"] != "true" || a["deploy-source"] != "docker-image" || len(a) != 1 {
		t.Fatalf("global %v app %v", g, a)
	}
	s.SetSetting(ctx, "a", "apps", "deploy-source", "")
	if a, _ = s.Settings(ctx, "a", "apps"); len(a) != 0 {
		t.Errorf("empty value did not remove: %v", a)
	}
}

func TestSSHKeys(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	k := apps.SSHKey{Name: "me", Fingerprint: "SHA256:x", PublicKey: "ssh-ed25519 AAAA", CreatedAt: time.Now()}
	if err := s.AddSSHKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSSHKey(ctx, k); !errors.Is(err, apps.ErrKeyNameTaken) {
		t.Errorf("duplicate name: %v", err)
	}
	k2 := k
	k2.Name = "other"
	if err := s.AddSSHKey(ctx, k2); !errors.Is(err, apps.ErrKeyExists) {
		t.Errorf("duplicate key: %v", err)
	}
	got, err := s.SSHKeyByFingerprint(ctx, "SHA256:x")
	if err != nil || got.Name != "me" {
		t.Fatalf("lookup: %v %v", got, err)
	}
	if err := s.RemoveSSHKey(ctx, "SHA256:x", true); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveSSHKey(ctx, "me", false); !errors.Is(err, apps.ErrKeyNotFound) {
		t.Errorf("remove missing: %v", err)
	}
}

// TestConcurrentWriters checks that WAL, the busy timeout and immediate
// transactions let many writers succeed without "database is locked".
func TestConcurrentWriters(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	mustApp(t, s, "a")
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				key := "K" + string(rune('A'+w))
				errs <- s.UpdateEnv(ctx, "a", apps.EnvChange{Set: map[string]string{key: "v"}})
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if env, _ := s.Env(ctx, "a"); len(env) != 8 {
		t.Errorf("got %d keys", len(env))
	}
}
