//! Safe automatic updates (issue 16; beyond the spec — docs/decisions.md "Safe updates (issue
//! 16): runs, decisions and scheduling"): before production gets its plugin, theme and core
//! updates, a `safe_update` job tries them on a throwaway clone of production, screenshots the
//! check pages before and after, compares them, and only when every page looks the same (and
//! nothing fatals) applies exactly those versions to production through the normal update job.
//! Otherwise the run waits for a person, who approves or dismisses it.
//!
//! Submodules: [`service`] (runs, decisions, the schedule, retention), [`validate`] (the site's
//! safe-update settings as `PATCH /api/sites/{id}` accepts them), [`decide`] (the verdicts
//! from what the job's playbook reported).

pub mod decide;
pub mod service;
pub mod validate;

pub use service::SafeUpdates;
