//! `backup_create`: one backup of an environment (jobs.md §11, backups-restore-promotion.md §1),
//! streamed by `pressluft node backup-create` (src/node_helper/backup/) through
//! `backup-create.yml`. The row is inserted `pending` by the backup service
//! ([`crate::backups`]); this kind moves it `running → completed | failed`.

use serde::{Deserialize, Serialize};

use super::payload::Attempts;
use crate::domain::BackupScope;

/// The payload of `backup_create` (jobs.md §11).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackupCreatePayload {
    pub backup_id: String,
    pub backup_scope: BackupScope,
    #[serde(flatten)]
    pub attempts: Attempts,
}

impl Default for BackupCreatePayload {
    fn default() -> Self {
        Self {
            backup_id: String::new(),
            backup_scope: BackupScope::Full,
            attempts: Attempts::default(),
        }
    }
}
