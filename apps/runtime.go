package apps

import (
	"context"
	"io"
	"time"
)

// Labels every container and image rivetr creates carries, so an operator
// (and rivetr after a restart) can find them.
const (
	LabelApp     = "rivetr.app"
	LabelProcess = "rivetr.process"
	LabelService = "rivetr.service"
	LabelRelease = "rivetr.release"
	LabelManaged = "rivetr.managed" // "true" on everything rivetr made
)

// Network is the user-defined engine network every app and service joins.
const Network = "rivetr"

// ContainerSpec describes a container to create and start.
type ContainerSpec struct {
	Name          string            // engine container name, derived from validated names only
	Image         string            // image reference or ID
	Cmd           []string          // nil runs the image's default command
	Env           map[string]string // environment, including PORT for web
	Labels        map[string]string // at least LabelApp/LabelService and LabelProcess
	Port          int               // port the process listens on; 0 for none
	RestartPolicy string            // "no", "always", "unless-stopped", "on-failure[:N]"
	Aliases       []string          // DNS aliases on the rivetr network
	Stdin         bool              // keep stdin open (one-off containers)
	TTY           bool              // allocate a terminal (interactive one-off containers)
	Mounts        []Mount           // bind mounts and named volumes
	Resources     Resources         // limits and reservations
	StopTimeout   time.Duration     // engine-side stop timeout; 0: engine default
	// Publish binds container ports on the host; only for what a command
	// asked to expose (services' expose), never by default.
	Publish []PortBinding
	// Networks are further networks (created when missing) beside the
	// rivetr one, each with DNS aliases: a compose app's own network.
	Networks []NetworkAttachment
}

// NetworkAttachment joins a container to a network under aliases.
type NetworkAttachment struct {
	Name    string
	Aliases []string
}

// Mount is a bind mount (Source is an absolute host path) or, when Volume
// is set, a named volume (Source is its name).
type Mount struct {
	Source   string
	Target   string
	Volume   bool
	ReadOnly bool
}

// Resources are a container's limits and reservations; zero means none.
type Resources struct {
	MemoryLimit       int64 // bytes
	MemoryReservation int64 // bytes
	NanoCPUs          int64 // CPU limit in 1e-9 CPUs (1.5 CPUs = 1_500_000_000)
	CPUShares         int64 // relative weight, as a reservation
}

// LogOptions select what Logs streams.
type LogOptions struct {
	Follow     bool
	Tail       int // last N lines; 0 for all
	Timestamps bool
}

// Streams are the standard streams of an attached process; Stdin may be nil.
type Streams struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Container is a container as the engine reports it.
type Container struct {
	ID      string
	Name    string
	Image   string
	Labels  map[string]string
	Running bool
	State   string // engine's state word: created, running, exited, ...
	// Addr is host:port where rivetr reaches the container's Port: its IP
	// on the rivetr network, or a loopback-published port when that network
	// is not reachable from the host (rootless Podman). Empty if no Port.
	Addr string
}

// Runtime runs containers on a container engine (Docker, or Podman through
// its Docker-compatible API).
type Runtime interface {
	// Name is "docker" or "podman".
	Name() string
	// EnsureNetwork creates the rivetr network if it is missing.
	EnsureNetwork(ctx context.Context) error
	// Run creates and starts a container.
	Run(ctx context.Context, spec ContainerSpec) (Container, error)
	// Stop sends SIGTERM, then SIGKILL after timeout.
	Stop(ctx context.Context, id string, timeout time.Duration) error
	// Remove force-removes a container (and its anonymous volumes).
	Remove(ctx context.Context, id string) error
	// List returns containers (running or not) whose labels match all of labels.
	List(ctx context.Context, labels map[string]string) ([]Container, error)
	// Inspect returns one container.
	Inspect(ctx context.Context, id string) (Container, error)
	// RemoveNetwork removes a network made for an app (not the rivetr
	// one); a missing network is not an error.
	RemoveNetwork(ctx context.Context, name string) error
	// RemoveVolume removes a named volume and its data; a missing volume
	// is not an error.
	RemoveVolume(ctx context.Context, name string) error
	// RemoveImage removes an image rivetr built; a missing image is not an error.
	RemoveImage(ctx context.Context, ref string) error
	// Images lists image references carrying all of labels.
	Images(ctx context.Context, labels map[string]string) ([]string, error)
	// Wait blocks until the container exits and returns its exit code.
	Wait(ctx context.Context, id string) (int, error)
	// Logs writes the container's output to the streams (demultiplexed);
	// with Follow it returns when the container stops or ctx ends.
	Logs(ctx context.Context, id string, opts LogOptions, out Streams) error
	// RunAttached runs a one-off container with the streams attached (stdin
	// if spec.Stdin), waits for it, removes it, and returns its exit code.
	RunAttached(ctx context.Context, spec ContainerSpec, st Streams) (int, error)
	// Exec runs cmd in a running container with the streams attached and
	// returns its exit code.
	Exec(ctx context.Context, id string, cmd []string, tty bool, st Streams) (int, error)
}

// ImageBuild is one image build from a directory with a Dockerfile.
type ImageBuild struct {
	Dir        string            // build context
	Dockerfile string            // path relative to Dir
	Tag        string            // e.g. "rivetr/myapp:3"
	Labels     map[string]string // image labels
	BuildArgs  map[string]string
	Out        io.Writer // the build log, streamed as it comes
}

// ImageBuilder builds images from a Dockerfile context; the runtime
// implements it through the engine.
type ImageBuilder interface {
	BuildImage(ctx context.Context, b ImageBuild) error
	// ExportPath copies the directory path of image into dst (created; it
	// must not exist), regular files and directories only.
	ExportPath(ctx context.Context, image, path, dst string) error
	RemoveImage(ctx context.Context, ref string) error
}

// StaticSite is a tree of files the proxy serves itself.
type StaticSite struct {
	Dir string // the release's tree
	// SPA answers requests for paths that are not files (and look like
	// pages: no extension) with index.html.
	SPA bool
	// NotFound is the page (relative to Dir) sent with 404; "" for the
	// proxy's own.
	NotFound string
}

// Router maps hosts to the upstreams that serve them.
type Router interface {
	// SetRoute routes every host in hosts to upstreams (host:port), replacing
	// any previous route of app atomically.
	SetRoute(app string, hosts []string, upstreams []string)
	// SetStatic serves app's hosts from the files of site instead of
	// upstreams, replacing any previous route of app atomically.
	SetStatic(app string, hosts []string, site StaticSite)
	// RemoveRoute stops routing app.
	RemoveRoute(app string)
	// Drain is called after upstreams stopped being routed: it waits until
	// no request to them is in flight, up to timeout (or ctx), then closes
	// what is left to them (hijacked connections such as WebSockets, idle
	// keep-alive connections) and forgets them.
	Drain(ctx context.Context, upstreams []string, timeout time.Duration)
}
