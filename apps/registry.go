package apps

import (
	"context"
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
// name or IP, optionally with a port (ValidHost).
func ValidateRegistryServer(s string) error {
	if !ValidHost(s) {
		return Errorf(ErrInvalidName, "Invalid registry %q: use a host name, optionally with :PORT (e.g. ghcr.io, registry.example.com:5000)", clip(s))
	}
	return nil
}

// ValidateImageRef checks an image reference (git:from-image,
// git:load-image) before it is written into a Dockerfile: registry, path, tag and digest characters
// only, so nothing can add a line or an instruction.
func ValidateImageRef(ref string) error {
	bad := ref == "" || len(ref) > 255
	for i := 0; i < len(ref) && !bad; i++ {
		c := ref[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-' || c == ':' || c == '/' || c == '@'):
		default:
			bad = true
		}
	}
	if bad {
		return Errorf(ErrInvalidName, "Invalid image %q: use a reference such as registry.example.com/team/app:1.2 or app@sha256:...", clip(ref))
	}
	return nil
}
