package engine

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/rivetr/rivetr/apps"
)

// labelPort records ContainerSpec.Port on the container, so that List and
// Inspect can report Addr for containers this process did not start.
const labelPort = "rivetr.port"

// cleanupTimeout bounds the removal of a container whose start failed;
// it runs even when the caller's context is done.
const cleanupTimeout = 30 * time.Second

var loopback = netip.MustParseAddr("127.0.0.1")

// EnsureNetwork creates the bridge network apps.Network, labelled
// rivetr.managed=true, unless it exists. It is idempotent and safe to call
// concurrently, also from several processes: Docker before API 1.44
// accepts duplicate network names, so when two creators race, the oldest
// network wins and the others are removed again.
func (e *Engine) EnsureNetwork(ctx context.Context) error {
	_, err := e.ensureNetwork(ctx)
	return err
}

func (e *Engine) ensureNetwork(ctx context.Context) (string, error) {
	return e.ensureNamed(ctx, e.network)
}

// ensureNamed returns the ID of the bridge network name, creating it
// (labelled rivetr.managed) when missing; IDs are cached.
func (e *Engine) ensureNamed(ctx context.Context, name string) (string, error) {
	e.netMu.Lock()
	defer e.netMu.Unlock()
	if id := e.netIDs[name]; id != "" {
		return id, nil
	}
	id, err := e.findNetwork(ctx, name)
	if err != nil {
		return "", e.errorf("ensure network %s: %w", name, err)
	}
	if id == "" {
		if id, err = e.createNetwork(ctx, name); err != nil {
			return "", err
		}
	}
	if e.netIDs == nil {
		e.netIDs = map[string]string{}
	}
	e.netIDs[name] = id
	return id, nil
}

// networkSettle is how long createNetwork waits before choosing among the
// networks of the same name that concurrent creators made.
const networkSettle = 300 * time.Millisecond

// createNetwork creates the network and returns the ID of the one to use.
func (e *Engine) createNetwork(ctx context.Context, name string) (string, error) {
	res, cerr := e.cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{
		Driver: "bridge",
		Labels: map[string]string{apps.LabelManaged: "true"},
	})
	// Podman refuses a duplicate name, Docker 20.10 accepts it: either way,
	// the oldest network now under the name is the one to use. Docker stamps
	// a network's creation time before it becomes visible, so a racer that
	// listed at once could miss an older one: let creations settle first.
	// This runs once per engine and network, when it does not exist yet.
	select {
	case <-time.After(networkSettle):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	id, err := e.findNetwork(ctx, name)
	switch {
	case err != nil:
		return "", e.errorf("ensure network %s: %w", name, err)
	case id == "" && cerr != nil:
		return "", e.errorf("create network %s: %w", name, cerr)
	case id == "":
		return "", e.errorf("create network %s: created but not listed", name)
	case cerr != nil:
		return id, nil // lost a race to another creator
	case res.ID == id:
		e.log.Info().Str("network", name).Msg("network created")
		return id, nil
	}
	e.log.Info().Str("network", name).Msg("another process created the network at the same time; using the older one")
	if _, err := e.cli.NetworkRemove(ctx, res.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return "", e.errorf("remove duplicate network %s: %w", name, err)
	}
	return id, nil
}

// findNetwork returns the ID of the network named name (the oldest,
// should there be several), or "" when there is none.
func (e *Engine) findNetwork(ctx context.Context, name string) (string, error) {
	res, err := e.cli.NetworkList(ctx, client.NetworkListOptions{
		Filters: make(client.Filters).Add("name", name),
	})
	if err != nil {
		return "", err
	}
	var found []network.Summary
	for _, n := range res.Items {
		if n.Name == name { // the name filter matches substrings
			found = append(found, n)
		}
	}
	if len(found) == 0 {
		return "", nil
	}
	slices.SortFunc(found, func(a, b network.Summary) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return found[0].ID, nil
}

// RemoveNetwork removes a network rivetr made for an app (no container
// may use it any more); a missing one is not an error.
func (e *Engine) RemoveNetwork(ctx context.Context, name string) error {
	if name == e.network {
		return e.errorf("remove network %s: the shared network stays", name)
	}
	id, err := e.findNetwork(ctx, name)
	if err != nil || id == "" {
		return err
	}
	e.netMu.Lock()
	delete(e.netIDs, name)
	e.netMu.Unlock()
	if _, err := e.cli.NetworkRemove(ctx, id, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return e.errorf("remove network %s: %w", name, err)
	}
	return nil
}

// forgetNetwork drops the cached network ID, e.g. after the network was
// removed behind rivetr's back, so the next Run ensures it again.
func (e *Engine) forgetNetwork() {
	e.netMu.Lock()
	e.netIDs = nil
	e.netMu.Unlock()
}

// Run creates and starts a container on the rivetr network. When it fails
// after the create, the container is removed again. spec.Port is reachable at
// the returned Addr: the container's address on the network, or
// 127.0.0.1:HOSTPORT where that network is not reachable from the host.
// Mounts, resources, the stop timeout and the terminal are applied as
// containerConfig describes; spec.Stdin keeps stdin open for a later
// attach.
func (e *Engine) Run(ctx context.Context, spec apps.ContainerSpec) (apps.Container, error) {
	if err := e.checkSpec(spec); err != nil {
		return apps.Container{}, err
	}
	policy, err := parseRestartPolicy(spec.RestartPolicy)
	if err != nil {
		return apps.Container{}, e.errorf("run container %s: %w", spec.Name, err)
	}
	if _, err := e.ensureNetwork(ctx); err != nil {
		return apps.Container{}, err
	}
	if err := e.ensureVolumes(ctx, spec); err != nil {
		return apps.Container{}, err
	}
	publish := spec.Port > 0 && e.loopback.Load()
	c, ip, err := e.run(ctx, spec, policy, publish)
	if err != nil || publish || spec.Port == 0 || !c.Running || e.reaches(ip) {
		return c, err
	}
	// The network address is not reachable from here (a rootless engine
	// not reported as such, or a remote one): from now on publish ports
	// on loopback, and start this container again that way.
	e.log.Warn().Str("container", spec.Name).Str("ip", ip.String()).
		Msg("container network not reachable from the host; publishing ports on 127.0.0.1 from now on")
	e.loopback.Store(true)
	if err := e.Remove(ctx, c.ID); err != nil {
		return apps.Container{}, err
	}
	c, _, err = e.run(ctx, spec, policy, true)
	return c, err
}

// run creates, starts and inspects one container; ip is its address on
// the rivetr network (invalid if it has none).
func (e *Engine) run(ctx context.Context, spec apps.ContainerSpec, policy container.RestartPolicy, publish bool) (apps.Container, netip.Addr, error) {
	cfg, hc, netCfg := e.containerConfig(spec, policy, publish)
	created, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:             spec.Name,
		Config:           cfg,
		HostConfig:       hc,
		NetworkingConfig: netCfg,
	})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			e.forgetNetwork() // the image, or the network, is gone
		}
		return apps.Container{}, netip.Addr{}, e.errorf("create container %s: %w", spec.Name, err)
	}
	for _, w := range created.Warnings {
		e.log.Warn().Str("container", spec.Name).Msg(w)
	}
	// Further networks: API 1.41 takes one network at create.
	for _, n := range spec.Networks {
		id, err := e.ensureNamed(ctx, n.Name)
		if err == nil {
			_, err = e.cli.NetworkConnect(ctx, id, client.NetworkConnectOptions{
				Container: created.ID, EndpointConfig: &network.EndpointSettings{Aliases: n.Aliases},
			})
		}
		if err != nil {
			e.removeAfterFailure(ctx, spec.Name, created.ID)
			return apps.Container{}, netip.Addr{}, e.errorf("connect container %s to network %s: %w", spec.Name, n.Name, err)
		}
	}
	if _, err := e.cli.ContainerStart(ctx, created.ID, client.ContainerStartOptions{}); err != nil {
		e.removeAfterFailure(ctx, spec.Name, created.ID)
		return apps.Container{}, netip.Addr{}, e.errorf("start container %s: %w", spec.Name, err)
	}
	res, err := e.cli.ContainerInspect(ctx, created.ID, client.ContainerInspectOptions{})
	if err != nil {
		e.removeAfterFailure(ctx, spec.Name, created.ID)
		return apps.Container{}, netip.Addr{}, e.errorf("inspect container %s: %w", spec.Name, err)
	}
	c := e.fromInspect(res.Container)
	var ip netip.Addr
	if ns := res.Container.NetworkSettings; ns != nil {
		if ep := ns.Networks[e.network]; ep != nil {
			ip = ep.IPAddress
		}
	}
	return c, ip, nil
}

// removeAfterFailure removes a container Run could not finish starting,
// even when ctx is already done.
func (e *Engine) removeAfterFailure(ctx context.Context, name, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if _, err := e.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !cerrdefs.IsNotFound(err) {
		e.log.Error().Err(err).Str("container", name).Msg("remove container after failed start")
	}
}

// Stop sends SIGTERM (or the image's stop signal), then SIGKILL after
// timeout, rounded up to whole seconds. A missing container is an error
// wrapping ErrNotFound; a stopped one is not an error.
func (e *Engine) Stop(ctx context.Context, id string, timeout time.Duration) error {
	secs := stopSeconds(timeout)
	if _, err := e.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs}); err != nil {
		if cerrdefs.IsNotFound(err) {
			return e.errorf("stop container %s: %w", id, ErrNotFound)
		}
		return e.errorf("stop container %s: %w", id, err)
	}
	return nil
}

// Remove force-removes a container and its anonymous volumes. A missing
// container is not an error.
func (e *Engine) Remove(ctx context.Context, id string) error {
	_, err := e.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true})
	if err != nil && !cerrdefs.IsNotFound(err) {
		return e.errorf("remove container %s: %w", id, err)
	}
	return nil
}

// List returns the containers, in any state, whose labels include all of
// labels, sorted by name.
func (e *Engine) List(ctx context.Context, labels map[string]string) ([]apps.Container, error) {
	res, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: labelFilters(labels)})
	if err != nil {
		return nil, e.errorf("list containers %s: %w", formatLabels(labels), err)
	}
	out := make([]apps.Container, 0, len(res.Items))
	for _, s := range res.Items {
		out = append(out, e.fromSummary(s))
	}
	slices.SortFunc(out, func(a, b apps.Container) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Inspect returns one container by ID or name; a missing one is an error
// wrapping ErrNotFound.
func (e *Engine) Inspect(ctx context.Context, id string) (apps.Container, error) {
	res, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return apps.Container{}, e.errorf("inspect container %s: %w", id, ErrNotFound)
		}
		return apps.Container{}, e.errorf("inspect container %s: %w", id, err)
	}
	return e.fromInspect(res.Container), nil
}

func (e *Engine) fromInspect(r container.InspectResponse) apps.Container {
	c := apps.Container{ID: r.ID, Name: strings.TrimPrefix(r.Name, "/")}
	if r.Config != nil {
		c.Image = familiarName(r.Config.Image)
		c.Labels = r.Config.Labels
	}
	if r.State != nil {
		c.State = string(r.State.Status)
		c.Running = r.State.Running
	}
	port := labelledPort(c.Labels)
	if port == 0 || r.NetworkSettings == nil {
		return c
	}
	p, _ := network.PortFrom(port, network.TCP)
	for _, b := range r.NetworkSettings.Ports[p] {
		if b.HostPort != "" && b.HostPort != "0" {
			c.Addr = net.JoinHostPort(hostIP(b.HostIP), b.HostPort)
			return c
		}
	}
	if ep := r.NetworkSettings.Networks[e.network]; ep != nil && ep.IPAddress.IsValid() {
		c.Addr = net.JoinHostPort(ep.IPAddress.String(), strconv.Itoa(int(port)))
	}
	return c
}

func (e *Engine) fromSummary(s container.Summary) apps.Container {
	c := apps.Container{
		ID:      s.ID,
		Image:   familiarName(s.Image),
		Labels:  s.Labels,
		State:   string(s.State),
		Running: s.State == container.StateRunning,
	}
	if len(s.Names) > 0 {
		c.Name = strings.TrimPrefix(s.Names[0], "/")
	}
	port := labelledPort(c.Labels)
	if port == 0 {
		return c
	}
	for _, p := range s.Ports {
		if p.PrivatePort == port && p.PublicPort != 0 && (p.Type == "" || p.Type == "tcp") {
			c.Addr = net.JoinHostPort(hostIP(p.IP), strconv.Itoa(int(p.PublicPort)))
			return c
		}
	}
	if s.NetworkSettings != nil {
		if ep := s.NetworkSettings.Networks[e.network]; ep != nil && ep.IPAddress.IsValid() {
			c.Addr = net.JoinHostPort(ep.IPAddress.String(), strconv.Itoa(int(port)))
		}
	}
	return c
}

// hostIP is where a published port is reached: its bound address, or
// loopback when it is bound to every address.
func hostIP(a netip.Addr) string {
	if !a.IsValid() || a.IsUnspecified() {
		return loopback.String()
	}
	return a.String()
}

func labelledPort(labels map[string]string) uint16 {
	n, err := strconv.ParseUint(labels[labelPort], 10, 16)
	if err != nil {
		return 0
	}
	return uint16(n)
}

// hostReaches reports whether ip lies in a subnet of one of the host's own
// interfaces, i.e. on a bridge the host is attached to.
func hostReaches(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() {
			continue
		}
		if ipn.Contains(net.IP(ip.AsSlice())) {
			return true
		}
	}
	return false
}

// parseRestartPolicy reads "no" (or ""), "always", "unless-stopped" and
// "on-failure[:N]".
func parseRestartPolicy(s string) (container.RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	mode := container.RestartPolicyMode(name)
	switch mode {
	case "", container.RestartPolicyDisabled:
		mode = container.RestartPolicyDisabled
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
	case container.RestartPolicyOnFailure:
		if !hasCount {
			return container.RestartPolicy{Name: mode}, nil
		}
		n, err := strconv.Atoi(count)
		if err != nil || n < 0 {
			return container.RestartPolicy{}, fmt.Errorf("restart policy %q: invalid retry count", s)
		}
		return container.RestartPolicy{Name: mode, MaximumRetryCount: n}, nil
	default:
		return container.RestartPolicy{}, fmt.Errorf("restart policy %q: use no, always, unless-stopped or on-failure[:N]", s)
	}
	if hasCount {
		return container.RestartPolicy{}, fmt.Errorf("restart policy %q: only on-failure takes a retry count", s)
	}
	return container.RestartPolicy{Name: mode}, nil
}

// envList turns env into sorted KEY=VALUE pairs.
func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

func labelFilters(labels map[string]string) client.Filters {
	f := make(client.Filters)
	for k, v := range labels {
		f.Add("label", k+"="+v)
	}
	return f
}

func formatLabels(labels map[string]string) string {
	parts := envList(labels)
	if len(parts) == 0 {
		return "(all)"
	}
	return strings.Join(parts, ",")
}

// RemoveVolume removes a named volume (and its data); a missing one is
// not an error.
func (e *Engine) RemoveVolume(ctx context.Context, name string) error {
	if !volumeName.MatchString(name) {
		return e.errorf("remove volume %q: invalid name", name)
	}
	if _, err := e.cli.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return e.errorf("remove volume %s: %w", name, ctxErr(ctx, err))
	}
	return nil
}
