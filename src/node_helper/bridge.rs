//! The PHP bridge (`bridge.php`, installed by node_provision's node-helper role): the node
//! helper's only way into WordPress. Each command loads WordPress as the environment's user
//! and answers one JSON line.

use std::process::{Command, Output, Stdio};

use anyhow::{bail, Context};
use serde_json::Value;

use super::process::as_user_command;

/// Runs a bridge command as `user` on the WordPress in `wp_root` and returns its JSON answer
/// (its last stdout line). `php_dir` is where node_provision installed the bridge; `home` is
/// the `HOME` the bridge gets, if any.
pub fn call(
    php_dir: &str,
    user: &str,
    wp_root: &str,
    home: Option<&str>,
    args: &[&str],
) -> anyhow::Result<Value> {
    run(php_dir, user, wp_root, home, args, None)
}

/// [`call`] stopped after `seconds` (coreutils `timeout`; killed 2 s after its TERM), for the
/// health checks, whose bridge calls must not hang.
pub fn call_within(
    php_dir: &str,
    user: &str,
    wp_root: &str,
    args: &[&str],
    seconds: u32,
) -> anyhow::Result<Value> {
    run(php_dir, user, wp_root, None, args, Some(seconds))
}

/// Runs `command` (an [`as_user_command`] with the bridge's environment variables) on
/// `php <php_dir>/bridge.php <args>` from `/` without stdin: its output and its JSON answer
/// (the last stdout line), if it gave one. Shared with the update calls
/// ([`super::update::bridge_update_call`]).
pub(super) fn answer(
    mut command: Command,
    php_dir: &str,
    args: &[&str],
) -> std::io::Result<(Output, Option<Value>)> {
    let out = command
        .arg("php")
        .arg(format!("{php_dir}/bridge.php"))
        .args(args)
        .current_dir("/")
        .stdin(Stdio::null())
        .output()?;
    let answer = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok());
    Ok((out, answer))
}

fn run(
    php_dir: &str,
    user: &str,
    wp_root: &str,
    home: Option<&str>,
    args: &[&str],
    seconds: Option<u32>,
) -> anyhow::Result<Value> {
    let mut command = as_user_command(user, None);
    if let Some(home) = home {
        command.arg(format!("HOME={home}"));
    }
    command.arg(format!("PRESSLUFT_WP_ROOT={wp_root}"));
    if let Some(seconds) = seconds {
        command.args(["timeout", "-k", "2", &seconds.to_string()]);
    }
    let (out, answer) = answer(command, php_dir, args).context("starting the PHP bridge")?;
    match answer {
        Some(v) if out.status.success() => Ok(v),
        Some(v) => bail!(
            "the PHP bridge ({}) failed: {}",
            args[0],
            v.get("error")
                .and_then(Value::as_str)
                .unwrap_or("no message")
        ),
        None if seconds.is_some() && out.status.code() == Some(124) => bail!(
            "the PHP bridge ({}) timed out after {} s",
            args[0],
            seconds.unwrap_or_default()
        ),
        None => bail!(
            "the PHP bridge ({}) gave no answer ({}): {}",
            args[0],
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

/// The table prefix of the WordPress in `wp_root` (plain: letters, digits, `_`).
pub fn table_prefix(php_dir: &str, user: &str, wp_root: &str) -> anyhow::Result<String> {
    let answer = call(php_dir, user, wp_root, None, &["table-prefix"])
        .with_context(|| format!("reading the table prefix of {wp_root}"))?;
    answer
        .get("table_prefix")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .map(str::to_string)
        .with_context(|| format!("{wp_root}: the table prefix is missing or not plain"))
}
