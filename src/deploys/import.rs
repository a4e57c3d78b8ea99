//! Accepting a site import (`POST /api/sites/{id}/import`, the dashboard's "Import a site";
//! backups-restore-promotion.md §9): the archive's location checked (an `upload` source, as a
//! deploy's), then "env ok" for the site's production environment, then a `pending` full
//! pre-import backup and `site_import` in one transaction.
//!
//! An archive URL's credentials live only in the secrets store (as a deploy's `source_ref`);
//! an archive uploaded through the dashboard is a file under the control plane's data
//! directory ([`ImportArchive::Uploaded`]) that the job's playbook copies to
//! [`NODE_IMPORT_DIR`] on the node and the job deletes when it ends.

use std::path::PathBuf;

use super::{source, Deploys};
use crate::domain::{BackupScope, JobType, ReleaseSourceType};
use crate::jobs::SiteImportPayload;
use crate::services::{JobRequest, ServiceError};
use crate::sites::Actor;
use crate::store::sites::fetch_site;

/// Where an uploaded archive waits on the node (root only), under its stored name.
pub const NODE_IMPORT_DIR: &str = "/var/lib/pressluft/imports";

/// The secrets-store key holding an import's whole `archive_url` when it has credentials.
pub fn archive_url_secret_key(id: &str) -> String {
    format!("import/{id}/archive_url")
}

/// Where the archive of an import comes from.
#[derive(Debug, Clone)]
pub enum ImportArchive {
    /// `archive_url` as requested: http(s), `s3://bucket/key`, `file:///abs` or `/abs` on the
    /// node.
    Url(String),
    /// A file the dashboard stored under the data directory, named `<uuid>.zip` or
    /// `<uuid>.tar.gz` ([`is_upload_file_name`]); `name`: the uploaded file's name, shown in
    /// the release.
    Uploaded { file: PathBuf, name: String },
}

/// Whether `name` is an upload's stored name: `<uuid>.zip` or `<uuid>.tar.gz`.
pub fn is_upload_file_name(name: &str) -> bool {
    let stem = name
        .strip_suffix(".zip")
        .or_else(|| name.strip_suffix(".tar.gz"));
    stem.is_some_and(|s| uuid::Uuid::parse_str(s).is_ok() && s.len() == 36)
}

impl Deploys {
    /// `POST /api/sites/{id}/import`: validates `archive_url` (400 naming it), then the site
    /// (404) and its production environment ("env ok": 409), then enqueues `site_import` with
    /// its `pending` pre-import backup.
    pub async fn import(
        &self,
        actor: &Actor,
        site_id: &str,
        archive: ImportArchive,
    ) -> Result<String, ServiceError> {
        let (archive_url, archive_url_secret, upload_file, upload_name) = match &archive {
            ImportArchive::Url(url) => {
                let url = url.trim();
                if url.is_empty() {
                    return Err(ServiceError::invalid("archive_url", "is required"));
                }
                source::parse(ReleaseSourceType::Upload, url, self.allow_loopback_sources)
                    .map_err(|e| match e {
                        ServiceError::Invalid { message, .. } => {
                            ServiceError::invalid("archive_url", &message)
                        }
                        other => other,
                    })?;
                let redacted = crate::sources::redact_userinfo(url).into_owned();
                let secret = if redacted != url {
                    let key = archive_url_secret_key(&uuid::Uuid::new_v4().to_string());
                    self.secrets.put(&key, url)?;
                    Some(key)
                } else {
                    None
                };
                (redacted, secret, None, None)
            }
            ImportArchive::Uploaded { file, name } => {
                let file_name = file
                    .file_name()
                    .and_then(|n| n.to_str())
                    .filter(|n| is_upload_file_name(n))
                    .ok_or_else(|| ServiceError::invalid("archive", "invalid upload"))?;
                (
                    format!("{NODE_IMPORT_DIR}/{file_name}"),
                    None,
                    Some(file.to_string_lossy().into_owned()),
                    Some(name.clone()),
                )
            }
        };
        let mut m = self.mutations.begin().await?;
        let site = fetch_site(&mut m.tx, site_id)
            .await?
            .ok_or(ServiceError::NotFound("site"))?;
        let production = site
            .primary_environment_id
            .clone()
            .ok_or(ServiceError::NotFound("production environment"))?;
        let (mut m, env) = self
            .env_ok(m, actor, JobType::SiteImport, &production)
            .await?;
        let pre_backup_id = self
            .backups
            .add_pending(&mut m, &env, BackupScope::Full)
            .await?;
        let job = JobRequest {
            job_type: JobType::SiteImport,
            site_id: Some(&env.site_id),
            environment_id: Some(&env.id),
            node_id: &env.node_id,
            payload: SiteImportPayload {
                archive_url: archive_url.clone(),
                archive_url_secret,
                upload_file,
                upload_name,
                pre_backup_id: pre_backup_id.clone(),
                ..Default::default()
            },
        };
        let audit = actor.audit(JobType::SiteImport, ("site", &site.id));
        let job_id = self.mutations.accept(m, job, Some(audit)).await?;
        tracing::info!(site = %site.id, environment = %env.id, archive = %archive_url, pre_backup = %pre_backup_id, job = %job_id, "import accepted");
        Ok(job_id)
    }
}
