//! What several control-plane replicas on one PostgreSQL database need from the store
//! (issue 17): the change notifications that wake another replica's workers and live feed,
//! and the scheduler lease that lets one replica at a time run the periodic duties.
//!
//! On SQLite there is one process per database file: nothing to listen to, and the lease is
//! always held.

use sqlx::postgres::PgListener;
use sqlx::Connection;

use super::{Backend, Store, StoreError};

/// The channel the triggers of `migrations/postgres/0011_change_notifications.sql` notify.
pub const CHANGES_CHANNEL: &str = "pressluft_changes";

/// Key of the session advisory lock the scheduler leader holds.
pub const SCHEDULER_LOCK_KEY: i64 = 7_243_610_018;

/// What changed, as a notification says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Jobs were inserted or changed state.
    Jobs,
    /// Sites, environments, nodes, releases, backups or domains changed.
    Resources,
}

/// A subscription to the change notifications of every replica (PostgreSQL only).
pub struct ChangeListener {
    listener: PgListener,
}

impl ChangeListener {
    /// The next change any replica (this one included) committed. Reconnects by itself after
    /// a lost connection (notifications sent meanwhile are lost: the feed's and the workers'
    /// polling catch up).
    pub async fn recv(&mut self) -> Result<Change, StoreError> {
        let n = self.listener.recv().await?;
        Ok(if n.payload() == "jobs" {
            Change::Jobs
        } else {
            Change::Resources
        })
    }
}

/// The scheduler's right to run the periodic duties: on PostgreSQL a session advisory lock on
/// a connection of its own, kept while the connection lives (a replica that dies releases it
/// with its connection, and another takes over at its next tick).
#[derive(Default)]
pub struct SchedulerLease {
    conn: Option<sqlx::AnyConnection>,
}

impl SchedulerLease {
    /// Whether this replica may run the duties now: true on SQLite; on PostgreSQL when it
    /// holds the lock or just took it.
    pub async fn held(&mut self, store: &Store) -> bool {
        if store.backend == Backend::Sqlite {
            return true;
        }
        if let Some(conn) = &mut self.conn {
            if conn.ping().await.is_ok() {
                return true;
            }
            tracing::warn!("scheduler lease: connection lost, trying to take the lease again");
            self.conn = None;
        }
        match Self::try_take(store).await {
            Ok(Some(conn)) => {
                tracing::info!("scheduler lease taken: this replica runs the periodic duties");
                self.conn = Some(conn);
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "scheduler lease: could not ask for the lock");
                false
            }
        }
    }

    async fn try_take(store: &Store) -> Result<Option<sqlx::AnyConnection>, StoreError> {
        let mut conn = sqlx::AnyConnection::connect(&store.url.0).await?;
        let (taken,): (bool,) = super::query_as("SELECT pg_try_advisory_lock(?)")
            .bind(SCHEDULER_LOCK_KEY)
            .fetch_one(&mut conn)
            .await?;
        if taken {
            Ok(Some(conn))
        } else {
            conn.close().await.ok();
            Ok(None)
        }
    }
}

impl Store {
    /// Listens to the change notifications of every replica; `None` on SQLite.
    pub async fn listen_for_changes(&self) -> Result<Option<ChangeListener>, StoreError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = PgListener::connect(&self.url.0).await?;
        listener.listen(CHANGES_CHANNEL).await?;
        Ok(Some(ChangeListener { listener }))
    }
}
