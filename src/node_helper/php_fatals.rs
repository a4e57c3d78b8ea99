//! `pressluft node php-fatals` (issue 16): the PHP fatal errors an environment logged since a
//! moment — a safe-update run's step 6 asks it for the temporary environment after the update,
//! so an update that breaks a page it did not screenshot (or breaks it in a way a screenshot does
//! not show) still holds the run.
//!
//! The log is the environment's PHP-FPM pool's `error_log`, `<env_root>/logs/php-error.log`
//! (the php-fpm-pool role's template). Its path is derived here from `env_root`, and `env_root`
//! must be the one the control plane derives from the ids (`/var/www/sites/<site>/<env>`): the
//! spec cannot make root read another file. The file is written by the environment's own user,
//! so it is opened without following links (every component, [`nofollow`]), non-blocking, and
//! read only when it is a regular file; only its last [`TAIL_BYTES`] are read.
//!
//! A line counts when it starts with PHP's timestamp (`[03-Dec-2026 14:05:01 UTC]`) at or after
//! `since` and holds `PHP Fatal error` or `PHP Parse error`. WordPress sets PHP's zone to UTC
//! and so does Debian's php.ini; a line stamped in another zone cannot be placed in time here and
//! counts (a held run is better than a missed fatal). Output: the messages without the
//! timestamp, whitespace runs collapsed, each cut to [`MAX_CHARS`] characters, duplicates once,
//! the first [`MAX_FATALS`] — just the log's lines: no secrets are added.

use std::ffi::OsStr;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{bail, Context};
use serde::Serialize;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::nofollow;
use super::spec::{self, PhpFatalsSpec};

/// The log below the environment root (the pool's `php_admin_value[error_log]`).
pub const LOG_DIR: &str = "logs";
pub const LOG_FILE: &str = "php-error.log";
/// How much of the log's end is read.
pub const TAIL_BYTES: u64 = 4 * 1024 * 1024;
/// How many fatal errors are reported at most.
pub const MAX_FATALS: usize = 20;
/// How long one reported line may be (characters).
pub const MAX_CHARS: usize = 300;

/// What `php-fatals` prints.
#[derive(Debug, Serialize, PartialEq)]
pub struct PhpFatals {
    pub fatals: Vec<String>,
}

/// `pressluft node php-fatals`.
pub fn run() -> anyhow::Result<()> {
    spec::run_command(check, |spec: &PhpFatalsSpec, since: &OffsetDateTime| {
        Ok(PhpFatals {
            fatals: fatals_in(Path::new(&spec.env_root), *since)?,
        })
    })
}

/// The names are the derived ones and `since` is RFC 3339.
fn check(spec: &PhpFatalsSpec) -> anyhow::Result<OffsetDateTime> {
    check_names(&spec.environment_id, &spec.env_root, &spec.env_user)?;
    OffsetDateTime::parse(&spec.since, &time::format_description::well_known::Rfc3339)
        .map_err(|_| anyhow::anyhow!("since is not an RFC 3339 time"))
}

/// `env_root` and `env_user` are exactly the ones derived from the environment id
/// (layout.rs), so the log's path cannot point anywhere else.
pub fn check_names(environment_id: &str, env_root: &str, env_user: &str) -> anyhow::Result<()> {
    let uuid = |s: &str| uuid::Uuid::parse_str(s).is_ok() && s.len() == 36;
    if !uuid(environment_id) {
        bail!("environment_id is not a UUID");
    }
    if env_user != format!("pl_{}", &environment_id[..8]) {
        bail!("env_user is not the environment's user");
    }
    let rest = env_root
        .strip_prefix("/var/www/sites/")
        .context("env_root is not under /var/www/sites")?;
    match rest.split_once('/') {
        Some((site, env)) if uuid(site) && env == environment_id => Ok(()),
        _ => bail!("env_root is not the environment's root"),
    }
}

/// The fatal errors in `<env_root>/logs/php-error.log` since `since` (none when the log or its
/// directory does not exist yet). A link anywhere on the way, or a log that is not a regular
/// file, is an error.
pub fn fatals_in(env_root: &Path, since: OffsetDateTime) -> anyhow::Result<Vec<String>> {
    let root =
        nofollow::open_dir(env_root).with_context(|| format!("opening {}", env_root.display()))?;
    let logs = match nofollow::open_dir_at(root.as_fd(), OsStr::new(LOG_DIR)) {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => bail!("opening {LOG_DIR}/ without following links: {e}"),
    };
    let fd = match nofollow::open_at(logs.as_fd(), OsStr::new(LOG_FILE), libc::O_NONBLOCK) {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => bail!("opening {LOG_DIR}/{LOG_FILE} without following links: {e}"),
    };
    let mut file = std::fs::File::from(fd);
    let meta = file.metadata().context("reading the log's metadata")?;
    if !meta.file_type().is_file() {
        bail!("{LOG_DIR}/{LOG_FILE} is not a regular file");
    }
    let start = meta.len().saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(TAIL_BYTES).read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    // A tail that starts inside a line: that line is incomplete.
    let text = if start > 0 {
        text.split_once('\n').map_or("", |(_, rest)| rest)
    } else {
        &text
    };
    Ok(fatals(text, since))
}

/// The fatal-error lines of `log` logged at or after `since` (see the module's rules).
pub fn fatals(log: &str, since: OffsetDateTime) -> Vec<String> {
    // PHP stamps whole seconds: a fatal in the second `since` falls in counts.
    let since = since.replace_nanosecond(0).unwrap_or(since);
    let mut out: Vec<String> = Vec::new();
    for line in log.lines() {
        let Some((stamp, message)) = split_stamp(line) else {
            continue;
        };
        if !(message.contains("PHP Fatal error") || message.contains("PHP Parse error")) {
            continue;
        }
        if let Some(at) = stamp {
            if at < since {
                continue;
            }
        }
        let message: String = message.split_whitespace().collect::<Vec<_>>().join(" ");
        let message: String = message.chars().take(MAX_CHARS).collect();
        if !out.contains(&message) {
            out.push(message);
        }
        if out.len() == MAX_FATALS {
            break;
        }
    }
    out
}

/// `[03-Dec-2026 14:05:01 UTC] message` → (the time when the zone is UTC, else `None`; the
/// message). `None` for a line without PHP's timestamp (a stack trace's continuation).
fn split_stamp(line: &str) -> Option<(Option<OffsetDateTime>, &str)> {
    let rest = line.strip_prefix('[')?;
    let (stamp, message) = rest.split_once("] ")?;
    let (datetime, zone) = stamp.rsplit_once(' ')?;
    let format = time::macros::format_description!(
        "[day]-[month repr:short]-[year] [hour]:[minute]:[second]"
    );
    let at = PrimitiveDateTime::parse(datetime, &format).ok()?;
    let at = matches!(
        zone,
        "UTC" | "GMT" | "Z" | "Etc/UTC" | "UCT" | "Universal" | "Zulu"
    )
    .then(|| at.assume_utc());
    Some((at, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> OffsetDateTime {
        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    }

    const LOG: &str = "\
[03-Dec-2026 14:04:59 UTC] PHP Fatal error:  Uncaught Error: old in /var/www/x/old.php:3
[03-Dec-2026 14:05:00 UTC] PHP Warning:  Undefined variable $a in /var/www/x/a.php on line 2
[03-Dec-2026 14:05:01 UTC] PHP Fatal error:  Uncaught Error: Call to undefined function f() in /var/www/x/p.php:12
Stack trace:
#0 /var/www/x/wp-settings.php(560): include_once()
#1 {main}
  thrown in /var/www/x/p.php on line 12
[03-Dec-2026 14:05:02 UTC] PHP Fatal error:  Uncaught Error: Call to undefined function f() in /var/www/x/p.php:12
[03-Dec-2026 14:06:00 UTC] PHP Parse error:  syntax error, unexpected token \"}\" in /var/www/x/q.php on line 4
[03-Dec-2026 15:06:00 Europe/Berlin] PHP Fatal error:  zoned in /var/www/x/z.php:1
";

    #[test]
    fn fatal_lines_since_the_moment_count() {
        let found = fatals(LOG, at("2026-12-03T14:05:01Z"));
        assert_eq!(
            found,
            vec![
                "PHP Fatal error: Uncaught Error: Call to undefined function f() in /var/www/x/p.php:12",
                "PHP Parse error: syntax error, unexpected token \"}\" in /var/www/x/q.php on line 4",
                // Another zone cannot be placed in time: it counts.
                "PHP Fatal error: zoned in /var/www/x/z.php:1",
            ]
        );
        // Before everything: the old fatal too; after everything: only the zoned one.
        assert_eq!(fatals(LOG, at("2026-12-03T14:00:00Z")).len(), 4);
        assert_eq!(
            fatals(LOG, at("2026-12-03T15:00:00+00:00")),
            vec!["PHP Fatal error: zoned in /var/www/x/z.php:1"]
        );
        // An offset in `since` is honoured: 15:05:01+01:00 is 14:05:01 UTC.
        assert_eq!(fatals(LOG, at("2026-12-03T15:05:01+01:00")).len(), 3);
        // PHP's stamps are whole seconds: a fatal within the second of `since` counts.
        assert_eq!(fatals(LOG, at("2026-12-03T14:05:01.900Z")).len(), 3);
    }

    #[test]
    fn lines_are_cut_and_counted() {
        let long = format!(
            "[03-Dec-2026 14:05:01 UTC] PHP Fatal error:  {}\n",
            "é".repeat(400)
        );
        let found = fatals(&long, at("2026-12-03T14:00:00Z"));
        assert_eq!(found[0].chars().count(), MAX_CHARS);
        let many: String = (0..50)
            .map(|i| format!("[03-Dec-2026 14:05:01 UTC] PHP Fatal error:  number {i}\n"))
            .collect();
        let found = fatals(&many, at("2026-12-03T14:00:00Z"));
        assert_eq!(found.len(), MAX_FATALS);
        assert_eq!(found[0], "PHP Fatal error: number 0");
    }

    #[test]
    fn timestamps_are_php_s() {
        let (t, m) = split_stamp("[03-Dec-2026 14:05:01 UTC] PHP Fatal error: x").unwrap();
        assert_eq!(t, Some(at("2026-12-03T14:05:01Z")));
        assert_eq!(m, "PHP Fatal error: x");
        assert!(split_stamp("PHP Fatal error: x").is_none());
        assert!(split_stamp("[garbage] PHP Fatal error: x").is_none());
        assert!(split_stamp("[31-Foo-2026 14:05:01 UTC] PHP Fatal error: x").is_none());
        // Only a line that starts with the stamp: no fatals without it.
        assert!(fatals("#0 PHP Fatal error: x\n", at("2000-01-01T00:00:00Z")).is_empty());
    }

    #[test]
    fn only_derived_names_pass() {
        let env = "0a1b2c3d-1111-4222-8333-444455556666";
        let root = format!("/var/www/sites/9f8e7d6c-1111-4222-8333-444455556666/{env}");
        assert!(check_names(env, &root, "pl_0a1b2c3d").is_ok());
        assert!(check_names(env, &root, "root").is_err());
        assert!(check_names(env, "/etc", "pl_0a1b2c3d").is_err());
        assert!(check_names(
            env,
            &format!("/var/www/sites/../../etc/{env}"),
            "pl_0a1b2c3d"
        )
        .is_err());
        assert!(check_names(env, &format!("{root}/logs"), "pl_0a1b2c3d").is_err());
        assert!(check_names("../x", &root, "pl_../x").is_err());
    }
}
