//! Login attempts, the memory behind login throttling.

use super::{Store, StoreError};

/// Which attempts a throttling question is about.
#[derive(Debug, Clone, Copy)]
pub enum AttemptKey<'a> {
    Email(&'a str),
    RemoteIp(&'a str),
}

impl Store {
    pub async fn record_login_attempt(
        &self,
        id: &str,
        email: &str,
        remote_ip: &str,
        succeeded: bool,
        now: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO login_attempts (id, email, remote_ip, succeeded, created_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(email)
        .bind(remote_ip)
        .bind(succeeded)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Timestamps of the newest `limit` failures for `key` after `since` and after the key's most
    /// recent success, newest first.
    pub async fn recent_login_failures(
        &self,
        key: AttemptKey<'_>,
        since: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let (column, value) = match key {
            AttemptKey::Email(e) => ("email", e),
            AttemptKey::RemoteIp(ip) => ("remote_ip", ip),
        };
        let sql = format!(
            "SELECT created_at FROM login_attempts
             WHERE {column} = ? AND succeeded = 0 AND created_at > ?
               AND created_at > COALESCE(
                 (SELECT MAX(created_at) FROM login_attempts WHERE {column} = ? AND succeeded = 1), '')
             ORDER BY created_at DESC LIMIT ?"
        );
        let rows: Vec<(String,)> = sqlx::query_as(&sql)
            .bind(value)
            .bind(since)
            .bind(value)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(t,)| t).collect())
    }
}
