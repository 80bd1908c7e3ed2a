package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/pflag"

	"github.com/rivetr/rivetr/apps"
	"github.com/rivetr/rivetr/buildpacks"
	"github.com/rivetr/rivetr/commands"
	"github.com/rivetr/rivetr/control"
	"github.com/rivetr/rivetr/gitserver"
	"github.com/rivetr/rivetr/hooks"
	"github.com/rivetr/rivetr/plugins"
	"github.com/rivetr/rivetr/proxy"
	engine "github.com/rivetr/rivetr/runtime"
	"github.com/rivetr/rivetr/services"
	"github.com/rivetr/rivetr/settings"
	"github.com/rivetr/rivetr/store"
)

// shutdownGrace is how long running commands get to finish on SIGTERM.
const shutdownGrace = 10 * time.Second

// serve runs the daemon in the foreground until SIGTERM or SIGINT.
func serve(args []string) int {
	fs := settings.Flags("rivetr serve")
	fs.SetOutput(os.Stderr)
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "Usage: rivetr serve [flags]\n\nFlags (each also RIVETR_<NAME> in the environment or <name> in the TOML file):")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 1
	}
	if fs.NArg() > 0 {
		return fail("serve takes no arguments, got %q", fs.Arg(0))
	}
	cfg, err := settings.Load(fs)
	if err != nil {
		return fail("%v", err)
	}
	log := newLogger(cfg)
	if err := runDaemon(cfg, log); err != nil {
		// One line on stderr, nothing else: the error says it all.
		return fail("%v", err)
	}
	return 0
}

// daemon holds the listeners to shut down, in order.
type daemon struct {
	ssh   *gitserver.SSHServer
	ctl   *control.Server
	proxy *proxy.Proxy
	api   *http.Server
}

func runDaemon(cfg settings.Config, log zerolog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	// Bind every listener before doing anything else, so a busy port or a
	// second daemon is the one line the user sees.
	var lns listeners
	defer lns.closeAll()
	sshLn, err := lns.listen("ssh", cfg.SSHAddr)
	if err != nil {
		return err
	}
	httpLn, err := lns.listen("proxy", cfg.HTTPAddr)
	if err != nil {
		return err
	}
	apiLn, err := lns.listen("api", cfg.APIAddr)
	if err != nil {
		return err
	}
	var httpsLn net.Listener
	if cfg.HTTPSAddr != "" {
		if httpsLn, err = lns.listen("proxy https", cfg.HTTPSAddr); err != nil {
			return err
		}
	}
	var handle control.Handler // set once every part is built
	ctl, err := control.Listen(cfg.SocketPath(), func(ctx context.Context, req control.Request, st control.Streams) int {
		return handle(ctx, req, st)
	}, log.With().Str("component", "control").Logger())
	if err != nil {
		return err
	}
	defer func() {
		if handle == nil { // failed before serving: remove the socket
			ctl.Close(context.Background())
		}
	}()
	db, err := store.Open(ctx, cfg.DBPath())
	if err != nil {
		return err
	}
	defer db.Close()
	svc := apps.NewService(db)

	gitPath, err := exec.LookPath("git")
	if err != nil {
		return errors.New("git is not installed: install it (apt-get install git) and start rivetr again")
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary for git hooks: %w", err)
	}
	repos := &gitserver.Repos{Dir: filepath.Join(cfg.DataDir, "repos"), DataDir: cfg.DataDir, Binary: self}
	access := &gitserver.Access{Apps: svc, Repos: repos, GitPath: gitPath}

	// The container engine: a forced runtime must answer; auto may find
	// none, and then only deploys fail, with a clear message.
	var rt apps.Runtime
	var checkLogin func(context.Context, apps.RegistryLogin) error // nil without an engine
	var images apps.ImageBuilder
	engLog := log.With().Str("component", "runtime").Logger()
	detectCtx, cancelDetect := context.WithTimeout(ctx, 10*time.Second)
	ulimits, err := parseUlimits(cfg.Ulimits)
	if err != nil {
		cancelDetect()
		return err
	}
	eng, err := engine.Detect(detectCtx, engine.Options{Runtime: cfg.Runtime, Log: engLog, DefaultUlimits: ulimits,
		RegistryLogins: db.RegistryLogins})
	cancelDetect()
	switch {
	case err == nil:
		rt, images = eng, eng
		checkLogin = eng.CheckRegistryLogin
	case cfg.Runtime != "auto":
		return err
	default:
		engLog.Warn().Err(err).Msg("no container engine answers; deploys will fail until one does")
	}

	prx := proxy.New(log.With().Str("component", "proxy").Logger(), proxy.Options{
		MaxBodyBytes: cfg.ProxyMaxBody,
		AccessLog:    cfg.ProxyAccessLog,
	})
	certs := proxy.NewCerts(cfg.DataDir)
	var tlsMgr *proxy.TLS // nil: HTTPS off
	if httpsLn != nil {
		tlsMgr, err = prx.EnableTLS(proxy.TLSConfig{
			DataDir:    cfg.DataDir,
			Email:      cfg.ACMEEmail,
			CA:         cfg.ACMECA,
			CARootFile: cfg.ACMECARoot,
			HTTPPort:   httpLn.Addr().(*net.TCPAddr).Port,
			HTTPSPort:  httpsLn.Addr().(*net.TCPAddr).Port,
			RedirectAllowed: func(host string) bool {
				app, ok := prx.Lookup(host)
				if !ok {
					return false
				}
				v, err := svc.Setting(context.Background(), app, apps.ProxyNS, "https-redirect", "true")
				return err == nil && v != "false"
			},
		})
		if err != nil {
			return err
		}
		defer tlsMgr.Stop()
		certs.Attach(ctx, tlsMgr)
	}
	var builder apps.Builder = noBuilder{}
	if images != nil {
		builder = &buildpacks.Builder{Images: images}
	}
	deployLog := log.With().Str("component", "deploy").Logger()
	deployer := apps.NewDeployer(svc, &gitserver.Source{Repos: repos}, builder, rt, prx, &deployLog,
		apps.DeployerConfig{
			Domain:   cfg.Domain,
			URL:      publicURL(cfg.HTTPAddr),
			WorkDir:  filepath.Join(cfg.DataDir, "builds"),
			SitesDir: filepath.Join(cfg.DataDir, "sites"),
		})
	pluginMgr := &plugins.Manager{Settings: svc}
	hooksRunner := hooks.New(hooks.Config{DataDir: cfg.DataDir, Timeout: cfg.HookTimeout, PluginEnv: pluginMgr.Env}, log)
	pluginMgr.Dir, pluginMgr.Hooks = hooksRunner.PluginsDir(), hooksRunner
	for _, h := range deployer.BuiltinHooks() {
		run := h.Run
		hooksRunner.Register(h.Point, h.Name, func(ctx context.Context, args []string, _ hooks.IO) (string, error) {
			return run(ctx, args)
		})
	}
	deployer.SetHooks(hooksRunner)
	svc.SetHooks(hooksRunner)
	svc.OnDestroy(deployer.Destroy)
	svc.OnDestroy(repos.Remove)
	svc.OnDestroy(certs.Forget)
	svc.OnRename(func(ctx context.Context, oldName, newName string) error {
		if err := deployer.Stop(ctx, oldName); err != nil {
			return err
		}
		if err := certs.Rename(ctx, oldName, newName); err != nil {
			return err
		}
		if err := deployer.RenameSites(ctx, oldName, newName); err != nil {
			return err
		}
		return repos.Rename(ctx, oldName, newName)
	})
	// Leftover build dirs of a daemon that was killed mid-build.
	os.RemoveAll(filepath.Join(cfg.DataDir, "builds"))

	svcs := &services.Manager{Store: db, Runtime: rt, Env: svc, Settings: db, BackupDir: filepath.Join(cfg.DataDir, "backups")}

	// Mirroring remote repositories: webhooks queue deploys, run one at a
	// time per app by the queue, each a sync then a deploy.
	mirror := &gitserver.Mirror{Repos: repos, Apps: svc, Store: db, Deployer: deployer, KnownHosts: gitserver.KnownHostsPath(cfg.DataDir)}
	queueLog := log.With().Str("component", "queue").Logger()
	queue := apps.NewQueue(db, mirror.RunJob, &queueLog, apps.QueueConfig{
		Timeout: func(ctx context.Context, app string) time.Duration {
			v, err := svc.Setting(ctx, app, "git", apps.GitDeployTimeout, "")
			if d, perr := time.ParseDuration(v); err == nil && perr == nil && d > 0 {
				return d
			}
			return apps.DefaultJobTimeout
		},
		Out: func(j apps.DeployJob) io.Writer {
			return logWriter{log: deployLog.With().Str("app", j.App).Int64("job", j.ID).Logger()}
		},
	})

	reg := commands.NewRegistry()
	commands.RegisterCore(reg, commands.Deps{Apps: svc, Deployer: deployer, Version: version, DataDir: cfg.DataDir, Certs: certs, Services: services.API{M: svcs}, Repos: repos,
		Mirrors: commands.MirrorDeps{Mirror: mirror, Queue: queue, Store: db, WebhookBase: webhookBase(cfg),
			ValidateURL: gitserver.ValidateSourceURL, GenerateKey: gitserver.GenerateDeployKey, RedactURL: gitserver.RedactURL},
		Registries: commands.RegistryDeps{Store: db, Check: checkLogin}})
	pluginMgr.Reserved = func(name string) bool {
		return reg.HasNamespace(name) || name == "help" || name == "hook" || name == "plugin"
	}
	plugins.Register(reg, pluginMgr)

	hostKey, err := gitserver.LoadOrCreateHostKey(filepath.Join(cfg.DataDir, "ssh_host_ed25519_key"))
	if err != nil {
		return err
	}
	var d daemon
	d.proxy = prx
	d.ctl = ctl
	sshLog := log.With().Str("component", "ssh").Logger()
	d.ssh = gitserver.NewSSH(sshLn, hostKey, db, func(ctx context.Context, c gitserver.Call) int {
		return reg.Run(ctx, &commands.Session{Stdin: c.Stdin, Stdout: c.Stdout, Stderr: c.Stderr, User: c.User}, c.Args)
	}, sshLog)
	d.ssh.Git = access

	apiLog := log.With().Str("component", "api").Logger()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	gitHTTP := &gitserver.HTTP{Access: access, Tokens: db, Log: apiLog}
	mux.Handle("GET /metrics", gitHTTP.TokenOrLoopback(metricsHandler(prx, tlsMgr)))
	mux.Handle("/webhooks/", &gitserver.Webhooks{Apps: svc, Deliveries: db, Queue: queue, Log: apiLog})
	mux.Handle("/", gitHTTP)
	d.api = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}

	pushes := &gitserver.Pushes{Apps: svc, Repos: repos, Deployer: deployer, Log: log.With().Str("component", "git").Logger()}
	handle = func(ctx context.Context, req control.Request, st control.Streams) int {
		if len(req.Args) == 2 && req.Args[0] == "hook" && req.Args[1] == "pre-receive" {
			return pushes.PreReceive(ctx, req.Env, st.Stdin, st.Stdout, st.Stderr)
		}
		return reg.Run(ctx, &commands.Session{Stdin: st.Stdin, Stdout: st.Stdout, Stderr: st.Stderr, User: "admin", Admin: true, Dir: req.Dir}, req.Args)
	}
	lns.handOff() // the servers own the listeners from here on

	if err := deployer.Restore(ctx); err != nil {
		log.Warn().Err(err).Msg("restore routes")
	}
	if tlsMgr != nil {
		tlsMgr.Preload(ctx)
	}
	if err := svcs.Restore(ctx); err != nil {
		log.Warn().Err(err).Msg("restore services")
	}
	svcLog := log.With().Str("component", "services").Logger()
	go (&services.Scheduler{M: svcs, Log: svcLog.Printf}).Run(ctx)
	if err := queue.Start(ctx); err != nil {
		log.Warn().Err(err).Msg("deploy queue")
	}

	errc := make(chan error, 5)
	go func() { errc <- d.ssh.Serve() }()
	go func() { errc <- d.ctl.Serve() }()
	if tlsMgr != nil {
		go func() { errc <- tlsMgr.ServeHTTPWithACME(httpLn) }()
		go func() { errc <- tlsMgr.ServeHTTPS(httpsLn) }()
	} else {
		go func() { errc <- prx.Serve(httpLn) }()
	}
	go func() {
		if err := d.api.Serve(apiLn); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	log.Info().Str("version", version).Str("data_dir", cfg.DataDir).
		Str("ssh", d.ssh.Addr().String()).Str("http", httpLn.Addr().String()).
		Str("api", apiLn.Addr().String()).Str("https", addrOf(httpsLn)).Str("socket", cfg.SocketPath()).
		Str("domain", cfg.Domain).Msg("rivetr started")
	// Start-up (package init, migrations, wiring, restoring routes) leaves
	// garbage an idle daemon never reuses; collect it and give the pages
	// back now rather than waiting for the background scavenger.
	debug.FreeOSMemory()

	var serveErr error
	select {
	case <-ctx.Done():
		log.Info().Msg("shutting down")
	case serveErr = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	d.ssh.Shutdown(shutdownCtx)
	d.ctl.Close(shutdownCtx)
	d.api.Shutdown(shutdownCtx)
	prx.Shutdown(shutdownCtx)
	waitDone := make(chan struct{})
	go func() { queue.Wait(); deployer.Wait(); close(waitDone) }()
	select {
	case <-waitDone:
	case <-shutdownCtx.Done():
	}
	if serveErr != nil {
		return serveErr
	}
	log.Info().Msg("rivetr stopped")
	return nil
}

// webhookBase is the API's URL as git hosts should call it: the API
// listener's host when it names one, else the global domain.
func webhookBase(cfg settings.Config) string {
	host, port, _ := net.SplitHostPort(cfg.APIAddr)
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = cfg.Domain
	}
	return "http://" + net.JoinHostPort(host, port)
}

// logWriter turns a queued deploy's output into log lines.
type logWriter struct{ log zerolog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			w.log.Debug().Msg(line)
		}
	}
	return len(p), nil
}

// addrOf is ln's address, or "off" for none.
func addrOf(ln net.Listener) string {
	if ln == nil {
		return "off"
	}
	return ln.Addr().String()
}

// metricsHandler serves /metrics in the Prometheus text format: the
// proxy's counters and, with HTTPS on, certificate expiries.
func metricsHandler(prx *proxy.Proxy, t *proxy.TLS) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		var buf bytes.Buffer
		if err := prx.WriteMetrics(&buf); err == nil && t != nil {
			t.WriteMetrics(&buf)
		}
		w.Write(buf.Bytes())
	})
}

// listeners closes what it opened unless handed off to the servers.
type listeners struct{ open []net.Listener }

func (l *listeners) listen(what, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listen on %s: %w", what, addr, err)
	}
	l.open = append(l.open, ln)
	return ln, nil
}

func (l *listeners) handOff() { l.open = nil }

func (l *listeners) closeAll() {
	for _, ln := range l.open {
		ln.Close()
	}
}

// publicURL renders an app's URL from the proxy's HTTP address.
func publicURL(httpAddr string) func(host string) string {
	_, port, _ := net.SplitHostPort(httpAddr)
	return func(host string) string {
		if port == "" || port == "80" {
			return "http://" + host
		}
		return "http://" + host + ":" + port
	}
}

// parseUlimits reads the ulimits setting: "" for the engine's defaults,
// "none" for none, else name=soft[:hard],...
func parseUlimits(s string) ([]engine.Ulimit, error) {
	switch s {
	case "":
		return nil, nil
	case "none":
		return []engine.Ulimit{}, nil
	}
	var out []engine.Ulimit
	for _, part := range strings.Split(s, ",") {
		u, err := engine.ParseUlimit(part)
		if err != nil {
			return nil, fmt.Errorf("ulimits: %w", err)
		}
		out = append(out, u)
	}
	return out, nil
}

// noBuilder stands in when no engine answers: deploys stop before it.
type noBuilder struct{}

func (noBuilder) Build(context.Context, apps.BuildRequest) (string, error) {
	return "", errors.New("no container engine is available to build with")
}

// Plan detects without an engine: detection needs none.
func (noBuilder) Plan(ctx context.Context, req apps.BuildRequest) (apps.BuildPlan, error) {
	return buildpacks.Detect(req)
}
