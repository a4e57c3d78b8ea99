//! MariaDB on the node, through the `mysql` client as root (unix-socket authentication): SQL
//! always goes through stdin, never through arguments, and names are checked to be plain
//! identifiers before they are put into SQL.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

use anyhow::Context;

use super::process::wait_child;

/// A MariaDB database or table name the helpers accept: letters, digits, `_` and `$`, at most
/// 64 bytes (so it never needs quoting beyond backticks).
pub fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
}

/// Starts `mysqldump <common> <extra> -- <database>` (stdout and stderr piped, stdin closed):
/// `common` is the caller's fixed options, `extra` those of one dump.
pub fn mysqldump(common: &[&str], extra: &[&str], database: &str) -> anyhow::Result<Child> {
    Command::new("mysqldump")
        .args(common)
        .args(extra)
        .arg("--")
        .arg(database)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting mysqldump")
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

/// The environment's database and its user limited to it: the env-database role's SQL,
/// rendered by the playbook (the password travels base64-encoded inside it).
pub fn ensure(database_sql: &str) -> anyhow::Result<()> {
    mysql_lines(None, database_sql).context("creating the database and its user")?;
    Ok(())
}

/// Fails unless every one of `databases` exists.
pub fn require_existing(databases: &[&str]) -> anyhow::Result<()> {
    let list = databases
        .iter()
        .map(|d| format!("'{d}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ({list});"
    );
    let found = mysql_lines(None, &sql)?;
    for db in databases {
        if !found.iter().any(|f| f == db) {
            anyhow::bail!("the database {db} does not exist on the node");
        }
    }
    Ok(())
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
