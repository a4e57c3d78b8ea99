//! The one stand-in for the Ansible runner that tests of the control plane's own logic plug in:
//! scripted outcomes per job type (succeed with a result, fail with a code and message, block
//! until the worker asks to stop, run a real subprocess, print output first), a fallback for
//! every run nothing is scripted for, and a record of the runs. It never stands in for a
//! feature: the real node work is the end-to-end test.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pressluft::config::Config;
use pressluft::jobs::runner::RunFuture;
use pressluft::jobs::{JobErrorCode, RunContext, RunOutcome, Runner};
use pressluft::store::{JobRecord, Store};
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};

/// What the stand-in does for one run.
#[derive(Clone, Debug)]
pub enum Step {
    /// Ends with this outcome.
    Answer(RunOutcome),
    /// Succeeds like the real playbook would: `site_create` reports the source it installed
    /// from, `env_create` a drift baseline, `health_check` its passed checks, `backup_create`
    /// a checksum and size, `backup_verify` ok, `backup_cleanup` every named backup deleted,
    /// `env_deploy`/`env_update`/`env_restore`/`site_import`/`env_promote` the payload's release
    /// (an update, restore or import with its pre-backup, an update with one plugin updated), `release_rollback` what it restored, every other type `{}`.
    Plausible,
    /// Prints these output lines, then does the next step.
    Print(Vec<String>, Box<Step>),
    /// Runs until the worker asks it to stop (a cancel), then reports that it stopped.
    UntilStopped,
    /// Runs a real subprocess through the engine's process runner until the worker stops it.
    Process(&'static str, Vec<&'static str>),
    /// Requests a cancel of its own job behind the worker's back (as the API does between two
    /// of the worker's looks), then fails at once with a retryable code.
    CancelledThenFails(JobErrorCode),
    /// Reads what to do from the job's payload: `{"fail": "<CODE>", "times": n, "sleep_ms": n}`
    /// (fails with CODE while the attempt is at most `times`, after sleeping `sleep_ms`).
    FromPayload,
}

impl Step {
    /// Succeeds with `result`.
    pub fn ok(result: Value) -> Step {
        Step::Answer(RunOutcome::Succeeded { result })
    }

    /// Fails with `code` and the message "scripted failure".
    pub fn fail(code: JobErrorCode) -> Step {
        Step::failing(code, "scripted failure")
    }

    /// Fails with `code` and `message`.
    pub fn failing(code: JobErrorCode, message: &str) -> Step {
        Step::Answer(RunOutcome::Failed {
            code,
            message: message.into(),
            result: None,
        })
    }
}

/// A script in which all three attempts of `job_type` (the default `max_attempts`) fail with
/// `code`.
pub fn failing_three_times(
    job_type: &'static str,
    code: JobErrorCode,
) -> Vec<(&'static str, Step)> {
    vec![(job_type, Step::fail(code)); 3]
}

/// One finished run: job id, site, node, start, end.
pub type Run = (String, Option<String>, String, Instant, Instant);

/// Answers each run of a job type with the next step scripted for that type; without one, with
/// the fallback (success with `{}` unless set).
pub struct StandIn {
    steps: Mutex<Vec<(&'static str, Step)>>,
    fallback: Step,
    /// Printed at the start of every run.
    banner: Option<&'static str>,
    store: Mutex<Option<Store>>,
    /// Ids of the jobs whose runs started, in order.
    started: Mutex<Vec<String>>,
    /// The runs that ended, in order.
    runs: Mutex<Vec<Run>>,
}

impl Default for StandIn {
    fn default() -> Self {
        StandIn {
            steps: Mutex::default(),
            fallback: Step::ok(json!({})),
            banner: None,
            store: Mutex::default(),
            started: Mutex::default(),
            runs: Mutex::default(),
        }
    }
}

impl StandIn {
    pub fn new() -> StandIn {
        StandIn::default()
    }

    /// Scripts the next run of `job_type` (after the ones already scripted for it).
    pub fn then(self, job_type: &'static str, step: Step) -> StandIn {
        self.steps.lock().unwrap().push((job_type, step));
        self
    }

    /// Scripts the next run of `job_type` on a runner already in use (when the step needs ids
    /// the running application made).
    pub fn push(&self, job_type: &'static str, step: Step) {
        self.steps.lock().unwrap().push((job_type, step));
    }

    /// Scripts runs in order, each `(job_type, step)`.
    pub fn script(self, steps: Vec<(&'static str, Step)>) -> StandIn {
        steps
            .into_iter()
            .fold(self, |s, (job_type, step)| s.then(job_type, step))
    }

    /// What every run nothing is scripted for does.
    pub fn otherwise(mut self, step: Step) -> StandIn {
        self.fallback = step;
        self
    }

    /// Prints `line` at the start of every run.
    pub fn says(mut self, line: &'static str) -> StandIn {
        self.banner = Some(line);
        self
    }

    /// Starts the application with this runner (not logged in).
    pub async fn spawn(self) -> (TestApp, Arc<StandIn>) {
        self.spawn_with(|_| {}).await
    }

    /// [`StandIn::spawn`] with a tweaked configuration.
    pub async fn spawn_with(self, tweak: impl FnOnce(&mut Config)) -> (TestApp, Arc<StandIn>) {
        let runner = Arc::new(self);
        let app = spawn_app_with(tweak, Some(runner.clone())).await;
        *runner.store.lock().unwrap() = Some(app.store.clone());
        (app, runner)
    }

    /// Starts the application with this runner, logged in, with an active node and a site
    /// whose `site_create` ran (with this runner); returns (app, runner, production
    /// environment, site_create job).
    pub async fn spawn_with_site(self) -> (TestApp, Arc<StandIn>, String, String) {
        let (app, runner) = self.spawn().await;
        app.login().await;
        app.insert_node("edge", "active").await;
        let r = app
            .post_json("/api/sites", json!({"name": "Shop", "slug": "shop"}))
            .await;
        let create = crate::helpers::job_id(r).await;
        app.state.engine.run_until_idle("w").await.unwrap();
        let job = app.job(&create).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        let env = job["environment_id"].as_str().unwrap().to_string();
        (app, runner, env, create)
    }

    /// How many runs of job `id` started.
    pub fn runs_of(&self, id: &str) -> usize {
        self.started
            .lock()
            .unwrap()
            .iter()
            .filter(|j| *j == id)
            .count()
    }

    /// The runs that ended, in order.
    pub fn runs(&self) -> Vec<Run> {
        self.runs.lock().unwrap().clone()
    }

    async fn perform(&self, step: Step, job: &JobRecord, ctx: &mut RunContext) -> RunOutcome {
        let mut step = step;
        loop {
            return match step {
                Step::Answer(outcome) => outcome,
                Step::Plausible => RunOutcome::Succeeded {
                    result: plausible_result(job),
                },
                Step::Print(lines, then) => {
                    for line in &lines {
                        ctx.output.line(line);
                    }
                    step = *then;
                    continue;
                }
                Step::UntilStopped => {
                    let _ = ctx.stop.wait_for(|s| s.is_some()).await;
                    RunOutcome::Stopped
                }
                Step::Process(program, args) => {
                    let mut cmd = tokio::process::Command::new(program);
                    cmd.args(args);
                    match pressluft::jobs::process::run(
                        cmd,
                        &ctx.output,
                        &mut ctx.stop,
                        pressluft::jobs::process::KILL_GRACE,
                    )
                    .await
                    {
                        Ok(pressluft::jobs::process::ProcessEnd::Stopped(_)) => RunOutcome::Stopped,
                        other => RunOutcome::Failed {
                            code: JobErrorCode::AnsibleUnknownExit,
                            message: format!("{other:?}"),
                            result: None,
                        },
                    }
                }
                Step::CancelledThenFails(code) => {
                    let store = self.store.lock().unwrap().clone().unwrap();
                    pressluft::store::query(
                        "UPDATE jobs SET cancel_requested_at = updated_at WHERE id = ?",
                    )
                    .bind(&job.id)
                    .execute(store.pool())
                    .await
                    .unwrap();
                    RunOutcome::Failed {
                        code,
                        message: "scripted failure".into(),
                        result: None,
                    }
                }
                Step::FromPayload => {
                    let p: Value = serde_json::from_str(&job.payload_json).unwrap();
                    if let Some(ms) = p["sleep_ms"].as_u64() {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    let fail_times = p["times"].as_i64().unwrap_or(i64::MAX);
                    match p["fail"].as_str() {
                        Some(code) if job.attempt_count <= fail_times => RunOutcome::Failed {
                            code: JobErrorCode::parse(code).unwrap(),
                            message: format!("scripted {code}"),
                            result: None,
                        },
                        _ => RunOutcome::Succeeded { result: json!({}) },
                    }
                }
            };
        }
    }
}

/// What the real playbook of the job's type would report on success.
fn plausible_result(job: &JobRecord) -> Value {
    let payload: Value = serde_json::from_str(&job.payload_json).unwrap();
    match job.job_type.as_str() {
        "site_create" => json!({"release_path": "/x", "table_prefix": "wp_",
            "wordpress_version": "6.1.9", "source_ref": payload["wordpress_source"]}),
        "env_create" => json!({"release_path": "/x", "table_prefix": "wp_",
            "drift_baseline": {"tables": {}, "paths": {}}}),
        "health_check" => json!({"passed": true, "checks": [
            {"name": "http", "passed": true, "detail": "200", "attempts": 1},
            {"name": "is-installed", "passed": true, "detail": "{}", "attempts": 1},
            {"name": "db-ping", "passed": true, "detail": "{}", "attempts": 1}]}),
        "backup_create" => json!({"checksum": format!("sha256:{}", "ab".repeat(32)),
            "size_bytes": 4242, "artifacts": []}),
        "backup_verify" => {
            json!({"status": "ok", "checksum": format!("sha256:{}", "ab".repeat(32))})
        }
        "backup_cleanup" => json!({"backups": payload["backup_ids"].as_array().into_iter()
            .flatten().map(|id| json!({"backup_id": id, "status": "deleted", "removed": 2}))
            .collect::<Vec<_>>()}),
        "env_deploy" => json!({"release_name": payload["release_name"], "release_path": "/x",
            "source_revision": "0123456789abcdef0123456789abcdef01234567",
            "layout": "wp-content", "composer": false,
            "went_live": {"fastcgi_purged": 0, "pruned": []}}),
        "env_update" => json!({"release_name": payload["release_name"],
            "pre_backup": {"checksum": format!("sha256:{}", "cd".repeat(32)),
                "size_bytes": 5151, "artifacts": []},
            "updated": {"core": [], "plugins": [{"id": "akismet", "from": "5.0", "to": "5.1"}],
                "themes": []}}),
        "env_restore" | "site_import" => json!({"release_name": payload["release_name"],
            "pre_backup": {"checksum": format!("sha256:{}", "cd".repeat(32)),
                "size_bytes": 5151, "artifacts": []}}),
        "env_promote" => json!({"release_name": payload["release_name"]}),
        "restore_drill" => json!({"passed": true, "backup_id": payload["backup_id"],
            "timings": {"create_ms": 900, "restore_ms": 4000, "health_ms": 700,
                "remove_ms": 800, "total_ms": 6400},
            "checks": [], "removed": true, "removed_items": []}),
        "release_rollback" => json!({"current_release_name": "r",
            "restored": {"database": !payload["restore_backup_id"].is_null(),
                "uploads": payload["restore_uploads"]}}),
        "env_delete" | "site_delete" => json!({"deleted": [], "removed": [],
            "final_backups": payload["environments"].as_array().into_iter().flatten()
                .filter(|t| t["final_backup_id"].is_string())
                .map(|t| json!({"environment_id": t["environment_id"],
                    "backup_id": t["final_backup_id"],
                    "checksum": format!("sha256:{}", "ef".repeat(32)), "size_bytes": 6161}))
                .collect::<Vec<_>>()}),
        _ => json!({}),
    }
}

impl Runner for StandIn {
    fn run<'a>(&'a self, job: &'a JobRecord, mut ctx: RunContext) -> RunFuture<'a> {
        Box::pin(async move {
            let start = Instant::now();
            self.started.lock().unwrap().push(job.id.clone());
            if let Some(line) = self.banner {
                ctx.output.line(line);
            }
            let step = {
                let mut s = self.steps.lock().unwrap();
                s.iter()
                    .position(|(t, _)| *t == job.job_type.as_str())
                    .map(|i| s.remove(i).1)
            }
            .unwrap_or_else(|| self.fallback.clone());
            let outcome = self.perform(step, job, &mut ctx).await;
            self.runs.lock().unwrap().push((
                job.id.clone(),
                job.site_id.clone(),
                job.node_id.clone(),
                start,
                Instant::now(),
            ));
            outcome
        })
    }
}
