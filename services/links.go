package services

import (
	"context"
	"strings"

	"github.com/rivetr/rivetr/apps"
)

// linkURL is the URL a link puts in the app's config.
func (m *Manager) linkURL(e *Engine, rec apps.ServiceRecord, qs string) string {
	u := m.DSN(e, rec)
	if qs = strings.TrimPrefix(qs, "?"); qs != "" {
		if strings.Contains(u, "?") {
			u += "&" + qs
		} else {
			u += "?" + qs
		}
	}
	return u
}

// Link sets the service's URL in app's config, under the engine's
// variable (DATABASE_URL, REDIS_URL, MONGO_URL) when the app has none, else
// under the next free colour alias (RIVETR_POSTGRES_AQUA_URL, ...), or
// under ALIAS_URL for alias. It returns the variable set.
func (m *Manager) Link(ctx context.Context, e *Engine, rec apps.ServiceRecord, app, alias, qs string) (string, error) {
	if _, err := m.Env.App(ctx, app); err != nil {
		return "", err
	}
	links, err := m.Store.ServiceLinks(ctx, e.Name, rec.Name)
	if err != nil {
		return "", err
	}
	for _, l := range links {
		if l.App == app {
			return "", apps.Errorf(apps.ErrInvalidValue, "Already linked as %s", l.Alias)
		}
	}
	env, err := m.Env.Env(ctx, app)
	if err != nil {
		return "", err
	}
	key := e.EnvVar
	switch {
	case alias != "":
		key = strings.ToUpper(strings.TrimSuffix(alias, "_URL")) + "_URL"
		if err := apps.ValidateEnvKey(key); err != nil {
			return "", apps.Errorf(apps.ErrInvalidValue, "Invalid alias %q", alias)
		}
		if _, taken := env[key]; taken {
			return "", apps.Errorf(apps.ErrInvalidValue, "%s is already set on %s", key, app)
		}
	default:
		if _, taken := env[key]; taken {
			key = ""
			for _, c := range colors {
				k := e.ColorPrefix + c + "_URL"
				if _, taken := env[k]; !taken {
					key = k
					break
				}
			}
			if key == "" {
				return "", apps.Errorf(apps.ErrInvalidValue, "No free alias left on %s: use --alias", app)
			}
		}
	}
	if err := m.Env.UpdateEnv(ctx, app, apps.EnvChange{Set: map[string]string{key: m.linkURL(e, rec, qs)}}); err != nil {
		return "", err
	}
	if err := m.Store.AddServiceLink(ctx, apps.ServiceLink{Engine: e.Name, Service: rec.Name, App: app, Alias: key, QueryString: qs}); err != nil {
		m.Env.UpdateEnv(context.WithoutCancel(ctx), app, apps.EnvChange{Unset: []string{key}})
		return "", err
	}
	return key, nil
}

// link returns the link of the service to app.
func (m *Manager) link(ctx context.Context, e *Engine, rec apps.ServiceRecord, app string) (apps.ServiceLink, error) {
	if _, err := m.Env.App(ctx, app); err != nil {
		return apps.ServiceLink{}, err
	}
	links, err := m.Store.ServiceLinks(ctx, e.Name, rec.Name)
	if err != nil {
		return apps.ServiceLink{}, err
	}
	for _, l := range links {
		if l.App == app {
			return l, nil
		}
	}
	return apps.ServiceLink{}, apps.Errorf(apps.ErrInvalidValue, "Not linked to app %s", app)
}

// Unlink removes the service's URL from app's config; it returns the
// variable removed.
func (m *Manager) Unlink(ctx context.Context, e *Engine, rec apps.ServiceRecord, app string) (string, error) {
	l, err := m.link(ctx, e, rec, app)
	if err != nil {
		return "", err
	}
	if err := m.Env.UpdateEnv(ctx, app, apps.EnvChange{Unset: []string{l.Alias}}); err != nil {
		return "", err
	}
	return l.Alias, m.Store.RemoveServiceLink(ctx, e.Name, rec.Name, app)
}

// Promote makes the service the one app reaches through the engine's
// main variable (DATABASE_URL): the service that had it moves to a colour
// alias. It returns the variables set.
func (m *Manager) Promote(ctx context.Context, e *Engine, rec apps.ServiceRecord, app string) (map[string]string, error) {
	l, err := m.link(ctx, e, rec, app)
	if err != nil {
		return nil, err
	}
	if l.Alias == e.EnvVar {
		return nil, apps.Errorf(apps.ErrInvalidValue, "%s is already %s on %s", rec.Name, e.EnvVar, app)
	}
	env, err := m.Env.Env(ctx, app)
	if err != nil {
		return nil, err
	}
	set := map[string]string{e.EnvVar: env[l.Alias]}
	unset := []string{l.Alias}
	others, err := m.Store.AppServiceLinks(ctx, app)
	if err != nil {
		return nil, err
	}
	var moved *apps.ServiceLink
	for _, o := range others {
		if o.Alias == e.EnvVar {
			o := o
			moved = &o
		}
	}
	if moved != nil {
		// The previous holder takes the alias this service leaves.
		set[l.Alias] = env[e.EnvVar]
		unset = nil
		moved.Alias = l.Alias
	}
	if err := m.Env.UpdateEnv(ctx, app, apps.EnvChange{Set: set, Unset: unset}); err != nil {
		return nil, err
	}
	if moved != nil {
		if err := m.Store.AddServiceLink(ctx, *moved); err != nil {
			return nil, err
		}
	}
	l.Alias = e.EnvVar
	return set, m.Store.AddServiceLink(ctx, l)
}
