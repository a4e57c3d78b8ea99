//! The control-plane vhost in front of the control plane (issue 9, item 8): the role's real
//! server block, rendered by Ansible and served by a private nginx instance on a free loopback
//! port, proxies to the control plane's proxy socket (as the installer configures it) or, without
//! one, to its TCP port with 127.0.0.1 trusted. A client's own `X-Forwarded-For` cannot choose
//! the IP the login throttle sees; the address nginx saw can.
//!
//! Needs `ansible` and `nginx` (the test command installs both); the nginx instance has its own
//! prefix, configuration and pid file, so the node's nginx is not touched.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::helpers::{assert_error, client, spawn_app_with, ADMIN_EMAIL};

/// A private nginx, stopped when dropped.
struct Nginx {
    child: Child,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGQUIT: the master stops its workers, then exits.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGQUIT) };
        let _ = self.child.wait();
    }
}

fn nginx_available() -> bool {
    crate::helpers::tool_available("nginx", "-v", "nginx not installed")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The role's template rendered by Ansible for a control plane on `upstream_port` (or on the
/// proxy `socket` when given), with TLS.
fn render_vhost(dir: &Path, upstream_port: u16, socket: Option<&Path>) -> String {
    let role = Path::new(env!("CARGO_MANIFEST_DIR")).join("ansible/roles/control-plane-vhost");
    let dest = dir.join("rendered.conf");
    let vars = json!({
        "control_plane_vhost_name": "cp.example.test",
        "control_plane_vhost_spare": "",
        "control_plane_vhost_tls_name": "cp.example.test",
        "control_plane_vhost_port": upstream_port,
        "control_plane_vhost_socket": socket.map(|s| s.display().to_string()).unwrap_or_default(),
        "control_plane_vhost_ipv6": false,
        "control_plane_vhost_acme_webroot": dir.join("acme"),
    });
    let out = Command::new("ansible")
        .args([
            "localhost",
            "-c",
            "local",
            "-m",
            "ansible.builtin.template",
            "-a",
        ])
        .arg(format!(
            "src={} dest={}",
            role.join("templates/pressluft-control-plane.conf.j2")
                .display(),
            dest.display()
        ))
        .arg("-e")
        .arg(vars.to_string())
        .env("ANSIBLE_LOCALHOST_WARNING", "false")
        .env("ANSIBLE_INVENTORY_UNPARSED_WARNING", "false")
        .output()
        .expect("ansible runs");
    assert!(
        out.status.success(),
        "rendering failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(dest).unwrap()
}

/// The HTTPS server block of the rendered file, served over plain HTTP on `port` (the proxy
/// settings under test are the same; a test client without TLS can reach it).
fn as_plain_http(rendered: &str, port: u16) -> String {
    let tls = rendered
        .match_indices("server {")
        .nth(1)
        .map(|(i, _)| &rendered[i..])
        .expect("the rendered file has the TLS server block");
    let block: Vec<String> = tls
        .lines()
        .filter(|l| !l.trim_start().starts_with("ssl_certificate"))
        .map(|l| {
            if l.trim_start().starts_with("listen ") {
                format!("    listen 127.0.0.1:{port};")
            } else {
                l.to_string()
            }
        })
        .collect();
    block.join("\n")
}

/// A private nginx on 127.0.0.1:`port` whose workers run as `user` (the node's nginx: www-data).
fn start_nginx(dir: &Path, server_block: &str, port: u16, user: &str) -> Nginx {
    let d = dir.display();
    std::fs::write(dir.join("vhost.conf"), server_block).unwrap();
    let conf = format!(
        "user {user};\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  \
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
         scgi_temp_path {d}/scgi;\n  include {d}/vhost.conf;\n}}\n"
    );
    let conf_path: PathBuf = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf_path)
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx starts");
    let nginx = Nginx { child };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return nginx;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "nginx did not listen on {port}: {}",
        std::fs::read_to_string(dir.join("error.log")).unwrap_or_default()
    );
}

async fn login_via(url: &str, spoofed: &str) -> reqwest::Response {
    login_via_from(&client(), url, spoofed).await
}

async fn login_via_from(client: &reqwest::Client, url: &str, spoofed: &str) -> reqwest::Response {
    client
        .post(url)
        .header("x-forwarded-for", spoofed)
        .json(&json!({"email": ADMIN_EMAIL, "password": "a guess"}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn through_the_vhost_a_spoofed_forwarded_for_does_not_choose_the_ip() {
    if !crate::ansible::ansible_available() || !nginx_available() {
        return;
    }
    let app = spawn_app_with(
        |c| c.trusted_proxies = vec![pressluft::config::IpBlock::parse("127.0.0.1").unwrap()],
        None,
    )
    .await;
    let upstream: u16 = app.base.rsplit(':').next().unwrap().parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rendered = render_vhost(dir.path(), upstream, None);
    let port = free_port();
    let _nginx = start_nginx(dir.path(), &as_plain_http(&rendered, port), port, "root");
    let url = format!("http://127.0.0.1:{port}/api/login");

    for i in 1..=5 {
        let r = login_via(&url, &format!("203.0.113.{i}")).await;
        assert_eq!(r.status(), 401, "guess {i} through the vhost");
    }
    // A fresh spoofed address does not help: the proxy reported the real one every time.
    let r = login_via(&url, "198.51.100.77").await;
    assert_error(r, 429, "login_throttled").await;
    assert_eq!(
        app.recorded_login_ips().await,
        vec!["127.0.0.1".to_string()]
    );
}

#[tokio::test]
async fn through_the_vhost_and_the_proxy_socket_the_client_is_the_address_nginx_saw() {
    if !crate::ansible::ansible_available() || !nginx_available() {
        return;
    }
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root (nginx workers as www-data, chown)");
        return;
    }
    // The installer's layout: the socket's directory <service user>:www-data 2750 (setgid).
    let (dir, run) = crate::proxy_socket::socket_dir();
    let www = crate::proxy_socket::group_id("www-data");
    std::os::unix::fs::chown(&run, Some(0), Some(www)).unwrap();
    std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o2750)).unwrap();
    let socket = run.join("proxy.sock");
    let path = socket.clone();
    // No trusted TCP proxy at all: forwarded addresses count only on the socket.
    let app = spawn_app_with(|c| c.proxy_socket = Some(path), None).await;
    // The TCP port in the rendered block is closed: only the socket can answer.
    let rendered = render_vhost(dir.path(), free_port(), Some(&socket));
    assert!(
        rendered.contains(&format!("proxy_pass http://unix:{}:;", socket.display())),
        "{rendered}"
    );
    let port = free_port();
    // Workers as www-data, like the node's nginx: the socket admits them through its group.
    let _nginx = start_nginx(
        dir.path(),
        &as_plain_http(&rendered, port),
        port,
        "www-data",
    );
    let url = format!("http://127.0.0.1:{port}/api/login");

    // A client from 127.0.0.7 (a loopback address other than the control plane's own peer):
    // nginx reports it, the control plane believes it because it came over the socket.
    let from_7 = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 7]))
        .build()
        .unwrap();
    for i in 1..=5 {
        let r = login_via_from(&from_7, &url, &format!("203.0.113.{i}")).await;
        assert_eq!(r.status(), 401, "guess {i} through the vhost");
    }
    let r = login_via_from(&from_7, &url, "198.51.100.77").await;
    assert_error(r, 429, "login_throttled").await;
    // Another client address behind the same nginx is not blocked.
    let r = login_via(&url, "203.0.113.9").await;
    assert_eq!(r.status(), 401, "127.0.0.1 is another client");
    let mut ips = app.recorded_login_ips().await;
    ips.sort();
    assert_eq!(ips, vec!["127.0.0.1".to_string(), "127.0.0.7".to_string()]);
}
