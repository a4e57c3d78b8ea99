//! The embedded migrations on an empty database: every table, idempotent, constraints enforced.

use pressluft::store::Store;

const TABLES: [&str; 15] = [
    "audit_logs",
    "auth_sessions",
    "backups",
    "domains",
    "drift_checks",
    "environments",
    "jobs",
    "login_attempts",
    "nodes",
    "releases",
    "restore_drills",
    "safe_update_runs",
    "settings",
    "sites",
    "users",
];

#[tokio::test]
async fn migrates_an_empty_database_idempotently() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("m.db")).await.unwrap();
    let first = store.migrate().await.unwrap();
    assert_eq!(first.applied_now, first.total);
    assert!(first.total >= 1);
    let again = store.migrate().await.unwrap();
    assert_eq!(again.applied_now, 0, "second run applies nothing");

    let tables: Vec<(String,)> = pressluft::store::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite%' ORDER BY name",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let names: Vec<&str> = tables.iter().map(|(n,)| n.as_str()).collect();
    assert_eq!(names, TABLES);

    let (mode,): (String,) = pressluft::store::query_as("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let (fk,): (i64,) = pressluft::store::query_as("PRAGMA foreign_keys")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
}

#[tokio::test]
async fn schema_has_the_spec_columns_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("m.db")).await.unwrap();
    store.migrate().await.unwrap();
    let columns = |table: &'static str| {
        let pool = store.pool().clone();
        async move {
            let rows: Vec<(String,)> = pressluft::store::query_as(&format!(
                "SELECT name FROM pragma_table_info('{table}')"
            ))
            .fetch_all(&pool)
            .await
            .unwrap();
            rows.into_iter().map(|(n,)| n).collect::<Vec<_>>()
        }
    };
    let jobs = columns("jobs").await;
    for c in [
        "heartbeat_at",
        "cancel_requested_at",
        "parent_job_id",
        "output_tail",
        "run_after",
        "locked_by",
    ] {
        assert!(jobs.contains(&c.to_string()), "jobs.{c}");
    }
    for t in ["sites", "environments", "nodes"] {
        assert!(
            columns(t).await.contains(&"state_version".to_string()),
            "{t}.state_version"
        );
    }
    let indexes: Vec<(String,)> =
        pressluft::store::query_as("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs' AND sql IS NOT NULL")
            .fetch_all(store.pool())
            .await
            .unwrap();
    let all = indexes
        .iter()
        .map(|(s,)| s.replace(' ', ""))
        .collect::<Vec<_>>()
        .join("\n");
    for cols in [
        "(status,run_after)",
        "(site_id,status)",
        "(node_id,status)",
        "(environment_id,created_at)",
    ] {
        assert!(all.contains(cols), "jobs index {cols}");
    }
}

#[tokio::test]
async fn constraints_reject_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("m.db")).await.unwrap();
    store.migrate().await.unwrap();
    let pool = store.pool();
    let now = "2026-01-01T00:00:00.000Z";
    let node = |id: &'static str, status: &'static str, is_local: i64| {
        pressluft::store::query(
            "INSERT INTO nodes (id, name, hostname, ssh_port, ssh_user, status, is_local, created_at, updated_at)
             VALUES (?, 'n', 'h', 22, 'root', ?, ?, ?, ?)",
        )
        .bind(id).bind(status).bind(is_local).bind(now).bind(now)
    };
    node("n1", "active", 1)
        .execute(pool)
        .await
        .expect("valid node");
    assert!(
        node("n2", "sleeping", 0).execute(pool).await.is_err(),
        "enum CHECK"
    );
    assert!(
        node("n3", "active", 1).execute(pool).await.is_err(),
        "one local node"
    );
    assert!(
        node("n4", "active", 2).execute(pool).await.is_err(),
        "boolean CHECK"
    );

    let job = |id: &'static str, job_type: &'static str, node_id: &'static str| {
        pressluft::store::query(
            "INSERT INTO jobs (id, job_type, status, node_id, payload_json, attempt_count, max_attempts, created_at, updated_at)
             VALUES (?, ?, 'queued', ?, '{}', 0, 3, ?, ?)",
        )
        .bind(id).bind(job_type).bind(node_id).bind(now).bind(now)
    };
    job("j1", "node_provision", "n1")
        .execute(pool)
        .await
        .expect("valid job");
    // The JobType enum is the list of job types (0006 dropped the CHECK): a row written around
    // it does not read back as a job but as a clear column error.
    job("j2", "make_coffee", "n1")
        .execute(pool)
        .await
        .expect("no CHECK on job_type");
    let err = store.get_job("j2").await.unwrap_err();
    assert!(format!("{err:?}").contains("make_coffee"), "{err:?}");
    pressluft::store::query("DELETE FROM jobs WHERE id = 'j2'")
        .execute(pool)
        .await
        .unwrap();
    assert!(
        job("j3", "node_provision", "missing")
            .execute(pool)
            .await
            .is_err(),
        "foreign key"
    );

    let site = |id: &'static str, slug: &'static str| {
        pressluft::store::query("INSERT INTO sites (id, name, slug, status, created_at, updated_at) VALUES (?, 'S', ?, 'active', ?, ?)")
            .bind(id).bind(slug).bind(now).bind(now)
    };
    site("s1", "acme").execute(pool).await.expect("valid site");
    assert!(
        site("s2", "acme").execute(pool).await.is_err(),
        "unique slug"
    );
}

// ---- upgrades: every earlier schema version, holding data, to the current one ------------

const T: &str = "2026-01-01T00:00:00.000Z";
const UPGRADE_PASSWORD: &str = "upgrade test password";

/// Representative rows in the columns of the first schema (valid at every later version while
/// migrations only add): every table, every foreign key, the forward references resolved.
const FIXTURE_0001: &[&str] = &[
    "INSERT INTO users (id, email, display_name, role, password_hash, is_active, created_at, updated_at)
     VALUES ('u1', 'admin@example.com', 'Admin', 'admin', 'x', 1, '{T}', '{T}')",
    "INSERT INTO auth_sessions (id, user_id, session_token, expires_at, created_at)
     VALUES ('as1', 'u1', 'hash-of-a-token', '2026-01-02T00:00:00.000Z', '{T}')",
    "INSERT INTO login_attempts (id, email, remote_ip, succeeded, created_at)
     VALUES ('la1', 'admin@example.com', '203.0.113.7', 0, '{T}')",
    "INSERT INTO settings (key, value, updated_at) VALUES ('wordpress_source', 'dir:/usr/share/wordpress', '{T}')",
    "INSERT INTO nodes (id, name, hostname, public_ip, ssh_port, ssh_user, status, is_local, last_seen_at, created_at, updated_at, state_version)
     VALUES ('n1', 'local', '127.0.0.1', '127.0.0.1', 22, 'root', 'active', 1, '{T}', '{T}', '{T}', 3)",
    "INSERT INTO nodes (id, name, hostname, ssh_port, ssh_user, status, is_local, created_at, updated_at)
     VALUES ('n2', 'far', 'far.example.test', 2222, 'deploy', 'provisioning', 0, '{T}', '{T}')",
    "INSERT INTO sites (id, name, slug, status, created_at, updated_at, state_version)
     VALUES ('s1', 'Shop', 'shop', 'active', '{T}', '{T}', 4)",
    "INSERT INTO environments (id, site_id, name, slug, environment_type, status, node_id, promotion_preset, preview_url, created_at, updated_at, state_version)
     VALUES ('e1', 's1', 'Production', 'production', 'production', 'active', 'n1', 'content-protect', 'http://e1.127-0-0-1.sslip.io', '{T}', '{T}', 2)",
    "INSERT INTO environments (id, site_id, name, slug, environment_type, status, node_id, source_environment_id, promotion_preset, preview_url, fastcgi_cache_enabled, redis_cache_enabled, created_at, updated_at)
     VALUES ('e2', 's1', 'Staging', 'staging', 'staging', 'active', 'n1', 'e1', 'commerce-protect', 'http://e2.127-0-0-1.sslip.io', 0, 1, '{T}', '{T}')",
    "UPDATE sites SET primary_environment_id = 'e1' WHERE id = 's1'",
    "INSERT INTO jobs (id, job_type, status, site_id, environment_id, node_id, payload_json, attempt_count, max_attempts, started_at, finished_at, output_tail, created_at, updated_at)
     VALUES ('j1', 'site_create', 'succeeded', 's1', 'e1', 'n1', '{\"release_name\":\"r1\"}', 1, 3, '{T}', '{T}', 'PLAY RECAP', '{T}', '{T}')",
    "INSERT INTO jobs (id, job_type, status, site_id, environment_id, node_id, payload_json, attempt_count, max_attempts, error_code, error_message, finished_at, created_at, updated_at)
     VALUES ('j2', 'env_create', 'failed', 's1', 'e2', 'n1', '{}', 3, 3, 'ANSIBLE_HOST_FAILED', 'a task failed', '{T}', '{T}', '{T}')",
    "INSERT INTO jobs (id, job_type, status, site_id, environment_id, node_id, payload_json, attempt_count, max_attempts, parent_job_id, created_at, updated_at)
     VALUES ('j3', 'cache_purge', 'queued', 's1', 'e1', 'n1', '{}', 0, 3, 'j1', '{T}', '{T}')",
    "INSERT INTO releases (id, environment_id, source_type, source_ref, path, health_status, notes, job_id, created_at)
     VALUES ('r1', 'e1', 'upload', 'dir:/usr/share/wordpress', '/var/www/sites/s1/e1/releases/r1', 'unknown', 'WordPress installed', 'j1', '{T}')",
    "UPDATE environments SET current_release_id = 'r1' WHERE id IN ('e1', 'e2')",
    "INSERT INTO drift_checks (id, environment_id, promotion_preset, status, db_checksums_json, file_checksums_json, is_baseline, checked_at)
     VALUES ('d1', 'e2', 'commerce-protect', 'clean', '{}', '{}', 1, '{T}')",
    "UPDATE environments SET last_drift_check_id = 'd1', drift_status = 'clean', drift_checked_at = '{T}' WHERE id = 'e2'",
    "INSERT INTO backups (id, environment_id, backup_scope, status, storage_type, storage_path, retention_until, checksum, size_bytes, created_at, completed_at)
     VALUES ('b1', 'e1', 'full', 'completed', 'local', '/var/backups/b1', '2026-02-01T00:00:00.000Z', 'sha256:00', 1024, '{T}', '{T}')",
    "INSERT INTO domains (id, environment_id, hostname, tls_status, created_at, updated_at)
     VALUES ('dm1', 'e1', 'shop.example.com', 'active', '{T}', '{T}')",
    "UPDATE environments SET primary_domain_id = 'dm1' WHERE id = 'e1'",
    "INSERT INTO audit_logs (id, user_id, action, resource_type, resource_id, result, job_id, created_at)
     VALUES ('al1', 'u1', 'site_create', 'site', 's1', 'succeeded', 'j1', '{T}')",
    "INSERT INTO audit_logs (id, user_id, action, resource_type, resource_id, result, job_id, created_at)
     VALUES ('al2', 'u1', 'cache_purge', 'environment', 'e1', 'accepted', 'j3', '{T}')",
];

/// Values of the columns later migrations added, by the version that added them: a migration
/// that adds a column adds a row here so its data is carried through the later upgrades too.
const FIXTURE_LATER: &[(i64, &str)] = &[(
    2,
    "UPDATE nodes SET firewall_status = 'active', provision_warning = 'Fail2Ban unavailable' WHERE id = 'n1'",
)];

/// The fixture's ids (`'s1'` → a UUID: the API refuses ids of any other shape).
fn fixture_ids(sql: &str) -> String {
    let mut out = sql.replace("{T}", T);
    for (i, id) in FIXTURE_IDS.iter().enumerate() {
        out = out.replace(&format!("'{id}'"), &format!("'{}'", uuid_of(i)));
    }
    out
}

const FIXTURE_IDS: [&str; 17] = [
    "u1", "as1", "la1", "n1", "n2", "s1", "e1", "e2", "j1", "j2", "j3", "r1", "d1", "b1", "dm1",
    "al1", "al2",
];

fn uuid_of(i: usize) -> String {
    format!("00000000-0000-4000-8000-{:012x}", i + 1)
}

fn id(name: &str) -> String {
    uuid_of(FIXTURE_IDS.iter().position(|n| *n == name).unwrap())
}

/// A migrator holding only the first `n` embedded migrations.
fn first_migrations(n: usize) -> sqlx::migrate::Migrator {
    let all = &pressluft::store::MIGRATOR;
    sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(all.migrations[..n].to_vec()),
        ignore_missing: false,
        locking: all.locking,
        no_tx: all.no_tx,
    }
}

/// A path naming fixture rows by their short names (`/sites/s1` → the site's UUID).
fn fixture_path(path: &str) -> String {
    path.split('/')
        .map(|seg| {
            if FIXTURE_IDS.contains(&seg) {
                id(seg)
            } else {
                seg.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every row of every table, in the given columns (those of the older schema), as text.
async fn snapshot(
    pool: &sqlx::AnyPool,
    columns: &std::collections::BTreeMap<String, Vec<String>>,
) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut out = std::collections::BTreeMap::new();
    for (table, cols) in columns {
        let expr = cols
            .iter()
            .map(|c| format!("quote(\"{c}\")"))
            .collect::<Vec<_>>()
            .join(" || '|' || ");
        let rows: Vec<(String,)> =
            pressluft::store::query_as(&format!("SELECT {expr} FROM \"{table}\" ORDER BY rowid"))
                .fetch_all(pool)
                .await
                .unwrap();
        out.insert(table.clone(), rows.into_iter().map(|(r,)| r).collect());
    }
    out
}

async fn table_columns(pool: &sqlx::AnyPool) -> std::collections::BTreeMap<String, Vec<String>> {
    let tables: Vec<(String,)> = pressluft::store::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite%'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let mut out = std::collections::BTreeMap::new();
    for (t,) in tables {
        let cols: Vec<(String,)> = pressluft::store::query_as(&format!(
            "SELECT name FROM pragma_table_info('{t}') ORDER BY cid"
        ))
        .fetch_all(pool)
        .await
        .unwrap();
        out.insert(t, cols.into_iter().map(|(c,)| c).collect());
    }
    out
}

#[tokio::test]
async fn every_earlier_schema_version_holding_data_upgrades_to_the_current_one() {
    let total = pressluft::store::MIGRATOR.migrations.len();
    assert!(total >= 2, "nothing to upgrade from");
    for n in 1..total {
        let version = pressluft::store::MIGRATOR.migrations[n - 1].version;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("pressluft.db");

        // The database as release `version` left it, with data.
        let old = Store::open(&db).await.unwrap();
        first_migrations(n).run(old.pool()).await.unwrap();
        for sql in FIXTURE_0001 {
            pressluft::store::query(&fixture_ids(sql))
                .execute(old.pool())
                .await
                .unwrap_or_else(|e| panic!("v{version}: {sql}: {e}"));
        }
        for (since, sql) in FIXTURE_LATER {
            if *since <= version {
                pressluft::store::query(&fixture_ids(sql))
                    .execute(old.pool())
                    .await
                    .unwrap();
            }
        }
        let columns = table_columns(old.pool()).await;
        let before = snapshot(old.pool(), &columns).await;
        old.close().await;

        // The current binary starts on it: the rest of the migrations apply at start-up.
        // Completes every claimed run at once (the upgraded queue must still run jobs).
        let runner: std::sync::Arc<dyn pressluft::jobs::Runner> =
            std::sync::Arc::new(crate::stand_in::StandIn::new());
        let config = pressluft::config::Config::for_tests(dir.path());
        let clock = pressluft::clock::ManualClock::starting_now();
        let app = pressluft::startup::Application::build_with_runner(
            config,
            std::sync::Arc::new(clock.clone()),
            Some(runner),
        )
        .await
        .unwrap_or_else(|e| panic!("v{version}: start-up on the old database: {e:#}"));
        let addr = app.local_addr();
        let state = app.state().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(app.run(async move {
            let _ = stopped.await;
        }));
        let store = &state.store;
        let (applied,): (i64,) =
            pressluft::store::query_as("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = 1")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(
            applied as usize, total,
            "v{version}: every migration applied"
        );

        // Data intact: every row of the old schema, every old column, unchanged (start-up
        // adds one row of its own: the age identity the secrets are encrypted to, issue 17).
        pressluft::store::query("DELETE FROM settings WHERE key = 'secrets_recipient'")
            .execute(store.pool())
            .await
            .unwrap();
        let after = snapshot(store.pool(), &columns).await;
        assert_eq!(before, after, "v{version}: data changed by the upgrade");
        for (since, _) in FIXTURE_LATER {
            if *since <= version {
                let node = store.get_node(&id("n1")).await.unwrap().unwrap();
                assert_eq!(
                    node.firewall_status.as_deref(),
                    Some("active"),
                    "v{version}"
                );
            }
        }

        // The product's queries work on it: through the API and the dashboard…
        pressluft::auth::Auth::new(store.clone(), std::sync::Arc::new(clock.clone()))
            .set_password("admin@example.com", UPGRADE_PASSWORD)
            .await
            .unwrap();
        let client = crate::helpers::client();
        let base = format!("http://{addr}");
        let r =
            crate::helpers::api_login(&client, &base, "admin@example.com", UPGRADE_PASSWORD).await;
        assert_eq!(r.status(), 200, "v{version}: login");
        let get = |path: &str| {
            let client = client.clone();
            let path = fixture_path(path);
            let url = format!("{base}{path}");
            async move {
                let r = client.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 200, "v{version}: GET {path}");
                r.text().await.unwrap()
            }
        };
        let jobs: serde_json::Value = serde_json::from_str(&get("/api/jobs").await).unwrap();
        assert_eq!(jobs.as_array().unwrap().len(), 3, "v{version}: {jobs}");
        let sites: serde_json::Value = serde_json::from_str(&get("/api/sites").await).unwrap();
        assert_eq!(
            sites[0]["primary_environment_id"],
            id("e1").as_str(),
            "v{version}"
        );
        let releases: serde_json::Value =
            serde_json::from_str(&get("/api/environments/e1/releases").await).unwrap();
        assert_eq!(
            releases[0]["source_ref"], "dir:/usr/share/wordpress",
            "v{version}"
        );
        let nodes: serde_json::Value = serde_json::from_str(&get("/api/nodes").await).unwrap();
        assert_eq!(nodes.as_array().unwrap().len(), 2, "v{version}");
        for path in [
            "/api/nodes/n1",
            "/api/sites/s1",
            "/api/sites/s1/environments",
            "/api/environments/e2",
            "/api/jobs/j2",
            "/api/metrics",
            "/api/audit-logs",
            "/_admin/settings",
            "/sites",
            "/sites/s1",
            "/environments/e2",
            "/jobs",
            "/nodes",
            "/audit",
        ] {
            get(path).await;
        }
        // …and the queue: the queued job is claimed and runs, its audit row completes.
        assert_eq!(
            state.engine.run_until_idle("w").await.unwrap(),
            1,
            "v{version}"
        );
        let j3 = store.get_job(&id("j3")).await.unwrap().unwrap();
        assert_eq!(j3.status.as_str(), "succeeded", "v{version}");
        let changes = store.resources_changed_since("", 100).await.unwrap();
        assert!(changes.iter().any(|c| c.id == id("r1")), "v{version}");
        let _ = stop.send(());
    }
}

/// A database made before 0006 keeps its jobs and every reference to them through the rebuild
/// of the `jobs` table, and then takes the new job types.
#[tokio::test]
async fn the_jobs_rebuild_keeps_rows_and_references() {
    use pressluft::store::MIGRATOR;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("m.db")).await.unwrap();
    let before_rebuild = sqlx::migrate::Migrator {
        migrations: MIGRATOR
            .iter()
            .filter(|m| m.version < 6)
            .cloned()
            .collect::<Vec<_>>()
            .into(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    before_rebuild.run(store.pool()).await.unwrap();
    let now = "2026-01-01T00:00:00.000Z";
    for sql in [
        "INSERT INTO nodes (id, name, hostname, status, created_at, updated_at) VALUES ('n', 'n', 'h', 'active', ?1, ?1)",
        "INSERT INTO users (id, email, display_name, password_hash, role, created_at, updated_at) VALUES ('u', 'a@b.test', 'A', 'x', 'admin', ?1, ?1)",
        "INSERT INTO jobs (id, job_type, status, node_id, payload_json, created_at, updated_at) VALUES ('j1', 'node_provision', 'succeeded', 'n', '{}', ?1, ?1)",
        "INSERT INTO jobs (id, job_type, status, node_id, payload_json, parent_job_id, created_at, updated_at) VALUES ('j2', 'health_check', 'queued', 'n', '{}', 'j1', ?1, ?1)",
        "INSERT INTO audit_logs (id, user_id, action, resource_type, resource_id, result, job_id, created_at) VALUES ('a', 'u', 'node_provision', 'node', 'n', 'accepted', 'j1', ?1)",
    ] {
        pressluft::store::query(sql).bind(now).execute(store.pool()).await.unwrap();
    }
    let report = store.migrate().await.unwrap();
    assert!(report.applied_now >= 1);
    let j2 = store.get_job("j2").await.unwrap().unwrap();
    assert_eq!(j2.parent_job_id.as_deref(), Some("j1"));
    let schema: Vec<(String,)> = pressluft::store::query_as(
        "SELECT sql FROM sqlite_master WHERE sql LIKE '%REFERENCES%jobs%'",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert!(schema.iter().all(|(sql,)| !sql.contains("jobs_rebuilt")));
    // References still hold after the rebuild: a dangling parent is refused.
    let insert = |id: &'static str, job_type: &'static str, parent: &'static str| {
        pressluft::store::query("INSERT INTO jobs (id, job_type, status, node_id, payload_json, parent_job_id, created_at, updated_at) VALUES (?, ?, 'queued', 'n', '{}', ?, ?, ?)")
            .bind(id).bind(job_type).bind(parent).bind(now).bind(now)
    };
    insert("j3", "backup_verify", "j1")
        .execute(store.pool())
        .await
        .expect("a new job type");
    assert!(insert("j4", "backup_verify", "missing")
        .execute(store.pool())
        .await
        .is_err());
}

/// 0008 rebuilds `sites` and `environments` (statuses `deleting`/`deleted`, `deleted_at`): a
/// database made before it keeps its rows and every reference to them, and a slug is unique
/// only among rows not deleted (a deleted site's slug is free; one being deleted holds it).
#[tokio::test]
async fn the_deletion_rebuild_keeps_rows_and_frees_deleted_slugs() {
    use pressluft::store::MIGRATOR;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("m.db")).await.unwrap();
    let before = sqlx::migrate::Migrator {
        migrations: MIGRATOR
            .iter()
            .filter(|m| m.version < 8)
            .cloned()
            .collect::<Vec<_>>()
            .into(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    before.run(store.pool()).await.unwrap();
    let now = "2026-01-01T00:00:00.000Z";
    for sql in [
        "INSERT INTO nodes (id, name, hostname, status, created_at, updated_at) VALUES ('n', 'n', 'h', 'active', ?1, ?1)",
        "INSERT INTO sites (id, name, slug, status, created_at, updated_at, state_version) VALUES ('s', 'Shop', 'shop', 'active', ?1, ?1, 7)",
        "INSERT INTO environments (id, site_id, name, slug, environment_type, status, node_id, promotion_preset, preview_url, created_at, updated_at) VALUES ('e', 's', 'P', 'production', 'production', 'active', 'n', 'content-protect', 'http://x', ?1, ?1)",
        "INSERT INTO environments (id, site_id, name, slug, environment_type, status, node_id, source_environment_id, promotion_preset, preview_url, created_at, updated_at) VALUES ('e2', 's', 'S', 'staging', 'staging', 'failed', 'n', 'e', 'content-protect', 'http://y', ?1, ?1)",
        "UPDATE sites SET primary_environment_id = 'e'",
        "INSERT INTO backups (id, environment_id, backup_scope, status, storage_type, storage_path, retention_until, created_at, updated_at) VALUES ('b', 'e2', 'full', 'completed', 'local', '/p/', ?1, ?1, ?1)",
        "INSERT INTO jobs (id, job_type, status, site_id, environment_id, node_id, payload_json, created_at, updated_at) VALUES ('j', 'env_create', 'succeeded', 's', 'e2', 'n', '{}', ?1, ?1)",
    ] {
        pressluft::store::query(sql).bind(now).execute(store.pool()).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    store.migrate().await.unwrap();
    // As at start-up: the rows are read by connections opened after the migrations.
    store.close().await;
    let store = Store::open(&dir.path().join("m.db")).await.unwrap();
    let site = store.get_site("s").await.unwrap().unwrap();
    assert_eq!((site.slug.as_str(), site.state_version), ("shop", 7));
    assert_eq!(site.primary_environment_id.as_deref(), Some("e"));
    assert_eq!(site.deleted_at, None);
    let staging = store.get_environment("e2").await.unwrap().unwrap();
    assert_eq!(staging.status.as_str(), "failed");
    assert_eq!(staging.source_environment_id.as_deref(), Some("e"));
    let schema: Vec<(String,)> =
        pressluft::store::query_as("SELECT sql FROM sqlite_master WHERE sql LIKE '%_rebuilt%'")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert!(schema.is_empty(), "{schema:?}");
    let exec = |sql: &'static str| {
        let pool = store.pool().clone();
        async move { pressluft::store::query(sql).bind(now).execute(&pool).await }
    };
    // References hold: an environment of a missing site is refused.
    assert!(exec("INSERT INTO environments (id, site_id, name, slug, environment_type, status, node_id, promotion_preset, preview_url, created_at, updated_at) VALUES ('x', 'missing', 'X', 'x', 'staging', 'active', 'n', 'content-protect', 'http://z', ?1, ?1)").await.is_err());
    // `deleted` needs `deleted_at`, and the reverse.
    assert!(exec("UPDATE sites SET status = 'deleted' WHERE id = 's'")
        .await
        .is_err());
    assert!(exec("UPDATE sites SET deleted_at = ?1 WHERE id = 's'")
        .await
        .is_err());
    // While the site is deleting its slug is taken; once deleted it is free.
    exec("UPDATE sites SET status = 'deleting' WHERE id = 's'")
        .await
        .unwrap();
    let second = "INSERT INTO sites (id, name, slug, status, created_at, updated_at) VALUES ('s2', 'Shop', 'shop', 'active', ?1, ?1)";
    assert!(
        exec(second).await.is_err(),
        "the slug is held while deleting"
    );
    exec("UPDATE sites SET status = 'deleted', deleted_at = ?1 WHERE id = 's'")
        .await
        .unwrap();
    exec(second).await.expect("a deleted site's slug is free");
    // The same within a site's environments.
    let env = "INSERT INTO environments (id, site_id, name, slug, environment_type, status, node_id, promotion_preset, preview_url, created_at, updated_at) VALUES ('e3', 's', 'S', 'staging', 'staging', 'active', 'n', 'content-protect', 'http://w', ?1, ?1)";
    assert!(exec(env).await.is_err());
    exec("UPDATE environments SET status = 'deleted', deleted_at = ?1 WHERE id = 'e2'")
        .await
        .unwrap();
    exec(env)
        .await
        .expect("a deleted environment's slug is free in its site");
}
