//! The login page and the logout button.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::render;
use crate::auth::token::{random_token, tokens_equal};
use crate::auth::AuthError;
use crate::domain::Email;
use crate::http::cookies;
use crate::http::error::ApiError;
use crate::http::session::{cookies_secure, remote_ip, Peer, UiSession};
use crate::state::AppState;

/// This page's routes.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/login", axum::routing::get(form).post(submit))
        .route("/logout", axum::routing::post(logout))
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    error: Option<String>,
    email: String,
    next: String,
    csrf_token: String,
    version: &'static str,
}

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// Where a login goes when `next` is missing or not a local path.
const AFTER_LOGIN: &str = "/sites";

/// Only same-origin paths are followed after login (no open redirects): `next` must start with
/// one `/` (not `//`), hold no backslash (browsers read it as `/`), and only visible ASCII
/// characters (browsers drop tabs and newlines, so `/\t/evil` would become `//evil`; and a
/// header value cannot carry them). Anything else goes to the sites page.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.bytes().all(|b| b.is_ascii_graphic())
                && n.parse::<axum::http::uri::PathAndQuery>().is_ok() =>
        {
            n.to_string()
        }
        _ => AFTER_LOGIN.to_string(),
    }
}

/// Renders the form with a fresh double-submit token (cookie + hidden field).
async fn page(
    state: &AppState,
    headers: &HeaderMap,
    peer: &Peer,
    status: StatusCode,
    error: Option<String>,
    email: String,
    next: String,
) -> Result<Response, ApiError> {
    let token = random_token();
    let secure = cookies_secure(headers, peer, state).await?;
    let cookie = cookies::set(cookies::LOGIN_CSRF_COOKIE, &token, "/login", 3600, secure);
    let body = render(&LoginPage {
        error,
        email,
        next,
        csrf_token: token,
        version: env!("CARGO_PKG_VERSION"),
    });
    Ok((status, [(SET_COOKIE, cookie)], body).into_response())
}

/// `GET /login`.
pub async fn form(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let query: LoginQuery =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let next = safe_next(query.next.as_deref());
    page(
        &state,
        &headers,
        &peer,
        StatusCode::OK,
        None,
        String::new(),
        next,
    )
    .await
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf_token: String,
    next: Option<String>,
}

/// `POST /login`: checks the double-submit token, then logs in through the auth service.
pub async fn submit(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form: LoginForm = serde_urlencoded::from_bytes(&body)
        .map_err(|_| ApiError::bad_request("the login form could not be read"))?;
    let next = safe_next(form.next.as_deref());
    let cookie_token = cookies::read(&headers, cookies::LOGIN_CSRF_COOKIE).unwrap_or_default();
    if cookie_token.is_empty() || !tokens_equal(&cookie_token, &form.csrf_token) {
        tracing::warn!("login form refused: CSRF token mismatch");
        let msg = "Your sign-in form expired. Please try again.".to_string();
        return page(
            &state,
            &headers,
            &peer,
            StatusCode::FORBIDDEN,
            Some(msg),
            form.email,
            next,
        )
        .await;
    }
    let fail = |status, msg: &str| (status, Some(msg.to_string()));
    let outcome = match Email::parse(&form.email) {
        Err(_) => Err(fail(
            StatusCode::BAD_REQUEST,
            "Enter a valid e-mail address.",
        )),
        Ok(_) if form.password.is_empty() => {
            Err(fail(StatusCode::BAD_REQUEST, "Enter your password."))
        }
        Ok(email) => {
            let ip = remote_ip(&headers, &peer, &state.config);
            match state.auth.login(&email, &form.password, &ip).await {
                Ok(session) => Ok(session),
                Err(AuthError::InvalidCredentials) => {
                    Err(fail(StatusCode::UNAUTHORIZED, "Invalid email or password."))
                }
                Err(AuthError::Throttled { .. }) => Err(fail(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many attempts, try again in 15 minutes.",
                )),
                Err(AuthError::Busy) => Err(fail(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many sign-ins at once, try again in a moment.",
                )),
                Err(other) => return Err(other.into()),
            }
        }
    };
    match outcome {
        Ok(session) => {
            let secure = cookies_secure(&headers, &peer, &state).await?;
            let session_cookie = cookies::session(&session.token, secure);
            let clear_csrf = cookies::clear(cookies::LOGIN_CSRF_COOKIE, "/login", secure);
            let mut response = StatusCode::SEE_OTHER.into_response();
            let h = response.headers_mut();
            h.append(SET_COOKIE, session_cookie);
            h.append(SET_COOKIE, clear_csrf);
            let location = HeaderValue::from_str(&next)
                .unwrap_or_else(|_| HeaderValue::from_static(AFTER_LOGIN));
            h.insert(LOCATION, location);
            Ok(response)
        }
        Err((status, error)) => {
            page(&state, &headers, &peer, status, error, form.email, next).await
        }
    }
}

/// `POST /logout` (dashboard): needs the session's CSRF token; revokes and clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    UiSession(session): UiSession,
    body: Bytes,
) -> Result<Response, ApiError> {
    super::forms::check_form_csrf(&session, &headers, &body)?;
    state.auth.logout(&session.user).await?;
    let secure = cookies_secure(&headers, &peer, &state).await?;
    let mut response = Redirect::to("/login").into_response();
    response.headers_mut().append(
        SET_COOKIE,
        cookies::clear(cookies::SESSION_COOKIE, "/", secure),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_must_be_a_local_path() {
        assert_eq!(
            safe_next(Some("/jobs?status=failed")),
            "/jobs?status=failed"
        );
        assert_eq!(safe_next(Some("/sites/abc")), "/sites/abc");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "http:/evil.example",
            "/\\evil",
            "/x\\/evil",
            "/\t/evil.example",
            "/\n/evil.example",
            "/x\r\nSet-Cookie: a=b",
            "/ evil",
            "/\u{7f}",
            "/caf\u{e9}",
            "evil.example",
            "",
        ] {
            assert_eq!(safe_next(Some(bad)), "/sites", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/sites");
    }
}
