//! Authentication: admins, login with throttling, sessions, logout (api.md §2).
//!
//! This is the service both the JSON API and the dashboard call; neither touches passwords,
//! tokens or the session tables directly. It logs every attempt with its outcome, never the
//! password or a token.

mod password;
mod throttle;
pub mod token;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;

use crate::clock::{format_ts, parse_ts, SharedClock};
use crate::domain::Email;
use crate::store::login_attempts::{AttemptKey, LoginAttempts};
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
    /// Every password-verification slot stayed busy for the allowed wait.
    #[error("too many logins at once")]
    Busy,
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

/// Counters of password verifications, observable by tests and the log.
#[derive(Debug, Default)]
struct VerifyStats {
    total: AtomicU64,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

/// The authentication service.
#[derive(Clone)]
pub struct Auth {
    store: Store,
    clock: SharedClock,
    /// Bounds concurrent argon2id verifications (memory); see `throttle`.
    verify_slots: Arc<Semaphore>,
    stats: Arc<VerifyStats>,
    /// Woken when sessions are revoked in this process (live streams end at once).
    revoked: Arc<Notify>,
}

impl Auth {
    pub fn new(store: Store, clock: SharedClock) -> Self {
        Self {
            store,
            clock,
            verify_slots: Arc::new(Semaphore::new(throttle::MAX_CONCURRENT_VERIFICATIONS)),
            stats: Arc::default(),
            revoked: Arc::default(),
        }
    }

    /// Password verifications run since start (each login that passed the throttle runs one).
    pub fn verifications(&self) -> u64 {
        self.stats.total.load(Ordering::SeqCst)
    }

    /// The most password verifications that ran at the same time since start.
    pub fn peak_concurrent_verifications(&self) -> usize {
        self.stats.peak.load(Ordering::SeqCst)
    }

    /// Checks throttling and reserves the attempt (one write transaction), verifies the password
    /// in a bounded pool, settles the attempt; creates a session.
    pub async fn login(
        &self,
        email: &Email,
        password: &str,
        remote_ip: &str,
    ) -> Result<NewSession, AuthError> {
        let now = self.clock.now();
        let now_s = format_ts(now);
        let attempt_id = Uuid::new_v4().to_string();
        // A cheap refusal on a read connection first; then the authoritative check, with the
        // reservation, in one write transaction.
        let mut view = self.store.read_login_attempts().await?;
        let mut blocked = blocked_until(&mut view, email, remote_ip, now).await?;
        drop(view);
        let mut tx = None;
        if blocked.is_none() {
            let mut t = self.store.begin_login_attempt().await?;
            blocked = blocked_until(&mut t, email, remote_ip, now).await?;
            tx = Some(t);
        }
        if let Some(until) = blocked {
            drop(tx);
            tracing::warn!(email = %email, remote_ip, "login throttled");
            return Err(AuthError::Throttled { until });
        }
        let tx = tx.expect("a write transaction when not blocked");
        tx.reserve(&attempt_id, email.as_str(), remote_ip, &now_s)
            .await?;

        let permit = match tokio::time::timeout(
            throttle::VERIFICATION_WAIT,
            self.verify_slots.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            _ => {
                self.store.withdraw_login_attempt(&attempt_id).await?;
                tracing::warn!(email = %email, remote_ip, "login refused: password checks busy");
                return Err(AuthError::Busy);
            }
        };
        let user = self.store.find_user_by_email(email.as_str()).await?;
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| password::dummy_hash().to_string());
        let password = password.to_string();
        let stats = self.stats.clone();
        let matches = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            stats.total.fetch_add(1, Ordering::SeqCst);
            let running = stats.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            stats.peak.fetch_max(running, Ordering::SeqCst);
            let matches = verify_password(&password, &hash);
            stats.in_flight.fetch_sub(1, Ordering::SeqCst);
            matches
        })
        .await
        .unwrap_or(false);
        let user = user.filter(|u| matches && u.is_active);
        self.store
            .settle_login_attempt(&attempt_id, user.is_some())
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

    /// Woken whenever this process revokes sessions; revocations by another process (the CLI)
    /// and expiry are noticed by polling [`Auth::session_is_live`].
    pub fn revocations(&self) -> Arc<Notify> {
        self.revoked.clone()
    }

    /// Whether a session is still unexpired, unrevoked and its user active.
    pub async fn session_is_live(&self, session_id: &str) -> Result<bool, StoreError> {
        self.store
            .session_is_live(session_id, &format_ts(self.clock.now()))
            .await
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
        self.revoked.notify_waiters();
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
        self.revoked.notify_waiters();
        tracing::info!(email = %email, "password replaced; sessions revoked");
        Ok(())
    }
}

/// When the throttle blocks this attempt, if it does (api.md §2; the rule is in `throttle`).
async fn blocked_until(
    tx: &mut LoginAttempts,
    email: &Email,
    remote_ip: &str,
    now: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, AuthError> {
    let since = format_ts(now - throttle::WINDOW * 2);
    let mut limits = vec![
        (
            AttemptKey::EmailAndIp(email.as_str(), remote_ip),
            throttle::MAX_FAILURES_PER_EMAIL_AND_IP,
        ),
        (
            AttemptKey::RemoteIp(remote_ip),
            throttle::MAX_FAILURES_PER_IP,
        ),
    ];
    let known_ip = tx
        .succeeded_from(
            email.as_str(),
            remote_ip,
            &format_ts(now - throttle::KNOWN_IP_FOR),
        )
        .await?;
    if !known_ip {
        limits.push((
            AttemptKey::Email(email.as_str()),
            throttle::MAX_FAILURES_PER_EMAIL,
        ));
    }
    let mut until = None;
    for (key, max) in limits {
        let failures: Vec<OffsetDateTime> = tx
            .recent_failures(key, &since, max as i64)
            .await?
            .iter()
            .filter_map(|t| parse_ts(t))
            .collect();
        until = until.max(throttle::blocked_until(&failures, max, now));
    }
    Ok(until)
}
