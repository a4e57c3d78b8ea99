//! `pressluft node magic-login`: a one-time WordPress login token for an environment (magic
//! login, backups-restore-promotion.md §10), asked over one SSH command by the control plane
//! when the operator clicks "Open WordPress admin". The helper runs the PHP bridge's
//! `magic-login` as the environment's Linux user with `open_basedir` limited to the
//! environment root and the bridge's directory (the pool's setting covers PHP-FPM only), so the
//! command cannot reach another environment; the bridge stores only the token's SHA-256 (a
//! 60-second transient) and the helper prints the token once, on stdout, to the control plane.
//! Nothing here comes from the request: the spec holds paths and names derived from ids.

use std::process::Stdio;

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::process::as_user_command;
use super::{releases, spec};

/// The bridge's own limit (coreutils `timeout`), inside the control plane's 10 s for the whole
/// SSH command, so a hanging WordPress is a helper failure (`wp_cli_error`), not a lost node.
pub const BRIDGE_SECONDS: u32 = 7;

/// `pressluft node magic-login`'s stdin.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MagicLoginSpec {
    pub contract_version: u32,
    pub environment_id: String,
    /// `/var/www/sites/<site id>/<environment id>`.
    pub env_root: String,
    /// `pl_<uuid8>`.
    pub env_user: String,
    /// Where node_provision installed the PHP bridge.
    pub php_dir: String,
}

/// What `magic-login` prints: the token (64 hex characters, never logged) and when it expires.
#[derive(Debug, Serialize, Deserialize)]
pub struct MagicLoginToken {
    pub token: String,
    /// RFC 3339, UTC: the token's creation + 60 s.
    pub expires_at: String,
}

/// `pressluft node magic-login`.
pub fn run() -> anyhow::Result<()> {
    spec::run_command(check, apply)
}

fn check(spec: &MagicLoginSpec) -> anyhow::Result<()> {
    check_names(spec)?;
    if releases::current(&spec.env_root)?.is_none() {
        bail!("the environment has no current release");
    }
    let bridge = format!("{}/bridge.php", spec.php_dir);
    if !std::path::Path::new(&bridge).is_file() {
        bail!("the PHP bridge {bridge} is missing: provision the node again");
    }
    Ok(())
}

/// The spec's names are the ones the control plane derives from ids (layout.rs); anything else
/// is refused before a process starts.
fn check_names(spec: &MagicLoginSpec) -> anyhow::Result<()> {
    let uuid = |s: &str| uuid::Uuid::parse_str(s).is_ok() && s.len() == 36;
    if !uuid(&spec.environment_id) {
        bail!("environment_id is not a UUID");
    }
    let expected_user = format!("pl_{}", &spec.environment_id[..8]);
    if spec.env_user != expected_user {
        bail!("env_user is not the environment's user");
    }
    let rest = spec
        .env_root
        .strip_prefix("/var/www/sites/")
        .context("env_root is not under /var/www/sites")?;
    match rest.split_once('/') {
        Some((site, env)) if uuid(site) && env == spec.environment_id => {}
        _ => bail!("env_root is not the environment's root"),
    }
    let php_dir_ok = spec.php_dir.starts_with('/')
        && !spec.php_dir.contains("..")
        && spec
            .php_dir
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
    if !php_dir_ok {
        bail!("php_dir is not a plain absolute path");
    }
    Ok(())
}

fn apply(spec: &MagicLoginSpec, _: &()) -> anyhow::Result<MagicLoginToken> {
    parse_answer(bridge_query(
        &spec.env_root,
        &spec.env_user,
        &spec.php_dir,
        "magic-login",
    )?)
}

/// Runs a read-only bridge command (no arguments) as the environment's user with
/// `open_basedir` limited to the environment root and the bridge's directory, within
/// [`BRIDGE_SECONDS`]: `magic-login`, `menu-paths`. The names must have been checked.
pub fn bridge_query(
    env_root: &str,
    env_user: &str,
    php_dir: &str,
    bridge_command: &str,
) -> anyhow::Result<Value> {
    let php_dir = php_dir.trim_end_matches('/');
    let mut command = as_user_command(env_user, None);
    command
        .arg(format!("PRESSLUFT_WP_ROOT={env_root}/current"))
        .args(["timeout", "-k", "1", &BRIDGE_SECONDS.to_string()])
        .arg("php")
        .arg("-d")
        .arg(format!("open_basedir={env_root}/:{php_dir}/"))
        .arg("-d")
        .arg(format!("sys_temp_dir={env_root}/tmp"))
        .arg(format!("{php_dir}/bridge.php"))
        .arg(bridge_command)
        .current_dir("/")
        .stdin(Stdio::null());
    let out = command.output().context("starting the PHP bridge")?;
    let answer: Option<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok());
    match answer {
        Some(v) if out.status.success() => Ok(v),
        Some(v) => bail!(
            "the PHP bridge ({bridge_command}) failed: {}",
            v.get("error")
                .and_then(Value::as_str)
                .unwrap_or("no message")
        ),
        None => bail!(
            "the PHP bridge ({bridge_command}) gave no answer ({})",
            out.status
        ),
    }
}

/// The bridge's answer, checked: a 64-hex-character token and an expiry.
pub fn parse_answer(answer: Value) -> anyhow::Result<MagicLoginToken> {
    let token: MagicLoginToken = serde_json::from_value(answer)
        .map_err(|_| anyhow::anyhow!("the PHP bridge's magic-login answer is not understood"))?;
    if token.token.len() != 64 || !token.token.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("the PHP bridge's magic-login token is not 64 hex characters");
    }
    if time::OffsetDateTime::parse(
        &token.expires_at,
        &time::format_description::well_known::Rfc3339,
    )
    .is_err()
    {
        bail!("the PHP bridge's magic-login expiry is not an RFC 3339 time");
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> MagicLoginSpec {
        MagicLoginSpec {
            contract_version: spec::CONTRACT_VERSION,
            environment_id: "0a1b2c3d-1111-4222-8333-444455556666".into(),
            env_root: "/var/www/sites/9f8e7d6c-1111-4222-8333-444455556666/0a1b2c3d-1111-4222-8333-444455556666".into(),
            env_user: "pl_0a1b2c3d".into(),
            php_dir: "/usr/local/lib/pressluft/php".into(),
        }
    }

    #[test]
    fn only_derived_names_pass() {
        assert!(check_names(&spec()).is_ok());
        let mut s = spec();
        s.env_user = "root".into();
        assert!(check_names(&s).is_err());
        let mut s = spec();
        s.env_root = "/var/www/sites/../../etc/0a1b2c3d-1111-4222-8333-444455556666".into();
        assert!(check_names(&s).is_err());
        let mut s = spec();
        s.env_root = "/etc".into();
        assert!(check_names(&s).is_err());
        let mut s = spec();
        s.php_dir = "/usr/local/lib/pressluft/php:/etc".into();
        assert!(check_names(&s).is_err());
    }

    #[test]
    fn answers_are_checked() {
        let ok = serde_json::json!({"token": "a".repeat(64), "expires_at": "2025-01-01T00:01:00Z"});
        assert!(parse_answer(ok).is_ok());
        let short = serde_json::json!({"token": "abc", "expires_at": "2025-01-01T00:01:00Z"});
        assert!(parse_answer(short).is_err());
        let bad_time = serde_json::json!({"token": "a".repeat(64), "expires_at": "soon"});
        assert!(parse_answer(bad_time).is_err());
        assert!(parse_answer(serde_json::json!({"error": "x"})).is_err());
    }
}
