//! The domain settings for real on this machine (called from `e2e_sites.rs`): the Settings page
//! in a real browser saves a DNS-01 provider (`rfc2136`) with its TSIG credentials — no preview
//! domain, so the node keeps serving as it does — and the `node_provision` the save starts
//! runs the real playbook on the node, seen live on the page until it succeeded. The
//! credentials reach that run only as secret extra-vars: neither the job's output nor any
//! API answer shows them. Then the credentials are deleted through the API (null), which
//! reconciles the node again, and the settings are as they were.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{finished_within, TestApp};

const TSIG_SECRET: &str = "ZTJlLXNldHRpbmdzLXRzaWctc2VjcmV0LW5ldmVyLXNob3du";

/// The settings step of the shared flow.
pub async fn settings(app: &TestApp) {
    let (_, before) = app.get_json("/_admin/settings").await;
    let credentials = json!({
        "server": "127.0.0.1", "port": "53", "key_name": "pressluft-e2e.",
        "key_algorithm": "hmac-sha256", "key_secret": TSIG_SECRET,
    });
    let form = json!({
        "control_plane_domain": "", "preview_domain": "",
        "dns01_provider": "rfc2136", "dns01_credentials": credentials.to_string(),
    });
    let stdout = crate::e2e::browser_script(
        app,
        "settings.mjs",
        &[
            ("PRESSLUFT_DOMAIN_FORM", &form.to_string()),
            ("PRESSLUFT_SECRET", TSIG_SECRET),
            ("PRESSLUFT_SETTINGS_TIMEOUT_MS", "1200000"),
        ],
    )
    .await;
    let jobs: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("JOB "))
        .collect();
    assert_eq!(jobs.len(), 1, "one active node, one job: {stdout}");
    let mut seen = Vec::new();
    for id in &jobs {
        let (job, output) = finished_within(app, id, Duration::from_secs(60)).await;
        assert_eq!(job["status"], "succeeded", "{job}\n{output}");
        assert_eq!(job["job_type"], "node_provision");
        assert!(output.contains("PLAY RECAP"), "{output}");
        seen.extend([job.to_string(), output]);
    }
    let (_, after) = app.get_json("/_admin/settings").await;
    assert_eq!(after["settings"]["dns01_provider"], "rfc2136");
    assert_eq!(
        after["secrets"]["dns01_credentials_json"],
        json!({"set": true})
    );
    seen.push(after.to_string());

    // Deleting the credentials (and the provider) reconciles the node again.
    let r = app
        .put_json(
            "/_admin/settings/domain-config",
            json!({"control_plane_domain": before["settings"]["control_plane_domain"],
                   "preview_domain": before["settings"]["preview_domain"],
                   "dns01_provider": before["settings"]["dns01_provider"],
                   "dns01_credentials": null}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let ids = body["job_ids"].as_array().unwrap();
    assert_eq!(ids.len(), 1, "{body}");
    let (job, output) =
        finished_within(app, ids[0].as_str().unwrap(), Duration::from_secs(20 * 60)).await;
    assert_eq!(job["status"], "succeeded", "{job}\n{output}");
    seen.extend([body.to_string(), output]);
    for text in &seen {
        assert!(!text.contains(TSIG_SECRET), "the TSIG secret shows: {text}");
    }
    let (_, restored) = app.get_json("/_admin/settings").await;
    assert_eq!(restored, before, "the settings are as they were");
}
