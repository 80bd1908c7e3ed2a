package commands

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/rivetr/rivetr/apps"
)

// serviceAPI is the managed services' side the namespaces drive
// (services.API implements it).
type serviceAPI interface {
	Kinds() []apps.ServiceKind
	Create(ctx context.Context, kind, name string, o apps.ServiceCreate, out io.Writer) error
	Record(ctx context.Context, kind, name string) (apps.ServiceRecord, error)
	List(ctx context.Context, kind string) ([]apps.ServiceRecord, error)
	Details(ctx context.Context, kind string, rec apps.ServiceRecord) (status, id, dsn, host, volume string)
	Links(ctx context.Context, kind, name string) ([]apps.ServiceLink, error)
	AppLinks(ctx context.Context, app string) ([]apps.ServiceLink, error)
	Link(ctx context.Context, kind, name, app, alias, qs string) (string, error)
	Unlink(ctx context.Context, kind, name, app string) (string, error)
	Promote(ctx context.Context, kind, name, app string) (map[string]string, error)
	Connect(ctx context.Context, kind, name string, st apps.Streams) (int, error)
	Enter(ctx context.Context, kind, name string, cmd []string, st apps.Streams) (int, error)
	Export(ctx context.Context, kind, name string, w io.Writer) error
	Import(ctx context.Context, kind, name string, r io.Reader, out io.Writer) error
	Logs(ctx context.Context, kind, name string, opts apps.LogOptions, st apps.Streams) error
	Expose(ctx context.Context, kind, name string, specs []string, out io.Writer) error
	Unexpose(ctx context.Context, kind, name string, out io.Writer) error
	Start(ctx context.Context, kind, name string, out io.Writer) error
	Stop(ctx context.Context, kind, name string) error
	Upgrade(ctx context.Context, kind, name, image, version string, out io.Writer) error
	Clone(ctx context.Context, kind, name, newName string, out io.Writer) error
	Destroy(ctx context.Context, kind, name string) error
}

func registerServices(r *Registry, d Deps) {
	if d.Services == nil {
		return
	}
	for _, k := range d.Services.Kinds() {
		registerServiceKind(r, d, k)
	}
}

// svc is one engine's namespace.
type svc struct {
	d   Deps
	k   apps.ServiceKind // k.Name is the namespace
	api serviceAPI
}

func registerServiceKind(r *Registry, d Deps, k apps.ServiceKind) {
	s := svc{d: d, k: k, api: d.Services}
	ns := r.Namespace(k.Name, "Manage "+k.Title+" services")
	n := k.Name
	r.Add(ns,
		Command{Name: n + ":create", Usage: n + ":create <service> [--image IMAGE] [--image-version VERSION] [--password PASS] [--root-password PASS] [--custom-env \"A=b;C=d\"] [--memory SIZE]", Help: "Create a " + k.Title + " service", Run: s.create},
		Command{Name: n + ":info", Usage: n + ":info <service> [--format json] [--dsn|--status|--version|--image|--exposed-ports|--id|--internal-host|--links|--data-volume|--memory]", Help: "Show a service", Run: s.info().Run},
		Command{Name: n + ":list", Usage: n + ":list", Help: "List the " + k.Title + " services", Run: s.list},
		Command{Name: n + ":exists", Usage: n + ":exists <service>", Help: "Exit 0 if the service exists, 1 if not", Run: s.exists},
		Command{Name: n + ":link", Usage: n + ":link <service> <app> [--alias ALIAS] [--querystring QS] [--no-restart]", Help: "Link the service to an app (sets " + k.EnvVar + ")", Run: s.link},
		Command{Name: n + ":unlink", Usage: n + ":unlink <service> <app> [--no-restart]", Help: "Unlink the service from an app", Run: s.unlink},
		Command{Name: n + ":links", Usage: n + ":links <service>", Help: "List the apps linked to the service", Run: s.links},
		Command{Name: n + ":linked", Usage: n + ":linked <service> <app>", Help: "Exit 0 if the service is linked to the app, 1 if not", Run: s.linked},
		Command{Name: n + ":app-links", Usage: n + ":app-links <app>", Help: "List the " + k.Title + " services linked to an app", Run: s.appLinks},
		Command{Name: n + ":promote", Usage: n + ":promote <service> <app> [--no-restart]", Help: "Make the service the app's " + k.EnvVar, Run: s.promote},
		Command{Name: n + ":connect", Usage: n + ":connect <service>", Help: "Run the " + k.Title + " client in the service (stdin: commands)", Run: s.connect},
		Command{Name: n + ":enter", Usage: n + ":enter <service> [<command>...]", Help: "Run a command (default /bin/sh) in the service's container", Run: s.enter},
		Command{Name: n + ":export", Usage: n + ":export <service> > dump", Help: "Write a dump of the service to stdout", Run: s.export},
		Command{Name: n + ":import", Usage: n + ":import <service> < dump", Help: "Restore a dump read from stdin", Run: s.importDump},
		Command{Name: n + ":logs", Usage: n + ":logs <service> [-t|--tail] [<lines>]", Help: "Show the service's logs (-t follows)", Run: s.logs},
		Command{Name: n + ":expose", Usage: n + ":expose <service> [<ip>:]<port>", Help: "Publish the service's port on the host", Run: s.expose},
		Command{Name: n + ":unexpose", Usage: n + ":unexpose <service>", Help: "Stop publishing the service's port", Run: s.simple("unexpose")},
		Command{Name: n + ":start", Usage: n + ":start <service>", Help: "Start the service", Run: s.simple("start")},
		Command{Name: n + ":stop", Usage: n + ":stop <service>", Help: "Stop the service", Run: s.simple("stop")},
		Command{Name: n + ":restart", Usage: n + ":restart <service>", Help: "Restart the service", Run: s.simple("restart")},
		Command{Name: n + ":upgrade", Usage: n + ":upgrade <service> [--image IMAGE] [--image-version VERSION]", Help: "Run the service on another image or version, same data", Run: s.upgrade},
		Command{Name: n + ":clone", Usage: n + ":clone <service> <new-service>", Help: "Copy the service and its data into a new one", Run: s.clone},
		Command{Name: n + ":destroy", Usage: n + ":destroy <service> [--force]", Help: "Destroy the service and its data (refused while linked)", Run: s.destroy},
	)
	registerBackups(r, ns, s)
}

// one parses "<service>" and returns its record.
func (s svc) one(ctx context.Context, args []string, usage string) (apps.ServiceRecord, error) {
	if len(args) != 1 {
		return apps.ServiceRecord{}, Failf("Usage: rivetr %s", usage)
	}
	return s.api.Record(ctx, s.k.Name, args[0])
}

func (s svc) create(ctx context.Context, sess *Session, args []string) error {
	var o apps.ServiceCreate
	var customEnv, memory string
	args, err := NewFlags().String(&o.Image, "image", "i").String(&o.Version, "image-version", "I").
		String(&o.Password, "password", "p").String(&o.RootPassword, "root-password", "r").
		String(&customEnv, "custom-env", "C").String(&memory, "memory", "m").Parse(args)
	if err != nil || len(args) != 1 {
		return Failf("Usage: rivetr %s:create <service> [--image IMAGE] [--image-version VERSION] [--password PASS] [--root-password PASS] [--custom-env \"A=b;C=d\"] [--memory SIZE]", s.k.Name)
	}
	if err := apps.ValidateServiceName(args[0]); err != nil {
		return err
	}
	for _, img := range []string{o.Image, o.Version} {
		if err := validImage(img); img != "" && err != nil {
			return Failf("Invalid image or version %q", img)
		}
	}
	if customEnv != "" {
		o.CustomEnv = map[string]string{}
		for _, kv := range strings.Split(customEnv, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || apps.ValidateEnvKey(k) != nil {
				return Failf("Invalid --custom-env entry %q: use KEY=value;KEY2=value", kv)
			}
			o.CustomEnv[k] = v
		}
	}
	if memory != "" {
		if o.Memory, err = apps.ParseBytes(memory); err != nil {
			return err
		}
	}
	return s.api.Create(ctx, s.k.Name, args[0], o, sess.Stdout)
}

func (s svc) info() Report {
	return Report{
		Title: "%s " + strings.ToLower(s.k.Title) + " service information",
		Subjects: func(ctx context.Context) ([]string, error) {
			recs, err := s.api.List(ctx, s.k.Name)
			names := make([]string, len(recs))
			for i, r := range recs {
				names[i] = r.Name
			}
			return names, err
		},
		Fields: func(ctx context.Context, name string) ([]Field, error) {
			rec, err := s.api.Record(ctx, s.k.Name, name)
			if err != nil {
				return nil, err
			}
			status, id, dsn, host, volume := s.api.Details(ctx, s.k.Name, rec)
			links, err := s.api.Links(ctx, s.k.Name, name)
			if err != nil {
				return nil, err
			}
			var linked []string
			for _, l := range links {
				linked = append(linked, l.App)
			}
			mem := "unlimited"
			if rec.Memory > 0 {
				mem = strconv.FormatInt(rec.Memory, 10)
			}
			exposed := strings.Join(rec.Exposed, " ")
			if exposed == "" {
				exposed = "-"
			}
			return []Field{
				{"dsn", "Dsn", dsn},
				{"status", "Status", status},
				{"version", "Version", rec.Image + ":" + rec.Version},
				{"image", "Image", rec.Image},
				{"exposed-ports", "Exposed ports", exposed},
				{"id", "Id", id},
				{"internal-host", "Internal host", host},
				{"links", "Links", strings.Join(linked, " ")},
				{"data-volume", "Data volume", volume},
				{"memory", "Memory", mem},
			}, nil
		},
	}
}

func (s svc) list(ctx context.Context, sess *Session, args []string) error {
	if len(args) > 0 {
		return Failf("Usage: rivetr %s:list", s.k.Name)
	}
	recs, err := s.api.List(ctx, s.k.Name)
	if err != nil {
		return err
	}
	sess.Header("%s services", s.k.Title)
	for _, r := range recs {
		sess.Println(r.Name)
	}
	return nil
}

func (s svc) exists(ctx context.Context, sess *Session, args []string) error {
	_, err := s.one(ctx, args, s.k.Name+":exists <service>")
	if err == nil {
		sess.Step("Service %s exists", args[0])
	}
	return err
}

// linkArgs parses "<service> <app>" and --no-restart.
func (s svc) linkArgs(ctx context.Context, args []string, usage string, flags *Flags) (apps.ServiceRecord, string, bool, error) {
	var noRestart bool
	if flags == nil {
		flags = NewFlags()
	}
	args, err := flags.Bool(&noRestart, "no-restart").Parse(args)
	if err != nil || len(args) != 2 {
		return apps.ServiceRecord{}, "", false, Failf("Usage: rivetr %s", usage)
	}
	rec, err := s.api.Record(ctx, s.k.Name, args[0])
	if err != nil {
		return rec, "", false, err
	}
	if _, err := s.d.Apps.App(ctx, args[1]); err != nil {
		return rec, "", false, err
	}
	return rec, args[1], noRestart, nil
}

func (s svc) link(ctx context.Context, sess *Session, args []string) error {
	var alias, qs string
	rec, app, noRestart, err := s.linkArgs(ctx, args, s.k.Name+":link <service> <app> [--alias ALIAS] [--querystring QS] [--no-restart]",
		NewFlags().String(&alias, "alias", "a").String(&qs, "querystring", "q"))
	if err != nil {
		return err
	}
	key, err := s.api.Link(ctx, s.k.Name, rec.Name, app, alias, qs)
	if err != nil {
		return err
	}
	sess.Step("Setting config vars")
	sess.Detail("%s:  %s", key, "(a "+s.k.Title+" URL; see "+s.k.Name+":info "+rec.Name+" --dsn)")
	return s.d.restart(ctx, sess, app, "link "+s.k.Name+" "+rec.Name, noRestart)
}

func (s svc) unlink(ctx context.Context, sess *Session, args []string) error {
	rec, app, noRestart, err := s.linkArgs(ctx, args, s.k.Name+":unlink <service> <app> [--no-restart]", nil)
	if err != nil {
		return err
	}
	key, err := s.api.Unlink(ctx, s.k.Name, rec.Name, app)
	if err != nil {
		return err
	}
	sess.Step("Unsetting config vars")
	sess.Detail("%s", key)
	return s.d.restart(ctx, sess, app, "unlink "+s.k.Name+" "+rec.Name, noRestart)
}

func (s svc) promote(ctx context.Context, sess *Session, args []string) error {
	rec, app, noRestart, err := s.linkArgs(ctx, args, s.k.Name+":promote <service> <app> [--no-restart]", nil)
	if err != nil {
		return err
	}
	set, err := s.api.Promote(ctx, s.k.Name, rec.Name, app)
	if err != nil {
		return err
	}
	sess.Step("Promoting %s to %s on %s", rec.Name, s.k.EnvVar, app)
	for _, k := range sortedKeys(set) {
		sess.Detail("%s", k)
	}
	return s.d.restart(ctx, sess, app, "promote "+s.k.Name+" "+rec.Name, noRestart)
}

func (s svc) links(ctx context.Context, sess *Session, args []string) error {
	rec, err := s.one(ctx, args, s.k.Name+":links <service>")
	if err != nil {
		return err
	}
	links, err := s.api.Links(ctx, s.k.Name, rec.Name)
	if err != nil {
		return err
	}
	for _, l := range links {
		sess.Println(l.App)
	}
	return nil
}

func (s svc) linked(ctx context.Context, sess *Session, args []string) error {
	if len(args) != 2 {
		return Failf("Usage: rivetr %s:linked <service> <app>", s.k.Name)
	}
	if _, err := s.api.Record(ctx, s.k.Name, args[0]); err != nil {
		return err
	}
	if _, err := s.d.Apps.App(ctx, args[1]); err != nil {
		return err
	}
	links, err := s.api.Links(ctx, s.k.Name, args[0])
	if err != nil {
		return err
	}
	for _, l := range links {
		if l.App == args[1] {
			return nil
		}
	}
	return Exit(ExitFailure)
}

func (s svc) appLinks(ctx context.Context, sess *Session, args []string) error {
	if len(args) != 1 {
		return Failf("Usage: rivetr %s:app-links <app>", s.k.Name)
	}
	if _, err := s.d.Apps.App(ctx, args[0]); err != nil {
		return err
	}
	links, err := s.api.AppLinks(ctx, args[0])
	if err != nil {
		return err
	}
	for _, l := range links {
		if l.Engine == s.k.Name {
			sess.Println(l.Service)
		}
	}
	return nil
}

func (s svc) connect(ctx context.Context, sess *Session, args []string) error {
	rec, err := s.one(ctx, args, s.k.Name+":connect <service>")
	if err != nil {
		return err
	}
	code, err := s.api.Connect(ctx, s.k.Name, rec.Name, sess.streams())
	return exitStatus(code, err)
}

func (s svc) enter(ctx context.Context, sess *Session, args []string) error {
	if len(args) == 0 {
		return Failf("Usage: rivetr %s:enter <service> [<command>...]", s.k.Name)
	}
	rec, err := s.api.Record(ctx, s.k.Name, args[0])
	if err != nil {
		return err
	}
	cmd := args[1:]
	if len(cmd) > 0 && cmd[0] == "--" {
		cmd = cmd[1:]
	}
	code, err := s.api.Enter(ctx, s.k.Name, rec.Name, cmd, sess.streams())
	return exitStatus(code, err)
}

func (s svc) export(ctx context.Context, sess *Session, args []string) error {
	rec, err := s.one(ctx, args, s.k.Name+":export <service>")
	if err != nil {
		return err
	}
	return s.api.Export(ctx, s.k.Name, rec.Name, sess.Stdout)
}

func (s svc) importDump(ctx context.Context, sess *Session, args []string) error {
	rec, err := s.one(ctx, args, s.k.Name+":import <service>")
	if err != nil {
		return err
	}
	if err := s.api.Import(ctx, s.k.Name, rec.Name, sess.Stdin, io.Discard); err != nil {
		return err
	}
	sess.Step("Imported into %s %s", s.k.Title, rec.Name)
	return nil
}

func (s svc) logs(ctx context.Context, sess *Session, args []string) error {
	var follow bool
	args, err := NewFlags().Bool(&follow, "tail", "t").Parse(args)
	if err != nil || len(args) < 1 || len(args) > 2 {
		return Failf("Usage: rivetr %s:logs <service> [-t|--tail] [<lines>]", s.k.Name)
	}
	opts := apps.LogOptions{Follow: follow, Tail: 100}
	if len(args) == 2 {
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 {
			return Failf("Invalid number of lines %q", args[1])
		}
		opts.Tail = n
	}
	rec, err := s.api.Record(ctx, s.k.Name, args[0])
	if err != nil {
		return err
	}
	return s.api.Logs(ctx, s.k.Name, rec.Name, opts, sess.streams())
}

func (s svc) expose(ctx context.Context, sess *Session, args []string) error {
	if len(args) < 2 {
		return Failf("Usage: rivetr %s:expose <service> [<ip>:]<port>", s.k.Name)
	}
	rec, err := s.api.Record(ctx, s.k.Name, args[0])
	if err != nil {
		return err
	}
	if err := s.api.Expose(ctx, s.k.Name, rec.Name, args[1:], sess.Stdout); err != nil {
		return err
	}
	sess.Step("Service %s exposed on port(s) %s", rec.Name, strings.Join(args[1:], " "))
	return nil
}

func (s svc) simple(action string) func(ctx context.Context, sess *Session, args []string) error {
	return func(ctx context.Context, sess *Session, args []string) error {
		rec, err := s.one(ctx, args, s.k.Name+":"+action+" <service>")
		if err != nil {
			return err
		}
		switch action {
		case "unexpose":
			err = s.api.Unexpose(ctx, s.k.Name, rec.Name, sess.Stdout)
		case "start":
			sess.Step("Starting container")
			err = s.api.Start(ctx, s.k.Name, rec.Name, sess.Stdout)
		case "stop":
			sess.Step("Stopping container")
			err = s.api.Stop(ctx, s.k.Name, rec.Name)
		case "restart":
			sess.Step("Restarting container")
			err = s.api.Start(ctx, s.k.Name, rec.Name, sess.Stdout)
		}
		if err != nil {
			return err
		}
		sess.Step("%s %s %s", s.k.Title, rec.Name, map[string]string{"unexpose": "unexposed", "start": "started", "stop": "stopped", "restart": "restarted"}[action])
		return nil
	}
}

func (s svc) upgrade(ctx context.Context, sess *Session, args []string) error {
	var image, version string
	args, err := NewFlags().String(&image, "image", "i").String(&version, "image-version", "I").Parse(args)
	if err != nil || len(args) != 1 {
		return Failf("Usage: rivetr %s:upgrade <service> [--image IMAGE] [--image-version VERSION]", s.k.Name)
	}
	for _, v := range []string{image, version} {
		if err := validImage(v); v != "" && err != nil {
			return Failf("Invalid image or version %q", v)
		}
	}
	rec, err := s.api.Record(ctx, s.k.Name, args[0])
	if err != nil {
		return err
	}
	if err := s.api.Upgrade(ctx, s.k.Name, rec.Name, image, version, sess.Stdout); err != nil {
		return err
	}
	sess.Step("%s %s upgraded", s.k.Title, rec.Name)
	return nil
}

func (s svc) clone(ctx context.Context, sess *Session, args []string) error {
	if len(args) != 2 {
		return Failf("Usage: rivetr %s:clone <service> <new-service>", s.k.Name)
	}
	rec, err := s.api.Record(ctx, s.k.Name, args[0])
	if err != nil {
		return err
	}
	if err := apps.ValidateServiceName(args[1]); err != nil {
		return err
	}
	if err := s.api.Clone(ctx, s.k.Name, rec.Name, args[1], sess.Stdout); err != nil {
		return err
	}
	sess.Step("Cloned %s to %s", rec.Name, args[1])
	return nil
}

func (s svc) destroy(ctx context.Context, sess *Session, args []string) error {
	var force bool
	args, err := NewFlags().Bool(&force, "force", "f").Parse(args)
	if err != nil || len(args) != 1 {
		return Failf("Usage: rivetr %s:destroy <service> [--force]", s.k.Name)
	}
	rec, err := s.api.Record(ctx, s.k.Name, args[0])
	if err != nil {
		return err
	}
	if links, err := s.api.Links(ctx, s.k.Name, rec.Name); err != nil {
		return err
	} else if len(links) > 0 {
		return Failf("Cannot delete linked service")
	}
	if !force && !sess.Force {
		if err := confirm(sess, rec.Name, fmt.Sprintf("This command will destroy %s service %s (including all its data).", s.k.Title, rec.Name)); err != nil {
			return err
		}
	}
	sess.Step("Deleting %s", rec.Name)
	if err := s.api.Destroy(ctx, s.k.Name, rec.Name); err != nil {
		return err
	}
	sess.Step("%s %s deleted", s.k.Title, rec.Name)
	return nil
}
