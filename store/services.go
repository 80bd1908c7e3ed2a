package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/rivetr/rivetr/apps"
)

var _ apps.ServiceStore = (*SQLite)(nil)

const serviceColumns = "engine, name, image, version, password, root_password, custom_env, memory, exposed, stopped, created_at"

type scanner interface{ Scan(dest ...any) error }

func scanService(r scanner) (apps.ServiceRecord, error) {
	var s apps.ServiceRecord
	var env, exposed string
	var created int64
	if err := r.Scan(&s.Engine, &s.Name, &s.Image, &s.Version, &s.Password, &s.RootPassword, &env, &s.Memory, &exposed, &s.Stopped, &created); err != nil {
		return s, err
	}
	if err := json.Unmarshal([]byte(env), &s.CustomEnv); err != nil {
		return s, err
	}
	if exposed != "" {
		s.Exposed = strings.Split(exposed, " ")
	}
	s.CreatedAt = time.Unix(created, 0).UTC()
	return s, nil
}

func serviceNotFound(engine, name string) error {
	return apps.Errorf(apps.ErrServiceNotFound, "%s service %s does not exist", engine, name)
}

// CreateService inserts a service; its engine and name must be free.
func (s *SQLite) CreateService(ctx context.Context, svc apps.ServiceRecord) error {
	env, err := json.Marshal(orEmpty(svc.CustomEnv))
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, "INSERT INTO services ("+serviceColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
		svc.Engine, svc.Name, svc.Image, svc.Version, svc.Password, svc.RootPassword, string(env), svc.Memory,
		strings.Join(svc.Exposed, " "), svc.Stopped, svc.CreatedAt.Unix())
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return apps.Errorf(apps.ErrServiceExists, "%s service %s already exists", svc.Engine, svc.Name)
	}
	return err
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// Service returns one service.
func (s *SQLite) Service(ctx context.Context, engine, name string) (apps.ServiceRecord, error) {
	svc, err := scanService(s.db.QueryRowContext(ctx, "SELECT "+serviceColumns+" FROM services WHERE engine = ? AND name = ?", engine, name))
	if errors.Is(err, sql.ErrNoRows) {
		return svc, serviceNotFound(engine, name)
	}
	return svc, err
}

// Services lists an engine's services by name.
func (s *SQLite) Services(ctx context.Context, engine string) ([]apps.ServiceRecord, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+serviceColumns+" FROM services WHERE engine = ? ORDER BY name", engine)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []apps.ServiceRecord
	for rows.Next() {
		svc, err := scanService(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, svc)
	}
	return out, rows.Err()
}

// UpdateService stores every field of svc but its engine and name.
func (s *SQLite) UpdateService(ctx context.Context, svc apps.ServiceRecord) error {
	env, err := json.Marshal(orEmpty(svc.CustomEnv))
	if err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx, `UPDATE services SET image = ?, version = ?, password = ?, root_password = ?,
		custom_env = ?, memory = ?, exposed = ?, stopped = ? WHERE engine = ? AND name = ?`,
		svc.Image, svc.Version, svc.Password, svc.RootPassword, string(env), svc.Memory,
		strings.Join(svc.Exposed, " "), svc.Stopped, svc.Engine, svc.Name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return serviceNotFound(svc.Engine, svc.Name)
	}
	return nil
}

// DeleteService removes a service and its links.
func (s *SQLite) DeleteService(ctx context.Context, engine, name string) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM services WHERE engine = ? AND name = ?", engine, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return serviceNotFound(engine, name)
	}
	return nil
}

// AddServiceLink links a service to an app (replacing a link between them).
func (s *SQLite) AddServiceLink(ctx context.Context, l apps.ServiceLink) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		id, err := appID(ctx, tx, l.App)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO service_links (engine, service, app_id, alias, querystring) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (engine, service, app_id) DO UPDATE SET alias = excluded.alias, querystring = excluded.querystring`,
			l.Engine, l.Service, id.Int64, l.Alias, l.QueryString)
		return err
	})
}

// RemoveServiceLink unlinks a service from an app.
func (s *SQLite) RemoveServiceLink(ctx context.Context, engine, service, app string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		id, err := appID(ctx, tx, app)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "DELETE FROM service_links WHERE engine = ? AND service = ? AND app_id = ?", engine, service, id.Int64)
		return err
	})
}

const linkQuery = `SELECT l.engine, l.service, a.name, l.alias, l.querystring FROM service_links l JOIN apps a ON a.id = l.app_id`

func (s *SQLite) links(ctx context.Context, where string, args ...any) ([]apps.ServiceLink, error) {
	rows, err := s.db.QueryContext(ctx, linkQuery+" WHERE "+where+" ORDER BY l.engine, l.service, a.name", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []apps.ServiceLink
	for rows.Next() {
		var l apps.ServiceLink
		if err := rows.Scan(&l.Engine, &l.Service, &l.App, &l.Alias, &l.QueryString); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// ServiceLinks lists the apps a service is linked to.
func (s *SQLite) ServiceLinks(ctx context.Context, engine, service string) ([]apps.ServiceLink, error) {
	return s.links(ctx, "l.engine = ? AND l.service = ?", engine, service)
}

// AppServiceLinks lists the services linked to an app.
func (s *SQLite) AppServiceLinks(ctx context.Context, app string) ([]apps.ServiceLink, error) {
	return s.links(ctx, "a.name = ?", app)
}
