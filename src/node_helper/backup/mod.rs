//! `pressluft node backup-create | backup-verify | backup-read | backup-delete`: the node side of backups
//! (issue 11, backups-restore-promotion.md §1). Everything arrives as one JSON document on stdin
//! (storage credentials and the backup's data key are secrets: never in argv), one JSON line goes
//! to stdout, and a failure is one line on stderr starting with its error code, with an exit
//! code the playbook maps (docs/site-lifecycle-contract.md, "Backups: node helper").
//!
//! Artifacts are streamed dump/tar → zstd → age (the backup's own X25519 key) → SHA-256 → storage
//! with bounded memory; the storage is a node-local directory or an S3-compatible bucket.

use std::io::Read;

use age::secrecy::ExposeSecret;
use age::x25519;
use serde::de::DeserializeOwned;

pub mod artifact;
pub mod create;
pub mod delete;
pub mod files_archive;
pub mod meta;
pub mod restore;
pub mod storage;
pub mod verify;

/// Exit code: the input was invalid (nothing written, not retryable).
pub const EXIT_INVALID: i32 = 3;
/// Exit code: the storage could not be reached (what was written is removed; retryable).
pub const EXIT_UNREACHABLE: i32 = 4;
/// Exit code: a stored artifact or the manifest does not match its recorded hash.
pub const EXIT_MISMATCH: i32 = 5;
/// Exit code of every other failure.
pub const EXIT_FAILED: i32 = 1;

/// The artifact names of a backup (backups-restore-promotion.md §1).
pub const DB_ARTIFACT: &str = "db.sql.zst";
pub const FILES_ARTIFACT: &str = "files.tar.zst";
pub const MANIFEST: &str = "manifest.json";

/// Why a backup command failed; the `Display` starts with the code the playbook reports.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("BACKUP_SPEC_INVALID: {0}")]
    Spec(String),
    /// The environment cannot be backed up as it is (e.g. its `wp-config.php` cannot be read):
    /// nothing written, and a retry would find the same.
    #[error("PRECONDITION_FAILED: {0}")]
    Precondition(String),
    #[error("BACKUP_STORAGE_UNREACHABLE: {0}")]
    Unreachable(String),
    #[error("BACKUP_CHECKSUM_MISMATCH: {0}")]
    Mismatch(String),
    #[error("BACKUP_FAILED: {0}")]
    Failed(String),
}

impl BackupError {
    pub fn exit_code(&self) -> i32 {
        match self {
            BackupError::Spec(_) | BackupError::Precondition(_) => EXIT_INVALID,
            BackupError::Unreachable(_) => EXIT_UNREACHABLE,
            BackupError::Mismatch(_) => EXIT_MISMATCH,
            BackupError::Failed(_) => EXIT_FAILED,
        }
    }

    /// An I/O error of a pipeline stage; an upload's connection failure stays "unreachable".
    pub fn from_io(e: std::io::Error, what: &str) -> Self {
        if storage::is_unreachable(&e) {
            BackupError::Unreachable(format!("{what}: {e}"))
        } else {
            BackupError::Failed(format!("{what}: {e}"))
        }
    }
}

/// The backup's data key: an age X25519 identity (`AGE-SECRET-KEY-1…`), generated per backup
/// by the control plane and kept in its secrets store.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct DataKey(String);

impl From<String> for DataKey {
    fn from(key: String) -> Self {
        DataKey(key)
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl DataKey {
    pub fn identity(&self) -> Result<x25519::Identity, BackupError> {
        self.0
            .trim()
            .parse::<x25519::Identity>()
            .map_err(|_| BackupError::Spec("data_key is not an age X25519 identity".into()))
    }
}

/// A fresh data key (for the control plane and tests).
pub fn generate_data_key() -> String {
    x25519::Identity::generate()
        .to_string()
        .expose_secret()
        .to_string()
}

pub(crate) fn read_spec<T: DeserializeOwned>() -> Result<T, BackupError> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| BackupError::Spec(format!("reading stdin: {e}")))?;
    // The contract version first, so a spec from another control plane version gets the
    // clear refusal whatever its fields (node_helper::spec).
    let version = serde_json::from_str::<serde_json::Value>(&input)
        .ok()
        .and_then(|v| v.get("contract_version").and_then(|v| v.as_u64()));
    if version != Some(u64::from(crate::node_helper::spec::CONTRACT_VERSION)) {
        return Err(BackupError::Spec(
            crate::node_helper::spec::version_refusal(version),
        ));
    }
    // The message names the field, never echoes the input (it holds secrets).
    let de = &mut serde_json::Deserializer::from_str(&input);
    serde_path_to_error::deserialize(de).map_err(|e| {
        BackupError::Spec(format!(
            "invalid input at {}: {}",
            e.path(),
            e.inner().classify_name()
        ))
    })
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "not JSON",
            serde_json::error::Category::Data => "missing or mistyped field",
            serde_json::error::Category::Eof => "truncated JSON",
        }
    }
}

/// Runs `work` on its own thread with its own small runtime entered (the S3 client is async and
/// the multipart upload spawns its part uploads; the pipeline is blocking and drives it through
/// the handle).
pub fn on_runtime<R: Send + 'static>(
    work: impl FnOnce(&tokio::runtime::Handle) -> Result<R, BackupError> + Send + 'static,
) -> anyhow::Result<Result<R, BackupError>> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| BackupError::Failed(format!("runtime: {e}")))?;
        let result = {
            let _context = runtime.enter();
            work(runtime.handle())
        };
        runtime.shutdown_timeout(std::time::Duration::from_secs(5));
        result
    })
    .join()
    .map_err(|_| anyhow::anyhow!("backup thread panicked"))
}

/// Prints the JSON result, or the error line and exits with its code.
pub(crate) fn finish<S: serde::Serialize>(outcome: Result<S, BackupError>) -> anyhow::Result<()> {
    match outcome {
        Ok(result) => {
            println!("{}", serde_json::to_string(&result)?);
            Ok(())
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(e.exit_code());
        }
    }
}

/// `pressluft node backup-create`.
pub fn run_create() -> anyhow::Result<()> {
    finish(on_runtime(|handle| create::create(read_spec()?, handle))?)
}

/// `pressluft node backup-verify`.
pub fn run_verify() -> anyhow::Result<()> {
    finish(on_runtime(|handle| verify::verify(read_spec()?, handle))?)
}

/// `pressluft node backup-read`: one artifact's plaintext to stdout.
pub fn run_read() -> anyhow::Result<()> {
    let outcome =
        on_runtime(|handle| verify::read(read_spec()?, handle, &mut std::io::stdout().lock()))?;
    if let Err(e) = outcome {
        eprintln!("{e}");
        std::process::exit(e.exit_code());
    }
    Ok(())
}

/// `pressluft node backup-delete`: the per-backup report on stdout whatever the outcome, then
/// the exit code of the worst failure (an invalid spec: the error line and exit 3).
pub fn run_delete() -> anyhow::Result<()> {
    let outcome = on_runtime(|handle| {
        let spec: delete::DeleteSpec = read_spec()?;
        Ok(delete::delete(spec.checked()?, handle))
    })?;
    let (report, failures) = match outcome {
        Ok(done) => done,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(e.exit_code());
        }
    };
    println!("{}", serde_json::to_string(&report)?);
    for e in &failures {
        eprintln!("{e}");
    }
    match delete::exit_code(&failures) {
        0 => Ok(()),
        code => std::process::exit(code),
    }
}
