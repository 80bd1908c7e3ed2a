package apps

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Source gives the deployer the code of an app at a revision.
type Source interface {
	// Resolve returns the commit a branch of app points to.
	Resolve(ctx context.Context, app, branch string) (string, error)
	// Checkout writes revision rev of app into the empty dir dir, with a
	// .git directory when keepGitDir is set.
	Checkout(ctx context.Context, app, rev, dir string, keepGitDir bool) error
}

// BuildRequest asks a Builder for an image of the code in Dir.
type BuildRequest struct {
	App       string
	Dir       string
	Tag       string
	Labels    map[string]string
	Settings  map[string]string // the app's builder-dockerfile settings, e.g. dockerfile-path
	BuildArgs map[string]string
	Out       io.Writer
	// Selected is the builder chosen with builder:set APP selected, or
	// printed by a builder-detect hook; empty: detect.
	Selected string
	// Packs are the buildpacks settings (global, overridden by the app's):
	// base images of the built-in packs, static-dir, ...
	Packs map[string]string
	// SiteDir is where a static site's files go (the static builder
	// creates it); such a release runs no container. A compose build
	// writes its project there (WriteCompose).
	SiteDir string
	// Env is the app's config: a compose file's ${VAR}s and its services'
	// variables without a value come from it.
	Env map[string]string
	// EngineSocketFor is the SHA-256 (hex) of the one compose file that may
	// mount the container engine's socket: the template the server's admin
	// deployed (templates:deploy); a push of any other file may not.
	EngineSocketFor string
	// Plan, when set, is the detection the caller already ran on this
	// request (Builder.Plan): Build uses it rather than detecting again.
	Plan *BuildPlan
}

// Built-in builder names a BuildPlan can carry.
const (
	BuilderDockerfile = "dockerfile"
	BuilderStatic     = "static"
)

// Builders are the names builder:set APP selected accepts.
var Builders = []string{"dockerfile", "compose", "static", "go", "node", "python", "ruby", "nixpacks", "railpack", "pack"}

// BuildPlan is what a builder would do with some code: builder:plan
// prints it, Build carries it out.
type BuildPlan struct {
	Builder string // "dockerfile", "go", "node", "python", "ruby", "static", "nixpacks", "railpack", "pack"
	Reason  string // why this builder, e.g. "go.mod found"
	// DockerfilePath is the Dockerfile in the code (builder dockerfile).
	DockerfilePath string
	// Dockerfile is the one a built-in pack generates (or the build step of
	// a static site).
	Dockerfile string
	// StaticDir is the directory of the code a static site serves ("."
	// for the root); StaticBuild, when set, is the command that produces
	// it in a one-off container first.
	StaticDir   string
	StaticBuild string
	// Command is the external CLI an external builder runs.
	Command []string
}

// Builder turns source code into an image (or, for a static site, a tree
// of files).
type Builder interface {
	// Plan detects how req.Dir would be built, without building.
	Plan(ctx context.Context, req BuildRequest) (BuildPlan, error)
	// Build builds req.Dir into the image req.Tag (or req.SiteDir) and
	// returns the name of the builder used.
	Build(ctx context.Context, req BuildRequest) (string, error)
}

// Logger is the operational log the core writes to (zerolog's Printf fits).
type Logger interface {
	Printf(format string, args ...any)
}

// DeployerConfig holds the deployer's settings.
type DeployerConfig struct {
	// Domain is the global domain: app APP is served at APP.<Domain>.
	Domain string
	// URL renders the public URL of a host for the deploy output.
	URL func(host string) string
	// WorkDir is where code is checked out for builds (inside the data dir).
	WorkDir string
	// StartTimeout bounds the wait for a new web container to listen.
	StartTimeout time.Duration
	// StopTimeout is how long old containers get between SIGTERM and SIGKILL.
	StopTimeout time.Duration
	// KeepReleases is how many deployed releases keep their images (>= 2).
	KeepReleases int
	// DefaultPort is the PORT a web process gets.
	DefaultPort int
	// SitesDir holds static sites' trees: SitesDir/APP/BUILD.
	SitesDir string
}

// Deployer runs the deploy pipeline: checkout, build, release, start,
// wait, swap the route, retire the old containers, prune old images.
type Deployer struct {
	svc     *Service
	source  Source
	builder Builder
	runtime Runtime
	router  Router
	hooks   Hooks
	log     Logger
	cfg     DeployerConfig

	mu    sync.Mutex
	locks map[string]chan struct{}

	retiring sync.WaitGroup // background retirements, waited for by Wait
}

// Wait blocks until background retirements of old containers finish.
func (d *Deployer) Wait() { d.retiring.Wait() }

// NewDeployer wires a deployer. runtime may be nil when no container engine
// answers; deploys then fail with a clear error.
func NewDeployer(svc *Service, source Source, builder Builder, runtime Runtime, router Router, log Logger, cfg DeployerConfig) *Deployer {
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 60 * time.Second
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.KeepReleases < 2 {
		cfg.KeepReleases = 2
	}
	if cfg.DefaultPort == 0 {
		cfg.DefaultPort = 5000
	}
	if cfg.URL == nil {
		cfg.URL = func(host string) string { return "http://" + host }
	}
	return &Deployer{svc: svc, source: source, builder: builder, runtime: runtime, router: router, hooks: NoHooks{}, log: log, cfg: cfg, locks: map[string]chan struct{}{}}
}

// SetHooks makes the deployer call hooks at Dokku's trigger points.
func (d *Deployer) SetHooks(h Hooks) { d.hooks = h }

// Settings of the git namespace, with their defaults.
const (
	GitDeployBranch = "deploy-branch"
	GitRevEnvVar    = "rev-env-var"
	GitKeepGitDir   = "keep-git-dir"
	DefaultRevEnv   = "GIT_REV"
)

// Setting returns an app's setting, else the global one, else def.
func (s *Service) Setting(ctx context.Context, app, namespace, key, def string) (string, error) {
	own, err := s.store.Settings(ctx, app, namespace)
	if err != nil {
		return "", err
	}
	if v, ok := own[key]; ok {
		return v, nil
	}
	global, err := s.store.Settings(ctx, Global, namespace)
	if err != nil {
		return "", err
	}
	if v, ok := global[key]; ok {
		return v, nil
	}
	return def, nil
}

// DeployRequest is one deploy of a revision.
type DeployRequest struct {
	App    string
	Rev    string
	User   string
	Reason string // push, rebuild
	Out    io.Writer
	// Precheck, if set, runs once the app's deploy lock is held; an error
	// stops the deploy before anything is built.
	Precheck func() error
	// OnSuccess, if set, runs after a successful deploy while the lock is
	// still held, so the next deploy of the app sees what it recorded.
	OnSuccess func()
	// OnRelease, if set, learns the number of the release the deploy
	// records, before the build starts.
	OnRelease func(number int)
}

// lock takes the app's deploy lock, telling out when it must wait.
func (d *Deployer) lock(ctx context.Context, app string, out io.Writer) (func(), error) {
	d.mu.Lock()
	l, ok := d.locks[app]
	if !ok {
		l = make(chan struct{}, 1)
		d.locks[app] = l
	}
	d.mu.Unlock()
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	default:
	}
	fmt.Fprintf(out, "-----> Waiting for the deploy of %s already running to finish\n", app)
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Hosts returns the hosts an app is served on (see Service.Hosts); an
// error reading the settings falls back to APP.<domain>.
func (d *Deployer) Hosts(ctx context.Context, app string) []string {
	hosts, err := d.svc.Hosts(ctx, app, d.cfg.Domain)
	if err != nil {
		d.log.Printf("hosts of %s: %v", app, err)
		return []string{app + "." + d.cfg.Domain}
	}
	return hosts
}

// GlobalDomain is the configured global domain (RIVETR_DOMAIN).
func (d *Deployer) GlobalDomain() string { return d.cfg.Domain }

// webPort is the port app's web processes listen on (ports:set, else
// the default PORT).
func (d *Deployer) webPort(ctx context.Context, app string) (int, error) {
	return d.svc.WebPort(ctx, app, d.cfg.DefaultPort)
}

// setRoute routes app's hosts to ups, or removes its route when it has no
// hosts (domains disabled) or no upstreams.
func (d *Deployer) setRoute(ctx context.Context, app string, ups []string) []string {
	hosts := d.Hosts(ctx, app)
	if len(hosts) == 0 || len(ups) == 0 {
		d.router.RemoveRoute(app)
		return hosts
	}
	d.router.SetRoute(app, hosts, ups)
	return hosts
}

// Reroute re-applies app's route with its current hosts to the running web
// containers of its deployed release, without a redeploy (after a domains
// change). It waits for a deploy of app in progress, which routes itself.
func (d *Deployer) Reroute(ctx context.Context, app string) error {
	if err := ValidateAppName(app); err != nil {
		return err
	}
	unlock, err := d.lock(ctx, app, io.Discard)
	if err != nil {
		return err
	}
	defer unlock()
	rel, ok, err := d.svc.store.CurrentRelease(ctx, app)
	if err != nil || !ok {
		return err
	}
	if rel.Builder == BuilderStatic {
		if !d.stopped(ctx, app) {
			d.routeStatic(ctx, app, rel)
		}
		return nil
	}
	if d.runtime == nil {
		return nil
	}
	cs, err := d.runtime.List(ctx, map[string]string{LabelApp: app, LabelRelease: strconv.Itoa(rel.Number), LabelProcess: d.webProcess(rel)})
	if err != nil {
		return fmt.Errorf("list containers of %s: %w", app, err)
	}
	var ups []string
	for _, c := range cs {
		if c.Running && c.Addr != "" {
			ups = append(ups, c.Addr)
		}
	}
	if len(ups) == 0 {
		// Stopped (or no web process): nothing to route.
		return nil
	}
	d.setRoute(ctx, app, ups)
	return nil
}

// webProcess is the process label of rel's routed containers: web, or a
// compose release's web service.
func (d *Deployer) webProcess(rel Release) string {
	if rel.Builder == BuilderCompose {
		if p, err := d.loadCompose(&rel); err == nil && p.Web != "" {
			return p.Web
		}
	}
	return "web"
}

// stopped reports whether ps:stop stopped app.
func (d *Deployer) stopped(ctx context.Context, app string) bool {
	v, _ := d.svc.Setting(ctx, app, "ps", "stopped", "")
	return v == "true"
}

// Deploy builds and deploys req.Rev of req.App. On failure the previous
// release keeps serving and the error says why.
func (d *Deployer) Deploy(ctx context.Context, req DeployRequest) error {
	if err := ValidateAppName(req.App); err != nil {
		return err
	}
	unlock, err := d.lock(ctx, req.App, req.Out)
	if err != nil {
		return err
	}
	defer unlock()
	if req.Precheck != nil {
		if err := req.Precheck(); err != nil {
			return err
		}
	}
	app, err := d.svc.App(ctx, req.App)
	if err != nil {
		return err
	}
	if app.Locked {
		return Errorf(ErrAppLocked, "App %s is currently being deployed or locked", req.App)
	}
	if d.runtime == nil {
		return Errorf(ErrDeployFailed, "No container engine is available: start Docker or Podman (see `rivetr serve` log)")
	}

	keepGit, err := d.svc.Setting(ctx, req.App, "git", GitKeepGitDir, "false")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.cfg.WorkDir, 0o700); err != nil {
		return fmt.Errorf("create build dir: %w", err)
	}
	dir, err := os.MkdirTemp(d.cfg.WorkDir, req.App+"-")
	if err != nil {
		return fmt.Errorf("create build dir: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := d.source.Checkout(ctx, req.App, req.Rev, dir, keepGit == "true"); err != nil {
		return err
	}
	if _, err := d.hook(ctx, "post-extract", req.App, req.Out, req.App, dir, req.Rev); err != nil {
		return err
	}
	man, err := readManifests(dir)
	if err != nil {
		return err
	}

	// Config: the revision, and app.json env for keys not set yet.
	set := map[string]string{}
	revVar, err := d.svc.Setting(ctx, req.App, "git", GitRevEnvVar, DefaultRevEnv)
	if err != nil {
		return err
	}
	if revVar != "" && ValidateEnvKey(revVar) == nil {
		set[revVar] = req.Rev
	}
	if man.appJSON != nil && len(man.appJSON.Env) > 0 {
		current, err := d.svc.MergedEnv(ctx, req.App)
		if err != nil {
			return err
		}
		add, err := ApplyAppEnv(man.appJSON.Env, current, randomHex)
		if err != nil {
			return Errorf(ErrDeployFailed, "app.json env: %v", err)
		}
		for k, v := range add {
			set[k] = v
		}
	}
	if len(set) > 0 {
		if err := d.svc.UpdateEnv(ctx, req.App, EnvChange{Set: set}); err != nil {
			return err
		}
	}
	env, err := d.svc.MergedEnv(ctx, req.App)
	if err != nil {
		return err
	}
	rel := Release{App: req.App, Rev: req.Rev, Env: env, Status: ReleasePending, Reason: req.Reason,
		CreatedBy: req.User, CreatedAt: time.Now().UTC(),
		Procfile: man.procfile, AppJSON: man.appJSONRaw, Checks: man.checks}
	rel.Number, err = d.svc.store.CreateRelease(ctx, rel)
	if err != nil {
		return err
	}
	if req.OnRelease != nil {
		req.OnRelease(rel.Number)
	}
	logBuf := &tailBuffer{max: 64 << 10}
	out := io.MultiWriter(req.Out, logBuf)
	fail := d.failer(ctx, &rel, logBuf)

	breq, err := d.buildRequest(ctx, req.App, dir, out)
	if err != nil {
		return fail(err)
	}
	// docker-options' build phase arrives through docker-args-build, as
	// a built-in hook (BuiltinHooks) before the plugins' options.
	labels := map[string]string{}
	buildArgs := map[string]string{}
	rel.Image = fmt.Sprintf("rivetr/%s:%d", req.App, rel.Number)
	breq.Env = env // compose files interpolate the app's config
	plan, err := d.builder.Plan(ctx, breq)
	if err != nil {
		return fail(err)
	}
	if _, err := d.hook(ctx, "pre-build", req.App, out, plan.Builder, req.App, dir); err != nil {
		return fail(err)
	}
	extra, err := d.hook(ctx, "docker-args-build", req.App, out, req.App, plan.Builder)
	if err != nil {
		return fail(err)
	}
	if err := applyBuildArgs(extra, env, buildArgs, labels); err != nil {
		return fail(Errorf(ErrDeployFailed, "docker-args-build: %v", err))
	}
	labels[LabelApp], labels[LabelRelease] = req.App, strconv.Itoa(rel.Number)
	breq.Tag, breq.Labels, breq.BuildArgs, breq.Plan = rel.Image, labels, buildArgs, &plan
	breq.SiteDir = d.siteDir(req.App, staticImage(rel.Number))
	rel.Builder, err = d.builder.Build(ctx, breq)
	if err != nil {
		return fail(err)
	}
	switch rel.Builder {
	case BuilderStatic:
		rel.Image = staticImage(rel.Number)
	case BuilderCompose:
		rel.Image = "compose:" + strconv.Itoa(rel.Number)
	}
	if _, err := d.hook(ctx, "post-build", req.App, out, rel.Builder, req.App, dir); err != nil {
		return fail(err)
	}
	if err := d.svc.store.UpdateRelease(ctx, rel); err != nil {
		return fail(err)
	}
	if err := d.rollout(ctx, &rel, out, logBuf, true); err != nil {
		return err
	}
	if req.OnSuccess != nil {
		req.OnSuccess() // before the deferred unlock
	}
	return nil
}

// buildRequest gathers what a builder needs besides the code: the
// builder-dockerfile and buildpacks settings, and the builder chosen with
// builder:set APP selected or, failing that, printed by a builder-detect
// hook (args: APP DIR).
func (d *Deployer) buildRequest(ctx context.Context, app, dir string, out io.Writer) (BuildRequest, error) {
	req := BuildRequest{App: app, Dir: dir, Out: out}
	var err error
	if req.Settings, err = d.mergedSettings(ctx, app, "builder-dockerfile"); err != nil {
		return req, err
	}
	if req.Packs, err = d.mergedSettings(ctx, app, "buildpacks"); err != nil {
		return req, err
	}
	if req.EngineSocketFor, err = d.svc.Setting(ctx, app, ComposeAdminNS, "engine-socket", ""); err != nil {
		return req, err
	}
	if sub, err := d.svc.Setting(ctx, app, "builder", "build-dir", ""); err != nil {
		return req, err
	} else if sub != "" {
		clean := filepath.Clean(filepath.FromSlash(sub))
		if !filepath.IsLocal(clean) {
			return req, Errorf(ErrDeployFailed, "build-dir %q must be a relative path inside the repository", sub)
		}
		if fi, err := os.Lstat(filepath.Join(dir, clean)); err != nil || !fi.IsDir() {
			return req, Errorf(ErrDeployFailed, "build-dir %q is not a directory of the pushed code", sub)
		}
		req.Dir = filepath.Join(dir, clean)
	}
	// builder:set APP selected answers first, as a built-in hook.
	detected, err := d.hook(ctx, "builder-detect", app, out, app, req.Dir)
	if err != nil {
		return req, err
	}
	req.Selected, _, _ = strings.Cut(strings.TrimSpace(detected), "\n")
	return req, nil
}

// BuiltinHook is a built-in feature that runs on a hook point, in-process
// and before the plugins' triggers, so a plugin sees and extends it the
// same way (hooks.Runner.Register).
type BuiltinHook struct {
	Point, Name string
	Run         func(ctx context.Context, args []string) (string, error)
}

// BuiltinHooks are the deployer's built-in hooks:
//   - builder-detect "builder": the builder of builder:set APP selected
//     (the first line printed wins, so it beats a plugin's choice);
//   - docker-args-build, docker-args-deploy and docker-args-run
//     "docker-options": the build, deploy and run phases of
//     docker-options:add, as shell-quoted options.
func (d *Deployer) BuiltinHooks() []BuiltinHook {
	// phase prints docker-options' options of one phase for the app in
	// args[0], as shell words.
	phase := func(name string) func(ctx context.Context, args []string) (string, error) {
		return func(ctx context.Context, args []string) (string, error) {
			if len(args) < 1 {
				return "", nil
			}
			opts, err := d.svc.Settings(ctx, args[0], "docker-options")
			if err != nil {
				return "", err
			}
			if name == "build" {
				return buildOptionWords(opts[name]), nil
			}
			return strings.Join(splitLines(opts[name]), "\n"), nil
		}
	}
	return []BuiltinHook{
		{Point: "builder-detect", Name: "builder", Run: func(ctx context.Context, args []string) (string, error) {
			if len(args) < 1 {
				return "", nil
			}
			return d.svc.Setting(ctx, args[0], "builder", "selected", "")
		}},
		{Point: "docker-args-build", Name: "docker-options", Run: phase("build")},
		{Point: "docker-args-deploy", Name: "docker-options", Run: phase("deploy")},
		{Point: "docker-args-run", Name: "docker-options", Run: phase("run")},
	}
}

// mergedSettings are a namespace's global settings overridden by app's.
func (d *Deployer) mergedSettings(ctx context.Context, app, ns string) (map[string]string, error) {
	global, err := d.svc.Settings(ctx, Global, ns)
	if err != nil {
		return nil, err
	}
	own, err := d.svc.Settings(ctx, app, ns)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range global {
		out[k] = v
	}
	for k, v := range own {
		out[k] = v
	}
	return out, nil
}

// Plan checks out the head of app's deploy branch (or rev) and says how
// it would be built, without building.
func (d *Deployer) Plan(ctx context.Context, app, rev string) (BuildPlan, error) {
	if _, err := d.svc.App(ctx, app); err != nil {
		return BuildPlan{}, err
	}
	if rev == "" {
		branch, err := d.svc.Setting(ctx, app, "git", GitDeployBranch, "")
		if err != nil {
			return BuildPlan{}, err
		}
		if branch == "" {
			return BuildPlan{}, Errorf(ErrNoRelease, "App %s has no code yet: push to it first", app)
		}
		if rev, err = d.source.Resolve(ctx, app, branch); err != nil {
			return BuildPlan{}, err
		}
	}
	if err := os.MkdirAll(d.cfg.WorkDir, 0o700); err != nil {
		return BuildPlan{}, fmt.Errorf("create build dir: %w", err)
	}
	dir, err := os.MkdirTemp(d.cfg.WorkDir, app+"-plan-")
	if err != nil {
		return BuildPlan{}, fmt.Errorf("create build dir: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := d.source.Checkout(ctx, app, rev, dir, false); err != nil {
		return BuildPlan{}, err
	}
	req, err := d.buildRequest(ctx, app, dir, io.Discard)
	if err != nil {
		return BuildPlan{}, err
	}
	req.Tag = fmt.Sprintf("rivetr/%s:plan", app)
	if req.Env, err = d.svc.MergedEnv(ctx, app); err != nil { // compose files interpolate it
		return BuildPlan{}, err
	}
	return d.builder.Plan(ctx, req)
}

// staticImage is the Image of a static release: the tree of build n.
func staticImage(n int) string { return "static:" + strconv.Itoa(n) }

// siteDir is the tree of a static (or compose) release's Image.
func (d *Deployer) siteDir(app, image string) string {
	_, n, _ := strings.Cut(image, ":")
	return filepath.Join(d.cfg.SitesDir, app, n)
}

// staticSite is how the proxy serves a static release.
func (d *Deployer) staticSite(ctx context.Context, app string, rel Release) StaticSite {
	site := StaticSite{Dir: d.siteDir(app, rel.Image)}
	packs, _ := d.mergedSettings(ctx, app, "buildpacks")
	site.SPA = packs["static-spa"] == "true"
	nf := packs["static-404"]
	if nf == "" {
		nf = "404.html"
	}
	if fi, err := os.Lstat(filepath.Join(site.Dir, filepath.FromSlash(nf))); err == nil && fi.Mode().IsRegular() && filepath.IsLocal(filepath.FromSlash(nf)) {
		site.NotFound = nf
	}
	return site
}

// routeStatic routes app's hosts to its static release.
func (d *Deployer) routeStatic(ctx context.Context, app string, rel Release) []string {
	hosts := d.Hosts(ctx, app)
	if len(hosts) == 0 {
		d.router.RemoveRoute(app)
		return hosts
	}
	d.router.SetStatic(app, hosts, d.staticSite(ctx, app, rel))
	return hosts
}

// rolloutStatic makes a static release live: the tree is complete (the
// builder wrote it before), so one atomic route change moves every new
// request to it; containers of an earlier, non-static release retire.
func (d *Deployer) rolloutStatic(ctx context.Context, rel *Release, out io.Writer, logBuf *tailBuffer) error {
	fail := d.failer(ctx, rel, logBuf)
	dir := d.siteDir(rel.App, rel.Image)
	if fi, err := os.Stat(filepath.Join(dir, "index.html")); err != nil || !fi.Mode().IsRegular() {
		return fail(Errorf(ErrDeployFailed, "The static site of release %s is gone (no index.html in %s): push again", strings.TrimPrefix(rel.Image, "static:"), dir))
	}
	fmt.Fprintf(out, "-----> Releasing %s (static site, no container)...\n", rel.App)
	if _, err := d.hook(ctx, "pre-deploy", rel.App, out, rel.App, rel.Image); err != nil {
		return fail(err)
	}
	var old []Container
	if d.runtime != nil {
		var err error
		if old, err = d.runtime.List(ctx, map[string]string{LabelApp: rel.App}); err != nil {
			return fail(fmt.Errorf("list containers of %s: %w", rel.App, err))
		}
		old = slices.DeleteFunc(old, func(c Container) bool { return c.Labels[LabelProcess] == "run" })
	}
	hosts := d.routeStatic(ctx, rel.App, *rel)
	if err := d.svc.store.MarkDeployed(context.WithoutCancel(ctx), rel.App, rel.Number); err != nil {
		return fail(err)
	}
	d.log.Printf("%s v%d live: static site %s", rel.App, rel.Number, dir)
	if _, err := d.hook(ctx, "post-deploy", rel.App, out, rel.App, "", "", rel.Image); err != nil {
		fmt.Fprintf(out, " !     post-deploy hook: %v\n", err)
	}
	if len(old) > 0 {
		cfg, err := d.checkSettings(ctx, rel.App)
		if err == nil {
			d.retire(rel.App, old, cfg)
		}
	}
	d.pruneSites(context.WithoutCancel(ctx), rel.App)
	if len(hosts) == 0 {
		fmt.Fprintf(out, "=====> Application deployed (domains disabled: not routed by the proxy)\n")
	} else {
		fmt.Fprintf(out, "=====> Application deployed (static site):\n")
		for _, h := range hosts {
			fmt.Fprintf(out, "       %s\n", d.cfg.URL(h))
		}
	}
	rel.Status = ReleaseDeployed
	rel.Log = logBuf.String()
	return d.svc.store.UpdateRelease(context.WithoutCancel(ctx), *rel)
}

// keptImages are the images (and static trees) the releases retention
// keeps: those of pending releases and of the newest deployed ones.
func (d *Deployer) keptImages(ctx context.Context, app string) (map[string]bool, error) {
	rels, err := d.svc.store.Releases(ctx, app)
	if err != nil {
		return nil, err
	}
	retention := d.cfg.KeepReleases
	if v, err := d.svc.Setting(ctx, app, "releases", "retention", ""); err == nil && v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 1 {
			retention = n
		}
	}
	keep := map[string]bool{}
	kept := 0
	for _, r := range rels { // newest first
		switch r.Status {
		case ReleasePending:
			keep[r.Image] = true
		case ReleaseDeployed, ReleaseSuperseded:
			if !keep[r.Image] && kept < retention {
				keep[r.Image] = true
				kept++
			}
		}
	}
	return keep, nil
}

// pruneSites removes the static trees of app no kept release uses.
func (d *Deployer) pruneSites(ctx context.Context, app string) {
	keep, err := d.keptImages(ctx, app)
	if err != nil {
		d.log.Printf("prune sites of %s: %v", app, err)
		return
	}
	entries, _ := os.ReadDir(filepath.Join(d.cfg.SitesDir, app))
	for _, e := range entries {
		if !keep["static:"+e.Name()] && !keep["compose:"+e.Name()] {
			if err := os.RemoveAll(filepath.Join(d.cfg.SitesDir, app, e.Name())); err != nil {
				d.log.Printf("remove site %s/%s: %v", app, e.Name(), err)
			}
		}
	}
}

// RenameSites moves app's static trees with it (apps:rename).
func (d *Deployer) RenameSites(_ context.Context, oldName, newName string) error {
	src := filepath.Join(d.cfg.SitesDir, oldName)
	if _, err := os.Stat(src); err != nil {
		return nil
	}
	if err := os.Rename(src, filepath.Join(d.cfg.SitesDir, newName)); err != nil {
		return fmt.Errorf("move static sites of %s: %w", oldName, err)
	}
	return nil
}

// failer returns the function that records rel as failed with its log.
func (d *Deployer) failer(ctx context.Context, rel *Release, logBuf *tailBuffer) func(error) error {
	return func(err error) error {
		rel.Status = ReleaseFailed
		rel.Log = logBuf.String() + "\n" + err.Error()
		if uerr := d.svc.store.UpdateRelease(context.WithoutCancel(ctx), *rel); uerr != nil {
			d.log.Printf("record failed release %s v%d: %v", rel.App, rel.Number, uerr)
		}
		return err
	}
}

// manifests are the files of the code that shape a release.
type manifests struct {
	procfile, appJSONRaw, checks string
	appJSON                      *AppJSON
}

// maxManifest bounds Procfile, app.json and CHECKS.
const maxManifest = 256 << 10

func readManifests(dir string) (manifests, error) {
	var m manifests
	read := func(name string) (string, error) {
		f, err := os.Open(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
		if err != nil {
			return "", err
		}
		if len(b) > maxManifest {
			return "", Errorf(ErrDeployFailed, "%s is larger than %d bytes", name, maxManifest)
		}
		return string(b), nil
	}
	var err error
	if m.procfile, err = read("Procfile"); err != nil {
		return m, err
	}
	if m.appJSONRaw, err = read("app.json"); err != nil {
		return m, err
	}
	if m.checks, err = read("CHECKS"); err != nil {
		return m, err
	}
	return m, m.parse()
}

// parse checks the files and keeps the parsed app.json.
func (m *manifests) parse() error {
	if m.procfile != "" {
		if _, err := ParseProcfile([]byte(m.procfile)); err != nil {
			return Errorf(ErrDeployFailed, "Procfile: %v", err)
		}
	}
	if m.appJSONRaw != "" {
		a, err := ParseAppJSON([]byte(m.appJSONRaw))
		if err != nil {
			return Errorf(ErrDeployFailed, "app.json: %v", err)
		}
		m.appJSON = a
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)[:n]
}

// Redeploy rolls out a new release of app's current image with its config
// as it is now (after a config change, a scale, a restart). Before the
// first deploy there is nothing to restart: it returns nil.
func (d *Deployer) Redeploy(ctx context.Context, app, reason, user string, out io.Writer) error {
	unlock, err := d.lock(ctx, app, out)
	if err != nil {
		return err
	}
	defer unlock()
	cur, ok, err := d.svc.store.CurrentRelease(ctx, app)
	if err != nil || !ok {
		return err
	}
	if d.runtime == nil {
		return Errorf(ErrDeployFailed, "No container engine is available")
	}
	env, err := d.svc.MergedEnv(ctx, app)
	if err != nil {
		return err
	}
	return d.newReleaseFrom(ctx, cur, env, reason, user, out)
}

// Rollback rolls out a new release with the image and config of release
// number (0: the one before the current).
func (d *Deployer) Rollback(ctx context.Context, app string, number int, user string, out io.Writer) error {
	unlock, err := d.lock(ctx, app, out)
	if err != nil {
		return err
	}
	defer unlock()
	if d.runtime == nil {
		return Errorf(ErrDeployFailed, "No container engine is available")
	}
	rels, err := d.svc.store.Releases(ctx, app)
	if err != nil {
		return err
	}
	cur, _, err := d.svc.store.CurrentRelease(ctx, app)
	if err != nil {
		return err
	}
	var target *Release
	for i := range rels {
		r := &rels[i]
		good := r.Status == ReleaseDeployed || r.Status == ReleaseSuperseded
		if number == 0 && good && r.Number < cur.Number && r.Image != "" {
			target = r
			break
		}
		if number != 0 && r.Number == number {
			if !good {
				return Errorf(ErrNoRelease, "Release %d of %s is %s; only releases that were deployed can be rolled back to", number, app, r.Status)
			}
			target = r
			break
		}
	}
	if target == nil {
		if number == 0 {
			return Errorf(ErrNoRelease, "%s has no earlier release to roll back to", app)
		}
		return Errorf(ErrNoRelease, "Release %d of %s not found", number, app)
	}
	if target.Builder == BuilderStatic {
		if _, err := os.Stat(filepath.Join(d.siteDir(app, target.Image), "index.html")); err != nil {
			return Errorf(ErrNoRelease, "The site of release %d was pruned; raise the release retention to keep more", target.Number)
		}
	} else if imgs, err := d.runtime.Images(ctx, map[string]string{LabelApp: app}); err == nil && !slices.Contains(imgs, target.Image) {
		return Errorf(ErrNoRelease, "The image of release %d (%s) was pruned; raise the release retention to keep more", target.Number, target.Image)
	}
	fmt.Fprintf(out, "-----> Rolling back %s to release %d\n", app, target.Number)
	if err := d.newReleaseFrom(ctx, *target, target.Env, fmt.Sprintf("rollback to %d", target.Number), user, out); err != nil {
		return err
	}
	// The app's config becomes that of the release, so the next deploy
	// keeps it (keys equal to the global ones stay inherited).
	global, err := d.svc.Env(ctx, Global)
	if err != nil {
		return err
	}
	own := map[string]string{}
	for k, v := range target.Env {
		if g, ok := global[k]; !ok || g != v {
			own[k] = v
		}
	}
	return d.svc.UpdateEnv(ctx, app, EnvChange{Clear: true, Set: own})
}

// newReleaseFrom records a release reusing base's image and manifests with
// env, and rolls it out. The caller holds the lock.
func (d *Deployer) newReleaseFrom(ctx context.Context, base Release, env map[string]string, reason, user string, out io.Writer) error {
	rel := Release{App: base.App, Rev: base.Rev, Image: base.Image, Builder: base.Builder, Env: env,
		Status: ReleasePending, Reason: reason, CreatedBy: user, CreatedAt: time.Now().UTC(),
		Procfile: base.Procfile, AppJSON: base.AppJSON, Checks: base.Checks}
	var err error
	rel.Number, err = d.svc.store.CreateRelease(ctx, rel)
	if err != nil {
		return err
	}
	logBuf := &tailBuffer{max: 64 << 10}
	w := io.MultiWriter(out, logBuf)
	tasks := reason != "scale" && reason != "restart"
	return d.rollout(ctx, &rel, w, logBuf, tasks)
}

// proc is one container to run: process type and index.
type proc struct {
	typ   string
	index int
	cmd   []string
}

func (p proc) name() string { return fmt.Sprintf("%s.%d", p.typ, p.index) }

// rollout runs release tasks, starts rel's containers beside the old ones,
// checks them, swaps the route and retires the old containers. On any
// failure the new containers are removed and the old keep serving.
func (d *Deployer) rollout(ctx context.Context, rel *Release, out io.Writer, logBuf *tailBuffer, tasks bool) error {
	switch rel.Builder {
	case BuilderStatic:
		return d.rolloutStatic(ctx, rel, out, logBuf)
	case BuilderCompose:
		return d.rolloutCompose(ctx, rel, out, logBuf)
	}
	fail := d.failer(ctx, rel, logBuf)
	man := manifests{procfile: rel.Procfile, appJSONRaw: rel.AppJSON, checks: rel.Checks}
	if err := man.parse(); err != nil {
		return fail(err)
	}
	formation, err := d.formation(ctx, rel.App, man)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(out, "-----> Releasing %s...\n", rel.App)
	if tasks {
		if _, err := d.hook(ctx, "pre-release-builder", rel.App, out, rel.Builder, rel.App, rel.Image); err != nil {
			return fail(err)
		}
		if err := d.releaseTasks(ctx, rel, man, out); err != nil {
			return fail(err)
		}
		if _, err := d.hook(ctx, "post-release-builder", rel.App, out, rel.Builder, rel.App, rel.Image); err != nil {
			return fail(err)
		}
	}
	if _, err := d.hook(ctx, "pre-deploy", rel.App, out, rel.App, rel.Image); err != nil {
		return fail(err)
	}
	fmt.Fprintf(out, "-----> Deploying %s...\n", rel.App)
	if err := d.runtime.EnsureNetwork(ctx); err != nil {
		return fail(err)
	}
	old, err := d.runtime.List(ctx, map[string]string{LabelApp: rel.App})
	if err != nil {
		return fail(fmt.Errorf("list containers of %s: %w", rel.App, err))
	}
	old = slices.DeleteFunc(old, func(c Container) bool {
		return c.Labels[LabelProcess] == "run" || c.Labels[LabelRelease] == strconv.Itoa(rel.Number)
	})
	checkCfg, err := d.checkSettings(ctx, rel.App)
	if err != nil {
		return fail(err)
	}
	var procs []proc
	for _, typ := range formation.types {
		for i := 1; i <= formation.count[typ]; i++ {
			procs = append(procs, proc{typ: typ, index: i, cmd: formation.cmd[typ]})
		}
	}
	// Types whose checks are disabled stop their old containers first, as
	// Dokku does: there is nothing to tell when the new ones are ready.
	for _, typ := range formation.types {
		if checkCfg.disabled(typ) {
			fmt.Fprintf(out, "-----> Zero downtime is disabled for %s: stopping old %s containers first\n", typ, typ)
			var keep, stop []Container
			var ups []string
			for _, c := range old {
				if c.Labels[LabelProcess] != typ {
					keep = append(keep, c)
					continue
				}
				stop = append(stop, c)
				if typ == "web" && c.Addr != "" {
					ups = append(ups, c.Addr)
				}
			}
			if typ == "web" {
				d.router.RemoveRoute(rel.App)
				d.router.Drain(context.WithoutCancel(ctx), ups, d.cfg.StopTimeout)
			}
			for _, c := range stop {
				d.stopRemove(context.WithoutCancel(ctx), c, rel.App)
			}
			old = keep
		}
	}
	started, err := d.startAll(ctx, rel, procs, out)
	if err == nil {
		err = d.checkAll(ctx, rel, man, started, checkCfg, out)
	}
	if err == nil && tasks && man.appJSON != nil && man.appJSON.Scripts.Dokku.Postdeploy != "" {
		err = d.runTask(ctx, rel, "postdeploy", man.appJSON.Scripts.Dokku.Postdeploy, out)
	}
	if err != nil {
		for _, c := range started {
			d.runtime.Remove(context.WithoutCancel(ctx), c.ID)
		}
		return fail(err)
	}

	// Swap: one atomic route change to the new web containers.
	var ups []string
	for _, c := range started {
		if c.Labels[LabelProcess] == "web" && c.Addr != "" {
			ups = append(ups, c.Addr)
		}
	}
	swapped := time.Now()
	hosts := d.setRoute(ctx, rel.App, ups)
	if err := d.svc.store.MarkDeployed(context.WithoutCancel(ctx), rel.App, rel.Number); err != nil {
		return fail(err)
	}
	d.log.Printf("%s v%d live: %d web upstreams swapped at %s", rel.App, rel.Number, len(ups), swapped.Format(time.RFC3339Nano))
	var webURLs []string
	for _, h := range hosts {
		webURLs = append(webURLs, d.cfg.URL(h))
	}
	port, err := d.webPort(ctx, rel.App)
	if err != nil {
		port = d.cfg.DefaultPort
	}
	if _, err := d.hook(ctx, "post-deploy", rel.App, out, rel.App, strconv.Itoa(port), "", rel.Image); err != nil {
		fmt.Fprintf(out, " !     post-deploy hook: %v\n", err)
	}
	d.retire(rel.App, old, checkCfg)
	d.pruneImages(context.WithoutCancel(ctx), rel.App)
	if len(ups) > 0 && len(hosts) == 0 {
		fmt.Fprintf(out, "=====> Application deployed (domains disabled: not routed by the proxy)\n")
	} else if len(ups) > 0 {
		fmt.Fprintf(out, "=====> Application deployed:\n")
		for _, u := range webURLs {
			fmt.Fprintf(out, "       %s\n", u)
		}
	} else {
		fmt.Fprintf(out, "=====> Application deployed (no web process)\n")
	}
	rel.Status = ReleaseDeployed
	rel.Log = logBuf.String()
	return d.svc.store.UpdateRelease(context.WithoutCancel(ctx), *rel)
}

// formationPlan says which process types run, how many of each, and with
// which command (nil: the image's own).
type formationPlan struct {
	types []string
	count map[string]int
	cmd   map[string][]string
}

// formation computes the process counts: app.json formation wins, then
// ps:scale settings, then web=1 and other types 0 (as Dokku).
func (d *Deployer) formation(ctx context.Context, app string, man manifests) (formationPlan, error) {
	f := formationPlan{count: map[string]int{}, cmd: map[string][]string{}}
	if man.procfile != "" {
		p, err := ParseProcfile([]byte(man.procfile))
		if err != nil {
			return f, err
		}
		for _, t := range p.Types {
			if t == "release" {
				continue
			}
			f.types = append(f.types, t)
			f.cmd[t] = CommandArgs(p.Commands[t])
		}
	}
	if !slices.Contains(f.types, "web") {
		// Without a web type in the Procfile, web runs the image's command.
		f.types = append([]string{"web"}, f.types...)
	}
	scale, err := d.svc.Settings(ctx, app, "formation")
	if err != nil {
		return f, err
	}
	for _, t := range f.types {
		n := 0
		if t == "web" {
			n = 1
		}
		if v, ok := scale[t]; ok {
			n, _ = strconv.Atoi(v)
		}
		if man.appJSON != nil {
			if e, ok := man.appJSON.Formation[t]; ok && e.Quantity != nil {
				n = *e.Quantity
			}
		}
		f.count[t] = n
	}
	return f, nil
}

// CommandArgs turns a Procfile command into argv: split on spaces when it
// has no shell syntax (so images without a shell work), else /bin/sh -c.
func CommandArgs(cmd string) []string {
	cmd = strings.TrimSpace(cmd)
	if cmd == "" {
		return nil
	}
	if strings.ContainsAny(cmd, "$&|;<>()'\"\\`*?~#{}[]=\n") {
		return []string{"/bin/sh", "-c", cmd}
	}
	return strings.Fields(cmd)
}

// releaseTasks runs app.json's predeploy and the Procfile's release command
// in one-off containers of the new image.
func (d *Deployer) releaseTasks(ctx context.Context, rel *Release, man manifests, out io.Writer) error {
	if man.appJSON != nil && man.appJSON.Scripts.Dokku.Predeploy != "" {
		if err := d.runTask(ctx, rel, "predeploy", man.appJSON.Scripts.Dokku.Predeploy, out); err != nil {
			return err
		}
	}
	if man.procfile != "" {
		p, _ := ParseProcfile([]byte(man.procfile))
		if cmd := p.Commands["release"]; cmd != "" {
			if err := d.runTask(ctx, rel, "release", cmd, out); err != nil {
				return err
			}
		}
	}
	return nil
}

// runTask runs one release task; a non-zero exit fails the deploy with
// Dokku's "Execution of <task> task failed".
func (d *Deployer) runTask(ctx context.Context, rel *Release, task, cmd string, out io.Writer) error {
	fmt.Fprintf(out, "-----> Running %s task: %s\n", task, cmd)
	p := proc{typ: task, index: 1, cmd: CommandArgs(cmd)}
	spec, err := d.containerSpec(ctx, rel, p)
	if err != nil {
		return err
	}
	if err := d.deployArgs(ctx, rel, p, &spec, out); err != nil {
		return err
	}
	spec.Name = fmt.Sprintf("%s.%s.v%d.%s", rel.App, task, rel.Number, randomHex(6))
	spec.RestartPolicy = "no"
	code, err := d.runtime.RunAttached(ctx, spec, Streams{Stdout: indent(out), Stderr: indent(out)})
	if err != nil {
		return Errorf(ErrDeployFailed, "Execution of %s task failed: %v", task, err)
	}
	if code != 0 {
		return Errorf(ErrDeployFailed, "Execution of %s task failed: %s exited with status %d", task, cmd, code)
	}
	return nil
}

// hook runs point with args for app: RIVETR_APP is set in the plugins'
// environment and their output goes to out.
func (d *Deployer) hook(ctx context.Context, point, app string, out io.Writer, args ...string) (string, error) {
	return d.hooks.Run(ctx, point, args, HookOpts{Out: out, Env: map[string]string{"RIVETR_APP": app}})
}

// deployArgs adds what docker-args-deploy handlers print (docker-options'
// deploy phase first) to the spec of process p.
func (d *Deployer) deployArgs(ctx context.Context, rel *Release, p proc, spec *ContainerSpec, out io.Writer) error {
	return d.applyRunArgs(ctx, "docker-args-deploy", rel.App, out, spec, rel.App, rel.Image, p.typ, strconv.Itoa(p.index))
}

// applyRunArgs runs a docker-args-deploy/run point and applies the
// options its handlers print (-e/--env KEY=VALUE, -l/--label KEY=VALUE)
// to spec; any other option fails, naming it.
func (d *Deployer) applyRunArgs(ctx context.Context, point, app string, out io.Writer, spec *ContainerSpec, args ...string) error {
	extra, err := d.hook(ctx, point, app, out, args...)
	if err != nil {
		return err
	}
	if err := ApplyRunOptions(extra, spec); err != nil {
		return Errorf(ErrDeployFailed, "%s: %v", point, err)
	}
	return nil
}

// ValidateRunOptions checks options of docker-options' deploy and run
// phases the way ApplyRunOptions applies them.
func ValidateRunOptions(opts string) error {
	return ApplyRunOptions(opts, &ContainerSpec{Env: map[string]string{}, Labels: map[string]string{}})
}

// ApplyRunOptions applies container options (shell-quoted words) to spec:
// -e/--env KEY=VALUE and -l/--label KEY=VALUE; rivetr.* labels and any
// other option are refused.
func ApplyRunOptions(opts string, spec *ContainerSpec) error {
	args, err := ParseDockerArgs(opts)
	if err != nil {
		return err
	}
	for _, a := range args {
		k, v, ok := strings.Cut(a.Value, "=")
		switch a.Flag {
		case "-e", "--env":
			if !ok {
				return fmt.Errorf("%s %s: use KEY=VALUE", a.Flag, clipWord(a.Value))
			}
			if err := ValidateEnvKey(k); err != nil {
				return err
			}
			spec.Env[k] = v
		case "-l", "--label":
			if !ok || k == "" {
				return fmt.Errorf("%s %s: use KEY=VALUE", a.Flag, clipWord(a.Value))
			}
			if strings.HasPrefix(k, "rivetr.") {
				return fmt.Errorf("label %s is rivetr's own", k)
			}
			spec.Labels[k] = v
		default:
			return fmt.Errorf("option %s is not supported (rivetr applies -e/--env KEY=VALUE and -l/--label KEY=VALUE)", a.Flag)
		}
	}
	return nil
}

// containerSpec is the spec of one process of rel, with the app's ps,
// resource and storage settings.
func (d *Deployer) containerSpec(ctx context.Context, rel *Release, p proc) (ContainerSpec, error) {
	ps, err := d.svc.Settings(ctx, rel.App, "ps")
	if err != nil {
		return ContainerSpec{}, err
	}
	res, err := d.resources(ctx, rel.App, p.typ)
	if err != nil {
		return ContainerSpec{}, err
	}
	mounts, err := d.mounts(ctx, rel.App)
	if err != nil {
		return ContainerSpec{}, err
	}
	env := make(map[string]string, len(rel.Env)+2)
	for k, v := range rel.Env {
		env[k] = v
	}
	port, err := d.webPort(ctx, rel.App)
	if err != nil {
		return ContainerSpec{}, err
	}
	env["PORT"] = strconv.Itoa(port)
	env["DYNO"] = p.name()
	policy := ps["restart-policy"]
	if policy == "" {
		policy = "unless-stopped"
	}
	spec := ContainerSpec{
		Name:          fmt.Sprintf("%s.%s.%d.v%d", rel.App, p.typ, p.index, rel.Number),
		Image:         rel.Image,
		Cmd:           p.cmd,
		Env:           env,
		RestartPolicy: policy,
		Labels:        map[string]string{LabelApp: rel.App, LabelProcess: p.typ, LabelRelease: strconv.Itoa(rel.Number)},
		Mounts:        mounts,
		Resources:     res,
		StopTimeout:   d.stopTimeout(ps),
	}
	if p.typ == "web" {
		spec.Port = port
	}
	return spec, nil
}

func (d *Deployer) stopTimeout(ps map[string]string) time.Duration {
	if n, err := strconv.Atoi(ps["stop-timeout-seconds"]); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	return d.cfg.StopTimeout
}

// startAll starts every new container; on error it removes those started.
func (d *Deployer) startAll(ctx context.Context, rel *Release, procs []proc, out io.Writer) ([]Container, error) {
	var started []Container
	for _, p := range procs {
		spec, err := d.containerSpec(ctx, rel, p)
		if err != nil {
			return started, err
		}
		if err := d.deployArgs(ctx, rel, p, &spec, out); err != nil {
			return started, err
		}
		// A container left by an earlier attempt at this release (a crash
		// mid-deploy) would block the name.
		if stale, err := d.runtime.List(ctx, map[string]string{LabelApp: rel.App, LabelRelease: strconv.Itoa(rel.Number), LabelProcess: p.typ}); err == nil {
			for _, c := range stale {
				if c.Name == spec.Name {
					d.runtime.Remove(ctx, c.ID)
				}
			}
		}
		c, err := d.runtime.Run(ctx, spec)
		if err != nil {
			return started, fmt.Errorf("start %s: %w", p.name(), err)
		}
		if c.Labels == nil {
			c.Labels = spec.Labels
		}
		started = append(started, c)
	}
	return started, nil
}

// checkSettings are the checks namespace's settings of an app.
type checkSettings struct {
	disabledTypes, skippedTypes []string
	defaultWait, waitToRetire   time.Duration
}

func (c checkSettings) disabled(typ string) bool {
	return slices.Contains(c.disabledTypes, typ) || slices.Contains(c.disabledTypes, "_all_")
}

func (c checkSettings) skipped(typ string) bool {
	return slices.Contains(c.skippedTypes, typ) || slices.Contains(c.skippedTypes, "_all_")
}

// Defaults of the checks namespace, as Dokku's.
const (
	DefaultChecksWait   = 10 * time.Second
	DefaultWaitToRetire = 60 * time.Second
)

func (d *Deployer) checkSettings(ctx context.Context, app string) (checkSettings, error) {
	var c checkSettings
	get := func(key, def string) (string, error) { return d.svc.Setting(ctx, app, "checks", key, def) }
	dis, err := get("disabled", "")
	if err != nil {
		return c, err
	}
	skip, err := get("skipped", "")
	if err != nil {
		return c, err
	}
	c.disabledTypes = splitList(dis)
	c.skippedTypes = splitList(skip)
	c.defaultWait = DefaultChecksWait
	if v, err := get("default-wait", ""); err == nil && v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			c.defaultWait = time.Duration(n) * time.Second
		}
	}
	c.waitToRetire = DefaultWaitToRetire
	if v, err := get("wait-to-retire", ""); err == nil && v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			c.waitToRetire = time.Duration(n) * time.Second
		}
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// checkAll runs each new container's checks in parallel and fails with
// Dokku's "Could not start due to N failed checks (web.1, ...)".
func (d *Deployer) checkAll(ctx context.Context, rel *Release, man manifests, started []Container, cfg checkSettings, out io.Writer) error {
	var checksFile []Healthcheck
	if man.checks != "" {
		var err error
		if checksFile, err = ParseChecksFile([]byte(man.checks), rel.Env); err != nil {
			return Errorf(ErrDeployFailed, "CHECKS: %v", err)
		}
	}
	checkHookPort, err := d.webPort(ctx, rel.App)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var failed []string
	var wg sync.WaitGroup
	w := &LockedWriter{W: out}
	for _, c := range started {
		typ := c.Labels[LabelProcess]
		name := strings.TrimPrefix(c.Name, rel.App+".")
		name = strings.TrimSuffix(name, ".v"+strconv.Itoa(rel.Number))
		if cfg.disabled(typ) || cfg.skipped(typ) {
			fmt.Fprintf(w, "-----> Checks for %s are %s\n", name, map[bool]string{true: "disabled", false: "skipped"}[cfg.disabled(typ)])
			continue
		}
		var checks []Healthcheck
		if man.appJSON != nil {
			checks = man.appJSON.Healthchecks[typ]
		}
		if len(checks) == 0 && typ == "web" {
			checks = checksFile
		}
		wg.Add(1)
		go func(c Container, name string, checks []Healthcheck) {
			defer wg.Done()
			id := c.ID
			target := CheckTarget{Name: name, Addr: c.Addr,
				Running: func(ctx context.Context) (bool, error) {
					st, err := d.runtime.Inspect(ctx, id)
					return st.Running, err
				},
				Exec: func(ctx context.Context, cmd []string) (int, string, error) {
					var buf tailBuffer
					buf.max = 4 << 10
					code, err := d.runtime.Exec(ctx, id, cmd, false, Streams{Stdout: &buf, Stderr: &buf})
					return code, buf.String(), err
				},
			}
			err := RunChecks(ctx, target, checks, cfg.defaultWait, w)
			if err == nil {
				_, err = d.hook(ctx, "check-deploy", rel.App, w, rel.App, c.ID, typOf(c), strconv.Itoa(checkHookPort), hostOf(c.Addr))
			}
			if err != nil {
				fmt.Fprintf(w, " !     %s: %v\n", name, err)
				mu.Lock()
				failed = append(failed, name)
				mu.Unlock()
			}
		}(c, name, checks)
	}
	wg.Wait()
	if len(failed) > 0 {
		sort.Strings(failed)
		return Errorf(ErrDeployFailed, "Could not start due to %d failed checks (%s)", len(failed), strings.Join(failed, ", "))
	}
	return nil
}

func typOf(c Container) string { return c.Labels[LabelProcess] }

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return h
}

// LockedWriter serialises writes to W from several goroutines (parallel
// checks, a process's stdout and stderr copiers).
type LockedWriter struct {
	mu sync.Mutex
	W  io.Writer
}

func (l *LockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.W.Write(p)
}

// indent prefixes a one-off task's output lines with 7 spaces.
func indent(w io.Writer) io.Writer { return &indentWriter{w: w, bol: true} }

type indentWriter struct {
	w   io.Writer
	bol bool
}

func (i *indentWriter) Write(p []byte) (int, error) {
	var b []byte
	for _, c := range p {
		if i.bol {
			b = append(b, "       "...)
			i.bol = false
		}
		b = append(b, c)
		if c == '\n' {
			i.bol = true
		}
	}
	if _, err := i.w.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

// retire drains and removes, in the background, the old containers: web
// upstreams get no new requests since the swap; in-flight ones may finish
// for up to wait-to-retire, WebSockets are closed at its end, then each
// container gets SIGTERM, its stop timeout, and is removed. The list was
// taken under the deploy lock, so a later deploy's containers are safe.
func (d *Deployer) retire(app string, old []Container, cfg checkSettings) {
	if len(old) == 0 {
		return
	}
	var ups []string
	for _, c := range old {
		if c.Labels[LabelProcess] == "web" && c.Addr != "" {
			ups = append(ups, c.Addr)
		}
	}
	d.retiring.Add(1)
	go func() {
		defer d.retiring.Done()
		ctx := context.Background()
		if len(ups) > 0 {
			d.router.Drain(ctx, ups, cfg.waitToRetire)
		}
		for _, c := range old {
			d.stopRemove(ctx, c, app)
		}
	}()
}

func (d *Deployer) stopRemove(ctx context.Context, c Container, app string) {
	d.log.Printf("retiring container %s of %s", c.Name, app)
	if err := d.runtime.Stop(ctx, c.ID, d.cfg.StopTimeout); err != nil {
		d.log.Printf("stop %s: %v", c.Name, err)
	}
	if err := d.runtime.Remove(ctx, c.ID); err != nil {
		d.log.Printf("remove %s: %v", c.Name, err)
	}
}

// resources reads resource:limit/reserve settings for a process type; a
// per-type value ("web.limit-memory") wins over the app-wide one.
func (d *Deployer) resources(ctx context.Context, app, typ string) (Resources, error) {
	set, err := d.svc.Settings(ctx, app, "resource")
	if err != nil {
		return Resources{}, err
	}
	get := func(key string) string {
		if v, ok := set[typ+"."+key]; ok {
			return v
		}
		return set[key]
	}
	var r Resources
	if r.MemoryLimit, err = ParseBytes(get("limit-memory")); err != nil {
		return r, err
	}
	if r.MemoryReservation, err = ParseBytes(get("reserve-memory")); err != nil {
		return r, err
	}
	if r.NanoCPUs, err = ParseCPUs(get("limit-cpu")); err != nil {
		return r, err
	}
	cpus, err := ParseCPUs(get("reserve-cpu"))
	if err != nil {
		return r, err
	}
	r.CPUShares = cpus * 1024 / 1e9
	return r, nil
}

// mounts reads storage:mount settings ("SRC:DST[:ro]" per line).
func (d *Deployer) mounts(ctx context.Context, app string) ([]Mount, error) {
	set, err := d.svc.Settings(ctx, app, "storage")
	if err != nil {
		return nil, err
	}
	var out []Mount
	for _, line := range splitLines(set["mounts"]) {
		m, err := ParseMount(line)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// applyBuildArgs adds what docker-args-build handlers print
// (--build-arg KEY[=VALUE], --label KEY=VALUE) to args and labels.
func applyBuildArgs(extra string, env, args, labels map[string]string) error {
	parsed, err := ParseDockerArgs(extra)
	if err != nil {
		return err
	}
	for _, a := range parsed {
		if a.Flag != "--build-arg" && a.Flag != "--label" {
			return fmt.Errorf("option %s is not supported (rivetr applies --build-arg and --label)", a.Flag)
		}
		if a.Flag == "--label" && strings.HasPrefix(a.Value, "rivetr.") {
			return fmt.Errorf("label %s is rivetr's own", a.Value)
		}
		addBuildOption(a.Flag, a.Value, env, args, labels)
	}
	return nil
}

// SplitOption splits one stored docker option, "--flag value" or
// "--flag=value", into its flag and value.
func SplitOption(line string) (flag, value string) {
	flag, value, _ = strings.Cut(strings.TrimSpace(line), " ")
	if f, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(f, "--") && !strings.Contains(f, " ") {
		flag, value = f, v
	}
	return flag, strings.TrimSpace(value)
}

// addBuildOption applies one build option: --build-arg KEY=VALUE,
// --build-arg KEY (value from env) or --label K=V; others are ignored.
func addBuildOption(flag, value string, env, args, labels map[string]string) {
	switch flag {
	case "--build-arg":
		if k, v, ok := strings.Cut(value, "="); ok {
			args[k] = v
		} else if v, ok := env[value]; ok {
			args[value] = v
		}
	case "--label":
		if k, v, ok := strings.Cut(value, "="); ok {
			labels[k] = v
		}
	}
}

// buildOptionWords turns the build phase's docker-options (one per line,
// "--flag value" or "--flag=value") into shell words, as docker-args-build
// handlers print them.
func buildOptionWords(lines string) string {
	var words []string
	for _, line := range splitLines(lines) {
		flag, value := SplitOption(line)
		words = append(words, flag, ShellQuote(value))
	}
	return strings.Join(words, " ")
}

// pruneImages removes the app's images except those of the newest
// KeepReleases deployed (or superseded) releases and of pending ones.
func (d *Deployer) pruneImages(ctx context.Context, app string) {
	keep, err := d.keptImages(ctx, app)
	if err != nil {
		d.log.Printf("prune images of %s: %v", app, err)
		return
	}
	images, err := d.runtime.Images(ctx, map[string]string{LabelApp: app})
	if err != nil {
		d.log.Printf("list images of %s: %v", app, err)
		return
	}
	sort.Strings(images)
	for _, img := range images {
		if keep[img] || !strings.HasPrefix(img, "rivetr/"+app+":") {
			continue
		}
		if err := d.runtime.RemoveImage(ctx, img); err != nil {
			d.log.Printf("remove image %s: %v", img, err)
		}
	}
}

// Rebuild redeploys the head of the app's deploy branch.
func (d *Deployer) Rebuild(ctx context.Context, app, user string, out io.Writer) error {
	if _, err := d.svc.App(ctx, app); err != nil {
		return err
	}
	branch, err := d.svc.Setting(ctx, app, "git", GitDeployBranch, "")
	if err != nil {
		return err
	}
	if branch == "" {
		return Errorf(ErrNoRelease, "App %s has not been deployed yet: push to it first", app)
	}
	rev, err := d.source.Resolve(ctx, app, branch)
	if err != nil {
		return err
	}
	return d.Deploy(ctx, DeployRequest{App: app, Rev: rev, User: user, Reason: "rebuild", Out: out})
}

// Stop removes the app's route and containers (images stay).
func (d *Deployer) Stop(ctx context.Context, app string) error {
	d.router.RemoveRoute(app)
	if d.runtime == nil {
		return nil
	}
	list, err := d.runtime.List(ctx, map[string]string{LabelApp: app})
	if err != nil {
		return fmt.Errorf("list containers of %s: %w", app, err)
	}
	var ups []string
	for _, c := range list {
		if c.Labels[LabelProcess] == "web" && c.Addr != "" {
			ups = append(ups, c.Addr)
		}
	}
	// Requests in flight may finish (briefly) before the containers go.
	d.router.Drain(ctx, ups, 5*time.Second)
	for _, c := range list {
		if err := d.runtime.Remove(ctx, c.ID); err != nil {
			return fmt.Errorf("remove container %s: %w", c.Name, err)
		}
	}
	return nil
}

// Destroy removes everything the app runs: route, containers and images.
func (d *Deployer) Destroy(ctx context.Context, app string) error {
	unlock, err := d.lock(ctx, app, io.Discard)
	if err != nil {
		return err
	}
	defer unlock()
	if err := d.Stop(ctx, app); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(d.cfg.SitesDir, app)); err != nil {
		return fmt.Errorf("remove static sites of %s: %w", app, err)
	}
	if d.runtime == nil {
		return nil
	}
	if err := d.runtime.RemoveNetwork(ctx, composeNetwork(app)); err != nil {
		d.log.Printf("remove network of %s: %v", app, err)
	}
	images, err := d.runtime.Images(ctx, map[string]string{LabelApp: app})
	if err != nil {
		return fmt.Errorf("list images of %s: %w", app, err)
	}
	for _, img := range images {
		if err := d.runtime.RemoveImage(ctx, img); err != nil {
			return fmt.Errorf("remove image %s: %w", img, err)
		}
	}
	// Images the app loaded (git:load-image) carry no rivetr label.
	loaded, err := d.loadedImages(ctx, app)
	if err != nil {
		return err
	}
	for _, img := range loaded {
		if err := d.runtime.RemoveImage(ctx, img); err != nil {
			d.log.Printf("remove loaded image %s of %s: %v", img, app, err)
		}
	}
	return nil
}

// Restore rebuilds the route table from the running containers of each
// app's deployed release, after rivetr restarts.
func (d *Deployer) Restore(ctx context.Context) error {
	if d.runtime == nil {
		return d.restoreStatic(ctx)
	}
	if n, err := d.svc.store.FailPending(ctx, "interrupted: rivetr stopped before this deploy finished; the previous release kept serving"); err != nil {
		return err
	} else if n > 0 {
		d.log.Printf("%d deploys were cut off by a restart; rolled back to the releases deployed before them", n)
	}
	list, err := d.svc.Apps(ctx)
	if err != nil {
		return err
	}
	for _, app := range list {
		rel, ok, err := d.svc.store.CurrentRelease(ctx, app.Name)
		if err != nil || !ok {
			continue
		}
		if rel.Builder == BuilderStatic && !d.stopped(ctx, app.Name) {
			d.routeStatic(ctx, app.Name, rel)
		}
		web, kept := "web", map[string]bool{} // kept: compose services whose older containers stay
		if rel.Builder == BuilderCompose {
			if p, err := d.loadCompose(&rel); err == nil {
				web = p.Web
				for _, s := range p.Services {
					kept[s.Name] = s.Name != p.Web
				}
			}
		}
		cs, err := d.runtime.List(ctx, map[string]string{LabelApp: app.Name, LabelRelease: strconv.Itoa(rel.Number), LabelProcess: web})
		if err != nil {
			return fmt.Errorf("list containers of %s: %w", app.Name, err)
		}
		var ups []string
		for _, c := range cs {
			if c.Running && c.Addr != "" {
				ups = append(ups, c.Addr)
			}
		}
		if len(ups) > 0 {
			d.setRoute(ctx, app.Name, ups)
		}
		// Containers of earlier releases left by a stop mid-retirement, or
		// of a deploy cut off before its swap.
		all, err := d.runtime.List(ctx, map[string]string{LabelApp: app.Name})
		if err != nil {
			return fmt.Errorf("list containers of %s: %w", app.Name, err)
		}
		old := slices.DeleteFunc(all, func(c Container) bool {
			return c.Labels[LabelProcess] == "run" || c.Labels[LabelRelease] == strconv.Itoa(rel.Number) || kept[c.Labels[LabelProcess]]
		})
		cfg, err := d.checkSettings(ctx, app.Name)
		if err != nil {
			return err
		}
		cfg.waitToRetire = 0 // nothing routes to them: no requests in flight
		d.retire(app.Name, old, cfg)
	}
	return nil
}

// restoreStatic routes the static sites when no engine answers (they need
// none).
func (d *Deployer) restoreStatic(ctx context.Context) error {
	list, err := d.svc.Apps(ctx)
	if err != nil {
		return err
	}
	for _, app := range list {
		if rel, ok, err := d.svc.store.CurrentRelease(ctx, app.Name); err == nil && ok && rel.Builder == BuilderStatic && !d.stopped(ctx, app.Name) {
			d.routeStatic(ctx, app.Name, rel)
		}
	}
	return nil
}

// tailBuffer keeps the last max bytes written, for release logs.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
