//! `pressluft node …`: the helper commands that run **on a node**, invoked by playbooks
//! (provisioning.md §12). They need no control-plane configuration, database or secrets:
//! input comes from arguments and environment variables, results go to stdout as JSON (or a
//! stream), diagnostics to stderr.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};

pub mod backup;
pub mod db_copy;
pub mod drift;
pub mod env_clone;
pub mod nofollow;
pub mod search_replace;

/// A MariaDB database or table name the helpers accept: letters, digits, `_` and `$`, at most
/// 64 bytes (so it never needs quoting beyond backticks).
pub fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
}

/// Waits for a child and turns a failure into an error carrying its stderr.
pub fn wait_child(mut child: Child, what: &str) -> anyhow::Result<()> {
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status}): {}", stderr.trim());
    }
    Ok(())
}

/// Runs `sql` with the MariaDB client as the invoking user (root on a node: unix-socket
/// authentication) and returns its `--batch --skip-column-names` output lines. The SQL goes
/// through stdin, never through arguments; `--binary-mode`: no client command (`\!`) runs.
pub fn mysql_lines(database: Option<&str>, sql: &str) -> anyhow::Result<Vec<String>> {
    let mut command = Command::new("mysql");
    command.args(["--batch", "--skip-column-names", "--binary-mode"]);
    if let Some(db) = database {
        command.arg("--database").arg(db);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the mysql client")?;
    child
        .stdin
        .take()
        .context("mysql stdin")?
        .write_all(sql.as_bytes())
        .context("sending SQL to mysql")?;
    let stdout = child.stdout.take().context("mysql stdout")?;
    let lines = BufReader::new(stdout)
        .lines()
        .collect::<std::io::Result<Vec<_>>>()
        .context("reading mysql output")?;
    wait_child(child, "mysql")?;
    Ok(lines)
}

#[cfg(test)]
mod tests {
    #[test]
    fn identifiers_are_validated() {
        assert!(super::is_identifier("wp_posts"));
        assert!(!super::is_identifier("wp_posts`; DROP TABLE x"));
        assert!(!super::is_identifier(""));
    }
}
