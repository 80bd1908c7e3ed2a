package commands

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rivetr/rivetr/apps"
)

// mirrorer syncs an app's repository from a remote (gitserver.Mirror).
type mirrorer interface {
	Sync(ctx context.Context, app, url, ref string, out io.Writer) (apps.SyncResult, error)
}

// jobQueue is the deploy queue (apps.Queue).
type jobQueue interface {
	Jobs(ctx context.Context, app string, limit int) ([]apps.DeployJob, error)
	Cancel(ctx context.Context, id int64, user string) (apps.DeployJob, error)
}

// MirrorDeps are what mirroring commands need besides Deps' core.
type MirrorDeps struct {
	Mirror mirrorer
	Queue  jobQueue
	Store  apps.GitStore
	// WebhookBase is the API's base URL, e.g. http://rivetr.example.com:8000.
	WebhookBase string
	// ValidateURL checks a source URL (gitserver.ValidateSourceURL).
	ValidateURL func(string) error
	// GenerateKey makes a deploy key (gitserver.GenerateDeployKey).
	GenerateKey func(app string) (apps.DeployKey, error)
	// RedactURL hides a token written into a URL (gitserver.RedactURL).
	RedactURL func(string) string
}

// validSourceURL checks git:set's source-url.
func (d Deps) validSourceURL(v string) error {
	if d.Mirrors.ValidateURL == nil {
		return nil
	}
	return d.Mirrors.ValidateURL(v)
}

func validWebhookSecret(v string) error {
	if len(v) < 16 || len(v) > 256 || strings.ContainsAny(v, " \t\r\n\x00") {
		return fmt.Errorf("use 16 to 256 characters without spaces (e.g. `openssl rand -hex 32`)")
	}
	return nil
}

func validTimeout(v string) error {
	d, err := time.ParseDuration(v)
	if err != nil || d < 10*time.Second || d > 24*time.Hour {
		return fmt.Errorf("%q: use a duration from 10s to 24h, e.g. 30m", v)
	}
	return nil
}

// gitReportFields are git:report's lines about mirroring.
func (d Deps) gitReportFields(ctx context.Context, app string) ([]Field, error) {
	st, err := d.Apps.Settings(ctx, app, apps.GitSyncNS)
	if err != nil {
		return nil, err
	}
	key := ""
	if d.Mirrors.Store != nil {
		k, ok, err := d.Mirrors.Store.DeployKey(ctx, app)
		if err != nil {
			return nil, err
		}
		if ok {
			key = k.Public
		}
	}
	return []Field{
		{"git-last-sync-url", "Git last sync url", st["last-url"]},
		{"git-last-sync-ref", "Git last sync ref", st["last-ref"]},
		{"git-last-sync-rev", "Git last sync rev", st["last-rev"]},
		{"git-last-sync-at", "Git last sync at", st["last-sync-at"]},
		{"git-source-image", "Git source image", st["source-image"]},
		{"git-source-archive", "Git source archive", st["source-archive"]},
		{"git-last-webhook", "Git last webhook", st["last-webhook"]},
		{"git-deploy-key", "Git deploy key", key},
	}, nil
}

// existingApp is the one app argument, which must exist.
func (d Deps) existingApp(ctx context.Context, args []string) (string, error) {
	name, err := oneApp(args)
	if err != nil {
		return "", err
	}
	if _, err := d.Apps.App(ctx, name); err != nil {
		return "", err
	}
	return name, nil
}

func registerMirror(r *Registry, d Deps) {
	m := d.Mirrors
	git := r.Namespace("git", "")
	if m.Mirror != nil {
		r.Add(git, Command{Name: "git:sync", Usage: "git:sync [--build|--build-if-changes] <app> [<repository> [<ref>]]",
			Help: "Fetch a remote repository's branch, tag or commit into the app (default: its source-url) and optionally deploy it",
			Run: func(ctx context.Context, s *Session, args []string) error {
				return d.gitSync(ctx, s, args)
			}})
	}
	if m.WebhookBase != "" {
		r.Add(git, Command{Name: "git:webhook-url", Usage: "git:webhook-url <app>",
			Help: "Show the webhook URLs and secret to add to GitHub, GitLab or Gitea",
			Run: func(ctx context.Context, s *Session, args []string) error {
				return d.webhookURL(ctx, s, args)
			}})
	}
	if m.Store != nil && m.GenerateKey != nil {
		r.Add(git,
			Command{Name: "git:generate-deploy-key", Usage: "git:generate-deploy-key <app> [--force]",
				Help: "Make an ed25519 key the app fetches SSH remotes with, and print its public half",
				Run: func(ctx context.Context, s *Session, args []string) error {
					force := s.Force // the global --force flag
					args, err := NewFlags().Bool(&force, "f").Parse(args)
					if err != nil {
						return Failf("%v", err)
					}
					name, err := d.existingApp(ctx, args)
					if err != nil {
						return err
					}
					if _, ok, err := m.Store.DeployKey(ctx, name); err != nil {
						return err
					} else if ok && !force {
						return Failf("App %s already has a deploy key: git:public-key %s shows it; --force replaces it", name, name)
					}
					k, err := m.GenerateKey(name)
					if err != nil {
						return err
					}
					if err := m.Store.SetDeployKey(ctx, k); err != nil {
						return err
					}
					s.Step("Generated a deploy key for %s; add this public key to the repository (read access is enough):", name)
					s.Println(k.Public)
					return nil
				}},
			Command{Name: "git:public-key", Usage: "git:public-key <app>", Help: "Print the public half of the app's deploy key",
				Run: func(ctx context.Context, s *Session, args []string) error {
					name, err := d.existingApp(ctx, args)
					if err != nil {
						return err
					}
					k, ok, err := m.Store.DeployKey(ctx, name)
					if err != nil {
						return err
					}
					if !ok {
						return Failf("App %s has no deploy key: run git:generate-deploy-key %s", name, name)
					}
					s.Println(k.Public)
					return nil
				}},
			Command{Name: "git:auth", Usage: "git:auth <host> [<username> <token>]",
				Help: "Set (or, with the host alone, remove) the HTTPS login used to fetch from a git host",
				Run: func(ctx context.Context, s *Session, args []string) error {
					if len(args) != 1 && len(args) != 3 {
						return Failf("Usage: rivetr git:auth <host> [<username> <token>]")
					}
					host := strings.ToLower(args[0])
					if !apps.ValidHost(host) {
						return Failf("Invalid host %q: give a host name, optionally with :port (e.g. github.com)", args[0])
					}
					if len(args) == 1 {
						if err := m.Store.SetGitCredential(ctx, apps.GitCredential{Host: host}); err != nil {
							return err
						}
						s.Step("Removed git auth for %s", host)
						return nil
					}
					user, token := args[1], args[2]
					if user == "" || token == "" || len(user) > 256 || len(token) > 4096 || strings.ContainsAny(user+token, " \t\r\n\x00") {
						return Failf("Invalid username or token")
					}
					if err := m.Store.SetGitCredential(ctx, apps.GitCredential{Host: host, User: user, Token: token, CreatedAt: time.Now().UTC()}); err != nil {
						return err
					}
					s.Step("Set git auth for %s (user %s)", host, user)
					return nil
				}},
		)
	}
	if m.Queue != nil {
		ns := r.Namespace("deploys", "Show and cancel queued deploys (webhooks)")
		r.Add(ns,
			Command{Name: "deploys:list", Usage: "deploys:list [<app>] [--format json]", Help: "List recent queued deploys, newest first",
				Run: func(ctx context.Context, s *Session, args []string) error {
					return d.deploysList(ctx, s, args)
				}},
			Command{Name: "deploys:cancel", Usage: "deploys:cancel <id>", Help: "Cancel a queued or running deploy (the serving release stays)",
				Run: func(ctx context.Context, s *Session, args []string) error {
					if len(args) != 1 {
						return Failf("Usage: rivetr deploys:cancel <id>")
					}
					id, err := strconv.ParseInt(strings.TrimPrefix(args[0], "#"), 10, 64)
					if err != nil || id <= 0 {
						return Failf("Invalid deploy id %q: deploys:list shows them", args[0])
					}
					j, err := m.Queue.Cancel(ctx, id, s.User)
					if errors.Is(err, apps.ErrJobFinished) || errors.Is(err, apps.ErrJobNotFound) {
						return Failf("%v", err)
					}
					if err != nil {
						return err
					}
					s.Step("Cancelled deploy #%d of %s", j.ID, j.App)
					return nil
				}},
		)
	}
}

func (d Deps) gitSync(ctx context.Context, s *Session, args []string) error {
	var build, ifChanges bool
	args, err := NewFlags().Bool(&build, "build").Bool(&ifChanges, "build-if-changes").Parse(args)
	if err != nil {
		return Failf("%v", err)
	}
	if len(args) == 0 || len(args) > 3 {
		return Failf("Usage: rivetr git:sync [--build|--build-if-changes] <app> [<repository> [<ref>]]")
	}
	if build && ifChanges {
		return Failf("Use --build or --build-if-changes, not both")
	}
	name := args[0]
	if _, err := d.Apps.App(ctx, name); err != nil {
		return err
	}
	url, ref := "", ""
	if len(args) > 1 {
		url = args[1]
	}
	if len(args) > 2 {
		ref = args[2]
	}
	if url == "" {
		if url, err = d.Apps.Setting(ctx, name, "git", apps.GitSourceURL, ""); err != nil {
			return err
		}
		if url == "" {
			return Failf("App %s has no source-url: give a repository or git:set %s source-url URL", name, name)
		}
		if ref, err = d.Apps.Setting(ctx, name, "git", apps.GitSourceBranch, ""); err != nil {
			return err
		}
	}
	res, err := d.Mirrors.Mirror.Sync(ctx, name, url, ref, s.Stdout)
	if err != nil {
		return err
	}
	if !build && !(ifChanges && res.Changed()) {
		if ifChanges {
			s.Step("No changes: not deploying")
		}
		return nil
	}
	if d.Deployer == nil {
		return Failf("Deploys are not available on this server")
	}
	return d.Deployer.Deploy(ctx, apps.DeployRequest{App: name, Rev: res.Rev, User: s.User, Reason: "sync", Out: s.Stdout})
}

func (d Deps) webhookURL(ctx context.Context, s *Session, args []string) error {
	name, err := d.existingApp(ctx, args)
	if err != nil {
		return err
	}
	secret, err := d.Apps.Setting(ctx, name, "git", apps.GitWebhookSecret, "")
	if err != nil {
		return err
	}
	if secret == "" {
		buf := make([]byte, 32)
		if _, err := rand.Read(buf); err != nil {
			return fmt.Errorf("generate webhook secret: %w", err)
		}
		secret = hex.EncodeToString(buf)
		if err := d.Apps.SetSetting(ctx, name, "git", apps.GitWebhookSecret, secret); err != nil {
			return err
		}
		s.Step("Generated a webhook secret for %s", name)
	}
	src, err := d.Apps.Setting(ctx, name, "git", apps.GitSourceURL, "")
	if err != nil {
		return err
	}
	branch, err := d.Apps.Setting(ctx, name, "git", apps.GitSourceBranch, "")
	if err != nil {
		return err
	}
	base := strings.TrimRight(d.Mirrors.WebhookBase, "/")
	s.Header("%s webhook", name)
	s.Printf("%-15s %s/webhooks/github  (content type application/json, event: push)\n", "GitHub URL:", base)
	s.Printf("%-15s %s/webhooks/gitlab  (trigger: push events)\n", "GitLab URL:", base)
	s.Printf("%-15s %s/webhooks/gitea  (content type application/json, event: push)\n", "Gitea URL:", base)
	s.Printf("%-15s %s\n", "Secret:", secret)
	if src == "" {
		s.Printf("%-15s none yet: git:set %s source-url URL\n", "Source:", name)
	} else {
		if d.Mirrors.RedactURL != nil {
			src = d.Mirrors.RedactURL(src)
		}
		s.Printf("%-15s %s\n", "Source:", src)
	}
	if branch == "" {
		branch = "the repository's default branch"
	}
	s.Printf("%-15s %s\n", "Deploys pushes:", branch)
	return nil
}

func (d Deps) deploysList(ctx context.Context, s *Session, args []string) error {
	var format string
	args, err := NewFlags().String(&format, "format").Parse(args)
	if err != nil || len(args) > 1 || (format != "" && format != "json") {
		return Failf("Usage: rivetr deploys:list [<app>] [--format json]")
	}
	app := ""
	if len(args) == 1 {
		app = args[0]
		if _, err := d.Apps.App(ctx, app); err != nil {
			return err
		}
	}
	jobs, err := d.Mirrors.Queue.Jobs(ctx, app, 50)
	if err != nil {
		return err
	}
	if format == "json" {
		type item struct {
			ID         int64  `json:"id"`
			App        string `json:"app"`
			Trigger    string `json:"trigger"`
			Ref        string `json:"ref"`
			Rev        string `json:"rev"`
			Delivery   string `json:"delivery"`
			User       string `json:"user"`
			Status     string `json:"status"`
			Release    int    `json:"release"`
			Detail     string `json:"detail"`
			CreatedAt  int64  `json:"created_at"`
			StartedAt  int64  `json:"started_at"`
			FinishedAt int64  `json:"finished_at"`
		}
		out := make([]item, len(jobs))
		unix := func(t time.Time) int64 {
			if t.IsZero() {
				return 0
			}
			return t.Unix()
		}
		for i, j := range jobs {
			out[i] = item{j.ID, j.App, j.Trigger, j.Ref, j.Rev, j.Delivery, j.User, j.Status, j.Release, j.Detail,
				unix(j.CreatedAt), unix(j.StartedAt), unix(j.FinishedAt)}
		}
		return printJSON(s, out)
	}
	s.Header("Deploys")
	if len(jobs) == 0 {
		s.Println("No queued deploys yet")
		return nil
	}
	s.Printf("%-6s %-20s %-10s %-9s %-8s %-10s %-8s %s\n", "ID", "APP", "STATUS", "TRIGGER", "REV", "QUEUED", "RELEASE", "DETAIL")
	for _, j := range jobs {
		rel := "-"
		if j.Release > 0 {
			rel = strconv.Itoa(j.Release)
		}
		s.Printf("%-6d %-20s %-10s %-9s %-8s %-10s %-8s %s\n", j.ID, j.App, j.Status, j.Trigger, apps.ShortRev(j.Rev),
			j.CreatedAt.Local().Format("15:04:05"), rel, j.Detail)
	}
	return nil
}
