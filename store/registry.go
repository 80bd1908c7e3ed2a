package store

import (
	"context"
	"time"

	"github.com/rivetr/rivetr/apps"
)

// SetRegistryLogin stores or (with an empty password) removes a
// registry's login.
func (s *SQLite) SetRegistryLogin(ctx context.Context, l apps.RegistryLogin) error {
	if l.Password == "" {
		_, err := s.db.ExecContext(ctx, "DELETE FROM registry_logins WHERE server = ?", l.Server)
		return err
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO registry_logins (server, username, password, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (server) DO UPDATE SET username = excluded.username, password = excluded.password, created_at = excluded.created_at`,
		l.Server, l.Username, l.Password, l.CreatedAt.Unix())
	return err
}

// RegistryLogins lists the logins by server.
func (s *SQLite) RegistryLogins(ctx context.Context) ([]apps.RegistryLogin, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT server, username, password, created_at FROM registry_logins ORDER BY server")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []apps.RegistryLogin
	for rows.Next() {
		var l apps.RegistryLogin
		var created int64
		if err := rows.Scan(&l.Server, &l.Username, &l.Password, &created); err != nil {
			return nil, err
		}
		l.CreatedAt = time.Unix(created, 0).UTC()
		out = append(out, l)
	}
	return out, rows.Err()
}
