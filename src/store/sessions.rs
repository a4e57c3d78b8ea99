//! Login sessions; only the SHA-256 of a session token is ever stored.

use sqlx::FromRow;

use super::{Store, StoreError};

/// An unexpired, unrevoked session with its active user.
#[derive(Debug, Clone, FromRow)]
pub struct SessionUser {
    pub session_id: String,
    pub user_id: String,
    pub email: String,
    pub display_name: String,
    pub expires_at: String,
}

impl Store {
    pub async fn insert_session(
        &self,
        id: &str,
        user_id: &str,
        token_hash: &str,
        expires_at: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        crate::store::query(
            "INSERT INTO auth_sessions (id, user_id, session_token, expires_at, created_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(user_id)
        .bind(token_hash)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session for a token hash if it is neither expired (at `now`) nor revoked and its user
    /// is active.
    pub async fn find_live_session(
        &self,
        token_hash: &str,
        now: &str,
    ) -> Result<Option<SessionUser>, StoreError> {
        Ok(crate::store::query_as(
            "SELECT s.id AS session_id, u.id AS user_id, u.email, u.display_name, s.expires_at
             FROM auth_sessions s JOIN users u ON u.id = s.user_id
             WHERE s.session_token = ? AND s.revoked_at IS NULL AND s.expires_at > ?
               AND u.is_active = 1",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Whether the session `id` is neither expired (at `now`) nor revoked and its user active.
    pub async fn session_is_live(&self, id: &str, now: &str) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = crate::store::query_as(
            "SELECT 1 FROM auth_sessions s JOIN users u ON u.id = s.user_id
             WHERE s.id = ? AND s.revoked_at IS NULL AND s.expires_at > ? AND u.is_active = 1",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    pub async fn revoke_session(&self, session_id: &str, now: &str) -> Result<(), StoreError> {
        crate::store::query(
            "UPDATE auth_sessions SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(session_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

impl Store {
    /// Deletes sessions expired or revoked before `sessions_before` and login attempts older
    /// than `attempts_before`; returns how many of each.
    pub async fn purge_auth_history(
        &self,
        sessions_before: &str,
        attempts_before: &str,
    ) -> Result<(u64, u64), StoreError> {
        let mut tx = self.pool.begin().await?;
        let s = crate::store::query(
            "DELETE FROM auth_sessions WHERE expires_at < ? OR (revoked_at IS NOT NULL AND revoked_at < ?)",
        )
        .bind(sessions_before)
        .bind(sessions_before)
        .execute(&mut *tx)
        .await?;
        let a = crate::store::query("DELETE FROM login_attempts WHERE created_at < ?")
            .bind(attempts_before)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((s.rows_affected(), a.rows_affected()))
    }
}
