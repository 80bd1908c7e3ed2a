package apps

import (
	"context"
	"errors"
	"time"
)

// Errors of managed services.
var (
	ErrServiceNotFound = errors.New("service not found")
	ErrServiceExists   = errors.New("service already exists")
	ErrServiceLinked   = errors.New("service is linked")
)

// ServiceRecord is a managed service (a database) as stored: which engine
// (postgres, mysql, ...), its image, its generated secrets and options.
type ServiceRecord struct {
	Engine       string
	Name         string
	Image        string
	Version      string
	Password     string
	RootPassword string
	CustomEnv    map[string]string
	Memory       int64    // bytes; 0: no limit
	Exposed      []string // published ports, "IP:HOSTPORT:CONTAINERPORT"
	Stopped      bool
	CreatedAt    time.Time
}

// ServiceLink is a service linked to an app under an env var (Alias, e.g.
// DATABASE_URL), with an optional query string appended to the URL.
type ServiceLink struct {
	Engine      string
	Service     string
	App         string
	Alias       string
	QueryString string
}

// ServiceStore keeps services and their links; the SQLite store implements
// it. Links go with their app (destroy) and follow a rename.
type ServiceStore interface {
	CreateService(ctx context.Context, s ServiceRecord) error
	Service(ctx context.Context, engine, name string) (ServiceRecord, error)
	Services(ctx context.Context, engine string) ([]ServiceRecord, error)
	UpdateService(ctx context.Context, s ServiceRecord) error
	DeleteService(ctx context.Context, engine, name string) error
	AddServiceLink(ctx context.Context, l ServiceLink) error
	RemoveServiceLink(ctx context.Context, engine, service, app string) error
	ServiceLinks(ctx context.Context, engine, service string) ([]ServiceLink, error)
	AppServiceLinks(ctx context.Context, app string) ([]ServiceLink, error)
}

// PortBinding publishes a container port on the host (services' expose).
type PortBinding struct {
	HostIP        string // "" for every interface
	HostPort      int
	ContainerPort int
}

// ServiceKind describes an engine of managed services to the command
// language.
type ServiceKind struct {
	Name, Title    string
	Image, Version string // defaults
	Port           int
	EnvVar         string // DATABASE_URL, REDIS_URL, ...
}

// ServiceCreate are the options of NS:create.
type ServiceCreate struct {
	Image, Version         string
	Password, RootPassword string
	CustomEnv              map[string]string
	Memory                 int64
}

// BackupInfo is one backup of a service.
type BackupInfo struct {
	Name string
	Size int64
	Time time.Time
}

// TemplateInfo describes a one-click template to the command language.
type TemplateInfo struct {
	Name, Description, Web string
	EngineSocket           bool // mounts the engine's socket: admin only
	Variables              []TemplateVariable
}

// TemplateVariable is one variable of a template.
type TemplateVariable struct {
	Name, Default string
	Secret        bool
}
