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

/// Whether a trusted proxy (the proxy socket, or a TCP peer in `--trusted-proxy`) says the
/// client spoke TLS to it (`X-Forwarded-Proto: https`). The control plane never terminates TLS
/// itself, so this is the only way a request counts as "over TLS".
pub fn over_tls(headers: &HeaderMap, peer: &Peer, config: &Config) -> bool {
    peer.is_trusted_proxy(config) && forwarded_https(headers)
}

fn forwarded_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// Whether the request crossed the network in cleartext, which earns the plain-HTTP warning
/// banner on every dashboard page (issue 15, decisions.md "the dashboard on HTTPS"): it came
/// through a trusted proxy that does not say `https`, or straight over TCP from a peer that is
/// not loopback. A direct loopback peer (`dev`, tests, an operator's own proxy or SSH tunnel on
/// this host) and a TLS-terminating trusted proxy see no banner. It depends only on how the
/// request arrived, never on the mode, so the installer's fallback (`serve` on `0.0.0.0:8080`
/// when no certificate could be issued) shows it and the same server reached through nginx's
/// TLS block does not.
pub fn plain_http_over_network(headers: &HeaderMap, peer: &Peer, config: &Config) -> bool {
    match peer.0 {
        None => false,
        Some(Via::ProxySocket) => !forwarded_https(headers),
        Some(Via::Tcp(addr)) if config.is_trusted_proxy(addr.ip()) => !forwarded_https(headers),
        Some(Via::Tcp(addr)) => !addr.ip().to_canonical().is_loopback(),
    }
}

/// Whether cookies must carry `Secure`: the request came over TLS through a trusted proxy, or a
/// control-plane domain is configured (which implies HTTPS).
pub async fn cookies_secure(
    headers: &HeaderMap,
    peer: &Peer,
    state: &AppState,
) -> Result<bool, ApiError> {
    if over_tls(headers, peer, &state.config) {
        return Ok(true);
    }
    Ok(state
        .store
        .get_setting("control_plane_domain")
        .await?
        .is_some())
}
