package commands

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/rivetr/rivetr/apps"
)

// templateCatalog is the one-click templates' side (services.API).
type templateCatalog interface {
	TemplateList() ([]apps.TemplateInfo, error)
	TemplateGet(name string) (apps.TemplateInfo, error)
	TemplateRender(name, instance, domain string, overrides, existing map[string]string) (map[string]string, []byte, error)
}

// repoWriter puts files in an app's repository (gitserver.Repos).
type repoWriter interface {
	CommitFiles(ctx context.Context, app, branch string, files map[string][]byte, message string) (string, error)
}

func registerTemplates(r *Registry, d Deps) {
	cat, ok := d.Services.(templateCatalog)
	if !ok || d.Repos == nil {
		return
	}
	ns := r.Namespace("templates", "Deploy one-click services from templates")
	r.Add(ns,
		Command{Name: "templates:list", Usage: "templates:list", Help: "List the one-click templates", Run: func(ctx context.Context, s *Session, args []string) error {
			if len(args) > 0 {
				return Failf("Usage: rivetr templates:list")
			}
			list, err := cat.TemplateList()
			if err != nil {
				return err
			}
			s.Header("Templates")
			for _, t := range list {
				s.Printf("%-14s %s\n", t.Name, t.Description)
			}
			return nil
		}},
		Command{Name: "templates:info", Usage: "templates:info <template>", Help: "Describe a template and its variables", Run: func(ctx context.Context, s *Session, args []string) error {
			if len(args) != 1 {
				return Failf("Usage: rivetr templates:info <template>")
			}
			t, err := cat.TemplateGet(args[0])
			if err != nil {
				return Failf("%v", err)
			}
			s.Header("%s template", t.Name)
			s.Detail("Description:  %s", t.Description)
			s.Detail("Web service:  %s", map[bool]string{true: t.Web, false: "none"}[t.Web != ""])
			if t.EngineSocket {
				s.Detail("Engine socket: mounted (deploy on the server only)")
			}
			s.Detail("Variables:")
			for _, v := range t.Variables {
				val := v.Default
				if v.Secret {
					val = "(generated secret)"
				}
				s.Detail("  %s=%s", v.Name, val)
			}
			return nil
		}},
		Command{Name: "templates:deploy", Usage: "templates:deploy <template> [<instance>] [--set KEY=VALUE]...", Help: "Deploy a template as a new app (default name: the template's)", Run: d.templatesDeploy(cat)},
	)
}

func (d Deps) templatesDeploy(cat templateCatalog) func(ctx context.Context, s *Session, args []string) error {
	return func(ctx context.Context, s *Session, args []string) error {
		overrides := map[string]string{}
		var rest []string
		for i := 0; i < len(args); i++ {
			a := args[i]
			if a == "--set" && i+1 < len(args) {
				i++
				a = "--set=" + args[i]
			}
			if kv, ok := strings.CutPrefix(a, "--set="); ok {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || apps.ValidateEnvKey(k) != nil {
					return Failf("Invalid --set %q: use KEY=VALUE", kv)
				}
				overrides[k] = v
				continue
			}
			rest = append(rest, a)
		}
		if len(rest) < 1 || len(rest) > 2 {
			return Failf("Usage: rivetr templates:deploy <template> [<instance>] [--set KEY=VALUE]...")
		}
		t, err := cat.TemplateGet(rest[0])
		if err != nil {
			return Failf("%v", err)
		}
		if t.EngineSocket && !s.Admin {
			return Failf("Template %s mounts the container engine's socket (root on this host): deploy it on the server with the rivetr CLI", t.Name)
		}
		instance := t.Name
		if len(rest) == 2 {
			instance = rest[1]
		}
		if err := apps.ValidateAppName(instance); err != nil {
			return err
		}
		if d.Deployer == nil {
			return Failf("Deploys are not available on this server")
		}
		domain := instance
		if g := d.globalDomain(); g != "" {
			domain = instance + "." + g
		}
		values, compose, err := cat.TemplateRender(t.Name, instance, domain, overrides, nil)
		if err != nil {
			return Failf("%v", err)
		}
		s.Step("Creating %s from template %s", instance, t.Name)
		if _, err := d.Apps.Create(ctx, instance); err != nil {
			return err
		}
		if err := d.Apps.UpdateEnv(ctx, instance, apps.EnvChange{Set: values}); err != nil {
			return err
		}
		for _, kv := range [][3]string{{"git", apps.GitDeployBranch, "main"}, {"builder", "selected", "compose"}} {
			if err := d.Apps.SetSetting(ctx, instance, kv[0], kv[1], kv[2]); err != nil {
				return err
			}
		}
		if t.EngineSocket {
			sum := sha256.Sum256(compose)
			if err := d.Apps.SetSetting(ctx, instance, apps.ComposeAdminNS, "engine-socket", hex.EncodeToString(sum[:])); err != nil {
				return err
			}
		}
		if _, err := d.Repos.CommitFiles(ctx, instance, "main", map[string][]byte{"compose.yaml": compose}, "templates:deploy "+t.Name); err != nil {
			return fmt.Errorf("write the compose file of %s: %w", instance, err)
		}
		if err := d.Deployer.Rebuild(ctx, instance, s.User, s.Stdout); err != nil {
			s.Warn("The deploy failed; %s stays with its config and compose file: fix the cause and run ps:rebuild %s, or apps:destroy %s", instance, instance, instance)
			return err
		}
		return nil
	}
}
