package commands

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rivetr/rivetr/apps"
)

// property describes one key of a `NS:set` command.
type property struct {
	key, label, def string
	validate        func(string) error
	// secret values are never printed back: :set and :report say only
	// whether one is set.
	secret bool
	// show, if set, renders a value for :set and :report (e.g. hides a
	// token written into a URL).
	show func(string) string
}

// display is how :set and :report print value.
func (p property) display(v string) string {
	switch {
	case p.secret:
		return masked(v)
	case p.show != nil && v != "":
		return p.show(v)
	}
	return v
}

// masked is how a secret property's value is reported.
func masked(v string) string {
	if v == "" {
		return ""
	}
	return "(set)"
}

// propertyNamespace registers NS:set and NS:report for simple per-app (and
// global) properties stored in the settings table under ns.
func (d Deps) propertyNamespace(r *Registry, ns, help string, props []property) {
	d.propertyNamespaceWith(r, ns, help, props, nil)
}

// propertyNamespaceWith is propertyNamespace with extra report fields.
func (d Deps) propertyNamespaceWith(r *Registry, ns, help string, props []property, extra func(ctx context.Context, app string) ([]Field, error)) {
	n := r.Namespace(ns, help)
	keys := make([]string, len(props))
	for i, p := range props {
		keys[i] = p.key
	}
	r.Add(n,
		Command{Name: ns + ":set", Usage: ns + ":set (<app>|--global) <key> [<value>]", Help: "Set or clear a property (" + strings.Join(keys, ", ") + ")",
			Run: func(ctx context.Context, s *Session, args []string) error {
				scope, args, err := d.scopeArg(ctx, args)
				if err != nil {
					return err
				}
				if len(args) == 0 || len(args) > 2 {
					return Failf("Usage: rivetr %s:set (<app>|--global) <key> [<value>]", ns)
				}
				i := slices.IndexFunc(props, func(p property) bool { return p.key == args[0] })
				if i < 0 {
					return Failf("Invalid key %q; valid keys: %s", args[0], strings.Join(keys, ", "))
				}
				value := ""
				if len(args) == 2 {
					value = args[1]
				}
				if value != "" && props[i].validate != nil {
					if err := props[i].validate(value); err != nil {
						return Failf("Invalid value for %s: %v", args[0], err)
					}
				}
				switch {
				case value == "":
					s.Step("Unsetting %s", args[0])
				case props[i].secret:
					s.Step("Setting %s", args[0])
				default:
					s.Step("Setting %s to %s", args[0], props[i].display(value))
				}
				return d.Apps.SetSetting(ctx, scope, ns, args[0], value)
			}},
		Command{Name: ns + ":report", Usage: ns + ":report [<app>] [--format json] [<flag>]", Help: "Display " + ns + " settings of an app",
			Run: Report{
				Title:    "%s " + ns + " information",
				Subjects: d.appNames,
				Fields: func(ctx context.Context, app string) ([]Field, error) {
					own, err := d.Apps.Settings(ctx, app, ns)
					if err != nil {
						return nil, err
					}
					global, err := d.Apps.Settings(ctx, apps.Global, ns)
					if err != nil {
						return nil, err
					}
					var fields []Field
					if ns == "checks" {
						// Dokku's lists of process types with checks disabled
						// or skipped ("none" when empty).
						for _, k := range []string{"disabled", "skipped"} {
							v := own[k]
							if v == "" {
								v = "none"
							}
							fields = append(fields, Field{"checks-" + k + "-list", "Checks " + k + " list", v})
						}
					}
					for _, p := range props {
						label := strings.ToUpper(ns[:1]) + strings.ReplaceAll(ns[1:], "-", " ") + " " + strings.ReplaceAll(p.key, "-", " ")
						eff := p.def
						if v, ok := global[p.key]; ok {
							eff = v
						}
						if v, ok := own[p.key]; ok {
							eff = v
						}
						eff, g, o := p.display(eff), p.display(global[p.key]), p.display(own[p.key])
						fields = append(fields,
							Field{ns + "-computed-" + p.key, label + " (computed)", eff},
							Field{ns + "-global-" + p.key, label + " (global)", g},
							Field{ns + "-" + p.key, label, o},
						)
					}
					if extra != nil {
						more, err := extra(ctx, app)
						if err != nil {
							return nil, err
						}
						fields = append(fields, more...)
					}
					return fields, nil
				},
			}.Run},
	)
}

func (d Deps) appNames(ctx context.Context) ([]string, error) {
	list, err := d.Apps.Apps(ctx)
	names := make([]string, len(list))
	for i, a := range list {
		names[i] = a.Name
	}
	return names, err
}

func validBool(v string) error {
	if v != "true" && v != "false" {
		return fmt.Errorf("use true or false")
	}
	return nil
}

func validBranch(v string) error { return apps.ValidateGitRef(v) }

func validEnvKey(v string) error { return apps.ValidateEnvKey(v) }

func registerGit(r *Registry, d Deps) {
	d.propertyNamespaceWith(r, "git", "Manage git deploys: deploy branch, mirroring a remote repository, webhooks", []property{
		{key: apps.GitDeployBranch, def: "", validate: validBranch},
		{key: apps.GitKeepGitDir, def: "false", validate: validBool},
		{key: apps.GitRevEnvVar, def: apps.DefaultRevEnv, validate: validEnvKey},
		{key: apps.GitSourceURL, def: "", validate: d.validSourceURL, show: d.Mirrors.RedactURL},
		{key: apps.GitSourceBranch, def: "", validate: validBranch},
		{key: apps.GitWebhookSecret, def: "", validate: validWebhookSecret, secret: true},
		{key: apps.GitDeployTimeout, def: apps.DefaultJobTimeout.String(), validate: validTimeout},
	}, d.gitReportFields)
	registerMirror(r, d)
	registerGitSources(r, d)
	d.propertyNamespace(r, "builder-dockerfile", "Manage the Dockerfile builder", []property{
		{key: "dockerfile-path", def: "", validate: func(v string) error {
			if strings.HasPrefix(v, "/") || strings.Contains(v, "..") {
				return fmt.Errorf("%q must be a relative path inside the repository", v)
			}
			return nil
		}},
	})
	ps := r.Namespace("ps", "Manage app processes")
	r.Add(ps, Command{Name: "ps:rebuild", Usage: "ps:rebuild <app>", Help: "Rebuild and redeploy the deploy branch of an app",
		Run: func(ctx context.Context, s *Session, args []string) error {
			name, err := oneApp(args)
			if err != nil {
				return err
			}
			if d.Deployer == nil {
				return Failf("Deploys are not available on this server")
			}
			return d.Deployer.Rebuild(ctx, name, s.User, s.Stdout)
		}})
}

func registerTokens(r *Registry, d Deps) {
	ns := r.Namespace("tokens", "Manage API tokens (HTTP git and the REST API)")
	r.Add(ns,
		Command{Name: "tokens:create", Usage: "tokens:create <name>", Help: "Create a token and print its secret once",
			Run: func(ctx context.Context, s *Session, args []string) error {
				if len(args) != 1 {
					return Failf("Usage: rivetr tokens:create <name>")
				}
				if err := apps.ValidateKeyName(args[0]); err != nil {
					return Failf("Invalid token name %q", args[0])
				}
				buf := make([]byte, 32)
				if _, err := rand.Read(buf); err != nil {
					return fmt.Errorf("generate token: %w", err)
				}
				secret := "rvt_" + base64.RawURLEncoding.EncodeToString(buf)
				err := d.Apps.Store().AddToken(ctx, apps.Token{Name: args[0], Hash: apps.HashToken(secret), CreatedAt: time.Now().UTC()})
				if err != nil {
					return err
				}
				s.Step("Created token %s; it is shown only now:", args[0])
				s.Println(secret)
				return nil
			}},
		Command{Name: "tokens:list", Usage: "tokens:list [--format json]", Help: "List tokens (names and dates, never secrets)",
			Run: func(ctx context.Context, s *Session, args []string) error {
				var format string
				args, err := NewFlags().String(&format, "format").Parse(args)
				if err != nil || len(args) > 0 {
					return Failf("Usage: rivetr tokens:list [--format json]")
				}
				list, err := d.Apps.Store().Tokens(ctx)
				if err != nil {
					return err
				}
				if format == "json" {
					type item struct {
						Name      string `json:"name"`
						CreatedAt int64  `json:"created_at"`
						LastUsed  int64  `json:"last_used"`
					}
					out := make([]item, len(list))
					for i, t := range list {
						out[i] = item{t.Name, t.CreatedAt.Unix(), 0}
						if !t.LastUsed.IsZero() {
							out[i].LastUsed = t.LastUsed.Unix()
						}
					}
					return printJSON(s, out)
				}
				s.Header("Tokens")
				for _, t := range list {
					used := "never"
					if !t.LastUsed.IsZero() {
						used = t.LastUsed.Format(time.RFC3339)
					}
					s.Printf("%s  created %s  last used %s\n", t.Name, t.CreatedAt.Format(time.RFC3339), used)
				}
				return nil
			}},
		Command{Name: "tokens:revoke", Usage: "tokens:revoke <name>", Help: "Revoke a token",
			Run: func(ctx context.Context, s *Session, args []string) error {
				if len(args) != 1 {
					return Failf("Usage: rivetr tokens:revoke <name>")
				}
				if err := d.Apps.Store().RemoveToken(ctx, args[0]); err != nil {
					return err
				}
				s.Step("Revoked token %s", args[0])
				return nil
			}},
	)
}
