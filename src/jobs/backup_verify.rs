//! `backup_verify` (issue 11, beyond the spec's job types): re-reads every stored artifact of a
//! completed backup through `pressluft node backup-verify` and `backup-verify.yml`, checking
//! the manifest against the recorded checksum and each artifact against the manifest; records
//! `verified_at` and `verify_status` (`ok` / `mismatch`, the job failing with
//! `BACKUP_CHECKSUM_MISMATCH`).

use serde::{Deserialize, Serialize};

use super::payload::Attempts;

/// The payload of `backup_verify`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BackupVerifyPayload {
    pub backup_id: String,
    #[serde(flatten)]
    pub attempts: Attempts,
}
