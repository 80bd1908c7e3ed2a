package commands

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/rivetr/rivetr/apps"
)

// domainsMu serializes domain changes in this process, so that the check
// for a domain used by another app and the write cannot interleave.
var domainsMu sync.Mutex

func registerDomains(r *Registry, d Deps) {
	ns := r.Namespace("domains", "Manage the domains an app is served on")
	r.Add(ns,
		Command{Name: "domains:add", Usage: "domains:add <app> <domain>...", Help: "Add domains to an app", Run: d.domainsChange("add", false)},
		Command{Name: "domains:remove", Usage: "domains:remove <app> <domain>...", Help: "Remove domains from an app", Run: d.domainsChange("remove", false)},
		Command{Name: "domains:set", Usage: "domains:set <app> <domain>...", Help: "Replace an app's domains", Run: d.domainsChange("set", false)},
		Command{Name: "domains:clear", Usage: "domains:clear <app>", Help: "Remove every domain added to an app", Run: d.domainsChange("clear", false)},
		Command{Name: "domains:enable", Usage: "domains:enable <app>", Help: "Serve an app on its domains and APP.<global domain> (the default)", Run: d.domainsChange("enable", false)},
		Command{Name: "domains:disable", Usage: "domains:disable <app>", Help: "Stop serving an app on any domain (the proxy no longer routes to it)", Run: d.domainsChange("disable", false)},
		Command{Name: "domains:add-global", Usage: "domains:add-global <domain>...", Help: "Add global domains: every app is also served at APP.<domain>", Run: d.domainsChange("add", true)},
		Command{Name: "domains:remove-global", Usage: "domains:remove-global <domain>...", Help: "Remove global domains", Run: d.domainsChange("remove", true)},
		Command{Name: "domains:set-global", Usage: "domains:set-global <domain>...", Help: "Replace the global domains (RIVETR_DOMAIN always stays)", Run: d.domainsChange("set", true)},
		Command{Name: "domains:clear-global", Usage: "domains:clear-global", Help: "Remove the global domains added (RIVETR_DOMAIN always stays)", Run: d.domainsChange("clear", true)},
		Command{Name: "domains:report", Usage: "domains:report [<app>] [--format json] [<flag>]", Help: "Display an app's domains", Run: d.domainsReport().Run},
	)
}

// globalDomain is RIVETR_DOMAIN, or "" where deploys are not wired.
func (d Deps) globalDomain() string {
	if d.Deployer == nil {
		return ""
	}
	return d.Deployer.GlobalDomain()
}

// normalizeDomains lower-cases and validates domains and refuses
// duplicates among them.
func normalizeDomains(args []string, global bool) ([]string, error) {
	out := make([]string, 0, len(args))
	for _, a := range args {
		dom := strings.ToLower(strings.TrimSpace(a))
		if err := apps.ValidateDomain(dom); err != nil {
			return nil, err
		}
		if global && strings.HasPrefix(dom, "*.") {
			return nil, Failf("Invalid global domain %q: a global domain cannot be a wildcard", dom)
		}
		if slices.Contains(out, dom) {
			return nil, Failf("Domain %s is given twice", dom)
		}
		out = append(out, dom)
	}
	return out, nil
}

// domainOwner returns the app (other than app) whose hosts include dom.
func (d Deps) domainOwner(ctx context.Context, app, dom string) (string, error) {
	names, err := d.appNames(ctx)
	if err != nil {
		return "", err
	}
	for _, other := range names {
		if other == app {
			continue
		}
		own, _, err := d.Apps.Domains(ctx, other)
		if err != nil {
			return "", err
		}
		if slices.Contains(own, dom) {
			return other, nil
		}
		hosts, err := d.Apps.Hosts(ctx, other, d.globalDomain())
		if err != nil {
			return "", err
		}
		if slices.Contains(hosts, dom) {
			return other, nil
		}
	}
	return "", nil
}

func (d Deps) domainsChange(action string, global bool) func(ctx context.Context, s *Session, args []string) error {
	return func(ctx context.Context, s *Session, args []string) error {
		cmd := "domains:" + action
		scope := apps.Global
		if global {
			cmd += "-global"
		} else {
			if len(args) == 0 {
				return Failf("Please specify an app to run the command on")
			}
			scope, args = args[0], args[1:]
			if _, err := d.Apps.App(ctx, scope); err != nil {
				return err
			}
		}
		switch action {
		case "add", "remove", "set":
			if len(args) == 0 {
				return Failf("Usage: rivetr %s %s<domain>...", cmd, map[bool]string{false: "<app> ", true: ""}[global])
			}
		default:
			if len(args) > 0 {
				return Failf("Too many arguments: unexpected %q", args[0])
			}
		}
		doms, err := normalizeDomains(args, global)
		if err != nil {
			return err
		}
		domainsMu.Lock()
		defer domainsMu.Unlock()
		current, _, err := d.Apps.Domains(ctx, scope)
		if err != nil {
			return err
		}
		next := current
		switch action {
		case "add", "set":
			if action == "set" {
				next = nil
			}
			for _, dom := range doms {
				if slices.Contains(next, dom) {
					return Failf("Domain %s is already added to %s", dom, scopeName(scope))
				}
				if global && dom == d.globalDomain() {
					return Failf("Domain %s is already the global domain (RIVETR_DOMAIN)", dom)
				}
				if !global {
					owner, err := d.domainOwner(ctx, scope, dom)
					if err != nil {
						return err
					}
					if owner != "" {
						return Failf("Domain %s is already used by app %s", dom, owner)
					}
				}
				next = append(slices.Clone(next), dom)
			}
			if len(next) > apps.MaxDomains {
				return Failf("Too many domains (max %d)", apps.MaxDomains)
			}
		case "remove":
			for _, dom := range doms {
				if global && dom == d.globalDomain() {
					return Failf("Domain %s is the global domain set by RIVETR_DOMAIN and cannot be removed here", dom)
				}
				if !slices.Contains(next, dom) {
					return Failf("Domain %s is not added to %s", dom, scopeName(scope))
				}
				next = slices.DeleteFunc(slices.Clone(next), func(x string) bool { return x == dom })
			}
		case "clear":
			next = nil
		}
		switch action {
		case "enable":
			s.Step("Enabling domains for %s", scope)
			err = d.Apps.SetSetting(ctx, scope, apps.DomainsNS, apps.DomainsEnabled, "")
		case "disable":
			s.Step("Disabling domains for %s: the proxy stops routing to it", scope)
			err = d.Apps.SetSetting(ctx, scope, apps.DomainsNS, apps.DomainsEnabled, "false")
		default:
			switch action {
			case "add":
				s.Step("Adding %s to %s", strings.Join(doms, ", "), scopeName(scope))
			case "remove":
				s.Step("Removing %s from %s", strings.Join(doms, ", "), scopeName(scope))
			case "set":
				s.Step("Setting the domains of %s to %s", scopeName(scope), strings.Join(doms, ", "))
			case "clear":
				s.Step("Clearing the domains of %s", scopeName(scope))
			}
			err = d.Apps.SetSetting(ctx, scope, apps.DomainsNS, apps.DomainsVhosts, strings.Join(next, "\n"))
		}
		if err != nil {
			return err
		}
		targets := []string{scope}
		if global {
			if targets, err = d.appNames(ctx); err != nil {
				return err
			}
		} else if err := d.Apps.RunHook(ctx, "post-domains-update", append([]string{scope, action}, doms...)...); err != nil {
			s.Warn("post-domains-update hook: %v", err)
		}
		return d.reroute(ctx, s, targets)
	}
}

// reroute re-applies the routes of the deployed apps among names.
func (d Deps) reroute(ctx context.Context, s *Session, names []string) error {
	if d.Deployer == nil {
		return nil
	}
	for _, app := range names {
		if _, ok, err := d.Apps.Store().CurrentRelease(ctx, app); err != nil || !ok {
			if err != nil {
				return err
			}
			continue
		}
		s.Step("Reconfiguring the proxy for %s", app)
		if err := d.Deployer.Reroute(ctx, app); err != nil {
			return err
		}
	}
	return nil
}

func scopeName(scope string) string {
	if scope == apps.Global {
		return "the global domains"
	}
	return scope
}

func (d Deps) domainsReport() Report {
	return Report{
		Title:    "%s domains information",
		Subjects: d.appNames,
		Fields: func(ctx context.Context, app string) ([]Field, error) {
			own, enabled, err := d.Apps.Domains(ctx, app)
			if err != nil {
				return nil, err
			}
			global, _, err := d.Apps.Domains(ctx, apps.Global)
			if err != nil {
				return nil, err
			}
			if g := d.globalDomain(); g != "" {
				global = append([]string{g}, global...)
			}
			hosts, err := d.Apps.Hosts(ctx, app, d.globalDomain())
			if err != nil {
				return nil, err
			}
			return []Field{
				{"domains-app-enabled", "Domains app enabled", boolString(enabled)},
				{"domains-app-vhosts", "Domains app vhosts", strings.Join(own, " ")},
				{"domains-global-enabled", "Domains global enabled", boolString(len(global) > 0)},
				{"domains-global-vhosts", "Domains global vhosts", strings.Join(global, " ")},
				{"domains-hosts", "Domains hosts", strings.Join(hosts, " ")},
			}, nil
		},
	}
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
