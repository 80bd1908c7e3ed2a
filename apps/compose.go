package apps

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// BuilderCompose marks a release made from a compose file: several
// services, one of them (Web) routed by the proxy.
const BuilderCompose = "compose"

// ComposeProject is a compose file as the compose builder resolved it:
// images built or named, services in start order (dependencies first).
type ComposeProject struct {
	Services []ComposeService `json:"services"`
	Web      string           `json:"web"` // the routed service; "" for none
}

// ComposeService is one service of a compose app.
type ComposeService struct {
	Name       string            `json:"name"`
	Image      string            `json:"image"`
	Command    []string          `json:"command,omitempty"`
	Entrypoint []string          `json:"entrypoint,omitempty"`
	Env        map[string]string `json:"env,omitempty"`
	Port       int               `json:"port,omitempty"`    // the port the web service listens on
	Volumes    []Mount           `json:"volumes,omitempty"` // named volumes (Source already rivetr.APP.NAME)
	DependsOn  map[string]string `json:"depends_on,omitempty"`
	Health     *Healthcheck      `json:"health,omitempty"` // the compose healthcheck as a command check
	Restart    string            `json:"restart,omitempty"`
	User       string            `json:"user,omitempty"`
	// Built services (build:) get the app's config, as the web service
	// does; image services only their own environment (a config change
	// or a new revision does not restart a database).
	Built bool `json:"built,omitempty"`
}

// Conditions of depends_on.
const (
	ConditionStarted   = "service_started"
	ConditionHealthy   = "service_healthy"
	ConditionCompleted = "service_completed_successfully"
)

// composeFile is where a compose release's project is kept.
const composeFile = "compose.json"

// composeNetwork is a compose app's own network, where its services find
// each other by name.
func composeNetwork(app string) string { return "rivetr-app-" + app }

// loadCompose reads the project of a compose release.
func (d *Deployer) loadCompose(rel *Release) (ComposeProject, error) {
	var p ComposeProject
	b, err := os.ReadFile(filepath.Join(d.siteDir(rel.App, rel.Image), composeFile))
	if err != nil {
		return p, Errorf(ErrDeployFailed, "The compose project of release %d is gone: push again", rel.Number)
	}
	return p, json.Unmarshal(b, &p)
}

// WriteCompose stores a compose project where a compose release keeps it
// (the compose builder calls it with BuildRequest.SiteDir).
func WriteCompose(dir string, p ComposeProject) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, composeFile), b, 0o644)
}

// serviceHash identifies what a service runs: an unchanged service keeps
// its container across deploys.
func serviceHash(s ComposeService, env map[string]string) string {
	b, _ := json.Marshal(struct {
		S   ComposeService
		Env map[string]string
	}{s, env})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

const labelComposeHash = "rivetr.compose.hash"

// ComposeAdminNS holds the compose settings only the server's admin sets:
// "engine-socket", the SHA-256 of the one compose file that may mount the
// container engine's socket (templates:deploy of such a template).
const ComposeAdminNS = "compose-admin"

// rolloutCompose deploys a compose release: services in dependency order
// on the app's network (each under its name), unchanged ones kept, each
// waited for as its dependents' depends_on conditions ask; the web service
// starts beside the old one, passes its healthcheck (or accepts
// connections), and takes the route in one swap; old and removed services
// retire.
func (d *Deployer) rolloutCompose(ctx context.Context, rel *Release, out io.Writer, logBuf *tailBuffer) error {
	fail := d.failer(ctx, rel, logBuf)
	p, err := d.loadCompose(rel)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(out, "-----> Releasing %s (compose: %d services)...\n", rel.App, len(p.Services))
	if _, err := d.hook(ctx, "pre-deploy", rel.App, out, rel.App, rel.Image); err != nil {
		return fail(err)
	}
	if err := d.runtime.EnsureNetwork(ctx); err != nil {
		return fail(err)
	}
	existing, err := d.runtime.List(ctx, map[string]string{LabelApp: rel.App})
	if err != nil {
		return fail(fmt.Errorf("list containers of %s: %w", rel.App, err))
	}
	existing = slices.DeleteFunc(existing, func(c Container) bool { return c.Labels[LabelProcess] == "run" })
	// service -> the strongest condition a dependent asks of it
	rank := map[string]int{ConditionStarted: 1, ConditionCompleted: 2, ConditionHealthy: 3}
	needs := map[string]string{}
	for _, s := range p.Services {
		for dep, cond := range s.DependsOn {
			if rank[cond] > rank[needs[dep]] {
				needs[dep] = cond
			}
		}
	}
	checkCfg, err := d.checkSettings(ctx, rel.App)
	if err != nil {
		return fail(err)
	}
	var started []Container // new containers, removed if the deploy fails
	keep := map[string]bool{}
	var webNew *Container
	failStarted := func(err error) error {
		for _, c := range started {
			d.runtime.Remove(context.WithoutCancel(ctx), c.ID)
		}
		return fail(err)
	}
	for _, s := range p.Services {
		env := map[string]string{}
		if s.Built || s.Name == p.Web {
			maps.Copy(env, rel.Env)
		}
		maps.Copy(env, s.Env)
		hash := serviceHash(s, env)
		isWeb := s.Name == p.Web
		if !isWeb {
			if c, ok := findService(existing, s.Name, hash); ok {
				fmt.Fprintf(out, "       %s: unchanged, kept\n", s.Name)
				keep[c.ID] = true
				continue
			}
			// Recreated: the old one stops first (it may hold a volume),
			// so it is not left for the retirement below.
			for _, c := range existing {
				if c.Labels[LabelProcess] == s.Name {
					d.stopRemove(context.WithoutCancel(ctx), c, rel.App)
					keep[c.ID] = true
				}
			}
		}
		spec := ContainerSpec{
			Name:          fmt.Sprintf("%s.%s.v%d", rel.App, s.Name, rel.Number),
			Image:         s.Image,
			Cmd:           append(slices.Clone(s.Entrypoint), s.Command...),
			Env:           env,
			Labels:        map[string]string{LabelApp: rel.App, LabelProcess: s.Name, LabelRelease: strconv.Itoa(rel.Number), labelComposeHash: hash},
			RestartPolicy: orString(s.Restart, "unless-stopped"),
			Mounts:        s.Volumes,
			Networks:      []NetworkAttachment{{Name: composeNetwork(rel.App), Aliases: []string{s.Name}}},
			StopTimeout:   d.cfg.StopTimeout,
		}
		if len(s.Entrypoint) == 0 && len(s.Command) == 0 {
			spec.Cmd = nil
		}
		if needs[s.Name] == ConditionCompleted {
			spec.RestartPolicy = "no"
		}
		if isWeb {
			spec.Port = s.Port
		}
		fmt.Fprintf(out, "-----> Starting %s (%s)\n", s.Name, s.Image)
		c, err := d.runtime.Run(ctx, spec)
		if err != nil {
			return failStarted(fmt.Errorf("start %s: %w", s.Name, err))
		}
		started = append(started, c)
		if isWeb {
			webNew = &started[len(started)-1]
		}
		if err := d.composeWait(ctx, rel, s, c, needs[s.Name], isWeb, out); err != nil {
			return failStarted(err)
		}
	}

	// Swap: the web service's new container takes the route.
	var ups []string
	if webNew != nil && webNew.Addr != "" {
		ups = []string{webNew.Addr}
	}
	hosts := d.setRoute(ctx, rel.App, ups)
	if err := d.svc.store.MarkDeployed(context.WithoutCancel(ctx), rel.App, rel.Number); err != nil {
		return fail(err)
	}
	d.log.Printf("%s v%d live: compose, web %q", rel.App, rel.Number, p.Web)
	if _, err := d.hook(ctx, "post-deploy", rel.App, out, rel.App, strconv.Itoa(webPortOf(p)), "", rel.Image); err != nil {
		fmt.Fprintf(out, " !     post-deploy hook: %v\n", err)
	}
	var old []Container
	for _, c := range existing {
		if !keep[c.ID] {
			old = append(old, c)
		}
	}
	d.retire(rel.App, old, checkCfg)
	d.pruneImages(context.WithoutCancel(ctx), rel.App)
	d.pruneSites(context.WithoutCancel(ctx), rel.App)
	if len(ups) > 0 && len(hosts) > 0 {
		fmt.Fprintf(out, "=====> Application deployed:\n")
		for _, h := range hosts {
			fmt.Fprintf(out, "       %s\n", d.cfg.URL(h))
		}
	} else {
		fmt.Fprintf(out, "=====> Application deployed (no routed web service)\n")
	}
	rel.Status = ReleaseDeployed
	rel.Log = logBuf.String()
	return d.svc.store.UpdateRelease(context.WithoutCancel(ctx), *rel)
}

func webPortOf(p ComposeProject) int {
	for _, s := range p.Services {
		if s.Name == p.Web {
			return s.Port
		}
	}
	return 0
}

func orString(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// findService returns a running container of service with hash.
func findService(cs []Container, service, hash string) (Container, bool) {
	for _, c := range cs {
		if c.Labels[LabelProcess] == service && c.Labels[labelComposeHash] == hash && c.Running {
			return c, true
		}
	}
	return Container{}, false
}

// composeWait waits for what the service's dependents (or, for the web
// service, the swap) need: healthy (its healthcheck passes), completed (it
// exits 0), or started.
func (d *Deployer) composeWait(ctx context.Context, rel *Release, s ComposeService, c Container, need string, web bool, out io.Writer) error {
	switch {
	case need == ConditionCompleted:
		fmt.Fprintf(out, "       Waiting for %s to complete\n", s.Name)
		code, err := d.runtime.Wait(ctx, c.ID)
		if err != nil {
			return err
		}
		if code != 0 {
			return Errorf(ErrDeployFailed, "%s exited with status %d; services depending on its completion cannot start", s.Name, code)
		}
		return nil
	case need == ConditionHealthy || web:
		var checks []Healthcheck
		if s.Health != nil {
			checks = []Healthcheck{*s.Health}
		} else if web {
			checks = []Healthcheck{{Name: "port listening check", Listening: true, Attempts: 30, Wait: 1, Timeout: 5}}
		}
		if need == ConditionHealthy && s.Health == nil {
			return Errorf(ErrDeployFailed, "%s has no healthcheck, but a service depends on it being healthy", s.Name)
		}
		target := CheckTarget{
			Name: "web." + s.Name,
			Addr: c.Addr,
			Running: func(ctx context.Context) (bool, error) {
				x, err := d.runtime.Inspect(ctx, c.ID)
				return x.Running, err
			},
			Exec: func(ctx context.Context, cmd []string) (int, string, error) {
				var b strings.Builder
				code, err := d.runtime.Exec(ctx, c.ID, cmd, false, Streams{Stdout: &b, Stderr: &b})
				return code, b.String(), err
			},
		}
		if !web {
			target.Name = s.Name + ".1"
		}
		if err := RunChecks(ctx, target, checks, 0, indent(out)); err != nil {
			return Errorf(ErrDeployFailed, "%s is not healthy: %v", s.Name, err)
		}
		return nil
	}
	// Started: it must at least not die at once.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(500 * time.Millisecond):
	}
	if x, err := d.runtime.Inspect(ctx, c.ID); err == nil && !x.Running && x.State != "restarting" {
		return Errorf(ErrDeployFailed, "%s stopped right after it started (%s)", s.Name, x.State)
	}
	return nil
}
