package engine

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"

	"github.com/rivetr/rivetr/apps"
)

// dockerHub is the address the engine knows Docker Hub's logins by.
const dockerHub = "https://index.docker.io/v1/"

// registryAddress is the engine's key for a registry server.
func registryAddress(server string) string {
	switch server {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return dockerHub
	}
	return server
}

// authConfigs are the registry logins a build pulls its base images with.
func (e *Engine) authConfigs(ctx context.Context) (map[string]registry.AuthConfig, error) {
	if e.logins == nil {
		return nil, nil
	}
	logins, err := e.logins(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the registry logins: %w", err)
	}
	if len(logins) == 0 {
		return nil, nil
	}
	out := make(map[string]registry.AuthConfig, len(logins))
	for _, l := range logins {
		addr := registryAddress(l.Server)
		out[addr] = registry.AuthConfig{Username: l.Username, Password: l.Password, ServerAddress: addr}
	}
	return out, nil
}

// CheckRegistryLogin asks the engine to log in to l's registry, which
// fails on a wrong user or password (registry:login checks before it
// stores a login).
func (e *Engine) CheckRegistryLogin(ctx context.Context, l apps.RegistryLogin) error {
	_, err := e.cli.RegistryLogin(ctx, client.RegistryLoginOptions{
		Username: l.Username, Password: l.Password, ServerAddress: registryAddress(l.Server),
	})
	if err != nil {
		return e.errorf("log in to %s as %s: %w", l.Server, l.Username, err)
	}
	return nil
}
