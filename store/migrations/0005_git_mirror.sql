-- Mirroring remote repositories: the deploy queue, webhook deliveries
-- already processed, HTTPS logins per git host and per-app deploy keys.
CREATE TABLE deploy_jobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    app_id      INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    trigger     TEXT    NOT NULL,
    ref         TEXT    NOT NULL DEFAULT '',
    rev         TEXT    NOT NULL DEFAULT '',
    delivery    TEXT    NOT NULL DEFAULT '',
    user        TEXT    NOT NULL DEFAULT '',
    status      TEXT    NOT NULL,             -- queued, running, succeeded, failed, cancelled, coalesced
    release     INTEGER NOT NULL DEFAULT 0,
    detail      TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,             -- unix milliseconds
    started_at  INTEGER NOT NULL DEFAULT 0,
    finished_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX deploy_jobs_app_status ON deploy_jobs (app_id, status);

CREATE TABLE webhook_deliveries (
    provider    TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (provider, id)
);

CREATE TABLE git_credentials (
    host       TEXT    PRIMARY KEY,
    username   TEXT    NOT NULL,
    token      TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE deploy_keys (
    app_id      INTEGER PRIMARY KEY REFERENCES apps(id) ON DELETE CASCADE,
    private_key TEXT    NOT NULL,
    public_key  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);
