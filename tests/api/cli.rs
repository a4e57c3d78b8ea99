//! The `pressluft` binary itself: `migrate`, `admin`, `dev` and configuration errors.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::helpers::output_with_stdin;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_pressluft");

fn pressluft(dir: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env_remove("RUST_LOG")
        .env("PRESSLUFT_DATA_DIR", dir.join("data"))
        .env("PRESSLUFT_LOG_DIR", dir.join("logs"));
    c
}

/// Runs `pressluft admin <command> --email <email> --password-stdin` with `password` on stdin.
fn admin(
    dir: &std::path::Path,
    command: &str,
    email: &str,
    password: &str,
) -> std::process::Output {
    let mut cmd = pressluft(dir);
    cmd.args(["admin", command, "--email", email, "--password-stdin"]);
    output_with_stdin(cmd, format!("{password}\n").as_bytes())
}

#[test]
fn migrate_is_idempotent_and_admin_create_validates() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let out = pressluft(dir.path()).arg("migrate").output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(dir.path().join("data/pressluft.db").is_file());
    let d = dir.path();

    let out = admin(d, "create", "Ops@Example.com", "a long enough password");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("admin ops@example.com created"));

    let out = admin(d, "create", "ops@example.com", "a long enough password");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));

    let out = admin(d, "create", "x@example.com", "short");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 12 characters"));

    let out = admin(
        d,
        "set-password",
        "ops@example.com",
        "another long password",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn invalid_configuration_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = pressluft(dir.path())
        .env("PRESSLUFT_WORKERS", "many")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PRESSLUFT_WORKERS") && err.contains("\"many\""),
        "{err}"
    );

    let out = pressluft(dir.path())
        .args(["--workers", "0", "migrate"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--workers"));
}

#[test]
fn dev_bootstraps_an_admin_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .env_remove("PRESSLUFT_DATA_DIR")
        .env_remove("PRESSLUFT_LOG_DIR")
        .args(["dev", "--listen-addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut password = None;
    let mut addr = None;
    let mut lines = Vec::new();
    while addr.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("dev prints its address");
        if let Some(p) = line.split("password: ").nth(1) {
            password = Some(p.trim_end_matches('│').trim().to_string());
        }
        if let Some(a) = line.split("listening on http://").nth(1) {
            addr = Some(a.trim().to_string());
        }
        lines.push(line);
    }
    let joined = lines.join("\n");
    assert!(
        joined.contains("pressluft starting") && joined.contains("dev"),
        "{joined}"
    );
    assert!(joined.contains("database migrations applied"), "{joined}");
    assert!(joined.contains("admin@pressluft.local"), "{joined}");
    assert!(dir.path().join(".pressluft/pressluft.db").is_file());
    assert!(dir.path().join(".pressluft/logs").is_dir());
    let password = password.expect("bootstrap password printed");
    let log = std::fs::read_to_string(dir.path().join(".pressluft/logs/pressluft.log"))
        .unwrap_or_default();
    assert!(
        !log.contains(&password),
        "the password never reaches the log file"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = crate::helpers::client();
        let base = format!("http://{}", addr.unwrap());
        let r = crate::helpers::api_login(&c, &base, "admin@pressluft.local", &password).await;
        assert_eq!(r.status(), 200, "the printed password works");
        let r = c.get(format!("{base}/api/metrics")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    });
    // The request above is logged, one line per request.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut request_logged = false;
    while !request_logged && std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            request_logged = line.contains("path=/api/metrics")
                && line.contains("status=200")
                && line.contains("request_id=");
        }
    }
    unsafe_kill(&mut child);
    assert!(request_logged, "request line on the terminal");
}

fn unsafe_kill(child: &mut std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn node_pubkey_prints_the_key_migrate_created() {
    let dir = tempfile::tempdir().unwrap();
    let out = pressluft(dir.path()).arg("migrate").output().unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    let out = pressluft(dir.path())
        .args(["node", "pubkey"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        key.starts_with("ssh-ed25519 ") && key.ends_with(" pressluft-control-plane"),
        "{key}"
    );
    assert!(printed.contains(&key), "migrate printed the same key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("data/age.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert!(!String::from_utf8_lossy(
        &std::fs::read(
            dir.path()
                .join("data/secrets/ssh/control_plane_ed25519.age")
        )
        .unwrap()
    )
    .contains("PRIVATE KEY"));
}

#[test]
fn node_search_replace_rewrites_a_dump_on_stdin() {
    let dump = "INSERT INTO `wp_options` VALUES (1,'home','http://old.test'),\
                (2,'w','a:1:{s:3:\\\"url\\\";s:15:\\\"http://old.test\\\";}'),\
                (3,'j','{\\\"u\\\":\\\"http:\\\\/\\\\/old.test\\\\/x\\\"}');\n";
    let mut c = Command::new(BIN);
    c.args([
        "node",
        "search-replace",
        "--from",
        "http://old.test/",
        "--to",
        "https://new.example",
    ])
    .env_remove("PRESSLUFT_DATA_DIR");
    let out = output_with_stdin(c, dump.as_bytes());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rewritten = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        rewritten,
        "INSERT INTO `wp_options` VALUES (1,'home','https://new.example'),\
         (2,'w','a:1:{s:3:\\\"url\\\";s:19:\\\"https://new.example\\\";}'),\
         (3,'j','{\\\"u\\\":\\\"https:\\\\/\\\\/new.example\\\\/x\\\"}');\n"
    );
    let summary = String::from_utf8(out.stderr).unwrap();
    assert!(
        summary.contains("3 values changed (1 serialized rewrites"),
        "{summary}"
    );

    let mut c = Command::new(BIN);
    c.args(["node", "search-replace", "--from", "", "--to", "x"]);
    let out = output_with_stdin(c, "".as_bytes());
    assert!(!out.status.success(), "an empty --from is refused");
}
