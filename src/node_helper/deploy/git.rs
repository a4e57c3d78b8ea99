//! Fetching a deploy's git repository into root's private temporary directory and checking out
//! the ref (branch, tag or commit; the default branch when none).
//!
//! Safety (docs/decisions.md, "Deploys (issue 12): fetching and building a release"):
//! repository hooks never run (`core.hooksPath=/dev/null`), submodules are never fetched,
//! no system or global git configuration is read (`GIT_CONFIG_NOSYSTEM`, `HOME` = the temporary
//! directory), `protocol.file.allow=always` only for `file://`, `safe.directory=*` (the
//! operator named the repository; it may belong to another user), no prompt ever
//! (`GIT_TERMINAL_PROMPT=0`). The repository and the ref reach git as separate arguments after
//! `--`. Credentials in an `https://user:pass@…` URL never reach argv: the URL is passed without
//! them and they go as an `Authorization: Basic` header through git's environment
//! configuration (`GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_0`/`GIT_CONFIG_VALUE_0`). SSH uses the
//! site's deploy key from a 0600 file in the temporary directory, `IdentitiesOnly`,
//! `BatchMode`, a connect timeout, and the helper's own known-hosts file with
//! `StrictHostKeyChecking=accept-new`.

use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine;

use super::DeployError;
use crate::deploys::source::GitTransport;
use crate::sources;

/// The node helper's own SSH known-hosts file for git over SSH.
pub const KNOWN_HOSTS: &str = "/var/lib/pressluft/known_hosts";

/// How long a git operation may take in all.
const GIT_SECONDS: u64 = 600;

/// A repository to fetch.
pub struct Repo<'a> {
    /// As requested (credentials possibly in it).
    pub url: &'a str,
    pub git_ref: Option<&'a str>,
    pub transport: GitTransport,
    /// The deploy key (OpenSSH private key) for SSH.
    pub ssh_key: Option<&'a str>,
    /// Where git's known hosts are kept ([`KNOWN_HOSTS`] on a node).
    pub known_hosts: &'a Path,
}

/// Whether the ref looks like a commit id (7–40 hex digits).
fn is_commit(r: &str) -> bool {
    (7..=40).contains(&r.len()) && r.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Fetches `repo` into `dest` (to be created) using `tmp` (root's private directory) for the
/// key and git's home; checks out the ref, removes `.git` and returns the commit id.
pub fn fetch(repo: &Repo<'_>, dest: &Path, tmp: &Path) -> Result<String, DeployError> {
    let git = Git::new(repo, tmp)?;
    std::fs::create_dir(dest).map_err(|e| DeployError::Failed(format!("{dest:?}: {e}")))?;
    git.run(dest, &["init", "--quiet"], false)?;
    let url = git.url.as_str();
    match repo.git_ref {
        Some(r) if is_commit(r) => {
            // Servers seldom allow fetching a commit by id: fetch branches and tags, resolve.
            git.run(
                dest,
                &[
                    "fetch",
                    "--quiet",
                    "--no-recurse-submodules",
                    "--",
                    url,
                    "+refs/heads/*:refs/remotes/origin/*",
                    "+refs/tags/*:refs/tags/*",
                ],
                true,
            )?;
            let spec = format!("{r}^{{commit}}");
            let sha = git
                .run(
                    dest,
                    &[
                        "rev-parse",
                        "--quiet",
                        "--verify",
                        "--end-of-options",
                        &spec,
                    ],
                    false,
                )
                .map_err(|_| {
                    DeployError::SourceFetch(format!("the ref {r} was not found in the repository"))
                })?;
            git.run(
                dest,
                &["checkout", "--quiet", "--detach", sha.trim()],
                false,
            )?;
        }
        r => {
            let wanted = r.unwrap_or("HEAD");
            git.run(
                dest,
                &[
                    "fetch",
                    "--quiet",
                    "--depth=1",
                    "--no-tags",
                    "--no-recurse-submodules",
                    "--",
                    url,
                    wanted,
                ],
                true,
            )
            .map_err(|e| match e {
                DeployError::SourceFetch(m) if m.contains("couldn't find remote ref") => {
                    DeployError::SourceFetch(format!(
                        "the ref {wanted} was not found in the repository"
                    ))
                }
                other => other,
            })?;
            git.run(
                dest,
                &["checkout", "--quiet", "--detach", "FETCH_HEAD"],
                false,
            )?;
        }
    }
    let sha = git.run(dest, &["rev-parse", "HEAD"], false)?;
    std::fs::remove_dir_all(dest.join(".git"))
        .map_err(|e| DeployError::Failed(format!("removing .git: {e}")))?;
    Ok(sha.trim().to_string())
}

struct Git<'a> {
    repo: &'a Repo<'a>,
    tmp: &'a Path,
    /// The URL without credentials.
    url: String,
    /// `Authorization` header value from the URL's credentials.
    auth: Option<String>,
    ssh_command: Option<String>,
}

impl<'a> Git<'a> {
    fn new(repo: &'a Repo<'a>, tmp: &'a Path) -> Result<Self, DeployError> {
        let (url, auth) = match sources::userinfo(repo.url) {
            Some(info) if repo.transport == GitTransport::Https => {
                let decoded = percent_decode(info);
                let header = format!(
                    "Authorization: Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(decoded)
                );
                (repo.url.replacen(&format!("{info}@"), "", 1), Some(header))
            }
            _ => (repo.url.to_string(), None),
        };
        let ssh_command = if repo.transport == GitTransport::Ssh {
            let key = repo.ssh_key.ok_or_else(|| {
                DeployError::Precondition("an SSH repository needs the site's deploy key".into())
            })?;
            let key_path = tmp.join("deploy_key");
            write_private(&key_path, key)?;
            if let Some(parent) = repo.known_hosts.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| DeployError::Failed(format!("{parent:?}: {e}")))?;
            }
            // Paths of the helper's own (no user data): the command is split by git's shell.
            Some(format!(
                "ssh -i '{}' -o IdentitiesOnly=yes -o BatchMode=yes -o ConnectTimeout=15 \
                 -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile='{}' -F /dev/null",
                key_path.display(),
                repo.known_hosts.display()
            ))
        } else {
            None
        };
        Ok(Git {
            repo,
            tmp,
            url,
            auth,
            ssh_command,
        })
    }

    /// Runs git in `dir`; stdout on success. `remote`: a failure is SOURCE_FETCH_FAILED.
    fn run(&self, dir: &Path, args: &[&str], remote: bool) -> Result<String, DeployError> {
        let mut command = Command::new("git");
        command
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", self.tmp)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", "/bin/false")
            .env("SSH_ASKPASS", "/bin/false")
            .env("GIT_HTTP_LOW_SPEED_LIMIT", "1000")
            .env("GIT_HTTP_LOW_SPEED_TIME", "60")
            .args([
                "-c",
                "core.hooksPath=/dev/null",
                "-c",
                "safe.directory=*",
                "-c",
                "submodule.recurse=false",
                "-c",
                "advice.detachedHead=false",
                "-c",
                "core.fsmonitor=false",
            ]);
        if self.repo.transport == GitTransport::File {
            command.args(["-c", "protocol.file.allow=always"]);
        } else {
            command.args(["-c", "protocol.file.allow=never"]);
        }
        if let Some(header) = &self.auth {
            command
                .env("GIT_CONFIG_COUNT", "1")
                .env("GIT_CONFIG_KEY_0", "http.extraHeader")
                .env("GIT_CONFIG_VALUE_0", header);
        }
        if let Some(ssh) = &self.ssh_command {
            command.env("GIT_SSH_COMMAND", ssh);
        }
        command
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = command
            .spawn()
            .map_err(|e| DeployError::Failed(format!("starting git: {e}")))?;
        let output = wait_timeout(child, GIT_SECONDS)?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let line = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("git failed")
            .trim();
        let line = self.redact(line);
        let message = format!("git {}: {line}", args[0]);
        Err(if remote {
            DeployError::SourceFetch(message)
        } else {
            DeployError::Failed(message)
        })
    }

    /// `text` without the URL's credentials.
    fn redact(&self, text: &str) -> String {
        let mut out = sources::redact_userinfo(text).into_owned();
        if let Some(info) = sources::userinfo(self.repo.url) {
            out = out.replace(info, "***");
        }
        out
    }
}

/// Waits for `child` at most `seconds` (killed after that).
fn wait_timeout(
    mut child: std::process::Child,
    seconds: u64,
) -> Result<std::process::Output, DeployError> {
    use std::io::Read;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let err_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(DeployError::SourceFetch(format!(
                    "git took longer than {seconds} s"
                )));
            }
            Err(e) => return Err(DeployError::Failed(format!("waiting for git: {e}"))),
        }
    };
    Ok(std::process::Output {
        status,
        stdout: out_thread.join().unwrap_or_default(),
        stderr: err_thread.join().unwrap_or_default(),
    })
}

/// Writes `content` to a new 0600 file (a key ends with a newline for OpenSSH).
fn write_private(path: &Path, content: &str) -> Result<(), DeployError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| DeployError::Failed(format!("writing the deploy key: {e}")))?;
    let mut content = content.to_string();
    if !content.ends_with('\n') {
        content.push('\n');
    }
    file.write_all(content.as_bytes())
        .map_err(|e| DeployError::Failed(format!("writing the deploy key: {e}")))
}

/// `%XX` decoded (URL userinfo).
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}
