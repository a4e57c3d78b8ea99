//! What a job sends a node about a backup's storage: the node helper's
//! [`StorageSpec`](crate::node_helper::backup::storage::StorageSpec), built from the backup's
//! row (type and path, fixed at creation) and the current S3 settings (endpoint, region) and
//! credentials (secrets store, `backup_s3_credentials`), plus the backup's data key. Used by
//! every job that touches a backup's artifacts (create, verify, cleanup; restore later), so
//! there is one way to reach them.

use serde::Deserialize;
use sqlx::AnyConnection;

use super::data_key_secret;
use crate::domain::BackupStorageType;
use crate::jobs::kinds::VarsError;
use crate::node_helper::backup::storage::StorageSpec;
use crate::secrets::Secrets;
use crate::store::backups::BackupRecord;
use crate::store::settings::fetch_setting;

/// The secrets-store key of the S3 credentials (data-model.md, secrets store).
pub const S3_CREDENTIALS_SECRET: &str = "backup_s3_credentials";

/// Region used when `backup_s3_region` is not set (S3-compatible servers ignore it).
pub const DEFAULT_S3_REGION: &str = "us-east-1";

/// `backup_s3_credentials_json` (data-model.md).
#[derive(Deserialize)]
pub struct S3Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("S3Credentials(<redacted>)")
    }
}

/// A backup's storage and key as a job sends them, and the secret values among them (for the
/// runner's output masking).
pub struct BackupAccess {
    pub storage: StorageSpec,
    pub data_key: String,
    pub secrets: Vec<String>,
}

/// `s3://bucket/some/prefix/` → (`bucket`, `some/prefix`).
pub fn split_s3_path(storage_path: &str) -> Option<(&str, &str)> {
    let rest = storage_path.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/')?;
    let prefix = prefix.trim_matches('/');
    (!bucket.is_empty() && !prefix.is_empty()).then_some((bucket, prefix))
}

/// The storage and data key of `backup`.
pub async fn backup_access(
    conn: &mut AnyConnection,
    secrets: &Secrets,
    backup: &BackupRecord,
) -> Result<BackupAccess, VarsError> {
    let data_key = secrets
        .get(&data_key_secret(&backup.id))?
        .ok_or(VarsError::Missing("the backup's data key"))?
        .expose()
        .to_string();
    let mut secret_values = vec![data_key.clone()];
    let storage = match backup.storage_type {
        BackupStorageType::Local => StorageSpec::Local {
            path: backup.storage_path.trim_end_matches('/').into(),
        },
        BackupStorageType::S3 => {
            let (bucket, prefix) = split_s3_path(&backup.storage_path)
                .ok_or(VarsError::Missing("the backup's S3 bucket and prefix"))?;
            let credentials: S3Credentials = secrets
                .get(S3_CREDENTIALS_SECRET)?
                .and_then(|s| serde_json::from_str(s.expose()).ok())
                .ok_or(VarsError::Missing("the S3 credentials (backup settings)"))?;
            secret_values.push(credentials.secret_access_key.clone());
            StorageSpec::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
                endpoint: fetch_setting(conn, "backup_s3_endpoint").await?,
                region: fetch_setting(conn, "backup_s3_region")
                    .await?
                    .unwrap_or_else(|| DEFAULT_S3_REGION.to_string()),
                access_key_id: credentials.access_key_id,
                secret_access_key: credentials.secret_access_key,
            }
        }
    };
    Ok(BackupAccess {
        storage,
        data_key,
        secrets: secret_values,
    })
}

/// The backup S3 storage's access without a backup (bucket and prefix empty; the node fills
/// them from the `s3://bucket/key` it reads): for a deploy archive in the backup bucket or
/// another one the same credentials reach. The secret key is among the returned secrets.
pub async fn s3_source_access(
    conn: &mut AnyConnection,
    secrets: &Secrets,
) -> Result<BackupAccess, VarsError> {
    let credentials: S3Credentials = secrets
        .get(S3_CREDENTIALS_SECRET)?
        .and_then(|s| serde_json::from_str(s.expose()).ok())
        .ok_or(VarsError::Missing("the S3 credentials (backup settings)"))?;
    let secret_values = vec![credentials.secret_access_key.clone()];
    Ok(BackupAccess {
        storage: StorageSpec::S3 {
            bucket: String::new(),
            prefix: String::new(),
            endpoint: fetch_setting(conn, "backup_s3_endpoint").await?,
            region: fetch_setting(conn, "backup_s3_region")
                .await?
                .unwrap_or_else(|| DEFAULT_S3_REGION.to_string()),
            access_key_id: credentials.access_key_id,
            secret_access_key: credentials.secret_access_key,
        },
        data_key: String::new(),
        secrets: secret_values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_paths_split_into_bucket_and_prefix() {
        assert_eq!(
            split_s3_path("s3://bk/pressluft/s/e/b/"),
            Some(("bk", "pressluft/s/e/b"))
        );
        assert_eq!(split_s3_path("s3://bk/"), None);
        assert_eq!(split_s3_path("/var/backups/x/"), None);
    }
}
