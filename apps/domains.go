package apps

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Settings of the domains, ports and proxy namespaces.
const (
	DomainsNS      = "domains"
	DomainsVhosts  = "vhosts"  // newline-separated domains
	DomainsEnabled = "enabled" // "false" disables the app's domains
	PortsNS        = "ports"
	PortsMap       = "map" // newline-separated scheme:host-port:container-port
	ProxyNS        = "proxy"
	MaxDomain      = 253
	MaxDomains     = 100 // per app, and global
)

// ValidateDomain checks a domain name per RFC 1123: lower case, labels of
// 1-63 characters of [a-z0-9-] that neither start nor end with '-', at most
// 253 characters in all, at least two labels, no port, no IP address. A
// wildcard is allowed only as the whole leftmost label ("*.example.com").
func ValidateDomain(d string) error {
	bad := func(why string) error {
		return Errorf(ErrInvalidValue, "Invalid domain %q: %s", clip(d), why)
	}
	if d == "" {
		return bad("empty")
	}
	if len(d) > MaxDomain {
		return bad(fmt.Sprintf("longer than %d characters", MaxDomain))
	}
	if strings.Contains(d, ":") {
		if _, _, err := net.SplitHostPort(d); err == nil {
			return bad("ports are not part of a domain")
		}
		return bad("IP addresses are not accepted, use a domain name")
	}
	if net.ParseIP(d) != nil {
		return bad("IP addresses are not accepted, use a domain name")
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 && d != "localhost" {
		return bad("a domain needs at least two labels (example.com)")
	}
	for i, l := range labels {
		if l == "*" {
			if i != 0 {
				return bad("a wildcard is allowed only as the leftmost label")
			}
			if len(labels) < 3 {
				return bad("a wildcard needs a parent of at least two labels (*.example.com)")
			}
			continue
		}
		if l == "" || len(l) > 63 {
			return bad("each label must have 1 to 63 characters")
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return bad("a label must not start or end with '-'")
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return bad("use only lower-case letters, digits, '-' and '.'")
			}
		}
	}
	if _, err := strconv.Atoi(labels[len(labels)-1]); err == nil {
		return bad("the last label must not be numeric")
	}
	return nil
}

// SplitDomains parses a stored newline-separated list.
func SplitDomains(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// Domains returns an app's own domains (vhosts) and whether they are
// enabled; scope Global returns the extra global domains.
func (s *Service) Domains(ctx context.Context, scope string) ([]string, bool, error) {
	m, err := s.Settings(ctx, scope, DomainsNS)
	if err != nil {
		return nil, false, err
	}
	return SplitDomains(m[DomainsVhosts]), m[DomainsEnabled] != "false", nil
}

// Hosts returns the hosts app is served on: nothing when its domains are
// disabled, else its own domains followed by APP.<g> for globalDomain (if
// not empty) and each extra global domain, without duplicates.
func (s *Service) Hosts(ctx context.Context, app string, globalDomain string) ([]string, error) {
	own, enabled, err := s.Domains(ctx, app)
	if err != nil || !enabled {
		return nil, err
	}
	global, _, err := s.Domains(ctx, Global)
	if err != nil {
		return nil, err
	}
	hosts := append([]string(nil), own...)
	add := func(h string) {
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	if globalDomain != "" {
		add(app + "." + globalDomain)
	}
	for _, g := range global {
		add(app + "." + strings.TrimPrefix(g, "*."))
	}
	return hosts, nil
}

// RunHook runs a hook point with args (no output stream), for commands
// that change state the core does not own (post-domains-update, ...).
func (s *Service) RunHook(ctx context.Context, point string, args ...string) error {
	return s.hook(ctx, point, args...)
}

// PortMapping is one Dokku port mapping scheme:host-port:container-port.
type PortMapping struct {
	Scheme        string
	HostPort      int
	ContainerPort int
}

func (p PortMapping) String() string {
	return fmt.Sprintf("%s:%d:%d", p.Scheme, p.HostPort, p.ContainerPort)
}

// ParsePortMapping parses and validates scheme:host-port:container-port;
// the scheme is http or https, the ports 1-65535.
func ParsePortMapping(s string) (PortMapping, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return PortMapping{}, Errorf(ErrInvalidValue, "Invalid port mapping %q: use scheme:host-port:container-port (e.g. http:80:8080)", clip(s))
	}
	if parts[0] != "http" && parts[0] != "https" {
		return PortMapping{}, Errorf(ErrInvalidValue, "Invalid port mapping %q: scheme must be http or https", clip(s))
	}
	var ports [2]int
	for i, p := range parts[1:] {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
			return PortMapping{}, Errorf(ErrInvalidValue, "Invalid port mapping %q: ports must be numbers from 1 to 65535", clip(s))
		}
		ports[i] = n
	}
	return PortMapping{Scheme: parts[0], HostPort: ports[0], ContainerPort: ports[1]}, nil
}

// PortMappings returns an app's stored port mappings (invalid lines are
// skipped: they cannot be stored through the commands).
func (s *Service) PortMappings(ctx context.Context, app string) ([]PortMapping, error) {
	m, err := s.Settings(ctx, app, PortsNS)
	if err != nil {
		return nil, err
	}
	var out []PortMapping
	for _, l := range SplitDomains(m[PortsMap]) {
		if p, err := ParsePortMapping(l); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// WebPort is the port app's web process listens on (and gets as PORT):
// the container port of its first http mapping, else def.
func (s *Service) WebPort(ctx context.Context, app string, def int) (int, error) {
	ms, err := s.PortMappings(ctx, app)
	if err != nil {
		return 0, err
	}
	for _, p := range ms {
		if p.Scheme == "http" {
			return p.ContainerPort, nil
		}
	}
	return def, nil
}
