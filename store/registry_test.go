package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rivetr/rivetr/apps"
)

func TestRegistryLogins(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "rivetr.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC().Truncate(time.Second)
	for _, l := range []apps.RegistryLogin{
		{Server: "registry.example.com:5000", Username: "ci", Password: "p1", CreatedAt: now},
		{Server: "ghcr.io", Username: "me", Password: "p2", CreatedAt: now},
		{Server: "ghcr.io", Username: "me2", Password: "p3", CreatedAt: now}, // replaces
	} {
		if err := s.SetRegistryLogin(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.RegistryLogins(ctx)
	if err != nil || len(got) != 2 || got[0].Server != "ghcr.io" || got[0].Username != "me2" || got[0].Password != "p3" || !got[0].CreatedAt.Equal(now) {
		t.Fatalf("RegistryLogins = %+v, %v", got, err)
	}
	if err := s.SetRegistryLogin(ctx, apps.RegistryLogin{Server: "ghcr.io"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.RegistryLogins(ctx); len(got) != 1 || got[0].Server != "registry.example.com:5000" {
		t.Errorf("after removing ghcr.io: %+v", got)
	}
}
