package apps

import (
	"context"
	"time"
)

// Settings of the git namespace for mirroring a remote repository.
const (
	GitSourceURL     = "source-url"
	GitSourceBranch  = "source-branch"
	GitWebhookSecret = "webhook-secret"
	GitDeployTimeout = "deploy-timeout"
	// GitSyncNS holds what the last sync and webhook did (not settings).
	GitSyncNS = "git-sync"
)

// GitAuthor names the author of a commit rivetr writes into an app's
// repository (git:from-image, git:from-archive); empty fields fall back to
// rivetr's own.
type GitAuthor struct {
	Name, Email string
}

// GitCredential is an HTTPS login for a git host (git:auth).
type GitCredential struct {
	Host      string // host or host:port
	User      string
	Token     string
	CreatedAt time.Time
}

// DeployKey is an app's SSH key for fetching a private repository.
type DeployKey struct {
	App       string
	Private   string // OpenSSH PEM
	Public    string // authorized_keys line
	CreatedAt time.Time
}

// SyncResult is what a sync of an app's repository from a remote did.
type SyncResult struct {
	URL      string
	Ref      string // the remote ref fetched (refs/heads/main, a tag, a commit)
	Branch   string // the app's branch it was stored in
	Rev      string // the commit the branch points to now
	Previous string // the commit it pointed to before ("" if none)
}

// Changed reports whether the sync moved the branch.
func (r SyncResult) Changed() bool { return r.Rev != r.Previous }

// GitStore keeps mirroring state: the deploy queue, HTTPS credentials,
// deploy keys and the webhook deliveries already seen.
type GitStore interface {
	JobStore
	// SetGitCredential stores a host's login; an empty Token removes it.
	SetGitCredential(ctx context.Context, c GitCredential) error
	GitCredential(ctx context.Context, host string) (c GitCredential, ok bool, err error)
	GitCredentials(ctx context.Context) ([]GitCredential, error)
	SetDeployKey(ctx context.Context, k DeployKey) error
	DeployKey(ctx context.Context, app string) (k DeployKey, ok bool, err error)
	// RecordDelivery remembers a webhook delivery ID; fresh is false when
	// it was seen before. IDs older than a month are forgotten.
	RecordDelivery(ctx context.Context, provider, id string, at time.Time) (fresh bool, err error)
}
