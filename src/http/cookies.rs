//! Reading and writing the few cookies the control plane uses.

use axum::http::{HeaderMap, HeaderValue};

/// The session cookie (api.md §2).
pub const SESSION_COOKIE: &str = "session_token";
/// The login form's double-submit CSRF cookie.
pub const LOGIN_CSRF_COOKIE: &str = "login_csrf";

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

/// `Set-Cookie` for a cookie with our fixed flags: HttpOnly, SameSite=Strict, `Secure` on TLS.
pub fn set(name: &str, value: &str, path: &str, max_age_secs: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{name}={value}; HttpOnly; SameSite=Strict; Path={path}; Max-Age={max_age_secs}{secure}"
    );
    HeaderValue::from_str(&cookie).expect("cookie values are base64url or hex")
}

/// `Set-Cookie` for a new session's token (path `/`, the session's lifetime).
pub fn session(token: &str, secure: bool) -> HeaderValue {
    let max_age = crate::auth::SESSION_LIFETIME.whole_seconds();
    set(SESSION_COOKIE, token, "/", max_age, secure)
}

/// `Set-Cookie` that removes a cookie.
pub fn clear(name: &str, path: &str, secure: bool) -> HeaderValue {
    set(name, "", path, 0, secure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_cookie_among_many() {
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_static("a=1; session_token=abc; b=2"),
        );
        assert_eq!(read(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(read(&h, "missing"), None);
    }

    #[test]
    fn sets_the_specified_flags() {
        let v = set(SESSION_COOKIE, "tok", "/", 86400, true);
        assert_eq!(
            v.to_str().unwrap(),
            "session_token=tok; HttpOnly; SameSite=Strict; Path=/; Max-Age=86400; Secure"
        );
        assert!(clear(SESSION_COOKIE, "/", false)
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
    }
}
