package gitserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/rivetr/rivetr/apps"
)

// Access prepares an app's repository for a git command; SSH and smart
// HTTP share it.
type Access struct {
	Apps    *apps.Service
	Repos   *Repos
	GitPath string // the git binary
}

// ForPush returns the repository to receive a push into, creating the app
// on its first push unless auto-creation is disabled globally.
func (a *Access) ForPush(ctx context.Context, app string, out io.Writer) (string, error) {
	if _, err := a.Apps.App(ctx, app); err != nil {
		if !isNotFound(err) {
			return "", err
		}
		disabled, serr := a.Apps.Setting(ctx, apps.Global, "apps", "disable-autocreation", "false")
		if serr != nil {
			return "", serr
		}
		if disabled == "true" {
			return "", err
		}
		fmt.Fprintf(out, "-----> Creating %s...\n", app)
		if _, err := a.Apps.Create(ctx, app); err != nil {
			return "", err
		}
	}
	return a.Repos.Ensure(app)
}

// ForFetch returns the repository to clone or fetch from.
func (a *Access) ForFetch(ctx context.Context, app string) (string, error) {
	if _, err := a.Apps.App(ctx, app); err != nil {
		return "", err
	}
	if !a.Repos.Exists(app) {
		return a.Repos.Ensure(app)
	}
	return a.Repos.Path(app), nil
}

// Env is the environment git runs with: the daemon's, plus who pushes.
func (a *Access) Env(user string) []string {
	return append(os.Environ(), "RIVETR_PUSHER="+user, "RIVETR_DATA_DIR="+a.Repos.DataDir)
}

// exitStatus extracts a process's exit code.
func exitStatus(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() > 0 {
		return ee.ExitCode()
	}
	return 1
}

func isNotFound(err error) bool {
	return err != nil && errors.Is(err, apps.ErrAppNotFound)
}
