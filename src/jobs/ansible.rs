//! The Ansible runner (jobs.md §12): one `ansible-playbook` subprocess per job, against one
//! node, from a fresh 0700 run directory holding the inventory, the extra-vars, the decrypted
//! SSH key and `result.json`, removed afterwards. Secrets travel only in the vars file and are
//! masked in the output; the exit code maps to a job error code unless the playbook reported
//! a structured one.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value};
use tokio::process::Command;

use super::errors::JobErrorCode;
use super::kinds;
use super::process::{self, ProcessEnd, KILL_GRACE};
use super::runner::{RunContext, RunFuture, RunOutcome, Runner, StopReason};
use crate::config::Config;
use crate::secrets::Secrets;
use crate::store::{JobRecord, Store};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/ansible_files.rs"));
}

/// Writes the embedded `ansible/` tree into `dir` (overwriting our files, leaving others).
pub fn extract_embedded(dir: &Path) -> std::io::Result<usize> {
    for (rel, bytes) in embedded::FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if std::fs::read(&path).ok().as_deref() != Some(*bytes) {
            std::fs::write(&path, bytes)?;
        }
    }
    Ok(embedded::FILES.len())
}

/// The directory holding the run directories.
pub fn runs_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("runs")
}

/// Removes every run directory under `<data_dir>/runs` (at start-up, before any worker runs:
/// whatever is there was left by a process that died mid-run, with a decrypted key in it).
/// Failures are logged; start-up goes on.
pub fn remove_stale_run_dirs(data_dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(runs_dir(data_dir)) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        let result = match entry.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        match result {
            Ok(()) => removed += 1,
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "stale run directory could not be removed")
            }
        }
    }
    if removed > 0 {
        tracing::warn!(removed, "stale run directories removed");
    }
    removed
}

/// Runs jobs through their playbooks.
pub struct AnsibleRunner {
    store: Store,
    secrets: Secrets,
    config: Arc<Config>,
}

/// A prepared run: the private directory and the command.
struct Prepared {
    /// Removed on drop.
    dir: tempfile::TempDir,
    command: Command,
    argv: String,
    secrets: Vec<String>,
    result_path: PathBuf,
}

/// Why a run could not be prepared (reported as `ANSIBLE_UNEXPECTED_ERROR`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct PrepareError(String);

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

impl AnsibleRunner {
    pub fn new(store: Store, secrets: Secrets, config: Arc<Config>) -> Self {
        Self {
            store,
            secrets,
            config,
        }
    }

    async fn prepare(&self, job: &JobRecord) -> Result<Prepared, PrepareError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| PrepareError(format!("{what}: {e}"));
        let node = self
            .store
            .get_node(&job.node_id)
            .await
            .map_err(|e| fail("reading the node", &e))?
            .ok_or_else(|| PrepareError("the job's node does not exist".into()))?;
        let job_type = job.job_type;
        let playbook = self
            .config
            .ansible_dir
            .join("playbooks")
            .join(kinds::kind(job_type).playbook());

        let runs = runs_dir(&self.config.data_dir);
        std::fs::create_dir_all(&runs).map_err(|e| fail("creating the runs directory", &e))?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}-", &job.id[..8]))
            .tempdir_in(&runs)
            .map_err(|e| fail("creating the run directory", &e))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .map_err(|e| fail("restricting the run directory", &e))?;

        let key_path = dir.path().join("id_ed25519");
        let key = self
            .secrets
            .ssh_private_key()
            .map_err(|e| fail("reading the SSH key", &e))?;
        write_private(&key_path, key.expose().as_bytes())
            .map_err(|e| fail("writing the SSH key", &e))?;

        let inventory = format!(
            "[target]\n{} ansible_port={} ansible_user={} ansible_ssh_private_key_file={}\n",
            node.hostname,
            node.ssh_port,
            node.ssh_user,
            key_path.display()
        );
        let inventory_path = dir.path().join("inventory.ini");
        write_private(&inventory_path, inventory.as_bytes())
            .map_err(|e| fail("writing the inventory", &e))?;

        let result_path = dir.path().join("result.json");
        let mut vars: Map<String, Value> = match serde_json::from_str(&job.payload_json) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let resolved = kinds::extra_vars(&self.store, &self.secrets, &self.config, job, &node)
            .await
            .map_err(|e| fail("resolving the job's variables", &e))?;
        vars.extend(resolved.vars);
        vars.insert("node_hostname".into(), node.hostname.clone().into());
        vars.insert("node_ssh_user".into(), node.ssh_user.clone().into());
        vars.insert(
            "source_allow_loopback".into(),
            self.config.allow_loopback_sources.into(),
        );
        vars.insert(
            "pressluft_result_path".into(),
            result_path.display().to_string().into(),
        );
        let vars_path = dir.path().join("vars.yml");
        let vars_yaml = unsafe_vars_yaml(&vars).map_err(|e| fail("writing the variables", &e))?;
        write_private(&vars_path, vars_yaml.as_bytes())
            .map_err(|e| fail("writing the variables", &e))?;

        let known_hosts = self.config.data_dir.join("known_hosts");
        let ssh_extra = format!(
            "-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile={}",
            known_hosts.display()
        );
        let mut command = Command::new("ansible-playbook");
        command
            .arg("-i")
            .arg(&inventory_path)
            .arg("-e")
            .arg(format!("@{}", vars_path.display()))
            .arg(format!("--ssh-extra-args={ssh_extra}"))
            .arg(&playbook)
            .current_dir(&self.config.ansible_dir)
            .env(
                "ANSIBLE_CONFIG",
                self.config.ansible_dir.join("ansible.cfg"),
            )
            .env("ANSIBLE_NOCOLOR", "1")
            .env("ANSIBLE_FORCE_COLOR", "0")
            .env("PYTHONUNBUFFERED", "1");
        let argv = format!(
            "ansible-playbook -i {} -e @{} --ssh-extra-args='{ssh_extra}' {}",
            inventory_path.display(),
            vars_path.display(),
            playbook.display()
        );
        Ok(Prepared {
            dir,
            command,
            argv,
            secrets: resolved.secrets,
            result_path,
        })
    }

    async fn execute(&self, job: &JobRecord, mut ctx: RunContext) -> RunOutcome {
        let prepared = match self.prepare(job).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(id = %job.id, error = %e, "ansible run could not be prepared");
                return RunOutcome::Failed {
                    code: JobErrorCode::AnsibleUnexpectedError,
                    message: format!("the run could not be prepared: {e}"),
                    result: None,
                };
            }
        };
        ctx.output.mask(prepared.secrets.clone());
        tracing::info!(id = %job.id, command = %prepared.argv, "ansible started");
        ctx.output.line(&format!("$ {}", prepared.argv));
        let started = Instant::now();
        let end = process::run(prepared.command, &ctx.output, &mut ctx.stop, KILL_GRACE).await;
        let duration = format!("{:.1}s", started.elapsed().as_secs_f64());
        let outcome = match end {
            Err(e) => RunOutcome::Failed {
                code: JobErrorCode::AnsibleUnexpectedError,
                message: format!("ansible-playbook could not be started: {e}"),
                result: None,
            },
            Ok(ProcessEnd::Stopped(StopReason::Timeout)) => {
                tracing::warn!(id = %job.id, duration, "ansible killed at the job timeout");
                RunOutcome::Failed {
                    code: JobErrorCode::AnsibleTimeout,
                    message: "Ansible was stopped when the job timeout elapsed".into(),
                    result: None,
                }
            }
            Ok(ProcessEnd::Stopped(reason)) => {
                tracing::info!(id = %job.id, ?reason, duration, "ansible stopped");
                RunOutcome::Stopped
            }
            Ok(ProcessEnd::Exited(status)) => {
                let exit = status.code();
                tracing::info!(id = %job.id, exit = exit.unwrap_or(-1), duration, "ansible finished");
                let result = read_result(&prepared.result_path);
                match interpret(exit, result, &ctx.output.tail()) {
                    // The playbook's message reaches users: same masking as the output.
                    RunOutcome::Failed {
                        code,
                        message,
                        result,
                    } => RunOutcome::Failed {
                        code,
                        message: ctx.output.redact(&message),
                        result,
                    },
                    other => other,
                }
            }
        };
        drop(prepared.dir);
        outcome
    }
}

impl Runner for AnsibleRunner {
    fn run<'a>(&'a self, job: &'a JobRecord, ctx: RunContext) -> RunFuture<'a> {
        Box::pin(self.execute(job, ctx))
    }
}

/// The extra-vars file: YAML in which every string (each value and each key below the top
/// level, at any depth) is data Ansible never templates — tagged `!unsafe` (see
/// [`yaml_unsafe_string`] for the type-ambiguous few that cannot hold a template) — so no
/// playbook can ever evaluate `{{ … }}` or `{% … %}` in data that came from users (docs/decisions.md, "user data is never
/// templated"). Unsafe values are still ordinary variables: playbooks compare, slice, join and
/// pass them on; Ansible only refuses to template them again. The top-level keys are variable
/// names chosen by the control plane and must be identifiers.
pub fn unsafe_vars_yaml(vars: &Map<String, Value>) -> Result<String, String> {
    let mut out = String::from("---\n");
    for (key, value) in vars {
        let identifier = key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !identifier {
            return Err(format!("variable name {key:?} is not an identifier"));
        }
        // Quoted: `on`, `yes` or `null` unquoted would be a boolean or null key.
        yaml_string(&mut out, key);
        out.push_str(": ");
        yaml_value(&mut out, value);
        out.push('\n');
    }
    Ok(out)
}

/// One value in YAML flow style, strings tagged `!unsafe`.
fn yaml_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) if n.is_f64() => {
            out.push_str("!!float ");
            yaml_string(out, &n.to_string());
        }
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => yaml_unsafe_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                yaml_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                yaml_unsafe_string(out, k);
                out.push_str(": ");
                yaml_value(out, v);
            }
            out.push('}');
        }
    }
}

/// A string as data Ansible never templates: tagged `!unsafe`, except the few strings a plain
/// YAML scalar would read as another type (`""`, `true`, `0`, `1.5`, `~`, `null`, `<<`, `=`, a
/// date …). ansible-core 2.19 resolves the type of an `!unsafe` scalar as if it were unquoted
/// (`!unsafe ""` is null, `!unsafe "true"` a boolean), so those stay plain quoted strings;
/// none of them can contain `{`, without which Jinja has nothing to evaluate (`{{`, `{%`,
/// `{#`). Every string with a `{` is tagged, always.
fn yaml_unsafe_string(out: &mut String, s: &str) {
    if s.contains('{') || !may_resolve_to_another_type(s) {
        out.push_str("!unsafe ");
    }
    yaml_string(out, s);
}

/// Conservatively, whether YAML 1.1's implicit resolvers could read `s` (unquoted) as
/// something other than a string: empty, a bool or null word, or a first character that
/// starts a number, a date, `~`, `.inf`/`.nan`, `<<` or `=`.
fn may_resolve_to_another_type(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return true;
    };
    if matches!(first, '0'..='9' | '+' | '-' | '.' | '~' | '<' | '=') {
        return true;
    }
    matches!(
        s.to_ascii_lowercase().as_str(),
        "y" | "n" | "yes" | "no" | "true" | "false" | "on" | "off" | "null"
    )
}

/// A YAML double-quoted scalar holding exactly `s`: printable ASCII as is, everything else
/// escaped (so no character YAML forbids or normalises reaches the file).
fn yaml_string(out: &mut String, s: &str) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08X}", c as u32);
            }
        }
    }
    out.push('"');
}

/// The playbook's `result.json`, if it wrote one.
fn read_result(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Maps an exit code (and a reported result) to an outcome (jobs.md §12). A failure keeps
/// the result the playbook wrote, if any (a partial result, [`RunOutcome::Failed`]).
pub fn interpret(exit: Option<i32>, result: Option<Value>, output: &str) -> RunOutcome {
    if let Some(reported) = result.as_ref().and_then(|r| r["error_code"].as_str()) {
        if let Some(code) = JobErrorCode::parse(reported) {
            let message = result
                .as_ref()
                .and_then(|r| r["error_message"].as_str())
                .unwrap_or("");
            return RunOutcome::Failed {
                code,
                message: message.to_string(),
                result: result.clone(),
            };
        }
    }
    let code = match exit {
        Some(0) => {
            return RunOutcome::Succeeded {
                result: result.unwrap_or_else(|| Value::Object(Map::new())),
            }
        }
        Some(1) => JobErrorCode::AnsiblePlayError,
        Some(2) => JobErrorCode::AnsibleHostFailed,
        Some(4) if output.contains("UNREACHABLE!") => JobErrorCode::AnsibleHostUnreachable,
        Some(4) | Some(5) => JobErrorCode::AnsibleSyntaxError,
        Some(250) => JobErrorCode::AnsibleUnexpectedError,
        _ => JobErrorCode::AnsibleUnknownExit,
    };
    // An empty message makes the engine use the last 10 KB of output.
    RunOutcome::Failed {
        code,
        message: String::new(),
        result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code(o: RunOutcome) -> JobErrorCode {
        match o {
            RunOutcome::Failed { code, .. } => code,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exit_codes_map_to_the_contract() {
        assert!(matches!(
            interpret(Some(0), None, ""),
            RunOutcome::Succeeded { .. }
        ));
        assert_eq!(
            code(interpret(Some(1), None, "")),
            JobErrorCode::AnsiblePlayError
        );
        assert_eq!(
            code(interpret(Some(2), None, "")),
            JobErrorCode::AnsibleHostFailed
        );
        assert_eq!(
            code(interpret(Some(4), None, "fatal: [h]: UNREACHABLE! => {}")),
            JobErrorCode::AnsibleHostUnreachable
        );
        assert_eq!(
            code(interpret(Some(4), None, "ERROR! parse")),
            JobErrorCode::AnsibleSyntaxError
        );
        assert_eq!(
            code(interpret(Some(5), None, "")),
            JobErrorCode::AnsibleSyntaxError
        );
        assert_eq!(
            code(interpret(Some(250), None, "")),
            JobErrorCode::AnsibleUnexpectedError
        );
        assert_eq!(
            code(interpret(Some(99), None, "")),
            JobErrorCode::AnsibleUnknownExit
        );
        assert_eq!(
            code(interpret(None, None, "")),
            JobErrorCode::AnsibleUnknownExit
        );
    }

    #[test]
    fn a_reported_error_overrides_the_exit_code() {
        let r = json!({"error_code": "PRECONDITION_FAILED", "error_message": "unsupported OS: alpine 3"});
        match interpret(Some(2), Some(r), "") {
            RunOutcome::Failed {
                code,
                message,
                result,
            } => {
                assert_eq!(code, JobErrorCode::PreconditionFailed);
                assert_eq!(message, "unsupported OS: alpine 3");
                assert_eq!(result.unwrap()["error_code"], "PRECONDITION_FAILED");
            }
            other => panic!("{other:?}"),
        }
        // Unregistered codes are ignored.
        let r = json!({"error_code": "MADE_UP"});
        assert_eq!(
            code(interpret(Some(2), Some(r), "")),
            JobErrorCode::AnsibleHostFailed
        );
    }

    #[test]
    fn every_string_in_the_vars_file_is_marked_unsafe_at_any_depth() {
        let vars = json!({
            "site_title": "{{ lookup('pipe','id') }}",
            "nested": {"list": [{"k": "{% if 1 %}x{% endif %}", "{{ key }}": [1, true, null, "v"]}]},
            "n": 3,
            "f": 1.5,
            "on": false,
            "text": "é \"q\" \\ \n\t\u{7f}\u{1F600}",
            "plain": ["", "true", "No", "0", "-1", "1.5", "~", "null", "<<", "=", "2001-12-14", "{0}", "yes{{x}}"],
        });
        let yaml = unsafe_vars_yaml(vars.as_object().unwrap()).unwrap();
        assert_eq!(
            yaml,
            concat!(
                "---\n",
                "\"f\": !!float \"1.5\"\n",
                "\"n\": 3\n",
                "\"nested\": {!unsafe \"list\": [{!unsafe \"k\": !unsafe \"{% if 1 %}x{% endif %}\", ",
                "!unsafe \"{{ key }}\": [1, true, null, !unsafe \"v\"]}]}\n",
                "\"on\": false\n",
                "\"plain\": [\"\", \"true\", \"No\", \"0\", \"-1\", \"1.5\", \"~\", \"null\", \"<<\", \"=\", ",
                "\"2001-12-14\", !unsafe \"{0}\", !unsafe \"yes{{x}}\"]\n",
                "\"site_title\": !unsafe \"{{ lookup('pipe','id') }}\"\n",
                "\"text\": !unsafe \"\\u00E9 \\\"q\\\" \\\\ \\u000A\\u0009\\u007F\\U0001F600\"\n",
            )
        );
        // Below the top level, every quoted scalar (value or key) is tagged, except the
        // type-ambiguous strings, which never hold a `{`.
        for line in yaml.lines().skip(1) {
            let (_, mut rest) = line.split_once(": ").unwrap();
            while let Some(i) = rest.find('"') {
                let tagged = rest[..i].ends_with("!unsafe ") || rest[..i].ends_with("!!float ");
                let after = &rest[i + 1..];
                let bytes = after.as_bytes();
                let mut end = 0;
                while bytes[end] != b'"' {
                    end += if bytes[end] == b'\\' { 2 } else { 1 };
                }
                let content = &after[..end];
                assert!(
                    tagged || (!content.contains('{') && may_resolve_to_another_type(content)),
                    "untagged string {content:?}"
                );
                rest = &after[end + 1..];
            }
        }
        // Variable names must be identifiers (they are the control plane's, never users').
        let bad = json!({"a b": 1});
        assert!(unsafe_vars_yaml(bad.as_object().unwrap()).is_err());
    }

    #[test]
    fn embedded_tree_extracts() {
        let dir = tempfile::tempdir().unwrap();
        let n = extract_embedded(dir.path()).unwrap();
        assert!(n > 0);
        assert!(dir.path().join("ansible.cfg").is_file());
        assert_eq!(extract_embedded(dir.path()).unwrap(), n, "idempotent");
    }
}
