//! Control-plane settings (`settings` table); a null setting has no row.

use sqlx::AnyConnection;

use super::{Store, StoreError};

impl Store {
    pub async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        fetch_setting(&mut *self.pool.acquire().await?, key).await
    }

    /// Every stored setting as `(key, value)`.
    pub async fn all_settings(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(
            crate::store::query_as("SELECT key, value FROM settings ORDER BY key")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

pub async fn fetch_setting(
    conn: &mut AnyConnection,
    key: &str,
) -> Result<Option<String>, StoreError> {
    let row: Option<(String,)> = crate::store::query_as("SELECT value FROM settings WHERE key = ?")
        .bind(key)
        .fetch_optional(conn)
        .await?;
    Ok(row.map(|(v,)| v))
}

/// The value of `key`, set to `value` first when it has none: of several writers at once, the
/// first commit wins and every one reads that value.
pub async fn setting_or_insert(
    conn: &mut AnyConnection,
    key: &str,
    value: &str,
    now: &str,
) -> Result<String, StoreError> {
    crate::store::query(
        "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
         ON CONFLICT (key) DO NOTHING",
    )
    .bind(key)
    .bind(value)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(fetch_setting(conn, key)
        .await?
        .unwrap_or_else(|| value.to_string()))
}

/// Writes settings: `Some` upserts, `None` deletes the row (a null setting has no row).
pub async fn put_settings(
    conn: &mut AnyConnection,
    values: &[(&str, Option<&str>)],
    now: &str,
) -> Result<(), StoreError> {
    for (key, value) in values {
        match value {
            Some(v) => {
                crate::store::query(
                    "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                       updated_at = excluded.updated_at",
                )
                .bind(key)
                .bind(v)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
            None => {
                crate::store::query("DELETE FROM settings WHERE key = ?")
                    .bind(key)
                    .execute(&mut *conn)
                    .await?;
            }
        }
    }
    Ok(())
}
