-- What a release was built from, so config changes, scaling and rollbacks
-- can run it again without its source: the Procfile, app.json and CHECKS
-- file found in the code (empty when absent).
ALTER TABLE releases ADD COLUMN procfile TEXT NOT NULL DEFAULT '';
ALTER TABLE releases ADD COLUMN appjson  TEXT NOT NULL DEFAULT '';
ALTER TABLE releases ADD COLUMN checks   TEXT NOT NULL DEFAULT '';
