package apps

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// currentFor returns the deployed release of app, or an error saying the
// app must be deployed first.
func (d *Deployer) currentFor(ctx context.Context, app string) (Release, error) {
	rel, err := d.deployedFor(ctx, app)
	if err == nil && rel.Builder == BuilderCompose {
		return Release{}, Errorf(ErrNoRelease, "App %s is a compose app: one-off runs need one image; use enter APP SERVICE to reach a service's container", app)
	}
	return rel, err
}

// deployedFor is currentFor that lets compose releases through (their
// containers can be listed, entered and logged).
func (d *Deployer) deployedFor(ctx context.Context, app string) (Release, error) {
	if _, err := d.svc.App(ctx, app); err != nil {
		return Release{}, err
	}
	if d.runtime == nil {
		return Release{}, Errorf(ErrDeployFailed, "No container engine is available")
	}
	rel, ok, err := d.svc.store.CurrentRelease(ctx, app)
	if err != nil {
		return Release{}, err
	}
	if !ok {
		return Release{}, Errorf(ErrNoRelease, "App %s has not been deployed", app)
	}
	if rel.Builder == BuilderStatic {
		return Release{}, Errorf(ErrNoRelease, "App %s is a static site served by the proxy: it has no containers to run commands in", app)
	}
	return rel, nil
}

// oneOffSpec is the spec of a one-off container of the current release,
// with the app's current config plus env overrides.
func (d *Deployer) oneOffSpec(ctx context.Context, app string, cmd []string, env map[string]string) (ContainerSpec, error) {
	rel, err := d.currentFor(ctx, app)
	if err != nil {
		return ContainerSpec{}, err
	}
	cur, err := d.svc.MergedEnv(ctx, app)
	if err != nil {
		return ContainerSpec{}, err
	}
	for k, v := range env {
		if err := ValidateEnvKey(k); err != nil {
			return ContainerSpec{}, err
		}
		if err := ValidateEnvValue(k, v); err != nil {
			return ContainerSpec{}, err
		}
		cur[k] = v
	}
	rel.Env = cur
	spec, err := d.containerSpec(ctx, &rel, proc{typ: "run", index: 1, cmd: cmd})
	if err != nil {
		return ContainerSpec{}, err
	}
	if err := d.applyRunArgs(ctx, "docker-args-run", app, io.Discard, &spec, app, rel.Image); err != nil {
		return ContainerSpec{}, err
	}
	spec.Name = fmt.Sprintf("%s.run.%s", app, randomHex(8))
	spec.RestartPolicy = "no"
	spec.Env["DYNO"] = "run.1"
	return spec, nil
}

// RunOneOff runs cmd in a new container of the app's current release with
// the streams attached; the container is removed afterwards and its exit
// status returned.
func (d *Deployer) RunOneOff(ctx context.Context, app string, cmd []string, env map[string]string, st Streams, tty bool) (int, error) {
	spec, err := d.oneOffSpec(ctx, app, cmd, env)
	if err != nil {
		return 1, err
	}
	spec.Stdin = st.Stdin != nil
	spec.TTY = tty
	return d.runtime.RunAttached(ctx, spec, st)
}

// RunDetached starts cmd in a background one-off container and returns
// its name; `run:list` shows it, it is not restarted, and it stays until
// it exits (then removed with the app).
func (d *Deployer) RunDetached(ctx context.Context, app string, cmd []string, env map[string]string) (string, error) {
	spec, err := d.oneOffSpec(ctx, app, cmd, env)
	if err != nil {
		return "", err
	}
	c, err := d.runtime.Run(ctx, spec)
	if err != nil {
		return "", err
	}
	return c.Name, nil
}

// OneOffs lists the app's one-off containers.
func (d *Deployer) OneOffs(ctx context.Context, app string) ([]Container, error) {
	if _, err := d.currentFor(ctx, app); err != nil {
		return nil, err
	}
	return d.runtime.List(ctx, map[string]string{LabelApp: app, LabelProcess: "run"})
}

// Processes lists the app's containers of its current release, by name.
func (d *Deployer) Processes(ctx context.Context, app string) ([]Container, error) {
	rel, err := d.deployedFor(ctx, app)
	if err != nil {
		return nil, err
	}
	labels := map[string]string{LabelApp: app, LabelRelease: strconv.Itoa(rel.Number)}
	if rel.Builder == BuilderCompose {
		delete(labels, LabelRelease) // unchanged services keep older containers
	}
	list, err := d.runtime.List(ctx, labels)
	if err != nil {
		return nil, err
	}
	list = slices.DeleteFunc(list, func(c Container) bool { return c.Labels[LabelProcess] == "run" })
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list, nil
}

// Enter runs cmd in a running container of the app: the one named by
// container (a name or ID), else the first of process type typ.
func (d *Deployer) Enter(ctx context.Context, app, typ, container string, cmd []string, st Streams, tty bool) (int, error) {
	list, err := d.Processes(ctx, app)
	if err != nil {
		return 1, err
	}
	for _, c := range list {
		if !c.Running {
			continue
		}
		if container != "" && c.ID != container && !strings.HasPrefix(c.ID, container) && c.Name != container {
			continue
		}
		if container == "" && c.Labels[LabelProcess] != typ {
			continue
		}
		return d.runtime.Exec(ctx, c.ID, cmd, tty, st)
	}
	if container != "" {
		return 1, Errorf(ErrInvalidValue, "No running container %s of %s", container, app)
	}
	return 1, Errorf(ErrInvalidValue, "No running %s container of %s", typ, app)
}

// Logs writes the output of the app's containers (of process type typ if
// set), each line prefixed "app[web.1]: " unless quiet; with Follow it
// streams until ctx ends.
func (d *Deployer) Logs(ctx context.Context, app, typ string, opts LogOptions, quiet bool, out io.Writer) error {
	list, err := d.Processes(ctx, app)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	w := &LockedWriter{W: out}
	errs := make(chan error, len(list))
	n := 0
	for _, c := range list {
		if typ != "" && c.Labels[LabelProcess] != typ {
			continue
		}
		n++
		name := strings.TrimSuffix(strings.TrimPrefix(c.Name, app+"."), ".v"+c.Labels[LabelRelease])
		prefix := ""
		if !quiet {
			prefix = app + "[" + name + "]: "
		}
		pw := &prefixWriter{w: w, prefix: prefix}
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			defer pw.flush()
			if err := d.runtime.Logs(ctx, id, opts, Streams{Stdout: pw, Stderr: pw}); err != nil && ctx.Err() == nil {
				errs <- err
			}
		}(c.ID)
	}
	if n == 0 {
		if typ != "" {
			return Errorf(ErrInvalidValue, "No %s containers of %s", typ, app)
		}
		return Errorf(ErrInvalidValue, "No containers of %s are running", app)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// prefixWriter writes whole lines, each with a prefix.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := strings.IndexByte(string(p.buf), '\n')
		if i < 0 {
			break
		}
		if _, err := io.WriteString(p.w, p.prefix+string(p.buf[:i+1])); err != nil {
			return 0, err
		}
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}

func (p *prefixWriter) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.buf) > 0 {
		io.WriteString(p.w, p.prefix+string(p.buf)+"\n")
		p.buf = nil
	}
}

// ParseEnvFlags reads leading `-e K=V` / `--env K=V` flags of run.
func ParseEnvFlags(args []string) (map[string]string, []string, error) {
	env := map[string]string{}
	for len(args) > 0 {
		a := args[0]
		var kv string
		switch {
		case a == "-e" || a == "--env":
			if len(args) < 2 {
				return nil, nil, Errorf(ErrInvalidValue, "%s needs KEY=VALUE", a)
			}
			kv, args = args[1], args[2:]
		case strings.HasPrefix(a, "--env="):
			kv, args = strings.TrimPrefix(a, "--env="), args[1:]
		case a == "--":
			return env, args[1:], nil
		default:
			return env, args, nil
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, nil, Errorf(ErrInvalidValue, "Invalid env %q: want KEY=VALUE", kv)
		}
		if err := ValidateEnvKey(k); err != nil {
			return nil, nil, err
		}
		env[k] = v
	}
	return env, args, nil
}

// CheckNow runs the current release's checks against its running
// containers (of process type typ if set), as checks:run does.
func (d *Deployer) CheckNow(ctx context.Context, app, typ string, out io.Writer) error {
	rel, err := d.currentFor(ctx, app)
	if err != nil {
		return err
	}
	man := manifests{procfile: rel.Procfile, appJSONRaw: rel.AppJSON, checks: rel.Checks}
	if err := man.parse(); err != nil {
		return err
	}
	list, err := d.Processes(ctx, app)
	if err != nil {
		return err
	}
	var started []Container
	for _, c := range list {
		if c.Running && c.Labels[LabelProcess] != "run" && (typ == "" || c.Labels[LabelProcess] == typ) {
			started = append(started, c)
		}
	}
	if len(started) == 0 {
		return Errorf(ErrInvalidValue, "No running containers of %s to check", app)
	}
	cfg, err := d.checkSettings(ctx, app)
	if err != nil {
		return err
	}
	cfg.disabledTypes, cfg.skippedTypes = nil, nil // an explicit run checks everything
	return d.checkAll(ctx, &rel, man, started, cfg, out)
}
