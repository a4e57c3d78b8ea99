//! `pressluft node health-check`: the three checks of backups-restore-promotion.md §6 against
//! an environment, run on its node — so the health gate sees what a visitor would, without DNS
//! or a certificate in the way — and changing nothing:
//!
//! 1. `http`: `GET` of the canonical URL against 127.0.0.1 with the real Host and SNI
//!    (`curl --resolve`, certificate not verified), following at most [`MAX_REDIRECTS`]
//!    redirects that stay on the environment's own hosts ([`redirect_target`]); passes on a
//!    final 200.
//! 2. `is-installed`: the PHP bridge's `is-installed` answers `installed: true`.
//! 3. `db-ping`: the PHP bridge's `db-ping` (`SELECT 1` with the credentials of the
//!    environment's `wp-config.php`) succeeds.
//!
//! Each check gets [`CHECK_SECONDS`] per attempt and is retried once before it counts as
//! failed. The URL and hosts come from the spec on stdin and reach curl as separate arguments,
//! never through a shell. Exit 0 when the checks could be evaluated (whatever their outcome,
//! printed as one JSON line); exit 3 when a precondition failed (unknown contract version, no
//! current release, no bridge).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;
use serde_json::Value;

use super::bridge;
use super::spec::{self, HealthCheckSpec};

/// Redirects the HTTP check follows at most.
pub const MAX_REDIRECTS: usize = 3;
/// Seconds one attempt of a check may take.
pub const CHECK_SECONDS: u32 = 10;
/// Attempts of a check before it counts as failed (the first and one retry).
pub const ATTEMPTS: u32 = 2;

/// One check's outcome.
#[derive(Debug, Serialize, PartialEq)]
pub struct Check {
    pub name: &'static str,
    pub passed: bool,
    /// What the last attempt saw.
    pub detail: String,
    pub attempts: u32,
}

/// What `health-check` prints: every check, and whether all passed.
#[derive(Debug, Serialize, PartialEq)]
pub struct Report {
    pub checks: Vec<Check>,
    pub passed: bool,
}

impl Report {
    pub fn new(checks: Vec<Check>) -> Self {
        let passed = checks.iter().all(|c| c.passed);
        Report { checks, passed }
    }
}

/// Reads the spec from stdin, checks the preconditions, runs the checks, prints the report.
pub fn run() -> anyhow::Result<()> {
    spec::run_command(check, |spec, wp_root: &String| Ok(evaluate(spec, wp_root)))
}

/// Preconditions (exit 3 when one fails); returns the WordPress root (`<env root>/current`).
pub fn check(spec: &HealthCheckSpec) -> anyhow::Result<String> {
    let wp_root = format!("{}/current", spec.env_root.trim_end_matches('/'));
    if !Path::new(&wp_root).is_dir() {
        bail!("{wp_root} does not exist: the environment has no current release");
    }
    let bridge_php = format!("{}/bridge.php", spec.php_dir);
    if spec.php_dir.is_empty() || !Path::new(&bridge_php).is_file() {
        bail!("the PHP bridge {bridge_php} is missing: provision the node again");
    }
    if spec.hosts.is_empty() {
        bail!("the environment has no hosts");
    }
    Ok(wp_root)
}

/// Runs the three checks.
pub fn evaluate(spec: &HealthCheckSpec, wp_root: &str) -> Report {
    let bridge_check = |command: &'static str, pass: fn(&Value) -> bool| {
        move || {
            let answer = bridge::call_within(
                &spec.php_dir,
                &spec.env_user,
                wp_root,
                &[command],
                CHECK_SECONDS,
            )
            .map_err(|e| format!("{e:#}"))?;
            if pass(&answer) {
                Ok(answer.to_string())
            } else {
                Err(answer.to_string())
            }
        }
    };
    Report::new(vec![
        retried("http", || http(&spec.canonical_url, &spec.hosts)),
        retried(
            "is-installed",
            bridge_check("is-installed", |a| a["installed"] == Value::Bool(true)),
        ),
        retried(
            "db-ping",
            bridge_check("db-ping", |a| a["ok"] == Value::Bool(true)),
        ),
    ])
}

/// Runs `attempt` up to [`ATTEMPTS`] times, until it passes.
fn retried(name: &'static str, attempt: impl Fn() -> Result<String, String>) -> Check {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let outcome = attempt();
        if outcome.is_ok() || attempts >= ATTEMPTS {
            let passed = outcome.is_ok();
            let detail = outcome.unwrap_or_else(|e| e);
            return Check {
                name,
                passed,
                detail,
                attempts,
            };
        }
    }
}

/// Where a request goes: scheme, host (lowercase) and port.
#[derive(Debug, PartialEq)]
pub struct Target {
    pub https: bool,
    pub host: String,
    pub port: u16,
}

/// Parses an absolute `http(s)` URL (no user info) and accepts it only when its host is one of
/// the environment's own `hosts`: the redirect rule of the HTTP check (and the check of the
/// canonical URL itself).
pub fn redirect_target(url: &str, hosts: &[String]) -> Result<Target, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("{url} is not an absolute URL"))?;
    let https = match scheme.to_ascii_lowercase().as_str() {
        "http" => false,
        "https" => true,
        _ => return Err(format!("{url}: only http and https are followed")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(format!("{url}: user info is not followed"));
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            p.parse::<u16>()
                .map_err(|_| format!("{url}: invalid port"))?,
        ),
        None => (authority, if https { 443 } else { 80 }),
    };
    let host = host.to_ascii_lowercase();
    if host.is_empty() || !hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)) {
        return Err(format!(
            "{url}: {host} is not one of the environment's hosts"
        ));
    }
    Ok(Target { https, host, port })
}

/// The HTTP check: one attempt within [`CHECK_SECONDS`].
fn http(canonical_url: &str, hosts: &[String]) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(u64::from(CHECK_SECONDS));
    let mut url = canonical_url.to_string();
    let mut redirects = 0;
    loop {
        let target = redirect_target(&url, hosts)?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("timed out after {CHECK_SECONDS} s at {url}"));
        }
        let (status, location) = curl(&url, &target, left)?;
        match (status, location) {
            (200, _) => return Ok(format!("200 from {url}")),
            (300..=399, Some(next)) if redirects < MAX_REDIRECTS => {
                redirects += 1;
                url = next;
            }
            (300..=399, Some(_)) => {
                return Err(format!("more than {MAX_REDIRECTS} redirects (at {url})"))
            }
            (status, _) => return Err(format!("HTTP {status} from {url}")),
        }
    }
}

/// One request of `url` to 127.0.0.1 (its host resolved there, certificate not verified):
/// the status and the redirect location, if any.
fn curl(url: &str, target: &Target, left: Duration) -> Result<(u16, Option<String>), String> {
    let resolve = format!("{}:{}:127.0.0.1", target.host, target.port);
    let max_time = format!("{:.1}", left.as_secs_f64());
    let out = Command::new("curl")
        .args(["-q", "--silent", "--show-error", "--insecure"])
        .args(["--proto", "=http,https", "--output", "/dev/null"])
        .args(["--write-out", "%{http_code} %{redirect_url}"])
        .args(["--max-time", &max_time, "--resolve", &resolve, "--url", url])
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("starting curl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{url}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse_write_out(&String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| format!("{url}: curl gave no status"))
}

/// curl's `%{http_code} %{redirect_url}`.
fn parse_write_out(text: &str) -> Option<(u16, Option<String>)> {
    let (code, location) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
    let code = code.parse().ok()?;
    let location = Some(location.trim().to_string()).filter(|l| !l.is_empty());
    Some((code, location))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<String> {
        vec!["a1b2c3d4.127-0-0-1.sslip.io".into(), "shop.example".into()]
    }

    #[test]
    fn redirects_stay_on_the_environments_own_hosts() {
        let t = redirect_target("https://Shop.Example/wp-admin/", &hosts()).unwrap();
        assert_eq!(
            t,
            Target {
                https: true,
                host: "shop.example".into(),
                port: 443
            }
        );
        let t = redirect_target("http://a1b2c3d4.127-0-0-1.sslip.io:8080?x", &hosts()).unwrap();
        assert_eq!((t.https, t.port), (false, 8080));
        for refused in [
            "https://evil.example/",
            "https://shop.example.evil.example/",
            "https://shop.example@evil.example/",
            "ftp://shop.example/",
            "//shop.example/",
            "https://shop.example:99999/",
        ] {
            assert!(redirect_target(refused, &hosts()).is_err(), "{refused}");
        }
    }

    #[test]
    fn curls_answer_is_read() {
        assert_eq!(parse_write_out("200 "), Some((200, None)));
        assert_eq!(
            parse_write_out("301 https://shop.example/"),
            Some((301, Some("https://shop.example/".into())))
        );
        assert_eq!(parse_write_out(""), None);
    }

    #[test]
    fn a_check_is_retried_once_and_the_report_names_each() {
        let calls = std::cell::Cell::new(0);
        let flaky = retried("http", || {
            calls.set(calls.get() + 1);
            if calls.get() == 1 {
                Err("HTTP 502".into())
            } else {
                Ok("200".into())
            }
        });
        assert_eq!((flaky.passed, flaky.attempts), (true, 2));
        let failed = retried("db-ping", || Err("refused".into()));
        assert_eq!((failed.passed, failed.attempts), (false, ATTEMPTS));
        let report = Report::new(vec![flaky, failed]);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["passed"], false);
        assert_eq!(json["checks"][1]["name"], "db-ping");
        assert_eq!(json["checks"][1]["detail"], "refused");
        assert_eq!(json["checks"][0]["attempts"], 2);
    }

    #[test]
    fn an_unknown_contract_version_is_refused() {
        let err = spec::parse::<HealthCheckSpec>(r#"{"contract_version": 0}"#).unwrap_err();
        assert!(
            err.contains("the node helper is older than the control plane"),
            "{err}"
        );
    }
}
