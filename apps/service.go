package apps

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Service is the core's entry point for app lifecycle and configuration.
// Commands, the API and the git server all go through it, so validation and
// (later) hooks and deploys happen in one place.
type Service struct {
	store Store
	now   func() time.Time

	onDestroy []func(ctx context.Context, app string) error
	onRename  []func(ctx context.Context, oldName, newName string) error
	hooks     Hooks
}

// SetHooks makes the service call post-create, pre-delete, post-delete and
// post-config-update.
func (s *Service) SetHooks(h Hooks) { s.hooks = h }

// hook runs a hook point if hooks are set.
func (s *Service) hook(ctx context.Context, point string, args ...string) error {
	if s.hooks == nil {
		return nil
	}
	_, err := s.hooks.Run(ctx, point, args, HookOpts{})
	return err
}

// OnDestroy registers fn to run before an app's state is deleted (remove
// its containers, repository, ...). An error keeps the app.
func (s *Service) OnDestroy(fn func(ctx context.Context, app string) error) {
	s.onDestroy = append(s.onDestroy, fn)
}

// OnRename registers fn to run after an app is renamed in the store.
func (s *Service) OnRename(fn func(ctx context.Context, oldName, newName string) error) {
	s.onRename = append(s.onRename, fn)
}

// NewService returns a Service over store.
func NewService(store Store) *Service {
	return &Service{store: store, now: time.Now}
}

// Store returns the underlying store for read-only helpers.
func (s *Service) Store() Store { return s.store }

// Create creates an app after validating its name.
func (s *Service) Create(ctx context.Context, name string) (App, error) {
	if err := ValidateAppName(name); err != nil {
		return App{}, err
	}
	app := App{Name: name, CreatedAt: s.now().UTC().Truncate(time.Second)}
	if err := s.store.CreateApp(ctx, app); err != nil {
		return App{}, err
	}
	if err := s.hook(ctx, "post-create", name); err != nil {
		return app, fmt.Errorf("post-create hook: %w", err)
	}
	return app, nil
}

// App returns the named app, validating the name first.
func (s *Service) App(ctx context.Context, name string) (App, error) {
	if err := ValidateAppName(name); err != nil {
		return App{}, err
	}
	return s.store.App(ctx, name)
}

// Apps lists every app, sorted by name.
func (s *Service) Apps(ctx context.Context) ([]App, error) {
	list, err := s.store.Apps(ctx)
	if err != nil {
		return nil, err
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
	return list, nil
}

// Destroy removes an app with its config and settings.
func (s *Service) Destroy(ctx context.Context, name string) error {
	if _, err := s.App(ctx, name); err != nil {
		return err
	}
	if err := s.hook(ctx, "pre-delete", name); err != nil {
		return fmt.Errorf("pre-delete hook: %w", err)
	}
	for _, fn := range s.onDestroy {
		if err := fn(ctx, name); err != nil {
			return fmt.Errorf("destroy %s: %w", name, err)
		}
	}
	if err := s.store.DeleteApp(ctx, name); err != nil {
		return err
	}
	if err := s.hook(ctx, "post-delete", name); err != nil {
		return fmt.Errorf("post-delete hook: %w", err)
	}
	return nil
}

// Rename gives an app a new name, keeping its config and settings.
func (s *Service) Rename(ctx context.Context, oldName, newName string) error {
	if _, err := s.App(ctx, oldName); err != nil {
		return err
	}
	if err := ValidateAppName(newName); err != nil {
		return err
	}
	if err := s.store.RenameApp(ctx, oldName, newName); err != nil {
		return err
	}
	for _, fn := range s.onRename {
		if err := fn(ctx, oldName, newName); err != nil {
			return fmt.Errorf("rename %s to %s: %w", oldName, newName, err)
		}
	}
	return nil
}

// Clone creates newName with a copy of oldName's config and settings.
func (s *Service) Clone(ctx context.Context, oldName, newName string) (App, error) {
	if _, err := s.App(ctx, oldName); err != nil {
		return App{}, err
	}
	if err := ValidateAppName(newName); err != nil {
		return App{}, err
	}
	app := App{Name: newName, CreatedAt: s.now().UTC().Truncate(time.Second)}
	return app, s.store.CloneApp(ctx, oldName, app)
}

// SetLocked locks or unlocks deploys of an app.
func (s *Service) SetLocked(ctx context.Context, name string, locked bool) error {
	if _, err := s.App(ctx, name); err != nil {
		return err
	}
	return s.store.SetAppLocked(ctx, name, locked)
}

// checkScope validates a scope: Global, or the name of an existing app.
func (s *Service) checkScope(ctx context.Context, scope string) error {
	if scope == Global {
		return nil
	}
	_, err := s.App(ctx, scope)
	return err
}

// Env returns the config of a scope (an app's own, or the global one).
func (s *Service) Env(ctx context.Context, scope string) (map[string]string, error) {
	if err := s.checkScope(ctx, scope); err != nil {
		return nil, err
	}
	return s.store.Env(ctx, scope)
}

// MergedEnv returns the global config overlaid with the app's own.
func (s *Service) MergedEnv(ctx context.Context, app string) (map[string]string, error) {
	own, err := s.Env(ctx, app)
	if err != nil {
		return nil, err
	}
	global, err := s.store.Env(ctx, Global)
	if err != nil {
		return nil, err
	}
	for k, v := range own {
		global[k] = v
	}
	return global, nil
}

// UpdateEnv validates every key and value, then applies the change at once.
func (s *Service) UpdateEnv(ctx context.Context, scope string, change EnvChange) error {
	if err := s.checkScope(ctx, scope); err != nil {
		return err
	}
	for k, v := range change.Set {
		if err := ValidateEnvKey(k); err != nil {
			return err
		}
		if err := ValidateEnvValue(k, v); err != nil {
			return err
		}
	}
	for _, k := range change.Unset {
		if err := ValidateEnvKey(k); err != nil {
			return err
		}
	}
	if err := s.store.UpdateEnv(ctx, scope, change); err != nil {
		return fmt.Errorf("update config of %q: %w", scope, err)
	}
	if scope == Global {
		return nil
	}
	action, keys := "set", make([]string, 0, len(change.Set))
	for k := range change.Set {
		keys = append(keys, k)
	}
	switch {
	case change.Clear:
		action = "clear"
	case len(change.Unset) > 0 && len(change.Set) == 0:
		action, keys = "unset", change.Unset
	}
	sort.Strings(keys)
	if err := s.hook(ctx, "post-config-update", append([]string{scope, action}, keys...)...); err != nil {
		return fmt.Errorf("post-config-update hook: %w", err)
	}
	return nil
}

// Settings returns a scope's settings in one namespace.
func (s *Service) Settings(ctx context.Context, scope, namespace string) (map[string]string, error) {
	if err := s.checkScope(ctx, scope); err != nil {
		return nil, err
	}
	return s.store.Settings(ctx, scope, namespace)
}

// AppsSettings returns every app's own settings in namespace, by app.
func (s *Service) AppsSettings(ctx context.Context, namespace string) (map[string]map[string]string, error) {
	return s.store.AppsSettings(ctx, namespace)
}

// SetSetting stores one setting; an empty value resets it to its default.
func (s *Service) SetSetting(ctx context.Context, scope, namespace, key, value string) error {
	if err := s.checkScope(ctx, scope); err != nil {
		return err
	}
	if err := ValidateEnvValue(key, value); err != nil {
		return err
	}
	return s.store.SetSetting(ctx, scope, namespace, key, value)
}
