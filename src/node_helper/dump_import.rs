//! Imports a whole `mysqldump` stream (a backup's `db.sql.zst`: schema, rows, triggers,
//! routines, events, views) into one database over several connections.
//!
//! Why: a restore is bound by MariaDB parsing every INSERT on one connection (the `mysql <
//! dump` baseline of the restore benchmark). `db-copy` splits a clone's copy into a schema
//! dump and a row dump for that reason; a backup holds one dump, so here the one stream is
//! split as it arrives, keeping the order the dump's statements depend on:
//!
//! - the dump's leading session settings (the prelude: character set, time zone, `SQL_MODE`,
//!   unique and foreign-key checks off) open every connection;
//! - the statements between INSERTs (a table's `DROP`/`CREATE`, `LOCK TABLES`, views' stand-ins)
//!   run as one batch on their own connection, finished before the next INSERT is handed out,
//!   so a table exists before any of its rows arrive;
//! - each INSERT goes to whichever of the parallel connections is free ([`db_copy`]'s pool);
//! - at the first `DELIMITER` line (a trigger, routine or event: mysqldump writes a table's
//!   triggers right after its rows) every INSERT handed out so far is waited for, and the rest
//!   of the dump runs on one connection in its order, exactly as `mysql < dump` would run it:
//!   no trigger ever fires on a restored row it would not have fired on before;
//! - what follows the last INSERT (views, the closing settings) runs as a last batch.
//!
//! Every client runs with [`db_copy::CLIENT_ARGS`] (`--binary-mode`: only SQL, never a client
//! command from the stream).

use std::io::{self, Write};
use std::process::{Child, ChildStdin};

use anyhow::{bail, Context};

use super::db_copy::{self, LineBuffer, Pool};
use super::process::wait_child;

/// Where a dump goes: [`Importer::write`] it (any chunking), then [`Importer::finish`].
pub struct Importer {
    database: String,
    connections: usize,
    lines: LineBuffer,
    /// The session settings before the first statement.
    prelude: Vec<u8>,
    in_prelude: bool,
    /// Statements since the last INSERT, not yet run.
    pending: Vec<u8>,
    /// The INSERT being collected (MariaDB writes each row on its own line).
    statement: Vec<u8>,
    pool: Option<Pool>,
    /// After a `DELIMITER` line: the rest goes here, in order.
    sequential: Option<(Child, io::BufWriter<ChildStdin>)>,
}

impl Importer {
    /// An import into `database` (a validated identifier) over `connections` row connections.
    pub fn new(database: &str, connections: usize) -> Self {
        Importer {
            database: database.to_string(),
            connections: connections.max(1),
            lines: LineBuffer::default(),
            prelude: Vec::new(),
            in_prelude: true,
            pending: Vec::new(),
            statement: Vec::new(),
            pool: None,
            sequential: None,
        }
    }

    fn on_line(&mut self, line: &[u8]) -> io::Result<()> {
        if let Some((_, stdin)) = &mut self.sequential {
            return stdin.write_all(line);
        }
        if !self.statement.is_empty() {
            return self.insert_line(line);
        }
        let text = line.trim_ascii();
        if self.in_prelude {
            if is_prelude_line(text) {
                self.prelude.extend_from_slice(line);
                return Ok(());
            }
            self.in_prelude = false;
        }
        if line.starts_with(b"INSERT INTO ") && ends_statement(&self.pending) {
            self.run_pending()?;
            return self.insert_line(line);
        }
        if line.starts_with(b"DELIMITER ") && ends_statement(&self.pending) {
            return self.go_sequential(line);
        }
        self.pending.extend_from_slice(line);
        Ok(())
    }

    fn insert_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.statement.extend_from_slice(line);
        // Strings never hold a raw newline in a dump (escaped as \n): a line ending in ";" ends
        // the statement (rows end in "," or ";").
        if line.trim_ascii_end().ends_with(b";") {
            let statement = std::mem::take(&mut self.statement);
            if self.pool.is_none() {
                let pool = Pool::start(&self.database, self.connections, &self.prelude)
                    .map_err(io::Error::other)?;
                self.pool = Some(pool);
            }
            self.pool.as_ref().expect("started above").send(statement)?;
        }
        Ok(())
    }

    /// Runs the statements since the last INSERT on their own connection and waits for them.
    fn run_pending(&mut self) -> io::Result<()> {
        if self.pending.iter().all(u8::is_ascii_whitespace) {
            self.pending.clear();
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        let mut client = db_copy::mysql_client(&self.database).map_err(io::Error::other)?;
        let mut stdin = client.stdin.take().expect("piped stdin");
        let written = stdin
            .write_all(&self.prelude)
            .and_then(|()| stdin.write_all(&batch));
        drop(stdin);
        wait_child(client, "mysql").map_err(io::Error::other)?;
        written
    }

    /// Waits for every INSERT handed out, then runs the rest on one connection.
    fn go_sequential(&mut self, line: &[u8]) -> io::Result<()> {
        if let Some(pool) = self.pool.take() {
            pool.finish().map_err(io::Error::other)?;
        }
        let mut client = db_copy::mysql_client(&self.database).map_err(io::Error::other)?;
        let stdin = client.stdin.take().expect("piped stdin");
        let mut stdin = io::BufWriter::with_capacity(1 << 20, stdin);
        let pending = std::mem::take(&mut self.pending);
        let written = stdin
            .write_all(&self.prelude)
            .and_then(|()| stdin.write_all(&pending))
            .and_then(|()| stdin.write_all(line));
        self.sequential = Some((client, stdin));
        written
    }

    /// Ends the stream: the last line, the INSERTs still running, the last batch.
    pub fn finish(mut self) -> anyhow::Result<()> {
        if let Some(line) = self.lines.rest() {
            self.on_line(&line)?;
        }
        if let Some((client, stdin)) = self.sequential.take() {
            // The client's stdin closes here, before the wait.
            let flushed = stdin.into_inner().map(drop).map_err(|e| e.into_error());
            wait_child(client, "mysql")?;
            return flushed.context("feeding the mysql client");
        }
        if !self.statement.is_empty() {
            bail!("the dump ended inside an INSERT statement");
        }
        if let Some(pool) = self.pool.take() {
            pool.finish()?;
        }
        self.run_pending().context("the dump's last statements")?;
        Ok(())
    }

    /// Stops after a failure elsewhere: closes every connection without running what is
    /// pending and returns the first client failure, which says more than the broken pipe it
    /// caused (what was imported stays in the database, which the caller drops).
    pub fn stop(mut self) -> anyhow::Result<()> {
        let pool = self.pool.take().map_or(Ok(()), Pool::finish);
        let sequential = match self.sequential.take() {
            Some((client, stdin)) => {
                drop(stdin);
                wait_child(client, "mysql")
            }
            None => Ok(()),
        };
        pool.and(sequential)
    }
}

impl Write for Importer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut lines = std::mem::take(&mut self.lines);
        let fed = lines.feed(buf, |line| self.on_line(line));
        self.lines = lines;
        fed.map(|()| buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A line of the dump's opening settings: blank, a `--` comment or one whole `/*…*/`
/// directive (`/*!40101 SET NAMES utf8mb4 */;`, MariaDB's sandbox-mode marker).
fn is_prelude_line(text: &[u8]) -> bool {
    text.is_empty()
        || text.starts_with(b"--")
        || (text.starts_with(b"/*")
            && (text.ends_with(b"*/") || text.ends_with(b"*/;") || text.ends_with(b"*/ ;")))
}

/// Whether `pending` ends between statements (its last line that is not blank or a comment
/// ends in `;`), so a line starting with `INSERT INTO ` there starts a statement.
fn ends_statement(pending: &[u8]) -> bool {
    pending
        .split(|&b| b == b'\n')
        .map(<[u8]>::trim_ascii)
        .rfind(|l| !l.is_empty() && !l.starts_with(b"--"))
        .is_none_or(|l| l.ends_with(b";"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prelude_is_the_opening_settings() {
        for line in [
            "/*M!999999\\- enable the sandbox mode */",
            "/*!40101 SET NAMES utf8mb4 */;",
            "/*!50003 SET sql_mode = '' */ ;",
            "-- MariaDB dump",
            "",
        ] {
            assert!(is_prelude_line(line.as_bytes()), "{line}");
        }
        for line in [
            "DROP TABLE IF EXISTS `a`;",
            "/*!50001 CREATE VIEW `v` AS SELECT",
        ] {
            assert!(!is_prelude_line(line.as_bytes()), "{line}");
        }
    }

    #[test]
    fn an_insert_starts_a_statement_only_between_statements() {
        assert!(ends_statement(b""));
        assert!(ends_statement(
            b"CREATE TABLE `a` (\n  `id` int\n);\n\n-- c\n"
        ));
        assert!(!ends_statement(b"/*!50001 CREATE VIEW `v` AS SELECT\n"));
    }
}
