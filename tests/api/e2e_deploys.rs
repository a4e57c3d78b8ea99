//! `env_deploy` for real on this machine (called from `e2e_sites.rs` while the site exists),
//! started through the deploy service as the API will: a theme from a local git repository
//! over `file://` made the active theme and served; the same repository over SSH with the
//! site's deploy key; `.tar.gz` archives over HTTP (a local server; the flow runs with
//! `allow_loopback_sources`) and from a node path; a missing ref failing with
//! `SOURCE_FETCH_FAILED` with `current` and the release directories unchanged.
//!
//! Without the engine hooks (i12-engine) the release rows are not recorded here: the
//! assertions are on the node (the `current` link, the release directories, HTTP) and on the
//! job's outcome.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use pressluft::deploys::DeployInput;
use pressluft::sites::Actor;
use serde_json::Value;

use crate::e2e::AuthorizedKey;
use crate::helpers::{run, wait_for_job, TestApp};

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

async fn deploy(app: &TestApp, actor: &Actor, env_id: &str, kind: &str, source: &str) -> String {
    app.state
        .deploys
        .deploy(
            actor,
            env_id,
            DeployInput {
                source_type: kind.into(),
                source_ref: source.into(),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("deploy {source}: {e:?}"))
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
    let (job, output) = finish(app, job_id).await;
    assert_eq!(job["status"], "succeeded", "{job}\n{output}");
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
    let (user_id,): (String,) = sqlx::query_as("SELECT id FROM users LIMIT 1")
        .fetch_one(app.store.pool())
        .await
        .unwrap();
    let actor = Actor {
        user_id,
        email: crate::helpers::ADMIN_EMAIL.into(),
    };

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
    let job = deploy(app, &actor, env_id, "git", &format!("{repo_url}#main")).await;
    assert_live(app, &job, &env_root, &before, &host, "PL-E2E-DEPLOY-GIT-1").await;

    // (2) git over SSH with the site's deploy key, root's repository on this machine.
    write_theme(&repo, "PL-E2E-DEPLOY-SSH-2");
    git(&repo, &["commit", "--quiet", "-am", "ssh"]);
    let public = app.state.deploys.deploy_key(site_id).await.unwrap();
    let authorized = AuthorizedKey::add(public.trim());
    let before = current(&env_root);
    let job = deploy(
        app,
        &actor,
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
        &actor,
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
        &actor,
        env_id,
        "upload",
        www.join("node.tar.gz").to_str().unwrap(),
    )
    .await;
    assert_live(app, &job, &env_root, &before, &host, "PL-E2E-DEPLOY-PATH-4").await;

    // (4) a missing ref: SOURCE_FETCH_FAILED, nothing changed.
    let before = current(&env_root);
    let dirs = releases(&env_root);
    let job = deploy(
        app,
        &actor,
        env_id,
        "git",
        &format!("{repo_url}#no-such-ref"),
    )
    .await;
    let (job, output) = finish(app, &job).await;
    assert_eq!(job["status"], "failed", "{job}\n{output}");
    assert_eq!(job["error_code"], "SOURCE_FETCH_FAILED", "{job}");
    let message = job["error_message"].as_str().unwrap_or_default();
    assert!(message.contains("no-such-ref"), "{message}");
    assert_eq!(current(&env_root), before, "current unchanged");
    assert_eq!(releases(&env_root), dirs, "no release directory left");
    let (code, body) = page(&host);
    assert_eq!(code, "200");
    assert!(body.contains("PL-E2E-DEPLOY-PATH-4"), "{body}");

    let _ = std::fs::remove_dir_all(REPOS);
}
