//! Login attempts, the memory behind login throttling.
//!
//! Checking the limits and recording the attempt happen in one write transaction
//! ([`LoginAttemptTx`]): the attempt is reserved as a failure before the password is verified
//! and settled afterwards, so parallel requests cannot all pass the check before any of them
//! is recorded. The same questions can be asked on a read connection first
//! ([`Store::read_login_attempts`]), so a flood of already-blocked attempts does not queue for
//! the write lock.

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection};

use super::WriteTx;
use super::{Store, StoreError};

/// Which attempts a throttling question is about.
#[derive(Debug, Clone, Copy)]
pub enum AttemptKey<'a> {
    /// One e-mail from anywhere (the ceiling against distributed guessing).
    Email(&'a str),
    /// One IP, any e-mail.
    RemoteIp(&'a str),
    /// One e-mail from one IP.
    EmailAndIp(&'a str, &'a str),
}

/// Throttling questions on one connection: a plain read connection, or the write transaction
/// of a [`LoginAttemptTx`].
pub struct LoginAttempts {
    conn: Conn,
}

enum Conn {
    Read(PoolConnection<Any>),
    Write(WriteTx),
}

impl Conn {
    fn get(&mut self) -> &mut AnyConnection {
        match self {
            Conn::Read(c) => c,
            Conn::Write(tx) => tx,
        }
    }
}

/// An open check-and-reserve: its questions see every committed reservation, and no other
/// writer runs until it is reserved or dropped.
pub struct LoginAttemptTx(LoginAttempts);

impl std::ops::Deref for LoginAttemptTx {
    type Target = LoginAttempts;
    fn deref(&self) -> &LoginAttempts {
        &self.0
    }
}

impl std::ops::DerefMut for LoginAttemptTx {
    fn deref_mut(&mut self) -> &mut LoginAttempts {
        &mut self.0
    }
}

impl Store {
    /// Starts a check-and-reserve.
    pub async fn begin_login_attempt(&self) -> Result<LoginAttemptTx, StoreError> {
        Ok(LoginAttemptTx(LoginAttempts {
            conn: Conn::Write(self.begin_write().await?),
        }))
    }

    /// The same questions without the write lock (a first, cheap refusal; not authoritative).
    pub async fn read_login_attempts(&self) -> Result<LoginAttempts, StoreError> {
        Ok(LoginAttempts {
            conn: Conn::Read(self.pool.acquire().await?),
        })
    }

    /// Settles a reserved attempt: a success clears the failure it was reserved as.
    pub async fn settle_login_attempt(&self, id: &str, succeeded: bool) -> Result<(), StoreError> {
        if succeeded {
            let sql = "UPDATE login_attempts SET succeeded = 1 WHERE id = ?";
            self.write_attempt(sql, id).await?;
        }
        Ok(())
    }

    /// Withdraws a reserved attempt whose password was never verified (refused for load).
    pub async fn withdraw_login_attempt(&self, id: &str) -> Result<(), StoreError> {
        self.write_attempt("DELETE FROM login_attempts WHERE id = ?", id)
            .await
    }

    /// Runs `sql` on the attempt `id` in its own write transaction.
    async fn write_attempt(&self, sql: &str, id: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        crate::store::query(sql).bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

impl LoginAttempts {
    /// Timestamps of the newest `limit` failures (reserved attempts included) for `key` after
    /// `since` and after the key's most recent success, newest first.
    pub async fn recent_failures(
        &mut self,
        key: AttemptKey<'_>,
        since: &str,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let (filter, first, second) = match key {
            AttemptKey::Email(e) => ("email = ?", e, None),
            AttemptKey::RemoteIp(ip) => ("remote_ip = ?", ip, None),
            AttemptKey::EmailAndIp(e, ip) => ("email = ? AND remote_ip = ?", e, Some(ip)),
        };
        let sql = format!(
            "SELECT created_at FROM login_attempts
             WHERE {filter} AND succeeded = 0 AND created_at > ?
               AND created_at > COALESCE(
                 (SELECT MAX(created_at) FROM login_attempts WHERE {filter} AND succeeded = 1), '')
             ORDER BY created_at DESC LIMIT ?"
        );
        let mut q = crate::store::query_as::<(String,)>(&sql).bind(first);
        if let Some(s) = second {
            q = q.bind(s);
        }
        q = q.bind(since).bind(first);
        if let Some(s) = second {
            q = q.bind(s);
        }
        let rows = q.bind(limit).fetch_all(self.conn.get()).await?;
        Ok(rows.into_iter().map(|(t,)| t).collect())
    }

    /// Whether `email` logged in successfully from `ip` after `since`.
    pub async fn succeeded_from(
        &mut self,
        email: &str,
        ip: &str,
        since: &str,
    ) -> Result<bool, StoreError> {
        let row: Option<(i64,)> = crate::store::query_as(
            "SELECT 1 FROM login_attempts
             WHERE email = ? AND remote_ip = ? AND succeeded = 1 AND created_at > ? LIMIT 1",
        )
        .bind(email)
        .bind(ip)
        .bind(since)
        .fetch_optional(self.conn.get())
        .await?;
        Ok(row.is_some())
    }
}

impl LoginAttemptTx {
    /// Records the attempt as a failure (until settled) and commits.
    pub async fn reserve(
        self,
        id: &str,
        email: &str,
        remote_ip: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let Conn::Write(mut tx) = self.0.conn else {
            unreachable!("a LoginAttemptTx is made with a write transaction")
        };
        crate::store::query(
            "INSERT INTO login_attempts (id, email, remote_ip, succeeded, created_at)
             VALUES (?, ?, ?, 0, ?)",
        )
        .bind(id)
        .bind(email)
        .bind(remote_ip)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
