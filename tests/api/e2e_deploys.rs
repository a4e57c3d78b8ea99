//! `env_deploy` for real on this machine (called from `e2e_sites.rs` while the site exists),
//! started through the deploy service as the API will: a theme from a local git repository
//! over `file://` made the active theme and served; the same repository over SSH with the
//! site's deploy key; `.tar.gz` archives over HTTP (a local server; the flow runs with
//! `allow_loopback_sources`) and from a node path; a missing ref failing with
//! `SOURCE_FETCH_FAILED` with `current` and the release directories unchanged.
//!
//! Every deploy goes through `POST /api/environments/{id}/deploy` and its health gate: a good
//! one ends with its release recorded, current and `healthy`; a theme whose `functions.php`
//! fatals (HTTP 500) is marked `unhealthy` and rolled back automatically — the previous
//! release is current and serves 200 again, and the release list (the timeline) shows both.
//! The node side of a deploy killed mid-build is retried and converges: `current` is the
//! recorded current release, and every release directory is a recorded release. Last, the
//! dashboard's browser test deploys a good and a broken ref and watches the gate and the
//! rollback appear live.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::e2e::AuthorizedKey;
use crate::helpers::{finished, follow_up, gate_ended, post_job, run, wait_for_job, TestApp};

const REPOS: &str = "/var/tmp/pressluft-e2e-repos";
const THEME: &str = "pl-e2e-theme";

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Pressluft E2E",
            "-c",
            "user.email=e2e@example.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Writes the theme (wp-content layout) into `dir` printing `marker`.
fn write_theme(dir: &Path, marker: &str) {
    let theme = dir.join("themes").join(THEME);
    std::fs::create_dir_all(&theme).unwrap();
    std::fs::write(
        theme.join("style.css"),
        format!("/*\nTheme Name: Pressluft E2E\nVersion: 1.0\n*/\n/* {marker} */\n"),
    )
    .unwrap();
    std::fs::write(
        theme.join("index.php"),
        format!("<?php\necho '<html><body>{marker}</body></html>';\n"),
    )
    .unwrap();
}

/// Runs a job to its end, retries included (the backoff skipped with the test clock).
async fn finish(app: &TestApp, job_id: &str) -> (Value, String) {
    loop {
        let job = wait_for_job(app, job_id, Duration::from_secs(10 * 60)).await;
        if job["status"] == "queued" {
            app.clock.advance(time::Duration::minutes(16));
            app.state.engine.enqueued();
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let output = app.text(&format!("/api/jobs/{job_id}/output")).await;
        return (job, output);
    }
}

/// `POST /api/environments/{id}/deploy`; the job's id.
async fn deploy(app: &TestApp, env_id: &str, kind: &str, source: &str) -> String {
    // The test clock stands still: a second apart, releases list in the order they were made.
    app.clock.advance(time::Duration::seconds(1));
    post_job(
        app,
        &format!("/api/environments/{env_id}/deploy"),
        json!({"source_type": kind, "source_ref": source}),
    )
    .await
}

/// The environment's releases as the API lists them (newest first).
async fn recorded(app: &TestApp, env_id: &str) -> Vec<Value> {
    let (status, list) = app
        .get_json(&format!("/api/environments/{env_id}/releases"))
        .await;
    assert_eq!(status, 200, "{list}");
    list.as_array().unwrap().clone()
}

fn current(env_root: &str) -> String {
    std::fs::read_link(format!("{env_root}/current"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn releases(env_root: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(format!("{env_root}/releases"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The page at the environment's preview host, from 127.0.0.1.
fn page(host: &str) -> (String, String) {
    let out = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--max-time",
            "20",
            "--write-out",
            "\n%{http_code}",
            "--resolve",
            &format!("{host}:80:127.0.0.1"),
            &format!("http://{host}/?pl-e2e={}", rand_suffix()),
        ])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (code.to_string(), body.to_string())
}

fn rand_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..8].to_string()
}

/// A job that succeeded made a new release current, and the site serves `marker`.
async fn assert_live(
    app: &TestApp,
    job_id: &str,
    env_root: &str,
    before: &str,
    host: &str,
    marker: &str,
) {
    let (gate, rollback) = gate_ended(app, job_id).await;
    assert!(rollback.is_none(), "the deploy passed its gate: {gate}");
    let now = current(env_root);
    assert_ne!(now, before, "current moved");
    assert!(now.starts_with("releases/"), "{now}");
    let release = format!("{env_root}/{now}");
    assert!(
        Path::new(&format!("{release}/wp-content/themes/{THEME}/index.php")).is_file(),
        "the theme is in the release"
    );
    assert!(
        !Path::new(&format!("{release}/.git")).exists(),
        "no .git in a release"
    );
    let (code, body) = page(host);
    assert_eq!(code, "200", "{body}");
    assert!(body.contains(marker), "{marker} served: {body}");
    // Recorded: the newest release is this job's, current and healthy.
    let env_id = env_root.rsplit('/').next().unwrap();
    let list = recorded(app, env_id).await;
    let newest = &list[0];
    assert_eq!(newest["job_id"], job_id, "{newest}");
    assert_eq!(newest["health_status"], "healthy", "{newest}");
    assert_eq!(
        format!("{env_root}/{now}"),
        newest["path"].as_str().unwrap()
    );
    let (_, env) = app.get_json(&format!("/api/environments/{env_id}")).await;
    assert_eq!(env["current_release_id"], newest["id"]);
    assert_eq!(env["status"], "active");
}

/// An unused TCP port on 127.0.0.1.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub async fn deploys(app: &TestApp, site_id: &str, env_id: &str) {
    let env_root = format!("/var/www/sites/{site_id}/{env_id}");
    let (_, env) = app.get_json(&format!("/api/environments/{env_id}")).await;
    let preview = env["preview_url"].as_str().unwrap();
    let host = pressluft::sites::layout::url_host(preview).to_string();

    // A repository owned by root, as an operator's.
    let _ = std::fs::remove_dir_all(REPOS);
    let repo = Path::new(REPOS).join("theme");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "--quiet"]);
    write_theme(&repo, "PL-E2E-DEPLOY-GIT-1");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "--quiet", "-m", "theme"]);
    let repo_url = format!("file://{}", repo.display());

    // The theme made active first: the deploy's purge of the object cache and the FastCGI
    // cache makes the next page render it.
    let db = format!("wp_{}", &env_id[..8]);
    run(
        "mysql",
        &[
            "-e",
            &format!(
                "UPDATE {db}.wp_options SET option_value = '{THEME}' \
                 WHERE option_name IN ('template', 'stylesheet')"
            ),
        ],
    );

    // (1) git over file://, a branch.
    let before = current(&env_root);
    let job = deploy(app, env_id, "git", &format!("{repo_url}#main")).await;
    assert_live(app, &job, &env_root, &before, &host, "PL-E2E-DEPLOY-GIT-1").await;

    // (2) git over SSH with the site's deploy key, root's repository on this machine.
    write_theme(&repo, "PL-E2E-DEPLOY-SSH-2");
    git(&repo, &["commit", "--quiet", "-am", "ssh"]);
    let public = app.state.deploys.deploy_key(site_id).await.unwrap();
    let authorized = AuthorizedKey::add(public.trim());
    let before = current(&env_root);
    let job = deploy(
        app,
        env_id,
        "git",
        &format!("ssh://root@127.0.0.1{}#main", repo.display()),
    )
    .await;
    assert_live(app, &job, &env_root, &before, &host, "PL-E2E-DEPLOY-SSH-2").await;
    drop(authorized);

    // (3) archives: .tar.gz over HTTP from a local server, then from a node path.
    let www = Path::new(REPOS).join("www");
    for (name, marker) in [
        ("http.tar.gz", "PL-E2E-DEPLOY-HTTP-3"),
        ("node.tar.gz", "PL-E2E-DEPLOY-PATH-4"),
    ] {
        let content = Path::new(REPOS)
            .join(format!("content-{name}"))
            .join("wp-content");
        write_theme(&content, marker);
        std::fs::create_dir_all(&www).unwrap();
        run(
            "tar",
            &[
                "-czf",
                www.join(name).to_str().unwrap(),
                "-C",
                content.parent().unwrap().to_str().unwrap(),
                "wp-content",
            ],
        );
    }
    let port = free_port();
    let server = Server(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .current_dir(&www)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m http.server"),
    );
    for _ in 0..50 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = current(&env_root);
    let job = deploy(
        app,
        env_id,
        "upload",
        &format!("http://127.0.0.1:{port}/http.tar.gz"),
    )
    .await;
    assert_live(app, &job, &env_root, &before, &host, "PL-E2E-DEPLOY-HTTP-3").await;
    drop(server);
    let before = current(&env_root);
    let job = deploy(
        app,
        env_id,
        "upload",
        www.join("node.tar.gz").to_str().unwrap(),
    )
    .await;
    assert_live(app, &job, &env_root, &before, &host, "PL-E2E-DEPLOY-PATH-4").await;

    // (3b) a source with composer.json: `composer install --no-dev` ran in the release.
    // Composer is optional on nodes (provisioning.md); the operator installs it, as here.
    run(
        "apt-get",
        &[
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "composer",
        ],
    );
    git(&repo, &["checkout", "--quiet", "-b", "composer"]);
    write_theme(&repo, "PL-E2E-DEPLOY-COMPOSER-5");
    std::fs::write(
        repo.join("composer.json"),
        r#"{"name": "pressluft/e2e-theme", "require": {}}"#,
    )
    .unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "--quiet", "-m", "composer"]);
    git(&repo, &["checkout", "--quiet", "main"]);
    let before = current(&env_root);
    let job = deploy(app, env_id, "git", &format!("{repo_url}#composer")).await;
    assert_live(
        app,
        &job,
        &env_root,
        &before,
        &host,
        "PL-E2E-DEPLOY-COMPOSER-5",
    )
    .await;
    let release = format!("{env_root}/{}", current(&env_root));
    assert!(
        Path::new(&format!("{release}/wp-content/vendor/autoload.php")).is_file(),
        "composer install ran in the release"
    );

    // (4) a missing ref: SOURCE_FETCH_FAILED, nothing changed.
    let before = current(&env_root);
    let dirs = releases(&env_root);
    let job = deploy(app, env_id, "git", &format!("{repo_url}#no-such-ref")).await;
    let (job, output) = finish(app, &job).await;
    assert_eq!(job["status"], "failed", "{job}\n{output}");
    assert_eq!(job["error_code"], "SOURCE_FETCH_FAILED", "{job}");
    let message = job["error_message"].as_str().unwrap_or_default();
    assert!(message.contains("no-such-ref"), "{message}");
    assert_eq!(current(&env_root), before, "current unchanged");
    assert_eq!(releases(&env_root), dirs, "no release directory left");
    let (code, body) = page(&host);
    assert_eq!(code, "200");
    assert!(body.contains("PL-E2E-DEPLOY-COMPOSER-5"), "{body}");
    let (_, env) = app.get_json(&format!("/api/environments/{env_id}")).await;
    assert_eq!(
        env["status"], "active",
        "a pre-mutation failure changes nothing"
    );

    // (5) a theme whose functions.php fatals: unhealthy, rolled back automatically.
    let healthy_before = recorded(app, env_id).await[0].clone();
    let before = current(&env_root);
    git(&repo, &["checkout", "--quiet", "-b", "broken"]);
    std::fs::write(
        repo.join("themes").join(THEME).join("functions.php"),
        "<?php\npressluft_e2e_undefined_function();\n",
    )
    .unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "--quiet", "-m", "broken"]);
    git(&repo, &["checkout", "--quiet", "main"]);
    let job = deploy(app, env_id, "git", &format!("{repo_url}#broken")).await;
    let (gate, rollback) = gate_ended(app, &job).await;
    let rollback = rollback.expect("the broken theme is rolled back");
    assert!(
        gate["error_message"].as_str().unwrap().contains("http"),
        "{gate}"
    );
    assert_eq!(
        current(&env_root),
        before,
        "current points at the previous release"
    );
    let (code, body) = page(&host);
    assert_eq!(code, "200", "the previous release serves again: {body}");
    assert!(body.contains("PL-E2E-DEPLOY-COMPOSER-5"), "{body}");
    let list = recorded(app, env_id).await;
    assert_eq!(list[0]["job_id"], job, "{list:?}");
    assert_eq!(list[0]["health_status"], "unhealthy");
    assert!(
        list[0]["notes"].as_str().unwrap().contains("rolled back"),
        "{}",
        list[0]
    );
    assert_eq!(list[1]["id"], healthy_before["id"]);
    assert_eq!(list[1]["health_status"], "healthy");
    let (_, env) = app.get_json(&format!("/api/environments/{env_id}")).await;
    assert_eq!(env["current_release_id"], healthy_before["id"]);
    assert_eq!(env["status"], "active");
    let (_, rollback_job) = app
        .get_json(&format!("/api/jobs/{}", rollback["id"].as_str().unwrap()))
        .await;
    assert_eq!(rollback_job["parent_job_id"], gate["id"]);

    // (6) the node side killed mid-deploy: retried, converged.
    killed_mid_deploy_converges(app, env_id, &env_root, &format!("{repo_url}#main")).await;

    // (7) the dashboard: deploy a good and a broken ref, watch the gate and the rollback.
    crate::e2e::browser_script(
        app,
        "deploys.mjs",
        &[
            ("PRESSLUFT_ENVIRONMENT_ID", env_id),
            ("PRESSLUFT_GOOD_SOURCE", &format!("{repo_url}#main")),
            ("PRESSLUFT_BROKEN_SOURCE", &format!("{repo_url}#broken")),
            ("PRESSLUFT_WAIT_HEALTH", "1"),
        ],
    )
    .await;

    let _ = std::fs::remove_dir_all(REPOS);
}

/// The pid of a running `pressluft node release-deploy`, if any.
fn release_deploy_pid() -> Option<i32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: i32 = e.file_name().to_str()?.parse().ok()?;
        let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        (args.len() >= 3 && args[1] == b"node" && args[2] == b"release-deploy").then_some(pid)
    })
}

/// A deploy whose node helper is killed while it builds the release (as a crash of the node
/// or of the connection would): the attempt fails, the retry converges — `current` points at
/// the release the control plane records as current, no half-built release is left, and
/// every release directory is a recorded release.
async fn killed_mid_deploy_converges(app: &TestApp, env_id: &str, env_root: &str, source: &str) {
    let job = deploy(app, env_id, "git", source).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let pid = loop {
        if let Some(pid) = release_deploy_pid() {
            break pid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the deploy never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // Killed once the release is being built, or as soon as seen if the build is not reached.
    let building = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < building
        && !releases(env_root).iter().any(|r| r.ends_with(".build"))
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // SAFETY: kill(2) with a pid read from /proc; no memory is involved.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let first = wait_for_job(app, &job, Duration::from_secs(300)).await;
    assert_eq!(
        first["status"], "queued",
        "the killed attempt is retried: {first}"
    );
    assert!(!first["error_code"].is_null(), "{first}");
    let (done, output) = finish(app, &job).await;
    assert_eq!(done["status"], "succeeded", "{done}\n{output}");
    assert_eq!(done["attempt_count"], 2, "{done}");
    let gate = follow_up(app, &job).await;
    let (gate, output) = finished(app, &gate).await;
    assert_eq!(gate["status"], "succeeded", "{gate}\n{output}");
    let (_, env) = app.get_json(&format!("/api/environments/{env_id}")).await;
    assert_eq!(env["status"], "active");
    let list = recorded(app, env_id).await;
    let current_row = list
        .iter()
        .find(|r| r["id"] == env["current_release_id"])
        .unwrap();
    assert_eq!(
        current_row["job_id"],
        job.as_str(),
        "one release for the retried job"
    );
    assert_eq!(
        list.iter().filter(|r| r["job_id"] == job.as_str()).count(),
        1,
        "{list:?}"
    );
    assert_eq!(
        format!("{env_root}/{}", current(env_root)),
        current_row["path"].as_str().unwrap(),
        "current is the recorded current release"
    );
    let left: Vec<String> = std::fs::read_dir("/var/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("pressluft-deploy-"))
        .collect();
    assert!(
        left.is_empty(),
        "the killed run's fetch directory is swept by the retry: {left:?}"
    );
    let recorded_paths: Vec<&str> = list.iter().filter_map(|r| r["path"].as_str()).collect();
    for dir in releases(env_root) {
        assert!(
            !dir.ends_with(".build"),
            "a half-built release is left: {dir}"
        );
        assert!(
            recorded_paths.contains(&format!("{env_root}/releases/{dir}").as_str()),
            "{dir} is on the node but not recorded"
        );
    }
}
