//! The encrypted secrets store (data-model.md, "Secrets store"): one age-encrypted file per
//! key under the secrets directory, decrypted only in memory (or into a job's private run
//! directory). The age identity lives at `<data_dir>/age.key` (0600). Only this module touches
//! key material.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret;

/// Key of the control plane's SSH private key; its public half is stored in plain beside it.
pub const SSH_KEY: &str = "ssh/control_plane_ed25519";

/// Failures of the secrets store.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secrets store I/O on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the age identity at {0} is unreadable")]
    BadIdentity(PathBuf),
    #[error("encrypting secret {0} failed")]
    Encrypt(String),
    #[error("decrypting secret {0} failed (wrong identity or damaged file)")]
    Decrypt(String),
    #[error("invalid secret key {0:?}")]
    BadKey(String),
    #[error("generating the SSH key pair failed: {0}")]
    SshKey(String),
}

/// A secret value whose `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The store; cheap to clone.
#[derive(Clone)]
pub struct Secrets {
    dir: PathBuf,
    identity: std::sync::Arc<age::x25519::Identity>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SecretsError + '_ {
    move |source| SecretsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` with `mode`, atomically (temp file + rename).
fn write_private(path: &Path, bytes: &[u8], mode: u32) -> Result<(), SecretsError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700))
            .map_err(io(parent))?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

impl Secrets {
    /// Opens the store, creating the identity (0600) and directory (0700) when missing.
    pub fn open(secrets_dir: &Path, identity_path: &Path) -> Result<Secrets, SecretsError> {
        std::fs::create_dir_all(secrets_dir).map_err(io(secrets_dir))?;
        std::fs::set_permissions(secrets_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io(secrets_dir))?;
        let identity = match std::fs::read_to_string(identity_path) {
            Ok(text) => text
                .lines()
                .find(|l| l.starts_with("AGE-SECRET-KEY-"))
                .and_then(|l| age::x25519::Identity::from_str(l.trim()).ok())
                .ok_or_else(|| SecretsError::BadIdentity(identity_path.to_path_buf()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = age::x25519::Identity::generate();
                let text = format!(
                    "# Pressluft secrets identity; created {}\n# public key: {}\n{}\n",
                    crate::clock::format_ts(time::OffsetDateTime::now_utc()),
                    id.to_public(),
                    id.to_string().expose_secret()
                );
                write_private(identity_path, text.as_bytes(), 0o600)?;
                tracing::info!(path = %identity_path.display(), "secrets identity created");
                id
            }
            Err(e) => return Err(io(identity_path)(e)),
        };
        std::fs::set_permissions(identity_path, std::fs::Permissions::from_mode(0o600))
            .map_err(io(identity_path))?;
        Ok(Secrets {
            dir: secrets_dir.to_path_buf(),
            identity: std::sync::Arc::new(identity),
        })
    }

    /// The public key (age recipient) of the identity: what every replica's identity must
    /// match (issue 17). Not secret.
    pub fn recipient(&self) -> String {
        self.identity.to_public().to_string()
    }

    fn path(&self, key: &str) -> Result<PathBuf, SecretsError> {
        let ok = !key.is_empty()
            && key.split('/').all(|part| {
                !part.is_empty()
                    && part != "."
                    && part != ".."
                    && part
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            });
        if !ok {
            return Err(SecretsError::BadKey(key.to_string()));
        }
        Ok(self.dir.join(format!("{key}.age")))
    }

    /// Stores (or replaces) a secret.
    pub fn put(&self, key: &str, value: &str) -> Result<(), SecretsError> {
        let path = self.path(key)?;
        let recipient = self.identity.to_public();
        let sealed = age::encrypt(&recipient, value.as_bytes())
            .map_err(|_| SecretsError::Encrypt(key.to_string()))?;
        write_private(&path, &sealed, 0o600)
    }

    /// Reads a secret; `None` when it was never stored.
    pub fn get(&self, key: &str) -> Result<Option<Secret>, SecretsError> {
        let path = self.path(key)?;
        let sealed = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&path)(e)),
        };
        let plain = age::decrypt(self.identity.as_ref(), &sealed)
            .map_err(|_| SecretsError::Decrypt(key.to_string()))?;
        let text = String::from_utf8(plain).map_err(|_| SecretsError::Decrypt(key.to_string()))?;
        Ok(Some(Secret(text)))
    }

    /// Removes a secret; removing one that is not there is fine. Directories the key leaves
    /// empty below the store's root go too (`backup/<id>/`).
    pub fn delete(&self, key: &str) -> Result<(), SecretsError> {
        let path = self.path(key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(&path)(e)),
        }
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| *d != self.dir && d.starts_with(&self.dir)) {
            if std::fs::remove_dir(d).is_err() {
                break; // not empty (or gone)
            }
            dir = d.parent();
        }
        Ok(())
    }

    /// The names directly below `prefix` (`backup` → the ids of `backup/<id>/…`), sorted.
    pub fn children(&self, prefix: &str) -> Result<Vec<String>, SecretsError> {
        self.path(prefix)?; // the same key rules
        let dir = self.dir.join(prefix);
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir)(e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Creates the control plane's ed25519 key pair unless it exists; returns the public key.
    pub fn ensure_ssh_key_pair(&self) -> Result<String, SecretsError> {
        if let (Some(_), Ok(public)) = (self.get(SSH_KEY)?, self.ssh_public_key()) {
            return Ok(public);
        }
        let key = ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
            .map_err(|e| SecretsError::SshKey(e.to_string()))?;
        let private = key
            .to_openssh(ssh_key::LineEnding::LF)
            .map_err(|e| SecretsError::SshKey(e.to_string()))?;
        let mut public = key
            .public_key()
            .to_openssh()
            .map_err(|e| SecretsError::SshKey(e.to_string()))?;
        public.push_str(" pressluft-control-plane");
        self.put(SSH_KEY, &private)?;
        let pub_path = self.dir.join(format!("{SSH_KEY}.pub"));
        write_private(&pub_path, format!("{public}\n").as_bytes(), 0o644)?;
        tracing::info!(path = %pub_path.display(), "control-plane SSH key pair created");
        Ok(public)
    }

    /// The control plane's public key (`ssh-ed25519 … pressluft-control-plane`).
    pub fn ssh_public_key(&self) -> Result<String, SecretsError> {
        let path = self.dir.join(format!("{SSH_KEY}.pub"));
        std::fs::read_to_string(&path)
            .map(|s| s.trim().to_string())
            .map_err(io(&path))
    }

    /// The control plane's private key (OpenSSH format), for a run directory.
    pub fn ssh_private_key(&self) -> Result<Secret, SecretsError> {
        self.get(SSH_KEY)?
            .ok_or_else(|| SecretsError::Decrypt(SSH_KEY.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_encrypted_at_rest() {
        let dir = tempfile::tempdir().unwrap();
        let s = Secrets::open(&dir.path().join("secrets"), &dir.path().join("age.key")).unwrap();
        s.put("env/abc/db_password", "hunter2-but-longer").unwrap();
        let on_disk = std::fs::read(dir.path().join("secrets/env/abc/db_password.age")).unwrap();
        assert!(!String::from_utf8_lossy(&on_disk).contains("hunter2"));
        assert_eq!(
            s.get("env/abc/db_password").unwrap().unwrap().expose(),
            "hunter2-but-longer"
        );
        assert!(s.get("missing").unwrap().is_none());
        assert!(s.put("../escape", "x").is_err());
        s.put("backup/b1/key", "k1").unwrap();
        s.put("backup/b2/key", "k2").unwrap();
        s.delete("backup/b1/key").unwrap();
        s.delete("backup/b1/key").unwrap(); // idempotent
        assert!(s.get("backup/b1/key").unwrap().is_none());
        assert!(!dir.path().join("secrets/backup/b1").exists());
        assert_eq!(s.get("backup/b2/key").unwrap().unwrap().expose(), "k2");
        assert!(s.delete("../escape").is_err());
        assert_eq!(s.children("backup").unwrap(), vec!["b2"]);
        assert!(s.children("nothing").unwrap().is_empty());
        let mode = std::fs::metadata(dir.path().join("age.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            format!("{:?}", s.get("env/abc/db_password").unwrap().unwrap()),
            "Secret(***)"
        );

        // A second open reads the same identity.
        let again =
            Secrets::open(&dir.path().join("secrets"), &dir.path().join("age.key")).unwrap();
        assert_eq!(
            again.get("env/abc/db_password").unwrap().unwrap().expose(),
            "hunter2-but-longer"
        );
    }

    #[test]
    fn ssh_key_pair_is_created_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = Secrets::open(&dir.path().join("secrets"), &dir.path().join("age.key")).unwrap();
        let public = s.ensure_ssh_key_pair().unwrap();
        assert!(public.starts_with("ssh-ed25519 "), "{public}");
        assert_eq!(s.ensure_ssh_key_pair().unwrap(), public, "idempotent");
        let private = s.ssh_private_key().unwrap();
        assert!(private
            .expose()
            .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"));
    }
}
