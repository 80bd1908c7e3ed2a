-- Apps, their config (env) and settings, and the SSH keys allowed in.
CREATE TABLE apps (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    locked     INTEGER NOT NULL DEFAULT 0
);

-- app_id NULL holds the global scope.
CREATE TABLE env (
    app_id INTEGER REFERENCES apps(id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  BLOB NOT NULL
);
CREATE UNIQUE INDEX env_scope_key ON env (ifnull(app_id, 0), key);

CREATE TABLE settings (
    app_id    INTEGER REFERENCES apps(id) ON DELETE CASCADE,
    namespace TEXT NOT NULL,
    key       TEXT NOT NULL,
    value     BLOB NOT NULL
);
CREATE UNIQUE INDEX settings_scope_key ON settings (ifnull(app_id, 0), namespace, key);

CREATE TABLE ssh_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL UNIQUE,
    fingerprint TEXT    NOT NULL UNIQUE,
    public_key  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
