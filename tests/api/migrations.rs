//! The embedded migrations on an empty database: every table, idempotent, constraints enforced.

use pressluft::store::Store;

const TABLES: [&str; 13] = [
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

    let tables: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite%' ORDER BY name",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    let names: Vec<&str> = tables.iter().map(|(n,)| n.as_str()).collect();
    assert_eq!(names, TABLES);

    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let (fk,): (i64,) = sqlx::query_as("PRAGMA foreign_keys")
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
            let rows: Vec<(String,)> =
                sqlx::query_as(&format!("SELECT name FROM pragma_table_info('{table}')"))
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
        sqlx::query_as("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs' AND sql IS NOT NULL")
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
        sqlx::query(
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
        sqlx::query(
            "INSERT INTO jobs (id, job_type, status, node_id, payload_json, attempt_count, max_attempts, created_at, updated_at)
             VALUES (?, ?, 'queued', ?, '{}', 0, 3, ?, ?)",
        )
        .bind(id).bind(job_type).bind(node_id).bind(now).bind(now)
    };
    job("j1", "node_provision", "n1")
        .execute(pool)
        .await
        .expect("valid job");
    assert!(
        job("j2", "make_coffee", "n1").execute(pool).await.is_err(),
        "job_type CHECK"
    );
    assert!(
        job("j3", "node_provision", "missing")
            .execute(pool)
            .await
            .is_err(),
        "foreign key"
    );

    let site = |id: &'static str, slug: &'static str| {
        sqlx::query("INSERT INTO sites (id, name, slug, status, created_at, updated_at) VALUES (?, 'S', ?, 'active', ?, ?)")
            .bind(id).bind(slug).bind(now).bind(now)
    };
    site("s1", "acme").execute(pool).await.expect("valid site");
    assert!(
        site("s2", "acme").execute(pool).await.is_err(),
        "unique slug"
    );
}
