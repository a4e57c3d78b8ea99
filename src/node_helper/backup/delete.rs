//! `backup-delete`: removes every stored object of expired backups (`backup_cleanup`,
//! backups-restore-promotion.md §1 "Cleanup"). Each backup is deleted on its own and reported
//! `deleted` or `failed` with a reason, so one unreachable bucket does not hold back the others;
//! a backup already gone counts as deleted (a retried cleanup repeats itself safely).
//!
//! A local backup is a directory `/var/backups/pressluft/<site>/<env>/<backup>`; nothing outside
//! that root is ever touched (the path is checked, then opened component by component without
//! following links, and the directory removed through its opened parent: a link planted in it is
//! removed, never followed). An S3 backup is every object under its prefix (list, then delete).

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::path::{Component, Path};

use futures_util::StreamExt;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use super::storage::{classify, Storage, StorageSpec};
use super::BackupError;
use crate::node_helper::nofollow::{self, OpenError};

/// The only directory local backups live in (the control plane records paths below it as
/// `backups::LOCAL_BACKUP_ROOT`).
pub const LOCAL_ROOT: &str = "/var/backups/pressluft";

/// The stdin document of `backup-delete`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteSpec {
    /// [`crate::node_helper::spec::CONTRACT_VERSION`]; another is refused (exit 3).
    pub contract_version: u32,
    pub backups: Vec<DeleteTarget>,
}

impl DeleteSpec {
    /// The spec, refused (`BACKUP_SPEC_INVALID`, exit 3) when it comes from a control plane of
    /// another contract version.
    pub fn checked(self) -> Result<Self, BackupError> {
        use crate::node_helper::spec::{version_refusal, CONTRACT_VERSION};
        if self.contract_version != CONTRACT_VERSION {
            return Err(BackupError::Spec(version_refusal(Some(u64::from(
                self.contract_version,
            )))));
        }
        Ok(self)
    }
}

/// One backup to delete.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteTarget {
    pub backup_id: String,
    pub storage: StorageSpec,
}

/// What happened to one backup.
#[derive(Debug, Serialize, PartialEq)]
pub struct DeleteOutcome {
    pub backup_id: String,
    /// `deleted` or `failed`.
    pub status: &'static str,
    /// Why it failed (starts with its error code); absent when deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How many objects or directory entries went (0 when it was gone already).
    pub removed: u64,
}

/// The stdout line of `backup-delete`, printed whatever the outcome.
#[derive(Debug, Serialize)]
pub struct DeleteReport {
    pub backups: Vec<DeleteOutcome>,
}

/// 0 when every backup was deleted; 4 when one failed because its storage was unreachable; 1
/// when one failed otherwise.
pub fn exit_code(failures: &[BackupError]) -> i32 {
    if failures.is_empty() {
        0
    } else if failures
        .iter()
        .any(|e| matches!(e, BackupError::Unreachable(_)))
    {
        super::EXIT_UNREACHABLE
    } else {
        super::EXIT_FAILED
    }
}

/// Deletes every backup of `spec`; the failures are returned beside the report (for the exit
/// code).
pub fn delete(spec: DeleteSpec, handle: &Handle) -> (DeleteReport, Vec<BackupError>) {
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for target in spec.backups {
        match delete_one(&target.storage, handle) {
            Ok(removed) => outcomes.push(DeleteOutcome {
                backup_id: target.backup_id,
                status: "deleted",
                reason: None,
                removed,
            }),
            Err(e) => {
                outcomes.push(DeleteOutcome {
                    backup_id: target.backup_id,
                    status: "failed",
                    reason: Some(e.to_string()),
                    removed: 0,
                });
                failures.push(e);
            }
        }
    }
    (DeleteReport { backups: outcomes }, failures)
}

fn delete_one(spec: &StorageSpec, handle: &Handle) -> Result<u64, BackupError> {
    match spec {
        StorageSpec::Local { path } => delete_local(path),
        StorageSpec::S3 { .. } => match Storage::open(spec, handle)? {
            Storage::S3 {
                store,
                prefix,
                handle,
            } => handle.block_on(async {
                // The whole listing first: deleting while paging could skip objects.
                let mut locations = Vec::new();
                let mut listing = store.list(Some(&prefix));
                while let Some(meta) = listing.next().await {
                    let meta = meta.map_err(|e| classify(e, "listing the backup's objects"))?;
                    locations.push(meta.location);
                }
                for location in &locations {
                    match store.delete(location).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => return Err(classify(e, &format!("deleting {location}"))),
                    }
                }
                Ok(locations.len() as u64)
            }),
            Storage::Local(_) => unreachable!("an S3 spec opens an S3 storage"),
        },
    }
}

/// `/var/backups/pressluft/<site>/<env>/<backup>` with plain components: the only local paths
/// this command deletes.
fn check_local_path(path: &Path) -> Result<(), BackupError> {
    let below = path
        .strip_prefix(LOCAL_ROOT)
        .map_err(|_| BackupError::Spec(format!("storage.path must be below {LOCAL_ROOT}/")))?;
    let components: Vec<_> = below.components().collect();
    if components.len() != 3 || !components.iter().all(|c| matches!(c, Component::Normal(_))) {
        return Err(BackupError::Spec(format!(
            "storage.path must be {LOCAL_ROOT}/<site>/<environment>/<backup>"
        )));
    }
    Ok(())
}

fn delete_local(path: &Path) -> Result<u64, BackupError> {
    check_local_path(path)?;
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(BackupError::Spec("storage.path has no parent".into()));
    };
    let parent_fd = match nofollow::open_dir(parent) {
        Ok(fd) => fd,
        Err(OpenError::Missing(_)) => return Ok(0),
        Err(e) => return Err(BackupError::Failed(e.to_string())),
    };
    let removed = match nofollow::kind_at(parent_fd.as_fd(), name)
        .map_err(|e| BackupError::Failed(format!("{}: {e}", path.display())))?
    {
        None => 0,
        Some(libc::S_IFDIR) => {
            let dir = nofollow::open_dir_at(parent_fd.as_fd(), name)
                .map_err(|e| BackupError::Failed(format!("{}: {e}", path.display())))?;
            let entries = std::fs::read_dir(nofollow::fd_path(&dir))
                .map(|d| d.count() as u64)
                .unwrap_or(0);
            drop(dir);
            // Through the opened parent; std's remove_dir_all removes links below, never
            // following them.
            std::fs::remove_dir_all(nofollow::fd_path(&parent_fd).join(name))
                .map_err(|e| BackupError::Failed(format!("removing {}: {e}", path.display())))?;
            entries
        }
        Some(_) => {
            return Err(BackupError::Failed(format!(
                "{} is not a directory (a link?); refusing to touch it",
                path.display()
            )))
        }
    };
    prune_empty_parents(parent);
    Ok(removed)
}

/// Removes the environment's and the site's backup directories once empty (best effort).
fn prune_empty_parents(env_dir: &Path) {
    for dir in [Some(env_dir), env_dir.parent()].into_iter().flatten() {
        let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
            return;
        };
        if dir == Path::new(LOCAL_ROOT) || !dir.starts_with(LOCAL_ROOT) {
            return;
        }
        let Ok(parent_fd) = nofollow::open_dir(parent) else {
            return;
        };
        if nofollow::kind_at(parent_fd.as_fd(), name).ok().flatten() != Some(libc::S_IFDIR)
            || std::fs::remove_dir(nofollow::fd_path(&parent_fd).join(OsStr::new(name))).is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_backup_directories_below_the_root_are_deletable() {
        for ok in [
            "/var/backups/pressluft/s/e/b",
            "/var/backups/pressluft/s/e/b/",
        ] {
            assert!(check_local_path(Path::new(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "/",
            "/etc",
            "/var/backups/pressluft",
            "/var/backups/pressluft/s/e",
            "/var/backups/pressluft/s/e/b/x",
            "/var/backups/pressluft/s/../../../etc",
            "/var/backups/pressluft/s/e/..",
            "var/backups/pressluft/s/e/b",
            "/var/backups/pressluft-other/s/e/b",
        ] {
            let e = check_local_path(Path::new(bad)).unwrap_err();
            assert!(matches!(e, BackupError::Spec(_)), "{bad}");
        }
    }

    #[test]
    fn the_exit_code_is_the_worst_failure() {
        assert_eq!(exit_code(&[]), 0);
        assert_eq!(exit_code(&[BackupError::Failed("x".into())]), 1);
        assert_eq!(
            exit_code(&[
                BackupError::Failed("x".into()),
                BackupError::Unreachable("y".into())
            ]),
            4
        );
    }
}
