//! One artifact's byte pipeline: plaintext → zstd (level 3, or 1 for a pre-operation backup;
//! multithreaded) → age → SHA-256 and byte count of exactly what is stored → storage; and back:
//! stored bytes → age → zstd → plaintext. Every stage is a streaming `Write`/`Read` with small
//! fixed buffers, so memory is bounded whatever the artifact's size.

use std::io::{self, BufReader, Read, Write};

use age::x25519;
use sha2::{Digest, Sha256};

use super::storage::Sink;
use super::BackupError;

/// Bytes per zstd worker job (multithreaded compression).
const ZSTD_JOB_SIZE: u32 = 2 << 20;

/// zstd level of every artifact but a pre-operation backup's (the baseline is
/// `zstd -3 -T0`).
pub const ZSTD_LEVEL: i32 = 3;

/// zstd level of a pre-operation backup's artifacts ([`super::create::CreateSpec::fast`]): it
/// is taken on the critical path of the operation it guards (a restore's import runs beside it).
pub const ZSTD_FAST_LEVEL: i32 = 1;

/// Counts and hashes the bytes that pass through to the storage.
pub struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Hashing<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }

    /// The inner writer, the byte count and the hex SHA-256.
    pub fn finish(self) -> (W, u64, String) {
        (self.inner, self.size, hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// SHA-256 and size of everything `reader` yields.
pub fn hash_reader(mut reader: impl Read) -> io::Result<(u64, String)> {
    let mut hashing = Hashing::new(io::sink());
    io::copy(&mut reader, &mut hashing)?;
    let (_, size, sha256) = hashing.finish();
    Ok((size, sha256))
}

/// What one stored artifact is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ArtifactInfo {
    pub name: String,
    pub size_bytes: u64,
    pub sha256: String,
}

/// The writer stack of one artifact: write plaintext into it, then [`Encoding::finish`].
pub struct Encoding {
    inner: Option<zstd::stream::write::Encoder<'static, age::stream::StreamWriter<Hashing<Sink>>>>,
}

impl Encoding {
    /// `compress`: zstd before encryption (false for the manifest, which is small JSON).
    pub fn new(
        sink: Sink,
        recipient: &x25519::Recipient,
        compress: bool,
        level: i32,
    ) -> Result<Self, BackupError> {
        let encrypted = age::Encryptor::with_recipients(std::iter::once(recipient as _))
            .map_err(|e| BackupError::Failed(format!("age: {e}")))?
            .wrap_output(Hashing::new(sink))
            .map_err(|e| BackupError::Failed(format!("age: {e}")))?;
        let mut encoder = zstd::stream::write::Encoder::new(encrypted, level)
            .map_err(|e| BackupError::Failed(format!("zstd: {e}")))?;
        if compress {
            let threads = std::thread::available_parallelism()
                .map(|n| n.get() as u32)
                .unwrap_or(1);
            if threads > 1 {
                encoder
                    .multithread(threads)
                    .map_err(|e| BackupError::Failed(format!("zstd: {e}")))?;
                // Smaller jobs than zstd's default (4 windows, 8 MiB at level 3) bound the
                // workers' buffers: peak RSS stays under the 64 MB (docs/benchmarks.md).
                encoder
                    .set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_SIZE))
                    .map_err(|e| BackupError::Failed(format!("zstd: {e}")))?;
            }
        }
        Ok(Self {
            inner: Some(encoder),
        })
    }

    /// Flushes every stage, commits the stored object and returns what was stored.
    pub fn finish(mut self, name: &str) -> Result<ArtifactInfo, BackupError> {
        let encoder = self.inner.take().expect("finished twice");
        let encrypted = encoder
            .finish()
            .map_err(|e| BackupError::from_io(e, &format!("{name}: zstd")))?;
        let hashing = encrypted
            .finish()
            .map_err(|e| BackupError::from_io(e, &format!("{name}: age")))?;
        let (sink, size_bytes, sha256) = hashing.finish();
        sink.commit()?;
        Ok(ArtifactInfo {
            name: name.to_string(),
            size_bytes,
            sha256,
        })
    }
}

impl Write for Encoding {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.as_mut().expect("finished").write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.as_mut().expect("finished").flush()
    }
}

/// The manifest is stored encrypted but uncompressed (zstd frame of level 3, single thread:
/// still a valid `.zst` stream, so one reader serves every artifact).
pub fn manifest_encoding(
    sink: Sink,
    recipient: &x25519::Recipient,
) -> Result<Encoding, BackupError> {
    Encoding::new(sink, recipient, false, ZSTD_LEVEL)
}

/// The zstd stream inside stored bytes: age-decrypt with `identity` (what a download serves).
pub fn decrypting(
    stored: Box<dyn Read + Send>,
    identity: &x25519::Identity,
) -> Result<impl Read, BackupError> {
    let decryptor = age::Decryptor::new_buffered(BufReader::new(stored))
        .map_err(|e| BackupError::Failed(format!("age: {e}")))?;
    decryptor
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|e| BackupError::Failed(format!("age: {e} (wrong data key?)")))
}

/// Plaintext of stored bytes: age-decrypt with `identity`, then zstd-decode.
pub fn decoding(
    stored: Box<dyn Read + Send>,
    identity: &x25519::Identity,
) -> Result<impl Read, BackupError> {
    zstd::stream::read::Decoder::new(decrypting(stored, identity)?)
        .map_err(|e| BackupError::Failed(format!("zstd: {e}")))
}
