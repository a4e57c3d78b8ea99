//! Where a backup's artifacts live: a node-local directory or an S3-compatible bucket
//! (backups-restore-promotion.md §1). Both are reached through the same three operations — write
//! one artifact as a stream, read one back as a stream, delete what was written — so the pipeline
//! above never knows which it talks to and never holds a whole artifact in memory or on disk.
//!
//! The S3 side uses `object_store` (streaming multipart upload, retries, SigV4) driven from the
//! helper's synchronous pipeline thread through a runtime handle (`Handle::block_on`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, RetryConfig, WriteMultipart};
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use super::BackupError;

/// Multipart part size: S3's minimum. With at most [`UPLOAD_CONCURRENCY`] parts in flight the
/// upload buffers stay near 15 MB whatever the artifact's size.
const PART_SIZE: usize = 5 * 1024 * 1024;
const UPLOAD_CONCURRENCY: usize = 2;

/// A backup's storage as the control plane sends it (credentials on stdin only).
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StorageSpec {
    /// A directory on the node: `/var/backups/pressluft/<site_id>/<environment_id>/<backup_id>/`.
    Local { path: PathBuf },
    /// An S3-compatible bucket; `prefix` is the backup's own key prefix
    /// (`<prefix>/<site_id>/<environment_id>/<backup_id>`). With an `endpoint`, requests use
    /// path-style addressing (S3-compatible servers), else AWS virtual-hosted style.
    S3 {
        bucket: String,
        prefix: String,
        #[serde(default)]
        endpoint: Option<String>,
        region: String,
        access_key_id: String,
        secret_access_key: String,
    },
}

impl std::fmt::Debug for StorageSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageSpec::Local { path } => write!(f, "local:{}", path.display()),
            StorageSpec::S3 { bucket, prefix, .. } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// An opened storage.
pub enum Storage {
    Local(PathBuf),
    S3 {
        store: Arc<AmazonS3>,
        prefix: ObjectPath,
        handle: Handle,
    },
}

impl Storage {
    /// Opens the storage. For S3 the bucket is probed once (a listing of the backup's prefix),
    /// so an unreachable endpoint fails before anything is written.
    pub fn open(spec: &StorageSpec, handle: &Handle) -> Result<Self, BackupError> {
        match spec {
            StorageSpec::Local { path } => {
                if !path.is_absolute() {
                    return Err(BackupError::Spec("storage.path must be absolute".into()));
                }
                Ok(Storage::Local(path.clone()))
            }
            StorageSpec::S3 {
                bucket,
                prefix,
                endpoint,
                region,
                access_key_id,
                secret_access_key,
            } => {
                // `AmazonS3Builder::new()`, not `from_env()`: nothing from the process
                // environment (AWS_CA_BUNDLE, AWS_PROFILE, …) changes what the helper talks to.
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_access_key_id(access_key_id)
                    .with_secret_access_key(secret_access_key)
                    .with_retry(RetryConfig {
                        max_retries: 3,
                        retry_timeout: Duration::from_secs(30),
                        ..RetryConfig::default()
                    })
                    .with_client_options(
                        ClientOptions::new()
                            .with_connect_timeout(Duration::from_secs(5))
                            .with_timeout(Duration::from_secs(120)),
                    );
                if let Some(endpoint) = endpoint {
                    builder = builder
                        .with_endpoint(endpoint)
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_virtual_hosted_style_request(false);
                }
                let store = builder
                    .build()
                    .map_err(|e| BackupError::Spec(format!("S3 storage: {e}")))?;
                let storage = Storage::S3 {
                    store: Arc::new(store),
                    prefix: ObjectPath::from(prefix.trim_matches('/')),
                    handle: handle.clone(),
                };
                storage.probe()?;
                Ok(storage)
            }
        }
    }

    fn probe(&self) -> Result<(), BackupError> {
        if let Storage::S3 {
            store,
            prefix,
            handle,
        } = self
        {
            handle
                .block_on(store.list_with_delimiter(Some(prefix)))
                .map_err(|e| classify(e, "listing the backup prefix"))?;
        }
        Ok(())
    }

    /// Where the artifacts are, for messages (no credentials).
    pub fn location(&self) -> String {
        match self {
            Storage::Local(dir) => dir.display().to_string(),
            Storage::S3 { prefix, .. } => format!("s3:{prefix}/"),
        }
    }

    /// A writer for the artifact `name`; nothing is visible under `name` before `commit`.
    pub fn writer(&self, name: &str) -> Result<Sink, BackupError> {
        match self {
            Storage::Local(dir) => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)
                    .map_err(|e| failed(e, "creating the backup directory"))?;
                let partial = dir.join(format!("{name}.partial"));
                let file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&partial)
                    .map_err(|e| failed(e, "creating the artifact file"))?;
                Ok(Sink::Local {
                    file,
                    partial,
                    done: dir.join(name),
                    committed: false,
                })
            }
            Storage::S3 {
                store,
                prefix,
                handle,
            } => {
                let path = prefix.child(name);
                let upload = handle
                    .block_on(store.put_multipart(&path))
                    .map_err(|e| classify(e, "starting the upload"))?;
                Ok(Sink::S3 {
                    upload: Some(WriteMultipart::new_with_chunk_size(upload, PART_SIZE)),
                    handle: handle.clone(),
                })
            }
        }
    }

    /// A reader of the stored bytes of `name`.
    pub fn reader(&self, name: &str) -> Result<Box<dyn Read + Send>, BackupError> {
        match self {
            Storage::Local(dir) => {
                let file = OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(dir.join(name))
                    .map_err(|e| failed(e, &format!("opening {name}")))?;
                Ok(Box::new(file))
            }
            Storage::S3 {
                store,
                prefix,
                handle,
            } => {
                let result = handle
                    .block_on(store.get(&prefix.child(name)))
                    .map_err(|e| classify(e, &format!("reading {name}")))?;
                Ok(Box::new(S3Reader {
                    stream: result.into_stream(),
                    chunk: Bytes::new(),
                    handle: handle.clone(),
                }))
            }
        }
    }

    /// Deletes the artifacts `names` (and their partial files), best effort: errors are
    /// returned as text for the caller's message, never raised.
    pub fn remove(&self, names: &[&str]) -> Vec<String> {
        let mut errors = Vec::new();
        match self {
            Storage::Local(dir) => {
                for name in names {
                    for file in [dir.join(name), dir.join(format!("{name}.partial"))] {
                        match fs::remove_file(&file) {
                            Ok(()) => {}
                            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                            Err(e) => errors.push(format!("{}: {e}", file.display())),
                        }
                    }
                }
                // Only when empty: the directory may hold someone else's files by mistake.
                let _ = fs::remove_dir(dir);
            }
            Storage::S3 {
                store,
                prefix,
                handle,
            } => {
                for name in names {
                    match handle.block_on(store.delete(&prefix.child(*name))) {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                        Err(e) => errors.push(format!("{name}: {e}")),
                    }
                }
            }
        }
        errors
    }
}

/// An artifact being written. Dropped without [`Sink::commit`] it leaves nothing behind: the
/// partial file is removed, the multipart upload aborted (so no object ever appears).
pub enum Sink {
    Local {
        file: File,
        partial: PathBuf,
        done: PathBuf,
        committed: bool,
    },
    S3 {
        upload: Option<WriteMultipart>,
        handle: Handle,
    },
}

impl Sink {
    /// Makes the artifact visible under its name (fsync + rename, or completes the upload).
    pub fn commit(mut self) -> Result<(), BackupError> {
        match &mut self {
            Sink::Local {
                file,
                partial,
                done,
                committed,
            } => {
                file.sync_all()
                    .map_err(|e| failed(e, "syncing the artifact"))?;
                fs::rename(&*partial, &*done).map_err(|e| failed(e, "renaming the artifact"))?;
                *committed = true;
                Ok(())
            }
            Sink::S3 { upload, handle } => {
                let upload = upload.take().expect("sink used after commit");
                handle
                    .block_on(upload.finish())
                    .map(|_| ())
                    .map_err(|e| classify(e, "completing the upload"))
            }
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        match self {
            Sink::Local {
                partial, committed, ..
            } => {
                if !*committed {
                    let _ = fs::remove_file(&*partial);
                }
            }
            Sink::S3 { upload, handle } => {
                if let Some(upload) = upload.take() {
                    let _ = handle.block_on(upload.abort());
                }
            }
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Local { file, .. } => file.write(buf),
            Sink::S3 { upload, handle } => {
                let upload = upload.as_mut().expect("sink used after commit");
                // Back-pressure: wait while too many parts are in flight.
                handle
                    .block_on(upload.wait_for_capacity(UPLOAD_CONCURRENCY))
                    .map_err(io::Error::other)?;
                upload.write(buf);
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Local { file, .. } => file.flush(),
            Sink::S3 { .. } => Ok(()),
        }
    }
}

/// The body of an S3 GET as a blocking reader, one network chunk at a time.
struct S3Reader {
    stream: futures_util::stream::BoxStream<'static, object_store::Result<Bytes>>,
    chunk: Bytes,
    handle: Handle,
}

impl Read for S3Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.handle.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(chunk)) => self.chunk = chunk,
                Some(Err(e)) => return Err(io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

fn failed(e: io::Error, what: &str) -> BackupError {
    BackupError::Failed(format!("{what}: {e}"))
}

/// Connection failures and timeouts are "unreachable" (retryable); the rest is a failure.
pub fn classify(e: object_store::Error, what: &str) -> BackupError {
    let message = format!("{what}: {e}");
    if is_unreachable(&e) {
        BackupError::Unreachable(message)
    } else {
        BackupError::Failed(message)
    }
}

/// Whether an error (chain) is a connection failure or timeout.
pub fn is_unreachable(e: &(dyn std::error::Error + 'static)) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(http) = err.downcast_ref::<HttpError>() {
            if matches!(
                http.kind(),
                HttpErrorKind::Connect | HttpErrorKind::Timeout | HttpErrorKind::Interrupted
            ) {
                return true;
            }
        }
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if matches!(
                io.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::HostUnreachable
                    | io::ErrorKind::NetworkUnreachable
            ) {
                return true;
            }
            if let Some(inner) = io.get_ref() {
                if is_unreachable(inner) {
                    return true;
                }
            }
        }
        current = err.source();
    }
    false
}
