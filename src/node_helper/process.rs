//! Running programs on the node: every external program gets its arguments as a vector (no
//! shell, no interpolation), and a failure becomes an error carrying its stderr. Also the
//! small timing and thread helpers the commands share.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};

use super::nofollow;

/// Programs run as an environment's user get a clean environment with this `PATH`.
pub const CLEAN_PATH: &str = "PATH=/usr/local/bin:/usr/bin:/bin";

/// Runs `program` with `args` (working directory `/`, no stdin) and returns its stdout.
pub fn run_cmd(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed ({}): {}",
            args.first().copied().unwrap_or_default(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `runuser -u <user> [-g <group>] -- env -i PATH=…`: the start of a command run as `user`
/// with a clean environment (the caller appends the program and its arguments).
pub fn as_user_command(user: &str, group: Option<&str>) -> Command {
    let mut command = Command::new("runuser");
    command.args(["-u", user]);
    if let Some(group) = group {
        command.args(["-g", group]);
    }
    command.args(["--", "env", "-i", CLEAN_PATH]);
    command
}

/// Runs the shell `script` (a constant: no data in it) as `user` with `dir` as its working
/// directory and `input` on stdin.
pub fn as_user(user: &str, dir: &OwnedFd, script: &str, input: &[u8]) -> anyhow::Result<()> {
    let mut command = as_user_command(user, None);
    command.args(["sh", "-c", script]);
    let mut child = spawn_in(command, dir, Stdio::piped(), Stdio::null(), "runuser")?;
    let mut stdin = child.stdin.take().context("stdin")?;
    std::io::Write::write_all(&mut stdin, input)?;
    drop(stdin);
    wait_child(child, "the release script")
}

/// Starts `command` in the opened directory `dir` with the given stdin and stdout (stderr
/// piped, for [`wait_child`]).
pub fn spawn_in(
    mut command: Command,
    dir: &OwnedFd,
    stdin: Stdio,
    stdout: Stdio,
    what: &str,
) -> anyhow::Result<Child> {
    command
        .current_dir(nofollow::fd_path(dir))
        .stdin(stdin)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {what}"))
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

/// A scoped thread's result, a panic turned into an error.
pub fn join<T>(handle: std::thread::ScopedJoinHandle<'_, anyhow::Result<T>>) -> anyhow::Result<T> {
    handle
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("a worker thread panicked")))
}

/// Lowers the calling thread's CPU priority to nice 10. Threads it starts afterwards (zstd's
/// workers) and programs it runs (mysqldump) inherit it: work beside a critical path (the
/// pre-restore backup beside the restore's import) gets the cores the critical path leaves.
/// Best effort: an error leaves the priority as it was.
pub fn lower_this_threads_priority() {
    // SAFETY: gettid and setpriority take no pointers; on Linux, PRIO_PROCESS with a thread id
    // changes only that thread.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

/// Step durations for the job log.
#[derive(Debug)]
pub struct Steps(Vec<String>, std::time::Instant);

impl Default for Steps {
    fn default() -> Self {
        Steps(Vec::new(), std::time::Instant::now())
    }
}

impl Steps {
    /// Records `what` with the time since the previous step.
    pub fn done(&mut self, what: &str) {
        let now = std::time::Instant::now();
        self.0
            .push(format!("{what}: {:.1} s", (now - self.1).as_secs_f64()));
        self.1 = now;
    }

    /// The recorded steps.
    pub fn into_lines(self) -> Vec<String> {
        self.0
    }
}

/// Milliseconds since `start` (what the commands' `*_ms` timings report).
pub fn millis_since(start: std::time::Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Runs `f` and returns its value with its duration in seconds.
pub fn timed<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(T, f64)> {
    let start = std::time::Instant::now();
    f().map(|v| (v, start.elapsed().as_secs_f64()))
}
