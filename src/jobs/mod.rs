//! The job engine: every infrastructure mutation is a row in `jobs`, claimed by a worker under
//! the one-per-site/one-per-node rule and executed through a [`runner::Runner`] (in production,
//! one Ansible playbook per job type).
//!
//! - [`engine`]: claim, execute, complete, cancel, recover — the queue's state machine.
//! - [`kinds`]: the [`kinds::JobKind`] trait and the registry [`kinds::kind`], with one
//!   module per implemented job type (`node_provision`, `site_create`, `env_create`) and the
//!   shared site-lifecycle helpers in `lifecycle`.
//! - [`payload`]: reading and updating the typed payloads (one struct per job type, in its
//!   module, built by the service that enqueues it).
//! - [`worker`], [`scheduler`]: the background loops.
//! - [`process`], [`output`]: subprocesses and their output.
//! - [`ansible`]: the Ansible runner.

pub mod ansible;
mod backup_cleanup;
mod backup_create;
mod backup_verify;
mod cache_purge;
mod domain_add;
mod domain_remove;
mod drift_check;
pub mod engine;
mod env_cache_toggle;
mod env_create;
mod env_delete;
mod env_deploy;
mod env_promote;
pub mod env_restore;
mod env_update;
pub mod errors;
mod gate;
mod health_check;
pub mod kinds;
mod lifecycle;
mod node_provision;
pub mod output;
pub mod payload;
pub mod preview_certificate;
pub mod process;
mod release_rollback;
mod restore_drill;
pub mod runner;
mod safe_update;
pub mod scheduler;
mod site_create;
mod site_import;
pub mod worker;

pub use backup_cleanup::BackupCleanupPayload;
pub use backup_create::BackupCreatePayload;
pub use backup_verify::BackupVerifyPayload;
pub use cache_purge::CachePurgePayload;
pub use domain_add::DomainAddPayload;
pub use domain_remove::DomainRemovePayload;
pub use drift_check::DriftCheckPayload;
pub use engine::{CancelOutcome, Engine};
pub use env_cache_toggle::EnvCacheTogglePayload;
pub use env_create::EnvCreatePayload;
pub use env_delete::{DeletePayload, DeleteTarget};
pub use env_deploy::EnvDeployPayload;
pub use env_promote::EnvPromotePayload;
pub use env_update::EnvUpdatePayload;
pub use errors::JobErrorCode;
pub use health_check::HealthCheckPayload;
pub use node_provision::NodeProvisionPayload;
pub use release_rollback::ReleaseRollbackPayload;
pub use restore_drill::RestoreDrillPayload;
pub use runner::{RunContext, RunOutcome, Runner, StopReason};
pub use safe_update::SafeUpdatePayload;
pub use site_create::SiteCreatePayload;
pub use site_import::SiteImportPayload;
