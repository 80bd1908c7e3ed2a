package apps

import (
	"context"
	"strings"
	"time"
)

// RegistryLogin is a login to a container registry (registry:login).
// Builds use every login to pull their base images, so git:from-image can
// deploy private images.
type RegistryLogin struct {
	Server    string // host[:port], e.g. ghcr.io or registry.example.com:5000; docker.io for Docker Hub
	Username  string
	Password  string
	CreatedAt time.Time
}

// RegistryStore keeps the registry logins.
type RegistryStore interface {
	// SetRegistryLogin stores a server's login; an empty Password removes it.
	SetRegistryLogin(ctx context.Context, l RegistryLogin) error
	RegistryLogins(ctx context.Context) ([]RegistryLogin, error)
}

// ValidateRegistryServer checks a registry address: a lower-case host
// name or IP, optionally with a port.
func ValidateRegistryServer(s string) error {
	host, port, hasPort := strings.Cut(s, ":")
	ok := host != "" && len(s) <= 260 && !strings.HasPrefix(host, "-") && !strings.HasPrefix(host, ".")
	for i := 0; i < len(host) && ok; i++ {
		c := host[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-'
	}
	if hasPort {
		ok = ok && port != "" && len(port) <= 5
		for i := 0; i < len(port) && ok; i++ {
			ok = port[i] >= '0' && port[i] <= '9'
		}
	}
	if !ok {
		return Errorf(ErrInvalidName, "Invalid registry %q: use a host name, optionally with :PORT (e.g. ghcr.io, registry.example.com:5000)", clip(s))
	}
	return nil
}
