package services

import (
	"context"
	"fmt"
	"io"

	"github.com/rivetr/rivetr/apps"
)

// API is the Manager addressed by engine name, as the command language
// calls it.
type API struct{ M *Manager }

func (a API) eng(kind string) (*Engine, error) {
	e, ok := Engines[kind]
	if !ok {
		return nil, fmt.Errorf("unknown service engine %q", kind)
	}
	return e, nil
}

// Kinds lists the engines.
func (a API) Kinds() []apps.ServiceKind {
	var out []apps.ServiceKind
	for _, n := range Names() {
		e := Engines[n]
		out = append(out, apps.ServiceKind{Name: e.Name, Title: e.Title, Image: e.Image, Version: e.Version, Port: e.Port, EnvVar: e.EnvVar})
	}
	return out
}

// Create makes a service.
func (a API) Create(ctx context.Context, kind, name string, o apps.ServiceCreate, out io.Writer) error {
	e, err := a.eng(kind)
	if err != nil {
		return err
	}
	return a.M.Create(ctx, e, name, CreateOptions(o), out)
}

// Record returns a service.
func (a API) Record(ctx context.Context, kind, name string) (apps.ServiceRecord, error) {
	e, err := a.eng(kind)
	if err != nil {
		return apps.ServiceRecord{}, err
	}
	return a.M.Record(ctx, e, name)
}

// List returns an engine's services.
func (a API) List(ctx context.Context, kind string) ([]apps.ServiceRecord, error) {
	e, err := a.eng(kind)
	if err != nil {
		return nil, err
	}
	return a.M.List(ctx, e)
}

// Details are what NS:info shows beyond the record.
func (a API) Details(ctx context.Context, kind string, rec apps.ServiceRecord) (status, id, dsn, host, volume string) {
	e := Engines[kind]
	status, id = a.M.Status(ctx, e, rec)
	return status, id, a.M.DSN(e, rec), HostName(e, rec.Name), volumeName(e, rec.Name)
}

// Links lists the apps a service is linked to.
func (a API) Links(ctx context.Context, kind, name string) ([]apps.ServiceLink, error) {
	return a.M.Store.ServiceLinks(ctx, kind, name)
}

// AppLinks lists the services linked to an app.
func (a API) AppLinks(ctx context.Context, app string) ([]apps.ServiceLink, error) {
	return a.M.Store.AppServiceLinks(ctx, app)
}

// with runs fn on the engine and record of kind/name.
func (a API) with(ctx context.Context, kind, name string, fn func(e *Engine, rec apps.ServiceRecord) error) error {
	e, err := a.eng(kind)
	if err != nil {
		return err
	}
	rec, err := a.M.Record(ctx, e, name)
	if err != nil {
		return err
	}
	return fn(e, rec)
}

// Link links a service to an app and returns the variable set.
func (a API) Link(ctx context.Context, kind, name, app, alias, qs string) (key string, err error) {
	err = a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error {
		key, err = a.M.Link(ctx, e, rec, app, alias, qs)
		return err
	})
	return key, err
}

// Unlink unlinks a service from an app and returns the variable removed.
func (a API) Unlink(ctx context.Context, kind, name, app string) (key string, err error) {
	err = a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error {
		key, err = a.M.Unlink(ctx, e, rec, app)
		return err
	})
	return key, err
}

// Promote makes the service app's main one.
func (a API) Promote(ctx context.Context, kind, name, app string) (set map[string]string, err error) {
	err = a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error {
		set, err = a.M.Promote(ctx, e, rec, app)
		return err
	})
	return set, err
}

// Connect runs the engine's client in the service with the streams.
func (a API) Connect(ctx context.Context, kind, name string, st apps.Streams) (code int, err error) {
	err = a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error {
		code, err = a.M.Exec(ctx, e, rec, e.Client(instance(rec)), st)
		return err
	})
	return code, err
}

// Enter runs cmd (default /bin/sh) in the service's container.
func (a API) Enter(ctx context.Context, kind, name string, cmd []string, st apps.Streams) (code int, err error) {
	if len(cmd) == 0 {
		cmd = []string{"/bin/sh"}
	}
	err = a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error {
		code, err = a.M.Exec(ctx, e, rec, cmd, st)
		return err
	})
	return code, err
}

// Export writes a dump of the service to w.
func (a API) Export(ctx context.Context, kind, name string, w io.Writer) error {
	return a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error { return a.M.Export(ctx, e, rec, w) })
}

// Import restores a dump from r.
func (a API) Import(ctx context.Context, kind, name string, r io.Reader, out io.Writer) error {
	return a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error { return a.M.Import(ctx, e, rec, r, out) })
}

// Logs writes the service's output.
func (a API) Logs(ctx context.Context, kind, name string, opts apps.LogOptions, st apps.Streams) error {
	return a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error { return a.M.Logs(ctx, e, rec, opts, st) })
}

// Expose publishes the service's port.
func (a API) Expose(ctx context.Context, kind, name string, specs []string, out io.Writer) error {
	return a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error { return a.M.Expose(ctx, e, rec, specs, out) })
}

// Unexpose stops publishing it.
func (a API) Unexpose(ctx context.Context, kind, name string, out io.Writer) error {
	return a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error { return a.M.Unexpose(ctx, e, rec, out) })
}

// Start starts the service.
func (a API) Start(ctx context.Context, kind, name string, out io.Writer) error {
	return a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error { return a.M.Start(ctx, e, rec, out) })
}

// Stop stops it.
func (a API) Stop(ctx context.Context, kind, name string) error {
	return a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error { return a.M.Stop(ctx, e, rec) })
}

// Upgrade moves it to another image or version.
func (a API) Upgrade(ctx context.Context, kind, name, image, version string, out io.Writer) error {
	return a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error {
		return a.M.Upgrade(ctx, e, rec, image, version, out)
	})
}

// Clone copies it into a new service.
func (a API) Clone(ctx context.Context, kind, name, newName string, out io.Writer) error {
	return a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error { return a.M.Clone(ctx, e, rec, newName, out) })
}

// Destroy removes it and its data.
func (a API) Destroy(ctx context.Context, kind, name string) error {
	return a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error { return a.M.Destroy(ctx, e, rec) })
}

// Backup dumps a service locally (dir, "" for the default) or to bucket.
func (a API) Backup(ctx context.Context, kind, name, dir, bucket string) (where string, err error) {
	err = a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error {
		where, err = a.M.Backup(ctx, e, rec, dir, bucket)
		return err
	})
	return where, err
}

// BackupAuth stores S3 credentials.
func (a API) BackupAuth(ctx context.Context, kind, name, endpoint, access, secret, region, bucket string) error {
	return a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error {
		if endpoint == "" {
			return a.M.UnsetBackupAuth(ctx, e, rec)
		}
		return a.M.SetBackupAuth(ctx, e, rec, endpoint, access, secret, region, bucket)
	})
}

// BackupEncryption sets ("" unsets) the passphrase of backups.
func (a API) BackupEncryption(ctx context.Context, kind, name, passphrase string) error {
	return a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error {
		return a.M.SetBackupEncryption(ctx, e, rec, passphrase)
	})
}

// BackupSchedule sets ("" unsets) the backup schedule; Schedule reads it.
func (a API) BackupSchedule(ctx context.Context, kind, name, spec, bucket string) error {
	return a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error {
		if spec == "" {
			return a.M.UnsetBackupSchedule(ctx, e, rec)
		}
		return a.M.SetBackupSchedule(ctx, e, rec, spec, bucket)
	})
}

// Schedule returns the backup schedule and its bucket.
func (a API) Schedule(ctx context.Context, kind, name string) (spec, bucket string, err error) {
	err = a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error {
		spec, bucket, err = a.M.BackupSchedule(ctx, e, rec)
		return err
	})
	return spec, bucket, err
}

// BackupList lists backups, newest first.
func (a API) BackupList(ctx context.Context, kind, name, bucket string) (list []apps.BackupInfo, err error) {
	err = a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error {
		list, err = a.M.Backups(ctx, e, rec, bucket)
		return err
	})
	return list, err
}

// BackupRestore imports a backup ("" for the newest) and returns its name.
func (a API) BackupRestore(ctx context.Context, kind, name, backup, bucket string, out io.Writer) (restored string, err error) {
	err = a.with(ctx, kind, name, func(e *Engine, rec apps.ServiceRecord) error {
		restored, err = a.M.RestoreBackup(ctx, e, rec, backup, bucket, out)
		return err
	})
	return restored, err
}

func templateInfo(t Template) apps.TemplateInfo {
	info := apps.TemplateInfo{Name: t.Name, Description: t.Description, Web: t.Web, EngineSocket: t.EngineSocket}
	for _, v := range t.Variables {
		info.Variables = append(info.Variables, apps.TemplateVariable{Name: v.Name, Default: v.Default, Secret: v.Secret})
	}
	return info
}

// TemplateList lists the one-click templates.
func (a API) TemplateList() ([]apps.TemplateInfo, error) {
	ts, err := Templates()
	var out []apps.TemplateInfo
	for _, t := range ts {
		out = append(out, templateInfo(t))
	}
	return out, err
}

// TemplateGet describes one template.
func (a API) TemplateGet(name string) (apps.TemplateInfo, error) {
	t, err := LookupTemplate(name)
	return templateInfo(t), err
}

// TemplateRender resolves a template's variables for an instance and
// returns them with its compose file.
func (a API) TemplateRender(name, instance, domain string, overrides, existing map[string]string) (map[string]string, []byte, error) {
	t, err := LookupTemplate(name)
	if err != nil {
		return nil, nil, err
	}
	values, err := t.Values(instance, domain, overrides, existing)
	return values, t.Compose, err
}
