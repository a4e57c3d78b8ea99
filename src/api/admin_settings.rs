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
use crate::http::session::CurrentSession;
use crate::settings::{SettingsView, WordPressSettings};
use crate::state::AppState;

/// Routes relative to `/_admin`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/settings", get(get_settings))
        .route("/settings/wordpress", put(put_wordpress))
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
            },
        )
        .await?;
    let mut out = settings_json(&view);
    out.as_object_mut().expect("object").remove("secrets");
    Ok(Json(out))
}
