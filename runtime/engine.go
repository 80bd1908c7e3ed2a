package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/client"
	"github.com/rs/zerolog"

	"github.com/rivetr/rivetr/apps"
)

// Engine kinds, as Name reports them and Options.Runtime forces them.
const (
	Docker = "docker"
	Podman = "podman"
	Auto   = "auto"
)

// pingTimeout bounds the wait for each candidate socket during Detect.
const pingTimeout = 3 * time.Second

// ErrNotFound is wrapped by errors about a container that does not exist
// (Inspect, Stop).
var ErrNotFound = errors.New("not found")

// Ulimit is one resource limit set on every container, e.g.
// {Name: "nofile", Soft: 65536, Hard: 65536}.
type Ulimit struct {
	Name string
	Soft int64
	Hard int64
}

// String formats u as ParseUlimit reads it: "nofile=1024:4096".
func (u Ulimit) String() string {
	return fmt.Sprintf("%s=%d:%d", u.Name, u.Soft, u.Hard)
}

// ParseUlimit reads "NAME=SOFT[:HARD]" (Docker's --ulimit syntax), e.g.
// "nofile=65536:65536" or "nproc=4096"; HARD defaults to SOFT.
func ParseUlimit(s string) (Ulimit, error) {
	name, val, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok || name == "" || val == "" {
		return Ulimit{}, fmt.Errorf("ulimit %q: want NAME=SOFT[:HARD]", s)
	}
	softS, hardS, hasHard := strings.Cut(val, ":")
	soft, err := strconv.ParseInt(softS, 10, 64)
	if err != nil {
		return Ulimit{}, fmt.Errorf("ulimit %q: soft limit: %w", s, err)
	}
	hard := soft
	if hasHard {
		if hard, err = strconv.ParseInt(hardS, 10, 64); err != nil {
			return Ulimit{}, fmt.Errorf("ulimit %q: hard limit: %w", s, err)
		}
	}
	if soft > hard && hard >= 0 {
		return Ulimit{}, fmt.Errorf("ulimit %q: soft limit above hard limit", s)
	}
	return Ulimit{Name: name, Soft: soft, Hard: hard}, nil
}

// DefaultUlimits are the ulimits containers get when Options.DefaultUlimits
// is nil: nofile 65536:65536 and nproc 32768:32768, each lowered to this
// process's own hard limit when that is smaller.
//
// Setting them at all matters on hosts without CAP_SYS_RESOURCE (such as
// rivetr's build VMs): Podman 4 then gives containers higher defaults than
// it may set, and no container starts; and raising a limit above the
// engine's own hard limit fails there with either engine. The cap assumes
// the engine runs with limits like rivetr's; set Options.DefaultUlimits
// where it does not.
func DefaultUlimits() []Ulimit {
	lim := func(name string, want, hard int64) Ulimit {
		if hard > 0 && hard < want {
			want = hard
		}
		return Ulimit{Name: name, Soft: want, Hard: want}
	}
	nofile, nproc := hardLimits()
	return []Ulimit{lim("nofile", 65536, nofile), lim("nproc", 32768, nproc)}
}

// Options configure Detect.
type Options struct {
	// Runtime is "auto" (or empty), "docker" or "podman". A forced kind
	// accepts only an engine of that kind and fails when none answers.
	Runtime string
	// DefaultUlimits are set on every container. Nil means
	// DefaultUlimits(); an empty non-nil slice sets none.
	DefaultUlimits []Ulimit
	// PublishLoopback publishes every container's port on 127.0.0.1 even
	// when the network looks reachable from the host. Rivetr turns this on
	// by itself for rootless engines.
	PublishLoopback bool
	// Log receives operational logs (detection, fallbacks).
	Log zerolog.Logger
	// RegistryLogins, if set, lists the registry logins builds pull their
	// base images with (registry:login).
	RegistryLogins func(context.Context) ([]apps.RegistryLogin, error)
}

// Engine is a container engine reached through the Docker Engine API. It
// implements apps.Runtime and apps.ImageBuilder and is safe for concurrent
// use.
type Engine struct {
	cli      *client.Client
	kind     string
	host     string
	version  string
	rootless bool
	ulimits  []Ulimit
	log      zerolog.Logger

	// loopback: publish ports on 127.0.0.1 rather than rely on the
	// container's network address (rootless engine, or found unreachable).
	loopback atomic.Bool
	reaches  func(netip.Addr) bool // hostReaches; tests replace it

	logins func(context.Context) ([]apps.RegistryLogin, error) // Options.RegistryLogins

	network string // apps.Network; tests use their own
	netMu   sync.Mutex
	netIDs  map[string]string // IDs of the networks once ensured, by name
}

var (
	_ apps.Runtime      = (*Engine)(nil)
	_ apps.ImageBuilder = (*Engine)(nil)
)

// candidate is one place an engine may listen.
type candidate struct {
	host    string // client host URL, e.g. unix:///var/run/docker.sock
	fromEnv bool   // taken from DOCKER_HOST: also honour DOCKER_TLS_* and DOCKER_API_VERSION
}

// candidates lists, in order, where Detect looks for an engine.
func candidates() []candidate {
	var cs []candidate
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		cs = append(cs, candidate{host: h, fromEnv: true})
	}
	cs = append(cs,
		candidate{host: "unix:///var/run/docker.sock"},
		candidate{host: "unix:///run/podman/podman.sock"},
	)
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
		cs = append(cs, candidate{host: "unix://" + filepath.Join(x, "podman", "podman.sock")})
	}
	return cs
}

// Detect finds and connects to the container engine (see the package
// documentation for the order). The caller closes the Engine.
func Detect(ctx context.Context, opts Options) (*Engine, error) {
	return detect(ctx, opts, candidates())
}

func detect(ctx context.Context, opts Options, cands []candidate) (*Engine, error) {
	want := opts.Runtime
	if want == "" {
		want = Auto
	}
	if !slices.Contains([]string{Auto, Docker, Podman}, want) {
		return nil, fmt.Errorf("runtime: unknown engine %q (use auto, docker or podman)", opts.Runtime)
	}
	var tried []string
	var errs []error
	seen := map[string]bool{}
	for _, c := range cands {
		if seen[c.host] {
			continue
		}
		seen[c.host] = true
		e, err := connect(ctx, c, opts)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s (%s)", c.host, firstLine(err.Error())))
			errs = append(errs, err)
			continue
		}
		if want != Auto && e.kind != want {
			tried = append(tried, fmt.Sprintf("%s (is %s)", c.host, e.kind))
			e.Close()
			continue
		}
		opts.Log.Info().Str("engine", e.kind).Str("host", e.host).Str("version", e.version).
			Bool("rootless", e.rootless).Bool("loopback_ports", e.loopback.Load()).Msg("container engine found")
		return e, nil
	}
	what := "container engine"
	if want != Auto {
		what = want + " engine"
	}
	if len(tried) == 0 {
		return nil, fmt.Errorf("runtime: no %s found: no socket to try", what)
	}
	return nil, &detectError{
		msg:  fmt.Sprintf("runtime: no %s answered; tried %s", what, strings.Join(tried, ", ")),
		errs: errs,
	}
}

// detectError says, on one line, which sockets Detect tried and why each
// failed; it wraps every candidate's error.
type detectError struct {
	msg  string
	errs []error
}

func (e *detectError) Error() string   { return e.msg }
func (e *detectError) Unwrap() []error { return e.errs }

// connect pings one candidate and, when it answers, identifies it.
func connect(ctx context.Context, c candidate, opts Options) (*Engine, error) {
	if path, ok := strings.CutPrefix(c.host, "unix://"); ok {
		if _, err := os.Stat(path); err != nil {
			return nil, noSocket{err}
		}
	}
	clientOpts := []client.Opt{client.WithHost(c.host)}
	if c.fromEnv {
		clientOpts = []client.Opt{client.FromEnv}
	}
	cli, err := client.New(clientOpts...)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if _, err := cli.Ping(pctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		cli.Close()
		return nil, err
	}
	ver, err := cli.ServerVersion(pctx, client.ServerVersionOptions{})
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("version: %w", err)
	}
	info, err := cli.Info(pctx, client.InfoOptions{})
	if err != nil {
		cli.Close()
		return nil, fmt.Errorf("info: %w", err)
	}
	e := &Engine{
		cli:     cli,
		kind:    Docker,
		host:    cli.DaemonHost(),
		version: ver.Version,
		ulimits: opts.DefaultUlimits,
		network: apps.Network,
		reaches: hostReaches,
		log:     opts.Log.With().Str("component", "runtime").Logger(),
		logins:  opts.RegistryLogins,
	}
	if e.ulimits == nil {
		e.ulimits = DefaultUlimits()
	}
	if isPodman(ver) {
		e.kind = Podman
	}
	for _, so := range info.Info.SecurityOptions {
		if strings.Contains(so, "name=rootless") {
			e.rootless = true
		}
	}
	e.loopback.Store(opts.PublishLoopback || e.rootless)
	return e, nil
}

// isPodman tells Podman's Docker-compatible API from Docker's own.
func isPodman(v client.ServerVersionResult) bool {
	if strings.Contains(strings.ToLower(v.Platform.Name), "podman") {
		return true
	}
	for _, c := range v.Components {
		if strings.Contains(strings.ToLower(c.Name), "podman") {
			return true
		}
	}
	return false
}

// Name is "docker" or "podman".
func (e *Engine) Name() string { return e.kind }

// Host is the API address the engine was reached on, e.g.
// unix:///var/run/docker.sock.
func (e *Engine) Host() string { return e.host }

// Close releases the client's connections.
func (e *Engine) Close() error { return e.cli.Close() }

// errorf prefixes an error with the engine's name: "docker: create
// container web.1: ...".
func (e *Engine) errorf(format string, args ...any) error {
	return fmt.Errorf(e.kind+": "+format, args...)
}

// noSocket is a candidate whose socket file is absent; the path is
// already in the message Detect builds.
type noSocket struct{ err error }

func (e noSocket) Error() string { return "no socket" }
func (e noSocket) Unwrap() error { return e.err }

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
