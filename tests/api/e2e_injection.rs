//! Issue 9, item 1 end to end: a site and an environment whose names are Ansible template
//! payloads are created on this machine (control plane and node at once) through the API.
//! Nothing the payloads ask for may run — no marker file appears, neither where an absolute
//! path points nor in the working directories of the control plane or the node — and WordPress
//! stores the literal text as its `blogname`. Called from `e2e_sites::sites_on_this_machine`
//! (the WordPress source is set there).

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::helpers::{post_job, run, succeeded};

const MARKER: &str = "pl-injected-";

/// Every `pl-injected-*` file in the places a payload would write to: /tmp, the home of the
/// user running the control plane and Ansible (root here), the node's site tree, the control
/// plane's data and Ansible directories.
fn markers(app: &TestApp) -> Vec<String> {
    let config = &app.state.config;
    let mut dirs = vec![
        "/tmp".to_string(),
        "/root".to_string(),
        "/var/www/sites".to_string(),
        "/var/lib/pressluft".to_string(),
    ];
    for d in [&config.data_dir, &config.ansible_dir, &config.log_dir] {
        dirs.push(d.display().to_string());
    }
    dirs.retain(|d| Path::new(d).is_dir());
    let out = Command::new("find")
        .args(&dirs)
        .args(["-maxdepth", "4", "-name", &format!("{MARKER}*")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn blogname(environment_id: &str) -> String {
    let query = format!(
        "SELECT option_value FROM wp_{}.wp_options WHERE option_name = 'blogname'",
        &environment_id[..8]
    );
    let out = run(
        "mysql",
        &["--batch", "--skip-column-names", "--raw", "-e", &query],
    );
    // WordPress stores blogname through esc_html (sanitize_option): undo exactly that.
    out.trim_end_matches('\n')
        .replace("&#039;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

async fn create_and_wait(app: &TestApp, path: &str, body: Value) -> Value {
    succeeded(app, &post_job(app, path, body).await).await
}

pub async fn user_data_is_never_templated(app: &TestApp) {
    let before = markers(app);
    assert!(
        before.is_empty(),
        "marker files exist before the test (remove them): {before:?}"
    );
    // An expression (absolute and relative marker) as the site name; a statement and an
    // expression inside a block as the environment name.
    let site_name = format!("{{{{ lookup('pipe','touch /tmp/{MARKER}site {MARKER}rel') }}}}");
    let env_name = format!(
        "{{% if lookup('pipe','touch /tmp/{MARKER}env {MARKER}rel-env') %}}{{{{ 7 * 7 }}}}{{% endif %}}"
    );
    let created = create_and_wait(
        app,
        "/api/sites",
        json!({"name": site_name, "slug": "e2e-injection"}),
    )
    .await;
    let site_id = created["site_id"].as_str().unwrap().to_string();
    let prod_id = created["environment_id"].as_str().unwrap().to_string();
    let staged = create_and_wait(
        app,
        &format!("/api/sites/{site_id}/environments"),
        json!({"name": env_name, "slug": "staging", "environment_type": "staging",
               "promotion_preset": "content-protect"}),
    )
    .await;
    let staging_id = staged["environment_id"].as_str().unwrap().to_string();

    let found = markers(app);
    let (_, site) = app.get_json(&format!("/api/sites/{site_id}")).await;
    let (_, env) = app
        .get_json(&format!("/api/environments/{staging_id}"))
        .await;
    let prod_title = blogname(&prod_id);
    let staging_title = blogname(&staging_id);

    // Clean up first, so a failed assertion leaves the node as it was.
    let remove = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/remove-site.sh");
    let status = Command::new(remove)
        .args([&site_id, &prod_id, &staging_id])
        .status()
        .unwrap();
    for m in &found {
        let _ = std::fs::remove_file(m);
    }
    assert!(status.success(), "remove-site.sh failed");

    assert!(found.is_empty(), "a payload ran: {found:?}");
    assert_eq!(site["name"], site_name.as_str(), "the API keeps the name");
    assert_eq!(env["name"], env_name.as_str());
    assert_eq!(prod_title, site_name, "WordPress holds the literal title");
    assert_eq!(staging_title, site_name, "the clone copies it as is");
}
