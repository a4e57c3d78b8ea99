//! `pressluft node db-copy`: copies one database into another on the same MariaDB server with
//! the serialized-safe URL rewrite (backups-restore-promotion.md §8) applied to every string.
//!
//! Why not `mysqldump | search-replace | mysql`: the import is the bottleneck of a clone (the
//! server parses every INSERT on one connection). Here the same dump is split:
//!
//! 1. **schema** — `mysqldump --no-data --skip-triggers`, rewritten, into one `mysql` client
//!    (tables and views exist before any row arrives);
//! 2. **rows** — one `mysqldump --single-transaction --no-create-info` (one consistent snapshot of
//!    every table, no locks), rewritten, its INSERT statements handed to `connections` parallel
//!    `mysql` clients (each first runs the dump's session prelude: character set, time zone,
//!    `SQL_MODE`, foreign-key checks off);
//! 3. **triggers** — created last, as mysqldump itself orders them, so they never fire on copied
//!    rows.
//!
//! The row dump is made with `--skip-add-locks --skip-disable-keys`, so between INSERTs it holds
//! only comments and session `SET`s; anything else stops the copy with an error rather than
//! being dropped. Database names are validated identifiers, passed as arguments, never through a
//! shell.
//!
//! Table and column names come from the site's database, i.e. from its PHP: a name holding a
//! newline and a client command (`\! touch /tmp/x`) must never reach the `mysql` client as a
//! command (issue 9). Dumps are made `--skip-comments` (older `mysqldump` versions wrote names
//! unescaped into `-- Table structure for table …` comments, where the next line stood outside
//! any quote), and every client runs with [`CLIENT_ARGS`]: `--binary-mode` turns off the
//! client's own commands (`\!`, `source`, `\.`, …) in piped input, so the stream is only SQL.

use std::io::{self, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{bail, Context};
use search_replace::{Replacements, Report, Rewriter};

use super::database::{self, is_identifier};
use super::process::wait_child;

/// What to copy.
#[derive(Debug, Clone)]
pub struct Request {
    pub source_db: String,
    pub target_db: String,
    /// URL replaced in every string (trailing slash ignored).
    pub from: String,
    pub to: String,
    /// Parallel `mysql` clients for the rows (at least 1).
    pub connections: usize,
}

/// Default number of row connections: two per CPU, between 2 and 8 (a connection waits on
/// InnoDB part of the time; on 2 cores 4 connections import a 100 MB dump ~10 % faster than 2).
pub fn default_connections() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 2)
        .unwrap_or(2)
        .clamp(2, 8)
}

/// `pressluft node db-copy`: copies and prints the rewrite summary on stderr.
pub fn run(request: &Request) -> anyhow::Result<()> {
    let report = copy(request)?;
    eprintln!("{report}");
    Ok(())
}

const DUMP_ARGS: [&str; 3] = [
    "--single-transaction",
    "--default-character-set=utf8mb4",
    "--skip-comments",
];

/// The `mysql` client's arguments for a dump: `--binary-mode` makes it run SQL only, no client
/// command (`\!` and the like) whatever the input holds.
pub const CLIENT_ARGS: [&str; 2] = ["--default-character-set=utf8mb4", "--binary-mode"];

/// Copies `source_db` into `target_db` (tables in the target with the same names are replaced).
pub fn copy(request: &Request) -> anyhow::Result<Report> {
    copy_excluding(request, &[])
}

/// As [`copy`], without the tables `exclude` of the source (full names, validated identifiers;
/// promotion leaves the preset's protected tables out).
pub fn copy_excluding(request: &Request, exclude: &[String]) -> anyhow::Result<Report> {
    if let Some(bad) = exclude.iter().find(|t| !is_identifier(t)) {
        bail!("invalid table name {bad:?}");
    }
    let ignored: Vec<String> = exclude
        .iter()
        .map(|t| format!("--ignore-table={}.{t}", request.source_db))
        .collect();
    let ignored: Vec<&str> = ignored.iter().map(String::as_str).collect();
    for name in [&request.source_db, &request.target_db] {
        if !is_identifier(name) {
            bail!("invalid database name {name:?}");
        }
    }
    if request.source_db == request.target_db {
        bail!("the source and target databases are the same");
    }
    let replacements =
        Replacements::url(&request.from, &request.to).context("invalid --from/--to")?;
    let mut rewriter = Rewriter::new(replacements);

    let mut report = pipe(
        &mut rewriter,
        &[&["--no-data", "--skip-triggers"], ignored.as_slice()].concat(),
        &request.source_db,
        &request.target_db,
    )
    .context("copying the schema")?;
    report.merge(copy_rows(&mut rewriter, request, &ignored).context("copying the rows")?);
    report.merge(
        pipe(
            &mut rewriter,
            &[
                &["--no-data", "--no-create-info", "--triggers"],
                ignored.as_slice(),
            ]
            .concat(),
            &request.source_db,
            &request.target_db,
        )
        .context("copying the triggers")?,
    );
    Ok(report)
}

fn mysqldump(extra: &[&str], database: &str) -> anyhow::Result<Child> {
    database::mysqldump(&DUMP_ARGS, extra, database)
}

/// A `mysql` client on `database` ([`CLIENT_ARGS`]) reading SQL from its stdin.
pub(crate) fn mysql_client(database: &str) -> anyhow::Result<Child> {
    Command::new("mysql")
        .args(CLIENT_ARGS)
        .arg("--database")
        .arg(database)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the mysql client")
}

/// `mysqldump <extra> source | rewrite | mysql target`.
fn pipe(
    rewriter: &mut Rewriter,
    extra: &[&str],
    source: &str,
    target: &str,
) -> anyhow::Result<Report> {
    let mut dump = mysqldump(extra, source)?;
    let mut client = mysql_client(target)?;
    let input = dump.stdout.take().context("mysqldump stdout")?;
    let output = client.stdin.take().context("mysql stdin")?;
    let rewritten = rewriter.rewrite(input, output);
    // The client's stdin is closed (dropped by `rewrite`); report the first process failure
    // before a broken-pipe error it caused.
    wait_child(dump, "mysqldump")?;
    wait_child(client, "mysql")?;
    rewritten.context("rewriting the dump")
}

fn copy_rows(
    rewriter: &mut Rewriter,
    request: &Request,
    ignored: &[&str],
) -> anyhow::Result<Report> {
    let mut dump = mysqldump(
        &[
            &[
                "--no-create-info",
                "--skip-triggers",
                "--skip-add-locks",
                "--skip-disable-keys",
            ],
            ignored,
        ]
        .concat(),
        &request.source_db,
    )?;
    let input = dump.stdout.take().context("mysqldump stdout")?;
    let mut router = Router::new(LazyPool {
        target_db: request.target_db.clone(),
        connections: request.connections.max(1),
        pool: None,
    });
    let rewritten = rewriter.rewrite(input, &mut router);
    // After a rewrite error the router may hold a partial statement: close the pool anyway.
    let routed = match router.end() {
        Ok(sink) => sink.pool.map_or(Ok(()), Pool::finish),
        Err(e) => Err(e),
    };
    wait_child(dump, "mysqldump")?;
    routed?;
    rewritten.context("rewriting the dump")
}

/// Where the router delivers statements.
trait Sink {
    /// One complete INSERT statement; `prelude` is everything the dump held before the first.
    fn statement(&mut self, prelude: &[u8], statement: Vec<u8>) -> io::Result<()>;
}

/// The production sink: starts the connection pool at the first statement.
struct LazyPool {
    target_db: String,
    connections: usize,
    pool: Option<Pool>,
}

impl Sink for LazyPool {
    fn statement(&mut self, prelude: &[u8], statement: Vec<u8>) -> io::Result<()> {
        if self.pool.is_none() {
            let pool = Pool::start(&self.target_db, self.connections, prelude)
                .map_err(io::Error::other)?;
            self.pool = Some(pool);
        }
        self.pool.as_ref().expect("started above").send(statement)
    }
}

/// A byte stream written in any chunks, cut into lines (each with its `\n`): only an
/// unfinished line is buffered. The routers of `db-copy` and of the restore's dump import
/// ([`super::dump_import`]) read dumps through it.
#[derive(Default)]
pub(crate) struct LineBuffer {
    line: Vec<u8>,
}

impl LineBuffer {
    /// Hands every complete line of `buf` (joined with what was buffered) to `on_line`.
    pub(crate) fn feed(
        &mut self,
        buf: &[u8],
        mut on_line: impl FnMut(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut rest = buf;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let (head, tail) = rest.split_at(i + 1);
            if self.line.is_empty() {
                on_line(head)?;
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(head);
                on_line(&line)?;
            }
            rest = tail;
        }
        self.line.extend_from_slice(rest);
        Ok(())
    }

    /// The last line when the stream did not end with a newline.
    pub(crate) fn rest(&mut self) -> Option<Vec<u8>> {
        (!self.line.is_empty()).then(|| std::mem::take(&mut self.line))
    }
}

/// Splits the rewritten row dump into statements: the prelude (everything before the first
/// INSERT) goes to every connection first, each INSERT to whichever connection is free.
struct Router<S: Sink> {
    sink: S,
    lines: LineBuffer,
    /// The INSERT being collected (it may span lines: MariaDB puts each row on its own line).
    statement: Vec<u8>,
    prelude: Vec<u8>,
    /// An INSERT was seen: what follows is no longer prelude.
    started: bool,
}

impl<S: Sink> Router<S> {
    fn new(sink: S) -> Self {
        Router {
            sink,
            lines: LineBuffer::default(),
            statement: Vec::new(),
            prelude: Vec::new(),
            started: false,
        }
    }

    fn on_line(&mut self, line: &[u8]) -> io::Result<()> {
        if self.statement.is_empty() && !line.starts_with(b"INSERT INTO ") {
            return self.between_statements(line);
        }
        self.statement.extend_from_slice(line);
        // Strings never hold a raw newline in a dump (escaped as \n), so a line ending in ";"
        // ends the statement (rows end in "," or ";").
        if line.trim_ascii_end().ends_with(b";") {
            self.started = true;
            let statement = std::mem::take(&mut self.statement);
            self.sink.statement(&self.prelude, statement)?;
        }
        Ok(())
    }

    fn between_statements(&mut self, line: &[u8]) -> io::Result<()> {
        if !self.started {
            self.prelude.extend_from_slice(line);
            return Ok(());
        }
        let text = line.trim_ascii();
        let ignorable = text.is_empty()
            || text.starts_with(b"--")
            || (text.starts_with(b"/*!") && text.windows(5).any(|w| w == b" SET "));
        if ignorable {
            return Ok(());
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "unexpected statement between the rows of the dump: {}",
                String::from_utf8_lossy(&text[..text.len().min(80)])
            ),
        ))
    }

    /// Ends the stream (a last line without a newline is processed) and returns the sink.
    fn end(mut self) -> anyhow::Result<S> {
        if let Some(line) = self.lines.rest() {
            self.on_line(&line)?;
        }
        if !self.statement.is_empty() {
            bail!("the dump ended inside an INSERT statement");
        }
        Ok(self.sink)
    }
}

impl<S: Sink> Write for Router<S> {
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

/// The parallel `mysql` clients, fed from one bounded queue (a busy connection takes the next
/// statement later; memory stays bounded by the queue length times the largest statement).
pub(crate) struct Pool {
    sender: Option<SyncSender<Vec<u8>>>,
    workers: Vec<JoinHandle<anyhow::Result<()>>>,
    failed: Arc<AtomicBool>,
}

impl Pool {
    pub(crate) fn start(
        target_db: &str,
        connections: usize,
        prelude: &[u8],
    ) -> anyhow::Result<Pool> {
        let (sender, receiver) = sync_channel::<Vec<u8>>(connections * 2);
        let receiver = Arc::new(Mutex::new(receiver));
        let failed = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::with_capacity(connections);
        for _ in 0..connections {
            let mut client = mysql_client(target_db)?;
            let stdin = client.stdin.take().context("mysql stdin")?;
            let (receiver, failed, prelude) = (receiver.clone(), failed.clone(), prelude.to_vec());
            workers.push(std::thread::spawn(move || {
                let fed = feed(stdin, &prelude, &receiver);
                let done = wait_child(client, "mysql");
                if fed.is_err() || done.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                done?;
                fed.context("feeding the mysql client")
            }));
        }
        Ok(Pool {
            sender: Some(sender),
            workers,
            failed,
        })
    }

    pub(crate) fn send(&self, statement: Vec<u8>) -> io::Result<()> {
        let broken = || io::Error::new(io::ErrorKind::BrokenPipe, "a mysql connection failed");
        if self.failed.load(Ordering::SeqCst) {
            return Err(broken());
        }
        let sender = self.sender.as_ref().expect("sender lives until finish");
        sender.send(statement).map_err(|_| broken())
    }

    pub(crate) fn finish(mut self) -> anyhow::Result<()> {
        drop(self.sender.take());
        let mut first_error = None;
        for worker in self.workers.drain(..) {
            let outcome = worker
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a copy thread panicked")));
            if let Err(e) = outcome {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

fn feed(stdin: ChildStdin, prelude: &[u8], receiver: &Mutex<Receiver<Vec<u8>>>) -> io::Result<()> {
    let mut stdin = io::BufWriter::with_capacity(256 << 10, stdin);
    stdin.write_all(prelude)?;
    loop {
        // Hold the lock only while taking the next statement.
        let next = receiver
            .lock()
            .map_err(|_| io::Error::other("queue poisoned"))?
            .recv();
        match next {
            Ok(statement) => stdin.write_all(&statement)?,
            Err(_) => break, // sender dropped: the dump is complete
        }
    }
    stdin.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        prelude: Vec<u8>,
        statements: Vec<Vec<u8>>,
    }

    impl Sink for Collect {
        fn statement(&mut self, prelude: &[u8], statement: Vec<u8>) -> io::Result<()> {
            self.prelude = prelude.to_vec();
            self.statements.push(statement);
            Ok(())
        }
    }

    /// Feeds `input` in small chunks (statements and lines cross chunk boundaries).
    fn split(input: &[u8]) -> anyhow::Result<Collect> {
        let mut router = Router::new(Collect::default());
        for chunk in input.chunks(7) {
            router.write_all(chunk)?;
        }
        router.end()
    }

    #[test]
    fn splits_multi_line_inserts_and_keeps_the_prelude() {
        let dump = b"/*!40101 SET NAMES utf8mb4 */;\n-- c\nINSERT INTO `a` VALUES\n(1,'x;'),\n(2,'y');\n/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n\nINSERT INTO `b` VALUES (3,'z');\n-- Dump completed";
        let got = split(dump).unwrap();
        assert_eq!(got.prelude, b"/*!40101 SET NAMES utf8mb4 */;\n-- c\n");
        assert_eq!(
            got.statements,
            vec![
                b"INSERT INTO `a` VALUES\n(1,'x;'),\n(2,'y');\n".to_vec(),
                b"INSERT INTO `b` VALUES (3,'z');\n".to_vec()
            ]
        );
    }

    #[test]
    fn refuses_unexpected_statements_between_rows_and_a_cut_dump() {
        let err = split(b"INSERT INTO `a` VALUES (1);\nDROP TABLE `a`;\n")
            .err()
            .unwrap();
        assert!(err.to_string().contains("DROP TABLE"), "{err}");
        let err = split(b"INSERT INTO `a` VALUES\n(1),\n(2)").err().unwrap();
        assert!(err.to_string().contains("inside an INSERT"), "{err}");
    }
}
