-- Releases: one row per deploy, config change, scale or rollback.
CREATE TABLE releases (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id     INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    number     INTEGER NOT NULL,
    image      TEXT    NOT NULL DEFAULT '',
    rev        TEXT    NOT NULL DEFAULT '',
    builder    TEXT    NOT NULL DEFAULT '',
    env        BLOB    NOT NULL DEFAULT '{}', -- config snapshot, JSON
    status     TEXT    NOT NULL,              -- pending, failed, deployed, superseded
    reason     TEXT    NOT NULL DEFAULT '',   -- push, rebuild, config, scale, rollback
    created_by TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    log        TEXT    NOT NULL DEFAULT '',
    UNIQUE (app_id, number)
);

-- API tokens: only a SHA-256 of the secret is stored.
CREATE TABLE tokens (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    hash       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    last_used  INTEGER NOT NULL DEFAULT 0
);
