//! The parallel dump import of restores (src/node_helper/dump_import.rs) against the real
//! MariaDB: a database with many INSERT statements per table, a trigger that would change every
//! row it fires on, a table whose rows come after that trigger in the dump, a view, a stored
//! procedure and an event, dumped with the backup's own options, imported over four connections
//! and with `mysql < dump` side by side: the same tables (`CHECKSUM TABLE`), no row touched by
//! the trigger, the trigger, view, routine and event present. Runs as root with PRESSLUFT_E2E=1
//! (MariaDB of the provisioned node; only its own scratch databases).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use pressluft::node_helper::backup::create::DUMP_ARGS;
use pressluft::node_helper::dump_import::Importer;

mod node_common;
use node_common::mysql;

const SOURCE: &str = "pl_dump_import_src";
const PARALLEL: &str = "pl_dump_import_par";
const SERIAL: &str = "pl_dump_import_ser";

fn ready() -> bool {
    // SAFETY: no arguments, no memory.
    if unsafe { libc::geteuid() } != 0 || std::env::var_os("PRESSLUFT_E2E").is_none() {
        eprintln!("skipped: needs root and PRESSLUFT_E2E=1 (a provisioned node)");
        return false;
    }
    let _ = Command::new("sh")
        .args([
            "-c",
            "service mariadb status >/dev/null 2>&1 || service mariadb start >/dev/null 2>&1",
        ])
        .status();
    Path::new("/run/mysqld/mysqld.sock").exists()
}

/// One query's answer, trimmed ([`mysql`] asserts it succeeded).
fn value(sql: &str) -> String {
    mysql(sql).trim().to_string()
}

fn seed() {
    let mut sql = format!(
        "DROP DATABASE IF EXISTS {SOURCE}; CREATE DATABASE {SOURCE} CHARACTER SET utf8mb4; USE {SOURCE};
         CREATE TABLE posts (id INT PRIMARY KEY, body LONGTEXT, note VARCHAR(20) DEFAULT 'dumped');
         CREATE TABLE later (id INT PRIMARY KEY, v VARCHAR(20));
         CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(40));
         CREATE VIEW recent AS SELECT id, note FROM posts WHERE id > 10;
         CREATE PROCEDURE count_posts() SELECT COUNT(*) FROM posts;
         CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM audit;\n"
    );
    // Many statements per table (mysqldump cuts them at --net-buffer-length): rows with text
    // that looks like SQL, quotes, semicolons and escaped newlines.
    for chunk in 0..40 {
        sql.push_str("INSERT INTO posts (id, body) VALUES ");
        let rows: Vec<String> = (0..50)
            .map(|i| {
                let id = chunk * 50 + i + 1;
                format!("({id}, CONCAT(REPEAT('é; INSERT INTO x VALUES (1);\\n', 60), '{id}'))")
            })
            .collect();
        sql.push_str(&rows.join(","));
        sql.push_str(";\n");
    }
    sql.push_str(
        "INSERT INTO later VALUES (1, 'a'), (2, 'b');
         CREATE TRIGGER posts_touch BEFORE INSERT ON posts FOR EACH ROW SET NEW.note = 'fired';
         CREATE TRIGGER later_audit AFTER INSERT ON later FOR EACH ROW INSERT INTO audit (what) VALUES (CONCAT('later ', NEW.id));\n",
    );
    mysql(&sql);
}

fn dump() -> Vec<u8> {
    let out = Command::new("mysqldump")
        .args(DUMP_ARGS)
        .arg("--net-buffer-length=16384")
        .arg(SOURCE)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn checksums(db: &str) -> String {
    value(&format!(
        "CHECKSUM TABLE {db}.posts, {db}.later, {db}.audit EXTENDED"
    ))
    .lines()
    .map(|l| l.split_once('\t').map_or(l, |(_, sum)| sum).to_string())
    .collect::<Vec<_>>()
    .join(" ")
}

#[test]
fn a_dump_imported_over_several_connections_equals_the_serial_import() {
    if !ready() {
        return;
    }
    seed();
    let dump = dump();
    let statements = dump
        .split(|&b| b == b'\n')
        .filter(|l| l.starts_with(b"INSERT INTO `posts`"))
        .count();
    assert!(
        statements > 10,
        "the rows span many statements ({statements})"
    );
    assert!(
        dump.windows(9).any(|w| w == b"DELIMITER"),
        "the dump holds triggers and routines"
    );

    for db in [PARALLEL, SERIAL] {
        mysql(&format!(
            "DROP DATABASE IF EXISTS {db}; CREATE DATABASE {db} CHARACTER SET utf8mb4;"
        ));
    }
    let mut importer = Importer::new(PARALLEL, 4);
    // Odd chunk sizes: lines and statements cross the writes.
    for chunk in dump.chunks(4093) {
        importer.write_all(chunk).unwrap();
    }
    importer.finish().unwrap();

    let mut serial = Command::new("mysql")
        .args(["--binary-mode", "--default-character-set=utf8mb4", SERIAL])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    serial.stdin.take().unwrap().write_all(&dump).unwrap();
    assert!(serial.wait().unwrap().success());

    assert_eq!(checksums(PARALLEL), checksums(SERIAL));
    assert_eq!(checksums(PARALLEL), checksums(SOURCE));
    assert_eq!(
        value(&format!(
            "SELECT COUNT(*) FROM {PARALLEL}.posts WHERE note = 'fired'"
        )),
        "0",
        "no restored row went through the trigger"
    );
    assert_eq!(
        value(&format!("SELECT COUNT(*) FROM {PARALLEL}.posts")),
        "2000"
    );
    for (kind, query) in [
        (
            "trigger",
            "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = '{db}'",
        ),
        (
            "view",
            "SELECT COUNT(*) FROM information_schema.VIEWS WHERE TABLE_SCHEMA = '{db}'",
        ),
        (
            "routine",
            "SELECT COUNT(*) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = '{db}'",
        ),
        (
            "event",
            "SELECT COUNT(*) FROM information_schema.EVENTS WHERE EVENT_SCHEMA = '{db}'",
        ),
    ] {
        assert_eq!(
            value(&query.replace("{db}", PARALLEL)),
            value(&query.replace("{db}", SOURCE)),
            "{kind}s"
        );
    }
    assert_eq!(
        value(&format!("SELECT COUNT(*) FROM {PARALLEL}.recent")),
        "1990"
    );

    // A statement the server refuses fails the import with the client's message.
    mysql(&format!(
        "DROP DATABASE IF EXISTS {PARALLEL}; CREATE DATABASE {PARALLEL};"
    ));
    let mut importer = Importer::new(PARALLEL, 2);
    importer
        .write_all(b"CREATE TABLE t (id INT PRIMARY KEY);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (1);\n")
        .unwrap();
    let err = importer.finish().unwrap_err();
    assert!(format!("{err:#}").contains("Duplicate entry"), "{err:#}");

    for db in [SOURCE, PARALLEL, SERIAL] {
        mysql(&format!("DROP DATABASE IF EXISTS {db}"));
    }
}
