//! `backup-create`: the database dump and/or the files archive, then the manifest, each streamed
//! through [`artifact::Encoding`] into the storage; the manifest is written last, so a backup
//! without one is incomplete by construction. On any failure everything this run wrote is
//! removed (best effort) before the error is returned.

use std::io::{self, Read, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use super::artifact::{manifest_encoding, ArtifactInfo, Encoding};
use super::files_archive::{write_archive, ArchiveStats};
use super::storage::{Storage, StorageSpec};
use super::{BackupError, DataKey, DB_ARTIFACT, FILES_ARTIFACT, MANIFEST};
use crate::node_helper::database::{is_identifier, mysqldump};
use crate::node_helper::process::{millis_since, wait_child};

/// The dump options of backups-restore-promotion.md §1.
pub const DUMP_ARGS: &[&str] = &[
    "--single-transaction",
    "--quick",
    "--routines",
    "--triggers",
    "--events",
    "--default-character-set=utf8mb4",
    "--hex-blob",
];

/// Format tag of the manifest.
pub const MANIFEST_FORMAT: &str = "pressluft-backup/1";

/// What a backup holds: the control plane's own enum (`db`, `files`, `full`).
pub use crate::domain::BackupScope as Scope;

/// What identifies a backup and what restore needs to know: in the spec and in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupMeta {
    pub backup_id: String,
    pub environment_id: String,
    pub scope: Scope,
    /// RFC 3339, set by the control plane when the row was inserted.
    pub created_at: String,
    pub canonical_url: String,
    pub table_prefix: String,
    pub wordpress_version: String,
}

/// The stdin document of `backup-create` (built by the `backup_create` job kind).
#[derive(Debug, Serialize, Deserialize)]
pub struct CreateSpec {
    /// [`crate::node_helper::spec::CONTRACT_VERSION`] (checked before the rest is read).
    pub contract_version: u32,
    #[serde(flatten)]
    pub backup: BackupMeta,
    /// The environment's root (`/srv/www/<site>/<env>`); links never lead out of it.
    pub env_root: PathBuf,
    /// The current release directory (absolute, below `env_root`).
    pub release: PathBuf,
    /// The environment's database (dumped as root over the socket).
    pub database: String,
    pub storage: StorageSpec,
    pub data_key: DataKey,
    /// The environment's Linux user and where node_provision installed the PHP bridge: needed
    /// only when `table_prefix` is empty, to read it on the node ([`super::meta`]).
    #[serde(default)]
    pub env_user: String,
    #[serde(default)]
    pub php_dir: String,
    /// A pre-operation backup (the restore's): its artifacts at zstd level 1, cheaper CPU
    /// beside the operation it guards, a little larger.
    #[serde(default)]
    pub fast: bool,
}

/// `manifest.json` (stored age-encrypted like every artifact).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    #[serde(flatten)]
    pub backup: BackupMeta,
    pub artifacts: Vec<ArtifactInfo>,
}

/// The stdout line of `backup-create`.
#[derive(Debug, Serialize)]
pub struct CreateResult {
    pub backup_id: String,
    /// `sha256:` + SHA-256 of the stored `manifest.json`.
    pub checksum: String,
    /// Stored bytes of all artifacts, the manifest included.
    pub size_bytes: u64,
    /// Every stored object, the manifest last.
    pub artifacts: Vec<ArtifactInfo>,
    pub storage: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<ArchiveStats>,
    /// How long each artifact took (they run side by side), in milliseconds.
    pub durations_ms: ArtifactDurations,
}

/// Wall time of each artifact of one backup (0 when the scope has none).
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct ArtifactDurations {
    pub db: u64,
    pub files: u64,
}

fn validate(spec: &CreateSpec) -> Result<(), BackupError> {
    let invalid = |m: &str| Err(BackupError::Spec(m.to_string()));
    if spec.backup.backup_id.is_empty() || spec.backup.environment_id.is_empty() {
        return invalid("backup_id and environment_id are required");
    }
    if spec.backup.scope.has_db() && !is_identifier(&spec.database) {
        return invalid("database is not a valid database name");
    }
    if spec.backup.scope.has_files() {
        if !spec.env_root.is_absolute() || !spec.release.is_absolute() {
            return invalid("env_root and release must be absolute paths");
        }
        if !spec.release.starts_with(&spec.env_root) {
            return invalid("release must be inside env_root");
        }
    }
    Ok(())
}

/// Runs the backup; see the module doc.
pub fn create(mut spec: CreateSpec, handle: &Handle) -> Result<CreateResult, BackupError> {
    validate(&spec)?;
    super::meta::fill(&mut spec)?;
    let identity = spec.data_key.identity()?;
    let recipient = identity.to_public();
    let storage = Storage::open(&spec.storage, handle)?;
    match write_all(&spec, &storage, &recipient) {
        Ok(result) => Ok(result),
        Err(e) => {
            let leftovers = storage.remove(&[DB_ARTIFACT, FILES_ARTIFACT, MANIFEST]);
            Err(if leftovers.is_empty() {
                e
            } else {
                with_note(e, &format!("; not removed: {}", leftovers.join(", ")))
            })
        }
    }
}

fn with_note(e: BackupError, note: &str) -> BackupError {
    match e {
        BackupError::Spec(m) => BackupError::Spec(m + note),
        BackupError::Unreachable(m) => BackupError::Unreachable(m + note),
        BackupError::Mismatch(m) => BackupError::Mismatch(m + note),
        BackupError::Failed(m) => BackupError::Failed(m + note),
        BackupError::Precondition(m) => BackupError::Precondition(m + note),
    }
}

fn write_all(
    spec: &CreateSpec,
    storage: &Storage,
    recipient: &age::x25519::Recipient,
) -> Result<CreateResult, BackupError> {
    let level = if spec.fast {
        super::artifact::ZSTD_FAST_LEVEL
    } else {
        super::artifact::ZSTD_LEVEL
    };
    // The two artifacts are independent: a `full` backup streams them side by side (mysqldump
    // is one thread; the files archive keeps the other cores busy), each with its own bounded
    // pipeline, so the backup takes about as long as the longer of the two.
    let archive_files = || -> Result<(ArtifactInfo, ArchiveStats), BackupError> {
        let encoding = Encoding::new(storage.writer(FILES_ARTIFACT)?, recipient, true, level)?;
        let (encoding, stats) =
            write_archive(&spec.env_root, &spec.release, encoding).map_err(from_anyhow)?;
        Ok((encoding.finish(FILES_ARTIFACT)?, stats))
    };
    let (db, files, files_ms) = std::thread::scope(|scope| {
        let db = spec.backup.scope.has_db().then(|| {
            scope.spawn(|| {
                let started = std::time::Instant::now();
                (
                    dump_database(&spec.database, storage, recipient, level),
                    millis_since(started),
                )
            })
        });
        let started = std::time::Instant::now();
        let files = spec.backup.scope.has_files().then(archive_files);
        let files_ms = files.as_ref().map_or(0, |_| millis_since(started));
        let db = db.map(|t| {
            t.join().unwrap_or_else(|_| {
                (
                    Err(BackupError::Failed("the database dump panicked".into())),
                    0,
                )
            })
        });
        (db, files, files_ms)
    });
    let (db, db_ms) = match db {
        Some((r, ms)) => (Some(r), ms),
        None => (None, 0),
    };
    let mut artifacts = Vec::new();
    if let Some(db) = db {
        artifacts.push(db?);
    }
    let files = match files {
        Some(result) => {
            let (info, stats) = result?;
            artifacts.push(info);
            Some(stats)
        }
        None => None,
    };
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        backup: spec.backup.clone(),
        artifacts: artifacts.clone(),
    };
    let json = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| BackupError::Failed(format!("manifest: {e}")))?;
    let mut encoding = manifest_encoding(storage.writer(MANIFEST)?, recipient)?;
    encoding
        .write_all(&json)
        .map_err(|e| BackupError::from_io(e, MANIFEST))?;
    let stored_manifest = encoding.finish(MANIFEST)?;
    let checksum = format!("sha256:{}", stored_manifest.sha256);
    artifacts.push(stored_manifest);
    Ok(CreateResult {
        backup_id: spec.backup.backup_id.clone(),
        checksum,
        size_bytes: artifacts.iter().map(|a| a.size_bytes).sum(),
        artifacts,
        storage: storage.location(),
        files,
        durations_ms: ArtifactDurations {
            db: db_ms,
            files: files_ms,
        },
    })
}

/// `mysqldump … | encoding`; the dump's stderr becomes the error message when it fails.
fn dump_database(
    database: &str,
    storage: &Storage,
    recipient: &age::x25519::Recipient,
    level: i32,
) -> Result<ArtifactInfo, BackupError> {
    let mut encoding = Encoding::new(storage.writer(DB_ARTIFACT)?, recipient, true, level)?;
    let mut child =
        mysqldump(DUMP_ARGS, &[], database).map_err(|e| BackupError::Failed(format!("{e:#}")))?;
    let mut stdout = child.stdout.take().expect("piped stdout");
    if let Err(e) = copy(&mut stdout, &mut encoding) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(BackupError::from_io(e, DB_ARTIFACT));
    }
    wait_child(child, "mysqldump").map_err(|e| BackupError::Failed(format!("{e:#}")))?;
    encoding.finish(DB_ARTIFACT)
}

/// `io::copy` with a 256 KiB buffer (fewer, larger writes into zstd and the upload).
fn copy(reader: &mut impl Read, writer: &mut impl Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        writer.write_all(&buf[..n])?;
        total += n as u64;
    }
}

fn from_anyhow(e: anyhow::Error) -> BackupError {
    let unreachable = e.chain().any(super::storage::is_unreachable);
    if unreachable {
        BackupError::Unreachable(format!("{FILES_ARTIFACT}: {e:#}"))
    } else {
        BackupError::Failed(format!("{FILES_ARTIFACT}: {e:#}"))
    }
}
