//! `backup-verify` and `backup-read`: re-read a stored backup. Verify hashes the stored bytes of
//! the manifest against the recorded checksum, then every artifact the manifest lists against
//! its manifest entry (BACKUP_CHECKSUM_MISMATCH names the first that differs). Read decrypts
//! and decompresses one artifact to a writer (tests now, `env_restore` later), or only decrypts
//! it (`compressed`: the zstd stream the dashboard's download serves).

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use super::artifact::{decoding, decrypting, hash_reader, ArtifactInfo};
use super::create::Manifest;
use super::storage::{Storage, StorageSpec};
use super::{BackupError, DataKey, DB_ARTIFACT, FILES_ARTIFACT, MANIFEST};

/// The stdin document of `backup-verify` (built by the `backup_verify` job kind).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySpec {
    pub contract_version: u32,
    /// The recorded `sha256:<hex>` of the stored manifest.
    pub checksum: String,
    pub storage: StorageSpec,
    pub data_key: DataKey,
}

/// The stdout line of a passing `backup-verify`.
#[derive(Debug, Serialize)]
pub struct VerifyResult {
    pub status: &'static str,
    pub checksum: String,
    pub artifacts: Vec<ArtifactInfo>,
}

/// The stdin document of `backup-read`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadSpec {
    pub contract_version: u32,
    /// `db.sql.zst`, `files.tar.zst` or `manifest.json`.
    pub artifact: String,
    pub storage: StorageSpec,
    pub data_key: DataKey,
    /// Emit the decrypted zstd stream instead of the plaintext (a download: smaller, and
    /// `zstd -d` restores it).
    #[serde(default)]
    pub compressed: bool,
}

fn hashed(storage: &Storage, name: &str) -> Result<(u64, String), BackupError> {
    hash_reader(storage.reader(name)?).map_err(|e| BackupError::from_io(e, name))
}

/// See the module doc.
pub fn verify(spec: VerifySpec, handle: &Handle) -> Result<VerifyResult, BackupError> {
    let identity = spec.data_key.identity()?;
    let storage = Storage::open(&spec.storage, handle)?;
    let (_, artifacts) = verified_manifest(&storage, &spec.checksum, &identity)?;
    Ok(VerifyResult {
        status: "ok",
        checksum: spec.checksum,
        artifacts,
    })
}

/// Checks the stored manifest against `checksum` and every artifact it lists against its entry;
/// returns the manifest and what was checked (the manifest last). Shared by `backup-verify`
/// and the restore library ([`super::restore`]), which verifies before it changes anything.
pub fn verified_manifest(
    storage: &Storage,
    checksum: &str,
    identity: &age::x25519::Identity,
) -> Result<(Manifest, Vec<ArtifactInfo>), BackupError> {
    let expected = checksum
        .strip_prefix("sha256:")
        .ok_or_else(|| BackupError::Spec("checksum must start with sha256:".into()))?
        .to_ascii_lowercase();
    let (manifest_size, manifest_sha) = hashed(storage, MANIFEST)?;
    if manifest_sha != expected {
        return Err(BackupError::Mismatch(format!(
            "artifact {MANIFEST}: sha256 {manifest_sha} differs from the recorded checksum"
        )));
    }
    let mut plain = Vec::new();
    decoding(storage.reader(MANIFEST)?, identity)?
        .read_to_end(&mut plain)
        .map_err(|e| BackupError::Failed(format!("{MANIFEST}: {e}")))?;
    let manifest: Manifest = serde_json::from_slice(&plain)
        .map_err(|e| BackupError::Failed(format!("{MANIFEST}: {e}")))?;
    // The artifacts are hashed side by side (a full backup's dump and archive: the
    // verification a restore waits for before it changes anything).
    let hashes: Vec<Result<(u64, String), BackupError>> = std::thread::scope(|scope| {
        let threads: Vec<_> = manifest
            .artifacts
            .iter()
            .map(|entry| scope.spawn(|| hashed(storage, &entry.name)))
            .collect();
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(BackupError::Failed("hashing panicked".into())))
            })
            .collect()
    });
    let mut artifacts = Vec::new();
    for (entry, hash) in manifest.artifacts.iter().zip(hashes) {
        let (size, sha) = hash?;
        if sha != entry.sha256 || size != entry.size_bytes {
            return Err(BackupError::Mismatch(format!(
                "artifact {}: sha256 {sha} ({size} bytes) differs from the manifest's {} ({} bytes)",
                entry.name, entry.sha256, entry.size_bytes
            )));
        }
        artifacts.push(entry.clone());
    }
    artifacts.push(ArtifactInfo {
        name: MANIFEST.into(),
        size_bytes: manifest_size,
        sha256: manifest_sha,
    });
    Ok((manifest, artifacts))
}

/// Writes the plaintext of one artifact to `out` (its zstd stream when `compressed`).
pub fn read(spec: ReadSpec, handle: &Handle, out: &mut impl Write) -> Result<(), BackupError> {
    if ![DB_ARTIFACT, FILES_ARTIFACT, MANIFEST].contains(&spec.artifact.as_str()) {
        return Err(BackupError::Spec(format!(
            "unknown artifact {:?}",
            spec.artifact
        )));
    }
    let identity = spec.data_key.identity()?;
    let storage = Storage::open(&spec.storage, handle)?;
    let stored = storage.reader(&spec.artifact)?;
    let mut bytes: Box<dyn Read> = if spec.compressed {
        Box::new(decrypting(stored, &identity)?)
    } else {
        Box::new(decoding(stored, &identity)?)
    };
    io::copy(&mut bytes, out).map_err(|e| BackupError::from_io(e, &spec.artifact))?;
    out.flush()
        .map_err(|e| BackupError::Failed(format!("stdout: {e}")))
}
