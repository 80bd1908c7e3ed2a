package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	toml "github.com/pelletier/go-toml/v2"

	"github.com/rivetr/rivetr/apps"
)

// ManifestFile is the manifest every plugin directory holds.
const ManifestFile = "plugin.toml"

// Files of a plugin directory rivetr itself writes.
const (
	sourceFile     = ".rivetr-source.json"
	disabledMarker = ".disabled"
)

// notImplemented is the exit status of a Dokku `commands` executable that
// does not handle the command it was given (DOKKU_NOT_IMPLEMENTED_EXIT).
const notImplemented = 10

// Manifest is a plugin's plugin.toml:
//
//	[plugin]
//	description = "Post a JSON message after every deploy"
//	version = "1.0.0"
//	[plugin.config]
//	url = ""
type Manifest struct {
	Description string
	Version     string
	// Config holds the declared settings with their defaults; plugin:set
	// overrides them and triggers see them as RIVETR_PLUGIN_CONFIG_<KEY>.
	Config map[string]string
}

// ReadManifest reads and validates dir/plugin.toml: a [plugin] table with
// a description and a version; config values must be strings, numbers or
// booleans with keys of letters, digits, "_" and "-".
func ReadManifest(dir string) (Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Manifest{}, fmt.Errorf("no %s: a plugin needs one with [plugin] description and version", ManifestFile)
	}
	if err != nil {
		return Manifest{}, err
	}
	var doc struct {
		Plugin *struct {
			Description any            `toml:"description"`
			Version     any            `toml:"version"`
			Config      map[string]any `toml:"config"`
		} `toml:"plugin"`
	}
	if err := toml.Unmarshal(data, &doc); err != nil {
		return Manifest{}, fmt.Errorf("%s: %v", ManifestFile, oneLine(err.Error()))
	}
	if doc.Plugin == nil {
		return Manifest{}, fmt.Errorf("%s has no [plugin] table", ManifestFile)
	}
	desc, ok := doc.Plugin.Description.(string)
	if !ok || strings.TrimSpace(desc) == "" {
		return Manifest{}, fmt.Errorf("%s: [plugin] description must be a non-empty string", ManifestFile)
	}
	version, ok := doc.Plugin.Version.(string)
	if !ok || strings.TrimSpace(version) == "" || len(version) > 64 || strings.ContainsAny(version, " \t\n") {
		return Manifest{}, fmt.Errorf("%s: [plugin] version must be a string such as \"1.0.0\"", ManifestFile)
	}
	m := Manifest{Description: strings.TrimSpace(oneLine(desc)), Version: version, Config: map[string]string{}}
	for k, v := range doc.Plugin.Config {
		if !configKeyOK(k) {
			return Manifest{}, fmt.Errorf("%s: config key %q: use letters, digits, _ and -", ManifestFile, k)
		}
		switch v := v.(type) {
		case string:
			m.Config[k] = v
		case int64, float64, bool:
			m.Config[k] = fmt.Sprint(v)
		default:
			return Manifest{}, fmt.Errorf("%s: config %s must be a string, number or boolean", ManifestFile, k)
		}
	}
	return m, nil
}

func configKeyOK(k string) bool {
	if k == "" || len(k) > 64 {
		return false
	}
	for _, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// configEnv is the environment variable of a config key.
func configEnv(k string) string {
	return "RIVETR_PLUGIN_CONFIG_" + strings.ToUpper(strings.ReplaceAll(k, "-", "_"))
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// Source is where a plugin was installed from, for plugin:update.
type Source struct {
	Kind        string    `json:"kind"` // dir or git
	Location    string    `json:"location"`
	Ref         string    `json:"ref,omitempty"`
	Commit      string    `json:"commit,omitempty"`
	InstalledAt time.Time `json:"installed_at"`
}

// Plugin is one installed plugin.
type Plugin struct {
	Name     string
	Dir      string
	Manifest Manifest
	// Invalid says why the manifest could not be read ("" when it could).
	Invalid     string
	Enabled     bool
	Source      Source
	Triggers    []string // executable files named like hook points
	HasCommands bool     // an executable "commands"
	Subcommands []string // executables under subcommands/
}

// Runner runs plugins' executables (hooks.Runner).
type Runner interface {
	Run(ctx context.Context, point string, args []string, opts apps.HookOpts) (string, error)
	RunPlugin(ctx context.Context, plugin, point string, args []string, opts apps.HookOpts) (string, bool, error)
	Exec(ctx context.Context, plugin, file string, args []string, st apps.Streams, env map[string]string) (int, bool, error)
}

// Settings keeps plugin:set's overrides (the app service's global settings).
type Settings interface {
	Settings(ctx context.Context, scope, namespace string) (map[string]string, error)
	SetSetting(ctx context.Context, scope, namespace, key, value string) error
}

// Manager installs, updates, enables and lists the plugins under Dir and
// runs their commands.
type Manager struct {
	Dir      string // $RIVETR_DATA_DIR/plugins
	Hooks    Runner
	Settings Settings
	// Reserved reports names a plugin may not take: the built-in
	// namespaces and commands.
	Reserved func(name string) bool
}

// settingsNS is where a plugin's config overrides live.
func settingsNS(name string) string { return "plugin:" + name }

// errorf is a user error of the plugins namespace.
func errorf(format string, args ...any) error {
	return apps.Errorf(apps.ErrInvalidValue, format, args...)
}

// CheckName refuses names that are not one plain path element or that a
// built-in command owns.
func (m *Manager) CheckName(name string) error {
	if !apps.ValidPluginName(name) {
		return errorf("Invalid plugin name %q: use lower-case letters, digits, - and _ (at most 64)", name)
	}
	if m.Reserved != nil && m.Reserved(name) {
		return errorf("Plugin name %q is taken by a built-in namespace: install it under another name (--name)", name)
	}
	return nil
}

// Install installs a plugin from src, a local directory holding
// plugin.toml or a git repository (a URL or a local repository, cloned
// with go-git; ref picks a branch or tag). name defaults to the last
// element of src. The plugin's install trigger runs last; if it fails, the
// plugin is removed again.
func (m *Manager) Install(ctx context.Context, src, ref, name string, out io.Writer) (Plugin, error) {
	kind, err := sourceKind(src)
	if err != nil {
		return Plugin{}, err
	}
	if name == "" {
		name = defaultName(src)
	}
	if err := m.CheckName(name); err != nil {
		return Plugin{}, err
	}
	if err := os.MkdirAll(m.Dir, 0o755); err != nil {
		return Plugin{}, fmt.Errorf("create plugins directory: %w", err)
	}
	final := filepath.Join(m.Dir, name)
	if _, err := os.Lstat(final); err == nil {
		return Plugin{}, errorf("Plugin %s is already installed: plugin:update %s, or plugin:uninstall it first", name, name)
	}
	stage, err := m.stage(ctx, kind, src, ref, name, out)
	if err != nil {
		return Plugin{}, err
	}
	if err := os.Rename(stage, final); err != nil {
		os.RemoveAll(stage)
		return Plugin{}, fmt.Errorf("install plugin %s: %w", name, err)
	}
	if _, _, err := m.Hooks.RunPlugin(ctx, name, "install", nil, apps.HookOpts{Out: out}); err != nil {
		os.RemoveAll(final)
		return Plugin{}, apps.Errorf(apps.ErrInvalidValue, "The install trigger of %s failed, so it was removed again: %v", name, err)
	}
	return m.Get(name)
}

// Update installs the plugin again from where it came from (at ref, for a
// git source, if given), keeping its enabled state and config, then runs
// its update trigger. A copy that fails validation changes nothing.
func (m *Manager) Update(ctx context.Context, name, ref string, out io.Writer) (Plugin, error) {
	p, err := m.Get(name)
	if err != nil {
		return Plugin{}, err
	}
	if p.Source.Location == "" {
		return Plugin{}, errorf("Plugin %s was not installed with plugin:install: nothing to update it from", name)
	}
	if ref == "" {
		ref = p.Source.Ref
	}
	if p.Source.Kind == "dir" && ref != "" {
		return Plugin{}, errorf("Plugin %s was installed from a directory: it has no ref to update to", name)
	}
	stage, err := m.stage(ctx, p.Source.Kind, p.Source.Location, ref, name, out)
	if err != nil {
		return Plugin{}, err
	}
	if !p.Enabled {
		if err := os.WriteFile(filepath.Join(stage, disabledMarker), nil, 0o644); err != nil {
			os.RemoveAll(stage)
			return Plugin{}, err
		}
	}
	old, err := os.MkdirTemp(m.Dir, ".old-"+name+"-")
	if err != nil {
		os.RemoveAll(stage)
		return Plugin{}, err
	}
	os.Remove(old)
	if err := os.Rename(p.Dir, old); err != nil {
		os.RemoveAll(stage)
		return Plugin{}, fmt.Errorf("update plugin %s: %w", name, err)
	}
	if err := os.Rename(stage, p.Dir); err != nil {
		os.Rename(old, p.Dir)
		os.RemoveAll(stage)
		return Plugin{}, fmt.Errorf("update plugin %s: %w", name, err)
	}
	os.RemoveAll(old)
	if _, _, err := m.Hooks.RunPlugin(ctx, name, "update", nil, apps.HookOpts{Out: out}); err != nil {
		return Plugin{}, apps.Errorf(apps.ErrInvalidValue, "Plugin %s was updated but its update trigger failed: %v", name, err)
	}
	return m.Get(name)
}

// Uninstall runs the plugin's uninstall trigger (a failure stops it unless
// force) and removes the plugin and its config.
func (m *Manager) Uninstall(ctx context.Context, name string, force bool, out io.Writer) error {
	p, err := m.Get(name)
	if err != nil {
		return err
	}
	if _, _, err := m.Hooks.RunPlugin(ctx, name, "uninstall", nil, apps.HookOpts{Out: out}); err != nil {
		if !force {
			return apps.Errorf(apps.ErrInvalidValue, "The uninstall trigger of %s failed, so it stays installed (--force removes it anyway): %v", name, err)
		}
		fmt.Fprintf(out, " !     uninstall trigger failed, removing anyway: %v\n", err)
	}
	gone, err := os.MkdirTemp(m.Dir, ".remove-"+name+"-")
	if err != nil {
		return err
	}
	os.Remove(gone)
	if err := os.Rename(p.Dir, gone); err != nil {
		return fmt.Errorf("uninstall plugin %s: %w", name, err)
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("uninstall plugin %s: %w", name, err)
	}
	if m.Settings != nil {
		set, err := m.Settings.Settings(ctx, apps.Global, settingsNS(name))
		if err != nil {
			return err
		}
		for k := range set {
			if err := m.Settings.SetSetting(ctx, apps.Global, settingsNS(name), k, ""); err != nil {
				return err
			}
		}
	}
	return nil
}

// SetEnabled enables or disables a plugin: a disabled plugin's triggers and
// commands do not run.
func (m *Manager) SetEnabled(name string, on bool) error {
	p, err := m.Get(name)
	if err != nil {
		return err
	}
	marker := filepath.Join(p.Dir, disabledMarker)
	if on {
		if err := os.Remove(marker); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	return os.WriteFile(marker, nil, 0o644)
}

// SetConfig overrides one of the plugin's declared config keys; an empty
// value goes back to the default of plugin.toml.
func (m *Manager) SetConfig(ctx context.Context, name, key, value string) error {
	p, err := m.Get(name)
	if err != nil {
		return err
	}
	if _, ok := p.Manifest.Config[key]; !ok {
		keys := make([]string, 0, len(p.Manifest.Config))
		for k := range p.Manifest.Config {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if len(keys) == 0 {
			return errorf("Plugin %s declares no config ([plugin.config] in its plugin.toml)", name)
		}
		return errorf("Plugin %s has no config key %q; it has: %s", name, key, strings.Join(keys, ", "))
	}
	if strings.ContainsRune(value, 0) || len(value) > 4096 {
		return errorf("Invalid value for %s", key)
	}
	return m.Settings.SetSetting(ctx, apps.Global, settingsNS(name), key, value)
}

// Config returns a plugin's effective config: plugin.toml's defaults with
// plugin:set's overrides.
func (m *Manager) Config(ctx context.Context, p Plugin) (map[string]string, error) {
	cfg := map[string]string{}
	for k, v := range p.Manifest.Config {
		cfg[k] = v
	}
	if m.Settings == nil {
		return cfg, nil
	}
	set, err := m.Settings.Settings(ctx, apps.Global, settingsNS(p.Name))
	if err != nil {
		return nil, err
	}
	for k, v := range set {
		if _, declared := cfg[k]; declared {
			cfg[k] = v
		}
	}
	return cfg, nil
}

// Env is the extra environment of a plugin's runs (hooks.Config.PluginEnv):
// RIVETR_PLUGIN_CONFIG_<KEY> for each config key.
// It reads only the manifest and the overrides: it runs before every
// trigger.
func (m *Manager) Env(name string) map[string]string {
	if !apps.ValidPluginName(name) {
		return nil
	}
	man, err := ReadManifest(filepath.Join(m.Dir, name))
	if err != nil || len(man.Config) == 0 {
		return nil
	}
	cfg, err := m.Config(context.Background(), Plugin{Name: name, Manifest: man})
	if err != nil {
		return nil
	}
	env := make(map[string]string, len(cfg))
	for k, v := range cfg {
		env[configEnv(k)] = v
	}
	return env
}

// List returns the installed plugins by name.
func (m *Manager) List() ([]Plugin, error) {
	entries, err := os.ReadDir(m.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Plugin
	for _, e := range entries {
		if !apps.ValidPluginName(e.Name()) {
			continue // staging dirs (.install-*) and strays
		}
		p, err := m.Get(e.Name())
		if err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// ErrNotInstalled: no plugin by that name.
var ErrNotInstalled = errors.New("plugin not installed")

// Get returns one installed plugin.
func (m *Manager) Get(name string) (Plugin, error) {
	if !apps.ValidPluginName(name) {
		return Plugin{}, errorf("Invalid plugin name %q", name)
	}
	dir := filepath.Join(m.Dir, name)
	fi, err := os.Stat(dir)
	if err != nil || !fi.IsDir() {
		return Plugin{}, apps.Errorf(ErrNotInstalled, "Plugin %s is not installed (plugin:list shows those that are)", name)
	}
	p := Plugin{Name: name, Dir: dir, Enabled: true}
	if man, err := ReadManifest(dir); err != nil {
		p.Invalid = err.Error()
	} else {
		p.Manifest = man
	}
	if _, err := os.Lstat(filepath.Join(dir, disabledMarker)); err == nil {
		p.Enabled = false
	}
	if b, err := os.ReadFile(filepath.Join(dir, sourceFile)); err == nil {
		json.Unmarshal(b, &p.Source)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !executable(filepath.Join(dir, e.Name())) {
			continue
		}
		switch {
		case e.Name() == "commands":
			p.HasCommands = true
		case apps.ValidPluginName(e.Name()):
			p.Triggers = append(p.Triggers, e.Name())
		}
	}
	subs, _ := os.ReadDir(filepath.Join(dir, "subcommands"))
	for _, e := range subs {
		if apps.ValidPluginName(e.Name()) && executable(filepath.Join(dir, "subcommands", e.Name())) {
			p.Subcommands = append(p.Subcommands, e.Name())
		}
	}
	return p, nil
}

// executable reports whether path is (or links to) an executable regular file.
func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// sourceKind tells a plugin directory from a git repository.
func sourceKind(src string) (string, error) {
	if src == "" || strings.HasPrefix(src, "-") || strings.ContainsAny(src, "\x00\n") {
		return "", errorf("Invalid plugin source %q", src)
	}
	if fi, err := os.Stat(src); err == nil && fi.IsDir() {
		if _, err := os.Stat(filepath.Join(src, ManifestFile)); err == nil {
			return "dir", nil
		}
		if _, err := git.PlainOpen(src); err == nil {
			return "git", nil
		}
		return "", errorf("%s holds no %s and is not a git repository", src, ManifestFile)
	}
	if isURL(src) {
		return "git", nil
	}
	return "", errorf("%s is neither a directory nor a git URL", src)
}

// isURL reports whether src is a git URL (scheme:// or scp-like
// user@host:path) rather than a local path.
func isURL(src string) bool {
	if strings.Contains(src, "://") {
		return true
	}
	at, colon := strings.Index(src, "@"), strings.Index(src, ":")
	return at > 0 && colon > at && !strings.Contains(src[:at], "/")
}

// defaultName is the plugin name a source suggests: its last element
// without ".git".
func defaultName(src string) string {
	s := strings.TrimRight(src, "/")
	if i := strings.LastIndexAny(s, "/:"); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSuffix(s, ".git")
}

// stage copies or clones the plugin into a hidden directory of the plugins
// directory (which the hook runner skips), validates it and records where
// it came from. The caller renames it into place.
func (m *Manager) stage(ctx context.Context, kind, src, ref, name string, out io.Writer) (string, error) {
	stage, err := os.MkdirTemp(m.Dir, ".install-"+name+"-")
	if err != nil {
		return "", fmt.Errorf("stage plugin %s: %w", name, err)
	}
	os.Chmod(stage, 0o755)
	info := Source{Kind: kind, Location: src, Ref: ref, InstalledAt: time.Now().UTC()}
	fail := func(err error) (string, error) {
		os.RemoveAll(stage)
		return "", err
	}
	switch kind {
	case "dir":
		abs, err := filepath.Abs(src)
		if err != nil {
			return fail(err)
		}
		info.Location = abs
		fmt.Fprintf(out, "-----> Copying %s\n", abs)
		if err := copyTree(abs, stage); err != nil {
			return fail(errorf("Copy %s: %v", abs, err))
		}
	case "git":
		if fi, err := os.Stat(src); err == nil && fi.IsDir() {
			if abs, err := filepath.Abs(src); err == nil {
				info.Location = abs
			}
		}
		fmt.Fprintf(out, "-----> Cloning %s\n", info.Location)
		opts := &git.CloneOptions{URL: info.Location, Depth: 1, Tags: git.NoTags}
		if ref != "" {
			opts.ReferenceName = plumbing.NewBranchReferenceName(ref)
		}
		repo, err := git.PlainCloneContext(ctx, stage, false, opts)
		if err != nil && ref != "" {
			// Not a branch: try a tag.
			os.RemoveAll(stage)
			os.MkdirAll(stage, 0o755)
			opts.ReferenceName = plumbing.NewTagReferenceName(ref)
			repo, err = git.PlainCloneContext(ctx, stage, false, opts)
		}
		if err != nil {
			return fail(errorf("Clone %s: %v", info.Location, err))
		}
		if head, err := repo.Head(); err == nil {
			info.Commit = head.Hash().String()
		}
		if err := os.RemoveAll(filepath.Join(stage, ".git")); err != nil {
			return fail(err)
		}
	default:
		return fail(errorf("Unknown plugin source kind %q", kind))
	}
	man, err := ReadManifest(stage)
	if err != nil {
		return fail(errorf("Invalid plugin %s: %v", name, err))
	}
	b, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(filepath.Join(stage, sourceFile), b, 0o644); err != nil {
		return fail(err)
	}
	fmt.Fprintf(out, "-----> Plugin %s %s: %s\n", name, man.Version, man.Description)
	return stage, nil
}

// copyTree copies regular files (with their modes), directories and
// relative symbolic links that stay inside src into dst; .git is skipped.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		if d.Name() == ".git" || d.Name() == disabledMarker || d.Name() == sourceFile {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(target, 0o755)
		case info.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			resolved := filepath.Join(filepath.Dir(rel), link)
			if filepath.IsAbs(link) || !filepath.IsLocal(resolved) {
				return fmt.Errorf("symbolic link %s points outside the plugin (%s)", rel, link)
			}
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			return copyFile(path, target, info.Mode().Perm())
		}
		return fmt.Errorf("%s is not a regular file, directory or link", rel)
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
