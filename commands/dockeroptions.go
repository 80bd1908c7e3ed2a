package commands

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/rivetr/rivetr/apps"
)

// docker-options stores extra engine options per phase, as Dokku does.
// The build phase understands --build-arg KEY[=VALUE] (a bare KEY takes its
// value from the app's config) and --label KEY=VALUE; the deploy phase (the
// app's containers and release tasks) and the run phase (one-off
// containers) -e/--env KEY=VALUE and -l/--label KEY=VALUE. Other options
// are refused when added, rather than stored and ignored. They reach the
// deploy as the built-in docker-args-* hooks.
var dockerPhases = []string{"build", "deploy", "run"}

func registerDockerOptions(r *Registry, d Deps) {
	ns := r.Namespace("docker-options", "Manage extra engine options per phase (build: --build-arg, --label; deploy, run: -e, -l)")
	r.Add(ns,
		Command{Name: "docker-options:add", Usage: "docker-options:add <app> <phase(s)> OPTION", Help: "Add an option to phases (comma-separated)", Run: d.dockerOptionsChange(true)},
		Command{Name: "docker-options:remove", Usage: "docker-options:remove <app> <phase(s)> OPTION", Help: "Remove an option from phases", Run: d.dockerOptionsChange(false)},
		Command{Name: "docker-options:clear", Usage: "docker-options:clear <app> [<phase(s)>]", Help: "Remove every option of phases (default all)", Run: d.dockerOptionsClear},
		Command{Name: "docker-options:report", Usage: "docker-options:report [<app>] [--format json] [<flag>]", Help: "Display an app's options",
			Run: Report{Title: "%s docker options information", Subjects: d.appNames,
				Fields: func(ctx context.Context, app string) ([]Field, error) {
					set, err := d.Apps.Settings(ctx, app, "docker-options")
					if err != nil {
						return nil, err
					}
					var f []Field
					for _, p := range dockerPhases {
						f = append(f, Field{"docker-options-" + p, "Docker options " + p, strings.ReplaceAll(set[p], "\n", " ")})
					}
					return f, nil
				}}.Run},
	)
}

func parsePhases(s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if !slices.Contains(dockerPhases, p) {
			return nil, fmt.Errorf("Invalid phase %q: use build, deploy or run (comma-separated)", p)
		}
		out = append(out, p)
	}
	return out, nil
}

// ValidateBuildOption checks an option of the build phase.
func ValidateBuildOption(opt string) error {
	flag, value := apps.SplitOption(opt)
	switch flag {
	case "--build-arg":
		k, _, _ := strings.Cut(value, "=")
		return apps.ValidateEnvKey(k)
	case "--label":
		k, _, ok := strings.Cut(value, "=")
		if !ok || k == "" {
			return fmt.Errorf("--label needs KEY=VALUE")
		}
		return nil
	}
	return fmt.Errorf("unsupported build option %q: the build phase takes --build-arg KEY[=VALUE] and --label KEY=VALUE", flag)
}

func (d Deps) dockerOptionsChange(add bool) func(context.Context, *Session, []string) error {
	return func(ctx context.Context, s *Session, args []string) error {
		if len(args) < 3 {
			return Failf("Usage: rivetr docker-options:%s <app> <phase(s)> OPTION", map[bool]string{true: "add", false: "remove"}[add])
		}
		app, phases, opt := args[0], args[1], strings.Join(args[2:], " ")
		if _, err := d.Apps.App(ctx, app); err != nil {
			return err
		}
		list, err := parsePhases(phases)
		if err != nil {
			return Failf("%v", err)
		}
		if strings.ContainsAny(opt, "\n\x00") {
			return Failf("An option cannot contain a newline")
		}
		set, err := d.Apps.Settings(ctx, app, "docker-options")
		if err != nil {
			return err
		}
		for _, p := range list {
			if add && p == "build" {
				if err := ValidateBuildOption(opt); err != nil {
					return Failf("%v", err)
				}
			}
			if add && p != "build" {
				if err := apps.ValidateRunOptions(opt); err != nil {
					return Failf("Invalid %s option: %v", p, err)
				}
			}
			var opts []string
			if set[p] != "" {
				opts = strings.Split(set[p], "\n")
			}
			if add && !slices.Contains(opts, opt) {
				opts = append(opts, opt)
			}
			if !add {
				opts = slices.DeleteFunc(opts, func(o string) bool { return o == opt })
			}
			if err := d.Apps.SetSetting(ctx, app, "docker-options", p, strings.Join(opts, "\n")); err != nil {
				return err
			}
		}
		if add {
			s.Step("Added %s to the %s phase", opt, phases)
		} else {
			s.Step("Removed %s from the %s phase", opt, phases)
		}
		return nil
	}
}

func (d Deps) dockerOptionsClear(ctx context.Context, s *Session, args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return Failf("Usage: rivetr docker-options:clear <app> [<phase(s)>]")
	}
	if _, err := d.Apps.App(ctx, args[0]); err != nil {
		return err
	}
	list := dockerPhases
	if len(args) == 2 {
		var err error
		if list, err = parsePhases(args[1]); err != nil {
			return Failf("%v", err)
		}
	}
	for _, p := range list {
		if err := d.Apps.SetSetting(ctx, args[0], "docker-options", p, ""); err != nil {
			return err
		}
	}
	s.Step("Cleared docker options of %s", strings.Join(list, ", "))
	return nil
}
