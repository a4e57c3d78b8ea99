//! Deploy benchmark (issue 12; figures in docs/benchmarks.md), run as root on a provisioned
//! node with `cargo bench --bench deploy`:
//!
//! creates a site through the real site service and job engine, deploys the theme of
//! `tests/e2e/theme-repo.sh` from a local git repository (`file://`) and makes it the active
//! theme, then times, through the real deploy service (what the API handler calls), the queue,
//! Ansible over SSH, the node helper and the health gate:
//!
//! 1. **deploy → healthy**: a small theme change (branch `v2`), from the request to the new
//!    release `healthy` and the environment `active` again (target: under 10 s);
//! 2. **health failure → previous release serving**: a theme that fatals (branch `broken`),
//!    from the moment the health check has failed (its job's `finished_at`) to the site
//!    answering 200 with the previous release's page again (target: under 10 s); the whole
//!    request → rolled back time is printed too.
//!
//! Baseline, in the same run: the same change done by hand the fastest way (`git clone` of the
//! ref, copy of the release, `ln -sfn` + `mv -T`, PHP-FPM reload) — what the product adds on
//! top of it is the queue, the SSH round trips and the health checks. Everything created is
//! removed at the end.

mod common;

use std::time::{Duration, Instant};

use common::{remove_site, sh, timed, wait_for};
use pressluft::deploys::DeployInput;
use pressluft::store::JobRecord;

const REPO: &str = "/var/tmp/pressluft-bench-repos/theme";
const THEME: &str = "pressluft-e2e";

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // `cargo test --all-targets` builds benches; only `cargo bench` runs them.
    }
    if !common::node_ready("deploy") {
        return;
    }
    tokio::runtime::Runtime::new().unwrap().block_on(run());
}

/// The page the environment serves (through nginx on 127.0.0.1 with its preview host).
fn page(preview_url: &str) -> (u16, String) {
    let host = pressluft::sites::layout::url_host(preview_url);
    let out = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "--max-time",
            "10",
            "--resolve",
            &format!("{host}:80:127.0.0.1"),
            &format!("http://{host}/"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// The follow-up of `parent`, once it is enqueued.
async fn follow_up(state: &pressluft::state::AppState, parent: &str) -> JobRecord {
    loop {
        let id: Option<(String,)> = pressluft::store::query_as(
            "SELECT id FROM jobs WHERE parent_job_id = ? ORDER BY created_at LIMIT 1",
        )
        .bind(parent)
        .fetch_optional(state.store.pool())
        .await
        .unwrap();
        if let Some((id,)) = id {
            return state.store.get_job(&id).await.unwrap().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the job ends, whatever its outcome.
async fn ended(state: &pressluft::state::AppState, id: &str) -> JobRecord {
    loop {
        let job = state.store.get_job(id).await.unwrap().unwrap();
        if matches!(job.status.as_str(), "succeeded" | "failed" | "cancelled") {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn deploy(bench: &common::Bench, env_id: &str, branch: &str) -> String {
    bench
        .state
        .deploys
        .deploy(
            &bench.actor,
            env_id,
            DeployInput {
                source_type: "git".into(),
                source_ref: format!("file://{REPO}#{branch}"),
            },
        )
        .await
        .unwrap()
}

/// The manual baseline: clone the ref, copy the live release, put the theme in, switch, reload.
fn baseline(env_root: &str, user: &str, php: &str) -> Duration {
    let name = format!("baseline-{}", std::process::id());
    let started = Instant::now();
    let tmp = format!("/var/tmp/{name}");
    sh(
        "git",
        &[
            "clone",
            "-q",
            "--depth",
            "1",
            "-b",
            "v2",
            &format!("file://{REPO}"),
            &tmp,
        ],
    );
    let release = format!("{env_root}/releases/{name}");
    sh("cp", &["-a", &format!("{env_root}/current/"), &release]);
    sh(
        "cp",
        &[
            "-a",
            &format!("{tmp}/themes/{THEME}/."),
            &format!("{release}/wp-content/themes/{THEME}/"),
        ],
    );
    sh("chown", &["-R", &format!("{user}:www-data"), &release]);
    let live = sh("readlink", &[&format!("{env_root}/current")]);
    sh(
        "ln",
        &[
            "-sfn",
            &format!("releases/{name}"),
            &format!("{env_root}/current.tmp"),
        ],
    );
    sh(
        "mv",
        &[
            "-T",
            &format!("{env_root}/current.tmp"),
            &format!("{env_root}/current"),
        ],
    );
    sh("service", &[&format!("php{php}-fpm"), "reload"]);
    let took = started.elapsed();
    // Put the product's release back and remove the baseline's.
    sh(
        "ln",
        &["-sfn", live.trim(), &format!("{env_root}/current.tmp")],
    );
    sh(
        "mv",
        &[
            "-T",
            &format!("{env_root}/current.tmp"),
            &format!("{env_root}/current"),
        ],
    );
    sh("rm", &["-rf", &release, &tmp]);
    took
}

async fn run() {
    sh(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/theme-repo.sh"),
        &[REPO],
    );
    let bench = common::Bench::start().await;
    let (site_id, prod) = bench.create_site("Deploy bench").await;
    let env_root = format!("/var/www/sites/{site_id}/{}", prod.id);
    let uuid8 = &prod.id[..8];
    let user = format!("pl_{uuid8}");
    let php = sh("sh", &["-c", "ls /etc/php | sort -V | tail -1"])
        .trim()
        .to_string();

    // The theme made the active one, then deployed (the deploy purges the caches, so the
    // pages after it render the theme).
    sh(
        "mysql",
        &[
            &format!("wp_{uuid8}"),
            "-e",
            &format!("UPDATE wp_options SET option_value = '{THEME}' WHERE option_name IN ('template', 'stylesheet')"),
        ],
    );
    let first = deploy(&bench, &prod.id, "good").await;
    wait_for(&bench.state, &first).await;
    wait_for(&bench.state, &follow_up(&bench.state, &first).await.id).await;
    let (code, body) = page(&prod.preview_url);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("PRESSLUFT-THEME good"), "{body}");

    println!("deploy benchmark (site {site_id})");
    let manual = timed("baseline: clone, copy, switch, reload by hand", || {
        baseline(&env_root, &user, &php);
    });

    // 1. deploy → healthy.
    let started = Instant::now();
    let job = deploy(&bench, &prod.id, "v2").await;
    let deployed = wait_for(&bench.state, &job).await;
    let health = wait_for(&bench.state, &follow_up(&bench.state, &job).await.id).await;
    let to_healthy = started.elapsed();
    let (code, body) = page(&prod.preview_url);
    assert!(
        code == 200 && body.contains("PRESSLUFT-THEME v2"),
        "{code} {body}"
    );
    println!(
        "  deploy → healthy: {:.1} s (target < 10 s; env_deploy job {}, health_check job {}; baseline {:.1} s)",
        to_healthy.as_secs_f64(),
        job_seconds(&deployed),
        job_seconds(&health),
        manual.as_secs_f64()
    );

    // 2. health failure → previous release serving.
    let started = Instant::now();
    let job = deploy(&bench, &prod.id, "broken").await;
    wait_for(&bench.state, &job).await;
    let health = ended(&bench.state, &follow_up(&bench.state, &job).await.id).await;
    assert_eq!(
        health.status.as_str(),
        "failed",
        "the broken theme passed its health check"
    );
    let failed_at = pressluft::clock::parse_ts(health.finished_at.as_deref().unwrap()).unwrap();
    let serving = loop {
        let (code, body) = page(&prod.preview_url);
        if code == 200 && body.contains("PRESSLUFT-THEME v2") {
            break time::OffsetDateTime::now_utc();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let rollback = ended(&bench.state, &follow_up(&bench.state, &health.id).await.id).await;
    assert_eq!(rollback.status.as_str(), "succeeded");
    println!(
        "  health failure → previous release serving: {:.1} s (target < 10 s; release_rollback job {}); request → rolled back {:.1} s",
        (serving - failed_at).as_seconds_f64(),
        job_seconds(&rollback),
        started.elapsed().as_secs_f64()
    );

    bench.finish().await;
    let envs = vec![prod.id.clone()];
    remove_site(&site_id, &envs);
    sh("rm", &["-rf", REPO]);
}

fn job_seconds(job: &JobRecord) -> String {
    let ran = pressluft::clock::parse_ts(job.finished_at.as_deref().unwrap()).unwrap()
        - pressluft::clock::parse_ts(job.started_at.as_deref().unwrap()).unwrap();
    format!("{:.1} s", ran.as_seconds_f64())
}
