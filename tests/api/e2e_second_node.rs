//! A second, really separate node end to end (issue 17), run alongside the host node's site flow
//! so the two nodes' jobs overlap in time: `scripts/second-node` (a Debian 12 root in its own
//! mount, PID, UTS, IPC and network namespaces at 198.18.0.2) is registered through the API as
//! the unprivileged sudo user `deploy`, provisioned by the normal `node_provision` job, gets a
//! site placed on it with `node_id` (from Debian's `wordpress` package, like every e2e site) and
//! a staging clone; both are served from 198.18.0.2 and not from this host. A full backup of
//! production is kept on node 2 and restored into staging (URLs rewritten, health-gated), all
//! through sudo. The site is deleted
//! again (`site_delete`), then the node is retired (status `decommissioned` in the store: the
//! product has no node removal) so the host flow's later steps, which re-provision every active
//! node when the preview domain changes, leave it alone. Last, two real `pressluft serve`
//! replicas on PostgreSQL provision the node again and the one running the playbook is killed
//! with SIGKILL; the other finishes the job (`e2e_replica_kill`).
//!
//! After both flows: at least one job of node 2 ran while one of the host node did, and no two
//! jobs of one node ever ran at once, over every job of the run (wall-clock samples of the
//! running jobs every 100 ms: the test app's clock is a manual one, so the stored times of
//! the jobs only show their order).

use std::future::Future;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{finished_within, post_environment, post_job, succeeded, TestApp};

const NODE_IP: &str = "198.18.0.2";
const NODE_ROOT: &str = "/var/tmp/pressluft-node2";

/// Runs `host_flow` (the host node's site flow) and the second node's flow at the same time,
/// then checks the jobs of the whole run.
pub async fn alongside(app: &TestApp, host_flow: impl Future<Output = ()>) {
    let sampler = Sampler::start(app);
    let ((), node2) = tokio::join!(host_flow, second_node(app));
    let seen = sampler.stop().await;
    jobs_of_one_node_never_overlap(app, &seen).await;
    ran_beside_the_host(&seen, &node2);
}

/// What the sampler saw: every 100 ms the running jobs (the test app's clock is a manual one,
/// so the jobs' stored times cannot show concurrency; wall-clock samples can).
#[derive(Debug, Default)]
struct Seen {
    samples: usize,
    /// Node → job ids running at once in one sample, when more than one (must stay empty).
    same_node: Vec<(String, Vec<String>)>,
    /// Samples with jobs of two or more nodes running at once: `(node, job)` pairs.
    across_nodes: Vec<Vec<(String, String)>>,
}

struct Sampler {
    stop: tokio::sync::oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<Seen>,
}

impl Sampler {
    fn start(app: &TestApp) -> Self {
        let pool = app.store.pool().clone();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let mut seen = Seen::default();
            loop {
                let running: Vec<(String, String)> = sqlx::query_as(
                    "SELECT node_id, id FROM jobs WHERE status = 'running' ORDER BY node_id",
                )
                .fetch_all(&pool)
                .await
                .expect("sampling the running jobs");
                seen.samples += 1;
                let mut by_node: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
                for (node, job) in &running {
                    by_node.entry(node).or_default().push(job.clone());
                }
                for (node, jobs) in &by_node {
                    if jobs.len() > 1 {
                        seen.same_node.push((node.to_string(), jobs.clone()));
                    }
                }
                if by_node.len() > 1 {
                    seen.across_nodes.push(running);
                }
                tokio::select! {
                    _ = &mut stopped => return seen,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
        });
        Sampler { stop, handle }
    }

    async fn stop(self) -> Seen {
        let _ = self.stop.send(());
        self.handle.await.unwrap()
    }
}

/// A command's stdout; panics with its stderr when it fails (not on the runtime's threads).
async fn sh(program: &str, args: &[&str], stdin: Option<&str>) -> String {
    use tokio::io::AsyncWriteExt;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{program}: {e}"));
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).await.unwrap();
    }
    drop(pipe);
    let out = child.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `command` on the second node as `deploy` over SSH with the test's key.
async fn on_node(key: &std::path::Path, command: &str, stdin: Option<&str>) -> String {
    let key = key.to_str().unwrap();
    sh(
        "ssh",
        &[
            "-i",
            key,
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            &format!("deploy@{NODE_IP}"),
            "--",
            command,
        ],
        stdin,
    )
    .await
}

/// A visitor whose preview hosts resolve to `ip` (sslip.io does not resolve here).
fn visitor_at(hosts: &[&str], ip: &str) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60));
    for h in hosts {
        b = b.resolve(h, format!("{ip}:80").parse().unwrap());
    }
    b.build().unwrap()
}

/// The body of `GET url` via `ip`, or `None` when the connection fails or the answer is not 200.
async fn served(url: &str, ip: &str) -> Option<String> {
    let host = crate::helpers::host(url);
    let r = visitor_at(&[host], ip)
        .get(format!("{url}/"))
        .send()
        .await
        .ok()?;
    if r.status() != 200 {
        return None;
    }
    r.text().await.ok()
}

/// The second node's flow; returns its node id.
async fn second_node(app: &TestApp) -> String {
    let scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/second-node");
    sh(scripts, &["build"], None).await;
    sh(scripts, &["start"], None).await;

    // Authorize the control plane's key for `deploy`, as an operator does on a new server
    // (and the test's own key, to look at the node).
    let operator = tempfile::tempdir().unwrap();
    let key = operator.path().join("id_ed25519");
    sh(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "e2e-operator",
            "-f",
            key.to_str().unwrap(),
        ],
        None,
    )
    .await;
    let (_, cp_key) = app.get_json("/api/nodes/ssh-public-key").await;
    let authorized = format!(
        "{}\n{}",
        cp_key["public_key"].as_str().unwrap().trim(),
        std::fs::read_to_string(key.with_extension("pub")).unwrap()
    );
    let keys_file = format!("{NODE_ROOT}/home/deploy/.ssh/authorized_keys");
    std::fs::write(&keys_file, authorized).unwrap();
    assert_eq!(on_node(&key, "id -un", None).await.trim(), "deploy");

    // Register and provision it as the sudo user, like any server.
    let job_id = post_job(
        app,
        "/api/nodes",
        json!({"name": "node-2", "hostname": NODE_IP, "public_ip": NODE_IP, "ssh_user": "deploy"}),
    )
    .await;
    let (job, output) = finished_within(app, &job_id, Duration::from_secs(25 * 60)).await;
    assert_eq!(job["status"], "succeeded", "{job}\n{output}");
    let node_id = job["node_id"].as_str().unwrap().to_string();
    let (_, node) = app.get_json(&format!("/api/nodes/{node_id}")).await;
    assert_eq!(node["status"], "active", "{node}");
    assert_eq!(node["ssh_user"], "deploy", "{node}");
    // The node helper runs on the node, as root through sudo.
    let helper = on_node(&key, "sudo -n /usr/local/bin/pressluft --version", None).await;
    assert!(helper.contains("pressluft"), "{helper}");

    // Debian's WordPress package on node 2 too (the e2e sites' source), over SSH with sudo.
    let wp_script = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/e2e/wordpress-source.sh"
    ))
    .unwrap();
    on_node(&key, "sudo -n bash -s", Some(&wp_script)).await;
    let r = app.put_wordpress_source("dir:/usr/share/wordpress").await;
    assert_eq!(r.status(), 200);

    // A site placed on node 2 by choice.
    let create = post_job(
        app,
        "/api/sites",
        json!({"name": "Node Two Shop", "slug": "e2e-node-two", "node_id": node_id}),
    )
    .await;
    let created = succeeded(app, &create).await;
    assert_eq!(created["node_id"], node_id.as_str(), "{created}");
    let site_id = created["site_id"].as_str().unwrap().to_string();
    let prod_id = created["environment_id"].as_str().unwrap().to_string();
    let staging_job = post_environment(app, &site_id, "Staging", "staging", "staging").await;
    let staged = succeeded(app, &staging_job).await;
    assert_eq!(
        staged["node_id"],
        node_id.as_str(),
        "environments stay on their site's node: {staged}"
    );
    let staging_id = staged["environment_id"].as_str().unwrap().to_string();

    for env in [&prod_id, &staging_id] {
        let (_, e) = app.get_json(&format!("/api/environments/{env}")).await;
        assert_eq!(e["node_id"], node_id.as_str(), "{e}");
        assert_eq!(e["status"], "active", "{e}");
        let url = e["preview_url"].as_str().unwrap().to_string();
        assert!(url.contains("198-18-0-2"), "preview URL of node 2: {url}");
        let body = served(&url, NODE_IP)
            .await
            .unwrap_or_else(|| panic!("{url} is not served from {NODE_IP}"));
        assert!(body.contains("<title>Node Two Shop"), "{url}: {body:.400}");
        // This host does not serve it.
        let here = served(&url, "127.0.0.1").await.unwrap_or_default();
        assert!(
            !here.contains("Node Two Shop"),
            "{url} must not be served from this host: {here:.400}"
        );
        let u8 = &env[..8];
        let pool_user = on_node(
            &key,
            &format!("ps -o user:32= -C php-fpm$(php -r 'echo PHP_MAJOR_VERSION, \".\", PHP_MINOR_VERSION;') | grep -x pl_{u8} | head -1"),
            None,
        )
        .await;
        assert_eq!(
            pool_user.trim(),
            format!("pl_{u8}"),
            "PHP of {env} runs on node 2"
        );
    }
    assert!(
        !std::path::Path::new(&format!("/var/www/sites/{site_id}")).exists(),
        "nothing of the site on this host"
    );

    // A node command without Ansible (nodes/command.rs: `sudo -n pressluft node …` over SSH
    // as `deploy`): a magic login link for staging, which logs in on node 2.
    let r = app
        .post_empty(&format!("/api/environments/{staging_id}/magic-login"))
        .await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let login_url = body["login_url"].as_str().unwrap();
    let host = crate::helpers::host(login_url).split('/').next().unwrap();
    let r = visitor_at(&[host], NODE_IP)
        .get(login_url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "the magic link logs in on node 2");
    assert!(r
        .headers()
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap_or("").starts_with("wordpress_logged_in_")));

    // Data work through sudo as well: a full backup of production, kept on node 2, restored
    // into staging with production's URLs rewritten to staging's, behind the health gate. The
    // backups (these and the delete's final ones) wait while the host flow's backups go to
    // storage only the host reaches.
    let local_storage = crate::helpers::HOST_ONLY_BACKUP_STORAGE.read().await;
    let (backup_id, backup_job) = crate::backup_jobs::start_backup(app, &prod_id, "full").await;
    let backed_up = succeeded(app, &backup_job).await;
    assert_eq!(backed_up["node_id"], node_id.as_str(), "{backed_up}");
    let (_, backup) = app.get_json(&format!("/api/backups/{backup_id}")).await;
    assert_eq!(backup["status"], "completed", "{backup}");
    let storage_path = backup["storage_path"].as_str().unwrap().to_string();
    assert!(storage_path.starts_with('/'), "kept on the node: {backup}");
    let stored = on_node(&key, &format!("sudo -n ls -A {storage_path}"), None).await;
    assert!(stored.contains("manifest.json"), "on node 2: {stored}");
    assert!(
        !std::path::Path::new(&storage_path).exists(),
        "not on this host"
    );
    let restore = post_job(
        app,
        &format!("/api/environments/{staging_id}/restore"),
        json!({ "backup_id": backup_id }),
    )
    .await;
    let (gate, rollback) = crate::helpers::gate_ended(app, &restore).await;
    assert!(
        rollback.is_none(),
        "the restore on node 2 passed its gate: {gate}"
    );
    let (_, releases) = app
        .get_json(&format!("/api/environments/{staging_id}/releases"))
        .await;
    assert_eq!(
        releases[0]["source_ref"],
        format!("backup:{backup_id}"),
        "{releases}"
    );
    let (_, prod) = app.get_json(&format!("/api/environments/{prod_id}")).await;
    let (_, staging) = app
        .get_json(&format!("/api/environments/{staging_id}"))
        .await;
    let staging_url = staging["preview_url"].as_str().unwrap();
    let prod_host = crate::helpers::host(prod["preview_url"].as_str().unwrap())
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let body = served(staging_url, NODE_IP)
        .await
        .unwrap_or_else(|| panic!("{staging_url} is not served after the restore"));
    assert!(body.contains("<title>Node Two Shop"), "{body:.400}");
    assert!(
        !body.contains(&prod_host),
        "production's URLs were rewritten to staging's: {body:.2000}"
    );

    // The dashboard shows which node holds what.
    let node_page = app.text(&format!("/nodes/{node_id}")).await;
    for needle in ["Node Two Shop", &prod_id, &staging_id] {
        assert!(node_page.contains(needle), "node page lists {needle}");
    }
    let site_page = app.text(&format!("/sites/{site_id}")).await;
    assert!(
        site_page.contains(&format!(
            "href=\"/nodes/{node_id}\" data-test=\"env-node\">node-2<"
        )),
        "the site page names node 2"
    );

    // Delete the site on node 2: the node is clean again.
    let r = app
        .client
        .delete(app.url(&format!("/api/sites/{site_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let deleted = succeeded(app, &crate::helpers::job_id(r).await).await;
    assert_eq!(deleted["job_type"], "site_delete");
    assert_eq!(deleted["node_id"], node_id.as_str());
    let left = on_node(
        &key,
        &format!("sudo -n ls -A /var/www/sites/ | grep -c {site_id} || true"),
        None,
    )
    .await;
    assert_eq!(left.trim(), "0", "site directory left on node 2");
    drop(local_storage);

    // Retire the node (no node removal in the product) and take the keys back.
    app.exec(
        "UPDATE nodes SET status = 'decommissioned' WHERE id = ?",
        &[&node_id],
    )
    .await;
    std::fs::write(&keys_file, "").unwrap();

    // Last: two real replicas on PostgreSQL provision this node again, and the one running the
    // playbook is killed with SIGKILL (e2e_replica_kill.rs). Required in the shared flow
    // (PRESSLUFT_E2E; it fails without PRESSLUFT_E2E_PG_URL), optional in the flow alone.
    if std::env::var_os("PRESSLUFT_E2E").is_some()
        || std::env::var_os(crate::e2e_replica_kill::PG_URL).is_some()
    {
        crate::e2e_replica_kill::replica_killed_during_provisioning().await;
    }
    node_id
}

/// The second node's flow for working on it, without the 35-minute shared flow:
/// `PRESSLUFT_E2E_SECOND_NODE=1 cargo test --test api second_node_beside_the_host -- --nocapture`.
/// With `PRESSLUFT_E2E=1` as well (under the node lock: it provisions this machine), the host
/// node is registered and provisioned at the same time, and the jobs of both are checked as in
/// the shared flow; without it, node 2 runs alone (nothing on this machine is touched).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_node_beside_the_host() {
    if std::env::var_os("PRESSLUFT_E2E_SECOND_NODE").is_none() {
        eprintln!("skipped: set PRESSLUFT_E2E_SECOND_NODE=1 (the shared e2e runs this flow)");
        return;
    }
    let app = crate::helpers::spawn_app_with(
        |c| {
            c.workers = 2;
            c.node_binary = Some(env!("CARGO_BIN_EXE_pressluft").into());
            c.manage_firewall = false;
        },
        None,
    )
    .await;
    app.login().await;
    app.exec(
        "INSERT INTO settings (key, value, updated_at) VALUES ('backup_schedule_hours', '0', ?)
           ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&app.now()],
    )
    .await;
    if std::env::var_os("PRESSLUFT_E2E").is_none() {
        let sampler = Sampler::start(&app);
        let node2 = second_node(&app).await;
        jobs_of_one_node_never_overlap(&app, &sampler.stop().await).await;
        let (_, jobs) = app.get_json(&format!("/api/jobs?node_id={node2}")).await;
        assert!(jobs.as_array().unwrap().len() >= 4, "{jobs}");
        return;
    }
    let (_, key) = app.get_json("/api/nodes/ssh-public-key").await;
    let _authorized = crate::e2e::AuthorizedKey::add(key["public_key"].as_str().unwrap());
    let host = post_job(
        &app,
        "/api/nodes",
        json!({"name": "ci-host", "hostname": "127.0.0.1", "public_ip": "127.0.0.1", "is_local": true}),
    )
    .await;
    let host_flow = async {
        let (job, output) = finished_within(&app, &host, Duration::from_secs(25 * 60)).await;
        assert_eq!(job["status"], "succeeded", "{job}\n{output}");
    };
    alongside(&app, host_flow).await;
}

/// At least once, a job of node 2 was running while a job of another node was.
fn ran_beside_the_host(seen: &Seen, node2: &str) {
    let beside = seen
        .across_nodes
        .iter()
        .find(|sample| sample.iter().any(|(node, _)| node == node2));
    assert!(
        beside.is_some(),
        "in {} samples, no job of node 2 ran while one of another node did",
        seen.samples
    );
    eprintln!(
        "second node: {} of {} samples had jobs of two nodes running at once, e.g. {beside:?}",
        seen.across_nodes.len(),
        seen.samples
    );
}

/// `(id, node_id, started_at, finished_at)` of a finished job.
type Job = (String, String, String, String);

/// No two jobs of one node ran at once: never in the samples, and in the stored order (each
/// job of a node started after the one before it finished, by the app's clock).
async fn jobs_of_one_node_never_overlap(app: &TestApp, seen: &Seen) -> Vec<Job> {
    assert!(
        seen.same_node.is_empty(),
        "jobs of one node ran at once: {:?}",
        seen.same_node
    );
    let jobs: Vec<Job> = sqlx::query_as(
        "SELECT id, node_id, started_at, finished_at FROM jobs
          WHERE started_at IS NOT NULL AND finished_at IS NOT NULL
          ORDER BY node_id, started_at",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    for pair in jobs.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a.1 == b.1 {
            assert!(
                b.2 >= a.3,
                "jobs {} and {} of node {} overlapped: {a:?} {b:?}",
                a.0,
                b.0,
                a.1
            );
        }
    }
    eprintln!(
        "jobs checked for overlap: {} on {} nodes",
        jobs.len(),
        jobs.iter()
            .map(|j| &j.1)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    jobs
}
