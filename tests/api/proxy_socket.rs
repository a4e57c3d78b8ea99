//! The proxy socket (`--proxy-socket`, issue 9 item 8): the local nginx reaches the control plane
//! over a Unix socket that only it (group `www-data`) and the service user can connect to, and
//! only there is `X-Forwarded-For` believed. Requests go over the real socket as raw HTTP/1.1.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use pressluft::clock::ManualClock;
use pressluft::config::Config;
use pressluft::startup::Application;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::helpers::{spawn_app_with, ADMIN_EMAIL, ADMIN_PASSWORD};

/// A directory for the socket: `<tmp>/run`, 0750, inside a 0711 temp dir (others may traverse
/// the temp dir, as they may traverse `/run`).
pub fn socket_dir() -> (tempfile::TempDir, PathBuf) {
    let outer = tempfile::tempdir().unwrap();
    std::fs::set_permissions(outer.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let run = outer.path().join("run");
    std::fs::create_dir(&run).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o750)).unwrap();
    (outer, run)
}

/// One raw HTTP/1.1 request over the Unix socket: status and body.
pub async fn request(
    socket: &Path,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut stream = UnixStream::connect(socket).await.expect("socket connects");
    let mut text = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        text.push_str(&format!("{k}: {v}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.unwrap();
    let out = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = out.split_once("\r\n\r\n").expect("a complete response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    (status, head.to_string(), body.to_string())
}

async fn login_over(
    socket: &Path,
    headers: &[(&str, &str)],
    password: &str,
) -> (u16, String, String) {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    let body = json!({"email": ADMIN_EMAIL, "password": password}).to_string();
    request(socket, "POST", "/api/login", &all, &body).await
}

fn code_of(body: &str) -> String {
    let v: Value = serde_json::from_str(body).expect("JSON body");
    v["code"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn over_the_proxy_socket_forwarded_for_is_the_client_over_tcp_it_is_not() {
    let (_keep, run) = socket_dir();
    let socket = run.join("proxy.sock");
    let path = socket.clone();
    // No trusted TCP proxy: only the socket's forwarding headers count.
    let app = spawn_app_with(|c| c.proxy_socket = Some(path), None).await;
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o660, "the socket is 0660");

    for i in 1..=5 {
        let (status, _, _) =
            login_over(&socket, &[("X-Forwarded-For", "203.0.113.9")], "a guess").await;
        assert_eq!(status, 401, "guess {i} from 203.0.113.9");
    }
    let (status, _, body) = login_over(
        &socket,
        &[("X-Forwarded-For", "203.0.113.9")],
        ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(
        (status, code_of(&body).as_str()),
        (429, "login_throttled"),
        "203.0.113.9 is blocked"
    );
    // Another client behind the same proxy is not: the throttle keyed on the forwarded address.
    let (status, _, _) =
        login_over(&socket, &[("X-Forwarded-For", "203.0.113.10")], "a guess").await;
    assert_eq!(status, 401, "203.0.113.10 is not blocked");

    // Over TCP from 127.0.0.1 the same header is ignored: that peer is not a trusted proxy.
    let r = app
        .client
        .post(app.url("/api/login"))
        .header("x-forwarded-for", "203.0.113.9")
        .json(&json!({"email": ADMIN_EMAIL, "password": "a guess"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "TCP caller is 127.0.0.1, not the blocked 203.0.113.9"
    );

    // A request on the socket without the header (nginx always sends one) counts as `unknown`.
    let (status, _, _) = login_over(&socket, &[], "a guess").await;
    assert_eq!(status, 401);
    assert_eq!(
        app.recorded_login_ips().await,
        vec!["127.0.0.1", "203.0.113.10", "203.0.113.9", "unknown"]
    );

    // X-Forwarded-Proto from the socket's proxy is believed too: the cookie gets `Secure`.
    let (status, head, _) = login_over(
        &socket,
        &[
            ("X-Forwarded-For", "198.51.100.1"),
            ("X-Forwarded-Proto", "https"),
        ],
        ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(status, 200);
    let cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a session cookie");
    assert!(cookie.contains("Secure"), "{cookie}");
}

async fn build_error(config: Config) -> String {
    match Application::build(config, Arc::new(ManualClock::starting_now())).await {
        Ok(_) => "built".to_string(),
        Err(e) => format!("{e:#}"),
    }
}

fn config_with_socket(data: &Path, socket: &Path) -> Config {
    let mut c = Config::for_tests(data);
    c.proxy_socket = Some(socket.to_path_buf());
    c
}

#[tokio::test]
async fn a_stale_socket_is_replaced_anything_else_stops_start_up() {
    let (_keep, run) = socket_dir();
    let data = tempfile::tempdir().unwrap();
    let socket = run.join("proxy.sock");

    // Something still listens: start-up refuses to steal the socket.
    let live = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let err = build_error(config_with_socket(data.path(), &socket)).await;
    assert!(err.contains("in use"), "{err}");
    drop(live); // the file stays behind: a stale socket

    // A regular file and a symbolic link are never removed or followed.
    let other = tempfile::tempdir().unwrap();
    for kind in ["file", "link"] {
        let path = run.join(format!("{kind}.sock"));
        let target = other.path().join("precious");
        std::fs::write(&target, "keep").unwrap();
        if kind == "file" {
            std::fs::write(&path, "keep").unwrap();
        } else {
            std::os::unix::fs::symlink(&target, &path).unwrap();
        }
        let err = build_error(config_with_socket(data.path(), &path)).await;
        assert!(err.contains("is not a socket"), "{kind}: {err}");
        assert!(
            std::fs::symlink_metadata(&path).is_ok(),
            "{kind} left in place"
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    }

    // A directory others may write to could have its socket replaced: refused.
    let open = other.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o773)).unwrap();
    let err = build_error(config_with_socket(data.path(), &open.join("p.sock"))).await;
    assert!(err.contains("writable by group or others"), "{err}");
    let err = build_error(config_with_socket(
        data.path(),
        &other.path().join("missing/p.sock"),
    ))
    .await;
    assert!(err.contains("is missing"), "{err}");

    // The stale socket is replaced, served, and removed at shutdown.
    let path = socket.clone();
    let app = spawn_app_with(|c| c.proxy_socket = Some(path), None).await;
    let (status, _, body) = request(&socket, "GET", "/healthz", &[], "").await;
    assert_eq!(status, 200, "{body}");
    drop(app);
    for _ in 0..100 {
        if !socket.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !socket.exists(),
        "the socket is removed when the server stops"
    );
    assert!(UnixStream::connect(&socket).await.is_err());
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

pub fn group_id(name: &str) -> u32 {
    let out = Command::new("getent")
        .args(["group", name])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split(':')
        .nth(2)
        .and_then(|g| g.trim().parse().ok())
        .unwrap_or_else(|| panic!("group {name} exists"))
}

/// A throwaway system user in no group but its own (like an environment's `pl_*` user), removed
/// when dropped.
struct ThrowawayUser(String);

impl ThrowawayUser {
    fn create() -> ThrowawayUser {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!("plsock{}{}", std::process::id(), nanos % 100_000);
        let ok = Command::new("useradd")
            .args([
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(&name)
            .status()
            .unwrap()
            .success();
        assert!(ok, "useradd {name}");
        ThrowawayUser(name)
    }
}

impl Drop for ThrowawayUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.0).status();
    }
}

/// Connects to `socket` as `user`; the error text when refused.
fn connect_as(user: &str, socket: &Path) -> Result<(), String> {
    let out = Command::new("runuser")
        .args(["-u", user, "--", "python3", "-c"])
        .arg("import socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])")
        .arg(socket)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[tokio::test]
async fn only_nginx_s_group_can_connect_to_the_proxy_socket() {
    if !is_root() {
        eprintln!("skipped: needs root (runuser, useradd, chown)");
        return;
    }
    // The installer's layout: <service user>:www-data 2750, so the socket gets group www-data.
    let (_keep, run) = socket_dir();
    let www = group_id("www-data");
    std::os::unix::fs::chown(&run, Some(0), Some(www)).unwrap();
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o2750)).unwrap();
    let socket = run.join("proxy.sock");
    let path = socket.clone();
    let _app = spawn_app_with(|c| c.proxy_socket = Some(path), None).await;
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert_eq!(
        (meta.mode() & 0o7777, meta.gid()),
        (0o660, www),
        "socket 0660, group www-data"
    );

    // nginx's user gets an answer.
    let socket_arg = socket.display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("runuser")
            .args([
                "-u",
                "www-data",
                "--",
                "curl",
                "-sS",
                "--unix-socket",
                &socket_arg,
                "http://localhost/healthz",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"status\":\"ok\""),
        "www-data reaches the socket: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A site's PHP runs as its own user, never in www-data: permission denied.
    let user = ThrowawayUser::create();
    let user_connects = || {
        let (name, s) = (user.0.clone(), socket.clone());
        tokio::task::spawn_blocking(move || connect_as(&name, &s))
    };
    let denied = user_connects().await.unwrap();
    let err = denied.expect_err("a pl_-like user must not connect");
    assert!(err.contains("Permission denied"), "{err}");

    // Even with the directory open for traversal, the socket's own mode refuses it.
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o2751)).unwrap();
    let denied = user_connects().await.unwrap();
    let err = denied.expect_err("the socket's mode 0660 refuses others");
    assert!(err.contains("Permission denied"), "{err}");
    let (_, s) = (user.0.clone(), socket.clone());
    assert!(connect_as("www-data", &s).is_ok(), "www-data still can");
}
