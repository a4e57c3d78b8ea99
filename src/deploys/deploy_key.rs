//! Each site's deploy key: an ed25519 key pair made by the control plane on first use, the
//! private half only in the secrets store (`site/<id>/deploy_key`, sent to the node in a
//! deploy's vars for `ssh://` repositories, masked in output), the public half shown for the
//! operator to add to the repository as a read-only deploy key.

use crate::secrets::{Secrets, SecretsError};

/// The secrets-store key of a site's deploy key (OpenSSH private key).
pub fn secret_key(site_id: &str) -> String {
    format!("site/{site_id}/deploy_key")
}

/// The site's private deploy key, if it has one.
pub fn private_key(secrets: &Secrets, site_id: &str) -> Result<Option<String>, SecretsError> {
    Ok(secrets
        .get(&secret_key(site_id))?
        .map(|s| s.expose().to_string()))
}

/// The site's public deploy key (`ssh-ed25519 … pressluft-deploy-<site id prefix>`), creating
/// the pair first when the site has none.
pub fn ensure(secrets: &Secrets, site_id: &str) -> Result<String, SecretsError> {
    // Two first uses at once must not make two keys (the one shown would not be the one used).
    static CREATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _creating = CREATING.lock().unwrap_or_else(|e| e.into_inner());
    let key = match private_key(secrets, site_id)? {
        Some(pem) => ssh_key::PrivateKey::from_openssh(pem.as_bytes())
            .map_err(|e| SecretsError::SshKey(e.to_string()))?,
        None => {
            let key =
                ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519)
                    .map_err(|e| SecretsError::SshKey(e.to_string()))?;
            let pem = key
                .to_openssh(ssh_key::LineEnding::LF)
                .map_err(|e| SecretsError::SshKey(e.to_string()))?;
            secrets.put(&secret_key(site_id), &pem)?;
            tracing::info!(site = site_id, "deploy key created");
            key
        }
    };
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|e| SecretsError::SshKey(e.to_string()))?;
    Ok(format!(
        "{public} pressluft-deploy-{}",
        &site_id[..site_id.len().min(8)]
    ))
}
