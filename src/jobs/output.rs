//! Job output: every line goes, masked, to the job's log file, to live subscribers, and into
//! the tail stored on the job row at the end.

use std::collections::VecDeque;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::events::Events;

/// Bytes of output kept for `jobs.output_tail`.
pub const TAIL_BYTES: usize = 64 * 1024;

/// The cap of a job's log file (all attempts together). Lines past it are dropped from the
/// file after one truncation note; they still reach live subscribers and the stored tail.
pub const LOG_CAP_BYTES: u64 = 10 * 1024 * 1024;

/// The note that ends a log file at its cap.
pub const TRUNCATION_NOTE: &str =
    "[pressluft] output truncated: the job log reached its 10 MiB cap; \
later lines are not stored here (the job's last 64 KiB of output are kept as its output tail)";

/// What readers of a log file take at most: the cap, the note and a margin (a file written
/// before the cap existed is cut there too).
pub const LOG_READ_LIMIT: u64 = LOG_CAP_BYTES + 4096;

/// The log file of a job.
pub fn job_log_path(log_dir: &Path, job_id: &str) -> PathBuf {
    log_dir.join("jobs").join(format!("{job_id}.log"))
}

/// A job's whole output: its log file (at most [`LOG_READ_LIMIT`] bytes), or the tail stored
/// on the row when the file is gone.
pub async fn read_job_output(log_dir: &Path, job: &crate::store::JobRecord) -> String {
    match read_log_file(&job_log_path(log_dir, &job.id)).await {
        Ok(text) => text,
        Err(_) => job.output_tail.clone().unwrap_or_default(),
    }
}

/// A log file's text, at most [`LOG_READ_LIMIT`] bytes of it.
pub async fn read_log_file(path: &Path) -> std::io::Result<String> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await?;
    let mut bytes = Vec::new();
    file.take(LOG_READ_LIMIT).read_to_end(&mut bytes).await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A job's output as a stream of chunks (for `GET /api/jobs/{id}/output`): its log file read
/// piece by piece (at most [`LOG_READ_LIMIT`] bytes, never whole in memory), or the tail
/// stored on the row when the file is gone.
pub async fn stream_job_output(
    log_dir: &Path,
    job: &crate::store::JobRecord,
) -> futures_util::stream::BoxStream<'static, std::io::Result<Vec<u8>>> {
    use futures_util::StreamExt;
    use tokio::io::AsyncReadExt;
    match tokio::fs::File::open(job_log_path(log_dir, &job.id)).await {
        Ok(file) => futures_util::stream::unfold(file.take(LOG_READ_LIMIT), |mut r| async move {
            let mut buf = vec![0u8; 64 * 1024];
            match r.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(buf), r))
                }
                Err(e) => Some((Err(e), r)),
            }
        })
        .boxed(),
        Err(_) => {
            let tail = job.output_tail.clone().unwrap_or_default().into_bytes();
            futures_util::stream::iter([Ok(tail)]).boxed()
        }
    }
}

/// The forms in which a secret may appear in output besides itself: base64 (standard and
/// URL-safe, with and without padding), JSON-escaped (ASCII-only too, as Python's `json.dumps`
/// writes it), percent-encoded (`%20` and `+` for spaces) and shell-quoted (`'…'"'"'…'`).
pub fn encoded_forms(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let mut forms = vec![
        STANDARD.encode(secret),
        STANDARD_NO_PAD.encode(secret),
        URL_SAFE.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
    ];
    let json = serde_json::to_string(secret).expect("a string serializes");
    forms.push(json[1..json.len() - 1].to_string());
    let mut ascii = String::new();
    for c in json[1..json.len() - 1].chars() {
        if c.is_ascii() {
            ascii.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                ascii.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    forms.push(ascii);
    let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    forms.push(form.replace('+', "%20"));
    forms.push(form);
    forms.push(secret.replace('\'', "'\"'\"'"));
    forms.retain(|f| f != secret);
    forms.sort();
    forms.dedup();
    forms
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
    /// Bytes in the log file so far, and whether it reached [`LOG_CAP_BYTES`].
    file_bytes: u64,
    truncated: bool,
}

/// Masks every secret form (longest first) and redacts URL credentials.
fn redact_with(secrets: &[String], text: &str) -> String {
    let mut line = text.to_string();
    for s in secrets {
        if line.contains(s.as_str()) {
            line = line.replace(s.as_str(), "***");
        }
    }
    crate::sources::redact_userinfo(&line).into_owned()
}

/// Lines and bytes of an existing log file, read in chunks.
fn count_lines(path: &Path) -> (u64, u64) {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(path) else {
        return (0, 0);
    };
    let (mut lines, mut bytes) = (0u64, 0u64);
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        bytes += n as u64;
        lines += buf[..n].iter().filter(|c| **c == b'\n').count() as u64;
    }
    (lines, bytes)
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
                file_bytes: 0,
                truncated: false,
            })),
            events,
            job_id: job_id.into(),
        }
    }

    /// Values never to be shown: each occurrence, and each of its [`encoded_forms`], becomes
    /// `***`. Empty and very short values are ignored (masking "1" would garble every line).
    pub fn mask(&self, secrets: impl IntoIterator<Item = String>) {
        let mut inner = self.inner.lock().expect("output lock");
        for secret in secrets.into_iter().filter(|s| s.len() >= 4) {
            let forms = encoded_forms(&secret);
            inner.secrets.push(secret);
            inner
                .secrets
                .extend(forms.into_iter().filter(|f| f.len() >= 4));
        }
        inner.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        inner.secrets.dedup();
    }

    /// `text` as output shows it: masked secrets, URL credentials as `***`. For messages that
    /// reach users without passing through [`OutputSink::line`] (a playbook's `error_message`).
    pub fn redact(&self, text: &str) -> String {
        let inner = self.inner.lock().expect("output lock");
        redact_with(&inner.secrets, text)
    }

    /// Records one line of output.
    pub fn line(&self, raw: &str) {
        let (seq, line) = {
            let mut inner = self.inner.lock().expect("output lock");
            let line = redact_with(&inner.secrets, raw.trim_end_matches(['\n', '\r']));
            if !inner.opened {
                inner.opened = true;
                // Lines of earlier attempts stay; numbering continues after them.
                let (lines, bytes) = count_lines(&inner.path);
                inner.seq = lines;
                inner.file_bytes = bytes;
                inner.truncated = bytes >= LOG_CAP_BYTES;
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
            let wanted = line.len() as u64 + 1;
            if !inner.truncated && inner.file_bytes + wanted > LOG_CAP_BYTES {
                inner.truncated = true;
                if let Some(f) = inner.file.as_mut() {
                    let _ = writeln!(f, "{TRUNCATION_NOTE}");
                }
                inner.file_bytes += TRUNCATION_NOTE.len() as u64 + 1;
                inner.seq += 1;
                tracing::warn!(job = %self.job_id, "job log reached its cap; later lines are not stored in it");
            }
            // Past the cap, lines keep their numbers (live subscribers) but the file stops.
            if !inner.truncated {
                if let Some(f) = inner.file.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
                inner.file_bytes += wanted;
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

    #[test]
    fn masks_the_encoded_forms_of_secrets() {
        use base64::Engine as _;
        let dir = tempfile::tempdir().unwrap();
        let sink = OutputSink::open(dir.path(), "job-2", Events::new());
        let secret = "p@ss w\"o'rd+/é\\x";
        sink.mask([secret.to_string()]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        let json = serde_json::to_string(secret).unwrap();
        let json_inner = &json[1..json.len() - 1];
        let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let lines = [
            format!("raw {secret} end"),
            format!("SQL FROM_BASE64('{b64}') end"),
            format!("url-safe {b64url} end"),
            format!("stdin: {{\"password\": {json}}} end"),
            "ascii json p@ss w\\\"o'rd+/\\u00e9\\\\x end".to_string(),
            format!("query ?p={form} end"),
            format!("query ?p={} end", form.replace('+', "%20")),
            format!("shell '{}' end", secret.replace('\'', "'\"'\"'")),
        ];
        for l in &lines {
            sink.line(l);
        }
        let file = std::fs::read_to_string(job_log_path(dir.path(), "job-2")).unwrap();
        assert!(!file.contains(json_inner), "{file}");
        assert!(!file.contains(&b64) && !file.contains(&b64url), "{file}");
        assert!(!file.contains("p@ss"), "{file}");
        assert_eq!(file.lines().count(), lines.len());
        for l in file.lines() {
            assert!(l.contains("***") && l.ends_with(" end"), "{l}");
        }
        // A playbook's error message gets the same treatment.
        assert_eq!(
            sink.redact(&format!("failed: {b64} from https://u:tok@h.test/x")),
            "failed: *** from https://***@h.test/x"
        );
    }

    #[test]
    fn url_credentials_in_lines_are_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let sink = OutputSink::open(dir.path(), "job-3", Events::new());
        sink.line("fatal: Request failed for https://deploy:s3cr3t@artifacts.test/wp.tgz: 404");
        let file = std::fs::read_to_string(job_log_path(dir.path(), "job-3")).unwrap();
        assert_eq!(
            file,
            "fatal: Request failed for https://***@artifacts.test/wp.tgz: 404\n"
        );
        assert!(!sink.tail().contains("s3cr3t"));
    }

    #[test]
    fn the_log_file_stops_at_its_cap_with_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let path = job_log_path(dir.path(), "job-4");
        // An earlier attempt left a log just under the cap.
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let line = "y".repeat(1023);
        let earlier = LOG_CAP_BYTES as usize / 1024 - 2;
        std::fs::write(&path, format!("{line}\n").repeat(earlier)).unwrap();
        let sink = OutputSink::open(dir.path(), "job-4", Events::new());
        for i in 0..10 {
            sink.line(&format!("attempt 2 line {i} {}", "z".repeat(1000)));
        }
        sink.line("the last line");
        let len = std::fs::metadata(&path).unwrap().len();
        assert!(
            len <= LOG_CAP_BYTES + TRUNCATION_NOTE.len() as u64 + 1,
            "{len}"
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.ends_with(&format!("{TRUNCATION_NOTE}\n")),
            "note at the end"
        );
        assert_eq!(text.matches(TRUNCATION_NOTE).count(), 1);
        assert!(
            text.contains("attempt 2 line 0 "),
            "lines up to the cap are kept"
        );
        // The tail still has the end of the output.
        assert!(sink.tail().ends_with("the last line\n"));
        // A later attempt adds nothing (and no second note).
        let again = OutputSink::open(dir.path(), "job-4", Events::new());
        again.line("attempt 3");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    }
}
