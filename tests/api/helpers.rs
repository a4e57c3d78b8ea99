//! The test harness: a real server on port 0 with a fresh database and a manual clock.

use std::sync::Arc;

use pressluft::auth::Auth;
use pressluft::clock::{format_ts, Clock, ManualClock};
use pressluft::config::Config;
use pressluft::startup::Application;
use pressluft::store::Store;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::oneshot;
use uuid::Uuid;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub base: String,
    /// A client that keeps cookies, like a browser.
    pub client: reqwest::Client,
    pub store: Store,
    pub clock: ManualClock,
    pub state: pressluft::state::AppState,
    _dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts the application with one admin (not logged in) and no background workers.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}, None).await
}

/// Starts the application with a tweaked configuration and, optionally, another job runner.
pub async fn spawn_app_with(
    tweak: impl FnOnce(&mut Config),
    runner: Option<Arc<dyn pressluft::jobs::Runner>>,
) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_tests(dir.path());
    tweak(&mut config);
    let clock = ManualClock::starting_now();
    let app = Application::build_with_runner(config, Arc::new(clock.clone()), runner)
        .await
        .expect("application builds");
    let addr = app.local_addr();
    let state = app.state().clone();
    let store = state.store.clone();
    Auth::new(store.clone(), Arc::new(clock.clone()))
        .create_admin(ADMIN_EMAIL, None, ADMIN_PASSWORD)
        .await
        .expect("admin created");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    TestApp {
        base: format!("http://{addr}"),
        client: client(),
        store,
        clock,
        state,
        _dir: dir,
        stop: Some(stop),
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn login_as(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        client
            .post(self.url("/api/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("login request")
    }

    /// Logs the shared client in as the admin.
    pub async fn login(&self) {
        let r = self
            .login_as(&self.client, ADMIN_EMAIL, ADMIN_PASSWORD)
            .await;
        assert_eq!(r.status(), 200, "admin login");
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        (status, r.json().await.expect("JSON body"))
    }

    pub fn now(&self) -> String {
        format_ts(self.clock.now())
    }

    // ---- fixtures: rows the product cannot create through its API yet ----

    pub async fn insert_node(&self, name: &str, status: &str) -> String {
        let id = Uuid::new_v4().to_string();
        let now = self.now();
        sqlx::query(
            "INSERT INTO nodes (id, name, hostname, public_ip, ssh_port, ssh_user, status, is_local, created_at, updated_at)
             VALUES (?, ?, ?, '127.0.0.1', 22, 'root', ?, 0, ?, ?)",
        )
        .bind(&id).bind(name).bind(format!("{name}.example.test")).bind(status).bind(&now).bind(&now)
        .execute(self.store.pool()).await.expect("insert node");
        id
    }

    pub async fn insert_site(&self, name: &str, slug: &str) -> String {
        let id = Uuid::new_v4().to_string();
        let now = self.now();
        sqlx::query(
            "INSERT INTO sites (id, name, slug, status, created_at, updated_at) VALUES (?, ?, ?, 'active', ?, ?)",
        )
        .bind(&id).bind(name).bind(slug).bind(&now).bind(&now)
        .execute(self.store.pool()).await.expect("insert site");
        id
    }

    pub async fn insert_environment(&self, site_id: &str, node_id: &str, name: &str) -> String {
        let id = Uuid::new_v4().to_string();
        let now = self.now();
        sqlx::query(
            "INSERT INTO environments (id, site_id, name, slug, environment_type, status, node_id,
               promotion_preset, preview_url, drift_status, created_at, updated_at)
             VALUES (?, ?, ?, ?, 'production', 'active', ?, 'content-protect', ?, 'unknown', ?, ?)",
        )
        .bind(&id)
        .bind(site_id)
        .bind(name)
        .bind(name.to_lowercase())
        .bind(node_id)
        .bind(format!("http://{}.127-0-0-1.sslip.io", &id[..8]))
        .bind(&now)
        .bind(&now)
        .execute(self.store.pool())
        .await
        .expect("insert environment");
        id
    }

    /// Inserts a job created at `now + offset_ms` (so order is deterministic).
    pub async fn insert_job(&self, job: JobFixture<'_>) -> String {
        let id = Uuid::new_v4().to_string();
        let created = format_ts(self.clock.now() + time::Duration::milliseconds(job.offset_ms));
        sqlx::query(
            "INSERT INTO jobs (id, job_type, status, site_id, environment_id, node_id, payload_json,
               attempt_count, max_attempts, parent_job_id, error_code, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, '{}', ?, 3, ?, ?, ?, ?)",
        )
        .bind(&id).bind(job.job_type).bind(job.status).bind(job.site_id).bind(job.environment_id)
        .bind(job.node_id).bind(job.attempt_count).bind(job.parent_job_id).bind(job.error_code)
        .bind(&created).bind(&created)
        .execute(self.store.pool()).await.expect("insert job");
        id
    }
}

pub struct JobFixture<'a> {
    pub job_type: &'a str,
    pub status: &'a str,
    pub node_id: &'a str,
    pub site_id: Option<&'a str>,
    pub environment_id: Option<&'a str>,
    pub parent_job_id: Option<&'a str>,
    pub attempt_count: i64,
    pub error_code: Option<&'a str>,
    pub offset_ms: i64,
}

impl<'a> JobFixture<'a> {
    pub fn new(job_type: &'a str, status: &'a str, node_id: &'a str) -> Self {
        JobFixture {
            job_type,
            status,
            node_id,
            site_id: None,
            environment_id: None,
            parent_job_id: None,
            attempt_count: 0,
            error_code: None,
            offset_ms: 0,
        }
    }
}

/// Asserts the error shape and code, returning the body.
pub async fn assert_error(r: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status().as_u16(), status, "status for expected {code}");
    let body: Value = r.json().await.expect("error body is JSON");
    assert_eq!(body["code"], code, "body: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message present: {body}"
    );
    body
}
