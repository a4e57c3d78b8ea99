//! A control-plane replica killed with SIGKILL in the middle of a real job (issue 17, "kill -9
//! one replica during a real job → the other recovers and finishes it"). `tests/api/replicas.rs`
//! drops an in-process app with a fake runner; this is the real thing: two `pressluft serve`
//! processes (the built binary) on one fresh PostgreSQL database, each with its own data
//! directory, the same age identity and secrets directory (docs/replicas.md), each on its own
//! loopback port, driven over HTTP. Replica A provisions the second node (`node_provision`: a
//! real `ansible-playbook` over SSH as the sudo user `deploy`); once the playbook runs tasks,
//! replica B is started and A is killed with SIGKILL. Then: the playbook dies with A (parent-
//! death signal, jobs.md §4); B marks the job `WORKER_LOST` once its heartbeat is older than the
//! lease (60 s; its scheduler looks every 30 s), retries it after the backoff (1 min) and
//! finishes it: `succeeded` at attempt 2, the node `active`. Real times (about 3–4 minutes plus
//! the provisioning run): nothing is shortened for the test.
//!
//! In CI this is the last step of the second node's flow (`e2e_second_node::second_node`, which
//! runs beside the host's flow, so it costs no wall time of its own); it needs
//! `PRESSLUFT_E2E_PG_URL` (a PostgreSQL maintenance URL: scripts/test passes the one of
//! `scripts/pg-test-server`) and fails without it. On its own, against another node instance
//! (scripts/second-node's `PRESSLUFT_NODE2_*` overrides, read here too):
//! `PRESSLUFT_E2E_REPLICA_KILL=1 PRESSLUFT_E2E_PG_URL=postgres://… cargo test --test api
//! replica_killed_mid_job -- --nocapture`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The PostgreSQL server (maintenance database URL) the step creates its database on.
pub const PG_URL: &str = "PRESSLUFT_E2E_PG_URL";

const ADMIN_EMAIL: &str = "replicas@example.com";
const ADMIN_PASSWORD: &str = "replica kill test password";

/// The second node's address (scripts/second-node's default unless overridden).
fn node_ip() -> String {
    std::env::var("PRESSLUFT_NODE2_NODE_IP").unwrap_or_else(|_| "198.18.0.2".into())
}

/// The second node's root directory on this host.
fn node_root() -> String {
    std::env::var("PRESSLUFT_NODE2_ROOT").unwrap_or_else(|_| "/var/tmp/pressluft-node2".into())
}

/// `PRESSLUFT_E2E_REPLICA_KILL=1`: the step alone (the shared e2e flow runs it as its second
/// node's last step; both at once would share the node).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_killed_mid_job() {
    if std::env::var_os("PRESSLUFT_E2E_REPLICA_KILL").is_none() {
        eprintln!("skipped: set PRESSLUFT_E2E_REPLICA_KILL=1 and {PG_URL} (the shared e2e runs this step)");
        return;
    }
    let scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/second-node");
    crate::helpers::run(scripts, &["build"]);
    crate::helpers::run(scripts, &["start"]);
    replica_killed_during_provisioning().await;
}

/// One `pressluft serve` process.
struct Replica {
    child: tokio::process::Child,
    pid: u32,
    base: String,
    log: PathBuf,
}

impl Replica {
    /// Starts `pressluft serve` on `data_dir` and waits until `/healthz` answers. The database
    /// URL goes in the environment, never in argv.
    async fn start(
        name: &'static str,
        data_dir: &Path,
        secrets_dir: &Path,
        database_url: &str,
        workers: u32,
    ) -> Replica {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = data_dir.join("serve.log");
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = serve_command(data_dir, secrets_dir, database_url);
        cmd.arg("serve")
            .env("PRESSLUFT_LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("PRESSLUFT_WORKERS", workers.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true);
        let child = cmd.spawn().expect("pressluft serve starts");
        let pid = child.id().unwrap();
        let replica = Replica {
            child,
            pid,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = reqwest::get(format!("{}/healthz", replica.base)).await {
                if r.status() == 200 {
                    return replica;
                }
            }
            assert!(
                Instant::now() < deadline,
                "replica {name} did not answer /healthz within 60 s:\n{}",
                replica.log_text()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGTERM (a graceful stop), SIGKILL if it has not stopped within 30 s.
    async fn stop(mut self) {
        // SAFETY: plain syscall on our own child's pid (not yet reaped).
        unsafe {
            libc::kill(self.pid as i32, libc::SIGTERM);
        }
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `<hostname>:<pid>/`: the prefix of this replica's worker ids (jobs.md §10).
    fn worker_prefix(&self) -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        format!("{}:{}/", host.trim(), self.pid)
    }
}

/// `pressluft` with only this replica's settings (none of the test environment's).
fn serve_command(
    data_dir: &Path,
    secrets_dir: &Path,
    database_url: &str,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_pressluft"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PRESSLUFT_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("PRESSLUFT_DATA_DIR", data_dir)
        .env("PRESSLUFT_LOG_DIR", data_dir.join("logs"))
        .env("PRESSLUFT_SECRETS_DIR", secrets_dir)
        .env("PRESSLUFT_DATABASE_URL", database_url)
        // As in the other end-to-end tests: ufw would close ports this sandbox uses.
        .env("PRESSLUFT_MANAGE_FIREWALL", "false");
    cmd
}

/// Runs a one-shot `pressluft` command (migrate, admin create) for replica A; its stdout.
async fn pressluft(
    args: &[&str],
    data_dir: &Path,
    secrets_dir: &Path,
    database_url: &str,
    stdin: &str,
) -> String {
    use tokio::io::AsyncWriteExt;
    let mut cmd = serve_command(data_dir, secrets_dir, database_url);
    cmd.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    pipe.write_all(stdin.as_bytes()).await.unwrap();
    drop(pipe);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "pressluft {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh database on the [`PG_URL`] server; `(its URL, its name)`.
async fn fresh_database(admin: &str) -> (String, String) {
    use sqlx::{Connection, Executor};
    sqlx::any::install_default_drivers();
    let name = format!("pl_kill_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::AnyConnection::connect(admin)
        .await
        .unwrap_or_else(|e| panic!("{PG_URL} unreachable: {e}"));
    conn.execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    conn.close().await.ok();
    let mut url = url::Url::parse(admin).unwrap_or_else(|e| panic!("{PG_URL}: {e}"));
    url.set_path(&format!("/{name}"));
    (url.to_string(), name)
}

async fn drop_database(admin: &str, name: &str) {
    use sqlx::{Connection, Executor};
    let mut conn = sqlx::AnyConnection::connect(admin).await.unwrap();
    conn.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
    conn.close().await.ok();
}

/// The node's `authorized_keys` for `deploy`, restored when dropped (also on a failure).
struct AuthorizedKeys {
    path: String,
    before: String,
}

impl AuthorizedKeys {
    fn set(keys: &str) -> Self {
        let path = format!("{}/home/deploy/.ssh/authorized_keys", node_root());
        let before = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{path}: {e} (is the node built?)"));
        std::fs::write(&path, keys).unwrap();
        AuthorizedKeys { path, before }
    }
}

impl Drop for AuthorizedKeys {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.path, &self.before);
    }
}

/// The process's state letter from `/proc/<pid>/stat` (`None`: gone).
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) S ppid pgrp …`: comm may hold spaces and parentheses.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// `(pid, ppid, pgrp, cmdline)` of every process.
fn processes() -> Vec<(i32, i32, i32, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() < 3 || fields[0] == "Z" {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        out.push((
            pid,
            fields[1].parse().unwrap_or(0),
            fields[2].parse().unwrap_or(0),
            cmdline,
        ));
    }
    out
}

/// The `ansible-playbook` process replica `parent` spawned, if running.
fn playbook_of(parent: u32) -> Option<i32> {
    processes()
        .into_iter()
        .find(|(_, ppid, _, cmd)| *ppid == parent as i32 && cmd.contains("ansible-playbook"))
        .map(|(pid, ..)| pid)
}

async fn get_json(c: &reqwest::Client, url: String) -> Value {
    let r = c.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200, "GET {url}");
    r.json().await.unwrap()
}

/// A job's Ansible output as plain text.
async fn get_text(c: &reqwest::Client, url: String) -> String {
    c.get(&url).send().await.unwrap().text().await.unwrap()
}

/// The step: two real replicas on one PostgreSQL database, the one running `node_provision`
/// killed with SIGKILL mid-playbook, the other recovering and finishing the job.
pub async fn replica_killed_during_provisioning() {
    let admin_url = std::env::var(PG_URL).unwrap_or_else(|_| {
        panic!(
            "{PG_URL} is not set: the replica-kill step needs a PostgreSQL server \
             (scripts/test passes scripts/pg-test-server's URL)"
        )
    });
    let node_ip = node_ip();
    let (db_url, db_name) = fresh_database(&admin_url).await;
    let dir = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    // One secrets directory for both (a shared volume, docs/replicas.md); each its data dir.
    let secrets = dir.path().join("secrets");
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();

    // As an operator sets replicas up: migrate (creates the age identity and the SSH key),
    // an admin, then the same age identity in B's data directory.
    pressluft(&["migrate"], &dir_a, &secrets, &db_url, "").await;
    pressluft(
        &[
            "admin",
            "create",
            "--email",
            ADMIN_EMAIL,
            "--password-stdin",
        ],
        &dir_a,
        &secrets,
        &db_url,
        &format!("{ADMIN_PASSWORD}\n"),
    )
    .await;
    std::fs::copy(dir_a.join("age.key"), dir_b.join("age.key")).unwrap();
    // `serve` registers and provisions the machine it runs on as the local node when the
    // store has none; this machine is the host flow's node, so it is recorded as retired here.
    {
        use sqlx::{Connection, Executor};
        let now = pressluft::clock::format_ts(time::OffsetDateTime::now_utc());
        let mut conn = sqlx::AnyConnection::connect(&db_url).await.unwrap();
        conn.execute(
            sqlx::query(
                "INSERT INTO nodes (id, name, hostname, ssh_user, status, is_local, created_at, updated_at)
                 VALUES ($1, 'ci-host', '127.0.0.1', 'root', 'decommissioned', 1, $2, $2)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(&now),
        )
        .await
        .unwrap();
        conn.close().await.ok();
    }

    // Replica A alone, one worker: it claims the provisioning job.
    let mut a = Replica::start("a", &dir_a, &secrets, &db_url, 1).await;
    let c = crate::helpers::client();
    let r = crate::helpers::api_login(&c, &a.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 200, "login on replica A");
    let key = get_json(&c, a.url("/api/nodes/ssh-public-key")).await;
    let _keys = AuthorizedKeys::set(&format!("{}\n", key["public_key"].as_str().unwrap().trim()));

    let r = c
        .post(a.url("/api/nodes"))
        .json(
            &json!({"name": "node-kill", "hostname": node_ip, "public_ip": node_ip,
                      "ssh_user": "deploy"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "node registration accepted");
    let job_id = crate::helpers::job_id(r).await;
    let job_url = format!("/api/jobs/{job_id}");

    // Wait until A's playbook is past its first tasks (connected to the node over SSH).
    let deadline = Instant::now() + Duration::from_secs(180);
    let playbook = loop {
        let job = get_json(&c, a.url(&job_url)).await;
        let output = get_text(&c, a.url(&format!("{job_url}/output"))).await;
        let tasks = output.matches("TASK [").count();
        if job["status"] == "running" && tasks >= 2 {
            let pid = playbook_of(a.pid).unwrap_or_else(|| {
                panic!("job running with {tasks} tasks but no ansible-playbook child of A: {job}")
            });
            let holder = job["locked_by"].as_str().unwrap_or_default();
            assert!(
                holder.starts_with(&a.worker_prefix()),
                "replica A holds the job: {job}"
            );
            eprintln!(
                "replica kill: A (pid {}) runs the playbook (pid {pid}), {tasks} tasks in: {job}",
                a.pid
            );
            break pid;
        }
        assert!(
            job["status"] == "queued" || job["status"] == "running",
            "{job}\n{output}"
        );
        assert!(
            Instant::now() < deadline,
            "the playbook did not get going within 180 s: {job}\n{output}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let group: Vec<i32> = processes()
        .into_iter()
        .filter(|(_, _, pgrp, _)| *pgrp == playbook)
        .map(|(pid, ..)| pid)
        .collect();

    // Replica B joins (the job is held: it has nothing to claim), then A is killed.
    let b = Replica::start("b", &dir_b, &secrets, &db_url, 2).await;
    let r = crate::helpers::api_login(&c, &b.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 200, "login on replica B");
    let a_worker = a.worker_prefix();
    a.child.start_kill().unwrap(); // SIGKILL
    let killed = Instant::now();
    let status = a.child.wait().await.unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "replica A killed");

    // The playbook dies with its parent (PR_SET_PDEATHSIG), and its process group with it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let alive_playbook = !matches!(proc_state(playbook), None | Some('Z' | 'X'));
        let left: Vec<_> = processes()
            .into_iter()
            .filter(|(pid, _, pgrp, _)| *pgrp == playbook && group.contains(pid))
            .collect();
        if !alive_playbook && left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "10 s after A died, its playbook (pid {playbook}) is {:?}, of its group still running: {left:?}",
            proc_state(playbook)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let playbook_gone = killed.elapsed();
    eprintln!(
        "replica kill: playbook {playbook} and its group ({} processes) gone {playbook_gone:?} after the kill",
        group.len()
    );

    // B recovers the job (WORKER_LOST), retries it after the backoff and finishes it.
    let mut lost_at = None;
    let mut retry_at = None;
    let deadline = Instant::now() + Duration::from_secs(25 * 60);
    let job = loop {
        let job = get_json(&c, b.url(&job_url)).await;
        if lost_at.is_none() && job["error_code"] == "WORKER_LOST" {
            assert_eq!(job["status"], "queued", "{job}");
            assert_eq!(job["attempt_count"], 1, "{job}");
            let message = job["error_message"].as_str().unwrap_or_default();
            assert!(message.contains(&a_worker), "names A's worker: {job}");
            lost_at = Some(killed.elapsed());
            eprintln!(
                "replica kill: WORKER_LOST {:?} after the kill: {job}",
                killed.elapsed()
            );
        }
        if retry_at.is_none() && job["status"] == "running" && job["attempt_count"] == 2 {
            let holder = job["locked_by"].as_str().unwrap_or_default();
            assert!(
                holder.starts_with(&b.worker_prefix()),
                "B runs the retry: {job}"
            );
            retry_at = Some(killed.elapsed());
            eprintln!(
                "replica kill: attempt 2 on B {:?} after the kill",
                killed.elapsed()
            );
        }
        if matches!(
            job["status"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        ) {
            break job;
        }
        assert!(
            Instant::now() < deadline,
            "job not finished 25 min after the kill: {job}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let output = get_text(&c, b.url(&format!("{job_url}/output"))).await;
    assert_eq!(
        job["status"],
        "succeeded",
        "{job}\n{output}\nB's log:\n{}",
        b.log_text()
    );
    assert_eq!(job["attempt_count"], 2, "{job}");
    let lost_at = lost_at.expect("the job was seen waiting for its retry after WORKER_LOST");
    let retry_at = retry_at.expect("attempt 2 was seen running on B");
    // Stale after 60 s without a heartbeat (sent every 15 s), found by a 30 s scheduler tick.
    assert!(
        (Duration::from_secs(44)..=Duration::from_secs(100)).contains(&lost_at),
        "WORKER_LOST {lost_at:?} after the kill"
    );
    // The retry waits for its backoff (1 minute).
    assert!(
        retry_at >= lost_at + Duration::from_secs(55),
        "retry {retry_at:?}, WORKER_LOST {lost_at:?}"
    );
    let node = get_json(
        &c,
        b.url(&format!("/api/nodes/{}", job["node_id"].as_str().unwrap())),
    )
    .await;
    assert_eq!(node["status"], "active", "{node}");
    let claimed = b
        .log_text()
        .lines()
        .any(|l| l.contains("job claimed") && l.contains(&job_id) && l.contains("2/3"));
    assert!(
        claimed,
        "B's log shows the claim of attempt 2:\n{}",
        b.log_text()
    );
    eprintln!(
        "replica kill: playbook gone {playbook_gone:?}, WORKER_LOST {lost_at:?}, attempt 2 {retry_at:?}, succeeded {:?} after the kill",
        killed.elapsed()
    );

    b.stop().await;
    drop_database(&admin_url, &db_name).await;
}
