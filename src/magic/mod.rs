//! The operator's direct controls of issue 13 that need no job: magic login (a one-time
//! WordPress login link, asked of the environment's node over one SSH command,
//! backups-restore-promotion.md §10) and resetting a failed site or environment back to
//! `active` ([`reset`], state-machines.md: `failed → active` only by reset). Both are
//! synchronous (api.md §1) and both write one audit row per request (api.md §6).

pub mod reset;

use std::time::Duration;

use uuid::Uuid;

use crate::clock::{format_ts, SharedClock};
use crate::config::Config;
use crate::domain::SiteStatus;
use crate::node_helper::magic_login::{parse_answer, MagicLoginSpec};
use crate::node_helper::spec::CONTRACT_VERSION;
use crate::nodes::command::{self, CommandError};
use crate::secrets::Secrets;
use crate::sites::layout::EnvLayout;
use crate::store::audit::{insert_audit, NewAudit};
use crate::store::{Store, StoreError};

/// The whole node query's limit (connect, run, answer); the ssh process is killed after it.
pub const LIMIT: Duration = Duration::from_secs(10);

/// The largest answer accepted from the node (the answer is about 120 bytes).
const MAX_ANSWER: usize = 4096;

/// The query parameter the Pressluft mu-plugin reads on `wp-login.php`.
pub const LOGIN_PARAMETER: &str = "pressluft_magic_login";

/// A login link: open `login_url` within 60 s, once.
#[derive(Debug, Clone)]
pub struct MagicLink {
    pub login_url: String,
    pub expires_at: String,
}

/// Why no login link was made.
#[derive(Debug, thiserror::Error)]
pub enum MagicLoginError {
    #[error("environment not found")]
    NotFound,
    /// 409 `environment_not_active`.
    #[error("the environment is {0}, not active")]
    NotActive(SiteStatus),
    /// 502 `node_unreachable`: SSH failed or the 10 s passed.
    #[error("the environment's node could not be reached within 10 s")]
    Unreachable,
    /// 502 `wp_cli_error`: the helper or WordPress failed, or answered something unreadable
    /// (no administrator, a broken site).
    #[error("WordPress could not make a login link{}", .0.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Helper(Option<String>),
    /// 500: the audit row could not be written (fail closed) or the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the magic-login query needs from the application state.
pub struct MagicLogin<'a> {
    pub store: &'a Store,
    pub secrets: &'a Secrets,
    pub config: &'a Config,
    pub clock: &'a SharedClock,
}

impl MagicLogin<'_> {
    /// Makes a login link for `environment_id` on behalf of `user_id`, auditing the request:
    /// `rejected` when the environment is not active, `failed` when the node or WordPress did
    /// not answer, `succeeded` with a link. An unknown environment is only logged (api.md §6).
    pub async fn link(
        &self,
        user_id: &str,
        environment_id: &str,
    ) -> Result<MagicLink, MagicLoginError> {
        let env = self
            .store
            .get_environment(environment_id)
            .await?
            .ok_or(MagicLoginError::NotFound)?;
        let outcome = self.ask(&env).await;
        let result = match &outcome {
            Ok(_) => "succeeded",
            Err(MagicLoginError::NotActive(_)) => "rejected",
            Err(_) => "failed",
        };
        self.audit(user_id, &env.id, result).await?;
        match &outcome {
            Ok(_) => tracing::info!(environment = %env.id, "magic login link made"),
            Err(e) => {
                tracing::info!(environment = %env.id, reason = %e, "magic login refused or failed")
            }
        }
        outcome
    }

    async fn ask(
        &self,
        env: &crate::store::environments::EnvironmentRecord,
    ) -> Result<MagicLink, MagicLoginError> {
        if env.status != SiteStatus::Active {
            return Err(MagicLoginError::NotActive(env.status));
        }
        let node = self
            .store
            .get_node(&env.node_id)
            .await?
            .ok_or(MagicLoginError::Unreachable)?;
        let canonical = {
            let mut conn = self
                .store
                .pool()
                .acquire()
                .await
                .map_err(StoreError::from)?;
            crate::store::environments::canonical_url(&mut conn, &env.id)
                .await?
                .unwrap_or_else(|| env.preview_url.clone())
        };
        let layout = EnvLayout::new(&env.site_id, &env.id);
        let spec = MagicLoginSpec {
            contract_version: CONTRACT_VERSION,
            environment_id: env.id.clone(),
            env_root: layout.env_root,
            env_user: layout.env_user,
            php_dir: crate::deploys::updates::PHP_DIR.to_string(),
        };
        let spec = serde_json::to_string(&spec).expect("the spec serializes");
        let out = command::run(
            self.config,
            self.secrets,
            &node,
            "magic-login",
            &spec,
            LIMIT,
            MAX_ANSWER,
        )
        .await
        .map_err(|e| match e {
            CommandError::Unreachable | CommandError::Local(_) => MagicLoginError::Unreachable,
            CommandError::Failed { helper_code, .. } => MagicLoginError::Helper(helper_code),
            CommandError::TooLarge => MagicLoginError::Helper(None),
        })?;
        // The answer holds the token: parsed, never logged.
        let answer = serde_json::from_slice(&out)
            .ok()
            .and_then(|v| parse_answer(v).ok())
            .ok_or_else(|| {
                tracing::warn!(environment = %env.id, "magic-login answered something unreadable");
                MagicLoginError::Helper(None)
            })?;
        Ok(MagicLink {
            login_url: login_url(&canonical, &answer.token),
            expires_at: normalize_ts(&answer.expires_at),
        })
    }

    /// One `magic_login` audit row (fail closed: an error here fails the request).
    async fn audit(&self, user_id: &str, env_id: &str, result: &str) -> Result<(), StoreError> {
        let now = format_ts(self.clock.now());
        let mut tx = self.store.begin_write().await?;
        let id = Uuid::new_v4().to_string();
        insert_audit(
            &mut tx,
            &NewAudit {
                id: &id,
                user_id,
                action: "magic_login",
                resource_type: "environment",
                resource_id: env_id,
                result,
                job_id: None,
            },
            &now,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// `<canonical URL>/wp-login.php?pressluft_magic_login=<token>` (the token is hex: nothing
/// to escape).
pub fn login_url(canonical: &str, token: &str) -> String {
    format!(
        "{}/wp-login.php?{LOGIN_PARAMETER}={token}",
        canonical.trim_end_matches('/')
    )
}

/// The bridge's RFC 3339 expiry in the API's timestamp form (milliseconds, `Z`).
fn normalize_ts(ts: &str) -> String {
    crate::clock::parse_ts(ts).map_or_else(|| ts.to_string(), format_ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_goes_to_wp_login_on_the_canonical_url() {
        assert_eq!(
            login_url("https://example.com/", "ab12"),
            "https://example.com/wp-login.php?pressluft_magic_login=ab12"
        );
        assert_eq!(
            normalize_ts("2025-01-02T03:04:05Z"),
            "2025-01-02T03:04:05.000Z"
        );
    }
}
