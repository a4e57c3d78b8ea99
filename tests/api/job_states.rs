//! The job state gaps the security review found (issue 9), through the HTTP API with a stand-in
//! runner: cancels of running and queued-retry jobs with their transitions, start-time refusals
//! per job type, a cancel request that meets a lost worker or a failing run, `error_code` of a
//! cancelled job, where a failed re-provision leaves its node, `last_seen_at`, the release's
//! recorded source and release `resource` events.

use std::sync::Arc;
use std::time::Duration;

use pressluft::jobs::JobErrorCode;
use serde_json::{json, Value};

use crate::helpers::{job_id, TestApp};
use crate::stand_in::{StandIn, Step};

struct World {
    app: TestApp,
    runner: Arc<StandIn>,
    node: String,
}

/// Without a scripted step, runs succeed like the real playbook would.
async fn world(steps: Vec<(&'static str, Step)>) -> World {
    let (app, runner) = StandIn::new()
        .script(steps)
        .otherwise(Step::Plausible)
        .spawn()
        .await;
    app.login().await;
    let node = app.insert_node("edge", "active").await;
    World { app, runner, node }
}

impl World {
    async fn accepted(&self, path: &str, body: Option<Value>) -> String {
        match body {
            Some(body) => job_id(self.app.post_json(path, body).await).await,
            None => job_id(self.app.post_empty(path).await).await,
        }
    }

    async fn json(&self, path: &str) -> Value {
        let (status, v) = self.app.get_json(path).await;
        assert_eq!(status, 200, "{path}: {v}");
        v
    }

    async fn job(&self, id: &str) -> Value {
        self.json(&format!("/api/jobs/{id}")).await
    }

    async fn status(&self, path: &str) -> String {
        self.json(path).await["status"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn env_status(&self, env: &str) -> String {
        self.status(&format!("/api/environments/{env}")).await
    }

    async fn site_status(&self, site: &str) -> String {
        self.status(&format!("/api/sites/{site}")).await
    }

    /// The statuses of environment `env` and of site `site`.
    async fn env_and_site(&self, env: &str, site: &str) -> [String; 2] {
        [self.env_status(env).await, self.site_status(site).await]
    }

    /// A new site; returns (site, production environment, site_create job).
    async fn create_site(&self, slug: &str) -> (String, String, String) {
        self.app.clock.advance(time::Duration::seconds(1));
        let job = self
            .accepted("/api/sites", Some(json!({"name": slug, "slug": slug})))
            .await;
        let j = self.job(&job).await;
        (
            j["site_id"].as_str().unwrap().to_string(),
            j["environment_id"].as_str().unwrap().to_string(),
            job,
        )
    }

    /// A site whose `site_create` ran; returns (site, production environment).
    async fn active_site(&self, slug: &str) -> (String, String) {
        let (site, prod, _) = self.create_site(slug).await;
        self.run().await;
        assert_eq!(self.status(&format!("/api/sites/{site}")).await, "active");
        (site, prod)
    }

    /// A clone of the site's production environment; returns (environment, env_create job).
    async fn add_clone(&self, site: &str, slug: &str) -> (String, String) {
        self.app.clock.advance(time::Duration::seconds(1));
        let body = json!({"name": slug, "slug": slug, "environment_type": "clone",
                          "promotion_preset": "content-protect"});
        let job = self
            .accepted(&format!("/api/sites/{site}/environments"), Some(body))
            .await;
        let env = self.job(&job).await["environment_id"]
            .as_str()
            .unwrap()
            .to_string();
        (env, job)
    }

    async fn run(&self) -> usize {
        self.app.state.engine.run_until_idle("w").await.unwrap()
    }

    /// Past every backoff, so a queued retry is claimable.
    fn after_backoff(&self) {
        self.app.clock.advance(time::Duration::minutes(16));
    }

    async fn cancel(&self, job: &str) -> Value {
        let r = self
            .app
            .post_empty(&format!("/api/jobs/{job}/cancel"))
            .await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    fn runs_of(&self, job: &str) -> usize {
        self.runner.runs_of(job)
    }

    /// Runs the queue in the background until `job`'s run has started, cancels it through the
    /// API (which waits for the run to stop) and returns the cancel's answer.
    async fn cancel_while_running(&self, job: &str) -> Value {
        let before = self.runs_of(job);
        let engine = self.app.state.engine.clone();
        let worker = tokio::spawn(async move { engine.run_until_idle("w").await.unwrap() });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.runs_of(job) == before {
            assert!(tokio::time::Instant::now() < deadline, "{job} never ran");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(self.job(job).await["status"], "running");
        let answer = self.cancel(job).await;
        worker.await.unwrap();
        answer
    }

    async fn set_node_status(&self, status: &str) {
        pressluft::store::query("UPDATE nodes SET status = ? WHERE id = ?")
            .bind(status)
            .bind(&self.node)
            .execute(self.app.store.pool())
            .await
            .unwrap();
    }

    async fn last_seen(&self) -> Option<String> {
        self.json(&format!("/api/nodes/{}", self.node)).await["last_seen_at"]
            .as_str()
            .map(str::to_string)
    }
}

fn assert_cancelled_without_error(job: &Value) {
    assert_eq!(
        (
            job["status"].as_str(),
            job["error_code"].as_str(),
            job["error_message"].as_str()
        ),
        (Some("cancelled"), None, None),
        "{job}"
    );
}

// ---- cancels of running jobs --------------------------------------------------------------

#[tokio::test]
async fn cancelling_a_running_site_create_fails_the_site_and_its_environment() {
    let w = world(vec![("site_create", Step::UntilStopped)]).await;
    let (site, prod, job) = w.create_site("shop").await;
    let answer = w.cancel_while_running(&job).await;
    assert_eq!(answer["status"], "cancelled", "{answer}");
    assert_cancelled_without_error(&w.job(&job).await);
    assert_eq!(w.site_status(&site).await, "failed");
    assert_eq!(w.env_status(&prod).await, "failed");
    let audit = w.json(&format!("/api/audit-logs?resource_id={site}")).await;
    assert_eq!(audit[0]["result"], "cancelled", "{audit}");
}

#[tokio::test]
async fn cancelling_a_running_env_create_fails_the_new_environment_and_the_site() {
    let w = world(vec![("env_create", Step::UntilStopped)]).await;
    let (site, prod) = w.active_site("shop").await;
    let (env, job) = w.add_clone(&site, "copy").await;
    let answer = w.cancel_while_running(&job).await;
    assert_eq!(answer["status"], "cancelled", "{answer}");
    assert_cancelled_without_error(&w.job(&job).await);
    assert_eq!(w.env_and_site(&env, &site).await, ["failed", "failed"]);
    assert_eq!(
        w.env_status(&prod).await,
        "active",
        "the source is only read"
    );
}

#[tokio::test]
async fn cancelling_a_running_provision_retry_marks_the_node_unreachable_without_an_error() {
    // The first attempt fails (retryable), the second runs until cancelled: the cancelled job
    // keeps no error of the earlier attempt.
    let w = world(vec![
        (
            "node_provision",
            Step::fail(JobErrorCode::AnsibleHostFailed),
        ),
        ("node_provision", Step::UntilStopped),
    ])
    .await;
    let job = w
        .accepted(&format!("/api/nodes/{}/provision", w.node), None)
        .await;
    assert_eq!(w.run().await, 1);
    let j = w.job(&job).await;
    assert_eq!(
        (j["status"].as_str(), j["error_code"].as_str()),
        (Some("queued"), Some("ANSIBLE_HOST_FAILED"))
    );
    assert_eq!(
        w.status(&format!("/api/nodes/{}", w.node)).await,
        "provisioning"
    );
    w.after_backoff();
    let answer = w.cancel_while_running(&job).await;
    assert_eq!(answer["status"], "cancelled", "{answer}");
    let j = w.job(&job).await;
    assert_cancelled_without_error(&j);
    assert_eq!(j["attempt_count"], 2);
    assert_eq!(
        w.status(&format!("/api/nodes/{}", w.node)).await,
        "unreachable"
    );
}

/// A clone of an active site whose first attempt failed after it may have changed the node
/// (`ANSIBLE_HOST_FAILED`); its retry is queued (a further run fails `SOURCE_FETCH_FAILED`).
async fn clone_whose_first_attempt_ran() -> (World, String, String, String) {
    let w = world(vec![
        ("env_create", Step::fail(JobErrorCode::AnsibleHostFailed)),
        ("env_create", Step::fail(JobErrorCode::SourceFetchFailed)),
    ])
    .await;
    let (site, _) = w.active_site("ran").await;
    let (env, job) = w.add_clone(&site, "copy").await;
    w.run().await;
    assert_eq!(w.job(&job).await["status"], "queued");
    (w, site, env, job)
}

// ---- cancels of queued retries --------------------------------------------------------------

#[tokio::test]
async fn cancelling_a_queued_env_create_retry_never_leaves_the_site_cloning() {
    // An attempt that may have changed the node, then a cancel of the retry: "it ran".
    let (w, site, env, job) = clone_whose_first_attempt_ran().await;
    assert_eq!(w.site_status(&site).await, "cloning");
    assert_eq!(w.cancel(&job).await["status"], "cancelled");
    assert_cancelled_without_error(&w.job(&job).await);
    assert_eq!(w.env_and_site(&env, &site).await, ["failed", "failed"]);

    // A pre-mutation failure (nothing changed), then a cancel of the retry: back to active.
    let (site, _) = w.active_site("clean").await;
    let (env, job) = w.add_clone(&site, "copy").await;
    w.run().await;
    assert_eq!(w.job(&job).await["error_code"], "SOURCE_FETCH_FAILED");
    assert_eq!(w.site_status(&site).await, "cloning");
    assert_eq!(w.cancel(&job).await["status"], "cancelled");
    assert_cancelled_without_error(&w.job(&job).await);
    assert_eq!(w.env_and_site(&env, &site).await, ["failed", "active"]);
}

#[tokio::test]
async fn cancelling_queued_retries_of_site_create_and_node_provision_closes_their_rows() {
    let w = world(vec![
        ("site_create", Step::fail(JobErrorCode::AnsibleHostFailed)),
        (
            "node_provision",
            Step::fail(JobErrorCode::AnsibleHostFailed),
        ),
    ])
    .await;
    let (site, prod, job) = w.create_site("shop").await;
    w.run().await;
    assert_eq!(w.job(&job).await["status"], "queued");
    assert_eq!(w.cancel(&job).await["status"], "cancelled");
    assert_cancelled_without_error(&w.job(&job).await);
    assert_eq!(w.site_status(&site).await, "failed");
    assert_eq!(w.env_status(&prod).await, "failed");

    let job = w
        .accepted(&format!("/api/nodes/{}/provision", w.node), None)
        .await;
    w.run().await;
    assert_eq!(w.job(&job).await["status"], "queued");
    assert_eq!(w.cancel(&job).await["status"], "cancelled");
    assert_cancelled_without_error(&w.job(&job).await);
    assert_eq!(
        w.status(&format!("/api/nodes/{}", w.node)).await,
        "unreachable"
    );
}

// ---- start-time refusals --------------------------------------------------------------------

async fn assert_refused(w: &World, job: &str) {
    let j = w.job(job).await;
    assert_eq!(
        (j["status"].as_str(), j["error_code"].as_str()),
        (Some("failed"), Some("PRECONDITION_FAILED")),
        "{j}"
    );
    assert!(j["error_message"].as_str().is_some_and(|m| !m.is_empty()));
}

/// The node stops being active before `job` starts: the job is refused, no playbook runs.
async fn refused_once_the_node_is_unreachable(w: &World, job: &str) {
    w.set_node_status("unreachable").await;
    w.run().await;
    assert_refused(w, job).await;
    assert_eq!(w.runs_of(job), 0, "no playbook ran");
}

#[tokio::test]
async fn a_provision_of_a_decommissioned_node_is_refused_at_start() {
    let w = world(vec![]).await;
    let job = w
        .accepted(&format!("/api/nodes/{}/provision", w.node), None)
        .await;
    w.set_node_status("decommissioned").await;
    w.run().await;
    assert_refused(&w, &job).await;
    assert_eq!(w.runs_of(&job), 0, "no playbook ran");
    assert_eq!(
        w.status(&format!("/api/nodes/{}", w.node)).await,
        "decommissioned"
    );
    let audit = w
        .json(&format!("/api/audit-logs?resource_id={}", w.node))
        .await;
    assert_eq!(audit[0]["result"], "failed", "{audit}");
}

#[tokio::test]
async fn a_site_create_on_a_node_no_longer_active_is_refused_at_start() {
    let w = world(vec![]).await;
    let (site, prod, job) = w.create_site("shop").await;
    refused_once_the_node_is_unreachable(&w, &job).await;
    // The rows exist only for this job: closed as on cancellation.
    assert_eq!(w.site_status(&site).await, "failed");
    assert_eq!(w.env_status(&prod).await, "failed");
}

#[tokio::test]
async fn an_env_create_on_a_node_no_longer_active_is_refused_at_start() {
    let w = world(vec![]).await;
    let (site, prod) = w.active_site("shop").await;
    let (env, job) = w.add_clone(&site, "copy").await;
    refused_once_the_node_is_unreachable(&w, &job).await;
    assert_eq!(w.env_status(&env).await, "failed");
    // An existing site keeps its status.
    assert_eq!(w.site_status(&site).await, "active");
    assert_eq!(w.env_status(&prod).await, "active");
}

#[tokio::test]
async fn a_refused_env_create_retry_applies_the_transitions_of_the_attempt_that_ran() {
    // The first attempt may have changed the node; its retry is refused: site failed.
    let (w, site, env, job) = clone_whose_first_attempt_ran().await;
    w.set_node_status("unreachable").await;
    w.after_backoff();
    w.run().await;
    assert_refused(&w, &job).await;
    assert_eq!(w.runs_of(&job), 1, "only the first attempt ran");
    assert_eq!(w.env_and_site(&env, &site).await, ["failed", "failed"]);

    // The first attempt failed before any change; its retry is refused: site active again.
    w.set_node_status("active").await;
    let (site, _) = w.active_site("clean").await;
    let (env, job) = w.add_clone(&site, "copy").await;
    w.run().await;
    assert_eq!(w.job(&job).await["error_code"], "SOURCE_FETCH_FAILED");
    w.set_node_status("unreachable").await;
    w.after_backoff();
    w.run().await;
    assert_refused(&w, &job).await;
    assert_eq!(w.env_and_site(&env, &site).await, ["failed", "active"]);
}

// ---- a cancel request wins ------------------------------------------------------------------

#[tokio::test]
async fn a_cancel_requested_while_the_worker_died_is_not_lost() {
    let w = world(vec![]).await;
    let (site, prod, job) = w.create_site("shop").await;
    // A worker claims the job and dies (never runs or heartbeats it).
    let claimed = w.app.state.engine.claim("dead").await.unwrap().unwrap();
    assert_eq!(claimed.id, job);
    // The admin cancels; the endpoint waits for the job to stop.
    let client = w.app.client.clone();
    let url = w.app.url(&format!("/api/jobs/{job}/cancel"));
    let pending = tokio::spawn(async move {
        let r = client.post(url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while w
        .app
        .store
        .get_job(&job)
        .await
        .unwrap()
        .unwrap()
        .cancel_requested_at
        .is_none()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "cancel never requested"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The lease runs out; recovery honours the cancel instead of requeueing (WORKER_LOST).
    w.app.clock.advance(time::Duration::minutes(2));
    assert_eq!(w.app.state.engine.recover_stale().await.unwrap(), 1);
    let answer = pending.await.unwrap();
    assert_eq!(answer["status"], "cancelled", "{answer}");
    assert_cancelled_without_error(&w.job(&job).await);
    assert_eq!(w.site_status(&site).await, "failed");
    assert_eq!(w.env_status(&prod).await, "failed");
    assert_eq!(w.run().await, 0, "nothing left to run");
    assert_eq!(w.runs_of(&job), 0);
}

#[tokio::test]
async fn a_cancel_requested_while_the_run_failed_is_not_lost_to_a_retry() {
    let w = world(vec![(
        "env_create",
        Step::CancelledThenFails(JobErrorCode::AnsibleHostFailed),
    )])
    .await;
    let (site, _) = w.active_site("shop").await;
    let (env, job) = w.add_clone(&site, "copy").await;
    w.run().await;
    let j = w.job(&job).await;
    assert_cancelled_without_error(&j);
    assert_eq!(j["attempt_count"], 1);
    assert_eq!(w.env_and_site(&env, &site).await, ["failed", "failed"]);
    let audit = w.json(&format!("/api/audit-logs?resource_id={env}")).await;
    assert_eq!(audit[0]["result"], "cancelled", "{audit}");
}

// ---- node_provision: back to active only if it was active --------------------------------

#[tokio::test]
async fn a_failed_provision_restores_active_only_for_a_node_active_when_it_started() {
    let w = world(vec![
        (
            "node_provision",
            Step::fail(JobErrorCode::AnsibleHostFailed),
        ),
        (
            "node_provision",
            Step::fail(JobErrorCode::AnsibleHostFailed),
        ),
        (
            "node_provision",
            Step::fail(JobErrorCode::AnsibleHostFailed),
        ),
        (
            "node_provision",
            Step::fail(JobErrorCode::AnsibleSyntaxError),
        ),
    ])
    .await;
    let node_status = || async { w.status(&format!("/api/nodes/{}", w.node)).await };
    // Active when it started: three failed attempts (the later ones find it `provisioning`),
    // then it keeps serving.
    let job = w
        .accepted(&format!("/api/nodes/{}/provision", w.node), None)
        .await;
    for _ in 0..3 {
        w.run().await;
        w.after_backoff();
    }
    let j = w.job(&job).await;
    assert_eq!(
        (j["status"].as_str(), j["attempt_count"].as_i64()),
        (Some("failed"), Some(3))
    );
    assert_eq!(node_status().await, "active");

    // Unreachable when it started (a provision succeeded long ago): the failed provision
    // leaves it `provisioning`, not serving sites.
    w.set_node_status("unreachable").await;
    let job = w
        .accepted(&format!("/api/nodes/{}/provision", w.node), None)
        .await;
    w.run().await;
    let j = w.job(&job).await;
    assert_eq!(
        (j["status"].as_str(), j["error_code"].as_str()),
        (Some("failed"), Some("ANSIBLE_SYNTAX_ERROR"))
    );
    assert_eq!(node_status().await, "provisioning");
}

// ---- recorded results ---------------------------------------------------------------------

#[tokio::test]
async fn every_job_that_reached_the_node_refreshes_last_seen() {
    let w = world(vec![
        (
            "env_create",
            Step::fail(JobErrorCode::AnsibleHostUnreachable),
        ),
        ("env_create", Step::fail(JobErrorCode::AnsibleHostFailed)),
    ])
    .await;
    assert_eq!(w.last_seen().await, None);
    let (site, _) = w.active_site("shop").await;
    let after_site_create = w.last_seen().await;
    assert_eq!(after_site_create.as_deref(), Some(w.app.now().as_str()));

    // Not reached (SSH failed): unchanged.
    let (_, job) = w.add_clone(&site, "copy").await;
    w.run().await;
    assert_eq!(w.job(&job).await["error_code"], "ANSIBLE_HOST_UNREACHABLE");
    assert_eq!(w.last_seen().await, after_site_create);

    // Reached, a task failed there: refreshed.
    w.after_backoff();
    w.run().await;
    assert_eq!(w.job(&job).await["error_code"], "ANSIBLE_HOST_FAILED");
    assert_eq!(w.last_seen().await.as_deref(), Some(w.app.now().as_str()));
}

#[tokio::test]
async fn site_create_records_the_source_its_run_used() {
    let w = world(vec![]).await;
    let set_source = |source: &'static str| {
        let w = &w;
        async move {
            let r = w
                .app
                .client
                .put(w.app.url("/_admin/settings/wordpress"))
                .json(&json!({"wordpress_source": source}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    set_source("dir:/srv/wordpress-one").await;
    let (_, prod, job) = w.create_site("shop").await;
    let claimed = w.app.state.engine.claim("w").await.unwrap().unwrap();
    assert_eq!(claimed.id, job);
    // The setting changes while the job runs: the run (and any retry) keeps its source.
    set_source("dir:/srv/wordpress-two").await;
    let node = w.app.store.get_node(&w.node).await.unwrap().unwrap();
    let state = &w.app.state;
    let vars = pressluft::jobs::kinds::extra_vars(
        &state.store,
        &state.secrets,
        &state.config,
        &claimed,
        &node,
    )
    .await
    .unwrap();
    assert_eq!(vars.vars["wordpress_source"], "dir:/srv/wordpress-one");
    state.engine.execute(claimed, "w").await.unwrap();
    let releases = w.json(&format!("/api/environments/{prod}/releases")).await;
    assert_eq!(
        releases[0]["source_ref"], "dir:/srv/wordpress-one",
        "{releases}"
    );
}

#[tokio::test]
async fn releases_appear_in_resource_events() {
    let w = world(vec![]).await;
    let stream = w.app.get("/api/events").await;
    assert_eq!(stream.status(), 200);
    let (_, prod) = w.active_site("shop").await;
    let releases = w.json(&format!("/api/environments/{prod}/releases")).await;
    let id = releases[0]["id"].as_str().unwrap().to_string();
    let seen = crate::events::read_until(stream, &id).await;
    let line = seen
        .lines()
        .find(|l| l.starts_with("data:") && l.contains(&id))
        .unwrap();
    let event: Value = serde_json::from_str(line.trim_start_matches("data:").trim()).unwrap();
    assert_eq!(
        event,
        json!({"type": "release", "id": id, "status": "unknown", "state_version": 1})
    );
}
