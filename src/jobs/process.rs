//! Running a subprocess for a job: its own process group, killed with its parent, output merged
//! line by line into the job's [`OutputSink`], stopped on request (SIGTERM to the group, SIGKILL
//! after a grace period). Only the job engine spawns processes.

use std::io::{BufRead, BufReader};
use std::process::ExitStatus;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::watch;

use super::output::OutputSink;
use super::runner::StopReason;

/// Time between SIGTERM and SIGKILL when a run is stopped.
pub const KILL_GRACE: Duration = Duration::from_secs(10);

/// The longest line kept whole; longer ones are split.
const MAX_LINE_BYTES: u64 = 64 * 1024;

/// How a subprocess ended.
#[derive(Debug)]
pub enum ProcessEnd {
    Exited(ExitStatus),
    /// Stopped on request; it was terminated (or killed after the grace period).
    Stopped(StopReason),
}

/// Spawns `cmd` and feeds its combined stdout/stderr to `output` until it exits or `stop` asks.
pub async fn run(
    mut cmd: Command,
    output: &OutputSink,
    stop: &mut watch::Receiver<Option<StopReason>>,
    grace: Duration,
) -> std::io::Result<ProcessEnd> {
    let (reader, writer) = std::io::pipe()?;
    cmd.stdin(std::process::Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer)
        .process_group(0)
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe; the closure touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    // The parent's copies of the write end must go, or the reader never sees EOF.
    drop(cmd);
    let pgid = child.id().map(|p| p as i32);
    let sink = output.clone();
    let reader_done = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut r = BufReader::new(reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            // A line longer than MAX_LINE_BYTES arrives in pieces (memory stays bounded).
            match (&mut r).take(MAX_LINE_BYTES).read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => sink.line(&String::from_utf8_lossy(&buf)),
            }
        }
    });

    let stopped = loop {
        if let Some(reason) = *stop.borrow_and_update() {
            break Some(reason);
        }
        tokio::select! {
            status = child.wait() => {
                let status = status?;
                finish_reader(reader_done).await;
                return Ok(ProcessEnd::Exited(status));
            }
            changed = stop.changed() => {
                if changed.is_err() {
                    // The worker went away; the process dies with us (kill_on_drop).
                    std::future::pending::<()>().await;
                }
            }
        }
    };
    let reason = stopped.expect("loop breaks only with a reason");
    signal_group(pgid, libc::SIGTERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        signal_group(pgid, libc::SIGKILL);
        let _ = child.wait().await;
    }
    finish_reader(reader_done).await;
    Ok(ProcessEnd::Stopped(reason))
}

/// Waits briefly for the output reader: a daemonized grandchild (an SSH control master) may
/// keep the pipe open long after the process itself exited.
async fn finish_reader(reader: tokio::task::JoinHandle<()>) {
    let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
}

fn signal_group(pgid: Option<i32>, signal: i32) {
    if let Some(pgid) = pgid {
        // SAFETY: plain syscall; a stale group id at worst yields ESRCH.
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Events;

    #[tokio::test]
    async fn merges_output_and_reports_exit() {
        let dir = tempfile::tempdir().unwrap();
        let sink = OutputSink::open(dir.path(), "j", Events::new());
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2; exit 3"]);
        let (_tx, mut rx) = watch::channel(None);
        let end = run(cmd, &sink, &mut rx, KILL_GRACE).await.unwrap();
        match end {
            ProcessEnd::Exited(s) => assert_eq!(s.code(), Some(3)),
            other => panic!("{other:?}"),
        }
        let tail = sink.tail();
        assert!(tail.contains("out\n") && tail.contains("err\n"), "{tail}");
    }

    #[tokio::test]
    async fn stop_terminates_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let sink = OutputSink::open(dir.path(), "j", Events::new());
        let mut cmd = Command::new("sh");
        // A child of the child: must die too.
        cmd.args(["-c", "sleep 30 & echo started; wait"]);
        let (tx, mut rx) = watch::channel(None);
        let started = std::time::Instant::now();
        let task = tokio::spawn(async move { run(cmd, &sink, &mut rx, KILL_GRACE).await });
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.send(Some(StopReason::Cancel)).unwrap();
        let end = task.await.unwrap().unwrap();
        assert!(
            matches!(end, ProcessEnd::Stopped(StopReason::Cancel)),
            "{end:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "SIGTERM suffices for sleep"
        );
    }
}
