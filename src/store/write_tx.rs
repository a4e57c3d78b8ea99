//! The write transaction every service and the job engine write through.
//!
//! SQLite has one writer at a time; this type makes the process agree with that: a write
//! takes the store's write gate (writers of this process queue in order) and opens with
//! `BEGIN IMMEDIATE`. On PostgreSQL it opens with `BEGIN` and takes a transaction-scoped
//! advisory lock, so the writes of every replica still run one at a time and every
//! read-then-write a service does inside a `WriteTx` keeps SQLite's guarantees. It lives apart from the queue because every service uses it, while the
//! queue's own dedicated connection ([`QueueWriter`](super::queue::QueueWriter)) is one of its two ways to connect.

use sqlx::{Any, AnyConnection, Transaction};
use tokio::sync::OwnedMutexGuard;

use super::{Store, StoreError};

/// A write transaction: `BEGIN IMMEDIATE` (the write lock up front, so two writers never
/// deadlock upgrading a read lock), entered through the process's write gate, so writers of
/// this process queue in order instead of starving on SQLite's busy timeout.
///
/// Dropped without `commit`/`rollback` (an error, a cancelled future), it rolls back: on the
/// writer pool's connection sqlx queues the `ROLLBACK` (a next writer on another connection
/// may wait on SQLite's busy timeout for it briefly); on a [`QueueWriter`](super::queue::QueueWriter)'s connection the
/// write turn is given up only after the `ROLLBACK` ran.
pub struct WriteTx {
    conn: TxConn,
    turn: Option<OwnedMutexGuard<()>>,
}

enum TxConn {
    /// sqlx's transaction on the connection of the store's writer pool.
    Pooled(Option<Transaction<'static, Any>>),
    /// A transaction on a [`QueueWriter`](super::queue::QueueWriter)'s connection, opened and ended with SQL of its own.
    Dedicated(Option<OwnedMutexGuard<WriterConn>>),
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.end(true).await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.end(false).await
    }

    async fn end(mut self, commit: bool) -> Result<(), sqlx::Error> {
        match &mut self.conn {
            TxConn::Pooled(tx) => {
                let tx = tx.take().expect("transaction open");
                if commit {
                    tx.commit().await
                } else {
                    tx.rollback().await
                }
            }
            TxConn::Dedicated(w) => {
                let w = w.as_mut().expect("transaction open");
                let sql = if commit { "COMMIT" } else { "ROLLBACK" };
                super::query(sql).execute(&mut w.conn).await?;
                w.open = false;
                Ok(())
            }
        }
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        // A pooled transaction rolls itself back (sqlx queues the ROLLBACK on drop).
        let TxConn::Dedicated(slot) = &mut self.conn else {
            return;
        };
        let Some(mut w) = slot.take() else { return };
        if !w.open {
            return;
        }
        // Roll back before the write turn goes to the next writer, which may use another
        // connection and would otherwise wait for this one's write lock. Without a runtime
        // the flag stays set and the connection's next transaction rolls back first.
        let turn = self.turn.take();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                w.rollback().await;
                drop(turn);
            });
        }
    }
}

impl std::ops::Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match &self.conn {
            TxConn::Pooled(Some(tx)) => tx,
            TxConn::Dedicated(Some(w)) => &w.conn,
            _ => unreachable!("a WriteTx is consumed when it ends"),
        }
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match &mut self.conn {
            TxConn::Pooled(Some(tx)) => tx,
            TxConn::Dedicated(Some(w)) => &mut w.conn,
            _ => unreachable!("a WriteTx is consumed when it ends"),
        }
    }
}

/// The connection of a [`QueueWriter`](super::queue::QueueWriter).
pub(super) struct WriterConn {
    pub(super) conn: AnyConnection,
    /// A transaction may be open on it (set before `BEGIN` is sent, cleared when it ended).
    pub(super) open: bool,
}

impl WriterConn {
    pub(super) async fn rollback(&mut self) {
        // "no transaction is active" is fine: the BEGIN never ran, or an error rolled it back.
        if let Err(e) = super::query("ROLLBACK").execute(&mut self.conn).await {
            tracing::debug!(error = %e, "queue writer: rollback of an abandoned transaction");
        }
        self.open = false;
    }
}

impl WriteTx {
    /// A transaction on a [`QueueWriter`](super::queue::QueueWriter)'s connection whose `BEGIN IMMEDIATE` the caller's
    /// first statement sends.
    pub(super) fn dedicated(conn: OwnedMutexGuard<WriterConn>, turn: OwnedMutexGuard<()>) -> Self {
        WriteTx {
            conn: TxConn::Dedicated(Some(conn)),
            turn: Some(turn),
        }
    }
}

impl Store {
    /// Opens a write transaction.
    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let turn = self.write_gate.clone().lock_owned().await;
        let mut tx = self
            .writer
            .begin_with(self.backend.begin_write_sql())
            .await?;
        if let Some(lock) = self.backend.write_lock_sql() {
            super::query(lock).execute(&mut *tx).await?;
        }
        Ok(WriteTx {
            conn: TxConn::Pooled(Some(tx)),
            turn: Some(turn),
        })
    }
}
