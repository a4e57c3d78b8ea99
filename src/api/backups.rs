//! Backup endpoints (api.md Backups): an environment's backups, one backup, creating one
//! (`backup_create`) and verifying a completed one (`backup_verify`). The rules (scope, node
//! active, storage chosen at creation, the data key) live in the backup service
//! ([`crate::backups::Backups`]); this module only maps HTTP to it.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{AppJson, PathId};
use super::nodes::JobAccepted;
use crate::domain::{BackupScope, BackupStatus, BackupStorageType, VerifyStatus};
use crate::http::session::CurrentSession;
use crate::sites::Actor;
use crate::state::AppState;
use crate::store::backups::BackupRecord;

/// This resource's routes (relative to `/api`), each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_backups, create_backup))
        .routes(routes!(get_backup))
        .routes(routes!(verify_backup))
}

/// A backup of an environment (its `backups` row; nothing secret: the data key lives only in
/// the secrets store).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Backup {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(format = "uuid")]
    pub environment_id: String,
    #[schema(value_type = BackupScope)]
    pub backup_scope: BackupScope,
    #[schema(value_type = BackupStatus)]
    pub status: BackupStatus,
    /// `s3` (off-site) or `local` (on the environment's node: not off-site); fixed at creation.
    #[schema(value_type = BackupStorageType)]
    pub storage_type: BackupStorageType,
    /// `s3://<bucket>/<prefix>/<site>/<env>/<backup>/` or
    /// `/var/backups/pressluft/<site>/<env>/<backup>/` on the node.
    pub storage_path: String,
    /// `created_at + backup_retention_days`, fixed at creation.
    #[schema(format = "date-time")]
    pub retention_until: String,
    /// `sha256:<hex>` of the stored manifest; set exactly when completed.
    pub checksum: Option<String>,
    /// Bytes stored (all artifacts and the manifest).
    pub size_bytes: Option<i64>,
    #[schema(format = "date-time")]
    pub created_at: String,
    #[schema(format = "date-time")]
    pub completed_at: Option<String>,
    /// When the last Verify finished.
    #[schema(format = "date-time")]
    pub verified_at: Option<String>,
    #[schema(value_type = Option<VerifyStatus>)]
    pub verify_status: Option<VerifyStatus>,
    /// Why the backup (or its cleanup) failed: a registered job error code.
    pub error_code: Option<String>,
    #[schema(format = "date-time")]
    pub updated_at: String,
    pub state_version: i64,
}

impl From<BackupRecord> for Backup {
    fn from(b: BackupRecord) -> Self {
        Backup {
            id: b.id,
            environment_id: b.environment_id,
            backup_scope: b.backup_scope,
            status: b.status,
            storage_type: b.storage_type,
            storage_path: b.storage_path,
            retention_until: b.retention_until,
            checksum: b.checksum,
            size_bytes: b.size_bytes,
            created_at: b.created_at,
            completed_at: b.completed_at,
            verified_at: b.verified_at,
            verify_status: b.verify_status,
            error_code: b.error_code,
            updated_at: b.updated_at,
            state_version: b.state_version,
        }
    }
}

/// Create-backup body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBackupRequest {
    #[schema(value_type = BackupScope)]
    pub backup_scope: String,
}

/// An accepted backup: its `backup_create` job and the new `pending` row.
#[derive(Debug, Serialize, ToSchema)]
pub struct BackupAccepted {
    #[schema(format = "uuid")]
    pub job_id: String,
    #[schema(format = "uuid")]
    pub backup_id: String,
}

/// An environment's backups, newest first.
#[utoipa::path(get, path = "/environments/{id}/backups", tag = "backups",
    params(crate::http::schema::IdPath),
    responses((status = 200, body = [Backup]), crate::http::error::IdErrors))]
pub async fn list_backups(
    State(state): State<AppState>,
    _s: CurrentSession,
    PathId(id): PathId,
) -> Result<Json<Vec<Backup>>, ApiError> {
    let backups = state.backups.list(&id).await?;
    Ok(Json(backups.into_iter().map(Backup::from).collect()))
}

/// Backs the environment up: a `pending` backup and its `backup_create` job. Kept in the
/// S3 bucket of the backup settings when one is set, else on the environment's node.
#[utoipa::path(post, path = "/environments/{id}/backups", tag = "backups",
    params(crate::http::schema::IdPath),
    request_body = CreateBackupRequest,
    responses((status = 202, body = BackupAccepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`node_not_active`: the environment's node is not active", body = ErrorBody)))]
pub async fn create_backup(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
    AppJson(body): AppJson<CreateBackupRequest>,
) -> Result<(StatusCode, Json<BackupAccepted>), ApiError> {
    let created = state
        .backups
        .create(Some(&Actor::from(&session)), &id, &body.backup_scope)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(BackupAccepted {
            job_id: created.job_id,
            backup_id: created.backup_id,
        }),
    ))
}

/// One backup.
#[utoipa::path(get, path = "/backups/{id}", tag = "backups",
    params(crate::http::schema::IdPath),
    responses((status = 200, body = Backup), crate::http::error::IdErrors))]
pub async fn get_backup(
    State(state): State<AppState>,
    _s: CurrentSession,
    PathId(id): PathId,
) -> Result<Json<Backup>, ApiError> {
    Ok(Json(state.backups.get(&id).await?.into()))
}

/// Verifies a completed backup (`backup_verify`): every artifact's SHA-256 against its
/// manifest; the result lands in `verified_at` and `verify_status`.
#[utoipa::path(post, path = "/backups/{id}/verify", tag = "backups",
    params(crate::http::schema::IdPath),
    responses((status = 202, body = JobAccepted), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`conflict`: the backup is not completed; `node_not_active`: the environment's node is not active", body = ErrorBody)))]
pub async fn verify_backup(
    State(state): State<AppState>,
    session: CurrentSession,
    PathId(id): PathId,
) -> Result<(StatusCode, Json<JobAccepted>), ApiError> {
    let job_id = state.backups.verify(&Actor::from(&session), &id).await?;
    Ok((StatusCode::ACCEPTED, Json(JobAccepted { job_id })))
}
