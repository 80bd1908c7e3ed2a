package commands

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rivetr/rivetr/apps"
	"github.com/rivetr/rivetr/store"
)

func TestRegistryCommands(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(context.Background(), filepath.Join(dir, "rivetr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The engine's check, played by a function: one password is right.
	check := func(_ context.Context, l apps.RegistryLogin) error {
		if l.Password != "right" {
			return errors.New("unauthorized: incorrect username or password")
		}
		return nil
	}
	reg := NewRegistry()
	RegisterCore(reg, Deps{Apps: apps.NewService(db), Version: "test", DataDir: dir, Registries: RegistryDeps{Store: db, Check: check}})
	h := &harness{t: t, reg: reg}

	// Without an engine nothing can check a login: refused, not kept.
	noEngine := NewRegistry()
	RegisterCore(noEngine, Deps{Apps: apps.NewService(db), Version: "test", DataDir: dir, Registries: RegistryDeps{Store: db}})
	(&harness{t: t, reg: noEngine}).fails(1, "cannot be checked", "registry:login", "ghcr.io", "me", "right")

	h.fails(1, "Login to ghcr.io refused: unauthorized", "registry:login", "ghcr.io", "me", "wrong")
	h.fails(1, "Invalid registry", "registry:login", "ghcr.io/x", "me", "right")
	h.fails(1, "Invalid registry", "registry:login", ".x", "me", "right")
	h.fails(1, "Usage", "registry:login", "ghcr.io", "me")
	h.fails(1, "Invalid username", "registry:login", "ghcr.io", "m e", "right")
	if out := h.ok("registry:report"); !strings.Contains(out, "No registry logins") {
		t.Errorf("a refused login was kept:\n%s", out)
	}
	h.ok("registry:login", "GHCR.io", "me", "right")
	if r := h.run("right\n", false, "registry:login", "--password-stdin", "registry.example.com:5000", "ci"); r.code != 0 || !strings.Contains(r.out, "Login succeeded") {
		t.Errorf("--password-stdin: %+v", r)
	}
	if r := h.run("", false, "registry:login", "--password-stdin", "registry.example.com:5000", "ci"); r.code == 0 {
		t.Errorf("--password-stdin without a password: %+v", r)
	}
	out := h.ok("registry:report")
	if !strings.Contains(out, "ghcr.io") || !strings.Contains(out, "registry.example.com:5000") || strings.Contains(out, "right") {
		t.Errorf("registry:report:\n%s", out)
	}
	js := h.ok("registry:report", "--format", "json")
	if !strings.Contains(js, `"server":"ghcr.io"`) || strings.Contains(js, "right") {
		t.Errorf("registry:report --format json:\n%s", js)
	}
	h.ok("registry:logout", "ghcr.io")
	h.fails(1, "No login for ghcr.io", "registry:logout", "ghcr.io")
	if logins, _ := db.RegistryLogins(context.Background()); len(logins) != 1 || logins[0].Server != "registry.example.com:5000" {
		t.Errorf("logins left: %+v", logins)
	}
}
