//! The secrets of an environment: their keys in the secrets store, and their creation when the
//! environment is created (the playbooks read them through the job's variables).

use rand::distributions::{Alphanumeric, DistString};

use crate::secrets::{Secrets, SecretsError};

/// The secrets store keys of an environment.
pub fn db_password_key(environment_id: &str) -> String {
    format!("env/{environment_id}/db_password")
}

pub fn wp_salts_key(environment_id: &str) -> String {
    format!("env/{environment_id}/wp_salts")
}

/// The password of the environment's Redis ACL user.
pub fn redis_password_key(environment_id: &str) -> String {
    format!("env/{environment_id}/redis_password")
}

/// Every secrets store key of an environment (what a temporary environment's job forgets).
pub fn environment_secret_keys(environment_id: &str) -> Vec<String> {
    vec![
        db_password_key(environment_id),
        wp_salts_key(environment_id),
        redis_password_key(environment_id),
    ]
}

/// A new random secret: 32 alphanumerics (database and Redis passwords).
pub fn new_password() -> String {
    Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
}

/// The database and Redis passwords and WordPress salts of a new environment, in the
/// secrets store.
pub(crate) fn create_environment_secrets(
    secrets: &Secrets,
    environment_id: &str,
) -> Result<(), SecretsError> {
    let mut rng = rand::thread_rng();
    let password = new_password();
    let salts: Vec<String> = (0..8)
        .map(|_| Alphanumeric.sample_string(&mut rng, 64))
        .collect();
    secrets.put(&db_password_key(environment_id), &password)?;
    secrets.put(&redis_password_key(environment_id), &new_password())?;
    secrets.put(
        &wp_salts_key(environment_id),
        &serde_json::to_string(&salts).expect("strings serialize"),
    )?;
    Ok(())
}
