//! Job types: the [`JobKind`] trait (a type's facts and its hooks) and the registry [`kind`],
//! which names every [`JobType`] (no wildcard: a new variant does not compile until it is
//! listed). Each implemented type is one zero-sized type in its own module
//! ([`super::node_provision`], [`super::site_create`], [`super::env_create`],
//! [`super::health_check`], [`super::backup_create`], [`super::backup_verify`], …); every
//! specified type is implemented (`domain_add` and `domain_remove` were the last, issue 15).
//! See docs/adding-a-job-type.md.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde_json::Value;

use super::env_create::EnvCreate;
use super::errors::JobErrorCode;
use super::node_provision::NodeProvision;
use super::payload::Attempts;
use super::site_create::SiteCreate;
use crate::config::Config;
use crate::domain::JobType;
use crate::secrets::Secrets;
use crate::store::nodes::NodeRecord;
use crate::store::{JobRecord, Store, StoreError};

use sqlx::AnyConnection;

/// The future a hook returns.
pub type Hook<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The hooks of a [`JobKind`] impl, each forwarding to the module's free `async fn` of the same
/// name and signature (`validate_start(conn, job)`, `on_start(conn, job, now)`,
/// `on_success(conn, job, result, now)`, `on_final_failure(conn, job, code, started, now)`,
/// `on_cancel(conn, job, was_running, now)`, `extra_vars(cx, job)`; `check_result(job, result)`,
/// not async), so a job type's module
/// writes its behaviour once and not the boxing around it. Name only the hooks the type has;
/// the others keep the trait's no-op default.
macro_rules! job_hooks {
    ($($hook:ident),* $(,)?) => { $( $crate::jobs::kinds::job_hooks!(@one $hook); )* };
    (@one validate_start) => {
        fn validate_start<'a>(
            &'a self,
            conn: &'a mut ::sqlx::AnyConnection,
            job: &'a $crate::store::JobRecord,
        ) -> $crate::jobs::kinds::Hook<'a, Result<Result<(), String>, $crate::store::StoreError>> {
            Box::pin(validate_start(conn, job))
        }
    };
    (@one on_start) => {
        fn on_start<'a>(
            &'a self,
            conn: &'a mut ::sqlx::AnyConnection,
            job: &'a mut $crate::store::JobRecord,
            now: &'a str,
        ) -> $crate::jobs::kinds::Hook<'a, Result<(), $crate::store::StoreError>> {
            Box::pin(on_start(conn, job, now))
        }
    };
    (@one on_success) => {
        fn on_success<'a>(
            &'a self,
            conn: &'a mut ::sqlx::AnyConnection,
            job: &'a $crate::store::JobRecord,
            result: &'a ::serde_json::Value,
            now: &'a str,
        ) -> $crate::jobs::kinds::Hook<'a, Result<(), $crate::store::StoreError>> {
            Box::pin(on_success(conn, job, result, now))
        }
    };
    (@one on_partial_result) => {
        fn on_partial_result<'a>(
            &'a self,
            conn: &'a mut ::sqlx::AnyConnection,
            job: &'a $crate::store::JobRecord,
            result: &'a ::serde_json::Value,
            now: &'a str,
        ) -> $crate::jobs::kinds::Hook<'a, Result<(), $crate::store::StoreError>> {
            Box::pin(on_partial_result(conn, job, result, now))
        }
    };
    (@one on_final_failure) => {
        fn on_final_failure<'a>(
            &'a self,
            conn: &'a mut ::sqlx::AnyConnection,
            job: &'a $crate::store::JobRecord,
            code: $crate::jobs::errors::JobErrorCode,
            started: bool,
            now: &'a str,
        ) -> $crate::jobs::kinds::Hook<'a, Result<(), $crate::store::StoreError>> {
            Box::pin(on_final_failure(conn, job, code, started, now))
        }
    };
    (@one on_cancel) => {
        fn on_cancel<'a>(
            &'a self,
            conn: &'a mut ::sqlx::AnyConnection,
            job: &'a $crate::store::JobRecord,
            was_running: bool,
            now: &'a str,
        ) -> $crate::jobs::kinds::Hook<'a, Result<(), $crate::store::StoreError>> {
            Box::pin(on_cancel(conn, job, was_running, now))
        }
    };
    (@one check_result) => {
        fn check_result(
            &self,
            job: &$crate::store::JobRecord,
            result: &::serde_json::Value,
        ) -> Result<(), String> {
            check_result(job, result)
        }
    };
    (@one extra_vars) => {
        fn extra_vars<'a>(
            &'a self,
            cx: &'a $crate::jobs::kinds::VarsContext<'a>,
            job: &'a $crate::store::JobRecord,
        ) -> $crate::jobs::kinds::Hook<
            'a,
            Result<$crate::jobs::kinds::ResolvedVars, $crate::jobs::kinds::VarsError>,
        > {
            Box::pin(extra_vars(cx, job))
        }
    };
}
pub(crate) use job_hooks;

/// A job type's zero-sized kind: `job_kind!(EnvCreate, "env-create.yml", all_hooks)` declares
/// `pub struct EnvCreate` and its [`JobKind`] impl with that playbook and every hook forwarded
/// by [`job_hooks!`]; `job_kind!(Kind, "kind.yml", [on_success, extra_vars])` forwards only the
/// hooks named. A kind with other facts (`max_attempts`, `follow_up`) writes its impl by hand.
macro_rules! job_kind {
    ($kind:ident, $playbook:literal, all_hooks) => {
        $crate::jobs::kinds::job_kind!(
            $kind,
            $playbook,
            [validate_start, on_start, on_success, on_final_failure, on_cancel, extra_vars]
        );
    };
    ($kind:ident, $playbook:literal, [$($hook:ident),* $(,)?]) => {
        #[doc = concat!("The job type whose playbook is `", $playbook, "`.")]
        pub struct $kind;

        impl $crate::jobs::kinds::JobKind for $kind {
            fn playbook(&self) -> &'static str {
                $playbook
            }

            $crate::jobs::kinds::job_hooks!($($hook),*);
        }
    };
}
pub(crate) use job_kind;

/// One job type: its facts and its hooks. The hooks receive the engine's open write
/// transaction (only call `store` functions there), except [`JobKind::extra_vars`], which runs
/// before the playbook. Every hook defaults to "no effect"; those defaults return a zero-sized
/// future, so boxing it allocates nothing.
pub trait JobKind: Send + Sync {
    /// The playbook file in `ansible/playbooks/`.
    fn playbook(&self) -> &'static str;

    /// Runs a job of this type gets (jobs.md §3: `attempt_count` counts claims).
    fn max_attempts(&self) -> i64 {
        3
    }

    /// A follow-up job (jobs.md §3): claimed before other jobs, and a queued one holds its
    /// site so that only it runs there. The claim statement's follow-up set is built from this
    /// flag ([`follow_up_sql_list`]).
    fn follow_up(&self) -> bool {
        false
    }

    /// Whether a success of `job` leaves its audit rows `accepted` (api.md §6): a health-gated
    /// operation's audit is finished by its `health_check` follow-up (or the rollback after
    /// it), not by its own success.
    fn health_gated(&self, _job: &JobRecord) -> bool {
        false
    }

    /// Secrets-store keys that live only as long as `job`: the engine deletes them once the
    /// job reached a terminal state (`succeeded`, `failed`, `cancelled`), after the commit.
    fn secrets_to_forget(&self, _job: &JobRecord) -> Vec<String> {
        Vec::new()
    }

    /// Start-time validation (jobs.md §3): `Ok(Err(message))` refuses the job with
    /// `PRECONDITION_FAILED` before anything runs.
    fn validate_start<'a>(
        &'a self,
        _conn: &'a mut AnyConnection,
        _job: &'a JobRecord,
    ) -> Hook<'a, Result<Result<(), String>, StoreError>> {
        nothing()
    }

    /// Transitions when a run starts, and the run-stable payload fields (which update `job`).
    fn on_start<'a>(
        &'a self,
        _conn: &'a mut AnyConnection,
        _job: &'a mut JobRecord,
        _now: &'a str,
    ) -> Hook<'a, Result<(), StoreError>> {
        nothing()
    }

    /// Whether a successful run's `result` is what this type's playbook must report (a
    /// backup's checksum and size, the release it was asked to build). `Err(reason)` turns the
    /// success into a final failure, `ANSIBLE_UNEXPECTED_ERROR` naming the reason: the result
    /// goes to [`JobKind::on_partial_result`], then [`JobKind::on_final_failure`] runs (as
    /// after a run that changed things). No database: decided from the job and the result.
    fn check_result(&self, _job: &JobRecord, _result: &Value) -> Result<(), String> {
        Ok(())
    }

    /// Transitions and recorded results when a run succeeded (`result`: the playbook's JSON,
    /// accepted by [`JobKind::check_result`]).
    fn on_success<'a>(
        &'a self,
        _conn: &'a mut AnyConnection,
        _job: &'a JobRecord,
        _result: &'a Value,
        _now: &'a str,
    ) -> Hook<'a, Result<(), StoreError>> {
        nothing()
    }

    /// What a FAILED run reported before it failed (its result file, when the playbook wrote
    /// one), recorded before the retry or final-failure transitions: e.g. `env_update`'s
    /// pre-update backup that completed before a later step failed.
    fn on_partial_result<'a>(
        &'a self,
        _conn: &'a mut AnyConnection,
        _job: &'a JobRecord,
        _result: &'a Value,
        _now: &'a str,
    ) -> Hook<'a, Result<(), StoreError>> {
        nothing()
    }

    /// Transitions when the job failed finally (including a start-time refusal,
    /// `started = false`; a type that distinguishes runs that changed things consults
    /// [`earlier_attempt_ran`], or uses [`super::lifecycle::release_busy_site`]).
    fn on_final_failure<'a>(
        &'a self,
        _conn: &'a mut AnyConnection,
        _job: &'a JobRecord,
        _code: JobErrorCode,
        _started: bool,
        _now: &'a str,
    ) -> Hook<'a, Result<(), StoreError>> {
        nothing()
    }

    /// Transitions when the job was cancelled (`was_running`: after its subprocess stopped; a
    /// cancelled queued retry also consults [`earlier_attempt_ran`]).
    fn on_cancel<'a>(
        &'a self,
        _conn: &'a mut AnyConnection,
        _job: &'a JobRecord,
        _was_running: bool,
        _now: &'a str,
    ) -> Hook<'a, Result<(), StoreError>> {
        nothing()
    }

    /// The extra-vars the playbook needs beyond the payload (jobs.md §12), with the secret
    /// values among them (masked in output). Runs before the playbook, outside a transaction.
    fn extra_vars<'a>(
        &'a self,
        _cx: &'a VarsContext<'a>,
        _job: &'a JobRecord,
    ) -> Hook<'a, Result<ResolvedVars, VarsError>> {
        nothing()
    }
}

/// The registry: the kind of every job type.
pub fn kind(job_type: JobType) -> &'static dyn JobKind {
    match job_type {
        JobType::NodeProvision => &NodeProvision,
        JobType::SiteCreate => &SiteCreate,
        JobType::EnvCreate => &EnvCreate,
        JobType::SiteImport => &super::site_import::SiteImport,
        JobType::EnvDeploy => &super::env_deploy::EnvDeploy,
        JobType::EnvUpdate => &super::env_update::EnvUpdate,
        JobType::EnvPromote => &super::env_promote::EnvPromote,
        JobType::EnvRestore => &super::env_restore::EnvRestore,
        JobType::EnvCacheToggle => &super::env_cache_toggle::EnvCacheToggle,
        JobType::CachePurge => &super::cache_purge::CachePurge,
        JobType::BackupCreate => &super::backup_create::BackupCreate,
        JobType::DomainAdd => &super::domain_add::DomainAdd,
        JobType::DomainRemove => &super::domain_remove::DomainRemove,
        JobType::DriftCheck => &super::drift_check::DriftCheck,
        JobType::HealthCheck => &super::health_check::HealthCheck,
        JobType::BackupCleanup => &super::backup_cleanup::BackupCleanup,
        JobType::ReleaseRollback => &super::release_rollback::ReleaseRollback,
        JobType::BackupVerify => &super::backup_verify::BackupVerify,
        JobType::EnvDelete => &super::env_delete::EnvDelete,
        JobType::SiteDelete => &super::env_delete::SiteDelete,
        JobType::RestoreDrill => &super::restore_drill::RestoreDrill,
        JobType::SafeUpdate => &super::safe_update::SafeUpdate,
    }
}

/// The kind of a stored job.
pub fn of(job: &JobRecord) -> &'static dyn JobKind {
    kind(job.job_type)
}

/// The follow-up types as an SQL list, `('health_check', 'release_rollback')`, in declaration
/// order (built once, into the claim statement).
pub fn follow_up_sql_list() -> String {
    let names: Vec<String> = JobType::ALL
        .iter()
        .filter(|t| kind(**t).follow_up())
        .map(|t| format!("'{}'", t.as_str()))
        .collect();
    format!("({})", names.join(", "))
}

/// A value a default hook returns: no effect.
pub trait Nothing {
    fn nothing() -> Self;
}

impl Nothing for () {
    fn nothing() -> Self {}
}

impl Nothing for ResolvedVars {
    fn nothing() -> Self {
        ResolvedVars::default()
    }
}

impl<T: Nothing, E> Nothing for Result<T, E> {
    fn nothing() -> Self {
        Ok(T::nothing())
    }
}

/// The future of a default hook: ready at once and zero-sized.
struct Ready<T>(PhantomData<fn() -> T>);

impl<T: Nothing> Future for Ready<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<T> {
        Poll::Ready(T::nothing())
    }
}

/// A hook with no effect; boxing the zero-sized [`Ready`] does not allocate (the queue's hot
/// path runs these for every job of a type without effects).
fn nothing<'a, T: Nothing + Send + 'a>() -> Hook<'a, T> {
    Box::pin(Ready(PhantomData))
}

/// Whether a failed run with `code` may have changed the node.
pub fn may_have_changed(code: JobErrorCode) -> bool {
    !code.pre_mutation() && code != JobErrorCode::AnsibleHostUnreachable
}

/// Whether a failed run with `code` certainly reached the node (a task ran there or the
/// playbook reported a result from it), so the node's `last_seen_at` is refreshed. Unknown
/// cases (lost worker, timeouts, runs that never started) do not count.
pub fn reached_node(code: JobErrorCode) -> bool {
    use JobErrorCode as C;
    matches!(
        code,
        C::AnsibleHostFailed
            | C::PreconditionFailed
            | C::DriftDetected
            | C::BackupChecksumMismatch
            | C::ArchiveInvalid
            | C::SourceFetchFailed
            | C::BackupStorageUnreachable
            | C::DrillFailed
    )
}

/// Whether an earlier attempt of `job` may have changed the node: the payload's
/// [`Attempts::earlier_attempt_ran`], set once at a retry and never cleared, so a later refusal
/// or a cancel of the queued retry applies the "it ran" transitions (jobs.md §3, §8).
pub fn earlier_attempt_ran(job: &JobRecord) -> bool {
    super::payload::read::<Attempts>(job).earlier_attempt_ran
}

/// A failed attempt is retried: remember whether it may have changed the node.
pub async fn on_retry(
    conn: &mut AnyConnection,
    job: &JobRecord,
    code: JobErrorCode,
) -> Result<(), StoreError> {
    if !may_have_changed(code) || earlier_attempt_ran(job) {
        return Ok(());
    }
    // The stored payload, not the in-memory one: it may hold fields fixed since the claim.
    super::payload::update_stored(conn, job, |a: &mut Attempts| a.earlier_attempt_ran = true).await
}

/// What [`JobKind::extra_vars`] reads besides the job: the store, the secrets, the
/// configuration and the job's node.
pub struct VarsContext<'a> {
    pub store: &'a Store,
    pub secrets: &'a Secrets,
    pub config: &'a Config,
    pub node: &'a NodeRecord,
}

/// DB-resolved extra-vars of a run, and which of their values are secret (masked in output).
#[derive(Debug, Default)]
pub struct ResolvedVars {
    pub vars: serde_json::Map<String, Value>,
    pub secrets: Vec<String>,
}

/// Why a job's variables could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum VarsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("reading a secret failed: {0}")]
    Secrets(#[from] crate::secrets::SecretsError),
    #[error("{0} is missing")]
    Missing(&'static str),
}

/// The extra-vars a job's playbook needs beyond its payload (jobs.md §12).
pub async fn extra_vars(
    store: &Store,
    secrets: &Secrets,
    config: &Config,
    job: &JobRecord,
    node: &NodeRecord,
) -> Result<ResolvedVars, VarsError> {
    let cx = VarsContext {
        store,
        secrets,
        config,
        node,
    };
    of(job).extra_vars(&cx, job).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_hooks_do_not_allocate() {
        assert_eq!(std::mem::size_of::<Ready<Result<(), StoreError>>>(), 0);
        assert_eq!(
            std::mem::size_of::<Ready<Result<Result<(), String>, StoreError>>>(),
            0
        );
    }

    #[test]
    fn the_follow_ups_are_health_check_and_release_rollback() {
        assert_eq!(follow_up_sql_list(), "('health_check', 'release_rollback')");
    }

    #[test]
    fn every_type_has_its_own_playbook() {
        let mut seen = std::collections::HashSet::new();
        for t in JobType::ALL {
            let p = kind(*t).playbook();
            assert_eq!(p, format!("{}.yml", t.as_str().replace('_', "-")));
            assert!(seen.insert(p));
            assert_eq!(kind(*t).max_attempts(), 3);
        }
    }
}
