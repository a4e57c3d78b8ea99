//! Single-server end-to-end: this machine is the node. Only the HTTP API is driven: register
//! the local node, provision it for real over SSH to 127.0.0.1, check the host, provision again
//! and expect no change. Runs when PRESSLUFT_E2E=1 (the test command sets it after
//! `scripts/e2e-setup`); it installs and configures nginx, PHP-FPM, MariaDB, Redis and more.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{finished, finished_within, post_job, spawn_app_with, TestApp};

/// Authorizes the control plane's key for root while alive (as install.sh does).
pub struct AuthorizedKey(String);

impl AuthorizedKey {
    pub fn add(public_key: &str) -> Self {
        let line = format!("from=\"127.0.0.1,::1\" {public_key}");
        std::fs::create_dir_all("/root/.ssh").unwrap();
        let path = "/root/.ssh/authorized_keys";
        let mut keys = std::fs::read_to_string(path).unwrap_or_default();
        if !keys.is_empty() && !keys.ends_with('\n') {
            keys.push('\n');
        }
        keys.push_str(&line);
        keys.push('\n');
        std::fs::write(path, keys).unwrap();
        AuthorizedKey(line)
    }
}

impl Drop for AuthorizedKey {
    fn drop(&mut self) {
        let path = "/root/.ssh/authorized_keys";
        if let Ok(keys) = std::fs::read_to_string(path) {
            let kept: String = keys
                .lines()
                .filter(|l| *l != self.0)
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = std::fs::write(path, kept);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_this_machine_through_the_api() {
    if std::env::var_os("PRESSLUFT_E2E").is_none() {
        eprintln!("skipped: set PRESSLUFT_E2E=1 (the test command does) to provision this machine");
        return;
    }
    let app = spawn_app_with(
        |c| {
            // Two: the second node's jobs run beside the host node's (one per node still holds).
            c.workers = 2;
            c.node_binary = Some(env!("CARGO_BIN_EXE_pressluft").into());
            // ufw would also close the ports this sandbox's own tooling uses; the firewall
            // tasks are covered by the playbook's own checks (ansible/README.md).
            c.manage_firewall = false;
            // The S3 test server (backups) listens on loopback.
            c.allow_loopback_sources = true;
        },
        None,
    )
    .await;
    app.login().await;
    // No scheduled backups in this flow: one would hold the site between its steps (the
    // backup jobs' own end-to-end tests make backups on purpose).
    app.exec(
        "INSERT INTO settings (key, value, updated_at) VALUES ('backup_schedule_hours', '0', ?)
           ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&app.now()],
    )
    .await;
    crate::e2e_cphttps::prepare(&app).await;
    let (_, key) = app.get_json("/api/nodes/ssh-public-key").await;
    let _authorized = AuthorizedKey::add(key["public_key"].as_str().unwrap());

    let job_id = post_job(
        &app,
        "/api/nodes",
        json!({"name": "ci-host", "hostname": "127.0.0.1", "public_ip": "127.0.0.1", "is_local": true}),
    )
    .await;
    let (job, output) = finished_within(&app, &job_id, Duration::from_secs(25 * 60)).await;
    assert_eq!(job["status"], "succeeded", "{job}\n{output}");
    let node_id = job["node_id"].as_str().unwrap().to_string();
    let (_, node) = app.get_json(&format!("/api/nodes/{node_id}")).await;
    assert_eq!(node["status"], "active", "{node}");
    assert_eq!(node["firewall_status"], "skipped");

    crate::helpers::run(
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/check-node.sh"),
        &[],
    );

    // Provision again from the dashboard, in a real browser, watching the output live.
    let again = provision_again_in_browser(&app, &node_id).await;
    let (job, output) = finished(&app, &again).await;
    assert_eq!(job["status"], "succeeded", "{output}");
    let recap = output
        .lines()
        .skip_while(|l| !l.starts_with("PLAY RECAP"))
        .nth(1)
        .unwrap_or("");
    assert!(
        recap.contains("changed=0") && recap.contains("failed=0"),
        "second run changed something: {recap}\nchanged tasks: {:?}\n{output}",
        changed_tasks(&output)
    );

    crate::e2e_second_node::alongside(&app, crate::e2e_sites::sites_on_this_machine(&app)).await;
}

/// The TASK lines of an ansible-playbook output followed by a `changed:` line: what a run that
/// should change nothing changed (CI shows only a part of the output).
fn changed_tasks(output: &str) -> Vec<&str> {
    let mut task = "";
    let mut changed = Vec::new();
    for line in output.lines() {
        if line.starts_with("TASK [") || line.starts_with("RUNNING HANDLER [") {
            task = line.trim_end_matches(['*', ' ']);
        } else if line.starts_with("changed:") && changed.last() != Some(&task) {
            changed.push(task);
        }
    }
    changed
}

/// Runs tests/browser/nodes.mjs; returns the id of the job the browser started.
async fn provision_again_in_browser(app: &TestApp, node_id: &str) -> String {
    let stdout = browser_script(app, "nodes.mjs", &[("PRESSLUFT_NODE_ID", node_id)]).await;
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("JOB "))
        .expect("the browser reported its job")
        .to_string()
}

/// Runs a browser script of tests/browser against the app, logged in as the admin; returns
/// its standard output after checking it passed.
pub async fn browser_script(app: &TestApp, script: &str, env: &[(&str, &str)]) -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");
    let mut cmd = std::process::Command::new("node");
    cmd.arg(script)
        .current_dir(dir)
        .env("PRESSLUFT_URL", &app.base)
        .env("PRESSLUFT_EMAIL", crate::helpers::ADMIN_EMAIL)
        .env("PRESSLUFT_PASSWORD", crate::helpers::ADMIN_PASSWORD)
        .env(
            "PRESSLUFT_SCREENSHOTS",
            std::env::var("PRESSLUFT_SCREENSHOTS").unwrap_or_default(),
        );
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("node runs"))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains("BROWSER_TEST_PASSED"),
        "browser script {script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Starts (or finds) the ACME test servers (`scripts/acme-test-server`: BIND and Pebble) and
/// reads their facts (`/var/lib/pressluft-test/acme/env`: directory URL, CA bundle, TSIG key).
pub fn acme_servers() -> std::collections::HashMap<String, String> {
    crate::helpers::run(
        concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/acme-test-server"),
        &[],
    );
    std::fs::read_to_string("/var/lib/pressluft-test/acme/env")
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
