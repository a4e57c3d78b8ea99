-- Deleting environments and sites (issue 13): sites and environments gain the statuses
-- `deleting` and `deleted` and a nullable `deleted_at`; a deleted row is kept as history, so
-- a slug is unique only among rows not deleted (partial unique indexes instead of the
-- table-level UNIQUE constraints, portable to PostgreSQL). SQLite cannot alter a CHECK or drop
-- a table constraint, so both tables are rebuilt as 0006 rebuilt `jobs`: create, copy, drop,
-- rename. Migrations run with foreign keys off and checked afterwards (Store::migrate); every
-- reference to these tables (environments, releases, backups, domains, jobs, drift_checks,
-- sites.primary_environment_id) names them by name and so resolves to the rebuilt table.
CREATE TABLE sites_rebuilt (
    id                      TEXT PRIMARY KEY,
    name                    TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    slug                    TEXT NOT NULL CHECK (length(slug) BETWEEN 1 AND 40),
    status                  TEXT NOT NULL
                            CHECK (status IN ('active', 'cloning', 'deploying', 'restoring',
                                              'failed', 'deleting', 'deleted')),
    primary_environment_id  TEXT REFERENCES environments(id),
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    state_version           INTEGER NOT NULL DEFAULT 1 CHECK (state_version >= 1),
    deleted_at              TEXT,
    CHECK ((status = 'deleted') = (deleted_at IS NOT NULL))
);
INSERT INTO sites_rebuilt (id, name, slug, status, primary_environment_id, created_at,
    updated_at, state_version)
  SELECT id, name, slug, status, primary_environment_id, created_at, updated_at, state_version
    FROM sites;
DROP TABLE sites;
ALTER TABLE sites_rebuilt RENAME TO sites;
CREATE UNIQUE INDEX sites_slug_live ON sites(slug) WHERE status <> 'deleted';

CREATE TABLE environments_rebuilt (
    id                      TEXT PRIMARY KEY,
    site_id                 TEXT NOT NULL REFERENCES sites(id),
    name                    TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    slug                    TEXT NOT NULL CHECK (length(slug) BETWEEN 1 AND 40),
    environment_type        TEXT NOT NULL
                            CHECK (environment_type IN ('production', 'staging', 'clone')),
    status                  TEXT NOT NULL
                            CHECK (status IN ('active', 'cloning', 'deploying', 'restoring',
                                              'failed', 'deleting', 'deleted')),
    node_id                 TEXT NOT NULL REFERENCES nodes(id),
    source_environment_id   TEXT REFERENCES environments(id),
    promotion_preset        TEXT NOT NULL
                            CHECK (promotion_preset IN ('content-protect', 'commerce-protect')),
    preview_url             TEXT NOT NULL,
    primary_domain_id       TEXT REFERENCES domains(id),
    current_release_id      TEXT REFERENCES releases(id),
    drift_status            TEXT NOT NULL DEFAULT 'unknown'
                            CHECK (drift_status IN ('unknown', 'clean', 'drifted')),
    drift_checked_at        TEXT,
    last_drift_check_id     TEXT REFERENCES drift_checks(id),
    fastcgi_cache_enabled   INTEGER NOT NULL DEFAULT 1 CHECK (fastcgi_cache_enabled IN (0, 1)),
    redis_cache_enabled     INTEGER NOT NULL DEFAULT 1 CHECK (redis_cache_enabled IN (0, 1)),
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL,
    state_version           INTEGER NOT NULL DEFAULT 1 CHECK (state_version >= 1),
    deleted_at              TEXT,
    CHECK ((status = 'deleted') = (deleted_at IS NOT NULL))
);
INSERT INTO environments_rebuilt (id, site_id, name, slug, environment_type, status, node_id,
    source_environment_id, promotion_preset, preview_url, primary_domain_id,
    current_release_id, drift_status, drift_checked_at, last_drift_check_id,
    fastcgi_cache_enabled, redis_cache_enabled, created_at, updated_at, state_version)
  SELECT id, site_id, name, slug, environment_type, status, node_id, source_environment_id,
    promotion_preset, preview_url, primary_domain_id, current_release_id, drift_status,
    drift_checked_at, last_drift_check_id, fastcgi_cache_enabled, redis_cache_enabled,
    created_at, updated_at, state_version
    FROM environments;
DROP TABLE environments;
ALTER TABLE environments_rebuilt RENAME TO environments;
CREATE UNIQUE INDEX environments_site_slug_live ON environments(site_id, slug)
  WHERE status <> 'deleted';
CREATE INDEX idx_environments_site_id ON environments(site_id);
CREATE INDEX idx_environments_node_id ON environments(node_id);
