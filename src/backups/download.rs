//! Download of one artifact of a completed backup (dashboard, session auth): the node reads it
//! from its storage with `pressluft node backup-read` (`compressed`: decrypted, still zstd, so
//! `zstd -d` opens it), run over SSH with the control plane's key ([`crate::nodes::command`]), the read spec (storage credentials, data key) on stdin only. Its stdout is the
//! response body, read in bounded chunks. The node helper's stderr is never shown: a failure
//! before the first byte is a `node_unreachable` error naming the helper's code only.
//!
//! Downloads are audited `backup_download` on the backup: `succeeded` when the first bytes
//! arrive, `failed` when the node could not serve it, `rejected` when refused up front.

use crate::node_helper::backup::verify::ReadSpec;
use crate::node_helper::spec::CONTRACT_VERSION;

use axum::body::Bytes;
use futures_util::{stream, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdout};
use uuid::Uuid;

use super::storage::backup_access;
use super::Backups;
use crate::config::Config;
use crate::domain::BackupStatus;
use crate::node_helper::backup::{DB_ARTIFACT, FILES_ARTIFACT};
use crate::nodes::command::{read_bounded, ssh_command, KeyDir};
use crate::secrets::Secrets;
use crate::services::{AuditEntry, ServiceError};
use crate::sites::Actor;
use crate::store::audit::{insert_audit, NewAudit};
use crate::store::backups::BackupRecord;
use crate::store::nodes::NodeRecord;

/// The audit action of a download.
pub const DOWNLOAD_ACTION: &str = "backup_download";

/// Bytes read from the node per body chunk.
const CHUNK: usize = 64 * 1024;

/// Why a download could not start.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// Refused before anything ran (unknown backup, not completed, artifact not in it).
    #[error(transparent)]
    Refused(#[from] ServiceError),
    /// The node could not serve it; the message names the helper's error code at most.
    #[error("{0}")]
    Node(String),
}

/// What the route streams: a safe file name and the artifact's bytes.
pub struct Download {
    pub file_name: String,
    pub body: std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>,
}

/// A validated download: the backup, its node and the read spec.
struct Plan {
    backup: BackupRecord,
    node: NodeRecord,
    file_name: String,
    spec: String,
}

/// `<site>-<env>-<YYYYMMDD-HHMMSS>-<artifact>`, only `[a-z0-9-]` before the artifact's name.
pub fn file_name(site_slug: &str, env_slug: &str, created_at: &str, artifact: &str) -> String {
    let stamp: String = created_at
        .chars()
        .take(19)
        .filter_map(|c| match c {
            '0'..='9' => Some(c),
            'T' => Some('-'),
            _ => None,
        })
        .collect();
    let prefix: String = format!("{site_slug}-{env_slug}-{stamp}")
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-') => c,
            _ => '-',
        })
        .collect();
    // `artifact` is one of the fixed names (checked before).
    format!("{prefix}-{artifact}")
}

impl Backups {
    /// Starts streaming `artifact` of backup `backup_id` from its node.
    pub async fn download(
        &self,
        actor: &Actor,
        config: &Config,
        backup_id: &str,
        artifact: &str,
    ) -> Result<Download, DownloadError> {
        let audit = actor_audit(actor, backup_id);
        let plan = match self.plan(backup_id, artifact).await {
            Ok(plan) => plan,
            Err(e @ ServiceError::NotFound(_)) => return Err(e.into()),
            Err(e) => {
                let m = self.mutations.begin().await?;
                return Err(self.mutations.refuse(m, audit, e).await.into());
            }
        };
        match open(config, &self.secrets, &plan).await {
            Ok(body) => {
                let m = self.mutations.begin().await?;
                self.mutations.complete(m, audit).await?;
                tracing::info!(backup = %plan.backup.id, artifact, "backup download started");
                Ok(Download {
                    file_name: plan.file_name,
                    body,
                })
            }
            Err(message) => {
                let mut m = self.mutations.begin().await?;
                let id = Uuid::new_v4().to_string();
                let row = NewAudit {
                    id: &id,
                    user_id: audit.user_id,
                    action: audit.action,
                    resource_type: audit.resource_type,
                    resource_id: audit.resource_id,
                    result: "failed",
                    job_id: None,
                };
                insert_audit(&mut m.tx, &row, &m.now)
                    .await
                    .map_err(ServiceError::from)?;
                m.tx.commit().await.map_err(ServiceError::from)?;
                tracing::warn!(backup = %plan.backup.id, artifact, %message, "backup download failed");
                Err(DownloadError::Node(message))
            }
        }
    }

    async fn plan(&self, backup_id: &str, artifact: &str) -> Result<Plan, ServiceError> {
        let store = &self.store;
        let backup = store
            .get_backup(backup_id)
            .await?
            .ok_or(ServiceError::NotFound("backup"))?;
        if backup.status != BackupStatus::Completed {
            return Err(ServiceError::Conflict(format!(
                "only a completed backup can be downloaded; this one is {}",
                backup.status
            )));
        }
        let in_backup = match artifact {
            DB_ARTIFACT => backup.backup_scope.has_db(),
            FILES_ARTIFACT => backup.backup_scope.has_files(),
            _ => {
                return Err(ServiceError::invalid(
                    "artifact",
                    "must be one of: db.sql.zst, files.tar.zst",
                ))
            }
        };
        if !in_backup {
            return Err(ServiceError::invalid(
                "artifact",
                &format!(
                    "a {} backup has no {artifact}",
                    backup.backup_scope.as_str()
                ),
            ));
        }
        let env = store
            .get_environment(&backup.environment_id)
            .await?
            .ok_or(ServiceError::NotFound("environment"))?;
        let site = store
            .get_site(&env.site_id)
            .await?
            .ok_or(ServiceError::NotFound("site"))?;
        let node = store
            .get_node(&env.node_id)
            .await?
            .ok_or(ServiceError::NotFound("node"))?;
        let mut conn = store.pool().acquire().await.map_err(ServiceError::from)?;
        let access = backup_access(&mut conn, &self.secrets, &backup)
            .await
            .map_err(|e| ServiceError::Conflict(format!("the backup cannot be read: {e}")))?;
        let spec = serde_json::to_string(&ReadSpec {
            contract_version: CONTRACT_VERSION,
            artifact: artifact.to_string(),
            storage: access.storage,
            data_key: access.data_key.into(),
            compressed: true,
        })
        .expect("the read spec serializes");
        Ok(Plan {
            file_name: file_name(&site.slug, &env.slug, &backup.created_at, artifact),
            backup,
            node,
            spec,
        })
    }
}

fn actor_audit<'a>(actor: &'a Actor, backup_id: &'a str) -> AuditEntry<'a> {
    AuditEntry {
        user_id: &actor.user_id,
        action: DOWNLOAD_ACTION,
        resource_type: "backup",
        resource_id: backup_id,
    }
}

/// Runs `backup-read` on the node and waits for its first bytes; `Err` = a message for the user
/// (no raw output).
async fn open(
    config: &Config,
    secrets: &Secrets,
    plan: &Plan,
) -> Result<std::pin::Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>, String> {
    let internal = |what: &str, e: &dyn std::fmt::Display| {
        tracing::warn!(error = %e, "backup download: {what}");
        format!("the download could not start ({what})")
    };
    let dir = KeyDir::new(config, secrets, "download-").map_err(|e| e.to_string())?;
    let mut child = ssh_command(config, &dir.key_path(), &plan.node, "backup-read")
        .spawn()
        .map_err(|e| internal("starting ssh", &e))?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin
        .write_all(plan.spec.as_bytes())
        .await
        .map_err(|e| internal("sending the read spec", &e))?;
    drop(stdin);
    let mut stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let stderr = tokio::spawn(async move {
        String::from_utf8_lossy(&read_bounded(stderr, 16 * 1024).await).into_owned()
    });
    let mut first = vec![0u8; CHUNK];
    let n = stdout
        .read(&mut first)
        .await
        .map_err(|e| internal("reading from the node", &e))?;
    if n == 0 {
        let status = child
            .wait()
            .await
            .map_err(|e| internal("waiting for ssh", &e))?;
        let err = stderr.await.unwrap_or_default();
        return Err(node_failure(status.code(), &err));
    }
    first.truncate(n);
    // The stream owns the child and the key's directory until the last byte.
    let state = Reading {
        child,
        stdout,
        _dir: dir,
        first: Some(Bytes::from(first)),
        done: false,
    };
    Ok(Box::pin(stream::unfold(state, Reading::next)))
}

/// The user-facing sentence of a failed read: the helper's code (its stderr's first word when
/// it is one) or SSH's failure, nothing else of the output.
fn node_failure(code: Option<i32>, stderr: &str) -> String {
    let first = stderr.split_whitespace().next().unwrap_or("");
    let helper_code = first.trim_end_matches(':');
    let is_code = helper_code.starts_with("BACKUP_")
        && helper_code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c == '_');
    match code {
        Some(255) => "the node could not be reached over SSH".to_string(),
        _ if is_code => format!("the node could not read the backup ({helper_code})"),
        _ => "the node could not read the backup".to_string(),
    }
}

struct Reading {
    child: Child,
    stdout: ChildStdout,
    _dir: KeyDir,
    first: Option<Bytes>,
    done: bool,
}

impl Reading {
    async fn next(mut self) -> Option<(std::io::Result<Bytes>, Self)> {
        if self.done {
            return None;
        }
        if let Some(first) = self.first.take() {
            return Some((Ok(first), self));
        }
        let mut buf = vec![0u8; CHUNK];
        match self.stdout.read(&mut buf).await {
            Ok(0) => {
                self.done = true;
                // A helper that failed midway must not look like a complete file.
                match self.child.wait().await {
                    Ok(s) if s.success() => None,
                    _ => Some((Err(std::io::Error::other("the node stopped sending")), self)),
                }
            }
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), self))
            }
            Err(e) => {
                self.done = true;
                Some((Err(e), self))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        assert_eq!(
            file_name(
                "shop",
                "production",
                "2026-12-02T13:44:06.123Z",
                DB_ARTIFACT
            ),
            "shop-production-20261202-134406-db.sql.zst"
        );
        assert_eq!(
            file_name("a\"b/../c", "x y", "2026-12-02T13:44:06Z", FILES_ARTIFACT),
            "a-b----c-x-y-20261202-134406-files.tar.zst"
        );
    }

    #[test]
    fn failures_show_the_code_only() {
        assert_eq!(
            node_failure(
                Some(4),
                "BACKUP_STORAGE_UNREACHABLE: s3://secret-bucket timed out"
            ),
            "the node could not read the backup (BACKUP_STORAGE_UNREACHABLE)"
        );
        assert_eq!(
            node_failure(Some(1), "some raw /etc/passwd output"),
            "the node could not read the backup"
        );
        assert_eq!(
            node_failure(Some(255), "ssh: connect refused"),
            "the node could not be reached over SSH"
        );
    }
}
