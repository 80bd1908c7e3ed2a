package commands

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rivetr/rivetr/apps"
)

// deployer is the part of the core's deployer the commands drive.
type deployer interface {
	Deploy(ctx context.Context, req apps.DeployRequest) error
	Rebuild(ctx context.Context, app, user string, out io.Writer) error
	Redeploy(ctx context.Context, app, reason, user string, out io.Writer) error
	Rollback(ctx context.Context, app string, number int, user string, out io.Writer) error
	Stop(ctx context.Context, app string) error
	RunOneOff(ctx context.Context, app string, cmd []string, env map[string]string, st apps.Streams, tty bool) (int, error)
	RunDetached(ctx context.Context, app string, cmd []string, env map[string]string) (string, error)
	OneOffs(ctx context.Context, app string) ([]apps.Container, error)
	Processes(ctx context.Context, app string) ([]apps.Container, error)
	Enter(ctx context.Context, app, typ, container string, cmd []string, st apps.Streams, tty bool) (int, error)
	Logs(ctx context.Context, app, typ string, opts apps.LogOptions, quiet bool, out io.Writer) error
	CheckNow(ctx context.Context, app, typ string, out io.Writer) error
	// Reroute re-applies an app's route with its current hosts (domains)
	// to its running web containers, without a redeploy.
	Reroute(ctx context.Context, app string) error
	// GlobalDomain is RIVETR_DOMAIN: app APP is served at APP.<domain>.
	GlobalDomain() string
}

var procTypeRe = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// validProcType accepts a Procfile process type: 1 to 63 letters, digits,
// "_" and "-" (the length is checked apart: a counted repetition compiles
// into a large regexp).
func validProcType(s string) bool { return len(s) <= 63 && procTypeRe.MatchString(s) }

// needDeployer fails clearly where deploys are not wired.
func (d Deps) needDeployer() error {
	if d.Deployer == nil {
		return Failf("Deploys are not available on this server")
	}
	return nil
}

// restart redeploys app after a change unless asked not to; nothing is
// restarted before the first deploy.
func (d Deps) restart(ctx context.Context, s *Session, app, reason string, noRestart bool) error {
	if noRestart || app == apps.Global || d.Deployer == nil {
		return nil
	}
	if _, ok, err := d.Apps.Store().CurrentRelease(ctx, app); err != nil || !ok {
		return err
	}
	s.Step("Restarting app %s", app)
	return d.Deployer.Redeploy(ctx, app, reason, s.User, s.Stdout)
}

func registerDeploy(r *Registry, d Deps) {
	rel := r.Namespace("releases", "List releases and roll back to one")
	r.Add(rel,
		Command{Name: "releases", ArgsRequired: true, Usage: "releases <app> [--format json]", Help: "List an app's releases, newest first", Run: d.releasesList},
		Command{Name: "releases:info", Usage: "releases:info <app> <number>", Help: "Show one release with its deploy log", Run: d.releasesInfo},
		Command{Name: "releases:rollback", Usage: "releases:rollback <app> [<number>]", Help: "Redeploy an earlier release's image and config (default: the one before the current)", Run: d.releasesRollback},
	)
	d.propertyNamespace(r, "releases", "List releases and roll back to one", []property{
		{key: "retention", def: "2", validate: func(v string) error {
			if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 100 {
				return fmt.Errorf("want a number of releases from 1 to 100")
			}
			return nil
		}},
	})

	ps := r.Namespace("ps", "Manage app processes")
	r.Add(ps,
		Command{Name: "ps:scale", Usage: "ps:scale [--skip-deploy] <app> [<type>=<count>...]", Help: "Show or set how many containers of each process type run", Run: d.psScale},
		Command{Name: "ps:start", Usage: "ps:start <app>", Help: "Start an app's processes (a new release of the current image)", Run: d.psRedeploy("start")},
		Command{Name: "ps:restart", Usage: "ps:restart <app>", Help: "Restart an app's processes with zero downtime", Run: d.psRedeploy("restart")},
		Command{Name: "ps:stop", Usage: "ps:stop <app>", Help: "Stop an app's processes and stop routing to it", Run: d.psStop},
		Command{Name: "ps:restore", Usage: "ps:restore [<app>]", Help: "Start apps that are not stopped but have no running containers", Run: d.psRestore},
		Command{Name: "ps:report", Usage: "ps:report [<app>] [--format json] [<flag>]", Help: "Display process information", Run: d.psReport().Run},
		Command{Name: "ps:set", Usage: "ps:set <app> restart-policy|stop-timeout-seconds [<value>]", Help: "Set or clear a process property", Run: d.psSet},
	)

	ck := r.Namespace("checks", "Manage zero-downtime checks")
	r.Add(ck,
		Command{Name: "checks:enable", Usage: "checks:enable <app> [<type>,...]", Help: "Enable checks (and zero downtime) for process types (default all)", Run: d.checksList("enable")},
		Command{Name: "checks:disable", Usage: "checks:disable <app> [<type>,...]", Help: "Disable checks: old containers stop before new ones start", Run: d.checksList("disable")},
		Command{Name: "checks:skip", Usage: "checks:skip <app> [<type>,...]", Help: "Skip checks but keep zero downtime (no wait)", Run: d.checksList("skip")},
		Command{Name: "checks:run", Usage: "checks:run <app> [<type>]", Help: "Run the checks now against the running containers", Run: d.checksRun},
	)
	d.propertyNamespace(r, "checks", "Manage zero-downtime checks", []property{
		{key: "default-wait", def: "10", validate: validSeconds},
		{key: "wait-to-retire", def: "60", validate: validSeconds},
	})

	res := r.Namespace("resource", "Manage memory and CPU limits and reservations")
	r.Add(res,
		Command{Name: "resource:limit", Usage: "resource:limit [--memory SIZE] [--cpu N] [--process-type TYPE] <app>", Help: "Limit memory (e.g. 512m) and CPUs (e.g. 0.5); applied on the next deploy", Run: d.resourceSet("limit")},
		Command{Name: "resource:reserve", Usage: "resource:reserve [--memory SIZE] [--cpu N] [--process-type TYPE] <app>", Help: "Reserve memory and CPU weight; applied on the next deploy", Run: d.resourceSet("reserve")},
		Command{Name: "resource:limit-clear", Usage: "resource:limit-clear [--process-type TYPE] <app>", Help: "Clear limits", Run: d.resourceClear("limit")},
		Command{Name: "resource:reserve-clear", Usage: "resource:reserve-clear [--process-type TYPE] <app>", Help: "Clear reservations", Run: d.resourceClear("reserve")},
		Command{Name: "resource:report", Usage: "resource:report [<app>] [--format json] [<flag>]", Help: "Display resource settings", Run: d.resourceReport().Run},
	)

	st := r.Namespace("storage", "Mount host directories or volumes into an app's containers")
	r.Add(st,
		Command{Name: "storage:mount", Usage: "storage:mount <app> <host-dir|volume>:<container-dir>[:ro]", Help: "Add a mount (applied on the next deploy)", Run: d.storageChange(true)},
		Command{Name: "storage:unmount", Usage: "storage:unmount <app> <host-dir|volume>:<container-dir>[:ro]", Help: "Remove a mount", Run: d.storageChange(false)},
		Command{Name: "storage:list", Usage: "storage:list <app> [--format json]", Help: "List mounts", Run: d.storageList},
	)

	run := r.Namespace("run", "Run one-off commands in an app's image")
	r.Add(run,
		Command{Name: "run", ArgsRequired: true, Usage: "run <app> [-e KEY=VALUE...] [--] <command>...", Help: "Run a command in a new container (removed afterwards); exit status forwarded", Run: d.runOneOff},
		Command{Name: "run:detached", Usage: "run:detached <app> [-e KEY=VALUE...] [--] <command>...", Help: "Run a command in the background", Run: d.runDetached},
		Command{Name: "run:list", Usage: "run:list <app> [--format json]", Help: "List one-off containers", Run: d.runList},
	)
	en := r.Namespace("enter", "Run a command in a running container")
	r.Add(en, Command{Name: "enter", ArgsRequired: true, Usage: "enter <app> [<type>] [--container-id ID] [-- <command>...]", Help: "Run a command (default /bin/sh) in a running container", Run: d.enter})
	lg := r.Namespace("logs", "Show app logs")
	r.Add(lg, Command{Name: "logs", ArgsRequired: true, Usage: "logs <app> [-t] [-n N] [-p TYPE] [-q]", Help: "Show (-t: follow) the output of an app's containers", Run: d.logs})
}

// scopeArg takes the scope of a `(<app>|--global)` command: --global, or
// the first argument as an app that must exist; it returns the rest.
func (d Deps) scopeArg(ctx context.Context, args []string) (string, []string, error) {
	var global bool
	args, err := NewFlags().Bool(&global, "global").Parse(args)
	if err != nil {
		return "", nil, Failf("%v", err)
	}
	if global {
		return apps.Global, args, nil
	}
	if len(args) == 0 {
		return "", nil, Failf("Please specify an app to run the command on")
	}
	if _, err := d.Apps.App(ctx, args[0]); err != nil {
		return "", nil, err
	}
	return args[0], args[1:], nil
}

// exitStatus turns a process's exit status into the command's.
func exitStatus(code int, err error) error {
	if err != nil {
		return err
	}
	if code != 0 {
		return Exit(code)
	}
	return nil
}

// streams are the session's streams for an attached process.
func (s *Session) streams() apps.Streams {
	return apps.Streams{Stdin: s.Stdin, Stdout: s.Stdout, Stderr: s.Stderr}
}

// appAndFormat parses `<app> [--format json|stdout]`.
func appAndFormat(args []string) (app, format string, err error) {
	args, err = NewFlags().String(&format, "format").Parse(args)
	if err != nil {
		return "", "", Failf("%v", err)
	}
	if format != "" && format != "json" && format != "stdout" {
		return "", "", Failf("Invalid --format value %q: use json or stdout", format)
	}
	app, err = oneApp(args)
	return app, format, err
}

func validSeconds(v string) error {
	if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 3600 {
		return fmt.Errorf("want seconds from 0 to 3600")
	}
	return nil
}

func (d Deps) releasesList(ctx context.Context, s *Session, args []string) error {
	app, format, err := appAndFormat(args)
	if err != nil {
		return err
	}
	if _, err := d.Apps.App(ctx, app); err != nil {
		return err
	}
	rels, err := d.Apps.Store().Releases(ctx, app)
	if err != nil {
		return err
	}
	if format == "json" {
		type item struct {
			Number    int    `json:"number"`
			Status    string `json:"status"`
			Image     string `json:"image"`
			Rev       string `json:"rev"`
			Reason    string `json:"reason"`
			CreatedBy string `json:"created_by"`
			CreatedAt int64  `json:"created_at"`
		}
		out := make([]item, len(rels))
		for i, r := range rels {
			out[i] = item{r.Number, r.Status, r.Image, r.Rev, r.Reason, r.CreatedBy, r.CreatedAt.Unix()}
		}
		return printJSON(s, out)
	}
	s.Header("%s releases", app)
	for _, r := range rels {
		s.Printf("v%-4d %-10s %s  %-7s  %s by %s\n", r.Number, r.Status, r.CreatedAt.Format(time.RFC3339), apps.ShortRev(r.Rev), r.Reason, r.CreatedBy)
	}
	return nil
}

func (d Deps) releasesInfo(ctx context.Context, s *Session, args []string) error {
	if len(args) != 2 {
		return Failf("Usage: rivetr releases:info <app> <number>")
	}
	n, err := strconv.Atoi(strings.TrimPrefix(args[1], "v"))
	if err != nil {
		return Failf("Invalid release number %q", args[1])
	}
	if _, err := d.Apps.App(ctx, args[0]); err != nil {
		return err
	}
	r, err := d.Apps.Store().Release(ctx, args[0], n)
	if err != nil {
		return err
	}
	printSection(s, fmt.Sprintf("%s release v%d", args[0], n), []Field{
		{"", "Status", r.Status}, {"", "Image", r.Image}, {"", "Revision", r.Rev}, {"", "Builder", r.Builder},
		{"", "Reason", r.Reason}, {"", "Created by", r.CreatedBy}, {"", "Created at", r.CreatedAt.Format(time.RFC3339)},
		{"", "Config keys", strings.Join(sortedKeys(r.Env), " ")},
	})
	if r.Log != "" {
		s.Header("Log")
		s.Printf("%s\n", strings.TrimRight(r.Log, "\n"))
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (d Deps) releasesRollback(ctx context.Context, s *Session, args []string) error {
	if err := d.needDeployer(); err != nil {
		return err
	}
	if len(args) < 1 || len(args) > 2 {
		return Failf("Usage: rivetr releases:rollback <app> [<number>]")
	}
	n := 0
	if len(args) == 2 {
		var err error
		if n, err = strconv.Atoi(strings.TrimPrefix(args[1], "v")); err != nil || n < 1 {
			return Failf("Invalid release number %q", args[1])
		}
	}
	if _, err := d.Apps.App(ctx, args[0]); err != nil {
		return err
	}
	return d.Deployer.Rollback(ctx, args[0], n, s.User, s.Stdout)
}

func (d Deps) psScale(ctx context.Context, s *Session, args []string) error {
	var skip bool
	args, err := NewFlags().Bool(&skip, "skip-deploy").Parse(args)
	if err != nil {
		return Failf("%v", err)
	}
	if len(args) == 0 {
		return Failf("Please specify an app to run the command on")
	}
	app := args[0]
	if _, err := d.Apps.App(ctx, app); err != nil {
		return err
	}
	cur, deployed, err := d.Apps.Store().CurrentRelease(ctx, app)
	if err != nil {
		return err
	}
	formation, err := d.Apps.Settings(ctx, app, "formation")
	if err != nil {
		return err
	}
	if len(args) == 1 {
		s.Header("Scaling for %s", app)
		if _, ok := formation["web"]; !ok {
			formation["web"] = "1"
		}
		s.Printf("proctype: qty\n--------: ---\n")
		for _, k := range sortedKeys(formation) {
			s.Printf("%s: %s\n", k, formation[k])
		}
		return nil
	}
	if deployed && strings.Contains(cur.AppJSON, `"formation"`) {
		if a, err := apps.ParseAppJSON([]byte(cur.AppJSON)); err == nil && len(a.Formation) > 0 {
			return Failf("Scaling of %s is managed by the formation in its app.json; change it there and deploy", app)
		}
	}
	set := map[string]string{}
	for _, a := range args[1:] {
		typ, n, ok := strings.Cut(a, "=")
		count, err := strconv.Atoi(n)
		if !ok || !validProcType(typ) || err != nil || count < 0 || count > 100 || typ == "release" {
			return Failf("Invalid scale %q: use TYPE=COUNT with COUNT from 0 to 100", a)
		}
		set[typ] = strconv.Itoa(count)
	}
	s.Step("Scaling %s processes: %s", app, strings.Join(args[1:], " "))
	for _, k := range sortedKeys(set) {
		if err := d.Apps.SetSetting(ctx, app, "formation", k, set[k]); err != nil {
			return err
		}
	}
	if skip || !deployed || d.Deployer == nil {
		return nil
	}
	return d.Deployer.Redeploy(ctx, app, "scale", s.User, s.Stdout)
}

func (d Deps) psRedeploy(reason string) func(context.Context, *Session, []string) error {
	return func(ctx context.Context, s *Session, args []string) error {
		if err := d.needDeployer(); err != nil {
			return err
		}
		app, err := oneApp(args)
		if err != nil {
			return err
		}
		if _, err := d.Apps.App(ctx, app); err != nil {
			return err
		}
		if _, ok, err := d.Apps.Store().CurrentRelease(ctx, app); err != nil {
			return err
		} else if !ok {
			return Failf("App %s has not been deployed", app)
		}
		if err := d.Apps.SetSetting(ctx, app, "ps", "stopped", ""); err != nil {
			return err
		}
		if reason == "start" {
			s.Step("Starting %s", app)
		} else {
			s.Step("Restarting %s", app)
		}
		return d.Deployer.Redeploy(ctx, app, "restart", s.User, s.Stdout)
	}
}

func (d Deps) psStop(ctx context.Context, s *Session, args []string) error {
	if err := d.needDeployer(); err != nil {
		return err
	}
	app, err := oneApp(args)
	if err != nil {
		return err
	}
	if _, err := d.Apps.App(ctx, app); err != nil {
		return err
	}
	s.Step("Stopping %s", app)
	if err := d.Apps.SetSetting(ctx, app, "ps", "stopped", "true"); err != nil {
		return err
	}
	return d.Deployer.Stop(ctx, app)
}

func (d Deps) psRestore(ctx context.Context, s *Session, args []string) error {
	if err := d.needDeployer(); err != nil {
		return err
	}
	names := args
	if len(args) == 0 {
		var err error
		if names, err = d.appNames(ctx); err != nil {
			return err
		}
	}
	for _, app := range names {
		if _, err := d.Apps.App(ctx, app); err != nil {
			return err
		}
		if st, _ := d.Apps.Setting(ctx, app, "ps", "stopped", ""); st == "true" {
			continue
		}
		if _, ok, _ := d.Apps.Store().CurrentRelease(ctx, app); !ok {
			continue
		}
		procs, err := d.Deployer.Processes(ctx, app)
		if err != nil {
			return err
		}
		running := slices.ContainsFunc(procs, func(c apps.Container) bool { return c.Running })
		if running {
			continue
		}
		s.Step("Restoring %s", app)
		if err := d.Deployer.Redeploy(ctx, app, "restart", s.User, s.Stdout); err != nil {
			return err
		}
	}
	return nil
}

func (d Deps) psReport() Report {
	return Report{Title: "%s ps information", Subjects: d.appNames,
		Fields: func(ctx context.Context, app string) ([]Field, error) {
			if _, err := d.Apps.App(ctx, app); err != nil {
				return nil, err
			}
			ps, err := d.Apps.Settings(ctx, app, "ps")
			if err != nil {
				return nil, err
			}
			cur, deployed, err := d.Apps.Store().CurrentRelease(ctx, app)
			if err != nil {
				return nil, err
			}
			counts := map[string]int{}
			running := 0
			var procs []apps.Container
			if deployed && d.Deployer != nil {
				procs, _ = d.Deployer.Processes(ctx, app)
			}
			for _, c := range procs {
				if c.Running && c.Labels[apps.LabelProcess] != "run" {
					running++
					counts[c.Labels[apps.LabelProcess]]++
				}
			}
			var parts []string
			for _, k := range sortedCountKeys(counts) {
				parts = append(parts, fmt.Sprintf("%s=%d", k, counts[k]))
			}
			policy := ps["restart-policy"]
			if policy == "" {
				policy = "unless-stopped"
			}
			timeout := ps["stop-timeout-seconds"]
			if timeout == "" {
				timeout = "10"
			}
			release := ""
			if deployed {
				release = strconv.Itoa(cur.Number)
			}
			return []Field{
				{"ps-deployed", "Deployed", strconv.FormatBool(deployed)},
				{"ps-release", "Release", release},
				{"ps-processes", "Processes", strconv.Itoa(running)},
				{"ps-running", "Running", strings.Join(parts, " ")},
				{"ps-stopped", "Stopped", strconv.FormatBool(ps["stopped"] == "true")},
				{"ps-restart-policy", "Restart policy", policy},
				{"ps-stop-timeout-seconds", "Stop timeout seconds", timeout},
			}, nil
		}}
}

func sortedCountKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var restartPolicyRe = regexp.MustCompile(`^(no|always|unless-stopped|on-failure(:[0-9]{1,4})?)$`)

func (d Deps) psSet(ctx context.Context, s *Session, args []string) error {
	if len(args) < 2 || len(args) > 3 {
		return Failf("Usage: rivetr ps:set <app> restart-policy|stop-timeout-seconds [<value>]")
	}
	app, key, value := args[0], args[1], ""
	if len(args) == 3 {
		value = args[2]
	}
	if _, err := d.Apps.App(ctx, app); err != nil {
		return err
	}
	switch key {
	case "restart-policy":
		if value != "" && !restartPolicyRe.MatchString(value) {
			return Failf("Invalid restart-policy %q: use no, always, unless-stopped or on-failure[:N]", value)
		}
	case "stop-timeout-seconds":
		if value != "" && validSeconds(value) != nil {
			return Failf("Invalid stop-timeout-seconds %q: want seconds from 0 to 3600", value)
		}
	default:
		return Failf("Invalid key %q; valid keys: restart-policy, stop-timeout-seconds", key)
	}
	if value == "" {
		s.Step("Unsetting %s", key)
	} else {
		s.Step("Setting %s to %s", key, value)
	}
	return d.Apps.SetSetting(ctx, app, "ps", key, value)
}

// checksList edits the disabled and skipped type lists; a type is never in
// both.
func (d Deps) checksList(action string) func(context.Context, *Session, []string) error {
	return func(ctx context.Context, s *Session, args []string) error {
		if len(args) < 1 || len(args) > 2 {
			return Failf("Usage: rivetr checks:%s <app> [<type>,...]", action)
		}
		app := args[0]
		if _, err := d.Apps.App(ctx, app); err != nil {
			return err
		}
		types := []string{"_all_"}
		if len(args) == 2 {
			types = strings.Split(args[1], ",")
			for _, t := range types {
				if !validProcType(t) {
					return Failf("Invalid process type %q", t)
				}
			}
		}
		set, err := d.Apps.Settings(ctx, app, "checks")
		if err != nil {
			return err
		}
		disabled, skipped := splitCSV(set["disabled"]), splitCSV(set["skipped"])
		all := slices.Contains(types, "_all_")
		remove := func(list []string) []string {
			if all {
				return nil
			}
			return slices.DeleteFunc(list, func(t string) bool { return slices.Contains(types, t) })
		}
		add := func(list []string) []string {
			if all {
				return []string{"_all_"}
			}
			for _, t := range types {
				if !slices.Contains(list, t) {
					list = append(list, t)
				}
			}
			return list
		}
		switch action {
		case "enable":
			disabled, skipped = remove(disabled), remove(skipped)
			s.Step("Zero downtime checks enabled for %s (%s)", app, strings.Join(types, ","))
		case "disable":
			disabled, skipped = add(disabled), remove(skipped)
			s.Step("Zero downtime checks disabled for %s (%s)", app, strings.Join(types, ","))
		case "skip":
			skipped, disabled = add(skipped), remove(disabled)
			s.Step("Zero downtime checks skipped for %s (%s)", app, strings.Join(types, ","))
		}
		if err := d.Apps.SetSetting(ctx, app, "checks", "disabled", strings.Join(disabled, ",")); err != nil {
			return err
		}
		return d.Apps.SetSetting(ctx, app, "checks", "skipped", strings.Join(skipped, ","))
	}
}

func splitCSV(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (d Deps) checksRun(ctx context.Context, s *Session, args []string) error {
	if err := d.needDeployer(); err != nil {
		return err
	}
	if len(args) < 1 || len(args) > 2 {
		return Failf("Usage: rivetr checks:run <app> [<type>]")
	}
	typ := ""
	if len(args) == 2 {
		typ = args[1]
	}
	if _, err := d.Apps.App(ctx, args[0]); err != nil {
		return err
	}
	return d.Deployer.CheckNow(ctx, args[0], typ, s.Stdout)
}

func (d Deps) resourceSet(kind string) func(context.Context, *Session, []string) error {
	return func(ctx context.Context, s *Session, args []string) error {
		var mem, cpu, typ string
		args, err := NewFlags().String(&mem, "memory").String(&cpu, "cpu").String(&typ, "process-type").Parse(args)
		if err != nil {
			return Failf("%v", err)
		}
		app, err := oneApp(args)
		if err != nil {
			return err
		}
		if _, err := d.Apps.App(ctx, app); err != nil {
			return err
		}
		if mem == "" && cpu == "" {
			return Failf("Usage: rivetr resource:%s [--memory SIZE] [--cpu N] [--process-type TYPE] <app>", kind)
		}
		prefix := ""
		if typ != "" {
			if !validProcType(typ) {
				return Failf("Invalid process type %q", typ)
			}
			prefix = typ + "."
		}
		if mem != "" {
			if _, err := apps.ParseBytes(mem); err != nil {
				return err
			}
			if err := d.Apps.SetSetting(ctx, app, "resource", prefix+kind+"-memory", mem); err != nil {
				return err
			}
		}
		if cpu != "" {
			if _, err := apps.ParseCPUs(cpu); err != nil {
				return err
			}
			if err := d.Apps.SetSetting(ctx, app, "resource", prefix+kind+"-cpu", cpu); err != nil {
				return err
			}
		}
		s.Step("Setting resource %ss of %s%s (applied on the next deploy or ps:restart)", kind, app, map[bool]string{true: " " + typ, false: ""}[typ != ""])
		if mem != "" {
			s.Detail("memory: %s", mem)
		}
		if cpu != "" {
			s.Detail("cpu: %s", cpu)
		}
		return nil
	}
}

func (d Deps) resourceClear(kind string) func(context.Context, *Session, []string) error {
	return func(ctx context.Context, s *Session, args []string) error {
		var typ string
		args, err := NewFlags().String(&typ, "process-type").Parse(args)
		if err != nil {
			return Failf("%v", err)
		}
		app, err := oneApp(args)
		if err != nil {
			return err
		}
		if _, err := d.Apps.App(ctx, app); err != nil {
			return err
		}
		prefix := ""
		if typ != "" {
			prefix = typ + "."
		}
		for _, k := range []string{"memory", "cpu"} {
			if err := d.Apps.SetSetting(ctx, app, "resource", prefix+kind+"-"+k, ""); err != nil {
				return err
			}
		}
		s.Step("Cleared resource %ss of %s", kind, app)
		return nil
	}
}

func (d Deps) resourceReport() Report {
	return Report{Title: "%s resource information", Subjects: d.appNames,
		Fields: func(ctx context.Context, app string) ([]Field, error) {
			set, err := d.Apps.Settings(ctx, app, "resource")
			if err != nil {
				return nil, err
			}
			var f []Field
			for _, k := range []string{"limit-memory", "limit-cpu", "reserve-memory", "reserve-cpu"} {
				f = append(f, Field{"resource-" + k, "Resource " + strings.ReplaceAll(k, "-", " "), set[k]})
			}
			for _, k := range sortedKeys(set) {
				if strings.Contains(k, ".") {
					f = append(f, Field{"resource-" + strings.ReplaceAll(k, ".", "-"), "Resource " + strings.ReplaceAll(strings.ReplaceAll(k, ".", " "), "-", " "), set[k]})
				}
			}
			return f, nil
		}}
}

// storageChange adds or removes a mount. Over SSH, host directories must
// be under $RIVETR_DATA_DIR/storage (mounting any host path, such as the
// engine's socket, would hand out root); the server's admin may mount any.
func (d Deps) storageChange(add bool) func(context.Context, *Session, []string) error {
	return func(ctx context.Context, s *Session, args []string) error {
		if len(args) != 2 {
			return Failf("Usage: rivetr storage:%s <app> <host-dir|volume>:<container-dir>[:ro]", map[bool]string{true: "mount", false: "unmount"}[add])
		}
		app := args[0]
		if _, err := d.Apps.App(ctx, app); err != nil {
			return err
		}
		m, err := apps.ParseMount(args[1])
		if err != nil {
			return err
		}
		storageRoot := filepath.Join(d.DataDir, "storage")
		if add && !m.Volume && !s.Admin && m.Source != storageRoot && !strings.HasPrefix(m.Source, storageRoot+"/") {
			return Failf("Over SSH, host directories must be under %s; ask the server's admin to mount %s", storageRoot, m.Source)
		}
		set, err := d.Apps.Settings(ctx, app, "storage")
		if err != nil {
			return err
		}
		mounts := splitLinesKeep(set["mounts"])
		spec := m.String()
		if add {
			if slices.Contains(mounts, spec) {
				return Failf("Mount %s already exists", spec)
			}
			mounts = append(mounts, spec)
			s.Step("Mounting %s (applied on the next deploy or ps:restart)", spec)
		} else {
			if !slices.Contains(mounts, spec) {
				return Failf("Mount %s does not exist", spec)
			}
			mounts = slices.DeleteFunc(mounts, func(x string) bool { return x == spec })
			s.Step("Unmounting %s (applied on the next deploy or ps:restart)", spec)
		}
		return d.Apps.SetSetting(ctx, app, "storage", "mounts", strings.Join(mounts, "\n"))
	}
}

func splitLinesKeep(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

func (d Deps) storageList(ctx context.Context, s *Session, args []string) error {
	app, format, err := appAndFormat(args)
	if err != nil {
		return err
	}
	set, err := d.Apps.Settings(ctx, app, "storage")
	if err != nil {
		return err
	}
	mounts := splitLinesKeep(set["mounts"])
	if format == "json" {
		if mounts == nil {
			mounts = []string{}
		}
		return printJSON(s, mounts)
	}
	s.Header("%s volume bind-mounts:", app)
	for _, m := range mounts {
		s.Detail("%s", m)
	}
	return nil
}

func (d Deps) runArgs(ctx context.Context, args []string) (string, map[string]string, []string, error) {
	if len(args) == 0 {
		return "", nil, nil, Failf("Please specify an app to run the command on")
	}
	app := args[0]
	if _, err := d.Apps.App(ctx, app); err != nil {
		return "", nil, nil, err
	}
	env, cmd, err := apps.ParseEnvFlags(args[1:])
	if err != nil {
		return "", nil, nil, err
	}
	if len(cmd) == 0 {
		return "", nil, nil, Failf("Usage: rivetr run <app> [-e KEY=VALUE...] [--] <command>...")
	}
	return app, env, cmd, nil
}

func (d Deps) runOneOff(ctx context.Context, s *Session, args []string) error {
	if err := d.needDeployer(); err != nil {
		return err
	}
	app, env, cmd, err := d.runArgs(ctx, args)
	if err != nil {
		return err
	}
	return exitStatus(d.Deployer.RunOneOff(ctx, app, cmd, env, s.streams(), false))
}

func (d Deps) runDetached(ctx context.Context, s *Session, args []string) error {
	if err := d.needDeployer(); err != nil {
		return err
	}
	app, env, cmd, err := d.runArgs(ctx, args)
	if err != nil {
		return err
	}
	name, err := d.Deployer.RunDetached(ctx, app, cmd, env)
	if err != nil {
		return err
	}
	s.Step("Started detached container %s", name)
	s.Println(name)
	return nil
}

func (d Deps) runList(ctx context.Context, s *Session, args []string) error {
	if err := d.needDeployer(); err != nil {
		return err
	}
	app, format, err := appAndFormat(args)
	if err != nil {
		return err
	}
	list, err := d.Deployer.OneOffs(ctx, app)
	if err != nil {
		return err
	}
	if format == "json" {
		type item struct {
			Name  string `json:"name"`
			State string `json:"state"`
		}
		out := make([]item, len(list))
		for i, c := range list {
			out[i] = item{c.Name, c.State}
		}
		return printJSON(s, out)
	}
	s.Header("%s run containers", app)
	for _, c := range list {
		s.Printf("%s  %s\n", c.Name, c.State)
	}
	return nil
}

func (d Deps) enter(ctx context.Context, s *Session, args []string) error {
	if err := d.needDeployer(); err != nil {
		return err
	}
	var id string
	args, err := NewFlags().String(&id, "container-id").Parse(args)
	if err != nil {
		return Failf("%v", err)
	}
	if len(args) == 0 {
		return Failf("Please specify an app to run the command on")
	}
	app, typ, cmd := args[0], "web", []string{"/bin/sh"}
	rest := args[1:]
	if len(rest) > 0 && validProcType(rest[0]) && id == "" {
		typ, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		cmd = rest
	}
	if _, err := d.Apps.App(ctx, app); err != nil {
		return err
	}
	return exitStatus(d.Deployer.Enter(ctx, app, typ, id, cmd, s.streams(), false))
}

func (d Deps) logs(ctx context.Context, s *Session, args []string) error {
	if err := d.needDeployer(); err != nil {
		return err
	}
	var follow, quiet bool
	var n, typ string
	args, err := NewFlags().Bool(&follow, "t", "tail").Bool(&quiet, "q", "quiet").String(&n, "n", "num").String(&typ, "p", "ps").Parse(args)
	if err != nil {
		return Failf("%v", err)
	}
	app, err := oneApp(args)
	if err != nil {
		return err
	}
	if _, err := d.Apps.App(ctx, app); err != nil {
		return err
	}
	opts := apps.LogOptions{Follow: follow, Tail: 100}
	if n != "" {
		if opts.Tail, err = strconv.Atoi(n); err != nil || opts.Tail < 0 {
			return Failf("Invalid -n %q: want a number of lines", n)
		}
	}
	if typ != "" && !validProcType(typ) {
		return Failf("Invalid process type %q", typ)
	}
	return d.Deployer.Logs(ctx, app, typ, opts, quiet || s.Quiet, s.Stdout)
}
