//! Who is calling: the session behind the cookie, as an extractor for the API (401) and for the
//! dashboard (redirect to the login page).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};

use super::cookies;
use crate::api::error::ApiError;
use crate::auth::token::csrf_token_for;
use crate::state::AppState;
use crate::store::SessionUser;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct CurrentSession {
    pub user: SessionUser,
    /// The raw cookie token, kept only to derive the dashboard's CSRF token.
    token: String,
}

impl CurrentSession {
    /// The CSRF token the dashboard's forms of this session must carry.
    pub fn csrf_token(&self) -> String {
        csrf_token_for(&self.token)
    }
}

async fn lookup(parts: &Parts, state: &AppState) -> Result<Option<CurrentSession>, ApiError> {
    let Some(token) = cookies::read(&parts.headers, cookies::SESSION_COOKIE) else {
        return Ok(None);
    };
    let user = state.auth.authenticate(&token).await?;
    Ok(user.map(|user| CurrentSession { user, token }))
}

impl FromRequestParts<AppState> for CurrentSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        lookup(parts, state)
            .await?
            .ok_or_else(ApiError::unauthorized)
    }
}

/// A dashboard caller; without a session the page redirects to `/login?next=<path>`.
pub struct UiSession(pub CurrentSession);

impl FromRequestParts<AppState> for UiSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match lookup(parts, state).await {
            Ok(Some(s)) => Ok(UiSession(s)),
            Ok(None) => {
                let next = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let target = format!("/login?next={}", urlencode(next));
                Err(Redirect::to(&target).into_response())
            }
            Err(e) => Err(e.into_response()),
        }
    }
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The TCP peer of the request, when the server recorded it.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}

/// The caller's IP: the TCP peer (the control plane is reached directly or through the node's
/// own Nginx on loopback, whose `X-Forwarded-For` is then trusted).
pub fn remote_ip(parts_headers: &HeaderMap, peer: &Peer) -> String {
    let peer_ip = peer.0.map(|a| a.ip());
    if peer_ip.is_some_and(|ip| ip.is_loopback()) {
        if let Some(forwarded) = parts_headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next_back())
            .map(str::trim)
            .filter(|v| v.parse::<std::net::IpAddr>().is_ok())
        {
            return forwarded.to_string();
        }
    }
    peer_ip
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Whether cookies must carry `Secure`: the request came over TLS through the local proxy, or a
/// control-plane domain is configured (which implies HTTPS).
pub async fn cookies_secure(
    headers: &HeaderMap,
    peer: &Peer,
    state: &AppState,
) -> Result<bool, ApiError> {
    let via_tls_proxy = peer.0.is_some_and(|a| a.ip().is_loopback())
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    if via_tls_proxy {
        return Ok(true);
    }
    Ok(state
        .store
        .get_setting("control_plane_domain")
        .await?
        .is_some())
}
