-- Logins to container registries (registry:login): builds pull private
-- base images (git:from-image) with them.
CREATE TABLE registry_logins (
    server     TEXT    PRIMARY KEY,
    username   TEXT    NOT NULL,
    password   TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);
