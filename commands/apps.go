package commands

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/rivetr/rivetr/apps"
)

// appService is the part of *apps.Service the commands use.
type appService interface {
	Create(ctx context.Context, name string) (apps.App, error)
	App(ctx context.Context, name string) (apps.App, error)
	Apps(ctx context.Context) ([]apps.App, error)
	Destroy(ctx context.Context, name string) error
	Rename(ctx context.Context, oldName, newName string) error
	Clone(ctx context.Context, oldName, newName string) (apps.App, error)
	SetLocked(ctx context.Context, name string, locked bool) error
	Env(ctx context.Context, scope string) (map[string]string, error)
	MergedEnv(ctx context.Context, app string) (map[string]string, error)
	UpdateEnv(ctx context.Context, scope string, change apps.EnvChange) error
	Settings(ctx context.Context, scope, namespace string) (map[string]string, error)
	SetSetting(ctx context.Context, scope, namespace, key, value string) error
	Setting(ctx context.Context, app, namespace, key, def string) (string, error)
	Domains(ctx context.Context, scope string) ([]string, bool, error)
	Hosts(ctx context.Context, app string, globalDomain string) ([]string, error)
	PortMappings(ctx context.Context, app string) ([]apps.PortMapping, error)
	WebPort(ctx context.Context, app string, def int) (int, error)
	RunHook(ctx context.Context, point string, args ...string) error
	Store() apps.Store
}

var _ appService = (*apps.Service)(nil)

// Settings of the apps namespace (apps:set).
var (
	appSettings    = []string{"deploy-source", "deploy-source-metadata"}
	globalSettings = []string{"disable-autocreation"}
)

func registerApps(r *Registry, d Deps) {
	ns := r.Namespace("apps", "Manage apps")
	r.Add(ns,
		Command{Name: "apps:create", Usage: "apps:create <app>", Help: "Create a new app", Run: d.appsCreate},
		Command{Name: "apps:destroy", Usage: "apps:destroy <app> [--force]", Help: "Permanently destroy an app", Run: d.appsDestroy},
		Command{Name: "apps:list", Usage: "apps:list [--format json]", Help: "List your apps", Run: d.appsList},
		Command{Name: "apps:exists", Usage: "apps:exists <app>", Help: "Check whether an app exists (exit 0 if it does, 20 if not)", Run: d.appsExists},
		Command{Name: "apps:rename", Usage: "apps:rename <old-app> <new-app> [--skip-deploy]", Help: "Rename an app", Run: d.appsRename},
		Command{Name: "apps:clone", Usage: "apps:clone <old-app> <new-app> [--skip-deploy] [--ignore-existing]", Help: "Clone an app's config and settings into a new app", Run: d.appsClone},
		Command{Name: "apps:lock", Usage: "apps:lock <app>", Help: "Lock an app against deploys", Run: d.appsLock(true)},
		Command{Name: "apps:unlock", Usage: "apps:unlock <app>", Help: "Unlock an app for deploys", Run: d.appsLock(false)},
		Command{Name: "apps:locked", Usage: "apps:locked <app>", Help: "Check whether an app is locked (exit 0 if it is, 1 if not)", Run: d.appsLocked},
		Command{Name: "apps:report", Usage: "apps:report [<app>] [--format json] [<flag>]", Help: "Display app information", Run: d.appsReport().Run},
		Command{Name: "apps:set", Usage: "apps:set (<app>|--global) <key> [<value>]", Help: "Set or clear an apps property (app: deploy-source, deploy-source-metadata; global: disable-autocreation)", Run: d.appsSet},
	)
}

// oneApp checks that args hold exactly one app name and returns it.
func oneApp(args []string) (string, error) {
	if len(args) == 0 {
		return "", Failf("Please specify an app to run the command on")
	}
	if len(args) > 1 {
		return "", Failf("Too many arguments: unexpected %q", args[1])
	}
	return args[0], nil
}

func (d Deps) appsCreate(ctx context.Context, s *Session, args []string) error {
	name, err := oneApp(args)
	if err != nil {
		return err
	}
	if err := apps.ValidateAppName(name); err != nil {
		return err
	}
	if _, err := d.Apps.App(ctx, name); err == nil {
		return apps.Errorf(apps.ErrAppExists, "Name is already taken")
	}
	s.Step("Creating %s...", name)
	_, err = d.Apps.Create(ctx, name)
	return err
}

func (d Deps) appsDestroy(ctx context.Context, s *Session, args []string) error {
	var force bool
	args, err := NewFlags().Bool(&force, "force").Parse(args)
	if err != nil {
		return Failf("%v", err)
	}
	name, err := oneApp(args)
	if err != nil {
		return err
	}
	if _, err := d.Apps.App(ctx, name); err != nil {
		return err
	}
	if !force && !s.Force {
		if err := confirm(s, name, fmt.Sprintf("This command will destroy app %s (including all add-ons).", name)); err != nil {
			return err
		}
	}
	s.Step("Destroying %s (including all add-ons)", name)
	return d.Apps.Destroy(ctx, name)
}

// confirm asks the user to type name, as Dokku does before destroying.
func confirm(s *Session, name, what string) error {
	s.Warn("WARNING: Potentially Destructive Action\n%s\nTo proceed, type \"%s\"", what, name)
	fmt.Fprint(s.Stderr, "\n> ")
	answer, err := s.ReadLine(1024)
	fmt.Fprintln(s.Stderr)
	if err != nil {
		return fmt.Errorf("read confirmation: %w", err)
	}
	if strings.TrimSpace(answer) != name {
		return Failf("Confirmation did not match %s. Aborted.", name)
	}
	return nil
}

func (d Deps) appsList(ctx context.Context, s *Session, args []string) error {
	var format string
	args, err := NewFlags().String(&format, "format").Parse(args)
	if err != nil {
		return Failf("%v", err)
	}
	if len(args) > 0 {
		return Failf("Too many arguments: unexpected %q", args[0])
	}
	list, err := d.Apps.Apps(ctx)
	if err != nil {
		return err
	}
	switch format {
	case "json":
		type item struct {
			Name      string `json:"name"`
			CreatedAt int64  `json:"created_at"`
			Locked    bool   `json:"locked"`
		}
		out := make([]item, len(list))
		for i, a := range list {
			out[i] = item{a.Name, a.CreatedAt.Unix(), a.Locked}
		}
		return printJSON(s, out)
	case "", "stdout":
	default:
		return Failf("Invalid --format value %q: use json or stdout", format)
	}
	if len(list) == 0 {
		s.Warn("You haven't deployed any applications yet")
		return nil
	}
	s.Header("My Apps")
	for _, a := range list {
		s.Println(a.Name)
	}
	return nil
}

func (d Deps) appsExists(ctx context.Context, s *Session, args []string) error {
	name, err := oneApp(args)
	if err != nil {
		return err
	}
	_, err = d.Apps.App(ctx, name)
	return err
}

func (d Deps) appsRename(ctx context.Context, s *Session, args []string) error {
	var skipDeploy bool
	args, err := NewFlags().Bool(&skipDeploy, "skip-deploy").Parse(args)
	if err != nil {
		return Failf("%v", err)
	}
	if len(args) != 2 {
		return Failf("Usage: rivetr apps:rename <old-app> <new-app> [--skip-deploy]")
	}
	if err := apps.ValidateAppName(args[1]); err != nil {
		return err
	}
	if _, err := d.Apps.App(ctx, args[0]); err != nil {
		return err
	}
	s.Step("Renaming %s to %s", args[0], args[1])
	return d.Apps.Rename(ctx, args[0], args[1])
}

func (d Deps) appsClone(ctx context.Context, s *Session, args []string) error {
	var skipDeploy, ignoreExisting bool
	args, err := NewFlags().Bool(&skipDeploy, "skip-deploy").Bool(&ignoreExisting, "ignore-existing").Parse(args)
	if err != nil {
		return Failf("%v", err)
	}
	if len(args) != 2 {
		return Failf("Usage: rivetr apps:clone <old-app> <new-app> [--skip-deploy] [--ignore-existing]")
	}
	if err := apps.ValidateAppName(args[1]); err != nil {
		return err
	}
	if _, err := d.Apps.App(ctx, args[0]); err != nil {
		return err
	}
	if ignoreExisting {
		if _, err := d.Apps.App(ctx, args[1]); err == nil {
			s.Warn("Name is already taken")
			return nil
		}
	}
	s.Step("Cloning %s to %s", args[0], args[1])
	_, err = d.Apps.Clone(ctx, args[0], args[1])
	return err
}

func (d Deps) appsLock(lock bool) func(context.Context, *Session, []string) error {
	return func(ctx context.Context, s *Session, args []string) error {
		name, err := oneApp(args)
		if err != nil {
			return err
		}
		if err := d.Apps.SetLocked(ctx, name, lock); err != nil {
			return err
		}
		if lock {
			s.Step("Deploy lock created")
		} else {
			s.Step("Deploy lock removed")
		}
		return nil
	}
}

func (d Deps) appsLocked(ctx context.Context, s *Session, args []string) error {
	name, err := oneApp(args)
	if err != nil {
		return err
	}
	app, err := d.Apps.App(ctx, name)
	if err != nil {
		return err
	}
	if !app.Locked {
		return Failf("Deploy lock does not exist")
	}
	s.Step("Deploy lock exists")
	return nil
}

func (d Deps) appsReport() Report {
	return Report{
		Title: "%s app information",
		Subjects: func(ctx context.Context) ([]string, error) {
			list, err := d.Apps.Apps(ctx)
			names := make([]string, len(list))
			for i, a := range list {
				names[i] = a.Name
			}
			return names, err
		},
		Fields: func(ctx context.Context, name string) ([]Field, error) {
			app, err := d.Apps.App(ctx, name)
			if err != nil {
				return nil, err
			}
			props, err := d.Apps.Settings(ctx, name, "apps")
			if err != nil {
				return nil, err
			}
			return []Field{
				{"app-created-at", "App created at", strconv.FormatInt(app.CreatedAt.Unix(), 10)},
				{"app-deploy-source", "App deploy source", props["deploy-source"]},
				{"app-deploy-source-metadata", "App deploy source metadata", props["deploy-source-metadata"]},
				{"app-dir", "App dir", d.repoDir(name)},
				{"app-locked", "App locked", strconv.FormatBool(app.Locked)},
			}, nil
		},
	}
}

func (d Deps) appsSet(ctx context.Context, s *Session, args []string) error {
	var global bool
	args, err := NewFlags().Bool(&global, "global").Parse(args)
	if err != nil {
		return Failf("%v", err)
	}
	scope, valid := apps.Global, globalSettings
	if !global {
		if len(args) == 0 {
			return Failf("Please specify an app to run the command on")
		}
		scope, args, valid = args[0], args[1:], appSettings
		if _, err := d.Apps.App(ctx, scope); err != nil {
			return err
		}
	}
	if len(args) == 0 || len(args) > 2 {
		return Failf("Usage: rivetr apps:set (<app>|--global) <key> [<value>]")
	}
	key, value := args[0], ""
	if len(args) == 2 {
		value = args[1]
	}
	if !slices.Contains(valid, key) {
		return Failf("Invalid key %q; valid keys: %s", key, strings.Join(valid, ", "))
	}
	if key == "disable-autocreation" && value != "" {
		b, err := strconv.ParseBool(value)
		if err != nil {
			return Failf("Invalid value for disable-autocreation: %q (use true or false)", value)
		}
		value = strconv.FormatBool(b)
	}
	if value == "" {
		s.Step("Unsetting %s", key)
	} else {
		s.Step("Setting %s to %s", key, value)
	}
	return d.Apps.SetSetting(ctx, scope, "apps", key, value)
}
