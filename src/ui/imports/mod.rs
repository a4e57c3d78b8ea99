//! "Import a site" in the dashboard (ui.md, Import): the site page links to
//! `/sites/{id}/import`, a form with either an archive URL or a file upload. The upload is
//! streamed to `<data_dir>/imports/<uuid>.zip|.tar.gz` (at most [`UPLOAD_MAX_BYTES`]), never
//! held in memory; the job's playbook copies it to the node and the job deletes it when it ends
//! (docs/decisions.md "Operator toolkit (issue 13): import"). On success the job's page
//! follows the import live; a refusal shows the form again with the error on its field.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use askama::Template;
use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use tokio::io::AsyncWriteExt;

use crate::auth::token::tokens_equal;
use crate::deploys::import::ImportArchive;
use crate::http::error::{ApiError, OrNotFound};
use crate::http::extract::PathId;
use crate::http::session::{CurrentSession, UiSession};
use crate::sites::Actor;
use crate::state::AppState;
use crate::store::sites::SiteRecord;
use crate::ui::form_errors::form_error;
use crate::ui::forms::FormState;
use crate::ui::render;
use crate::ui::views::Layout;

/// The largest archive the dashboard accepts (a larger one: give its URL instead).
pub const UPLOAD_MAX_BYTES: usize = 2 * 1024 * 1024 * 1024;

/// The import routes.
pub fn router() -> Router<AppState> {
    Router::new().route(
        "/sites/{id}/import",
        get(page)
            .post(submit)
            .layer(DefaultBodyLimit::max(UPLOAD_MAX_BYTES + 64 * 1024)),
    )
}

#[derive(Template)]
#[template(path = "partials/import_page.html")]
struct ImportPage {
    layout: Layout,
    site: SiteRecord,
    archive_url: String,
    errors: HashMap<String, String>,
    notice: Option<String>,
    max_mib: usize,
}

async fn show(
    state: &AppState,
    session: &CurrentSession,
    site_id: &str,
    archive_url: String,
    shown: FormState,
) -> Result<Response, ApiError> {
    let site = state.store.get_site(site_id).await?.or_not_found("site")?;
    let page = ImportPage {
        layout: Layout::new(&format!("Import into {}", site.name), "sites", session),
        site,
        archive_url,
        errors: shown.errors,
        notice: shown.notice,
        max_mib: UPLOAD_MAX_BYTES / (1024 * 1024),
    };
    Ok((shown.status, render(&page)).into_response())
}

/// `GET /sites/{id}/import`.
async fn page(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
) -> Result<Response, ApiError> {
    show(&state, &session, &id, String::new(), FormState::default()).await
}

/// The stored name's extension of an uploaded archive, by its name: `zip` or `tar.gz`.
pub fn upload_extension(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".zip") {
        Some("zip")
    } else if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
        Some("tar.gz")
    } else {
        None
    }
}

/// Removes a partial upload when dropped unless kept.
struct UploadFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for UploadFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `POST /sites/{id}/import` (multipart: `csrf_token` first, then `archive_url` or `archive`).
async fn submit(
    State(state): State<AppState>,
    UiSession(session): UiSession,
    PathId(id): PathId,
    mut multipart: Multipart,
) -> Result<Response, ApiError> {
    let bad = |m: &str| ApiError::bad_request(m);
    let mut csrf_ok = false;
    let mut archive_url = String::new();
    let mut upload: Option<(UploadFile, String)> = None;
    let mut too_large = false;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|_| bad("the form could not be read"))?
    {
        match field.name().unwrap_or_default() {
            "csrf_token" => {
                let sent = field
                    .text()
                    .await
                    .map_err(|_| bad("the form could not be read"))?;
                csrf_ok = tokens_equal(&sent, &session.csrf_token());
            }
            _ if !csrf_ok => return Err(ApiError::csrf("missing or wrong form token")),
            "archive_url" => {
                archive_url = field
                    .text()
                    .await
                    .map_err(|_| bad("the form could not be read"))?;
            }
            "archive" => {
                let name = field.file_name().unwrap_or_default().to_string();
                if name.is_empty() {
                    continue; // no file chosen
                }
                let Some(ext) = upload_extension(&name) else {
                    let shown =
                        FormState::field("archive", "the archive must be a .zip or .tar.gz file");
                    return show(&state, &session, &id, archive_url, shown).await;
                };
                let dir = state.config.data_dir.join("imports");
                tokio::fs::create_dir_all(&dir)
                    .await
                    .map_err(ApiError::internal)?;
                set_private(&dir);
                let path = dir.join(format!("{}.{ext}", uuid::Uuid::new_v4()));
                let mut guard = UploadFile {
                    path: path.clone(),
                    keep: false,
                };
                let mut file = tokio::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .await
                    .map_err(ApiError::internal)?;
                let mut written = 0usize;
                loop {
                    match field.chunk().await {
                        Ok(Some(chunk)) => {
                            written += chunk.len();
                            if written > UPLOAD_MAX_BYTES {
                                too_large = true;
                                break;
                            }
                            file.write_all(&chunk).await.map_err(ApiError::internal)?;
                        }
                        Ok(None) => break,
                        Err(_) => {
                            too_large = written > 0;
                            break;
                        }
                    }
                }
                file.flush().await.map_err(ApiError::internal)?;
                if too_large {
                    guard.keep = false;
                    break;
                }
                if written == 0 {
                    let shown = FormState::field("archive", "the uploaded file is empty");
                    return show(&state, &session, &id, archive_url, shown).await;
                }
                upload = Some((guard, name));
            }
            _ => {}
        }
    }
    if !csrf_ok {
        return Err(ApiError::csrf("missing or wrong form token"));
    }
    if too_large {
        let shown = FormState::field(
            "archive",
            format!(
                "the archive is larger than {} MiB: give its URL instead",
                UPLOAD_MAX_BYTES / (1024 * 1024)
            ),
        );
        return show(&state, &session, &id, archive_url, shown).await;
    }
    let archive = match (&upload, archive_url.trim().is_empty()) {
        (Some(_), false) => {
            let shown = FormState::field("archive_url", "give an archive URL or a file, not both");
            return show(&state, &session, &id, archive_url, shown).await;
        }
        (Some((file, name)), true) => ImportArchive::Uploaded {
            file: file.path.clone(),
            name: name.clone(),
        },
        (None, true) => {
            let shown = FormState::field("archive_url", "give an archive URL or choose a file");
            return show(&state, &session, &id, archive_url, shown).await;
        }
        (None, false) => ImportArchive::Url(archive_url.clone()),
    };
    match state
        .deploys
        .import(&Actor::from(&session), &id, archive)
        .await
    {
        Ok(job_id) => {
            if let Some((mut file, _)) = upload {
                file.keep = true; // the job owns it now
            }
            Ok(Redirect::to(&format!("/jobs/{job_id}")).into_response())
        }
        Err(e) => {
            let shown = form_error(e)?;
            show(&state, &session, &id, archive_url, shown).await
        }
    }
}

/// The uploads directory: the control plane's user only.
fn set_private(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}
