package buildpacks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/rivetr/rivetr/apps"
)

// ComposeFiles are the compose file names looked for at the root, in
// Docker Compose's order.
var ComposeFiles = []string{"compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"}

// engineSockets are the container engine's sockets a template may mount
// (BuildRequest.EngineSocketFor).
var engineSockets = map[string]bool{"/var/run/docker.sock": true, "/run/podman/podman.sock": true}

// composeFile returns the compose file of dir, or "".
func composeFile(dir string) string {
	for _, f := range ComposeFiles {
		if isFile(dir, f) {
			return f
		}
	}
	return ""
}

// loadCompose parses a compose file with compose-go (interpolation from
// env, extends, profiles off) and resolves it for rivetr: services in
// dependency order, images to build, named volumes, the web service.
func loadCompose(ctx context.Context, req apps.BuildRequest) (*types.Project, apps.ComposeProject, error) {
	var out apps.ComposeProject
	file := composeFile(req.Dir)
	if file == "" {
		return nil, out, fmt.Errorf("%w: no compose file (%s) at the root of the pushed code", ErrNoBuilder, strings.Join(ComposeFiles, ", "))
	}
	env := types.Mapping{}
	for k, v := range req.Env {
		env[k] = v
	}
	raw, err := os.ReadFile(filepath.Join(req.Dir, file))
	if err != nil {
		return nil, out, err
	}
	sum := sha256.Sum256(raw)
	socketOK := req.EngineSocketFor != "" && req.EngineSocketFor == hex.EncodeToString(sum[:])
	p, err := loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  req.Dir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(req.Dir, file)}},
		Environment: env,
	}, func(o *loader.Options) {
		o.SetProjectName(strings.ReplaceAll(req.App, ".", "-"), true)
		o.ResolvePaths = true
	})
	if err != nil {
		return nil, out, fmt.Errorf("%s: %w", file, err)
	}
	names := make([]string, 0, len(p.Services))
	for n := range p.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	order, err := startOrder(p, names)
	if err != nil {
		return nil, out, err
	}
	out.Web, err = webService(p, names)
	if err != nil {
		return nil, out, err
	}
	for _, n := range order {
		svc := p.Services[n]
		if err := apps.ValidateServiceName(n); err != nil {
			return nil, out, fmt.Errorf("%s: service name %q: use letters, digits, _ and -", file, n)
		}
		s := apps.ComposeService{
			Name: n, Image: svc.Image, Command: svc.Command, Entrypoint: svc.Entrypoint,
			Env: map[string]string{}, Restart: composeRestart(svc.Restart), User: svc.User,
		}
		if svc.Build != nil {
			s.Image, s.Built = fmt.Sprintf("%s-%s", req.Tag, n), true
		} else if s.Image == "" {
			return nil, out, fmt.Errorf("%s: service %s has neither image nor build", file, n)
		}
		for k, v := range svc.Environment {
			switch {
			case v != nil:
				s.Env[k] = *v
			case req.Env[k] != "":
				s.Env[k] = req.Env[k]
			}
		}
		for _, v := range svc.Volumes {
			switch v.Type {
			case types.VolumeTypeVolume:
				if v.Source == "" {
					return nil, out, fmt.Errorf("%s: service %s: anonymous volume %s: name it (top-level volumes:) so its data is kept", file, n, v.Target)
				}
				s.Volumes = append(s.Volumes, apps.Mount{Source: "rivetr." + req.App + "." + v.Source, Target: v.Target, Volume: true, ReadOnly: v.ReadOnly})
			case types.VolumeTypeBind:
				if socketOK && engineSockets[v.Source] {
					s.Volumes = append(s.Volumes, apps.Mount{Source: v.Source, Target: v.Target, ReadOnly: v.ReadOnly})
					continue
				}
				fallthrough
			default:
				return nil, out, fmt.Errorf("%s: service %s: %s mount of %s: only named volumes are supported (a host path would reach outside the app)", file, n, v.Type, v.Target)
			}
		}
		if len(svc.DependsOn) > 0 {
			s.DependsOn = map[string]string{}
			for dep, cfg := range svc.DependsOn {
				cond := cfg.Condition
				if cond == "" {
					cond = apps.ConditionStarted
				}
				s.DependsOn[dep] = cond
			}
		}
		if h := svc.HealthCheck; h != nil && !h.Disable && len(h.Test) > 0 && h.Test[0] != "NONE" {
			s.Health = composeHealth(n, h)
		}
		if n == out.Web {
			s.Port = servicePort(svc)
			if s.Port == 0 {
				return nil, out, fmt.Errorf("%s: web service %s has no port: add ports: or expose:", file, n)
			}
		}
		out.Services = append(out.Services, s)
	}
	return p, out, nil
}

// startOrder sorts services so each comes after what it depends on.
func startOrder(p *types.Project, names []string) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n string, path []string) error
	visit = func(n string, path []string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("compose: depends_on cycle: %s", strings.Join(append(path, n), " -> "))
		case 2:
			return nil
		}
		svc, ok := p.Services[n]
		if !ok {
			return fmt.Errorf("compose: %s depends on unknown service %s", path[len(path)-1], n)
		}
		state[n] = 1
		deps := make([]string, 0, len(svc.DependsOn))
		for d := range svc.DependsOn {
			deps = append(deps, d)
		}
		sort.Strings(deps)
		for _, d := range deps {
			if err := visit(d, append(path, n)); err != nil {
				return err
			}
		}
		state[n] = 2
		order = append(order, n)
		return nil
	}
	for _, n := range names {
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// webService is the routed service: the one labelled rivetr.web=true, else
// the only one with a port, else the one named web, else the first (by
// name) with a port. "" when none has a port.
func webService(p *types.Project, names []string) (string, error) {
	var labelled, withPort []string
	for _, n := range names {
		svc := p.Services[n]
		if svc.Labels["rivetr.web"] == "true" {
			labelled = append(labelled, n)
		}
		if servicePort(svc) > 0 {
			withPort = append(withPort, n)
		}
	}
	switch {
	case len(labelled) > 1:
		return "", fmt.Errorf("compose: several services are labelled rivetr.web=true (%s)", strings.Join(labelled, ", "))
	case len(labelled) == 1:
		return labelled[0], nil
	case len(withPort) == 1:
		return withPort[0], nil
	case slices.Contains(withPort, "web"):
		return "web", nil
	case len(withPort) > 0:
		return withPort[0], nil
	}
	return "", nil
}

// servicePort is the container port of a service's first ports: or
// expose: entry. Published host ports are ignored: the proxy routes.
func servicePort(svc types.ServiceConfig) int {
	for _, p := range svc.Ports {
		if p.Target > 0 {
			return int(p.Target)
		}
	}
	for _, e := range svc.Expose {
		if n, err := strconv.Atoi(strings.Split(e, "/")[0]); err == nil && n > 0 {
			return n
		}
	}
	return 0
}

func composeRestart(r string) string {
	switch r {
	case "", "unless-stopped", "always", "no":
		return r
	}
	if strings.HasPrefix(r, "on-failure") {
		return r
	}
	return ""
}

// composeHealth turns a compose healthcheck into a command check.
func composeHealth(name string, h *types.HealthCheckConfig) *apps.Healthcheck {
	secs := func(d *types.Duration, def time.Duration) int {
		v := def
		if d != nil {
			v = time.Duration(*d)
		}
		return max(int((v+time.Second-1)/time.Second), 1)
	}
	cmd := []string(h.Test)
	switch cmd[0] {
	case "CMD":
		cmd = cmd[1:]
	case "CMD-SHELL":
		cmd = []string{"/bin/sh", "-c", strings.Join(cmd[1:], " ")}
	default:
		cmd = []string{"/bin/sh", "-c", strings.Join(cmd, " ")}
	}
	attempts := 3
	if h.Retries != nil {
		attempts = int(*h.Retries)
	}
	// The start period is time the checks may fail in: spread it over
	// more attempts at the interval.
	interval := secs(h.Interval, 30*time.Second)
	if h.Interval == nil {
		interval = 1 // compose's 30 s default would stall deploys
	}
	attempts += secs(h.StartPeriod, 0) / interval
	return &apps.Healthcheck{
		Name: name + " healthcheck", Command: cmd, Attempts: max(attempts, 1),
		Timeout: secs(h.Timeout, 30*time.Second), Wait: interval,
	}
}

// compose builds a compose app: every service with build: into
// TAG-SERVICE, then writes the resolved project for the rollout.
func (b *Builder) compose(ctx context.Context, req apps.BuildRequest) error {
	p, project, err := loadCompose(ctx, req)
	if err != nil {
		return err
	}
	for _, s := range project.Services {
		svc := p.Services[s.Name]
		if svc.Build == nil {
			continue
		}
		bctx := svc.Build.Context
		rel, err := filepath.Rel(req.Dir, bctx)
		if err != nil || !(rel == "." || filepath.IsLocal(rel)) {
			return fmt.Errorf("service %s: build context %s is outside the repository", s.Name, svc.Build.Context)
		}
		dockerfile := svc.Build.Dockerfile
		if dockerfile == "" {
			dockerfile = "Dockerfile"
		}
		if filepath.IsAbs(dockerfile) {
			if dockerfile, err = filepath.Rel(bctx, dockerfile); err != nil {
				return err
			}
		}
		args := map[string]string{}
		for k, v := range req.BuildArgs {
			args[k] = v
		}
		for k, v := range svc.Build.Args {
			if v != nil {
				args[k] = *v
			}
		}
		fmt.Fprintf(req.Out, "-----> Building service %s from %s\n", s.Name, filepath.Join(rel, dockerfile))
		if err := b.Images.BuildImage(ctx, apps.ImageBuild{
			Dir: bctx, Dockerfile: dockerfile, Tag: s.Image, Labels: req.Labels, BuildArgs: args, Out: req.Out,
		}); err != nil {
			return fmt.Errorf("service %s: %w", s.Name, err)
		}
	}
	if req.SiteDir == "" {
		return fmt.Errorf("compose: no release directory given")
	}
	os.RemoveAll(req.SiteDir)
	return apps.WriteCompose(req.SiteDir, project)
}

// composePlan describes a compose build for builder:plan.
func composePlan(req apps.BuildRequest, reason string) (apps.BuildPlan, error) {
	_, project, err := loadCompose(context.Background(), req)
	if err != nil {
		return apps.BuildPlan{}, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# %s, services in start order (web: %s)\n", composeFile(req.Dir), orNone(project.Web))
	for _, s := range project.Services {
		fmt.Fprintf(&b, "# %s: %s", s.Name, s.Image)
		if len(s.DependsOn) > 0 {
			var deps []string
			for d, c := range s.DependsOn {
				deps = append(deps, d+" ("+c+")")
			}
			sort.Strings(deps)
			fmt.Fprintf(&b, ", after %s", strings.Join(deps, ", "))
		}
		b.WriteString("\n")
	}
	return apps.BuildPlan{Builder: apps.BuilderCompose, Reason: reason, Dockerfile: b.String()}, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
