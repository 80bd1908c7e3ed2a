// Package engine runs rivetr's containers and builds its images on a
// container engine through the Docker Engine API
// (github.com/moby/moby/client). One driver serves both Docker and Podman:
// Podman is reached through its Docker-compatible API socket, so the
// Podman bindings (and their weight) are not needed.
//
// Detect finds the engine: DOCKER_HOST, /var/run/docker.sock,
// /run/podman/podman.sock and $XDG_RUNTIME_DIR/podman/podman.sock are tried
// in that order, each pinged with a short timeout; the first that answers
// (and is of the forced kind, when one is forced) wins. The client
// negotiates the API version down to what the engine speaks (1.41 on
// Docker 20.10 and Podman 4).
//
// The returned *Engine implements apps.Runtime and apps.ImageBuilder.
// Containers join the user-defined bridge network apps.Network, carry
// apps.LabelManaged=true and the caller's labels, get the default ulimits
// from Options and publish no port on a public interface. Where the network
// is not reachable from the host (a rootless engine), the container's port
// is published on 127.0.0.1 only, on an ephemeral host port, and
// apps.Container.Addr reports that loopback address.
//
// Containers get the spec's bind mounts (of existing absolute host paths)
// and named volumes (created beforehand, labelled like containers),
// resource limits, stop timeout and terminal. Wait, Logs, RunAttached and
// Exec attach to the engine's hijacked streams: output is demultiplexed
// into stdout and stderr unless the process has a terminal, and stdin is
// half-closed at EOF so the process sees it end. RunAttached attaches
// before it starts the container, so no output is lost, and always
// removes the container.
//
// Images are built with the classic builder from a tar of the build
// directory streamed to the engine; see BuildImage for the .dockerignore
// subset honoured. Third-party types stay inside this package.
package engine
