-- Managed services (databases) and the apps they are linked to.
CREATE TABLE services (
    engine        TEXT    NOT NULL,
    name          TEXT    NOT NULL,
    image         TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    password      TEXT    NOT NULL,
    root_password TEXT    NOT NULL DEFAULT '',
    custom_env    TEXT    NOT NULL DEFAULT '{}',
    memory        INTEGER NOT NULL DEFAULT 0,
    exposed       TEXT    NOT NULL DEFAULT '',
    stopped       INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (engine, name)
);

CREATE TABLE service_links (
    engine      TEXT    NOT NULL,
    service     TEXT    NOT NULL,
    app_id      INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
    alias       TEXT    NOT NULL,
    querystring TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (engine, service, app_id),
    FOREIGN KEY (engine, service) REFERENCES services(engine, name) ON DELETE CASCADE
);
