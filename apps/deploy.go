package apps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
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
	Settings  map[string]string // the app's builder settings, e.g. dockerfile-path
	BuildArgs map[string]string
	Out       io.Writer
}

// Builder turns source code into an image.
type Builder interface {
	// Build builds req.Dir into the image req.Tag and returns the name of
	// the builder used ("dockerfile", ...).
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
}

// Deployer runs the deploy pipeline: checkout, build, release, start,
// wait, swap the route, retire the old containers, prune old images.
type Deployer struct {
	svc     *Service
	source  Source
	builder Builder
	runtime Runtime
	router  Router
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
	return &Deployer{svc: svc, source: source, builder: builder, runtime: runtime, router: router, log: log, cfg: cfg, locks: map[string]chan struct{}{}}
}

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

// Hosts returns the hosts an app is served on.
func (d *Deployer) Hosts(app string) []string {
	return []string{app + "." + d.cfg.Domain}
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

	revVar, err := d.svc.Setting(ctx, req.App, "git", GitRevEnvVar, DefaultRevEnv)
	if err != nil {
		return err
	}
	if revVar != "" && ValidateEnvKey(revVar) == nil {
		if err := d.svc.UpdateEnv(ctx, req.App, EnvChange{Set: map[string]string{revVar: req.Rev}}); err != nil {
			return err
		}
	}
	env, err := d.svc.MergedEnv(ctx, req.App)
	if err != nil {
		return err
	}
	rel := Release{App: req.App, Rev: req.Rev, Env: env, Status: ReleasePending, Reason: req.Reason,
		CreatedBy: req.User, CreatedAt: time.Now().UTC()}
	rel.Number, err = d.svc.store.CreateRelease(ctx, rel)
	if err != nil {
		return err
	}
	logBuf := &tailBuffer{max: 64 << 10}
	out := io.MultiWriter(req.Out, logBuf)
	fail := func(err error) error {
		rel.Status = ReleaseFailed
		rel.Log = logBuf.String() + "\n" + err.Error()
		if uerr := d.svc.store.UpdateRelease(context.WithoutCancel(ctx), rel); uerr != nil {
			d.log.Printf("record failed release %s v%d: %v", req.App, rel.Number, uerr)
		}
		return err
	}

	settings, err := d.svc.Settings(ctx, req.App, "builder-dockerfile")
	if err != nil {
		return fail(err)
	}
	opts, err := d.svc.Settings(ctx, req.App, "docker-options")
	if err != nil {
		return fail(err)
	}
	labels := map[string]string{}
	buildArgs := BuildOptions(opts["build"], env, labels)
	labels[LabelApp], labels[LabelRelease] = req.App, strconv.Itoa(rel.Number)
	rel.Image = fmt.Sprintf("rivetr/%s:%d", req.App, rel.Number)
	rel.Builder, err = d.builder.Build(ctx, BuildRequest{
		App: req.App, Dir: dir, Tag: rel.Image, Settings: settings, Out: out,
		Labels: labels, BuildArgs: buildArgs,
	})
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(out, "-----> Releasing %s...\n", req.App)
	if err := d.svc.store.UpdateRelease(ctx, rel); err != nil {
		return fail(err)
	}
	if err := d.release(ctx, rel, out); err != nil {
		return fail(err)
	}
	d.pruneImages(ctx, req.App)
	for _, h := range d.Hosts(req.App) {
		fmt.Fprintf(out, "=====> Application deployed:\n       %s\n", d.cfg.URL(h))
	}
	rel.Status = ReleaseDeployed
	rel.Log = logBuf.String()
	return d.svc.store.UpdateRelease(context.WithoutCancel(ctx), rel)
}

// release starts rel's containers, waits for them, swaps the route and
// retires the containers of earlier releases.
func (d *Deployer) release(ctx context.Context, rel Release, out io.Writer) error {
	fmt.Fprintf(out, "-----> Deploying %s...\n", rel.App)
	if err := d.runtime.EnsureNetwork(ctx); err != nil {
		return err
	}
	port := d.cfg.DefaultPort
	env := make(map[string]string, len(rel.Env)+1)
	for k, v := range rel.Env {
		env[k] = v
	}
	env["PORT"] = strconv.Itoa(port)
	spec := ContainerSpec{
		Name:          fmt.Sprintf("%s.web.1.v%d", rel.App, rel.Number),
		Image:         rel.Image,
		Env:           env,
		Port:          port,
		RestartPolicy: "unless-stopped",
		Labels: map[string]string{
			LabelApp: rel.App, LabelProcess: "web", LabelRelease: strconv.Itoa(rel.Number),
		},
	}
	// A container left by an earlier attempt at this release number (a
	// crash mid-deploy) would block the name.
	if stale, err := d.runtime.List(ctx, map[string]string{LabelApp: rel.App, LabelRelease: strconv.Itoa(rel.Number)}); err == nil {
		for _, c := range stale {
			d.runtime.Remove(ctx, c.ID)
		}
	}
	c, err := d.runtime.Run(ctx, spec)
	if err != nil {
		return fmt.Errorf("start web.1: %w", err)
	}
	if err := d.waitListening(ctx, c, out); err != nil {
		d.runtime.Remove(context.WithoutCancel(ctx), c.ID)
		return Errorf(ErrDeployFailed, "Could not start due to 1 failed checks (web.1): %v", err)
	}
	d.router.SetRoute(rel.App, d.Hosts(rel.App), []string{c.Addr})
	if err := d.svc.store.MarkDeployed(ctx, rel.App, rel.Number); err != nil {
		return err
	}
	// The old containers no longer get requests; stopping them (up to the
	// stop timeout each) happens after the push has returned.
	d.retire(context.WithoutCancel(ctx), rel.App, rel.Number)
	return nil
}

// waitListening waits until the container accepts TCP on its address.
func (d *Deployer) waitListening(ctx context.Context, c Container, out io.Writer) error {
	if c.Addr == "" {
		return errors.New("container has no address")
	}
	fmt.Fprintf(out, "-----> Waiting for web.1 to listen on port %d\n", d.cfg.DefaultPort)
	deadline := time.Now().Add(d.cfg.StartTimeout)
	for {
		conn, err := net.DialTimeout("tcp", c.Addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		st, ierr := d.runtime.Inspect(ctx, c.ID)
		if ierr == nil && !st.Running {
			return fmt.Errorf("container exited (%s) before listening", st.State)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listened on port %d within %s", d.cfg.DefaultPort, d.cfg.StartTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// retire stops and removes, in the background, every container of app
// not of release keep. The list is taken now, under the deploy lock, so a
// later deploy's containers are never caught by it.
func (d *Deployer) retire(ctx context.Context, app string, keep int) {
	list, err := d.runtime.List(ctx, map[string]string{LabelApp: app})
	if err != nil {
		d.log.Printf("list containers of %s: %v", app, err)
		return
	}
	var old []Container
	for _, c := range list {
		if c.Labels[LabelRelease] != strconv.Itoa(keep) {
			old = append(old, c)
		}
	}
	if len(old) == 0 {
		return
	}
	d.retiring.Add(1)
	go func() {
		defer d.retiring.Done()
		for _, c := range old {
			d.log.Printf("retiring container %s of %s", c.Name, app)
			if err := d.runtime.Stop(ctx, c.ID, d.cfg.StopTimeout); err != nil {
				d.log.Printf("stop %s: %v", c.Name, err)
			}
			if err := d.runtime.Remove(ctx, c.ID); err != nil {
				d.log.Printf("remove %s: %v", c.Name, err)
			}
		}
	}()
}

// pruneImages removes the app's images except those of the newest
// KeepReleases deployed (or superseded) releases and of pending ones.
func (d *Deployer) pruneImages(ctx context.Context, app string) {
	rels, err := d.svc.store.Releases(ctx, app)
	if err != nil {
		d.log.Printf("prune images of %s: %v", app, err)
		return
	}
	keep := map[string]bool{}
	kept := 0
	for _, r := range rels { // newest first
		switch r.Status {
		case ReleasePending:
			keep[r.Image] = true
		case ReleaseDeployed, ReleaseSuperseded:
			if kept < d.cfg.KeepReleases {
				keep[r.Image] = true
				kept++
			}
		}
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

// BuildOptions reads the build phase's docker-options (one per line):
// --build-arg KEY=VALUE, --build-arg KEY (value from env) and --label K=V.
// It returns the build args and adds labels to labels.
func BuildOptions(lines string, env, labels map[string]string) map[string]string {
	args := map[string]string{}
	for _, line := range strings.Split(lines, "\n") {
		flag, value, _ := strings.Cut(strings.TrimSpace(line), " ")
		if f, v, ok := strings.Cut(line, "="); ok && strings.HasPrefix(f, "--") && !strings.Contains(f, " ") {
			flag, value = f, v
		}
		value = strings.TrimSpace(value)
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
	return args
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
	if d.runtime == nil {
		return nil
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
	return nil
}

// Restore rebuilds the route table from the running containers of each
// app's deployed release, after rivetr restarts.
func (d *Deployer) Restore(ctx context.Context) error {
	if d.runtime == nil {
		return nil
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
		cs, err := d.runtime.List(ctx, map[string]string{LabelApp: app.Name, LabelRelease: strconv.Itoa(rel.Number), LabelProcess: "web"})
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
			d.router.SetRoute(app.Name, d.Hosts(app.Name), ups)
		}
		// Containers of earlier releases left by a stop mid-retirement, or
		// of a deploy cut off before its swap.
		d.retire(context.Background(), app.Name, rel.Number)
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
