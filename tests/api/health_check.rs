//! The `health_check` skeleton through the stand-in runner: enqueued as a service would (there is
//! no endpoint yet), it runs to `succeeded` and changes nothing (what the gate does with its
//! outcome is the deploy issue's work); a failed check fails it with `HEALTH_CHECK_FAILED`, not
//! retried. Also the enqueue helper the end-to-end test (`e2e_health.rs`) uses.

use pressluft::domain::JobType;
use pressluft::jobs::{HealthCheckPayload, JobErrorCode};
use pressluft::services::accept::{JobRequest, Mutations};
use serde_json::Value;

use crate::helpers::TestApp;
use crate::stand_in::{StandIn, Step};

/// Enqueues a `health_check` of `environment_id` as a service would (`Mutations::accept`, no
/// audit row: nobody asked), gating its current release; returns the job's id.
pub async fn enqueue_health_check(
    app: &TestApp,
    environment_id: &str,
    gated_job_id: &str,
) -> String {
    let (status, env) = app
        .get_json(&format!("/api/environments/{environment_id}"))
        .await;
    assert_eq!(status, 200, "{env}");
    let release = env["current_release_id"].as_str().unwrap_or_default();
    let (site_id, node_id) = (
        env["site_id"].as_str().unwrap(),
        env["node_id"].as_str().unwrap(),
    );
    let s = &app.state;
    let mutations = Mutations::new(s.store.clone(), s.engine.clone(), s.clock.clone());
    let m = mutations.begin().await.unwrap();
    let request = JobRequest {
        job_type: JobType::HealthCheck,
        site_id: Some(site_id),
        environment_id: Some(environment_id),
        node_id,
        payload: HealthCheckPayload {
            release_id: release.to_string(),
            gated_job_id: gated_job_id.to_string(),
            rollback_target_release_id: release.to_string(),
            ..Default::default()
        },
    };
    mutations.accept(m, request, None).await.unwrap()
}

/// A site whose `site_create` ran with the stand-in; returns (app, runner, production
/// environment, site_create job).
async fn active_site(step: Step) -> (TestApp, std::sync::Arc<StandIn>, String, String) {
    StandIn::new()
        .then("health_check", step)
        .otherwise(Step::Plausible)
        .spawn_with_site()
        .await
}

async fn statuses(app: &TestApp, env: &str) -> (Value, Value) {
    let (_, e) = app.get_json(&format!("/api/environments/{env}")).await;
    let (_, site) = app
        .get_json(&format!("/api/sites/{}", e["site_id"].as_str().unwrap()))
        .await;
    (e["status"].clone(), site["status"].clone())
}

#[tokio::test]
async fn a_health_check_runs_its_playbook_and_changes_nothing() {
    let (app, runner, env, create) = active_site(Step::Plausible).await;
    let before = statuses(&app, &env).await;
    let id = enqueue_health_check(&app, &env, &create).await;
    let job = app.job(&id).await;
    assert_eq!(job["job_type"], "health_check");
    let (stored,): (String,) =
        pressluft::store::query_as("SELECT payload_json FROM jobs WHERE id = ?")
            .bind(&id)
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    let payload: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(payload["gated_job_id"], create.as_str());
    assert!(payload["release_id"]
        .as_str()
        .is_some_and(|r| !r.is_empty()));
    assert_eq!(app.state.engine.run_until_idle("w").await.unwrap(), 1);
    let job = app.job(&id).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(runner.runs_of(&id), 1);
    assert_eq!(statuses(&app, &env).await, before);
}

#[tokio::test]
async fn a_failed_check_fails_the_job_without_a_retry() {
    let step = Step::failing(
        JobErrorCode::HealthCheckFailed,
        "health checks failed: db-ping",
    );
    let (app, runner, env, create) = active_site(step).await;
    let id = enqueue_health_check(&app, &env, &create).await;
    app.state.engine.run_until_idle("w").await.unwrap();
    let job = app.job(&id).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["error_code"], "HEALTH_CHECK_FAILED");
    assert_eq!(job["error_message"], "health checks failed: db-ping");
    assert_eq!(runner.runs_of(&id), 1);
}
