//! Job output: every line goes, masked, to the job's log file, to live subscribers, and into
//! the tail stored on the job row at the end.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::events::Events;

/// Bytes of output kept for `jobs.output_tail`.
pub const TAIL_BYTES: usize = 64 * 1024;

/// The log file of a job.
pub fn job_log_path(log_dir: &Path, job_id: &str) -> PathBuf {
    log_dir.join("jobs").join(format!("{job_id}.log"))
}

/// A job's whole output: its log file, or the tail stored on the row when the file is gone.
pub async fn read_job_output(log_dir: &Path, job: &crate::store::JobRecord) -> String {
    match tokio::fs::read_to_string(job_log_path(log_dir, &job.id)).await {
        Ok(text) => text,
        Err(_) => job.output_tail.clone().unwrap_or_default(),
    }
}

/// Collects the output of one run; cheap to clone.
#[derive(Clone)]
pub struct OutputSink {
    inner: Arc<Mutex<Inner>>,
    events: Events,
    job_id: Arc<str>,
}

struct Inner {
    /// The log file, opened at the first line (a job without output creates no file).
    file: Option<std::fs::File>,
    path: PathBuf,
    opened: bool,
    tail: VecDeque<String>,
    tail_bytes: usize,
    secrets: Vec<String>,
    /// Lines in the log file so far.
    seq: u64,
}

impl OutputSink {
    /// Appends to `<log_dir>/jobs/<job_id>.log` (created if missing).
    pub fn open(log_dir: &Path, job_id: &str, events: Events) -> OutputSink {
        OutputSink {
            inner: Arc::new(Mutex::new(Inner {
                file: None,
                path: job_log_path(log_dir, job_id),
                opened: false,
                tail: VecDeque::new(),
                tail_bytes: 0,
                secrets: Vec::new(),
                seq: 0,
            })),
            events,
            job_id: job_id.into(),
        }
    }

    /// Values never to be shown: each occurrence becomes `***`. Empty and very short values are
    /// ignored (masking "1" would garble every line).
    pub fn mask(&self, secrets: impl IntoIterator<Item = String>) {
        let mut inner = self.inner.lock().expect("output lock");
        inner
            .secrets
            .extend(secrets.into_iter().filter(|s| s.len() >= 4));
        inner.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    }

    /// Records one line of output.
    pub fn line(&self, raw: &str) {
        let (seq, line) = {
            let mut inner = self.inner.lock().expect("output lock");
            let mut line = raw.trim_end_matches(['\n', '\r']).to_string();
            for s in &inner.secrets {
                if line.contains(s.as_str()) {
                    line = line.replace(s.as_str(), "***");
                }
            }
            if !inner.opened {
                inner.opened = true;
                // Lines of earlier attempts stay; numbering continues after them.
                inner.seq = std::fs::read(&inner.path)
                    .map(|b| b.iter().filter(|c| **c == b'\n').count() as u64)
                    .unwrap_or(0);
                let file = std::fs::create_dir_all(inner.path.parent().expect("has a parent"))
                    .and_then(|()| {
                        std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&inner.path)
                    });
                match file {
                    Ok(f) => inner.file = Some(f),
                    Err(e) => {
                        tracing::warn!(job = %self.job_id, error = %e, "job log file unavailable; output kept in memory only")
                    }
                }
            }
            if let Some(f) = inner.file.as_mut() {
                let _ = writeln!(f, "{line}");
            }
            inner.seq += 1;
            let seq = inner.seq;
            inner.tail_bytes += line.len() + 1;
            inner.tail.push_back(line.clone());
            while inner.tail_bytes > TAIL_BYTES && inner.tail.len() > 1 {
                let dropped = inner.tail.pop_front().expect("non-empty");
                inner.tail_bytes -= dropped.len() + 1;
            }
            (seq, line)
        };
        tracing::debug!(job = %self.job_id, "| {line}");
        self.events.job_output(&self.job_id, seq, line);
    }

    /// The last 64 KiB of output (whole lines).
    pub fn tail(&self) -> String {
        let inner = self.inner.lock().expect("output lock");
        let mut s = String::with_capacity(inner.tail_bytes);
        for l in &inner.tail {
            s.push_str(l);
            s.push('\n');
        }
        if s.len() > TAIL_BYTES {
            let mut cut = s.len() - TAIL_BYTES;
            while !s.is_char_boundary(cut) {
                cut += 1;
            }
            s.drain(..cut);
        }
        s
    }

    /// The last `max_bytes` of output, for an error message.
    pub fn tail_bytes(&self, max_bytes: usize) -> String {
        let t = self.tail();
        if t.len() <= max_bytes {
            return t;
        }
        let mut cut = t.len() - max_bytes;
        while !t.is_char_boundary(cut) {
            cut += 1;
        }
        t[cut..].to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secrets_and_keeps_a_bounded_tail() {
        let dir = tempfile::tempdir().unwrap();
        let sink = OutputSink::open(dir.path(), "job-1", Events::new());
        sink.mask(["s3cr3t-password".to_string(), "x".to_string()]);
        sink.line("connecting with s3cr3t-password now\n");
        let file = std::fs::read_to_string(job_log_path(dir.path(), "job-1")).unwrap();
        assert_eq!(file, "connecting with *** now\n");
        assert!(!sink.tail().contains("s3cr3t"));
        for i in 0..10_000 {
            sink.line(&format!("line {i} {}", "x".repeat(20)));
        }
        let tail = sink.tail();
        assert!(tail.len() <= TAIL_BYTES);
        assert!(tail.ends_with(&format!("line 9999 {}\n", "x".repeat(20))));
        assert!(sink.tail_bytes(100).len() <= 100);
    }
}
