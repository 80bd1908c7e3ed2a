package plugins

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/rivetr/rivetr/apps"
	"github.com/rivetr/rivetr/commands"
)

// Register adds the plugin namespace to r and makes the enabled plugins'
// commands available through it.
func Register(r *commands.Registry, m *Manager) {
	r.SetExtension(&extension{m: m})
	ns := r.Namespace("plugin", "Manage plugins: install, update, enable, disable, list, trigger")
	r.Add(ns,
		commands.Command{Name: "plugin:list", Usage: "plugin:list [--format json]", Help: "List plugins: name, version, enabled, description",
			Run: m.list},
		commands.Command{Name: "plugin:installed", Usage: "plugin:installed <name>", Help: "Exit 0 if a plugin is installed, else 1",
			Run: func(ctx context.Context, s *commands.Session, args []string) error {
				if len(args) != 1 {
					return commands.Failf("Usage: rivetr plugin:installed <name>")
				}
				if _, err := m.Get(args[0]); err != nil {
					return commands.Exit(1)
				}
				return nil
			}},
		commands.Command{Name: "plugin:report", Usage: "plugin:report <name> [--format json]", Help: "Show a plugin: version, source, triggers, commands, config",
			Run: m.report},
		commands.Command{Name: "plugin:install", AdminOnly: true, Usage: "plugin:install (<path>|<git-url>) [--name <name>] [--committish <ref>]",
			Help: "Install a plugin from a directory or a git repository, then run its install trigger",
			Run: func(ctx context.Context, s *commands.Session, args []string) error {
				var name, ref string
				args, err := commands.NewFlags().String(&name, "name").String(&ref, "committish").Parse(args)
				if err != nil || len(args) != 1 {
					return commands.Failf("Usage: rivetr plugin:install (<path>|<git-url>) [--name <name>] [--committish <ref>]")
				}
				src := args[0]
				if !isURL(src) {
					src = s.Path(src) // relative to the CLI's directory
				}
				p, err := m.Install(ctx, src, ref, name, s.Stdout)
				if err != nil {
					return err
				}
				s.Step("Plugin %s %s installed", p.Name, p.Manifest.Version)
				return nil
			}},
		commands.Command{Name: "plugin:update", AdminOnly: true, Usage: "plugin:update <name> [<committish>]",
			Help: "Install a plugin again from its source (at a branch or tag), then run its update trigger",
			Run: func(ctx context.Context, s *commands.Session, args []string) error {
				if len(args) < 1 || len(args) > 2 {
					return commands.Failf("Usage: rivetr plugin:update <name> [<committish>]")
				}
				ref := ""
				if len(args) == 2 {
					ref = args[1]
				}
				p, err := m.Update(ctx, args[0], ref, s.Stdout)
				if err != nil {
					return err
				}
				s.Step("Plugin %s updated to %s", p.Name, p.Manifest.Version)
				return nil
			}},
		commands.Command{Name: "plugin:uninstall", AdminOnly: true, Usage: "plugin:uninstall <name> [--force]",
			Help: "Run a plugin's uninstall trigger and remove it",
			Run: func(ctx context.Context, s *commands.Session, args []string) error {
				if len(args) != 1 {
					return commands.Failf("Usage: rivetr plugin:uninstall <name> [--force]")
				}
				if err := m.Uninstall(ctx, args[0], s.Force, s.Stdout); err != nil {
					return err
				}
				s.Step("Plugin %s uninstalled", args[0])
				return nil
			}},
		commands.Command{Name: "plugin:enable", AdminOnly: true, Usage: "plugin:enable <name>", Help: "Enable a plugin's triggers and commands",
			Run: m.enable(true)},
		commands.Command{Name: "plugin:disable", AdminOnly: true, Usage: "plugin:disable <name>", Help: "Disable a plugin: its triggers and commands stop running",
			Run: m.enable(false)},
		commands.Command{Name: "plugin:set", AdminOnly: true, Usage: "plugin:set <name> <key> [<value>]",
			Help: "Set (or, without a value, reset) a plugin's config key ([plugin.config] of its plugin.toml)",
			Run: func(ctx context.Context, s *commands.Session, args []string) error {
				if len(args) < 2 || len(args) > 3 {
					return commands.Failf("Usage: rivetr plugin:set <name> <key> [<value>]")
				}
				value := ""
				if len(args) == 3 {
					value = args[2]
				}
				if err := m.SetConfig(ctx, args[0], args[1], value); err != nil {
					return err
				}
				if value == "" {
					s.Step("Reset %s of plugin %s to its default", args[1], args[0])
				} else {
					s.Step("Set %s of plugin %s", args[1], args[0])
				}
				return nil
			}},
		commands.Command{Name: "plugin:trigger", AdminOnly: true, Usage: "plugin:trigger <trigger> [<args>...]",
			Help: "Run a hook point's handlers with args (for testing a trigger); prints their output",
			Run: func(ctx context.Context, s *commands.Session, args []string) error {
				if len(args) == 0 {
					return commands.Failf("Usage: rivetr plugin:trigger <trigger> [<args>...]")
				}
				if !apps.ValidPluginName(args[0]) {
					return commands.Failf("Invalid trigger name %q", args[0])
				}
				out, err := m.Hooks.Run(ctx, args[0], args[1:], apps.HookOpts{Stdin: s.Stdin, Out: s.Stderr})
				if out != "" {
					s.Println(out)
				}
				if err != nil {
					return commands.Failf("%v", err)
				}
				return nil
			}},
	)
}

func (m *Manager) enable(on bool) func(context.Context, *commands.Session, []string) error {
	return func(ctx context.Context, s *commands.Session, args []string) error {
		verb := map[bool]string{true: "enable", false: "disable"}[on]
		if len(args) != 1 {
			return commands.Failf("Usage: rivetr plugin:%s <name>", verb)
		}
		if err := m.SetEnabled(args[0], on); err != nil {
			return err
		}
		s.Step("Plugin %s %sd", args[0], verb)
		return nil
	}
}

func (m *Manager) list(ctx context.Context, s *commands.Session, args []string) error {
	var format string
	args, err := commands.NewFlags().String(&format, "format").Parse(args)
	if err != nil || len(args) > 0 || (format != "" && format != "json") {
		return commands.Failf("Usage: rivetr plugin:list [--format json]")
	}
	list, err := m.List()
	if err != nil {
		return err
	}
	if format == "json" {
		type item struct {
			Name        string `json:"name"`
			Version     string `json:"version"`
			Enabled     bool   `json:"enabled"`
			Description string `json:"description"`
		}
		out := make([]item, len(list))
		for i, p := range list {
			out[i] = item{p.Name, p.Manifest.Version, p.Enabled, describe(p)}
		}
		b, err := json.Marshal(out)
		if err != nil {
			return err
		}
		s.Println(string(b))
		return nil
	}
	width := 10
	for _, p := range list {
		width = max(width, len(p.Name))
	}
	for _, p := range list {
		state := "enabled"
		if !p.Enabled {
			state = "disabled"
		}
		version := p.Manifest.Version
		if version == "" {
			version = "-"
		}
		s.Printf("  %-*s %-10s %-9s %s\n", width, p.Name, version, state, describe(p))
	}
	return nil
}

// describe is a plugin's description, or why its manifest is invalid.
func describe(p Plugin) string {
	if p.Invalid != "" {
		return "(invalid: " + p.Invalid + ")"
	}
	return p.Manifest.Description
}

// secretKey tells config keys whose values plugin:report hides.
var secretKey = regexp.MustCompile(`(?i)secret|token|password|passwd|key`)

func (m *Manager) report(ctx context.Context, s *commands.Session, args []string) error {
	var format string
	args, err := commands.NewFlags().String(&format, "format").Parse(args)
	if err != nil || len(args) != 1 || (format != "" && format != "json") {
		return commands.Failf("Usage: rivetr plugin:report <name> [--format json]")
	}
	p, err := m.Get(args[0])
	if err != nil {
		return err
	}
	cfg, err := m.Config(ctx, p)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(cfg))
	for k := range cfg {
		keys = append(keys, k)
		if secretKey.MatchString(k) && cfg[k] != "" {
			cfg[k] = "(set)"
		}
	}
	sort.Strings(keys)
	cmds := append([]string(nil), p.Subcommands...)
	for i, c := range cmds {
		cmds[i] = p.Name + ":" + c
	}
	dispatcher := ""
	if p.HasCommands {
		dispatcher = "commands"
	}
	fields := [][2]string{
		{"plugin-name", p.Name}, {"plugin-version", p.Manifest.Version}, {"plugin-enabled", fmt.Sprint(p.Enabled)},
		{"plugin-description", describe(p)}, {"plugin-source", p.Source.Location}, {"plugin-source-kind", p.Source.Kind},
		{"plugin-source-ref", p.Source.Ref}, {"plugin-source-commit", p.Source.Commit},
		{"plugin-triggers", strings.Join(p.Triggers, " ")}, {"plugin-commands", strings.Join(cmds, " ")},
		{"plugin-dispatcher", dispatcher},
	}
	for _, k := range keys {
		fields = append(fields, [2]string{"plugin-config-" + k, cfg[k]})
	}
	if format == "json" {
		obj := map[string]string{}
		for _, f := range fields {
			obj[f[0]] = f[1]
		}
		b, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		s.Println(string(b))
		return nil
	}
	s.Header("%s plugin information", p.Name)
	for _, f := range fields {
		label := strings.ReplaceAll(strings.TrimPrefix(f[0], "plugin-"), "-", " ")
		s.Printf("       %-25s %s\n", strings.ToUpper(label[:1])+label[1:]+":", f[1])
	}
	return nil
}

// extension serves the enabled plugins' commands through the registry:
// NAME:SUB runs subcommands/SUB, else `commands NAME:SUB ARGS...` (Dokku's
// layout); `commands help` lists the help lines.
type extension struct{ m *Manager }

// helpTimeout bounds `commands help`.
const helpTimeout = 5 * time.Second

// helpLine is one line of Dokku's `commands help` output:
// "    hello:world <app>, Says hello".
var helpLine = regexp.MustCompile(`^\s*([a-z0-9][a-z0-9_-]*(?::[a-z0-9][a-z0-9:_-]*)?)((?:\s[^,]*)?),\s*(.+)$`)

func (e *extension) commandPlugin(p Plugin) bool {
	return p.Enabled && (p.HasCommands || len(p.Subcommands) > 0) && (e.m.Reserved == nil || !e.m.Reserved(p.Name))
}

func (e *extension) Namespaces(ctx context.Context) []commands.Namespace {
	list, _ := e.m.List()
	var out []commands.Namespace
	for _, p := range list {
		if !e.commandPlugin(p) {
			continue
		}
		ns, _ := e.Namespace(ctx, p.Name)
		out = append(out, ns)
	}
	return out
}

func (e *extension) Namespace(ctx context.Context, name string) (commands.Namespace, bool) {
	p, err := e.m.Get(name)
	if err != nil || !e.commandPlugin(p) {
		return commands.Namespace{}, false
	}
	var cmds []commands.Command
	seen := map[string]bool{}
	if p.HasCommands {
		var buf bytes.Buffer
		hctx, cancel := context.WithTimeout(ctx, helpTimeout)
		e.m.Hooks.Exec(hctx, p.Name, "commands", []string{"help"}, apps.Streams{Stdin: strings.NewReader(""), Stdout: &limitWriter{w: &buf, n: 64 << 10}, Stderr: io.Discard}, nil)
		cancel()
		for _, line := range strings.Split(buf.String(), "\n") {
			mm := helpLine.FindStringSubmatch(line)
			if mm == nil || (mm[1] != p.Name && !strings.HasPrefix(mm[1], p.Name+":")) || seen[mm[1]] {
				continue
			}
			seen[mm[1]] = true
			cmds = append(cmds, commands.Command{Name: mm[1], Usage: mm[1] + mm[2], Help: strings.TrimSpace(mm[3])})
		}
	}
	for _, sub := range p.Subcommands {
		if full := p.Name + ":" + sub; !seen[full] {
			if sub == "default" {
				full = p.Name
			}
			cmds = append(cmds, commands.Command{Name: full, Usage: full, Help: "(plugin " + p.Name + ")"})
		}
	}
	help := describe(p) + " (plugin)"
	return commands.ExtNamespace(p.Name, help, cmds), true
}

func (e *extension) Run(ctx context.Context, s *commands.Session, name string, args []string) (int, bool) {
	plugin, sub, _ := strings.Cut(name, ":")
	p, err := e.m.Get(plugin)
	if err != nil || !e.commandPlugin(p) {
		return 0, false
	}
	st := apps.Streams{Stdin: s.Stdin, Stdout: s.Stdout, Stderr: s.Stderr}
	if st.Stdin == nil {
		st.Stdin = strings.NewReader("")
	}
	env := map[string]string{"RIVETR_USER": s.User}
	if s.Admin {
		env["RIVETR_ADMIN"] = "true"
	}
	argv := append([]string{name}, args...)
	file := "subcommands/" + sub
	if sub == "" {
		file = "subcommands/default"
	}
	if apps.ValidPluginName(sub) || sub == "" {
		code, ok, err := e.m.Hooks.Exec(ctx, p.Name, file, argv, st, env)
		if ok {
			return e.exit(s, name, code, err), true
		}
	}
	if p.HasCommands {
		code, ok, err := e.m.Hooks.Exec(ctx, p.Name, "commands", argv, st, env)
		if ok && code == notImplemented {
			return 0, false
		}
		if ok {
			return e.exit(s, name, code, err), true
		}
	}
	return 0, false
}

func (e *extension) exit(s *commands.Session, name string, code int, err error) int {
	if err != nil {
		fmt.Fprintf(s.Stderr, " !     %s: %v\n", name, err)
		if code <= 0 {
			return commands.ExitFailure
		}
	}
	return code
}

// limitWriter keeps at most n bytes.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.n <= 0 {
		return len(p), nil
	}
	k := min(len(p), l.n)
	l.n -= k
	l.w.Write(p[:k])
	return len(p), nil
}
