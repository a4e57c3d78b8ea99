//! The test harness: a real server on port 0 with a fresh database and a manual clock.

use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// The data directory (age identity, secrets), for replicas of this app.
    pub data_dir: std::path::PathBuf,
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

/// Held (write) by the host flow while the backup settings point at storage only this host
/// reaches (the S3 test server on 127.0.0.1), and (read) by the second node's flow around its
/// backups: a backup's storage is fixed by the settings at its creation, and node 2 cannot
/// reach this host's loopback. The two flows run at the same time (e2e_second_node.rs).
pub static HOST_ONLY_BACKUP_STORAGE: std::sync::LazyLock<tokio::sync::RwLock<()>> =
    std::sync::LazyLock::new(|| tokio::sync::RwLock::new(()));

/// Starts the application with one admin (not logged in) and no background workers.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}, None).await
}

/// [`spawn_app`] with the shared client logged in as the admin.
pub async fn spawn_logged_in() -> TestApp {
    let app = spawn_app().await;
    app.login().await;
    app
}

/// Starts the application with a tweaked configuration and, optionally, another job runner.
pub async fn spawn_app_with(
    tweak: impl FnOnce(&mut Config),
    runner: Option<Arc<dyn pressluft::jobs::Runner>>,
) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::for_tests(dir.path());
    config.database_url = fresh_test_database().await;
    tweak(&mut config);
    let app = start(dir, config, runner).await;
    Auth::new(app.store.clone(), Arc::new(app.clock.clone()))
        .create_admin(ADMIN_EMAIL, None, ADMIN_PASSWORD)
        .await
        .expect("admin created");
    app
}

/// Builds and serves the application on `dir` with `config` and a manual clock.
async fn start(
    dir: TempDir,
    config: Config,
    runner: Option<Arc<dyn pressluft::jobs::Runner>>,
) -> TestApp {
    let clock = ManualClock::starting_now();
    let app = Application::build_with_runner(config, Arc::new(clock.clone()), runner)
        .await
        .expect("application builds");
    let addr = app.local_addr();
    let state = app.state().clone();
    let store = state.store.clone();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    TestApp {
        data_dir: dir.path().to_path_buf(),
        base: format!("http://{addr}"),
        client: client(),
        store,
        clock,
        state,
        _dir: dir,
        stop: Some(stop),
    }
}

/// A second control-plane replica of `of` (issue 17): the same PostgreSQL database, a copy of
/// its age identity and secrets, its own data directory, port and clock.
pub async fn spawn_replica(
    of: &TestApp,
    tweak: impl FnOnce(&mut Config),
    runner: Option<Arc<dyn pressluft::jobs::Runner>>,
) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(of.data_dir.join("age.key"), dir.path().join("age.key")).expect("age.key");
    let status = Command::new("cp")
        .arg("-a")
        .arg(of.data_dir.join("secrets"))
        .arg(dir.path())
        .status()
        .expect("cp");
    assert!(status.success(), "secrets copied");
    let mut config = Config::for_tests(dir.path());
    config.database_url = of.state.config.database_url.clone();
    tweak(&mut config);
    start(dir, config, runner).await
}

/// The variable naming the PostgreSQL server the suite runs against (its maintenance database,
/// e.g. `postgres://postgres@127.0.0.1:55432/postgres`); unset: SQLite.
pub const TEST_DATABASE_URL: &str = "PRESSLUFT_TEST_DATABASE_URL";

/// A new, empty PostgreSQL database for one test app when [`TEST_DATABASE_URL`] is set (the
/// throwaway cluster of `scripts/pg-test-server` is removed after the run, databases and all).
pub async fn fresh_test_database() -> Option<pressluft::config::DatabaseUrl> {
    use sqlx::{Connection, Executor};
    let admin = std::env::var(TEST_DATABASE_URL).ok()?;
    sqlx::any::install_default_drivers();
    let name = format!("pl_{}", Uuid::new_v4().simple());
    let mut conn = sqlx::AnyConnection::connect(&admin)
        .await
        .expect("test PostgreSQL server reachable");
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("test database created");
    conn.close().await.ok();
    let mut url = url::Url::parse(&admin).expect("test database URL");
    url.set_path(&format!("/{name}"));
    Some(pressluft::config::DatabaseUrl::parse(url.as_str()).expect("postgres URL"))
}

/// Whether the suite runs against PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var_os(TEST_DATABASE_URL).is_some()
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

    /// The stored setting `key`.
    pub async fn setting(&self, key: &str) -> Option<String> {
        self.store.get_setting(key).await.unwrap()
    }

    pub async fn login_as(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> reqwest::Response {
        api_login(client, &self.base, email, password).await
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

    /// The body of `GET path`.
    pub async fn text(&self, path: &str) -> String {
        self.get(path).await.text().await.expect("body")
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let r = self.get(path).await;
        let status = r.status().as_u16();
        (status, r.json().await.expect("JSON body"))
    }

    /// `method path` with a JSON body.
    async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> reqwest::Response {
        let what = format!("{method} {path}");
        let request = self.client.request(method, self.url(path)).json(&body);
        request.send().await.expect(&what)
    }

    /// `POST path` with a JSON body.
    pub async fn post_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.send_json(reqwest::Method::POST, path, body).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put_json(&self, path: &str, body: Value) -> reqwest::Response {
        self.send_json(reqwest::Method::PUT, path, body).await
    }

    /// `POST /api/logout` with the session cookie `token` (from a client without cookies).
    pub async fn logout_token(&self, token: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(self.url("/api/logout"))
            .header("cookie", format!("session_token={token}"))
            .send()
            .await
            .expect("logout")
    }

    /// The distinct client addresses the login throttle recorded, sorted.
    pub async fn recorded_login_ips(&self) -> Vec<String> {
        pressluft::store::query_as::<(String,)>(
            "SELECT DISTINCT remote_ip FROM login_attempts ORDER BY 1",
        )
        .fetch_all(self.store.pool())
        .await
        .unwrap()
        .into_iter()
        .map(|(ip,)| ip)
        .collect()
    }

    /// Sets the WordPress source (`PUT /_admin/settings/wordpress`).
    pub async fn put_wordpress_source(&self, source: &str) -> reqwest::Response {
        self.put_json(
            "/_admin/settings/wordpress",
            json!({ "wordpress_source": source }),
        )
        .await
    }

    /// `POST path` without a body.
    pub async fn post_empty(&self, path: &str) -> reqwest::Response {
        self.client.post(self.url(path)).send().await.expect("POST")
    }

    /// `GET /api/jobs/{id}`.
    pub async fn job(&self, id: &str) -> Value {
        self.get_json(&format!("/api/jobs/{id}")).await.1
    }

    pub fn now(&self) -> String {
        format_ts(self.clock.now())
    }

    // ---- fixtures: rows the product cannot create through its API yet ----

    pub async fn insert_node(&self, name: &str, status: &str) -> String {
        let id = Uuid::new_v4().to_string();
        let now = self.now();
        pressluft::store::query(
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
        pressluft::store::query(
            "INSERT INTO sites (id, name, slug, status, created_at, updated_at) VALUES (?, ?, ?, 'active', ?, ?)",
        )
        .bind(&id).bind(name).bind(slug).bind(&now).bind(&now)
        .execute(self.store.pool()).await.expect("insert site");
        id
    }

    pub async fn insert_environment(&self, site_id: &str, node_id: &str, name: &str) -> String {
        let id = Uuid::new_v4().to_string();
        let now = self.now();
        pressluft::store::query(
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

    /// Runs one SQL statement with text parameters (fixtures and faults the API cannot make).
    pub async fn exec(&self, sql: &str, binds: &[&str]) {
        let mut query = pressluft::store::query(sql);
        for value in binds {
            query = query.bind(*value);
        }
        query
            .execute(self.store.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// How many rows `table` holds.
    pub async fn count(&self, table: &str) -> i64 {
        let (n,): (i64,) = pressluft::store::query_as(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(self.store.pool())
            .await
            .unwrap();
        n
    }

    /// Inserts a job created at `now + offset_ms` (so order is deterministic).
    pub async fn insert_job(&self, job: JobFixture<'_>) -> String {
        let id = Uuid::new_v4().to_string();
        let created = format_ts(self.clock.now() + time::Duration::milliseconds(job.offset_ms));
        pressluft::store::query(
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

/// The `job_id` of an accepted request (which must be a 202).
pub async fn job_id(r: reqwest::Response) -> String {
    let status = r.status();
    let body = r.text().await.expect("body");
    assert_eq!(status, 202, "{body}");
    serde_json::from_str::<Value>(&body).expect("JSON body")["job_id"]
        .as_str()
        .expect("job_id")
        .to_string()
}

/// Submits a job through the API (which must accept it: 202) and returns its id.
pub async fn post_job(app: &TestApp, path: &str, body: Value) -> String {
    job_id(app.post_json(path, body).await).await
}

/// Requests a new environment of `site_id` (promotion preset `content-protect`), which must be
/// accepted, and returns its `env_create` job.
pub async fn post_environment(
    app: &TestApp,
    site_id: &str,
    name: &str,
    slug: &str,
    environment_type: &str,
) -> String {
    let body = json!({"name": name, "slug": slug, "environment_type": environment_type,
                      "promotion_preset": "content-protect"});
    post_job(app, &format!("/api/sites/{site_id}/environments"), body).await
}

/// Waits (up to `limit`) until the job finished, or failed an attempt and waits for its retry.
pub async fn wait_for_job(app: &TestApp, job_id: &str, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let job = app.job(job_id).await;
        if matches!(
            job["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            return job;
        }
        // A failed attempt waiting for its retry: no caller expects one, so stop here (the
        // caller's assertion shows the job) instead of holding the node for the backoff.
        if job["status"] == "queued" && !job["error_code"].is_null() {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "job {job_id} still {} after {limit:?}",
            job["status"]
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The job once it finished (within `limit`) and its output.
pub async fn finished_within(app: &TestApp, job_id: &str, limit: Duration) -> (Value, String) {
    let job = wait_for_job(app, job_id, limit).await;
    let output = app.text(&format!("/api/jobs/{job_id}/output")).await;
    (job, output)
}

/// The job once it finished (within 15 minutes) and its output.
pub async fn finished(app: &TestApp, job_id: &str) -> (Value, String) {
    finished_within(app, job_id, Duration::from_secs(15 * 60)).await
}

/// The job once it finished, which it must have done successfully.
pub async fn succeeded(app: &TestApp, job_id: &str) -> Value {
    let (job, output) = finished(app, job_id).await;
    assert_eq!(job["status"], "succeeded", "{job}\n{output}");
    job
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

/// An input error: `assert_error` and the field it names in `details.fields`.
pub async fn assert_field_error(
    r: reqwest::Response,
    status: u16,
    code: &str,
    field: &str,
) -> Value {
    let body = assert_error(r, status, code).await;
    assert!(
        body["details"]["fields"][field].is_string(),
        "{field} named: {body}"
    );
    body
}

/// The string `key` of every object in the JSON array `list` (a column of a listing).
pub fn column<'a>(list: &'a Value, key: &str) -> Vec<&'a str> {
    let rows = list.as_array().expect("a JSON array");
    rows.iter().map(|row| row[key].as_str().unwrap()).collect()
}

/// The value of the hidden form field `name` in a page.
pub fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("hidden field {name}"))
        + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_string()
}

/// The hidden `csrf_token` value in a page.
pub fn csrf_field(html: &str) -> String {
    hidden_field(html, "csrf_token")
}

/// `POST {base}/api/login` with `email` and `password`, from client `c`.
pub async fn api_login(
    c: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    c.post(format!("{base}/api/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login request")
}

/// Submits the dashboard's login form as the admin with client `c`: loads `login_page` for the
/// form's CSRF token, then posts the e-mail, `password` and, if given, `next`.
pub async fn submit_login_form(
    app: &TestApp,
    c: &reqwest::Client,
    login_page: &str,
    password: &str,
    next: Option<&str>,
) -> reqwest::Response {
    let token = csrf_field(&page_text(c, app.url(login_page)).await);
    let mut fields = vec![
        ("email", ADMIN_EMAIL),
        ("password", password),
        ("csrf_token", &token),
    ];
    fields.extend(next.map(|next| ("next", next)));
    post_form(c, app.url("/login"), &fields).await
}

/// The body of `GET url` with client `c`.
pub async fn page_text(c: &reqwest::Client, url: String) -> String {
    get_with(c, url).await.text().await.unwrap()
}

/// `GET url` with client `c` (a browser-like session).
pub async fn get_with(c: &reqwest::Client, url: String) -> reqwest::Response {
    c.get(url).send().await.expect("GET")
}

/// A dashboard form submitted with client `c`: `POST url` with `fields` form-encoded.
pub async fn post_form(
    c: &reqwest::Client,
    url: String,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    c.post(url).form(fields).send().await.expect("form POST")
}

/// The forms of a dashboard session: each post carries the session's CSRF token (read from
/// one of its pages), as the browser's do.
pub struct CsrfForms<'a> {
    app: &'a TestApp,
    c: &'a reqwest::Client,
    pub token: String,
}

impl<'a> CsrfForms<'a> {
    /// The forms of client `c`'s session, with the token of its page `html`.
    pub fn new(app: &'a TestApp, c: &'a reqwest::Client, html: &str) -> Self {
        let token = csrf_field(html);
        CsrfForms { app, c, token }
    }

    /// `POST path` with the token and `fields`.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut all = vec![("csrf_token", self.token.as_str())];
        all.extend_from_slice(fields);
        post_form(self.c, self.app.url(path), &all).await
    }

    /// `POST /settings/wordpress`: the WordPress source form.
    pub async fn save_wordpress_source(&self, source: &str, sha256: &str) -> reqwest::Response {
        let fields = [
            ("wordpress_source", source),
            ("wordpress_source_sha256", sha256),
        ];
        self.post("/settings/wordpress", &fields).await
    }
}

/// True when `program arg` runs (a tool a test needs, such as ansible-playbook or nginx);
/// otherwise the test is skipped with `hint`, unless the test command promised the tool
/// (PRESSLUFT_E2E=1).
pub fn tool_available(program: &str, arg: &str, hint: &str) -> bool {
    let found = Command::new(program)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("PRESSLUFT_E2E").is_none(),
            "PRESSLUFT_E2E is set but {program} is missing"
        );
        eprintln!("skipped: {hint}");
    }
    found
}

/// Spawns `command` with `input` on its stdin (secrets stay out of argv) and waits for it.
pub fn output_with_stdin(mut command: Command, input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// The stdout of a program that must have succeeded (both outputs shown if it did not).
fn stdout_of_success(program: &str, args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "{program} {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs a program that must succeed and returns its stdout.
pub fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    stdout_of_success(program, args, out)
}

/// [`run`] with `input` on stdin.
pub fn run_with_stdin(program: &str, args: &[&str], input: &str) -> String {
    let mut command = Command::new(program);
    command.args(args);
    let out = output_with_stdin(command, input.as_bytes());
    stdout_of_success(program, args, out)
}

/// The host of a preview URL (`http://<host>/`).
pub fn host(url: &str) -> &str {
    url.trim_start_matches("http://").trim_end_matches('/')
}

/// A client that sends every preview host to 127.0.0.1 (sslip.io does not resolve here).
pub fn visitor(hosts: &[&str]) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60));
    for h in hosts {
        b = b.resolve(h, "127.0.0.1:80".parse().unwrap());
    }
    b.build().unwrap()
}

/// The follow-up job of `parent` (its `health_check` or `release_rollback`), once enqueued.
pub async fn follow_up(app: &TestApp, parent: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let id: Option<(String,)> = pressluft::store::query_as(
            "SELECT id FROM jobs WHERE parent_job_id = ? ORDER BY created_at LIMIT 1",
        )
        .bind(parent)
        .fetch_optional(app.state.store.pool())
        .await
        .unwrap();
        if let Some((id,)) = id {
            return id;
        }
        assert!(Instant::now() < deadline, "no follow-up of job {parent}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the gated job `job_id` and its follow-ups ended; returns (the gate's
/// `health_check` job, the `release_rollback` that followed a failed gate, if any).
pub async fn gate_ended(app: &TestApp, job_id: &str) -> (Value, Option<Value>) {
    let job = succeeded(app, job_id).await;
    let gate = follow_up(app, job["id"].as_str().unwrap()).await;
    let (gate, output) = finished(app, &gate).await;
    if gate["status"] == "succeeded" {
        return (gate, None);
    }
    assert_eq!(
        gate["error_code"], "HEALTH_CHECK_FAILED",
        "{gate}\n{output}"
    );
    let rollback = follow_up(app, gate["id"].as_str().unwrap()).await;
    let (rollback, output) = finished(app, &rollback).await;
    assert_eq!(rollback["status"], "succeeded", "{rollback}\n{output}");
    (gate, Some(rollback))
}
