//! What the node-helper test files (backup_node.rs, rollback_node.rs) share: running
//! `pressluft node <command>` with a JSON spec on stdin, as a playbook does, and the `mysql`
//! client for the scratch databases.

#![allow(dead_code)] // each test file uses its own part

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

/// A node-helper run: exit code, stdout, stderr.
pub struct Output {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    /// Its one JSON line, after asserting it succeeded.
    pub fn json(&self) -> Value {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        serde_json::from_slice(&self.stdout).expect("one JSON line")
    }
}

/// Runs `pressluft node <command>` with `input` on stdin.
pub fn node(command: &str, input: &Value) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pressluft"))
        .args(["node", command])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pressluft");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `sql` through the `mysql` client as root over the socket; its tab-separated output.
pub fn mysql(sql: &str) -> String {
    let mut child = Command::new("mysql")
        .args(["--batch", "--skip-column-names"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(sql.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
