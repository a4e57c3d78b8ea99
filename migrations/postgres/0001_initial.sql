-- PostgreSQL form of migrations/sqlite/0001_initial.sql: same version, same meaning (issue 17).
-- Types: BIGINT for INTEGER, DOUBLE PRECISION for REAL, TEXT COLLATE "C" so text compares
-- and sorts bytewise as SQLite's BINARY collation does. Booleans stay BIGINT 0/1.
-- Pressluft initial schema: the complete data model of spec/data-model.md.
--
-- (SQLite's header, kept:) Portable SQL (SQLite now, PostgreSQL later): TEXT ids (UUIDv4), TEXT timestamps
-- (UTC ISO-8601 'YYYY-MM-DDTHH:MM:SS.sssZ'), INTEGER 0/1 booleans with CHECK, TEXT JSON,
-- TEXT enums with CHECK. No AUTOINCREMENT; foreign-key enforcement is switched on by the
-- connection options, not by this migration.
--
-- Cyclic / forward references: sites.primary_environment_id -> environments,
-- environments.primary_domain_id -> domains, environments.current_release_id -> releases,
-- environments.last_drift_check_id -> drift_checks and releases.job_id -> jobs point at
-- tables created later in this file. SQLite accepts forward references in CREATE TABLE
-- (they are only resolved when rows are written). A PostgreSQL migration set would create
-- these tables without those columns' REFERENCES clauses and add them afterwards with
-- ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY ... (DEFERRABLE where rows are inserted
-- before their referenced row, e.g. sites.primary_environment_id).
--
-- Rows are never deleted except domains, auth_sessions and login_attempts, so no
-- ON DELETE actions are declared: deleting a domain that is still an environment's
-- primary_domain_id fails until the application clears that column.

-- users: dashboard/API operator accounts (one admin suffices).
CREATE TABLE users (
    id              TEXT COLLATE "C" PRIMARY KEY,
    email           TEXT COLLATE "C" NOT NULL UNIQUE CHECK (email = lower(email) AND length(email) >= 1),
    display_name    TEXT COLLATE "C" NOT NULL,
    role            TEXT COLLATE "C" NOT NULL CHECK (role IN ('admin')),
    password_hash   TEXT COLLATE "C" NOT NULL,
    is_active       BIGINT NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    created_at      TEXT COLLATE "C" NOT NULL,
    updated_at      TEXT COLLATE "C" NOT NULL
);

-- nodes: servers (reached over SSH) that host environments; at most one is the control-plane host.
CREATE TABLE nodes (
    id              TEXT COLLATE "C" PRIMARY KEY,
    name            TEXT COLLATE "C" NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    hostname        TEXT COLLATE "C" NOT NULL,
    public_ip       TEXT COLLATE "C",
    ssh_port        BIGINT NOT NULL DEFAULT 22 CHECK (ssh_port BETWEEN 1 AND 65535),
    ssh_user        TEXT COLLATE "C" NOT NULL DEFAULT 'root',
    status          TEXT COLLATE "C" NOT NULL
                    CHECK (status IN ('active', 'provisioning', 'unreachable', 'decommissioned')),
    is_local        BIGINT NOT NULL DEFAULT 0 CHECK (is_local IN (0, 1)),
    last_seen_at    TEXT COLLATE "C",
    created_at      TEXT COLLATE "C" NOT NULL,
    updated_at      TEXT COLLATE "C" NOT NULL,
    state_version   BIGINT NOT NULL DEFAULT 1 CHECK (state_version >= 1)
);

-- At most one node is the control-plane host (partial unique index; portable to PostgreSQL).
CREATE UNIQUE INDEX nodes_one_local ON nodes(is_local) WHERE is_local = 1;

-- sites: a WordPress site; owns environments, exactly one of them production.
CREATE TABLE sites (
    id                      TEXT COLLATE "C" PRIMARY KEY,
    name                    TEXT COLLATE "C" NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    slug                    TEXT COLLATE "C" NOT NULL UNIQUE CHECK (length(slug) BETWEEN 1 AND 40),
    status                  TEXT COLLATE "C" NOT NULL
                            CHECK (status IN ('active', 'cloning', 'deploying', 'restoring', 'failed')),
    -- forward reference (environments is created below); set by an UPDATE after the
    -- production environment row is inserted, in the same transaction.
    primary_environment_id  TEXT COLLATE "C",
    created_at              TEXT COLLATE "C" NOT NULL,
    updated_at              TEXT COLLATE "C" NOT NULL,
    state_version           BIGINT NOT NULL DEFAULT 1 CHECK (state_version >= 1)
);

-- environments: one deployable copy of a site (production, staging or clone) on one node.
CREATE TABLE environments (
    id                      TEXT COLLATE "C" PRIMARY KEY,
    site_id                 TEXT COLLATE "C" NOT NULL REFERENCES sites(id),
    name                    TEXT COLLATE "C" NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    slug                    TEXT COLLATE "C" NOT NULL CHECK (length(slug) BETWEEN 1 AND 40),
    environment_type        TEXT COLLATE "C" NOT NULL
                            CHECK (environment_type IN ('production', 'staging', 'clone')),
    status                  TEXT COLLATE "C" NOT NULL
                            CHECK (status IN ('active', 'cloning', 'deploying', 'restoring', 'failed')),
    node_id                 TEXT COLLATE "C" NOT NULL REFERENCES nodes(id),
    source_environment_id   TEXT COLLATE "C" REFERENCES environments(id),
    promotion_preset        TEXT COLLATE "C" NOT NULL
                            CHECK (promotion_preset IN ('content-protect', 'commerce-protect')),
    preview_url             TEXT COLLATE "C" NOT NULL,
    -- forward references (domains, releases, drift_checks are created below)
    primary_domain_id       TEXT COLLATE "C",
    current_release_id      TEXT COLLATE "C",
    drift_status            TEXT COLLATE "C" NOT NULL DEFAULT 'unknown'
                            CHECK (drift_status IN ('unknown', 'clean', 'drifted')),
    drift_checked_at        TEXT COLLATE "C",
    last_drift_check_id     TEXT COLLATE "C",
    fastcgi_cache_enabled   BIGINT NOT NULL DEFAULT 1 CHECK (fastcgi_cache_enabled IN (0, 1)),
    redis_cache_enabled     BIGINT NOT NULL DEFAULT 1 CHECK (redis_cache_enabled IN (0, 1)),
    created_at              TEXT COLLATE "C" NOT NULL,
    updated_at              TEXT COLLATE "C" NOT NULL,
    state_version           BIGINT NOT NULL DEFAULT 1 CHECK (state_version >= 1),
    UNIQUE (site_id, slug)
);

CREATE INDEX idx_environments_site_id ON environments(site_id);
CREATE INDEX idx_environments_node_id ON environments(node_id);

-- releases: immutable release directories built on an environment's node (health_status/notes excepted).
CREATE TABLE releases (
    id              TEXT COLLATE "C" PRIMARY KEY,
    environment_id  TEXT COLLATE "C" NOT NULL REFERENCES environments(id),
    source_type     TEXT COLLATE "C" NOT NULL CHECK (source_type IN ('git', 'upload')),
    source_ref      TEXT COLLATE "C" NOT NULL,
    path            TEXT COLLATE "C" NOT NULL,
    health_status   TEXT COLLATE "C" NOT NULL DEFAULT 'unknown'
                    CHECK (health_status IN ('unknown', 'healthy', 'unhealthy')),
    notes           TEXT COLLATE "C",
    -- forward reference (jobs is created below)
    job_id          TEXT COLLATE "C",
    created_at      TEXT COLLATE "C" NOT NULL
);

CREATE INDEX idx_releases_environment_created ON releases(environment_id, created_at);

-- backups: DB/files backup artifacts of an environment and their lifecycle.
CREATE TABLE backups (
    id              TEXT COLLATE "C" PRIMARY KEY,
    environment_id  TEXT COLLATE "C" NOT NULL REFERENCES environments(id),
    backup_scope    TEXT COLLATE "C" NOT NULL CHECK (backup_scope IN ('db', 'files', 'full')),
    status          TEXT COLLATE "C" NOT NULL
                    CHECK (status IN ('pending', 'running', 'completed', 'failed', 'expired')),
    storage_type    TEXT COLLATE "C" NOT NULL CHECK (storage_type IN ('s3', 'local')),
    storage_path    TEXT COLLATE "C" NOT NULL,
    retention_until TEXT COLLATE "C" NOT NULL,
    checksum        TEXT COLLATE "C",
    size_bytes      BIGINT CHECK (size_bytes IS NULL OR size_bytes >= 0),
    created_at      TEXT COLLATE "C" NOT NULL,
    completed_at    TEXT COLLATE "C"
);

CREATE INDEX idx_backups_environment_created ON backups(environment_id, created_at);
CREATE INDEX idx_backups_status ON backups(status);

-- domains: custom hostnames attached to an environment, with their TLS state (rows deleted after domain_remove).
CREATE TABLE domains (
    id              TEXT COLLATE "C" PRIMARY KEY,
    environment_id  TEXT COLLATE "C" NOT NULL REFERENCES environments(id),
    hostname        TEXT COLLATE "C" NOT NULL UNIQUE
                    CHECK (hostname = lower(hostname) AND length(hostname) BETWEEN 1 AND 253),
    tls_status      TEXT COLLATE "C" NOT NULL CHECK (tls_status IN ('pending', 'active', 'failed', 'disabled')),
    tls_issuer      TEXT COLLATE "C" NOT NULL DEFAULT 'letsencrypt' CHECK (tls_issuer IN ('letsencrypt')),
    created_at      TEXT COLLATE "C" NOT NULL,
    updated_at      TEXT COLLATE "C" NOT NULL
);

CREATE INDEX idx_domains_environment_id ON domains(environment_id);

-- jobs: the durable job queue; every asynchronous mutation runs as one job (jobs.md).
CREATE TABLE jobs (
    id                  TEXT COLLATE "C" PRIMARY KEY,
    -- insertion order (SQLite's implicit rowid), for ties of created_at
    rowid               BIGSERIAL NOT NULL,
    job_type            TEXT COLLATE "C" NOT NULL CHECK (job_type IN (
                            'node_provision', 'site_create', 'site_import', 'env_create',
                            'env_deploy', 'env_update', 'env_restore', 'env_promote',
                            'env_cache_toggle', 'cache_purge', 'backup_create', 'domain_add',
                            'domain_remove', 'drift_check', 'health_check', 'backup_cleanup',
                            'release_rollback')),
    status              TEXT COLLATE "C" NOT NULL
                        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    site_id             TEXT COLLATE "C" REFERENCES sites(id),
    environment_id      TEXT COLLATE "C" REFERENCES environments(id),
    node_id             TEXT COLLATE "C" NOT NULL REFERENCES nodes(id),
    payload_json        TEXT COLLATE "C" NOT NULL,
    attempt_count       BIGINT NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
    max_attempts        BIGINT NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    run_after           TEXT COLLATE "C",
    locked_at           TEXT COLLATE "C",
    locked_by           TEXT COLLATE "C",
    started_at          TEXT COLLATE "C",
    finished_at         TEXT COLLATE "C",
    error_code          TEXT COLLATE "C",
    error_message       TEXT COLLATE "C",
    heartbeat_at        TEXT COLLATE "C",
    cancel_requested_at TEXT COLLATE "C",
    parent_job_id       TEXT COLLATE "C" REFERENCES jobs(id),
    output_tail         TEXT COLLATE "C",
    created_at          TEXT COLLATE "C" NOT NULL,
    updated_at          TEXT COLLATE "C" NOT NULL
);

CREATE INDEX idx_jobs_status_run_after ON jobs(status, run_after);
CREATE INDEX idx_jobs_site_status ON jobs(site_id, status);
CREATE INDEX idx_jobs_node_status ON jobs(node_id, status);
CREATE INDEX idx_jobs_environment_created ON jobs(environment_id, created_at);
CREATE INDEX idx_jobs_created_at ON jobs(created_at);
CREATE INDEX idx_jobs_updated_at ON jobs(updated_at);
CREATE INDEX idx_jobs_parent_job_id ON jobs(parent_job_id);

-- drift_checks: immutable checksum snapshots of production's protected tables/paths for a non-production env.
CREATE TABLE drift_checks (
    id                  TEXT COLLATE "C" PRIMARY KEY,
    environment_id      TEXT COLLATE "C" NOT NULL REFERENCES environments(id),
    promotion_preset    TEXT COLLATE "C" NOT NULL
                        CHECK (promotion_preset IN ('content-protect', 'commerce-protect')),
    status              TEXT COLLATE "C" NOT NULL CHECK (status IN ('unknown', 'clean', 'drifted')),
    db_checksums_json   TEXT COLLATE "C",
    file_checksums_json TEXT COLLATE "C",
    is_baseline         BIGINT NOT NULL DEFAULT 0 CHECK (is_baseline IN (0, 1)),
    checked_at          TEXT COLLATE "C" NOT NULL
);

CREATE INDEX idx_drift_checks_environment_checked ON drift_checks(environment_id, checked_at);

-- auth_sessions: login sessions; only the SHA-256 of the cookie token is stored.
CREATE TABLE auth_sessions (
    id              TEXT COLLATE "C" PRIMARY KEY,
    user_id         TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    session_token   TEXT COLLATE "C" NOT NULL UNIQUE,
    expires_at      TEXT COLLATE "C" NOT NULL,
    created_at      TEXT COLLATE "C" NOT NULL,
    revoked_at      TEXT COLLATE "C"
);

CREATE INDEX idx_auth_sessions_user_id ON auth_sessions(user_id);

-- audit_logs: one row per authenticated action; async rows are updated when their job ends.
CREATE TABLE audit_logs (
    id              TEXT COLLATE "C" PRIMARY KEY,
    -- insertion order (SQLite's implicit rowid), for ties of created_at
    rowid           BIGSERIAL NOT NULL,
    user_id         TEXT COLLATE "C" NOT NULL REFERENCES users(id),
    action          TEXT COLLATE "C" NOT NULL,
    resource_type   TEXT COLLATE "C" NOT NULL CHECK (resource_type IN (
                        'site', 'environment', 'node', 'backup', 'domain', 'job', 'settings')),
    resource_id     TEXT COLLATE "C" NOT NULL,
    result          TEXT COLLATE "C" NOT NULL
                    CHECK (result IN ('accepted', 'succeeded', 'failed', 'cancelled', 'rejected')),
    job_id          TEXT COLLATE "C" REFERENCES jobs(id),
    created_at      TEXT COLLATE "C" NOT NULL
);

CREATE INDEX idx_audit_logs_resource ON audit_logs(resource_type, resource_id, created_at);
CREATE INDEX idx_audit_logs_created_at ON audit_logs(created_at);
CREATE INDEX idx_audit_logs_job_id ON audit_logs(job_id);

-- settings: admin key/value settings; a null setting has no row; secrets hold only a 'secret:<name>' marker.
CREATE TABLE settings (
    key             TEXT COLLATE "C" PRIMARY KEY,
    value           TEXT COLLATE "C" NOT NULL,
    updated_at      TEXT COLLATE "C" NOT NULL
);

-- login_attempts: recent login attempts for throttling (pruned after 24 h).
CREATE TABLE login_attempts (
    id              TEXT COLLATE "C" PRIMARY KEY,
    email           TEXT COLLATE "C" NOT NULL,
    remote_ip       TEXT COLLATE "C" NOT NULL,
    succeeded       BIGINT NOT NULL CHECK (succeeded IN (0, 1)),
    created_at      TEXT COLLATE "C" NOT NULL
);

CREATE INDEX idx_login_attempts_email_created ON login_attempts(email, created_at);
CREATE INDEX idx_login_attempts_remote_ip_created ON login_attempts(remote_ip, created_at);

-- The forward references, now that every table exists. DEFERRABLE (checked at once unless a
-- transaction defers them): `pressluft migrate --from-sqlite` copies rows in table order.
ALTER TABLE sites ADD FOREIGN KEY (primary_environment_id) REFERENCES environments(id) DEFERRABLE;
ALTER TABLE environments ADD FOREIGN KEY (primary_domain_id) REFERENCES domains(id) DEFERRABLE;
ALTER TABLE environments ADD FOREIGN KEY (current_release_id) REFERENCES releases(id) DEFERRABLE;
ALTER TABLE environments ADD FOREIGN KEY (last_drift_check_id) REFERENCES drift_checks(id) DEFERRABLE;
ALTER TABLE releases ADD FOREIGN KEY (job_id) REFERENCES jobs(id) DEFERRABLE;
