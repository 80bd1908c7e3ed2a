package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/rivetr/rivetr/apps"
)

// volumeName is what Docker's local volume driver accepts as a name.
var volumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// checkSpec validates what Run and RunAttached need before they talk to
// the engine; the error names the container.
func (e *Engine) checkSpec(spec apps.ContainerSpec) error {
	if spec.Name == "" || spec.Image == "" {
		return e.errorf("run container %q: name and image are required", spec.Name)
	}
	if spec.Port < 0 || spec.Port > math.MaxUint16 {
		return e.errorf("run container %s: invalid port %d", spec.Name, spec.Port)
	}
	if spec.StopTimeout < 0 {
		return e.errorf("run container %s: negative stop timeout %s", spec.Name, spec.StopTimeout)
	}
	r := spec.Resources
	for _, v := range []struct {
		name string
		n    int64
	}{{"memory limit", r.MemoryLimit}, {"memory reservation", r.MemoryReservation}, {"CPU limit", r.NanoCPUs}, {"CPU shares", r.CPUShares}} {
		if v.n < 0 {
			return e.errorf("run container %s: negative %s %d", spec.Name, v.name, v.n)
		}
	}
	if r.MemoryLimit > 0 && r.MemoryReservation > r.MemoryLimit {
		return e.errorf("run container %s: memory reservation %d above the limit %d", spec.Name, r.MemoryReservation, r.MemoryLimit)
	}
	for _, b := range spec.Publish {
		if b.ContainerPort < 1 || b.ContainerPort > math.MaxUint16 || b.HostPort < 1 || b.HostPort > math.MaxUint16 {
			return e.errorf("run container %s: invalid published port %d:%d", spec.Name, b.HostPort, b.ContainerPort)
		}
		if b.HostIP != "" {
			if _, err := netip.ParseAddr(b.HostIP); err != nil {
				return e.errorf("run container %s: invalid host address %q", spec.Name, b.HostIP)
			}
		}
	}
	targets := map[string]bool{}
	for _, m := range spec.Mounts {
		if err := checkMount(m); err != nil {
			return e.errorf("run container %s: %w", spec.Name, err)
		}
		t := path.Clean(m.Target)
		if targets[t] {
			return e.errorf("run container %s: two mounts on %s", spec.Name, t)
		}
		targets[t] = true
	}
	return nil
}

// checkMount refuses a mount the engine would refuse less clearly, or
// would silently turn into something else. A bind mount's source must be
// an existing absolute path on this host (the engine's host, for a local
// engine); a volume needs a name, since an anonymous volume would be
// removed with its container.
func checkMount(m apps.Mount) error {
	if !path.IsAbs(m.Target) || path.Clean(m.Target) == "/" {
		return fmt.Errorf("mount %q: target %q must be an absolute path inside the container other than /", m.Source, m.Target)
	}
	if m.Volume {
		if !volumeName.MatchString(m.Source) {
			return fmt.Errorf("volume %q for %s: invalid name (letters, digits, _ . -, at least 2 characters, starting with a letter or digit)", m.Source, m.Target)
		}
		return nil
	}
	if !filepath.IsAbs(m.Source) {
		return fmt.Errorf("bind mount %q for %s: source must be an absolute host path", m.Source, m.Target)
	}
	if _, err := os.Stat(m.Source); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("bind mount %s for %s: source does not exist", m.Source, m.Target)
		}
		return fmt.Errorf("bind mount %s for %s: %w", m.Source, m.Target, err)
	}
	return nil
}

// containerConfig turns a checked spec into the engine's create request:
//
//   - labels plus rivetr.managed=true (and rivetr.port when spec.Port is set);
//   - the rivetr network, with spec.Aliases;
//   - spec.Port exposed, and published on 127.0.0.1 only when publish;
//   - the default ulimits and the restart policy;
//   - spec.Mounts: bind mounts of host paths and named volumes (which
//     ensureVolumes creates beforehand);
//   - spec.Resources: memory limit and reservation, CPU limit (NanoCPUs)
//     and CPU shares;
//   - spec.StopTimeout, rounded up to whole seconds;
//   - spec.TTY, and stdin kept open when spec.Stdin (RunAttached adds
//     the attach flags).
func (e *Engine) containerConfig(spec apps.ContainerSpec, policy container.RestartPolicy, publish bool) (*container.Config, *container.HostConfig, *network.NetworkingConfig) {
	labels := maps.Clone(spec.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[apps.LabelManaged] = "true"
	cfg := &container.Config{
		Image:     spec.Image,
		Cmd:       spec.Cmd,
		Env:       envList(spec.Env),
		Labels:    labels,
		OpenStdin: spec.Stdin,
		Tty:       spec.TTY,
	}
	if spec.StopTimeout > 0 {
		secs := stopSeconds(spec.StopTimeout)
		cfg.StopTimeout = &secs
	}
	hc := &container.HostConfig{
		NetworkMode:   container.NetworkMode(e.network),
		RestartPolicy: policy,
	}
	hc.Resources = container.Resources{
		Memory:            spec.Resources.MemoryLimit,
		MemoryReservation: spec.Resources.MemoryReservation,
		NanoCPUs:          spec.Resources.NanoCPUs,
		CPUShares:         spec.Resources.CPUShares,
	}
	for _, u := range e.ulimits {
		hc.Ulimits = append(hc.Ulimits, &container.Ulimit{Name: u.Name, Soft: u.Soft, Hard: u.Hard})
	}
	for _, m := range spec.Mounts {
		hc.Mounts = append(hc.Mounts, engineMount(m))
	}
	if spec.Port > 0 {
		labels[labelPort] = strconv.Itoa(spec.Port)
		port, _ := network.PortFrom(uint16(spec.Port), network.TCP)
		cfg.ExposedPorts = network.PortSet{port: {}}
		if publish {
			// Loopback only, ephemeral host port: never a public interface.
			hc.PortBindings = network.PortMap{port: {{HostIP: loopback, HostPort: ""}}}
		}
	}
	for _, b := range spec.Publish {
		port, _ := network.PortFrom(uint16(b.ContainerPort), network.TCP)
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		cfg.ExposedPorts[port] = struct{}{}
		if hc.PortBindings == nil {
			hc.PortBindings = network.PortMap{}
		}
		binding := network.PortBinding{HostPort: strconv.Itoa(b.HostPort)}
		if ip, err := netip.ParseAddr(b.HostIP); err == nil {
			binding.HostIP = ip
		}
		hc.PortBindings[port] = append(hc.PortBindings[port], binding)
	}
	netCfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		e.network: {Aliases: spec.Aliases},
	}}
	return cfg, hc, netCfg
}

func engineMount(m apps.Mount) mount.Mount {
	t := mount.TypeBind
	src := filepath.Clean(m.Source)
	if m.Volume {
		t, src = mount.TypeVolume, m.Source
	}
	return mount.Mount{Type: t, Source: src, Target: path.Clean(m.Target), ReadOnly: m.ReadOnly}
}

// ensureVolumes creates the named volumes of spec.Mounts that do not exist
// yet, labelled rivetr.managed=true and with the container's rivetr.app
// label. The engine would create them on use too, but Podman would not
// label them. Creating a volume that exists leaves it as it is, with
// either engine.
func (e *Engine) ensureVolumes(ctx context.Context, spec apps.ContainerSpec) error {
	for _, m := range spec.Mounts {
		if !m.Volume {
			continue
		}
		labels := map[string]string{apps.LabelManaged: "true"}
		if app := spec.Labels[apps.LabelApp]; app != "" {
			labels[apps.LabelApp] = app
		}
		if _, err := e.cli.VolumeCreate(ctx, client.VolumeCreateOptions{Name: m.Source, Labels: labels}); err != nil {
			return e.errorf("run container %s: create volume %s: %w", spec.Name, m.Source, ctxErr(ctx, err))
		}
	}
	return nil
}

// stopSeconds rounds a stop timeout up to whole seconds, as the engine
// takes it.
func stopSeconds(d time.Duration) int {
	return max(int(math.Ceil(d.Seconds())), 0)
}
