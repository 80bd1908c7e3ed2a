package commands

import (
	"archive/tar"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/rivetr/rivetr/apps"
	"github.com/rivetr/rivetr/envfile"
)

// MaxImport bounds what config:import reads, so a huge stdin cannot
// exhaust memory; larger input is refused and nothing changes.
const MaxImport = 4 << 20

func registerConfig(r *Registry, d Deps) {
	ns := r.Namespace("config", "Manage global and app-specific config vars")
	r.Add(ns,
		Command{Name: "config", ArgsRequired: true, Usage: "config (<app>|--global)", Help: "Pretty-print an app or global environment (same as config:show)", Run: d.configShow},
		Command{Name: "config:show", Usage: "config:show (<app>|--global) [--merged]", Help: "Pretty-print an app or global environment", Run: d.configShow},
		Command{Name: "config:get", Usage: "config:get (<app>|--global) [--merged] [--quoted] KEY", Help: "Display a global or app-specific config value", Run: d.configGet},
		Command{Name: "config:set", Usage: "config:set [--encoded] [--no-restart] (<app>|--global) KEY1=VALUE1 [KEY2=VALUE2 ...]", Help: "Set one or more config vars", Run: d.configSet},
		Command{Name: "config:unset", Usage: "config:unset [--no-restart] (<app>|--global) KEY1 [KEY2 ...]", Help: "Unset one or more config vars", Run: d.configUnset},
		Command{Name: "config:clear", Usage: "config:clear [--no-restart] (<app>|--global)", Help: "Clear all config vars of an app or the global environment", Run: d.configClear},
		Command{Name: "config:keys", Usage: "config:keys (<app>|--global) [--merged]", Help: "Show the keys set for an app or the global environment", Run: d.configKeys},
		Command{Name: "config:export", Usage: "config:export (<app>|--global) [--merged] [--format FORMAT]", Help: "Export config vars (formats: " + strings.Join(envfile.Formats, ", ") + "; default exports)", Run: d.configExport},
		Command{Name: "config:import", Usage: "config:import (<app>|--global) [--format envfile|json] [--replace] [--no-restart] [FILE|-]", Help: "Import config vars from stdin (or, on the server, a file)", Run: d.configImport},
		Command{Name: "config:bundle", Usage: "config:bundle (<app>|--global) [--merged]", Help: "Write a tarball of the environment to stdout, one file per key", Run: d.configBundle},
	)
}

// configArgs holds the flags every config command may take.
type configArgs struct {
	global, merged, quoted, encoded, noRestart, replace bool
	format                                              string
	scope                                               string
	rest                                                []string
}

// parseConfigArgs parses flags, then takes the scope: --global, or the
// first argument as an app name that must exist.
func (d Deps) parseConfigArgs(ctx context.Context, args []string) (configArgs, error) {
	var c configArgs
	rest, err := NewFlags().
		Bool(&c.global, "global").Bool(&c.merged, "merged").Bool(&c.quoted, "quoted").
		Bool(&c.encoded, "encoded").Bool(&c.noRestart, "no-restart").Bool(&c.replace, "replace").
		String(&c.format, "format").Parse(args)
	if err != nil {
		return c, Failf("%v", err)
	}
	if c.global {
		if c.merged {
			return c, Failf("--merged cannot be used with --global")
		}
		c.scope, c.rest = apps.Global, rest
		return c, nil
	}
	if len(rest) == 0 {
		return c, Failf("Please specify an app to run the command on")
	}
	c.scope, c.rest = rest[0], rest[1:]
	if _, err := d.Apps.App(ctx, c.scope); err != nil {
		return c, err
	}
	return c, nil
}

// scopeOnly parses args that must name a scope and nothing else.
func (d Deps) scopeOnly(ctx context.Context, args []string) (configArgs, error) {
	c, err := d.parseConfigArgs(ctx, args)
	if err == nil && len(c.rest) > 0 {
		err = Failf("Too many arguments: unexpected %q", c.rest[0])
	}
	return c, err
}

// scopeEnv parses a scope-only call and reads its config.
func (d Deps) scopeEnv(ctx context.Context, args []string) (configArgs, map[string]string, error) {
	c, err := d.scopeOnly(ctx, args)
	if err != nil {
		return c, nil, err
	}
	env, err := d.env(ctx, c)
	return c, env, err
}

// env returns the scope's config, merged with the global one if asked.
func (d Deps) env(ctx context.Context, c configArgs) (map[string]string, error) {
	if c.merged {
		return d.Apps.MergedEnv(ctx, c.scope)
	}
	return d.Apps.Env(ctx, c.scope)
}

func scopeLabel(scope string) string {
	if scope == apps.Global {
		return "global"
	}
	return scope
}

func (d Deps) configShow(ctx context.Context, s *Session, args []string) error {
	c, env, err := d.scopeEnv(ctx, args)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.Stdout, "=====> %s env vars\n", scopeLabel(c.scope))
	if len(env) > 0 {
		s.Println(envfile.Pretty("", env))
	}
	return nil
}

func (d Deps) configGet(ctx context.Context, s *Session, args []string) error {
	c, err := d.parseConfigArgs(ctx, args)
	if err != nil {
		return err
	}
	if len(c.rest) != 1 {
		return Failf("Expected exactly one KEY: rivetr config:get (<app>|--global) KEY")
	}
	key := c.rest[0]
	if err := apps.ValidateEnvKey(key); err != nil {
		return err
	}
	env, err := d.env(ctx, c)
	if err != nil {
		return err
	}
	v, ok := env[key]
	if !ok {
		return Exit(ExitFailure)
	}
	if c.quoted {
		v = envfile.Quote(v)
	}
	s.Println(v)
	return nil
}

func (d Deps) configSet(ctx context.Context, s *Session, args []string) error {
	c, err := d.parseConfigArgs(ctx, args)
	if err != nil {
		return err
	}
	if len(c.rest) == 0 {
		return Failf("Usage: rivetr config:set [--encoded] [--no-restart] (<app>|--global) KEY1=VALUE1 [KEY2=VALUE2 ...]")
	}
	set := make(map[string]string, len(c.rest))
	for _, pair := range c.rest {
		k, v, ok := strings.Cut(pair, "=")
		if !ok {
			return Failf("Invalid env pair %q: expected KEY=VALUE", clipArg(pair))
		}
		if err := apps.ValidateEnvKey(k); err != nil {
			return err
		}
		if c.encoded {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return Failf("Value of %s is not valid base64: %v", k, err)
			}
			v = string(b)
		}
		set[k] = v
	}
	if err := d.Apps.UpdateEnv(ctx, c.scope, apps.EnvChange{Set: set}); err != nil {
		return err
	}
	s.Step("Setting config vars")
	s.Detail("%s", envfile.Pretty("", set))
	return d.restart(ctx, s, c.scope, "config", c.noRestart)
}

func (d Deps) configUnset(ctx context.Context, s *Session, args []string) error {
	c, err := d.parseConfigArgs(ctx, args)
	if err != nil {
		return err
	}
	if len(c.rest) == 0 {
		return Failf("Usage: rivetr config:unset [--no-restart] (<app>|--global) KEY1 [KEY2 ...]")
	}
	if err := d.Apps.UpdateEnv(ctx, c.scope, apps.EnvChange{Unset: c.rest}); err != nil {
		return err
	}
	for _, k := range c.rest {
		s.Step("Unsetting %s", k)
	}
	return d.restart(ctx, s, c.scope, "config", c.noRestart)
}

func (d Deps) configClear(ctx context.Context, s *Session, args []string) error {
	c, err := d.scopeOnly(ctx, args)
	if err != nil {
		return err
	}
	if err := d.Apps.UpdateEnv(ctx, c.scope, apps.EnvChange{Clear: true}); err != nil {
		return err
	}
	s.Step("Clearing config vars")
	return d.restart(ctx, s, c.scope, "config", c.noRestart)
}

func (d Deps) configKeys(ctx context.Context, s *Session, args []string) error {
	_, env, err := d.scopeEnv(ctx, args)
	if err != nil {
		return err
	}
	for _, k := range envfile.Keys(env) {
		s.Println(k)
	}
	return nil
}

func (d Deps) configExport(ctx context.Context, s *Session, args []string) error {
	c, env, err := d.scopeEnv(ctx, args)
	if err != nil {
		return err
	}
	if c.format == "" {
		c.format = "exports"
	}
	out, err := envfile.Format(env, c.format)
	if err != nil {
		return Failf("%v", err)
	}
	if out != "" {
		s.Println(out)
	}
	return nil
}

func (d Deps) configImport(ctx context.Context, s *Session, args []string) error {
	c, err := d.parseConfigArgs(ctx, args)
	if err != nil {
		return err
	}
	if len(c.rest) > 1 {
		return Failf("Too many arguments: unexpected %q", c.rest[1])
	}
	var src io.Reader = s.Stdin
	if len(c.rest) == 1 && c.rest[0] != "-" {
		// Reading a server path is for the server's own admin only: over
		// SSH it would let a user read any file the daemon can.
		if !s.Admin {
			return Failf("config:import reads a FILE only on the server; over SSH pipe it to stdin")
		}
		f, err := os.Open(s.Path(c.rest[0]))
		if err != nil {
			return Failf("Cannot read %s: %v", c.rest[0], errors.Unwrap(err))
		}
		defer f.Close()
		src = f
	}
	data, err := io.ReadAll(io.LimitReader(src, MaxImport+1))
	if err != nil {
		return fmt.Errorf("read config to import: %w", err)
	}
	if len(data) > MaxImport {
		return Failf("Input is too large (over %d bytes); nothing was imported", MaxImport)
	}
	format := c.format
	if format == "" {
		format = "envfile"
		if strings.HasPrefix(strings.TrimSpace(string(data)), "{") {
			format = "json"
		}
	}
	var env map[string]string
	switch format {
	case "envfile":
		env, err = envfile.Parse(string(data))
	case "json":
		env, err = envfile.ParseJSON(data)
	default:
		return Failf("Invalid --format value %q: use envfile or json", format)
	}
	if err != nil {
		return Failf("Cannot import: %v; nothing was imported", err)
	}
	if err := d.Apps.UpdateEnv(ctx, c.scope, apps.EnvChange{Clear: c.replace, Set: env}); err != nil {
		return err
	}
	s.Step("Importing %d config vars", len(env))
	if len(env) > 0 {
		s.Detail("%s", strings.Join(envfile.Keys(env), "\n"))
	}
	return d.restart(ctx, s, c.scope, "config", c.noRestart)
}

func (d Deps) configBundle(ctx context.Context, s *Session, args []string) error {
	_, env, err := d.scopeEnv(ctx, args)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(s.Stdout)
	now := time.Now()
	for _, k := range envfile.Keys(env) {
		v := env[k]
		hdr := &tar.Header{Name: k, Mode: 0o600, Size: int64(len(v)), ModTime: now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write bundle: %w", err)
		}
		if _, err := io.WriteString(tw, v); err != nil {
			return fmt.Errorf("write bundle: %w", err)
		}
	}
	return tw.Close()
}
