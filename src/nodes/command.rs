//! One node-helper command on a node, run directly over SSH with the control plane's key (not
//! through Ansible): node queries that answer a dashboard or API request (the available updates,
//! a backup download, magic login). The spec goes on stdin only, never into argv; the key is
//! written to a private file in a private run directory removed afterwards; the helper's stderr
//! is never shown to a user (callers get its error code at most, and log the rest redacted).
//!
//! [`ssh_command`] builds the invocation (shared with the streaming backup download);
//! [`run`] runs a command to completion under a hard time limit with bounded output.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use crate::config::Config;
use crate::secrets::Secrets;
use crate::store::nodes::NodeRecord;

/// The node helper's path on a provisioned node.
pub const NODE_HELPER: &str = "/usr/local/bin/pressluft";

/// Stderr kept from a command (for the log; never shown).
const STDERR_LIMIT: usize = 16 * 1024;

/// Why a node command did not answer.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// SSH could not connect or authenticate (exit 255), or the time limit passed.
    #[error("the node could not be reached over SSH")]
    Unreachable,
    /// The helper ran and failed; `helper_code` is its error code when stderr began with one.
    #[error("the node helper failed{}", .helper_code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Failed {
        exit_code: Option<i32>,
        helper_code: Option<String>,
    },
    /// The helper's output was larger than allowed.
    #[error("the node helper's answer was too large")]
    TooLarge,
    /// Something on the control plane (run directory, key file, spawning ssh).
    #[error("the node command could not run ({0})")]
    Local(&'static str),
}

/// A private run directory holding the control plane's SSH key; removed when dropped.
pub struct KeyDir {
    dir: tempfile::TempDir,
}

impl KeyDir {
    /// Creates `<data>/runs/<prefix>…/id_ed25519` (0700 directory, 0600 key).
    pub fn new(config: &Config, secrets: &Secrets, prefix: &str) -> Result<Self, CommandError> {
        let local = |what: &'static str, e: &dyn std::fmt::Display| {
            tracing::warn!(error = %e, "node command: {what}");
            CommandError::Local(what)
        };
        let runs = crate::jobs::ansible::runs_dir(&config.data_dir);
        std::fs::create_dir_all(&runs).map_err(|e| local("creating the run directory", &e))?;
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&runs)
            .map_err(|e| local("creating the run directory", &e))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(|e| local("restricting the run directory", &e))?;
        let kd = KeyDir { dir };
        write_key(secrets, &kd.key_path()).map_err(|e| local("writing the SSH key", &e))?;
        Ok(kd)
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join("id_ed25519")
    }
}

/// `ssh … <user>@<host> -- [sudo -n] pressluft node <subcommand>` with the control plane's key,
/// batch mode, the control plane's known-hosts file and a 10 s connect timeout. `subcommand` is
/// a fixed word chosen by the caller, never user input.
pub fn ssh_command(
    config: &Config,
    key_path: &Path,
    node: &NodeRecord,
    subcommand: &'static str,
) -> Command {
    let helper = if node.ssh_user == "root" {
        format!("{NODE_HELPER} node {subcommand}")
    } else {
        format!("sudo -n {NODE_HELPER} node {subcommand}")
    };
    let mut cmd = Command::new("ssh");
    cmd.arg("-i")
        .arg(key_path)
        .args(["-p", &node.ssh_port.to_string()])
        .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
        .args(["-o", "StrictHostKeyChecking=accept-new"])
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            config.data_dir.join("known_hosts").display()
        ))
        .args(["-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"])
        .arg(format!("{}@{}", node.ssh_user, node.hostname))
        .arg("--")
        .arg(helper)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs `pressluft node <subcommand>` on `node` with `stdin` as its spec and returns its
/// stdout, or an error after `limit` (the ssh process is killed) or when stdout exceeds
/// `max_stdout` bytes. A failure's stderr is logged (first line, without the spec) and dropped.
pub async fn run(
    config: &Config,
    secrets: &Secrets,
    node: &NodeRecord,
    subcommand: &'static str,
    stdin: &str,
    limit: Duration,
    max_stdout: usize,
) -> Result<Vec<u8>, CommandError> {
    let keys = KeyDir::new(config, secrets, "node-command-")?;
    let mut child = ssh_command(config, &keys.key_path(), node, subcommand)
        .spawn()
        .map_err(|e| {
            tracing::warn!(error = %e, "node command: starting ssh");
            CommandError::Local("starting ssh")
        })?;
    let mut input = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let spec = stdin.as_bytes().to_vec();
    let work = async move {
        // A node that never reads its stdin must not block the answer: write concurrently.
        let writer = async move {
            let _ = input.write_all(&spec).await;
            drop(input);
        };
        let (_, out, err) = tokio::join!(
            writer,
            read_bounded(stdout, max_stdout.saturating_add(1)),
            read_bounded(stderr, STDERR_LIMIT)
        );
        let status = child.wait().await;
        (status, out, err)
    };
    let (status, out, err) = match tokio::time::timeout(limit, work).await {
        Ok(done) => done,
        Err(_) => {
            tracing::warn!(node = %node.id, subcommand, "node command timed out");
            return Err(CommandError::Unreachable);
        }
    };
    let status = status.map_err(|e| {
        tracing::warn!(error = %e, "node command: waiting for ssh");
        CommandError::Local("waiting for ssh")
    })?;
    if status.success() {
        if out.len() > max_stdout {
            return Err(CommandError::TooLarge);
        }
        return Ok(out);
    }
    let err = String::from_utf8_lossy(&err);
    let failure = failure(status.code(), &err);
    let first_line = crate::sources::redact_userinfo(err.lines().next().unwrap_or("")).into_owned();
    tracing::warn!(node = %node.id, subcommand, exit = ?status.code(), stderr = %first_line, "node command failed");
    Err(failure)
}

/// Classifies a failed command: exit 255 is SSH's own failure; otherwise the helper's error
/// code when its stderr starts with one (`SOME_CODE: …`), nothing else of the output.
pub fn failure(exit_code: Option<i32>, stderr: &str) -> CommandError {
    if exit_code == Some(255) {
        return CommandError::Unreachable;
    }
    let first = stderr.split_whitespace().next().unwrap_or("");
    let code = first.trim_end_matches(':');
    let is_code = code.len() > 2
        && code.contains('_')
        && code.chars().all(|c| c.is_ascii_uppercase() || c == '_');
    CommandError::Failed {
        exit_code,
        helper_code: is_code.then(|| code.to_string()),
    }
}

/// The control plane's SSH private key, in a private file.
fn write_key(secrets: &Secrets, path: &Path) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = secrets.ssh_private_key().map_err(|e| e.to_string())?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| e.to_string())?;
    f.write_all(key.expose().as_bytes())
        .map_err(|e| e.to_string())
}

/// Reads `r` to its end, keeping at most `limit` bytes (the rest is drained and dropped).
pub async fn read_bounded(mut r: impl AsyncRead + Unpin, limit: usize) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    while let Ok(n) = r.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        let room = limit.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..n.min(room)]);
    }
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_keep_the_code_only() {
        assert!(matches!(
            failure(Some(255), "ssh: refused"),
            CommandError::Unreachable
        ));
        match failure(Some(4), "WP_CLI_ERROR: /var/www/secret exploded") {
            CommandError::Failed { helper_code, .. } => {
                assert_eq!(helper_code.as_deref(), Some("WP_CLI_ERROR"))
            }
            other => panic!("{other:?}"),
        }
        match failure(Some(1), "raw output") {
            CommandError::Failed { helper_code, .. } => assert_eq!(helper_code, None),
            other => panic!("{other:?}"),
        }
    }
}
