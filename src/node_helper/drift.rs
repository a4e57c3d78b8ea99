//! `pressluft node drift-checksums`: the checksums a drift baseline or drift check compares
//! (backups-restore-promotion.md §3): per table its row count and `CHECKSUM TABLE` value (or
//! `null` when the table does not exist), per path a digest of its file listing.
//!
//! `pressluft node drift-check` (the `drift_check` job's one helper call): the same checksums
//! of production's tables and paths for one preset, spec on stdin ([`DriftCheckSpec`]), the
//! table prefix read from production's `wp-config.php` through the PHP bridge. The comparison
//! with the baseline is the control plane's ([`crate::domain::drift::differences`]).
//!
//! The database is reached with the MariaDB client as the invoking user (root on a node:
//! unix-socket authentication), the database name from `PRESSLUFT_DB_NAME` (or the spec);
//! table names are validated identifiers, never interpolated from anything else.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Serialize;

use super::database::{is_identifier, mysql_lines};
use super::spec::DriftCheckSpec;
use super::{bridge, database, nofollow, spec};
use sha2::{Digest, Sha256};

/// The command's JSON output and one table's figures: the shared drift types, so what the
/// node prints is what the control plane compares (src/domain/drift.rs).
pub use crate::domain::drift::{Checksums, TableChecksum};

/// Arguments of the command.
#[derive(Debug)]
pub struct Request {
    /// Release root the paths are relative to (e.g. `<env_root>/current`).
    pub root: PathBuf,
    pub table_prefix: String,
    pub tables: Vec<String>,
    pub paths: Vec<String>,
}

/// Computes and prints the checksums as one JSON object.
pub fn run(request: &Request) -> anyhow::Result<()> {
    let database = std::env::var("PRESSLUFT_DB_NAME").context("PRESSLUFT_DB_NAME is not set")?;
    println!(
        "{}",
        serde_json::to_string(&checksums(&database, request)?)?
    );
    Ok(())
}

/// What `drift-check` prints: production's table prefix and its checksums.
#[derive(Debug, Serialize)]
pub struct DriftCheckOutput {
    pub table_prefix: String,
    #[serde(flatten)]
    pub checksums: Checksums,
}

/// `pressluft node drift-check`: spec on stdin, [`DriftCheckOutput`] on stdout; exit 3 when a
/// precondition fails (nothing is read then).
pub fn run_check() -> anyhow::Result<()> {
    spec::run_command(check, |spec: &DriftCheckSpec, request: &Request| {
        Ok(DriftCheckOutput {
            table_prefix: request.table_prefix.clone(),
            checksums: checksums(&spec.db_name, request)?,
        })
    })
}

/// Preconditions of `drift-check` (read-only): plain names, relative paths without `..`,
/// production's database and current release present, the bridge installed; then the table
/// prefix. Returns the request to compute.
pub fn check(spec: &DriftCheckSpec) -> anyhow::Result<Request> {
    if !is_identifier(&spec.db_name) {
        bail!("invalid database name {:?}", spec.db_name);
    }
    if let Some(bad) = spec.tables.iter().find(|t| !is_identifier(t)) {
        bail!("invalid table name {bad:?}");
    }
    if let Some(bad) = spec.paths.iter().find(|p| !plain_relative(p)) {
        bail!("invalid path {bad:?}: must be relative, without . or .. components");
    }
    if spec.env_user.is_empty() || spec.env_root.is_empty() {
        bail!("the environment's user and root are required");
    }
    let root = PathBuf::from(format!("{}/current", spec.env_root.trim_end_matches('/')));
    if !root.is_dir() {
        bail!(
            "{} does not exist: production has no current release",
            root.display()
        );
    }
    let bridge_php = format!("{}/bridge.php", spec.php_dir);
    if spec.php_dir.is_empty() || !Path::new(&bridge_php).is_file() {
        bail!("the PHP bridge {bridge_php} is missing: provision the node again");
    }
    database::require_existing(&[&spec.db_name])?;
    let table_prefix =
        bridge::table_prefix(&spec.php_dir, &spec.env_user, &root.display().to_string())?;
    Ok(Request {
        root,
        table_prefix,
        tables: spec.tables.clone(),
        paths: spec.paths.clone(),
    })
}

/// A relative path of plain components (no `.`, `..`, empty or absolute parts).
fn plain_relative(path: &str) -> bool {
    !path.is_empty()
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'))
}

/// The checksums of `request`'s tables in `database` and of its paths.
pub fn checksums(database: &str, request: &Request) -> anyhow::Result<Checksums> {
    Ok(Checksums {
        tables: table_checksums(database, &request.table_prefix, &request.tables)?,
        paths: path_digests(request)?,
    })
}

/// The digest of each of `request`'s paths.
pub fn path_digests(request: &Request) -> anyhow::Result<BTreeMap<String, String>> {
    request
        .paths
        .iter()
        .map(|p| Ok((p.clone(), path_digest(&request.root, p)?)))
        .collect()
}

/// Row count and `CHECKSUM TABLE` of each `<prefix><table>`; `None` for absent tables. Several
/// tables are checksummed over parallel connections (one per CPU, at most 4).
pub fn table_checksums(
    database: &str,
    prefix: &str,
    tables: &[String],
) -> anyhow::Result<BTreeMap<String, Option<TableChecksum>>> {
    if !is_identifier(database) {
        bail!("invalid database name {database:?}");
    }
    let names: Vec<String> = tables.iter().map(|t| format!("{prefix}{t}")).collect();
    if let Some(bad) = names.iter().find(|n| !is_identifier(n)) {
        bail!("invalid table name {bad:?}");
    }
    // Largest first, each to the least-loaded connection: `CHECKSUM TABLE` reads every row, and
    // a WooCommerce shop has several large tables.
    let sizes = mysql_lines(
        None,
        &format!(
            "SELECT TABLE_NAME, COALESCE(DATA_LENGTH, 0) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = '{database}' ORDER BY 2 DESC, 1;"
        ),
    )?;
    let mut result: BTreeMap<String, Option<TableChecksum>> =
        names.iter().map(|n| (n.clone(), None)).collect();
    let connections = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4);
    let mut groups: Vec<(u64, Vec<&str>)> = vec![(0, Vec::new()); connections];
    for line in &sizes {
        let (name, size) = line.split_once('\t').unwrap_or((line, "0"));
        if let Some(name) = names.iter().find(|n| *n == name) {
            let group = groups.iter_mut().min_by_key(|g| g.0).expect("at least one");
            group.0 += size.parse::<u64>().unwrap_or(0);
            group.1.push(name);
        }
    }
    let outcomes = std::thread::scope(|s| {
        let handles: Vec<_> = groups
            .iter()
            .filter(|g| !g.1.is_empty())
            .map(|g| s.spawn(|| checksum_group(database, &g.1)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a checksum thread panicked")))
            })
            .collect::<Vec<_>>()
    });
    for outcome in outcomes {
        result.extend(outcome?.into_iter().map(|(n, c)| (n, Some(c))));
    }
    Ok(result)
}

/// Row count and checksum of each table, over one connection.
fn checksum_group(database: &str, tables: &[&str]) -> anyhow::Result<Vec<(String, TableChecksum)>> {
    let sql: String = tables
        .iter()
        .map(|n| format!("SELECT COUNT(*) FROM `{n}`; CHECKSUM TABLE `{n}`;"))
        .collect();
    let out = mysql_lines(Some(database), &sql)?;
    let mut lines = out.iter();
    tables
        .iter()
        .map(|&name| {
            let rows = lines
                .next()
                .and_then(|l| l.trim().parse::<u64>().ok())
                .with_context(|| format!("no row count for {name}"))?;
            let checksum = lines
                .next()
                .and_then(|l| l.split('\t').nth(1))
                .with_context(|| format!("no checksum for {name}"))?
                .to_string();
            Ok((name.to_string(), TableChecksum { rows, checksum }))
        })
        .collect()
}

/// `sha256:<hex>` over the sorted lines `<relative path>\t<size>\t<mtime ns>\n` of every
/// regular file under `root/rel`, and `<relative path>\tlink\t<target>\n` of every symbolic
/// link (recorded as a link, never followed). `root/rel` itself is resolved through links only
/// while they stay inside `root`'s parent (the environment: `current` and
/// `wp-content/uploads` are the release layout's own links); a link leading elsewhere is an
/// error. Nothing is followed as root beyond that (issue 9). A missing path digests as an empty
/// listing.
pub fn path_digest(root: &Path, rel: &str) -> anyhow::Result<String> {
    let base = root.join(rel);
    let confine = root.parent().unwrap_or(root);
    let mut lines: Vec<Vec<u8>> = Vec::new();
    if let Some(dir) = nofollow::open_dir_confined(&base, confine)? {
        walk(dir, Path::new(""), &mut lines)
            .with_context(|| format!("reading {}", base.display()))?;
    }
    lines.sort_unstable();
    let mut hasher = Sha256::new();
    for line in &lines {
        hasher.update(line);
    }
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// Lists `dir` (an opened directory) into `lines`, descending with `O_NOFOLLOW` opens.
fn walk(dir: OwnedFd, rel: &Path, lines: &mut Vec<Vec<u8>>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(nofollow::fd_path(&dir))? {
        let entry = entry?;
        let name = entry.file_name();
        let path = rel.join(&name);
        let meta = entry.metadata()?; // fstatat(AT_SYMLINK_NOFOLLOW)
        let mut line = path.as_os_str().as_encoded_bytes().to_vec();
        if meta.is_dir() {
            // A directory swapped for a link since the listing fails here (ELOOP).
            let sub = nofollow::open_dir_at(dir.as_fd(), &name)
                .with_context(|| format!("opening {}", path.display()))?;
            walk(sub, &path, lines)?;
            continue;
        } else if meta.is_file() {
            let mtime_ns = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
            line.extend_from_slice(format!("\t{}\t{}\n", meta.size(), mtime_ns).as_bytes());
        } else if meta.file_type().is_symlink() {
            let target = nofollow::read_link_at(dir.as_fd(), &name)?;
            line.extend_from_slice(b"\tlink\t");
            line.extend_from_slice(target.as_encoded_bytes());
            line.push(b'\n');
        } else {
            continue;
        }
        lines.push(line);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_checked() {
        assert!(plain_relative("wp-content/uploads"));
        for bad in ["", "/etc", "wp-content/../..", "./x", "a//b", "a/"] {
            assert!(!plain_relative(bad), "{bad:?}");
        }
        let spec = DriftCheckSpec {
            db_name: "pl_db".into(),
            env_root: "/nonexistent".into(),
            env_user: "u".into(),
            tables: vec!["posts".into()],
            paths: vec!["../etc".into()],
            ..Default::default()
        };
        assert!(check(&spec)
            .unwrap_err()
            .to_string()
            .contains("invalid path"));
        let spec = DriftCheckSpec {
            tables: vec!["posts`; DROP".into()],
            paths: vec![],
            ..spec
        };
        assert!(check(&spec)
            .unwrap_err()
            .to_string()
            .contains("invalid table"));
        let spec = DriftCheckSpec {
            tables: vec![],
            db_name: "x'y".into(),
            ..spec
        };
        assert!(check(&spec)
            .unwrap_err()
            .to_string()
            .contains("invalid database"));
    }

    #[test]
    fn path_digest_sees_added_changed_and_removed_files() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = dir.path().join("wp-content/uploads");
        std::fs::create_dir_all(uploads.join("2026/11")).unwrap();
        let empty = path_digest(dir.path(), "wp-content/uploads").unwrap();
        assert_eq!(
            empty,
            path_digest(dir.path(), "wp-content/missing").unwrap(),
            "empty and missing both digest the empty listing"
        );
        std::fs::write(uploads.join("2026/11/a.jpg"), b"one").unwrap();
        let one = path_digest(dir.path(), "wp-content/uploads").unwrap();
        assert_ne!(one, empty);
        assert_eq!(one, path_digest(dir.path(), "wp-content/uploads").unwrap());
        std::fs::write(uploads.join("2026/11/a.jpg"), b"longer").unwrap();
        let changed = path_digest(dir.path(), "wp-content/uploads").unwrap();
        assert_ne!(changed, one);
        std::fs::remove_file(uploads.join("2026/11/a.jpg")).unwrap();
        assert_eq!(
            path_digest(dir.path(), "wp-content/uploads").unwrap(),
            empty
        );
        assert!(one.starts_with("sha256:") && one.len() == 7 + 64);
    }

    #[test]
    fn path_digest_follows_a_linked_root() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("shared/uploads")).unwrap();
        std::fs::write(dir.path().join("shared/uploads/x.png"), b"x").unwrap();
        std::fs::create_dir_all(dir.path().join("rel/wp-content")).unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("shared/uploads"),
            dir.path().join("rel/wp-content/uploads"),
        )
        .unwrap();
        assert_eq!(
            path_digest(&dir.path().join("rel"), "wp-content/uploads").unwrap(),
            path_digest(&dir.path().join("shared"), "uploads").unwrap()
        );
    }

    #[test]
    fn path_digest_records_links_as_links_and_never_leaves_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let env = nofollow::release_layout(dir.path());
        let root = env.join("current");
        let empty = path_digest(&root, "wp-content/uploads").unwrap();
        std::os::unix::fs::symlink("/etc", env.join("shared/uploads/etc")).unwrap();
        let linked = path_digest(&root, "wp-content/uploads").unwrap();
        assert_ne!(linked, empty, "a link is part of the listing");
        std::fs::remove_file(env.join("shared/uploads/etc")).unwrap();
        std::os::unix::fs::symlink("/tmp", env.join("shared/uploads/etc")).unwrap();
        assert_ne!(path_digest(&root, "wp-content/uploads").unwrap(), linked);
        // A linked path leading out of the environment is refused, not walked.
        std::fs::remove_file(env.join("releases/r1/wp-content/uploads")).unwrap();
        std::os::unix::fs::symlink("/etc", env.join("releases/r1/wp-content/uploads")).unwrap();
        let err = path_digest(&root, "wp-content/uploads").unwrap_err();
        assert!(err.to_string().contains("outside"), "{err:#}");
    }
}
