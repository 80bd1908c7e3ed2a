package apps

import (
	"context"
	"time"
)

// App is a deployable application.
type App struct {
	Name      string
	CreatedAt time.Time
	Locked    bool
}

// Global is the scope name of settings and config that apply to every app.
const Global = ""

// SSHKey is a public key allowed to use the SSH server.
type SSHKey struct {
	Name        string
	Fingerprint string // "SHA256:..."
	PublicKey   string // authorized_keys line, without comment
	CreatedAt   time.Time
}

// EnvChange is one atomic change to a scope's config: Clear removes every
// key first, then Unset keys are removed and Set keys written.
type EnvChange struct {
	Clear bool
	Set   map[string]string
	Unset []string
}

// Store keeps rivetr's state. Every method that changes more than one row
// does it in one transaction. Scope is an app name, or Global.
type Store interface {
	CreateApp(ctx context.Context, app App) error
	App(ctx context.Context, name string) (App, error)
	Apps(ctx context.Context) ([]App, error)
	RenameApp(ctx context.Context, oldName, newName string) error
	// CloneApp creates dst with src's config and settings.
	CloneApp(ctx context.Context, src string, dst App) error
	DeleteApp(ctx context.Context, name string) error
	SetAppLocked(ctx context.Context, name string, locked bool) error

	Env(ctx context.Context, scope string) (map[string]string, error)
	UpdateEnv(ctx context.Context, scope string, change EnvChange) error

	// Settings are per-scope key/values grouped by namespace ("apps", "git", ...).
	Settings(ctx context.Context, scope, namespace string) (map[string]string, error)
	// SetSetting stores value; an empty value removes the key.
	SetSetting(ctx context.Context, scope, namespace, key, value string) error
	// AppsSettings returns every app's settings in namespace, by app name
	// (apps with none are left out).
	AppsSettings(ctx context.Context, namespace string) (map[string]map[string]string, error)

	AddSSHKey(ctx context.Context, key SSHKey) error
	SSHKeys(ctx context.Context) ([]SSHKey, error)
	SSHKeyByFingerprint(ctx context.Context, fingerprint string) (SSHKey, error)
	// RemoveSSHKey removes the key with that name, or with that fingerprint
	// when byFingerprint is set.
	RemoveSSHKey(ctx context.Context, nameOrFingerprint string, byFingerprint bool) error

	ReleaseStore
	ServiceStore

	Close() error
}
