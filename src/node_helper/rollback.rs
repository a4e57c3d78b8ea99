//! `pressluft node release-rollback` (`release_rollback`, backups-restore-promotion.md §6): an
//! environment back on an earlier release, its database (and uploads) restored from the
//! pre-operation backup when the spec names one.
//!
//! Check phase (changes nothing): the target release exists complete
//! (`wp-includes/version.php`), the environment root and its `releases/` are no links, the
//! node's PHP version is known, and with `restore` the backup verifies (exit 5,
//! `BACKUP_CHECKSUM_MISMATCH`), holds what is restored, and `shared/uploads` is no link. Any
//! other refusal exits 3 (`PRECONDITION_FAILED`). Apply: the restore library
//! ([`super::backup::restore`]) restores the database (and uploads), then
//! [`super::switch::go_live`] makes the target live, the failed release protected from pruning
//! so it stays inspectable. Idempotent: a retry after a crash verifies, restores and switches
//! again.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::path::Path;

use serde::Serialize;
use tokio::runtime::Handle;

use super::backup::{self, restore, BackupError, DB_ARTIFACT, FILES_ARTIFACT};
use super::database::{is_identifier, require_existing};
use super::spec::ReleaseRollbackSpec;
use super::switch::{go_live, WentLive};
use super::{nofollow, services};

/// What was restored.
#[derive(Debug, Default, Serialize)]
pub struct Restored {
    pub database: bool,
    pub uploads: bool,
}

/// The stdout line (the result file of release-rollback.yml).
#[derive(Debug, Serialize)]
pub struct RollbackResult {
    pub current_release_name: String,
    pub restored: Restored,
    pub went_live: WentLive,
}

/// `pressluft node release-rollback`: the spec on stdin, the result on stdout; a failure is one
/// line on stderr starting with its code, exit 3 / 5 / 1.
pub fn run() -> anyhow::Result<()> {
    backup::finish(backup::on_runtime(|handle| {
        let spec: ReleaseRollbackSpec = backup::read_spec()?;
        rollback(&spec, handle)
    })?)
}

/// A release directory name: one plain path component.
fn is_release_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0')
}

/// Check, then apply (see the module doc).
pub fn rollback(
    spec: &ReleaseRollbackSpec,
    handle: &Handle,
) -> Result<RollbackResult, BackupError> {
    let precondition = BackupError::Precondition;
    let target = spec.target_release_name.as_str();
    if !is_release_name(target) || !is_release_name(&spec.failed_release_name) {
        return Err(BackupError::Spec(
            "target_release_name and failed_release_name must be release directory names".into(),
        ));
    }
    let env_root = Path::new(&spec.go_live.env_root);
    if !env_root.is_absolute() {
        return Err(BackupError::Spec(
            "go_live.env_root must be absolute".into(),
        ));
    }
    let root = nofollow::open_dir(env_root).map_err(|e| precondition(e.to_string()))?;
    let releases = nofollow::open_dir_at(root.as_fd(), OsStr::new("releases"))
        .map_err(|e| precondition(format!("{}/releases: {e}", env_root.display())))?;
    let complete = match nofollow::open_dir_at(releases.as_fd(), OsStr::new(target)) {
        Ok(dir) => nofollow::has_file(dir.as_fd(), "wp-includes/version.php").unwrap_or(false),
        Err(_) => false,
    };
    if !complete {
        return Err(precondition(format!(
            "the target release {target} does not exist complete (no wp-includes/version.php)"
        )));
    }
    let php_version = services::php_version(&spec.node.supported_os)
        .map_err(|e| precondition(format!("{e:#}")))?;
    let verified = match &spec.restore {
        None => None,
        Some(r) => {
            if !is_identifier(&r.database) {
                return Err(BackupError::Spec(
                    "restore.database is not a valid database name".into(),
                ));
            }
            require_existing(&[r.database.as_str()]).map_err(|e| precondition(format!("{e:#}")))?;
            let verified = restore::open_verified(r, handle)?;
            verified.skipped_tables(&r.skip_tables)?;
            if !verified.has(DB_ARTIFACT) {
                return Err(precondition("the backup holds no database dump".into()));
            }
            if r.uploads {
                if !verified.has(FILES_ARTIFACT) {
                    return Err(precondition("the backup holds no files archive".into()));
                }
                restore::check_uploads_target(env_root)?;
            }
            Some((r, verified))
        }
    };
    drop((releases, root));

    let mut restored = Restored::default();
    if let Some((r, verified)) = &verified {
        verified.restore_database(&r.database, &r.skip_tables)?;
        restored.database = true;
        // An import may have changed the table prefix: the restored tables have the backup's.
        let prefix = &verified.manifest.backup.table_prefix;
        if super::wp_config::is_table_prefix(prefix) {
            super::wp_config::set_table_prefix(
                &spec.go_live.env_root,
                &spec.go_live.env_user,
                prefix,
            )
            .map_err(|e| BackupError::Failed(format!("restoring the table prefix: {e:#}")))?;
        }
        if r.uploads {
            verified.restore_uploads(env_root, &spec.go_live.env_user)?;
            restored.uploads = true;
        }
    }
    let went_live = go_live(
        &spec.go_live,
        target,
        &[spec.failed_release_name.as_str()],
        &php_version,
    )
    .map_err(|e| BackupError::Failed(format!("making {target} live: {e:#}")))?;
    Ok(RollbackResult {
        current_release_name: target.to_string(),
        restored,
        went_live,
    })
}
