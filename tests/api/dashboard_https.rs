//! The dashboard on HTTPS (issue 15 item 4), the control plane's part: `serve` listens on loopback
//! unless given an address, HSTS only for requests that came over TLS (a trusted proxy saying
//! `X-Forwarded-Proto: https`), `Secure` cookies there, and the plain-HTTP warning banner on every
//! full page of a request that crossed the network in cleartext, never to a loopback client or
//! over TLS. The installer and nginx parts are tests/install/check.sh and the e2e
//! (tests/api/e2e_cphttps.rs).

use std::net::{IpAddr, UdpSocket};

use pressluft::config::{Config, ConfigFlags, Mode};
use serde_json::json;

use crate::helpers::{spawn_app_with, ADMIN_EMAIL, ADMIN_PASSWORD};
use crate::proxy_socket::{request, socket_dir};

const BANNER: &str = "data-test=\"plain-http-banner\"";

#[test]
fn serve_listens_on_loopback_unless_given_an_address_dev_too() {
    let none = |_: &str| None;
    for mode in [Mode::Serve, Mode::Dev] {
        let c = Config::resolve(mode, &ConfigFlags::default(), &none).unwrap();
        assert_eq!(c.listen_addr.to_string(), "127.0.0.1:8080", "{mode:?}");
        let env = |k: &str| (k == "PRESSLUFT_LISTEN_ADDR").then(|| "0.0.0.0:8080".to_string());
        let c = Config::resolve(mode, &ConfigFlags::default(), &env).unwrap();
        assert_eq!(
            c.listen_addr.to_string(),
            "0.0.0.0:8080",
            "{mode:?}: explicit kept"
        );
        let flags = ConfigFlags {
            listen_addr: Some("192.0.2.10:9000".into()),
            ..ConfigFlags::default()
        };
        let c = Config::resolve(mode, &flags, &env).unwrap();
        assert_eq!(
            c.listen_addr.to_string(),
            "192.0.2.10:9000",
            "{mode:?}: the flag wins"
        );
    }
}

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn a_loopback_client_gets_neither_banner_nor_hsts() {
    let app = spawn_app_with(|_| {}, None).await;
    let r = app.client.get(app.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "strict-transport-security"), None);
    let html = r.text().await.unwrap();
    assert!(!html.contains(BANNER), "{html}");
    // A forwarded https from an untrusted peer changes nothing.
    let r = app
        .client
        .get(app.url("/login"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "strict-transport-security"), None);
}

#[tokio::test]
async fn behind_a_trusted_proxy_tls_gets_hsts_and_secure_cookies_cleartext_gets_the_banner() {
    let app = spawn_app_with(
        |c| c.trusted_proxies = vec![pressluft::config::IpBlock::parse("127.0.0.1").unwrap()],
        None,
    )
    .await;
    // Over TLS (as nginx's control-plane block forwards it).
    let r = app
        .client
        .get(app.url("/login"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(&r, "strict-transport-security").as_deref(),
        Some("max-age=31536000"),
        "one year, no includeSubDomains (sslip.io previews are subdomains)"
    );
    assert!(!r.text().await.unwrap().contains(BANNER));
    let r = app
        .client
        .post(app.url("/api/login"))
        .header("x-forwarded-proto", "https")
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = header(&r, "set-cookie").expect("a session cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");

    // The proxy says the client spoke plain HTTP: the banner on every full page, no HSTS.
    for path in [
        "/login",
        "/",
        "/sites",
        "/nodes",
        "/settings",
        "/no-such-page",
    ] {
        let r = app
            .client
            .get(app.url(path))
            .header("x-forwarded-proto", "http")
            .send()
            .await
            .unwrap();
        assert_eq!(header(&r, "strict-transport-security"), None, "{path}");
        let is_html = header(&r, "content-type").is_some_and(|t| t.starts_with("text/html"));
        let html = r.text().await.unwrap();
        if is_html {
            assert!(html.contains(BANNER), "{path}: {html}");
            assert_eq!(html.matches(BANNER).count(), 1, "{path}: once");
            let body = html.find("<body").unwrap();
            assert!(html.find(BANNER).unwrap() > body, "{path}: inside <body>");
        }
    }
    // Never in htmx fragments or JSON.
    let r = app
        .client
        .get(app.url("/sites"))
        .header("x-forwarded-proto", "http")
        .header("hx-request", "true")
        .send()
        .await
        .unwrap();
    assert!(!r.text().await.unwrap().contains(BANNER));
    let r = app
        .client
        .get(app.url("/api/nodes"))
        .header("x-forwarded-proto", "http")
        .send()
        .await
        .unwrap();
    assert!(!r.text().await.unwrap().contains("plain-http-banner"));
}

#[tokio::test]
async fn over_the_proxy_socket_tls_gets_hsts_and_plain_http_the_banner() {
    let (_keep, run) = socket_dir();
    let socket = run.join("proxy.sock");
    let path = socket.clone();
    let _app = spawn_app_with(|c| c.proxy_socket = Some(path), None).await;
    let (status, head, body) = request(
        &socket,
        "GET",
        "/login",
        &[
            ("X-Forwarded-For", "198.51.100.7"),
            ("X-Forwarded-Proto", "https"),
        ],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{head}"
    );
    assert!(!body.contains(BANNER));
    let (status, head, body) = request(
        &socket,
        "GET",
        "/login",
        &[
            ("X-Forwarded-For", "198.51.100.7"),
            ("X-Forwarded-Proto", "http"),
        ],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("strict-transport-security"),
        "{head}"
    );
    assert!(body.contains(BANNER), "{body}");
}

/// This host's address towards the network (no packet is sent), when it has one.
fn non_loopback_ip() -> Option<IpAddr> {
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn plain_http_from_the_network_gets_the_banner_as_in_the_installer_fallback() {
    let Some(ip) = non_loopback_ip() else {
        eprintln!("skipped: this host has no non-loopback IPv4 address");
        return;
    };
    // The fallback: an explicit public address, a client from the network.
    let app = spawn_app_with(|c| c.listen_addr = (ip, 0).into(), None).await;
    assert!(app.base.contains(&ip.to_string()), "{}", app.base);
    let r = app.client.get(app.url("/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "strict-transport-security"), None);
    let html = r.text().await.unwrap();
    assert!(html.contains(BANNER), "{html}");
    assert!(html.contains("This dashboard is served over plain HTTP"));
    // The same page after logging in, and an error page.
    app.login().await;
    for path in ["/", "/jobs", "/audit"] {
        let html = app.text(path).await;
        assert!(html.contains(BANNER), "{path}: {html}");
    }
    // A forwarded https from this untrusted peer is not believed: the banner stays.
    let r = app
        .client
        .get(app.url("/login"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains(BANNER));
}
