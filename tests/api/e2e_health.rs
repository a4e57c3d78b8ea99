//! The `health_check` skeleton for real on this machine (called from `e2e_sites.rs` while the
//! site exists): enqueued for the production environment as a service would, its three checks
//! pass; with the environment's database password made wrong in its `wp-config.php`, the job
//! fails with `HEALTH_CHECK_FAILED` naming the failing checks; restored, it passes again.

use crate::health_check::enqueue_health_check;
use crate::helpers::{finished, TestApp};

/// Runs a health check of `env_id` to its end: (job, output).
async fn health_check(app: &TestApp, env_id: &str, gated: &str) -> (serde_json::Value, String) {
    let id = enqueue_health_check(app, env_id, gated).await;
    finished(app, &id).await
}

pub async fn health_checks(app: &TestApp, site_id: &str, env_id: &str, gated: &str) {
    let (job, output) = health_check(app, env_id, gated).await;
    assert_eq!(job["status"], "succeeded", "{job}\n{output}");
    for check in ["http", "is-installed", "db-ping"] {
        assert!(
            output.contains(&format!("{check}: passed after 1 attempt(s)")),
            "{check} passed at once: {output}"
        );
    }

    // The database password made wrong: WordPress cannot reach its database.
    let wp_config = format!("/var/www/sites/{site_id}/{env_id}/shared/wp-config.php");
    let original = std::fs::read_to_string(&wp_config).unwrap();
    let broken: String = original
        .lines()
        .map(|l| {
            if l.starts_with("define('DB_PASSWORD',") {
                "define('DB_PASSWORD', 'pl-e2e-wrong');".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(broken, original.trim_end(), "the password line was found");
    std::fs::write(&wp_config, broken).unwrap();
    let (job, output) = health_check(app, env_id, gated).await;
    std::fs::write(&wp_config, &original).unwrap();
    assert_eq!(job["status"], "failed", "{job}\n{output}");
    assert_eq!(job["error_code"], "HEALTH_CHECK_FAILED", "{job}");
    let message = job["error_message"].as_str().unwrap();
    assert!(message.starts_with("health checks failed: "), "{message}");
    for check in ["is-installed", "db-ping"] {
        assert!(message.contains(check), "{check} is named: {message}");
        assert!(
            output.contains(&format!("{check}: FAILED after 2 attempt(s)")),
            "{check} failed after its retry: {output}"
        );
    }
    assert!(!message.contains("pl-e2e-wrong"), "{message}");

    let (job, output) = health_check(app, env_id, gated).await;
    assert_eq!(job["status"], "succeeded", "restored: {job}\n{output}");
}
