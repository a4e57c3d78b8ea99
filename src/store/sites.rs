//! Sites; reading only until the site lifecycle arrives.

use super::{Store, StoreError};

impl Store {
    /// `(id, name)` of every site, by name: the options of a site filter.
    pub async fn site_options(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(
            sqlx::query_as("SELECT id, name FROM sites ORDER BY name, id")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
