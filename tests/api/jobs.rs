//! `GET /api/jobs` filters and paging, `GET /api/jobs/{id}`, `GET /api/metrics`.

use serde_json::Value;

use crate::helpers::{assert_field_error, spawn_app, spawn_logged_in, JobFixture, TestApp};

struct World {
    node_a: String,
    node_b: String,
    site: String,
    env: String,
    jobs: Vec<String>,
}

/// 2 nodes, 1 site with one environment, 12 jobs of mixed status and type.
/// A fresh app holding [`world`], with the shared client logged in afterwards.
async fn logged_in_world() -> (TestApp, World) {
    let app = spawn_app().await;
    let w = world(&app).await;
    app.login().await;
    (app, w)
}

async fn world(app: &TestApp) -> World {
    let node_a = app.insert_node("alpha", "active").await;
    let node_b = app.insert_node("beta", "provisioning").await;
    let site = app.insert_site("Acme", "acme").await;
    let env = app.insert_environment(&site, &node_a, "Production").await;
    let mut jobs = Vec::new();
    for i in 0..12i64 {
        let mut f = JobFixture::new("node_provision", "succeeded", &node_b);
        f.offset_ms = i * 10;
        if i % 3 == 0 {
            f = JobFixture {
                job_type: "backup_create",
                status: "queued",
                site_id: Some(&site),
                environment_id: Some(&env),
                node_id: &node_a,
                ..f
            };
        }
        if i % 4 == 1 {
            f.status = "running";
            f.attempt_count = 1;
        }
        if i == 11 {
            f.status = "failed";
            f.error_code = Some("ANSIBLE_HOST_FAILED");
        }
        let id = app.insert_job(f).await;
        jobs.push(id);
    }
    World {
        node_a,
        node_b,
        site,
        env,
        jobs,
    }
}

fn ids(body: &Value) -> Vec<String> {
    body.as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn lists_newest_first_with_every_documented_field() {
    let (app, w) = logged_in_world().await;
    let (status, body) = app.get_json("/api/jobs").await;
    assert_eq!(status, 200);
    let mut expected = w.jobs.clone();
    expected.reverse();
    assert_eq!(ids(&body), expected);
    let first = &body[0];
    for field in [
        "id",
        "job_type",
        "status",
        "site_id",
        "environment_id",
        "node_id",
        "attempt_count",
        "max_attempts",
        "run_after",
        "locked_at",
        "locked_by",
        "started_at",
        "finished_at",
        "error_code",
        "error_message",
        "parent_job_id",
        "cancel_requested_at",
        "created_at",
        "updated_at",
    ] {
        assert!(
            first.get(field).is_some(),
            "{field} present (null allowed): {first}"
        );
    }
    assert_eq!(
        first.as_object().unwrap().len(),
        19,
        "nothing else (no payload, no output)"
    );
    assert_eq!(first["error_code"], "ANSIBLE_HOST_FAILED");
}

#[tokio::test]
async fn filters_combine() {
    let (app, w) = logged_in_world().await;

    let (_, body) = app.get_json("/api/jobs?status=queued").await;
    assert!(body
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["status"] == "queued"));
    assert_eq!(
        body.as_array().unwrap().len(),
        3,
        "i = 0, 3, 6 (9 is running)"
    );

    let (_, body) = app.get_json("/api/jobs?job_type=backup_create").await;
    assert_eq!(body.as_array().unwrap().len(), 4);

    let (_, body) = app.get_json(&format!("/api/jobs?site_id={}", w.site)).await;
    assert_eq!(body.as_array().unwrap().len(), 4);
    let (_, body) = app
        .get_json(&format!("/api/jobs?environment_id={}", w.env))
        .await;
    assert_eq!(body.as_array().unwrap().len(), 4);
    let (_, body) = app
        .get_json(&format!("/api/jobs?node_id={}", w.node_b))
        .await;
    assert_eq!(body.as_array().unwrap().len(), 8);
    assert!(body
        .as_array()
        .unwrap()
        .iter()
        .all(|j| j["site_id"].is_null()));
    let (_, body) = app
        .get_json(&format!("/api/jobs?node_id={}&status=running", w.node_a))
        .await;
    assert_eq!(
        ids(&body),
        vec![w.jobs[9].clone()],
        "backup at i = 9 is running"
    );

    // Filters accept upper-case UUIDs.
    let (_, body) = app
        .get_json(&format!("/api/jobs?site_id={}", w.site.to_uppercase()))
        .await;
    assert_eq!(body.as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn filters_by_parent_job() {
    let app = spawn_app().await;
    let node = app.insert_node("alpha", "active").await;
    let parent = app
        .insert_job(JobFixture::new("node_provision", "succeeded", &node))
        .await;
    let mut f = JobFixture::new("node_provision", "queued", &node);
    f.parent_job_id = Some(&parent);
    f.offset_ms = 5;
    let child = app.insert_job(f).await;
    app.login().await;
    let (_, body) = app
        .get_json(&format!("/api/jobs?parent_job_id={parent}"))
        .await;
    assert_eq!(ids(&body), vec![child]);
}

#[tokio::test]
async fn pages_with_limit_and_before() {
    let (app, w) = logged_in_world().await;
    let mut seen = Vec::new();
    let mut path = "/api/jobs?limit=5".to_string();
    loop {
        let (status, body) = app.get_json(&path).await;
        assert_eq!(status, 200);
        let page = ids(&body);
        assert!(page.len() <= 5);
        seen.extend(page.iter().cloned());
        if page.len() < 5 {
            break;
        }
        path = format!("/api/jobs?limit=5&before={}", page.last().unwrap());
    }
    let mut expected = w.jobs.clone();
    expected.reverse();
    assert_eq!(seen, expected, "pages cover every job once, in order");

    let (_, body) = app.get_json("/api/jobs?limit=1").await;
    assert_eq!(body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_filters_name_the_parameter() {
    let app = spawn_logged_in().await;
    for (query, field) in [
        ("status=done", "status"),
        ("job_type=explode", "job_type"),
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("limit=+5", "limit"),
        ("limit=007", "limit"),
        ("site_id=abc", "site_id"),
        ("node_id=1", "node_id"),
        ("environment_id=x", "environment_id"),
        ("parent_job_id=x", "parent_job_id"),
        ("before=x", "before"),
        ("colour=red", "colour"),
    ] {
        let r = app.get(&format!("/api/jobs?{query}")).await;
        assert_field_error(r, 400, "bad_request", field).await;
    }
    let r = app
        .get(&format!("/api/jobs?before={}", uuid::Uuid::new_v4()))
        .await;
    // A well-formed id that names no job: the document cannot say "existing", so not a 400.
    assert_field_error(r, 404, "not_found", "before").await;
}

#[tokio::test]
async fn gets_one_job() {
    let (app, w) = logged_in_world().await;
    let (status, body) = app.get_json(&format!("/api/jobs/{}", w.jobs[0])).await;
    assert_eq!(status, 200);
    assert_eq!(body["id"], w.jobs[0]);
    assert_eq!(body["job_type"], "backup_create");
    assert_eq!(body["site_id"], w.site);
    assert_eq!(body["max_attempts"], 3);
}

#[tokio::test]
async fn metrics_equal_row_counts() {
    let app = spawn_logged_in().await;
    let (_, empty) = app.get_json("/api/metrics").await;
    assert_eq!(
        empty,
        serde_json::json!({"jobs_running": 0, "jobs_queued": 0, "nodes_active": 0, "sites_total": 0})
    );

    world(&app).await;
    app.insert_site("Bakery", "bakery").await;
    app.insert_node("gamma", "active").await;
    let count = |sql: &'static str| {
        let pool = app.store.pool().clone();
        async move {
            pressluft::store::query_as::<(i64,)>(sql)
                .fetch_one(&pool)
                .await
                .unwrap()
                .0
        }
    };
    let (status, m) = app.get_json("/api/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        m["jobs_running"],
        count("SELECT COUNT(*) FROM jobs WHERE status = 'running'").await
    );
    assert_eq!(
        m["jobs_queued"],
        count("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").await
    );
    assert_eq!(
        m["nodes_active"],
        count("SELECT COUNT(*) FROM nodes WHERE status = 'active'").await
    );
    assert_eq!(m["sites_total"], count("SELECT COUNT(*) FROM sites").await);
    assert_eq!(m["nodes_active"], 2);
    assert_eq!(m["sites_total"], 2);
    assert_eq!(m["jobs_running"], 3);
    assert_eq!(m["jobs_queued"], 3);
}
