package apps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Release statuses.
const (
	ReleasePending    = "pending"
	ReleaseFailed     = "failed"
	ReleaseDeployed   = "deployed"
	ReleaseSuperseded = "superseded"
)

// Release is one numbered version of an app: an image plus a config
// snapshot. Only one release of an app is deployed at a time.
type Release struct {
	App       string
	Number    int
	Image     string
	Rev       string
	Builder   string
	Env       map[string]string
	Status    string
	Reason    string
	CreatedBy string
	CreatedAt time.Time
	Log       string

	// The Procfile, app.json and CHECKS file of the code (empty if absent).
	Procfile string
	AppJSON  string
	Checks   string
}

// Token is an API token; only the hash of its secret is kept.
type Token struct {
	Name      string
	Hash      string
	CreatedAt time.Time
	LastUsed  time.Time
}

// ReleaseStore keeps releases and tokens.
type ReleaseStore interface {
	// CreateRelease stores r with the next number of its app and returns it.
	CreateRelease(ctx context.Context, r Release) (int, error)
	// UpdateRelease stores the status, image, builder and log of a release.
	UpdateRelease(ctx context.Context, r Release) error
	// MarkDeployed makes number the app's one deployed release; the one
	// deployed before becomes superseded. One transaction.
	MarkDeployed(ctx context.Context, app string, number int) error
	Releases(ctx context.Context, app string) ([]Release, error)
	// Release returns one release; ErrNoRelease if there is none.
	Release(ctx context.Context, app string, number int) (Release, error)
	// FailPending marks releases still pending as failed, e.g. after a
	// restart cut their deploy off.
	FailPending(ctx context.Context, reason string) (int, error)
	// CurrentRelease is the deployed release; ok is false before the first.
	CurrentRelease(ctx context.Context, app string) (r Release, ok bool, err error)

	AddToken(ctx context.Context, t Token) error
	Tokens(ctx context.Context) ([]Token, error)
	TokenByHash(ctx context.Context, hash string) (Token, error)
	RemoveToken(ctx context.Context, name string) error
}

// HashToken is how token secrets are stored and looked up: hex SHA-256.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
