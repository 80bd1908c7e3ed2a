package gitserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/rivetr/rivetr/apps"
)

// Deployer is the part of the core's deployer a push needs.
type Deployer interface {
	Deploy(ctx context.Context, req apps.DeployRequest) error
}

// Pushes turns pushed refs into deploys. The repositories' pre-receive
// hook runs `rivetr hook pre-receive`, which hands the ref lines and git's
// environment to the daemon over the unix socket; PreReceive runs there,
// its output reaching the pusher as `remote:` lines.
type Pushes struct {
	Apps     *apps.Service
	Repos    *Repos
	Deployer Deployer
	Log      zerolog.Logger

	mu sync.Mutex
	// pending holds, per app, the commit a successful deploy handed back to
	// git whose ref update may not have happened yet (git updates refs only
	// after the hook returns, when the deploy lock is already free).
	pending map[string]pendingRef
}

type pendingRef struct {
	ref, rev string
	at       time.Time
}

// pendingTTL bounds how long a ref update is expected after its hook.
const pendingTTL = time.Minute

// checkCurrent refuses a push whose base is no longer the branch's head:
// another push got there first while this one waited. git would refuse its
// ref update anyway; refusing before the build keeps the code that serves
// and the code in the branch the same.
func (p *Pushes) checkCurrent(app, ref, old string) error {
	cur := zeroRev
	if rev, err := p.Repos.RefRev(app, ref); err == nil {
		cur = rev
	}
	p.mu.Lock()
	pend, ok := p.pending[app]
	p.mu.Unlock()
	if ok && pend.ref == ref && pend.rev != cur && time.Since(pend.at) < pendingTTL {
		cur = pend.rev
	}
	if old != cur {
		return fmt.Errorf("%s moved while this push waited (it is now at %.7s): fetch, merge and push again", strings.TrimPrefix(ref, "refs/heads/"), cur)
	}
	return nil
}

func (p *Pushes) setPending(app, ref, rev string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending == nil {
		p.pending = map[string]pendingRef{}
	}
	p.pending[app] = pendingRef{ref: ref, rev: rev, at: time.Now()}
}

const zeroRev = "0000000000000000000000000000000000000000"

// maxRefLines bounds what a hook may send.
const maxRefLines = 10000

// PreReceive handles one push. env carries the hook's environment (GIT_DIR,
// PWD, GIT_QUARANTINE_PATH, RIVETR_PUSHER). It returns the hook's exit
// status: non-zero rejects the push.
func (p *Pushes) PreReceive(ctx context.Context, env map[string]string, stdin io.Reader, stdout, stderr io.Writer) int {
	app, err := p.appOf(env)
	if err != nil {
		fmt.Fprintf(stderr, " !     %v\n", err)
		return 1
	}
	type update struct{ old, new, ref string }
	var updates []update
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			fmt.Fprintf(stderr, " !     Malformed ref update %q\n", sc.Text())
			return 1
		}
		updates = append(updates, update{f[0], f[1], f[2]})
		if len(updates) > maxRefLines {
			fmt.Fprintln(stderr, " !     Too many refs in one push")
			return 1
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(stderr, " !     Read pushed refs: %v\n", err)
		return 1
	}
	user := env["RIVETR_PUSHER"]
	for _, u := range updates {
		branch, ok := strings.CutPrefix(u.ref, "refs/heads/")
		if !ok || u.new == zeroRev {
			continue // tags and deletions deploy nothing
		}
		deploy, err := p.Apps.Setting(ctx, app, "git", apps.GitDeployBranch, "")
		if err != nil {
			fmt.Fprintf(stderr, " !     %v\n", err)
			return 1
		}
		if deploy == "" {
			// The first push adopts its branch as the deploy branch.
			if err := p.Apps.SetSetting(ctx, app, "git", apps.GitDeployBranch, branch); err != nil {
				fmt.Fprintf(stderr, " !     %v\n", err)
				return 1
			}
			deploy = branch
		}
		if branch == deploy {
			if err := p.Repos.SetHead(app, branch); err != nil {
				p.Log.Warn().Err(err).Str("app", app).Msg("set HEAD")
			}
		}
		if branch != deploy {
			fmt.Fprintf(stdout, "-----> WARNING: deploy did not complete, you must push to %s.\n", deploy)
			fmt.Fprintf(stdout, "-----> for example, try 'git push <rivetr> %s:%s'\n", branch, deploy)
			continue
		}
		if err := p.Repos.LinkQuarantine(app, env["GIT_QUARANTINE_PATH"]); err != nil {
			fmt.Fprintf(stderr, " !     %v\n", err)
			return 1
		}
		p.Log.Info().Str("app", app).Str("rev", u.new).Str("user", user).Msg("deploy from push")
		u := u
		err = p.Deployer.Deploy(ctx, apps.DeployRequest{App: app, Rev: u.new, User: user, Reason: "push", Out: stdout,
			Precheck:  func() error { return p.checkCurrent(app, u.ref, u.old) },
			OnSuccess: func() { p.setPending(app, u.ref, u.new) }})
		if err != nil {
			p.Log.Warn().Str("app", app).Str("rev", u.new).Err(err).Msg("deploy failed")
			for _, line := range strings.Split(strings.TrimRight(err.Error(), "\n"), "\n") {
				fmt.Fprintf(stderr, " !     %s\n", line)
			}
			if errors.Is(err, context.Canceled) {
				fmt.Fprintln(stderr, " !     The deploy was cancelled")
			}
			return 1
		}
	}
	return 0
}

// appOf finds the app from the hook's working directory and GIT_DIR, and
// checks it is one of our repositories.
func (p *Pushes) appOf(env map[string]string) (string, error) {
	dir := env["GIT_DIR"]
	if dir == "" {
		dir = "."
	}
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(env["PWD"], dir)
	}
	dir = filepath.Clean(dir)
	app, err := ParsePath(filepath.Base(dir))
	if err != nil {
		return "", err
	}
	if dir != p.Repos.Path(app) {
		return "", fmt.Errorf("hook run outside rivetr's repositories (%s)", dir)
	}
	if _, err := p.Apps.App(context.Background(), app); err != nil {
		return "", err
	}
	return app, nil
}
