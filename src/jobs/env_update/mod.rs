//! `env_update`: WordPress core, plugin and theme updates of an environment (jobs.md §11,
//! backups-restore-promotion.md §7): the pre-update full backup first, then a copy of the
//! current release updated by WordPress's own upgrader classes through the PHP bridge, made
//! live by `pressluft node env-update` through `env-update.yml`, then health-gated.
//!
//! Gated like `env_deploy` ([`super::gate`]), plus the pre-update backup row
//! (`payload.pre_backup_id`, inserted `pending` with the job): `running` at the start (a retry
//! finds it running), `completed` with the result's `pre_backup` checksum and size at the
//! success — or at a failed attempt whose partial result names it (the backup completed before
//! a later step failed; a retry keeps it and the node spec omits it) — and `failed` on a final
//! failure or a cancel unless it completed. "Nothing to update" (result
//! `release_name: null`) records no release and enqueues no gate: environment and site
//! `active`, the audit `succeeded`. Otherwise the release (source copied from the previous
//! release, notes naming what was updated) is gated with the pre-update backup as the
//! rollback's database source.
//!
//! Submodules: [`vars`] (what the playbook and the node helper get).

mod vars;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyConnection;

use super::backup_create::{fail_backup, start_backup};
use super::errors::JobErrorCode;
use super::gate;
use super::kinds::JobKind;
use super::payload::{self, Attempts, Release};
use crate::domain::{SiteStatus, UpdateScope};
use crate::node_helper::spec::UpdateVersion;
use crate::store::releases::fetch_release;
use crate::store::{JobRecord, StoreError};
use vars::extra_vars;

/// The `env_update` job type (health-gated).
pub struct EnvUpdate;

impl JobKind for EnvUpdate {
    fn playbook(&self) -> &'static str {
        "env-update.yml"
    }

    fn health_gated(&self, _job: &JobRecord) -> bool {
        true
    }

    super::kinds::job_hooks!(
        validate_start,
        on_start,
        check_result,
        on_success,
        on_partial_result,
        on_final_failure,
        on_cancel,
        extra_vars
    );
}

async fn validate_start(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Result<(), String>, StoreError> {
    if let Err(reason) = gate::validate_start(conn, job).await? {
        return Ok(Err(reason));
    }
    let id = payload::read::<EnvUpdatePayload>(job).pre_backup_id;
    gate::pre_backup_usable(conn, job, &id, "pre-update").await
}

async fn on_start(
    conn: &mut AnyConnection,
    job: &mut JobRecord,
    now: &str,
) -> Result<(), StoreError> {
    gate::enter_fixing_release(conn, job, now).await?;
    let p = payload::read::<EnvUpdatePayload>(job);
    start_backup(conn, &p.pre_backup_id, now).await
}

/// A failed attempt that reported its pre-update backup.
async fn on_partial_result(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let id = payload::read::<EnvUpdatePayload>(job).pre_backup_id;
    gate::pre_backup_partial(conn, job, &id, result, "pre-update", now).await
}

/// "core 6.4.1 → 6.5, plugin akismet 5.0 → 5.1, …" from the result's `updated`.
fn updated_summary(updated: &Value) -> String {
    let mut parts = Vec::new();
    for (key, label) in [("core", "core"), ("plugins", "plugin"), ("themes", "theme")] {
        for item in updated[key].as_array().into_iter().flatten() {
            let field = |k: &str| item[k].as_str().unwrap_or("?").to_string();
            parts.push(match item {
                Value::Object(_) if key == "core" => {
                    format!("core {} → {}", field("from"), field("to"))
                }
                Value::Object(_) => {
                    format!(
                        "{label} {} {} → {}",
                        field("id"),
                        field("from"),
                        field("to")
                    )
                }
                Value::String(s) => format!("{label} {s}"),
                other => format!("{label} {other}"),
            });
        }
    }
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(", ")
    }
}

/// An update that found nothing to update reports no release (and builds none); any other
/// must report the release it was asked to build ([`gate::check_result`]).
fn check_result(job: &JobRecord, result: &Value) -> Result<(), String> {
    if result["release_name"].is_null() {
        return Ok(());
    }
    gate::check_result(job, result)
}

async fn on_success(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let p = payload::read::<EnvUpdatePayload>(job);
    let backup_ok =
        gate::pre_backup_completed(conn, job, &p.pre_backup_id, result, "pre-update", now).await?;
    if result["release_name"].is_null() {
        tracing::info!(id = %job.id, "nothing to update; no release");
        return gate::end(conn, job, SiteStatus::Active, "succeeded", now).await;
    }
    let previous = match &p.previous_release_id {
        Some(id) => fetch_release(conn, id).await?,
        None => None,
    };
    // data-model.md: an update keeps the source of the release it updated.
    let (source_type, source_ref) = previous
        .map(|r| (r.source_type, r.source_ref))
        .unwrap_or_else(|| ("upload".into(), String::new()));
    let notes = format!(
        "updates: {}{}: {}",
        p.scope,
        if p.versions.as_ref().is_some_and(|v| !v.is_empty()) {
            " (exact versions)"
        } else {
            ""
        },
        updated_summary(&result["updated"])
    );
    let built = gate::BuiltRelease {
        source_type: &source_type,
        source_ref: &source_ref,
        notes: &notes,
        // The rollback matrix: previous release + database from the pre-update backup.
        rollback_backup_id: backup_ok.then_some(p.pre_backup_id),
        rollback_restore_uploads: false,
    };
    gate::gate_built_release(conn, job, built, now).await
}

/// The pre-update backup `failed` unless it completed (`code`: the job's, if it failed).
async fn fail_pre_backup(
    conn: &mut AnyConnection,
    job: &JobRecord,
    code: Option<JobErrorCode>,
    now: &str,
) -> Result<(), StoreError> {
    let id = payload::read::<EnvUpdatePayload>(job).pre_backup_id;
    fail_backup(conn, &id, code, now).await
}

async fn on_final_failure(
    conn: &mut AnyConnection,
    job: &JobRecord,
    code: JobErrorCode,
    started: bool,
    now: &str,
) -> Result<(), StoreError> {
    fail_pre_backup(conn, job, Some(code), now).await?;
    gate::on_final_failure(conn, job, code, started, now).await
}

async fn on_cancel(
    conn: &mut AnyConnection,
    job: &JobRecord,
    was_running: bool,
    now: &str,
) -> Result<(), StoreError> {
    fail_pre_backup(conn, job, None, now).await?;
    gate::on_cancel(conn, job, was_running, now).await
}

/// The payload of `env_update` (jobs.md §11), built by [`crate::deploys::Deploys::update`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EnvUpdatePayload {
    pub scope: UpdateScope,
    /// Exactly these updates at exactly these versions (issue 16: what a safe-update run
    /// tested; [`crate::deploys::Deploys::update_versions`]); `None`: every update of `scope`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<UpdateVersion>>,
    /// The pre-update full backup, inserted `pending` with the job.
    pub pre_backup_id: String,
    #[serde(flatten)]
    pub release: Release,
    /// The environment's current release at the first start: the rollback target (run-stable).
    pub previous_release_id: Option<String>,
    #[serde(flatten)]
    pub attempts: Attempts,
}

impl Default for EnvUpdatePayload {
    fn default() -> Self {
        Self {
            scope: UpdateScope::All,
            versions: None,
            pre_backup_id: String::new(),
            release: Release::default(),
            previous_release_id: None,
            attempts: Attempts::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_note_names_what_was_updated() {
        let updated = serde_json::json!({
            "core": [{"id": "wordpress", "from": "6.4.1", "to": "6.5"}],
            "plugins": [{"id": "akismet", "from": "5.0", "to": "5.1"}],
            "themes": []});
        assert_eq!(
            updated_summary(&updated),
            "core 6.4.1 → 6.5, plugin akismet 5.0 → 5.1"
        );
        assert_eq!(updated_summary(&Value::Null), "nothing");
    }

    #[test]
    fn versions_are_optional_in_the_payload() {
        let old: EnvUpdatePayload =
            serde_json::from_str(r#"{"scope": "plugins", "pre_backup_id": "b"}"#).unwrap();
        assert_eq!(old.versions, None);
        let json = serde_json::to_value(&old).unwrap();
        assert!(json.get("versions").is_none(), "{json}");
        let exact: EnvUpdatePayload = serde_json::from_value(serde_json::json!({
            "scope": "all", "pre_backup_id": "b",
            "versions": [{"kind": "plugin", "id": "a/a.php", "version": "1.1"}]}))
        .unwrap();
        let versions = exact.versions.unwrap();
        assert_eq!(
            versions[0].kind,
            crate::node_helper::spec::UpdateKind::Plugin
        );
        assert_eq!(versions[0].version, "1.1");
    }
}
