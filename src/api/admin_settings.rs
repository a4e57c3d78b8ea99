//! The internal settings surface `/_admin/settings` (api.md §7): same authentication and error
//! shape as `/api`, excluded from the public OpenAPI document. Groups are written whole after
//! validation; failures are `400 settings_invalid` naming the field.

use axum::extract::State;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::error::ApiError;
use super::extract::AppJson;
use crate::backups::storage::S3Credentials;
use crate::http::session::CurrentSession;
use crate::services::ServiceError;
use crate::settings::acme::AcmeSettings;
use crate::settings::backups::{BackupSettings, CredentialsChange};
use crate::settings::domain_config::{CredentialsChange as DnsCredentialsChange, DomainConfig};
use crate::settings::{SettingsView, WordPressSettings};
use crate::state::AppState;

/// Routes relative to `/_admin`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings", get(get_settings))
        .route("/settings/wordpress", put(put_wordpress))
        .route("/settings/backups", put(put_backups))
        .route("/settings/acme", put(put_acme))
        .route("/settings/domain-config", put(put_domain_config))
}

fn settings_json(view: &SettingsView) -> Value {
    let settings: Map<String, Value> = view
        .values
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone().map_or(Value::Null, Value::String)))
        .collect();
    let secrets: Map<String, Value> = view
        .secrets
        .iter()
        .map(|(k, set)| (k.to_string(), json!({ "set": set })))
        .collect();
    json!({ "settings": settings, "secrets": secrets })
}

async fn get_settings(
    State(state): State<AppState>,
    _s: CurrentSession,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(settings_json(&state.settings.view().await?)))
}

/// `PUT /_admin/settings/wordpress` body; a missing field is null.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WordPressBody {
    #[serde(default)]
    wordpress_source: Option<String>,
    #[serde(default)]
    wordpress_source_sha256: Option<String>,
    #[serde(default)]
    wordpress_update_source: Option<String>,
    /// A whole number (JSON number or string), or null/missing for the default.
    #[serde(default)]
    safe_updates_retention_days: Option<Value>,
}

/// `PUT /_admin/settings/backups` body. Numbers may be JSON numbers or strings (the stored
/// settings are text); a missing field or null is unset (its default). `backup_s3_credentials`:
/// omitted = keep, null = delete, `{access_key_id, secret_access_key}` = replace.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupsBody {
    #[serde(default)]
    backup_retention_days: Option<Value>,
    #[serde(default)]
    backup_schedule_hours: Option<Value>,
    #[serde(default)]
    backup_s3_endpoint: Option<Value>,
    #[serde(default)]
    backup_s3_region: Option<Value>,
    #[serde(default)]
    backup_s3_bucket: Option<Value>,
    #[serde(default)]
    backup_s3_prefix: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    backup_s3_credentials: Option<Option<Value>>,
}

/// A field that is present (even as null) is `Some`; a missing one stays `None` (default).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<Value>>, D::Error> {
    Option::<Value>::deserialize(d).map(Some)
}

fn settings_invalid(field: &'static str, message: &str) -> ApiError {
    ServiceError::SettingsInvalid {
        field,
        message: message.to_string(),
    }
    .into()
}

/// A scalar setting as text: strings as sent, integers in decimal, null as unset.
fn text(field: &'static str, v: Option<Value>) -> Result<Option<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) if n.is_i64() => Ok(Some(n.to_string())),
        Some(_) => Err(settings_invalid(
            field,
            "must be a string or a whole number",
        )),
    }
}

fn credentials(v: Option<Option<Value>>) -> Result<CredentialsChange, ApiError> {
    let field = "backup_s3_credentials";
    let shape = "must be null or an object {access_key_id, secret_access_key} of strings";
    match v {
        None => Ok(CredentialsChange::Keep),
        Some(None) | Some(Some(Value::Null)) => Ok(CredentialsChange::Delete),
        Some(Some(Value::Object(o))) => {
            let string = |k: &str| o.get(k).and_then(Value::as_str).map(str::to_string);
            match (
                string("access_key_id"),
                string("secret_access_key"),
                o.len(),
            ) {
                (Some(access_key_id), Some(secret_access_key), 2) => {
                    Ok(CredentialsChange::Set(S3Credentials {
                        access_key_id,
                        secret_access_key,
                    }))
                }
                _ => Err(settings_invalid(field, shape)),
            }
        }
        Some(Some(_)) => Err(settings_invalid(field, shape)),
    }
}

async fn put_backups(
    State(state): State<AppState>,
    session: CurrentSession,
    AppJson(body): AppJson<BackupsBody>,
) -> Result<Json<Value>, ApiError> {
    let input = BackupSettings {
        backup_retention_days: text("backup_retention_days", body.backup_retention_days)?,
        backup_schedule_hours: text("backup_schedule_hours", body.backup_schedule_hours)?,
        backup_s3_endpoint: text("backup_s3_endpoint", body.backup_s3_endpoint)?,
        backup_s3_region: text("backup_s3_region", body.backup_s3_region)?,
        backup_s3_bucket: text("backup_s3_bucket", body.backup_s3_bucket)?,
        backup_s3_prefix: text("backup_s3_prefix", body.backup_s3_prefix)?,
        backup_s3_credentials: credentials(body.backup_s3_credentials)?,
    };
    let view = state
        .settings
        .put_backups(&session.user.user_id, input)
        .await?;
    Ok(Json(settings_only(&view)))
}

/// `{"settings": …}`: what a PUT answers (api.md §7).
fn settings_only(view: &SettingsView) -> Value {
    let mut out = settings_json(view);
    out.as_object_mut().expect("object").remove("secrets");
    out
}

async fn put_wordpress(
    State(state): State<AppState>,
    session: CurrentSession,
    AppJson(body): AppJson<WordPressBody>,
) -> Result<Json<Value>, ApiError> {
    let view = state
        .settings
        .put_wordpress(
            &session.user.user_id,
            WordPressSettings {
                wordpress_source: body.wordpress_source,
                wordpress_source_sha256: body.wordpress_source_sha256,
                wordpress_update_source: body.wordpress_update_source,
                safe_updates_retention_days: text(
                    "safe_updates_retention_days",
                    body.safe_updates_retention_days,
                )?,
            },
        )
        .await?;
    Ok(Json(settings_only(&view)))
}

/// `PUT /_admin/settings/acme` body; a missing field or null is unset (its default).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcmeBody {
    #[serde(default)]
    acme_email: Option<Value>,
    #[serde(default)]
    acme_directory_url: Option<Value>,
    #[serde(default)]
    acme_ca_bundle: Option<Value>,
}

/// A string setting: a string as sent, null or missing as unset.
fn string(field: &'static str, v: Option<Value>) -> Result<Option<String>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(settings_invalid(field, "must be a string or null")),
    }
}

async fn put_acme(
    State(state): State<AppState>,
    session: CurrentSession,
    AppJson(body): AppJson<AcmeBody>,
) -> Result<Json<Value>, ApiError> {
    let input = AcmeSettings {
        acme_email: string("acme_email", body.acme_email)?,
        acme_directory_url: string("acme_directory_url", body.acme_directory_url)?,
        acme_ca_bundle: string("acme_ca_bundle", body.acme_ca_bundle)?,
    };
    let view = state
        .settings
        .put_acme(&session.user.user_id, input)
        .await?;
    Ok(Json(settings_only(&view)))
}

/// `PUT /_admin/settings/domain-config` body; a missing field or null is unset, except
/// `dns01_credentials`: omitted = keep, null = delete, an object of strings = replace.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DomainConfigBody {
    #[serde(default)]
    control_plane_domain: Option<Value>,
    #[serde(default)]
    preview_domain: Option<Value>,
    #[serde(default)]
    dns01_provider: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    dns01_credentials: Option<Option<Value>>,
}

fn dns01_credentials(v: Option<Option<Value>>) -> Result<DnsCredentialsChange, ApiError> {
    let shape = "must be null or a JSON object of strings";
    match v {
        None => Ok(DnsCredentialsChange::Keep),
        Some(None) | Some(Some(Value::Null)) => Ok(DnsCredentialsChange::Delete),
        Some(Some(Value::Object(o))) => o
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                _ => Err(settings_invalid("dns01_credentials", shape)),
            })
            .collect::<Result<_, _>>()
            .map(DnsCredentialsChange::Set),
        Some(Some(_)) => Err(settings_invalid("dns01_credentials", shape)),
    }
}

async fn put_domain_config(
    State(state): State<AppState>,
    session: CurrentSession,
    AppJson(body): AppJson<DomainConfigBody>,
) -> Result<Json<Value>, ApiError> {
    let input = DomainConfig {
        control_plane_domain: string("control_plane_domain", body.control_plane_domain)?,
        preview_domain: string("preview_domain", body.preview_domain)?,
        dns01_provider: string("dns01_provider", body.dns01_provider)?,
        dns01_credentials: dns01_credentials(body.dns01_credentials)?,
    };
    let (view, job_ids) = state
        .settings
        .put_domain_config(&session.user.user_id, input)
        .await?;
    let mut out = settings_only(&view);
    out["job_ids"] = json!(job_ids);
    Ok(Json(out))
}
