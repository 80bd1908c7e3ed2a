package commands

import (
	"context"
	"io"
	"strings"

	"github.com/rivetr/rivetr/apps"
)

// codeSources fills an app's repository from something other than a push
// (gitserver.Repos): an image, an archive.
type codeSources interface {
	FromImage(ctx context.Context, app, branch, image string, author apps.GitAuthor) (rev, parent string, changed bool, err error)
	FromArchive(ctx context.Context, app, branch, source string, stdin io.Reader, kind string, author apps.GitAuthor) (rev, parent string, changed bool, err error)
	// SetBranch moves branch to rev, only from old ("" for none).
	SetBranch(ctx context.Context, app, branch, rev, old string) error
	// RefRev is the commit a ref points to; an error when there is none.
	RefRev(app, ref string) (string, error)
}

// imageLoader loads a `docker save` archive for an app (apps.Deployer).
type imageLoader interface {
	LoadImage(ctx context.Context, app, image string, r io.Reader, out io.Writer) (loaded string, err error)
	ForgetLoadedImages(ctx context.Context, app, keep string) error
}

// hostTruster pins an SSH git host's key (gitserver.Mirror.AllowHost).
type hostTruster interface {
	AllowHost(ctx context.Context, host string) (line string, added bool, err error)
}

func registerGitSources(r *Registry, d Deps) {
	git := r.Namespace("git", "")
	if src, ok := d.Repos.(codeSources); ok && d.Deployer != nil {
		r.Add(git,
			Command{Name: "git:from-image", Usage: "git:from-image <app> <image> [<git-username> <git-email>]",
				Help: "Deploy a container image: the app's repository gets a Dockerfile holding FROM <image>",
				Run: func(ctx context.Context, s *Session, args []string) error {
					return d.fromSource(ctx, s, args, src, "git:from-image <app> <image> [<git-username> <git-email>]", "from-image",
						func(app, branch, image string, author apps.GitAuthor) (string, string, bool, error) {
							return src.FromImage(ctx, app, branch, image, author)
						}, nil)
				}},
			Command{Name: "git:from-archive", Usage: "git:from-archive [--archive-type tar|tar.gz|zip] <app> <archive-url|--> [<git-username> <git-email>]",
				Help: "Deploy the files of a tar, tar.gz or zip archive fetched from a URL, or read from stdin with --",
				Run: func(ctx context.Context, s *Session, args []string) error {
					kind := ""
					// "--" names stdin here; the flag parser would take it
					// for the end of the flags.
					for i, a := range args {
						if a == "--" {
							args[i] = "-"
						}
					}
					args, err := NewFlags().String(&kind, "archive-type").Parse(args)
					if err != nil {
						return Failf("%v", err)
					}
					return d.fromSource(ctx, s, args, src, "git:from-archive [--archive-type tar|tar.gz|zip] <app> <archive-url|--> [<git-username> <git-email>]", "from-archive",
						func(app, branch, source string, author apps.GitAuthor) (string, string, bool, error) {
							if source == "-" {
								source = "--"
							}
							return src.FromArchive(ctx, app, branch, source, s.Stdin, kind, author)
						}, nil)
				}},
		)
		if loader, ok := d.Deployer.(imageLoader); ok {
			r.Add(git, Command{Name: "git:load-image", Usage: "git:load-image <app> <image> [<git-username> <git-email>]",
				Help: "Deploy an image read from stdin (docker save <image> | ssh rivetr git:load-image <app> <image>)",
				Run: func(ctx context.Context, s *Session, args []string) error {
					var app, name string // set once loaded
					return d.fromSource(ctx, s, args, src, "git:load-image <app> <image> [<git-username> <git-email>]", "load-image",
						func(a, branch, image string, author apps.GitAuthor) (string, string, bool, error) {
							if err := apps.ValidateImageRef(image); err != nil {
								return "", "", false, err
							}
							s.Step("Loading image %s", image)
							loaded, err := loader.LoadImage(ctx, a, image, s.Stdin, s.Stdout)
							if err != nil {
								return "", "", false, err
							}
							app, name = a, loaded
							return src.FromImage(ctx, a, branch, loaded, author)
						},
						// The images loaded before go with the releases built on them.
						func() error { return loader.ForgetLoadedImages(ctx, app, name) })
				}})
		}
	}
	if t, ok := d.Mirrors.Mirror.(hostTruster); ok {
		r.Add(git, Command{Name: "git:allow-host", Usage: "git:allow-host <host[:port]>",
			Help: "Trust an SSH git host's current key now, rather than on the first git:sync",
			Run: func(ctx context.Context, s *Session, args []string) error {
				if len(args) != 1 {
					return Failf("Usage: rivetr git:allow-host <host[:port]>")
				}
				host := strings.ToLower(args[0])
				if !apps.ValidHost(host) {
					return Failf("Invalid host %q: use a host name, optionally with :PORT", clipArg(host))
				}
				line, added, err := t.AllowHost(ctx, host)
				if err != nil {
					return err
				}
				if !added {
					s.Step("%s is trusted already", host)
					return nil
				}
				s.Step("Trusted %s", host)
				s.Detail("%s", line)
				return nil
			}})
	}
}

// fromSource is git:from-image and git:from-archive after their flags:
// write a commit after the app's deploy branch (main for an app without
// one) and deploy it; the branch moves to it only once it is deployed, as
// a failed push leaves the branch alone. Unchanged input deploys nothing.
//
// after, if set, runs once the commit is deployed and the branch moved.
func (d Deps) fromSource(ctx context.Context, s *Session, args []string, src codeSources, usage, reason string,
	write func(app, branch, what string, author apps.GitAuthor) (rev, parent string, changed bool, err error), after func() error) error {
	if len(args) != 2 && len(args) != 4 {
		return Failf("Usage: rivetr %s", usage)
	}
	app := args[0]
	if _, err := d.Apps.App(ctx, app); err != nil {
		return err
	}
	var author apps.GitAuthor
	if len(args) == 4 {
		author = apps.GitAuthor{Name: args[2], Email: args[3]}
	}
	if reason != "from-archive" {
		// The image arrives as a Dockerfile, which only that builder reads.
		b, err := d.Apps.Setting(ctx, app, "builder", "selected", "")
		if err != nil {
			return err
		}
		if b != "" && b != apps.BuilderDockerfile {
			return Failf("%s is built with the %s builder (builder:set); an image needs the Dockerfile builder: builder:set %s selected dockerfile, or clear it", app, b, app)
		}
	}
	branch, err := d.Apps.Setting(ctx, app, "git", apps.GitDeployBranch, "")
	if err != nil {
		return err
	}
	if branch == "" {
		branch = "main"
	}
	rev, parent, changed, err := write(app, branch, args[1], author)
	if err != nil {
		return err
	}
	if !changed {
		s.Step("No changes: %s's %s branch holds this already; not deploying (ps:rebuild %s deploys it again)", app, branch, app)
		return nil
	}
	s.Step("Committed %s after the %s branch of %s", apps.ShortRev(rev), branch, app)
	var moveErr error
	err = d.Deployer.Deploy(ctx, apps.DeployRequest{App: app, Rev: rev, User: s.User, Reason: reason, Out: s.Stdout,
		// Another deploy of the app (a push) may have moved the branch
		// while this one waited for the app's lock.
		Precheck: func() error {
			cur, err := src.RefRev(app, "refs/heads/"+branch)
			if err != nil {
				cur = ""
			}
			if cur != parent {
				return Failf("The %s branch of %s moved while this waited for the deploy before it: run the command again", branch, app)
			}
			return nil
		},
		OnSuccess: func() {
			if moveErr = src.SetBranch(ctx, app, branch, rev, parent); moveErr == nil {
				moveErr = d.Apps.SetSetting(ctx, app, "git", apps.GitDeployBranch, branch)
			}
			if moveErr == nil {
				moveErr = d.recordSource(ctx, app, reason, args[1])
			}
			if moveErr == nil && after != nil {
				moveErr = after()
			}
		}})
	if err != nil {
		return err
	}
	if moveErr != nil {
		return Failf("%s is deployed, but its %s branch was not moved to it: %v", apps.ShortRev(rev), branch, moveErr)
	}
	return nil
}

// recordSource notes, for git:report, the image or archive an app was last
// deployed from.
func (d Deps) recordSource(ctx context.Context, app, reason, what string) error {
	image, archive := "", ""
	switch {
	case reason == "from-archive" && what == "-":
		archive = "stdin"
	case reason == "from-archive" && d.Mirrors.RedactURL != nil:
		archive = d.Mirrors.RedactURL(what)
	case reason == "from-archive":
		archive = what
	default:
		image = what
	}
	for k, v := range map[string]string{"source-image": image, "source-archive": archive} {
		if err := d.Apps.SetSetting(ctx, app, apps.GitSyncNS, k, v); err != nil {
			return err
		}
	}
	return nil
}
