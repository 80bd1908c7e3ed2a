package commands

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rivetr/rivetr/apps"
)

// defaultWebPort is the PORT a web process gets without a port mapping.
const defaultWebPort = 5000

func registerPorts(r *Registry, d Deps) {
	ns := r.Namespace("ports", "Manage an app's port mappings (scheme:host-port:container-port)")
	r.Add(ns,
		Command{Name: "ports:add", Usage: "ports:add <app> <scheme>:<host-port>:<container-port>...", Help: "Add port mappings (applied on the next deploy or ps:restart)", Run: d.portsChange("add")},
		Command{Name: "ports:remove", Usage: "ports:remove <app> (<scheme>:<host-port>:<container-port>|<host-port>)...", Help: "Remove port mappings", Run: d.portsChange("remove")},
		Command{Name: "ports:set", Usage: "ports:set <app> <scheme>:<host-port>:<container-port>...", Help: "Replace an app's port mappings", Run: d.portsChange("set")},
		Command{Name: "ports:clear", Usage: "ports:clear <app>", Help: "Remove every port mapping (the web process listens on PORT=5000)", Run: d.portsChange("clear")},
		Command{Name: "ports:list", Usage: "ports:list <app> [--format json]", Help: "List port mappings", Run: d.portsList},
		Command{Name: "ports:report", Usage: "ports:report [<app>] [--format json] [<flag>]", Help: "Display port mappings", Run: d.portsReport().Run},
	)
}

func (d Deps) portsChange(action string) func(ctx context.Context, s *Session, args []string) error {
	return func(ctx context.Context, s *Session, args []string) error {
		if len(args) == 0 {
			return Failf("Please specify an app to run the command on")
		}
		app, args := args[0], args[1:]
		if _, err := d.Apps.App(ctx, app); err != nil {
			return err
		}
		if action == "clear" && len(args) > 0 {
			return Failf("Too many arguments: unexpected %q", args[0])
		}
		if action != "clear" && len(args) == 0 {
			return Failf("Usage: rivetr ports:%s <app> <scheme>:<host-port>:<container-port>...", action)
		}
		current, err := d.Apps.PortMappings(ctx, app)
		if err != nil {
			return err
		}
		var next []apps.PortMapping
		switch action {
		case "add", "set":
			if action == "add" {
				next = current
			}
			for _, a := range args {
				m, err := apps.ParsePortMapping(a)
				if err != nil {
					return err
				}
				if slices.ContainsFunc(next, func(x apps.PortMapping) bool { return x.Scheme == m.Scheme && x.HostPort == m.HostPort }) {
					return Failf("Port mapping %s: %s host port %d is already mapped", m, m.Scheme, m.HostPort)
				}
				next = append(slices.Clone(next), m)
			}
		case "remove":
			next = slices.Clone(current)
			for _, a := range args {
				var match func(apps.PortMapping) bool
				if n, err := strconv.Atoi(a); err == nil && strconv.Itoa(n) == a {
					match = func(x apps.PortMapping) bool { return x.HostPort == n }
				} else {
					m, err := apps.ParsePortMapping(a)
					if err != nil {
						return err
					}
					match = func(x apps.PortMapping) bool { return x == m }
				}
				if !slices.ContainsFunc(next, match) {
					return Failf("No port mapping %s on %s", a, app)
				}
				next = slices.DeleteFunc(next, match)
			}
		}
		lines := make([]string, len(next))
		for i, m := range next {
			lines[i] = m.String()
		}
		if action == "clear" {
			s.Step("Clearing the port mappings of %s", app)
		} else {
			s.Step("Setting the port mappings of %s to %s", app, orNone(strings.Join(lines, " ")))
		}
		if err := d.Apps.SetSetting(ctx, app, apps.PortsNS, apps.PortsMap, strings.Join(lines, "\n")); err != nil {
			return err
		}
		port, err := d.Apps.WebPort(ctx, app, defaultWebPort)
		if err != nil {
			return err
		}
		s.Detail("The web process listens on PORT=%d from the next deploy or ps:restart", port)
		return nil
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func (d Deps) portsList(ctx context.Context, s *Session, args []string) error {
	app, format, err := appAndFormat(args)
	if err != nil {
		return err
	}
	if _, err := d.Apps.App(ctx, app); err != nil {
		return err
	}
	ms, err := d.Apps.PortMappings(ctx, app)
	if err != nil {
		return err
	}
	if format == "json" {
		type item struct {
			Scheme        string `json:"scheme"`
			HostPort      int    `json:"host_port"`
			ContainerPort int    `json:"container_port"`
		}
		out := make([]item, len(ms))
		for i, m := range ms {
			out[i] = item{m.Scheme, m.HostPort, m.ContainerPort}
		}
		return printJSON(s, out)
	}
	if len(ms) == 0 {
		s.Warn("No port mappings configured for app")
		return nil
	}
	s.Header("Port mappings for %s", app)
	s.Printf("    %-8s %-10s %-15s\n", "scheme", "host port", "container port")
	for _, m := range ms {
		s.Printf("    %-8s %-10d %-15d\n", m.Scheme, m.HostPort, m.ContainerPort)
	}
	return nil
}

func (d Deps) portsReport() Report {
	return Report{
		Title:    "%s ports information",
		Subjects: d.appNames,
		Fields: func(ctx context.Context, app string) ([]Field, error) {
			ms, port, err := d.portFields(ctx, app)
			if err != nil {
				return nil, err
			}
			return []Field{
				{"ports-map", "Port map", ms},
				{"ports-web-port", "Port web", strconv.Itoa(port)},
			}, nil
		},
	}
}

// portFields returns an app's mappings (space-separated) and web port.
func (d Deps) portFields(ctx context.Context, app string) (string, int, error) {
	ms, err := d.Apps.PortMappings(ctx, app)
	if err != nil {
		return "", 0, err
	}
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	port, err := d.Apps.WebPort(ctx, app, defaultWebPort)
	return strings.Join(parts, " "), port, err
}

func registerProxy(r *Registry, d Deps) {
	ns := r.Namespace("proxy", "Manage the proxy in front of an app")
	r.Add(ns,
		Command{Name: "proxy:report", Usage: "proxy:report [<app>] [--format json] [<flag>]", Help: "Display an app's proxy information", Run: d.proxyReport().Run},
		Command{Name: "proxy:set", Usage: "proxy:set (<app>|--global) https-redirect [true|false]", Help: "Set or clear a proxy property (https-redirect: redirect HTTP to HTTPS when the app has a certificate; default true)", Run: d.proxySet},
	)
}

// proxyProps are the keys of proxy:set, with their defaults.
var proxyProps = map[string]string{"https-redirect": "true"}

func (d Deps) proxySet(ctx context.Context, s *Session, args []string) error {
	scope, args, err := d.scopeArg(ctx, args)
	if err != nil {
		return err
	}
	if len(args) == 0 || len(args) > 2 {
		return Failf("Usage: rivetr proxy:set (<app>|--global) https-redirect [true|false]")
	}
	if _, ok := proxyProps[args[0]]; !ok {
		return Failf("Invalid key %q; valid keys: https-redirect", args[0])
	}
	value := ""
	if len(args) == 2 {
		value = args[1]
		if err := validBool(value); err != nil {
			return Failf("Invalid value for %s: %v", args[0], err)
		}
		s.Step("Setting %s to %s", args[0], value)
	} else {
		s.Step("Unsetting %s", args[0])
	}
	return d.Apps.SetSetting(ctx, scope, apps.ProxyNS, args[0], value)
}

func (d Deps) proxyReport() Report {
	return Report{
		Title:    "%s proxy information",
		Subjects: d.appNames,
		Fields: func(ctx context.Context, app string) ([]Field, error) {
			ms, port, err := d.portFields(ctx, app)
			if err != nil {
				return nil, err
			}
			hosts, err := d.Apps.Hosts(ctx, app, d.globalDomain())
			if err != nil {
				return nil, err
			}
			redirect, err := d.Apps.Setting(ctx, app, apps.ProxyNS, "https-redirect", proxyProps["https-redirect"])
			if err != nil {
				return nil, err
			}
			if ms == "" {
				ms = fmt.Sprintf("http:80:%d", port)
			}
			return []Field{
				{"proxy-enabled", "Proxy enabled", boolString(len(hosts) > 0)},
				{"proxy-type", "Proxy type", "rivetr"},
				{"proxy-port-map", "Proxy port map", ms},
				{"proxy-hosts", "Proxy hosts", strings.Join(hosts, " ")},
				{"proxy-https-redirect", "Proxy https redirect", redirect},
			}, nil
		},
	}
}
