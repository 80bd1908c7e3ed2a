package services

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/rivetr/rivetr/apps"
)

// EnvStore is the part of the core's app service links need: the apps'
// config.
type EnvStore interface {
	App(ctx context.Context, name string) (apps.App, error)
	Env(ctx context.Context, scope string) (map[string]string, error)
	UpdateEnv(ctx context.Context, scope string, change apps.EnvChange) error
}

// Manager creates and runs services and links them to apps.
type Manager struct {
	Store   apps.ServiceStore
	Runtime apps.Runtime // nil when no engine answers: every command says so
	Env     EnvStore
	// ReadyTimeout bounds the wait for a new service to take connections.
	ReadyTimeout time.Duration
	// Settings keeps backup settings; BackupDir is where local backups go
	// (BackupDir/ENGINE/NAME).
	Settings  SettingsStore
	BackupDir string
}

// CreateOptions are create's flags.
type CreateOptions struct {
	Image, Version         string
	Password, RootPassword string
	CustomEnv              map[string]string
	Memory                 int64
}

// containerName, hostName and volumeName derive engine names from a
// validated service name.
func containerName(e *Engine, name string) string { return "rivetr." + e.Name + "." + name }

// HostName is the service's alias on the rivetr network.
func HostName(e *Engine, name string) string { return "rivetr-" + e.Name + "-" + name }

func volumeName(e *Engine, name string) string { return "rivetr." + e.Name + "." + name }

func (m *Manager) engine() error {
	if m.Runtime == nil {
		return apps.Errorf(apps.ErrDeployFailed, "No container engine is available: start Docker or Podman (see `rivetr serve` log)")
	}
	return nil
}

// secret is a random password of 32 hex characters (128 bits).
func secret() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

func instance(r apps.ServiceRecord) Instance {
	return Instance{Name: r.Name, Password: r.Password, RootPassword: r.RootPassword, CustomEnv: r.CustomEnv}
}

// Create makes a service: its record, volume and container, and waits
// until it takes connections. A failure removes what it made.
func (m *Manager) Create(ctx context.Context, e *Engine, name string, opt CreateOptions, out io.Writer) error {
	if err := apps.ValidateServiceName(name); err != nil {
		return err
	}
	if err := m.engine(); err != nil {
		return err
	}
	rec := apps.ServiceRecord{
		Engine: e.Name, Name: name, Image: orDefault(opt.Image, e.Image), Version: orDefault(opt.Version, e.Version),
		Password: orDefault(opt.Password, secret()), RootPassword: orDefault(opt.RootPassword, secret()),
		CustomEnv: opt.CustomEnv, Memory: opt.Memory, CreatedAt: time.Now().UTC().Truncate(time.Second),
	}
	if err := m.Store.CreateService(ctx, rec); err != nil {
		return err
	}
	fmt.Fprintf(out, "-----> Starting %s %s (%s:%s)\n", e.Title, name, rec.Image, rec.Version)
	if err := m.start(ctx, e, rec, out); err != nil {
		m.removeContainers(context.WithoutCancel(ctx), e, name)
		m.Runtime.RemoveVolume(context.WithoutCancel(ctx), volumeName(e, name))
		m.Store.DeleteService(context.WithoutCancel(ctx), e.Name, name)
		return err
	}
	fmt.Fprintf(out, "=====> %s container created: %s\n", e.Title, name)
	return nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// spec is the container of a service.
func (m *Manager) spec(e *Engine, rec apps.ServiceRecord) (apps.ContainerSpec, error) {
	in := instance(rec)
	spec := apps.ContainerSpec{
		Name:          containerName(e, rec.Name),
		Image:         rec.Image + ":" + rec.Version,
		Env:           e.Env(in),
		Labels:        map[string]string{apps.LabelService: rec.Name, apps.LabelProcess: e.Name},
		RestartPolicy: "unless-stopped",
		Aliases:       []string{HostName(e, rec.Name)},
		Mounts:        []apps.Mount{{Source: volumeName(e, rec.Name), Target: e.DataPath, Volume: true}},
		Resources:     apps.Resources{MemoryLimit: rec.Memory},
		StopTimeout:   30 * time.Second,
	}
	if e.Cmd != nil {
		spec.Cmd = e.Cmd(in)
	}
	for _, x := range rec.Exposed {
		b, err := parseBinding(x)
		if err != nil {
			return spec, err
		}
		spec.Publish = append(spec.Publish, b)
	}
	return spec, nil
}

// start runs the service's container (replacing one left over) and waits
// until it is ready.
func (m *Manager) start(ctx context.Context, e *Engine, rec apps.ServiceRecord, out io.Writer) error {
	spec, err := m.spec(e, rec)
	if err != nil {
		return err
	}
	m.removeContainers(ctx, e, rec.Name)
	c, err := m.Runtime.Run(ctx, spec)
	if err != nil {
		return fmt.Errorf("start %s %s: %w", e.Name, rec.Name, err)
	}
	fmt.Fprintf(out, "       Waiting for %s %s to take connections\n", e.Title, rec.Name)
	return m.waitReady(ctx, e, rec, c.ID)
}

// waitReady polls the engine's readiness probe inside the container.
func (m *Manager) waitReady(ctx context.Context, e *Engine, rec apps.ServiceRecord, id string) error {
	timeout := m.ReadyTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	probe := e.Ready(instance(rec))
	var last string
	for {
		var buf bytes.Buffer
		code, err := m.Runtime.Exec(ctx, id, probe, false, apps.Streams{Stdout: &buf, Stderr: &buf})
		if err == nil && code == 0 {
			return nil
		}
		last = strings.TrimSpace(buf.String())
		if c, ierr := m.Runtime.Inspect(ctx, id); ierr == nil && !c.Running && c.State != "restarting" {
			var logs bytes.Buffer
			m.Runtime.Logs(ctx, id, apps.LogOptions{Tail: 10}, apps.Streams{Stdout: &logs, Stderr: &logs})
			return fmt.Errorf("%s %s stopped while starting (%s); its last output:\n%s", e.Name, rec.Name, c.State, strings.TrimSpace(logs.String()))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s %s did not take connections within %s (last probe: %s)", e.Name, rec.Name, timeout, oneLine(last))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		return "no output"
	}
	return s
}

// containers are the service's containers.
func (m *Manager) containers(ctx context.Context, e *Engine, name string) ([]apps.Container, error) {
	return m.Runtime.List(ctx, map[string]string{apps.LabelService: name, apps.LabelProcess: e.Name})
}

// killContainers removes the service's containers at once (SIGKILL).
func (m *Manager) killContainers(ctx context.Context, e *Engine, name string) {
	cs, _ := m.containers(ctx, e, name)
	for _, c := range cs {
		m.Runtime.Remove(ctx, c.ID)
	}
}

// removeContainers stops the service's containers gracefully (a database
// flushes its data on SIGTERM; Redis writes its RDB file) and removes them.
func (m *Manager) removeContainers(ctx context.Context, e *Engine, name string) {
	if m.Runtime == nil {
		return
	}
	cs, _ := m.containers(ctx, e, name)
	for _, c := range cs {
		if c.Running {
			m.Runtime.Stop(ctx, c.ID, 30*time.Second)
		}
		m.Runtime.Remove(ctx, c.ID)
	}
}

// running returns the service's running container.
func (m *Manager) running(ctx context.Context, e *Engine, rec apps.ServiceRecord) (apps.Container, error) {
	if err := m.engine(); err != nil {
		return apps.Container{}, err
	}
	cs, err := m.containers(ctx, e, rec.Name)
	if err != nil {
		return apps.Container{}, err
	}
	for _, c := range cs {
		if c.Running {
			return c, nil
		}
	}
	return apps.Container{}, apps.Errorf(apps.ErrDeployFailed, "%s service %s is not running: start it with %s:start %s", e.Title, rec.Name, e.Name, rec.Name)
}

// Record returns a service, or ErrServiceNotFound in Dokku's words.
func (m *Manager) Record(ctx context.Context, e *Engine, name string) (apps.ServiceRecord, error) {
	if err := apps.ValidateServiceName(name); err != nil {
		return apps.ServiceRecord{}, err
	}
	return m.Store.Service(ctx, e.Name, name)
}

// List returns an engine's services.
func (m *Manager) List(ctx context.Context, e *Engine) ([]apps.ServiceRecord, error) {
	return m.Store.Services(ctx, e.Name)
}

// Status is running, stopped, missing (no container) or "unknown" when
// no engine answers.
func (m *Manager) Status(ctx context.Context, e *Engine, rec apps.ServiceRecord) (status, id string) {
	if m.Runtime == nil {
		return "unknown", ""
	}
	cs, err := m.containers(ctx, e, rec.Name)
	if err != nil || len(cs) == 0 {
		return "missing", ""
	}
	if cs[0].Running {
		return "running", cs[0].ID
	}
	return "stopped", cs[0].ID
}

// DSN is the URL a linked app gets.
func (m *Manager) DSN(e *Engine, rec apps.ServiceRecord) string {
	return e.URL(instance(rec), HostName(e, rec.Name))
}

// Stop stops the service's container (it stays stopped across restarts).
func (m *Manager) Stop(ctx context.Context, e *Engine, rec apps.ServiceRecord) error {
	if err := m.engine(); err != nil {
		return err
	}
	rec.Stopped = true
	if err := m.Store.UpdateService(ctx, rec); err != nil {
		return err
	}
	cs, err := m.containers(ctx, e, rec.Name)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if err := m.Runtime.Stop(ctx, c.ID, 30*time.Second); err != nil {
			return err
		}
	}
	return nil
}

// Start (re)creates the service's container from its record.
func (m *Manager) Start(ctx context.Context, e *Engine, rec apps.ServiceRecord, out io.Writer) error {
	if err := m.engine(); err != nil {
		return err
	}
	rec.Stopped = false
	if err := m.Store.UpdateService(ctx, rec); err != nil {
		return err
	}
	return m.start(ctx, e, rec, out)
}

// Upgrade runs the service on another image or version, same data.
func (m *Manager) Upgrade(ctx context.Context, e *Engine, rec apps.ServiceRecord, image, version string, out io.Writer) error {
	if err := m.engine(); err != nil {
		return err
	}
	old := rec
	rec.Image, rec.Version = orDefault(image, rec.Image), orDefault(version, rec.Version)
	fmt.Fprintf(out, "-----> Upgrading %s %s from %s:%s to %s:%s\n", e.Title, rec.Name, old.Image, old.Version, rec.Image, rec.Version)
	if err := m.start(ctx, e, rec, out); err != nil {
		fmt.Fprintf(out, " !     %v\n-----> Starting %s:%s again\n", err, old.Image, old.Version)
		if rerr := m.start(context.WithoutCancel(ctx), e, old, out); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	return m.Store.UpdateService(ctx, rec)
}

// Expose publishes the service's port on the host: specs are PORT or
// HOST:PORT (HOST an IP address), one per container port.
func (m *Manager) Expose(ctx context.Context, e *Engine, rec apps.ServiceRecord, specs []string, out io.Writer) error {
	if err := m.engine(); err != nil {
		return err
	}
	if len(rec.Exposed) > 0 {
		return apps.Errorf(apps.ErrInvalidValue, "%s service %s is already exposed on %s", e.Title, rec.Name, strings.Join(rec.Exposed, " "))
	}
	if len(specs) != 1 {
		return apps.Errorf(apps.ErrInvalidValue, "%s exposes 1 port (%d); give one [HOST:]PORT", e.Title, e.Port)
	}
	var exposed []string
	for _, s := range specs {
		host, port := "0.0.0.0", s
		if i := strings.LastIndex(s, ":"); i >= 0 {
			host, port = s[:i], s[i+1:]
		}
		b, err := parseBinding(host + ":" + port + ":" + strconv.Itoa(e.Port))
		if err != nil {
			return err
		}
		exposed = append(exposed, fmt.Sprintf("%s:%d:%d", b.HostIP, b.HostPort, b.ContainerPort))
	}
	rec.Exposed = exposed
	if err := m.start(ctx, e, rec, out); err != nil {
		rec.Exposed = nil
		m.start(context.WithoutCancel(ctx), e, rec, io.Discard)
		return err
	}
	return m.Store.UpdateService(ctx, rec)
}

// Unexpose stops publishing the service's ports.
func (m *Manager) Unexpose(ctx context.Context, e *Engine, rec apps.ServiceRecord, out io.Writer) error {
	if err := m.engine(); err != nil {
		return err
	}
	rec.Exposed = nil
	if err := m.start(ctx, e, rec, out); err != nil {
		return err
	}
	return m.Store.UpdateService(ctx, rec)
}

// parseBinding reads "IP:HOSTPORT:CONTAINERPORT".
func parseBinding(s string) (apps.PortBinding, error) {
	parts := strings.Split(s, ":")
	if len(parts) < 3 {
		return apps.PortBinding{}, fmt.Errorf("invalid port binding %q", s)
	}
	ip := strings.Join(parts[:len(parts)-2], ":")
	hp, err1 := strconv.Atoi(parts[len(parts)-2])
	cp, err2 := strconv.Atoi(parts[len(parts)-1])
	if err1 != nil || err2 != nil || hp < 1 || hp > 65535 || cp < 1 || cp > 65535 {
		return apps.PortBinding{}, apps.Errorf(apps.ErrInvalidValue, "Invalid port %q: use 1 to 65535", parts[len(parts)-2])
	}
	addr, err := netip.ParseAddr(strings.Trim(ip, "[]"))
	if err != nil {
		return apps.PortBinding{}, apps.Errorf(apps.ErrInvalidValue, "Invalid host address %q: use an IP address", ip)
	}
	return apps.PortBinding{HostIP: addr.String(), HostPort: hp, ContainerPort: cp}, nil
}

// Exec runs cmd in the service's running container with the streams
// (connect, enter, export, import).
func (m *Manager) Exec(ctx context.Context, e *Engine, rec apps.ServiceRecord, cmd []string, st apps.Streams) (int, error) {
	c, err := m.running(ctx, e, rec)
	if err != nil {
		return -1, err
	}
	return m.Runtime.Exec(ctx, c.ID, cmd, false, st)
}

// Export writes a dump of the service to w.
func (m *Manager) Export(ctx context.Context, e *Engine, rec apps.ServiceRecord, w io.Writer) error {
	var stderr bytes.Buffer
	code, err := m.Exec(ctx, e, rec, e.Dump(instance(rec)), apps.Streams{Stdout: w, Stderr: &stderr})
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("export of %s %s failed (exit %d): %s", e.Name, rec.Name, code, oneLine(stderr.String()))
	}
	return nil
}

// Import restores a dump read from r; Redis is restarted on its new data.
func (m *Manager) Import(ctx context.Context, e *Engine, rec apps.ServiceRecord, r io.Reader, out io.Writer) error {
	var stderr bytes.Buffer
	code, err := m.Exec(ctx, e, rec, e.Restore(instance(rec)), apps.Streams{Stdin: r, Stdout: out, Stderr: &stderr})
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("import into %s %s failed (exit %d): %s", e.Name, rec.Name, code, oneLine(stderr.String()))
	}
	if e.KillAfterRestore {
		m.killContainers(ctx, e, rec.Name)
		return m.start(ctx, e, rec, out)
	}
	return nil
}

// Logs writes the service's output.
func (m *Manager) Logs(ctx context.Context, e *Engine, rec apps.ServiceRecord, opts apps.LogOptions, out apps.Streams) error {
	if err := m.engine(); err != nil {
		return err
	}
	cs, err := m.containers(ctx, e, rec.Name)
	if err != nil {
		return err
	}
	if len(cs) == 0 {
		return apps.Errorf(apps.ErrDeployFailed, "%s service %s has no container", e.Title, rec.Name)
	}
	return m.Runtime.Logs(ctx, cs[0].ID, opts, out)
}

// Destroy removes the service, its container and its data. A linked
// service is refused.
func (m *Manager) Destroy(ctx context.Context, e *Engine, rec apps.ServiceRecord) error {
	links, err := m.Store.ServiceLinks(ctx, e.Name, rec.Name)
	if err != nil {
		return err
	}
	if len(links) > 0 {
		return apps.Errorf(apps.ErrServiceLinked, "Cannot delete linked service")
	}
	if err := m.engine(); err != nil {
		return err
	}
	m.removeContainers(ctx, e, rec.Name)
	if cs, _ := m.containers(ctx, e, rec.Name); len(cs) > 0 {
		return fmt.Errorf("could not remove the container of %s %s", e.Name, rec.Name)
	}
	if err := m.Runtime.RemoveVolume(ctx, volumeName(e, rec.Name)); err != nil {
		return err
	}
	return m.Store.DeleteService(ctx, e.Name, rec.Name)
}

// Clone makes a new service with the engine, image and options of rec and
// a copy of its data.
func (m *Manager) Clone(ctx context.Context, e *Engine, rec apps.ServiceRecord, newName string, out io.Writer) error {
	if _, err := m.running(ctx, e, rec); err != nil {
		return err
	}
	if err := m.Create(ctx, e, newName, CreateOptions{Image: rec.Image, Version: rec.Version, CustomEnv: rec.CustomEnv, Memory: rec.Memory}, out); err != nil {
		return err
	}
	dst, err := m.Store.Service(ctx, e.Name, newName)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "-----> Copying data of %s into %s\n", rec.Name, newName)
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(m.Export(ctx, e, rec, pw)) }()
	if err := m.Import(ctx, e, dst, pr, io.Discard); err != nil {
		pr.CloseWithError(err)
		return err
	}
	return nil
}

// Restore starts every service that should run but has no running
// container (after the host rebooted with a policy that left it down).
func (m *Manager) Restore(ctx context.Context) error {
	if m.Runtime == nil {
		return nil
	}
	for _, name := range Names() {
		e := Engines[name]
		recs, err := m.Store.Services(ctx, e.Name)
		if err != nil {
			return err
		}
		for _, rec := range recs {
			if st, _ := m.Status(ctx, e, rec); !rec.Stopped && st == "missing" {
				if err := m.start(ctx, e, rec, io.Discard); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
