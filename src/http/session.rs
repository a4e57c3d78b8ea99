//! Who is calling: the session behind the cookie, as an extractor for the API (401) and for the
//! dashboard (redirect to the login page).

use std::net::{IpAddr, SocketAddr};

use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::serve::IncomingStream;
use tokio::net::{TcpListener, UnixListener};

use super::cookies;
use crate::auth::token::csrf_token_for;
use crate::config::Config;
use crate::http::error::ApiError;
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

/// A dashboard caller; without a session the page redirects to `/login?next=<path>`. The session
/// is left in the request's extensions for the form extractor (`ui::forms::CsrfForm`) that
/// checks the body's CSRF token against it.
pub struct UiSession(pub CurrentSession);

impl FromRequestParts<AppState> for UiSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match lookup(parts, state).await {
            Ok(Some(s)) => {
                parts.extensions.insert(s.clone());
                Ok(UiSession(s))
            }
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

/// How a connection reached the server: recorded per connection by both listeners
/// (`into_make_service_with_connect_info::<Via>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A TCP connection from this peer.
    Tcp(SocketAddr),
    /// The `--proxy-socket` Unix socket: only the local reverse proxy can connect to it (its
    /// directory admits the service user and group `www-data`, nginx), so its forwarding
    /// headers are believed.
    ProxySocket,
}

impl Connected<IncomingStream<'_, TcpListener>> for Via {
    fn connect_info(stream: IncomingStream<'_, TcpListener>) -> Self {
        Via::Tcp(*stream.remote_addr())
    }
}

impl Connected<IncomingStream<'_, UnixListener>> for Via {
    fn connect_info(_: IncomingStream<'_, UnixListener>) -> Self {
        Via::ProxySocket
    }
}

/// How the request arrived, when the server recorded it.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<Via>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts.extensions.get::<ConnectInfo<Via>>().map(|c| c.0),
        ))
    }
}

impl Peer {
    /// Whether the peer is a proxy whose forwarding headers are believed: the proxy socket, or
    /// a TCP peer in `--trusted-proxy`.
    fn is_trusted_proxy(&self, config: &Config) -> bool {
        match self.0 {
            Some(Via::ProxySocket) => true,
            Some(Via::Tcp(addr)) => config.is_trusted_proxy(addr.ip()),
            None => false,
        }
    }
}

/// The caller's IP. The TCP peer, unless the request came through a proxy the operator
/// configured: the `--proxy-socket` (where only the local nginx can connect) or a TCP peer in
/// `--trusted-proxy`. Then `X-Forwarded-For` is walked from the right, skipping trusted
/// proxies, and the first other address is the caller (`unknown` when the socket's proxy sent
/// none). Otherwise the header is ignored, so no client (not even a process on this host) can
/// choose its IP for the throttle.
pub fn remote_ip(headers: &HeaderMap, peer: &Peer, config: &Config) -> String {
    let mut client = match peer.0 {
        None => return "unknown".into(),
        Some(Via::Tcp(addr)) => {
            let ip = addr.ip().to_canonical();
            if !config.is_trusted_proxy(ip) {
                return ip.to_string();
            }
            Some(ip)
        }
        Some(Via::ProxySocket) => None,
    };
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        // An unreadable entry ends the walk: the last address a trusted hop vouched for stands.
        let Ok(ip) = hop.parse::<IpAddr>() else { break };
        let ip = ip.to_canonical();
        client = Some(ip);
        if !config.is_trusted_proxy(ip) {
            break;
        }
    }
    client.map_or_else(|| "unknown".into(), |ip| ip.to_string())
}

/// Whether cookies must carry `Secure`: the request came over TLS through a trusted proxy, or a
/// control-plane domain is configured (which implies HTTPS).
pub async fn cookies_secure(
    headers: &HeaderMap,
    peer: &Peer,
    state: &AppState,
) -> Result<bool, ApiError> {
    let via_tls_proxy = peer.is_trusted_proxy(&state.config)
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
