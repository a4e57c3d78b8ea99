//! Users (admins) and their passwords.

use sqlx::FromRow;

use super::{Store, StoreError};

/// A `users` row.
#[derive(Debug, Clone, FromRow)]
pub struct UserRecord {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub role: String,
    pub password_hash: String,
    #[sqlx(try_from = "crate::store::Flag")]
    pub is_active: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl Store {
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        let (n,): (i64,) = crate::store::query_as("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }

    /// Inserts an active admin; [`StoreError::Duplicate`] when the e-mail is taken.
    pub async fn insert_user(
        &self,
        id: &str,
        email: &str,
        display_name: &str,
        password_hash: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        crate::store::query(
            "INSERT INTO users (id, email, display_name, role, password_hash, is_active, created_at, updated_at)
             VALUES (?, ?, ?, 'admin', ?, 1, ?, ?)",
        )
        .bind(id)
        .bind(email)
        .bind(display_name)
        .bind(password_hash)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(StoreError::unique("user"))?;
        Ok(())
    }

    pub async fn admin_emails(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> =
            crate::store::query_as("SELECT email FROM users ORDER BY created_at, email")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(e,)| e).collect())
    }

    /// The e-mail address of user `id`, if the user exists.
    pub async fn user_email(&self, id: &str) -> Result<Option<String>, StoreError> {
        let row: Option<(String,)> = crate::store::query_as("SELECT email FROM users WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|(e,)| e))
    }

    pub async fn find_user_by_email(&self, email: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(
            crate::store::query_as("SELECT * FROM users WHERE email = ?")
                .bind(email)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Replaces a user's password and revokes all of their sessions in one transaction.
    /// Returns false when no user has that e-mail.
    pub async fn set_password_and_revoke_sessions(
        &self,
        email: &str,
        password_hash: &str,
        now: &str,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let user: Option<(String,)> = crate::store::query_as(
            "UPDATE users SET password_hash = ?, updated_at = ? WHERE email = ? RETURNING id",
        )
        .bind(password_hash)
        .bind(now)
        .bind(email)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((user_id,)) = user else {
            return Ok(false);
        };
        crate::store::query(
            "UPDATE auth_sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
