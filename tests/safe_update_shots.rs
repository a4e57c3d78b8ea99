//! `pressluft safe-update-shots` end to end: the real binary drives the system chromium against
//! a small HTTP server of this test on 127.0.0.1, reached under a made-up host name through the
//! spec's `resolve` mapping (no DNS, no /etc/hosts line).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_pressluft");
const CHROMIUM: &str = "/usr/lib/chromium/chromium";
const HOST: &str = "shots.pressluft.test";

/// The test site: `/` has a grey header, red once `red` is set.
fn page(path: &str, red: bool) -> Option<(u16, String)> {
    let header = if red { "#d01010" } else { "#cfcfcf" };
    let style = format!(
        "<style>body{{margin:0;font:16px sans-serif;background:#fff}}\
         header{{height:90px;background:{header}}}main{{padding:20px}}\
         .spin{{animation:spin 1s linear infinite;width:40px;height:40px;background:#36c}}\
         @keyframes spin{{to{{transform:rotate(360deg)}}}}</style>"
    );
    let body = |extra: &str| {
        format!(
            "<!doctype html><html><head><title>t</title>{style}</head><body><header></header>\
             <main><h1>Hello</h1><p>Some text to anti-alias.</p><div class=spin></div>\
             <input autofocus value=caret></main>{extra}</body></html>"
        )
    };
    match path {
        "/" | "/about/" => Some((200, body(""))),
        "/console/" => Some((
            200,
            body("<script>console.error('boom from the page')</script>"),
        )),
        "/throws/" => Some((200, body("<script>throw new Error('kaboom')</script>"))),
        "/missing/" => Some((404, body(""))),
        // Chromium asks for it on every page; WordPress answers it too.
        "/favicon.ico" => Some((204, String::new())),
        "/tall/" => Some((
            200,
            body("<div style='height:9000px;background:linear-gradient(#fff,#000)'></div>"),
        )),
        _ => None,
    }
}

struct Site {
    port: u16,
    red: Arc<AtomicBool>,
}

fn serve() -> Site {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let red = Arc::new(AtomicBool::new(false));
    let r = red.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let r = r.clone();
            std::thread::spawn(move || answer(conn, r.load(Ordering::SeqCst)));
        }
    });
    Site { port, red }
}

fn answer(conn: TcpStream, red: bool) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
    }
    if path == "/drop/" {
        return; // closes the connection without an answer
    }
    let (status, body) = page(&path, red).unwrap_or((404, "not found".into()));
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 {status} X\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
}

fn run_shots(dir: &Path, spec: &Value) -> Output {
    let spec_path = dir.join(format!(
        "spec-{}.json",
        spec["phase"].as_str().unwrap_or("x")
    ));
    std::fs::write(&spec_path, serde_json::to_vec(spec).unwrap()).unwrap();
    Command::new(BIN)
        .args(["safe-update-shots", "--spec"])
        .arg(&spec_path)
        .output()
        .unwrap()
}

fn shots_ok(dir: &Path, spec: &Value) -> Value {
    let out = run_shots(dir, spec);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout {stdout}\nstderr {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line: {stdout}");
    serde_json::from_str(lines[0]).unwrap()
}

fn spec(phase: &str, run_dir: &Path, port: u16, pages: &[&str]) -> Value {
    json!({
        "phase": phase,
        "run_dir": run_dir,
        "base_url": format!("http://{HOST}:{port}/"),
        "resolve": {"host": HOST, "ip": "127.0.0.1"},
        "pages": pages,
        "masks": {},
        "threshold_percent": 0.5,
        "chromium": CHROMIUM,
    })
}

fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "{} is a PNG", path.display());
    let w = u32::from_be_bytes(b[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(b[20..24].try_into().unwrap());
    (w, h)
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn shots_statuses_console_errors_and_visual_verdicts() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "the system chromium is installed"
    );
    let site = serve();
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("safe-updates").join("run-1");
    let pages = [
        "/",
        "/console/",
        "/throws/",
        "/missing/",
        "/drop/",
        "/tall/",
    ];

    // Before: the run directory appears 0700, each page's status and console errors.
    let before = shots_ok(tmp.path(), &spec("before", &run_dir, site.port, &pages));
    let p = before["pages"].as_array().unwrap();
    assert_eq!(p.len(), pages.len());
    assert_eq!(mode(&run_dir), 0o700);
    for (i, page) in p.iter().enumerate() {
        assert_eq!(page["path"], pages[i]);
    }
    assert_eq!(p[0]["status"], 200);
    assert_eq!(p[0]["console_errors"], json!([]), "{}", p[0]);
    assert_eq!(p[0]["passed"], true);
    assert_eq!(p[0]["error"], Value::Null);
    assert_eq!(p[0]["changed_percent"], Value::Null);
    let console = p[1]["console_errors"].as_array().unwrap();
    assert!(
        console
            .iter()
            .any(|e| e.as_str().unwrap().contains("boom from the page")),
        "{}",
        p[1]
    );
    let thrown = p[2]["console_errors"].as_array().unwrap();
    assert!(
        thrown
            .iter()
            .any(|e| e.as_str().unwrap().contains("kaboom")),
        "{}",
        p[2]
    );
    assert_eq!(p[3]["status"], 404);
    assert_eq!(p[4]["passed"], false);
    assert!(
        p[4]["error"].as_str().unwrap().contains("did not load"),
        "{}",
        p[4]
    );
    assert_eq!(p[4]["status"], Value::Null);
    for i in [0, 1, 2, 3, 5] {
        let f = run_dir.join(format!("{i}-before.png"));
        assert_eq!(mode(&f), 0o600);
        assert_eq!(png_size(&f).0, 1280);
    }
    assert!(!run_dir.join("4-before.png").exists());
    // A long page is cut at 4000 px; a short one is the viewport's height at least.
    assert_eq!(png_size(&run_dir.join("5-before.png")), (1280, 4000));
    assert_eq!(png_size(&run_dir.join("0-before.png")), (1280, 800));
    // The throwaway profile is gone.
    let leftovers: Vec<_> = std::fs::read_dir(&run_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".chromium"))
        .collect();
    assert!(leftovers.is_empty(), "profile left behind");

    // After, nothing changed: every page that loaded passes at 0 %; diff images beside them.
    let after = shots_ok(tmp.path(), &spec("after", &run_dir, site.port, &pages));
    let p = after["pages"].as_array().unwrap();
    for i in [0, 1, 2, 3, 5] {
        assert_eq!(p[i]["passed"], true, "{}", p[i]);
        assert_eq!(p[i]["changed_percent"], 0.0, "{}", p[i]);
        assert_eq!(p[i]["changed_box"], Value::Null);
        assert_eq!(mode(&run_dir.join(format!("{i}-diff.png"))), 0o600);
        assert!(run_dir.join(format!("{i}-after.png")).exists());
    }
    assert_eq!(p[4]["passed"], false);
    assert!(p[4]["error"].is_string());

    // The header turns red: the home page fails, the box is the header band.
    site.red.store(true, Ordering::SeqCst);
    let after = shots_ok(tmp.path(), &spec("after", &run_dir, site.port, &["/"]));
    let home = &after["pages"][0];
    assert_eq!(home["passed"], false, "{home}");
    let pct = home["changed_percent"].as_f64().unwrap();
    // 1280×90 of 1280×800.
    assert!((pct - 11.25).abs() < 0.5, "{home}");
    assert_eq!(
        home["changed_box"],
        json!({"x": 0, "y": 0, "width": 1280, "height": 90}),
        "{home}"
    );
    // Masked, the same change passes.
    let mut masked = spec("after", &run_dir, site.port, &["/"]);
    masked["masks"] = json!({"/": [{"x": 0, "y": 0, "width": 1280, "height": 90}]});
    let after = shots_ok(tmp.path(), &masked);
    assert_eq!(after["pages"][0]["passed"], true, "{}", after["pages"][0]);
    assert_eq!(after["pages"][0]["changed_percent"], 0.0);
}

#[test]
fn refusals_exit_non_zero_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    let one_line_error = |spec: &Value, needle: &str| {
        let out = run_shots(tmp.path(), spec);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "accepted: {spec}");
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    };
    for bad in [
        "//evil.example/",
        "/\\evil.example/",
        "/a\u{1}b/",
        "about/",
        "/a b/",
    ] {
        one_line_error(&spec("before", &run_dir, 9, &["/", bad]), "invalid spec");
    }
    let mut s = spec("before", &run_dir, 9, &["/"]);
    s["resolve"]["host"] = json!(format!("{HOST}, MAP * 192.0.2.1"));
    one_line_error(&s, "resolve.host");
    let mut s = spec("before", &run_dir, 9, &["/"]);
    s["chromium"] = json!("/nonexistent/chromium");
    one_line_error(&s, "chromium not found at /nonexistent/chromium");
    let mut s = spec("before", &run_dir, 9, &["/"]);
    s["threshold_percent"] = json!(-1);
    one_line_error(&s, "threshold_percent");
    assert!(!run_dir.exists(), "nothing was created for a refused spec");

    // The run directory is a link: refused.
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    symlink(&elsewhere, &run_dir).unwrap();
    one_line_error(&spec("before", &run_dir, 9, &["/"]), "a link is refused");
}

#[test]
fn a_planted_link_is_not_written_through() {
    let site = serve();
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("run");
    std::fs::create_dir(&run_dir).unwrap();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    symlink(&victim, run_dir.join("0-before.png")).unwrap();
    let out = run_shots(tmp.path(), &spec("before", &run_dir, site.port, &["/"]));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("a link is refused"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(std::fs::metadata(&victim).unwrap().size(), 8);
}
