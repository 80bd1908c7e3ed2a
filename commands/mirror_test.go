package commands

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rivetr/rivetr/apps"
	"github.com/rivetr/rivetr/store"
)

// mirrorHarness registers the mirroring commands over a real state, with
// stand-ins for the gitserver functions they are given.
func mirrorHarness(t *testing.T) (*harness, *store.SQLite) {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "rivetr.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	reg := NewRegistry()
	svc := apps.NewService(db)
	RegisterCore(reg, Deps{Apps: svc, Version: "test", Mirrors: MirrorDeps{
		Store:       db,
		Queue:       apps.NewQueue(db, nil, nil, apps.QueueConfig{}),
		WebhookBase: "http://rivetr.example.com:8000",
		ValidateURL: func(u string) error {
			if strings.HasPrefix(u, "/") {
				return errBadURL
			}
			return nil
		},
		GenerateKey: func(app string) (apps.DeployKey, error) {
			return apps.DeployKey{App: app, Private: "-----BEGIN OPENSSH PRIVATE KEY-----\nx\n", Public: "ssh-ed25519 AAAA rivetr-" + app}, nil
		},
		RedactURL: func(u string) string { return strings.Replace(u, "s3cret", "xxxxx", 1) },
	}})
	if _, err := svc.Create(context.Background(), "web"); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, reg: reg}, db
}

var errBadURL = apps.Errorf(apps.ErrInvalidValue, "local paths are refused")

func TestMirrorCommandsKeepSecrets(t *testing.T) {
	h, db := mirrorHarness(t)
	out := h.ok("git:set", "web", "source-url", "https://bob:s3cret@git.example.com/o/r.git")
	out += h.ok("git:set", "web", "webhook-secret", "0123456789abcdef0123")
	out += h.ok("git:report", "web")
	out += h.ok("git:report", "web", "--format", "json")
	out += h.ok("git:auth", "GitHub.com", "bob", "ghp_tokentoken")
	if strings.Contains(out, "s3cret") || strings.Contains(out, "0123456789abcdef0123") || strings.Contains(out, "ghp_tokentoken") {
		t.Errorf("a secret is printed back:\n%s", out)
	}
	if c, ok, _ := db.GitCredential(context.Background(), "github.com"); !ok || c.Token != "ghp_tokentoken" || c.User != "bob" {
		t.Errorf("stored credential %+v", c)
	}
	h.fails(1, "Invalid value for source-url", "git:set", "web", "source-url", "/srv/other.git")
	h.fails(1, "Invalid value for webhook-secret", "git:set", "web", "webhook-secret", "short")
	h.fails(1, "Invalid host", "git:auth", "../etc", "u", "t")
	h.ok("git:auth", "github.com")
	if _, ok, _ := db.GitCredential(context.Background(), "github.com"); ok {
		t.Error("git:auth HOST did not remove the login")
	}

	// The webhook URL shows the secret: it is what the user pastes.
	url := h.ok("git:webhook-url", "web")
	if !strings.Contains(url, "http://rivetr.example.com:8000/webhooks/github") || !strings.Contains(url, "0123456789abcdef0123") {
		t.Errorf("git:webhook-url:\n%s", url)
	}

	key := h.ok("git:generate-deploy-key", "web")
	if !strings.Contains(key, "ssh-ed25519 AAAA rivetr-web") || strings.Contains(key, "PRIVATE") {
		t.Errorf("git:generate-deploy-key:\n%s", key)
	}
	h.fails(1, "already has a deploy key", "git:generate-deploy-key", "web")
	h.ok("git:generate-deploy-key", "web", "--force")
	if got := strings.TrimSpace(h.ok("git:public-key", "web")); got != "ssh-ed25519 AAAA rivetr-web" {
		t.Errorf("git:public-key = %q", got)
	}
	if rep := h.ok("git:report", "web", "--git-deploy-key"); strings.TrimSpace(rep) != "ssh-ed25519 AAAA rivetr-web" {
		t.Errorf("git:report --git-deploy-key = %q", rep)
	}
	h.fails(20, "does not exist", "git:public-key", "nope")
	h.ok("apps:create", "api")
	h.fails(1, "has no deploy key", "git:public-key", "api")
}

func TestDeploysCommands(t *testing.T) {
	h, db := mirrorHarness(t)
	j, err := db.EnqueueJob(context.Background(), apps.DeployJob{App: "web", Trigger: "github", Ref: "main", Rev: strings.Repeat("a", 40)})
	if err != nil {
		t.Fatal(err)
	}
	list := h.ok("deploys:list")
	if !strings.Contains(list, "web") || !strings.Contains(list, "queued") || !strings.Contains(list, "aaaaaaa") {
		t.Errorf("deploys:list:\n%s", list)
	}
	h.ok("deploys:cancel", "#1")
	got, _ := db.Job(context.Background(), j.ID)
	if got.Status != apps.JobCancelled || got.Detail != "cancelled by test" {
		t.Errorf("after deploys:cancel: %+v", got)
	}
	h.fails(1, "already cancelled", "deploys:cancel", "1")
	h.fails(1, "does not exist", "deploys:cancel", "99")
	h.fails(1, "Invalid deploy id", "deploys:cancel", "x")
	if js := h.ok("deploys:list", "web", "--format", "json"); !strings.Contains(js, `"status":"cancelled"`) {
		t.Errorf("deploys:list --format json: %s", js)
	}
}
