package commands

import (
	"context"
	"path/filepath"

	"github.com/rivetr/rivetr/apps"
)

// Deps are what the core namespaces need.
type Deps struct {
	Apps       appService
	Deployer   deployer // nil when deploys are not wired (tests of the language)
	Version    string
	DataDir    string
	Certs      apps.Certs   // nil: no certs namespace (tests of the language)
	Services   serviceAPI   // nil: no service namespaces
	Repos      repoWriter   // nil: no templates namespace
	Mirrors    MirrorDeps   // zero: no git:sync, webhooks or deploy queue commands
	Registries RegistryDeps // zero: no registry namespace
}

// RegisterCore adds the core namespaces: apps, config, ssh-keys, git,
// builder-dockerfile, ps, tokens, version.
func RegisterCore(r *Registry, d Deps) {
	registerApps(r, d)
	registerConfig(r, d)
	registerSSHKeys(r, d)
	registerGit(r, d)
	registerTokens(r, d)
	registerDockerOptions(r, d)
	registerDeploy(r, d)
	registerDomains(r, d)
	registerPorts(r, d)
	registerProxy(r, d)
	registerCerts(r, d)
	registerBuilders(r, d)
	registerServices(r, d)
	registerTemplates(r, d)
	registerRegistry(r, d)
	ns := r.Namespace("version", "Print the rivetr version")
	r.Add(ns, Command{
		Name: "version", Usage: "version", Help: "Print the rivetr version",
		Run: func(ctx context.Context, s *Session, args []string) error {
			if len(args) > 0 {
				return Failf("Usage: rivetr version")
			}
			s.Println("rivetr " + d.Version)
			return nil
		},
	})
}

// repoDir is where an app's bare git repository lives.
func (d Deps) repoDir(app string) string {
	return filepath.Join(d.DataDir, "repos", app+".git")
}
