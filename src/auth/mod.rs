//! Authentication: admins, login with throttling, sessions, logout (api.md §2).
//!
//! This is the service both the JSON API and the dashboard call; neither touches passwords,
//! tokens or the session tables directly. It logs every attempt with its outcome, never the
//! password or a token.

mod password;
mod throttle;
pub mod token;

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::clock::{format_ts, parse_ts, SharedClock};
use crate::domain::Email;
use crate::store::login_attempts::AttemptKey;
use crate::store::{SessionUser, Store, StoreError};

pub use password::{check_policy, hash_password, verify_password, MIN_PASSWORD_CHARS};

/// Absolute lifetime of a session.
pub const SESSION_LIFETIME: Duration = Duration::hours(24);

/// Failures of authentication and account management.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown e-mail, wrong password and inactive user alike.
    #[error("invalid e-mail or password")]
    InvalidCredentials,
    #[error("too many failed logins; blocked until {until}")]
    Throttled { until: OffsetDateTime },
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("an admin with e-mail {0} already exists")]
    EmailTaken(String),
    #[error("no admin has e-mail {0}")]
    UnknownEmail(String),
    #[error("password hashing failed")]
    Hash(#[source] password::HashError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A session just created by a successful login; `token` goes into the cookie, nowhere else.
#[derive(Debug)]
pub struct NewSession {
    pub token: String,
    pub expires_at: OffsetDateTime,
    pub user_email: String,
}

/// Checks the password policy, then hashes.
fn policy_checked_hash(password: &str) -> Result<String, AuthError> {
    check_policy(password).map_err(|message| AuthError::Invalid {
        field: "password",
        message,
    })?;
    hash_password(password).map_err(AuthError::Hash)
}

/// The authentication service.
#[derive(Clone)]
pub struct Auth {
    store: Store,
    clock: SharedClock,
}

impl Auth {
    pub fn new(store: Store, clock: SharedClock) -> Self {
        Self { store, clock }
    }

    /// Checks throttling, then the credentials; records the attempt; creates a session.
    pub async fn login(
        &self,
        email: &Email,
        password: &str,
        remote_ip: &str,
    ) -> Result<NewSession, AuthError> {
        let now = self.clock.now();
        if let Some(until) = self.blocked_until(email, remote_ip, now).await? {
            tracing::warn!(email = %email, remote_ip, "login throttled");
            return Err(AuthError::Throttled { until });
        }
        let user = self.store.find_user_by_email(email.as_str()).await?;
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| password::dummy_hash().to_string());
        let password = password.to_string();
        let matches = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .unwrap_or(false);
        let user = user.filter(|u| matches && u.is_active);
        let now_s = format_ts(now);
        self.store
            .record_login_attempt(
                &Uuid::new_v4().to_string(),
                email.as_str(),
                remote_ip,
                user.is_some(),
                &now_s,
            )
            .await?;
        let Some(user) = user else {
            tracing::warn!(email = %email, remote_ip, "login failed: invalid credentials");
            return Err(AuthError::InvalidCredentials);
        };
        let token = token::random_token();
        let expires_at = now + SESSION_LIFETIME;
        self.store
            .insert_session(
                &Uuid::new_v4().to_string(),
                &user.id,
                &token::hash_token(&token),
                &format_ts(expires_at),
                &now_s,
            )
            .await?;
        tracing::info!(email = %email, remote_ip, "login succeeded");
        Ok(NewSession {
            token,
            expires_at,
            user_email: user.email,
        })
    }

    async fn blocked_until(
        &self,
        email: &Email,
        remote_ip: &str,
        now: OffsetDateTime,
    ) -> Result<Option<OffsetDateTime>, AuthError> {
        let since = format_ts(now - throttle::WINDOW * 2);
        let mut until = None;
        for key in [
            AttemptKey::Email(email.as_str()),
            AttemptKey::RemoteIp(remote_ip),
        ] {
            let failures: Vec<OffsetDateTime> = self
                .store
                .recent_login_failures(key, &since, throttle::MAX_FAILURES as i64)
                .await?
                .iter()
                .filter_map(|t| parse_ts(t))
                .collect();
            until = until.max(throttle::blocked_until(&failures, now));
        }
        Ok(until)
    }

    /// The live session of a raw cookie token, if any.
    pub async fn authenticate(&self, token: &str) -> Result<Option<SessionUser>, StoreError> {
        self.store
            .find_live_session(&token::hash_token(token), &format_ts(self.clock.now()))
            .await
    }

    /// Revokes a session (logout).
    pub async fn logout(&self, session: &SessionUser) -> Result<(), StoreError> {
        self.store
            .revoke_session(&session.session_id, &format_ts(self.clock.now()))
            .await?;
        tracing::info!(email = %session.email, "logout: session revoked");
        Ok(())
    }

    pub async fn has_users(&self) -> Result<bool, StoreError> {
        Ok(self.store.count_users().await? > 0)
    }

    /// Creates an admin; the e-mail must be unused and the password meet the policy.
    pub async fn create_admin(
        &self,
        email: &str,
        display_name: Option<&str>,
        password: &str,
    ) -> Result<Email, AuthError> {
        let email = Email::parse(email).map_err(|m| AuthError::Invalid {
            field: "email",
            message: m.to_string(),
        })?;
        let display_name = display_name
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .unwrap_or(email.local_part())
            .to_string();
        if display_name.chars().count() > 100 {
            return Err(AuthError::Invalid {
                field: "display_name",
                message: "must have at most 100 characters".into(),
            });
        }
        let hash = policy_checked_hash(password)?;
        let now = format_ts(self.clock.now());
        self.store
            .insert_user(
                &Uuid::new_v4().to_string(),
                email.as_str(),
                &display_name,
                &hash,
                &now,
            )
            .await
            .map_err(|e| match e {
                StoreError::Duplicate(_) => AuthError::EmailTaken(email.to_string()),
                other => AuthError::Store(other),
            })?;
        tracing::info!(email = %email, "admin created");
        Ok(email)
    }

    /// Replaces an admin's password and revokes all of their sessions.
    pub async fn set_password(&self, email: &str, password: &str) -> Result<(), AuthError> {
        let email = Email::parse(email).map_err(|m| AuthError::Invalid {
            field: "email",
            message: m.to_string(),
        })?;
        let hash = policy_checked_hash(password)?;
        let now = format_ts(self.clock.now());
        if !self
            .store
            .set_password_and_revoke_sessions(email.as_str(), &hash, &now)
            .await?
        {
            return Err(AuthError::UnknownEmail(email.to_string()));
        }
        tracing::info!(email = %email, "password replaced; sessions revoked");
        Ok(())
    }
}
