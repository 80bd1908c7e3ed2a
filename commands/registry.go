package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
)

// Command is one `namespace:subcommand` (or a namespace's bare default).
type Command struct {
	Name      string // "apps:create", or "config" for a namespace default
	Usage     string // "apps:create <app>"
	Help      string // one line
	Hidden    bool   // not listed in help (internal commands such as git hooks)
	AdminOnly bool   // only the local CLI may run it
	// ArgsRequired makes a namespace's bare command print the namespace
	// help when called with no arguments (`config` alone), as Dokku does.
	ArgsRequired bool
	Run          func(ctx context.Context, s *Session, args []string) error
}

// Namespace groups commands under one prefix with a one-line description.
type Namespace struct {
	Name     string
	Help     string
	Hidden   bool
	commands []*Command
	ext      []Command // an extension's commands, for help --all
}

// ExtNamespace returns a namespace of an extension holding cmds, for
// Extension.Namespaces.
func ExtNamespace(name, help string, cmds []Command) Namespace {
	return Namespace{Name: name, Help: help, ext: cmds}
}

// Registry holds every namespace and command. It is safe for concurrent use
// once registration is done; registration itself is guarded too.
type Registry struct {
	mu         sync.RWMutex
	namespaces map[string]*Namespace
	commands   map[string]*Command
	ext        Extension
}

// Extension provides commands that come and go while rivetr runs: the
// plugins' commands. Built-in commands always win over an extension's.
type Extension interface {
	// Namespaces lists the extension's namespaces with their commands (Name,
	// Usage and Help set), for help.
	Namespaces(ctx context.Context) []Namespace
	// Namespace returns one namespace with its commands; ok is false if
	// the extension has no such namespace.
	Namespace(ctx context.Context, name string) (ns Namespace, ok bool)
	// Run runs the command name; ok is false if the extension has none
	// by that name.
	Run(ctx context.Context, s *Session, name string, args []string) (code int, ok bool)
}

// SetExtension makes the registry consult e for commands it does not have.
func (r *Registry) SetExtension(e Extension) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ext = e
}

// HasNamespace reports whether a built-in namespace (or command) is named name.
func (r *Registry) HasNamespace(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ns := r.namespaces[name]
	_, cmd := r.commands[name]
	return ns || cmd
}

func (r *Registry) extension() Extension {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.ext
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{namespaces: map[string]*Namespace{}, commands: map[string]*Command{}}
}

// Namespace returns the namespace name, creating it with help on first use.
func (r *Registry) Namespace(name, help string) *Namespace {
	r.mu.Lock()
	defer r.mu.Unlock()
	ns, ok := r.namespaces[name]
	if !ok {
		ns = &Namespace{Name: name, Help: help}
		r.namespaces[name] = ns
	}
	return ns
}

// Add registers commands in namespace ns. A duplicate name panics: it is a
// programming error caught by any test that builds the registry.
func (r *Registry) Add(ns *Namespace, cmds ...Command) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range cmds {
		c := cmds[i]
		if _, dup := r.commands[c.Name]; dup {
			panic("commands: duplicate command " + c.Name)
		}
		if c.Name != ns.Name && !strings.HasPrefix(c.Name, ns.Name+":") {
			panic("commands: " + c.Name + " outside namespace " + ns.Name)
		}
		r.commands[c.Name] = &c
		ns.commands = append(ns.commands, &c)
	}
}

// Lookup returns a command by full name.
func (r *Registry) Lookup(name string) (*Command, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.commands[name]
	return c, ok
}

// Run parses argv (command name and arguments, global flags anywhere),
// runs the command with s, prints any error to s.Stderr, and returns the
// exit code.
func (r *Registry) Run(ctx context.Context, s *Session, argv []string) (code int) {
	defer func() {
		if p := recover(); p != nil {
			writeError(s.Stderr, fmt.Sprintf("internal error: %v", p))
			code = ExitFailure
		}
	}()
	args, err := globalFlags(s, argv)
	if err != nil {
		writeError(s.Stderr, err.Error())
		return ExitFailure
	}
	if len(args) == 0 {
		r.printHelp(s, false)
		return ExitOK
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "--help", "-h":
		if len(rest) > 0 && rest[0] != "--all" {
			return r.helpFor(s, rest[0])
		}
		r.printHelp(s, len(rest) > 0)
		return ExitOK
	}
	if strings.HasSuffix(name, ":help") {
		return r.helpFor(s, strings.TrimSuffix(name, ":help"))
	}
	if wantsHelp(rest) {
		return r.helpFor(s, name)
	}
	cmd, ok := r.Lookup(name)
	r.mu.RLock()
	_, isNS := r.namespaces[name]
	r.mu.RUnlock()
	if !ok || cmd.Run == nil {
		if isNS {
			return r.helpFor(s, name)
		}
		if ext := r.extension(); ext != nil {
			if s.appFlag != "" {
				rest = append([]string{s.appFlag}, rest...)
			}
			if code, ok := ext.Run(ctx, s, name, rest); ok {
				return code
			}
		}
		writeError(s.Stderr, fmt.Sprintf("`%s` is not a rivetr command.", clipArg(name)))
		return ExitFailure
	}
	if isNS && cmd.ArgsRequired && len(rest) == 0 && s.appFlag == "" {
		// A namespace alone ("config") prints its help, as in Dokku.
		return r.helpFor(s, name)
	}
	if s.appFlag != "" {
		rest = append([]string{s.appFlag}, rest...)
	}
	if cmd.AdminOnly && !s.Admin {
		writeError(s.Stderr, fmt.Sprintf("%s can only be run on the server (rivetr %s)", cmd.Name, cmd.Name))
		return ExitFailure
	}
	code, msg := exitCode(cmd.Run(ctx, s, rest))
	if msg != "" {
		writeError(s.Stderr, msg)
	}
	if errors.Is(ctx.Err(), context.Canceled) && code == ExitOK {
		return ExitFailure
	}
	return code
}

// globalFlags removes --app APP, --force and --quiet from anywhere before a
// "--" and records them on the session.
func globalFlags(s *Session, argv []string) ([]string, error) {
	out := make([]string, 0, len(argv))
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		switch {
		case a == "--":
			return append(out, argv[i:]...), nil
		case a == "--force":
			s.Force = true
		case a == "--quiet":
			s.Quiet = true
		case a == "--app":
			if i+1 >= len(argv) {
				return nil, errors.New("flag --app needs an app name")
			}
			i++
			s.appFlag = argv[i]
		case strings.HasPrefix(a, "--app="):
			s.appFlag = strings.TrimPrefix(a, "--app=")
		default:
			out = append(out, a)
		}
	}
	return out, nil
}

func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--help" || a == "-h" {
			return true
		}
	}
	return false
}

// clipArg keeps an echoed unknown command short.
func clipArg(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// helpFor prints the help of a namespace, or the usage of one command.
func (r *Registry) helpFor(s *Session, name string) int {
	r.mu.RLock()
	ns, isNS := r.namespaces[name]
	cmd, isCmd := r.commands[name]
	r.mu.RUnlock()
	switch {
	case isNS:
		r.printNamespaceHelp(s, ns)
		return ExitOK
	case isCmd:
		fmt.Fprintf(s.Stdout, "Usage: rivetr %s\n\n%s\n", cmd.Usage, cmd.Help)
		return ExitOK
	}
	if ext := r.extension(); ext != nil {
		nsName, _, _ := strings.Cut(name, ":")
		if ns, ok := ext.Namespace(context.Background(), nsName); ok {
			if nsName == name {
				r.printNamespaceHelp(s, &ns)
				return ExitOK
			}
			for _, c := range ns.ext {
				if c.Name == name {
					fmt.Fprintf(s.Stdout, "Usage: rivetr %s\n\n%s\n", c.Usage, c.Help)
					return ExitOK
				}
			}
		}
	}
	writeError(s.Stderr, fmt.Sprintf("`%s` is not a rivetr command.", clipArg(name)))
	return ExitFailure
}

func (r *Registry) printHelp(s *Session, all bool) {
	var extNS []Namespace
	if ext := r.extension(); ext != nil {
		extNS = ext.Namespaces(context.Background())
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	namespaces := make(map[string]*Namespace, len(r.namespaces)+len(extNS))
	for n, ns := range r.namespaces {
		namespaces[n] = ns
	}
	for i := range extNS {
		if _, builtin := namespaces[extNS[i].Name]; !builtin {
			namespaces[extNS[i].Name] = &extNS[i]
		}
	}
	names := make([]string, 0, len(namespaces))
	for n, ns := range namespaces {
		if !ns.Hidden {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	w := s.Stdout
	fmt.Fprintln(w, "Usage: rivetr [--quiet|--force] [--app APP] COMMAND <app> [command-specific-options]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Primary help options, type \"rivetr COMMAND:help\" for more details, or rivetr help --all to see all commands.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	fmt.Fprintln(w)
	for _, n := range names {
		fmt.Fprintf(w, "    %-24s %s\n", n, namespaces[n].Help)
	}
	if all {
		for _, n := range names {
			fmt.Fprintln(w)
			r.listCommands(w, namespaces[n])
		}
	}
}

func (r *Registry) printNamespaceHelp(s *Session, ns *Namespace) {
	fmt.Fprintf(s.Stdout, "Usage: rivetr %s[:COMMAND]\n\n%s\n\nAdditional commands:\n", ns.Name, ns.Help)
	r.listCommands(s.Stdout, ns)
}

func (r *Registry) listCommands(w io.Writer, ns *Namespace) {
	cmds := make([]Command, 0, len(ns.commands)+len(ns.ext))
	for _, c := range ns.commands {
		cmds = append(cmds, *c)
	}
	listCommands(w, append(cmds, ns.ext...))
}

// listCommands prints the usage and help of the visible commands, by name.
func listCommands(w io.Writer, all []Command) {
	cmds := make([]Command, 0, len(all))
	width := 0
	for _, c := range all {
		if c.Hidden {
			continue
		}
		cmds = append(cmds, c)
		if len(c.Usage) > width {
			width = len(c.Usage)
		}
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].Name < cmds[j].Name })
	for _, c := range cmds {
		fmt.Fprintf(w, "    %-*s  %s\n", width, c.Usage, c.Help)
	}
}
