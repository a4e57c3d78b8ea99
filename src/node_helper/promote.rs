//! `pressluft node env-promote`: the node work of `env_promote` (backups-restore-promotion.md
//! §5) in one call — a non-production environment's code and unprotected tables made
//! production's, without ever touching production's protected tables or paths.
//!
//! **Check (changes nothing; a failure exits 3, `PRECONDITION_FAILED`).** Plain names; the
//! target's `current` is the release the control plane expects (or the new one: a retry after
//! the switch); the source's release complete and no link on the way; both table prefixes,
//! read through the PHP bridge, equal (the protected tables are named by prefix on both
//! sides). Then the drift comparison re-run: production's checksums of the preset's protected
//! tables and paths now, against the clone-time baseline in the spec, compared with the one
//! comparison the drift check uses ([`crate::domain::drift::differences`]). Any difference
//! exits [`EXIT_DRIFT`] (`DRIFT_DETECTED`), still before anything changes.
//!
//! **Apply.** (1) The new release: the source's current release copied as the source's user
//! into the target's `releases/<name>.build` written as the target's user (never following a
//! link as root in either tree), completed as the target's user — which links it to the
//! target's own `shared/` (its `wp-config.php`, its uploads): the protected path
//! `wp-content/uploads` is never copied. (2) The database: the source's database without the
//! protected tables, rewritten source canonical URL → target canonical URL (serialized-safe,
//! [`db_copy::copy_excluding`]) into a scratch database, then swapped in by one `RENAME TABLE`
//! that replaces exactly the tables the copy holds ([`replace_tables`]); production-only
//! tables and the protected ones stay as they are. A failed copy leaves the live database as
//! it was (the scratch databases and the unused release are removed). (3)
//! [`switch::go_live`]: switch, PHP-FPM reload, FastCGI and Redis purge, pruning (the previous
//! release kept for the rollback). The health gate and the rollback (previous release + the
//! replaced tables from the gate backup) are the control plane's follow-up jobs.

use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{bail, Context};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::backup::restore::replace_tables;
use super::database::{self, is_identifier, mysql_lines};
use super::process::Steps;
use super::spec::{self, EnvPromoteSpec};
use super::{bridge, db_copy, drift, files, nofollow, releases, services, switch};
use crate::domain::drift::{differences, Checksums, Difference, DriftValue};
use crate::domain::PromotionPreset;

/// Exit code of a promotion refused because production drifted from the baseline
/// (`DRIFT_DETECTED`; nothing changed).
pub const EXIT_DRIFT: i32 = 8;

/// The only protected path of every preset: the release layout links it to the target's own
/// `shared/uploads`, so it is never copied (see the module doc).
const UPLOADS: &str = "wp-content/uploads";

/// What the check established.
#[derive(Debug)]
pub struct Checked {
    php_version: String,
    /// The release `current` points to now.
    current: String,
    table_prefix: String,
}

/// What `env-promote` prints (the result file of env-promote.yml).
#[derive(Debug, Serialize)]
pub struct PromoteResult {
    pub release_name: String,
    /// The tables the promotion replaced (full names), i.e. what a rollback restores.
    pub replaced_tables: Vec<String>,
    /// The rewrite summary (`search-replace: … values changed …`).
    pub search_replace: String,
    pub went_live: switch::WentLive,
    pub steps: Vec<String>,
}

/// Reads the spec from stdin, checks, promotes, prints the JSON result.
pub fn run() -> anyhow::Result<()> {
    spec::run_command(check, apply)
}

fn trimmed(path: &str) -> &str {
    path.trim_end_matches('/')
}

fn plain_release_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && !name.starts_with('.')
}

fn check_names(spec: &EnvPromoteSpec) -> anyhow::Result<()> {
    for db in [&spec.db_name, &spec.source.db_name] {
        if !is_identifier(db) {
            bail!("{db:?} is not a plain database identifier");
        }
    }
    if spec.db_name == spec.source.db_name
        || trimmed(&spec.go_live.env_root) == trimmed(&spec.source.env_root)
        || spec.go_live.env_user == spec.source.env_user
    {
        bail!("the source and the target are the same environment");
    }
    for name in [
        &spec.release_name,
        &spec.current_release_name,
        &spec.source.release_name,
    ] {
        if !plain_release_name(name) {
            bail!("invalid release name {name:?}");
        }
    }
    if let Some(bad) = spec.protected_tables.iter().find(|t| !is_identifier(t)) {
        bail!("invalid protected table name {bad:?}");
    }
    if spec.protected_tables.is_empty() {
        bail!("the preset protects no tables: refusing to replace every table");
    }
    if let Some(bad) = spec.protected_paths.iter().find(|p| p.as_str() != UPLOADS) {
        bail!("unsupported protected path {bad:?} (only {UPLOADS} is known)");
    }
    Ok(())
}

/// Read-only checks, the table prefix and the drift comparison (see the module doc).
pub fn check(spec: &EnvPromoteSpec) -> anyhow::Result<Checked> {
    check_names(spec)?;
    let php_dir = spec.node.php_dir.as_str();
    let bridge_php = format!("{php_dir}/bridge.php");
    if php_dir.is_empty() || !Path::new(&bridge_php).is_file() {
        bail!("the PHP bridge {bridge_php} is missing: provision the node again");
    }
    let php_version = services::php_version(&spec.node.supported_os)?;
    let env_root = trimmed(&spec.go_live.env_root);
    let source_root = trimmed(&spec.source.env_root);
    let source_release = format!("{source_root}/releases/{}", spec.source.release_name);
    for dir in [
        source_release.as_str(),
        &format!("{env_root}/releases"),
        &format!("{env_root}/shared"),
    ] {
        files::refuse_link(dir)?;
    }
    let required = [format!("{source_release}/wp-includes/version.php")];
    let missing = files::missing(&required)?;
    if !missing.is_empty() {
        bail!(
            "the source's release is incomplete: {} is missing",
            missing.join(", ")
        );
    }
    let current =
        releases::current(env_root)?.context("the target environment has no current release")?;
    if current != spec.release_name && current != spec.current_release_name {
        bail!(
            "the target's current release is {current}, not the expected {}: the environment changed",
            spec.current_release_name
        );
    }
    database::require_existing(&[&spec.db_name, &spec.source.db_name])?;
    let source_prefix = bridge::table_prefix(php_dir, &spec.source.env_user, &source_release)?;
    let table_prefix = bridge::table_prefix(
        php_dir,
        &spec.go_live.env_user,
        &format!("{env_root}/current"),
    )?;
    if source_prefix != table_prefix {
        bail!(
            "the table prefixes differ (source {source_prefix}, target {table_prefix}): the \
             protected tables could not be told apart; promote only between environments with \
             the same prefix"
        );
    }
    let drifted = drift_now(spec, &table_prefix)?;
    if !drifted.is_empty() {
        eprintln!(
            "error: production drifted since the environment was cloned: {}; clone it again",
            describe(&drifted)
        );
        std::process::exit(EXIT_DRIFT);
    }
    Ok(Checked {
        php_version,
        current,
        table_prefix,
    })
}

/// Production's differences from the baseline in what the preset protects.
fn drift_now(spec: &EnvPromoteSpec, prefix: &str) -> anyhow::Result<Vec<Difference>> {
    let preset: PromotionPreset = spec
        .promotion_preset
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown promotion preset {:?}", spec.promotion_preset))?;
    let request = drift::Request {
        root: format!("{}/current", trimmed(&spec.go_live.env_root)).into(),
        table_prefix: prefix.to_string(),
        tables: spec.protected_tables.clone(),
        paths: spec.protected_paths.clone(),
    };
    let now = drift::checksums(&spec.db_name, &request)?;
    let baseline = Checksums {
        tables: serde_json::from_value(spec.baseline_tables.clone())
            .context("the baseline's table checksums")?,
        paths: serde_json::from_value(spec.baseline_paths.clone())
            .context("the baseline's path digests")?,
    };
    // Only what the preset protects, on both sides (the baseline covers both presets): the
    // drift check's own comparison.
    Ok(differences(
        &baseline.for_preset(preset, prefix),
        &now.for_preset(preset, prefix),
    ))
}

/// "wp_posts (rows 12 → 13), wp-content/uploads (changed)".
fn describe(diffs: &[Difference]) -> String {
    let rows = |v: &Option<DriftValue>| match v {
        Some(DriftValue::Table(t)) => t.rows.to_string(),
        Some(DriftValue::Path(_)) => "listed".into(),
        None => "absent".into(),
    };
    diffs
        .iter()
        .take(10)
        .map(|d| match (&d.baseline, &d.current) {
            (Some(DriftValue::Path(_)), Some(DriftValue::Path(_))) => {
                format!("{} (changed)", d.name)
            }
            _ => format!(
                "{} (rows {} → {})",
                d.name,
                rows(&d.baseline),
                rows(&d.current)
            ),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The two scratch databases of a promotion into `database`: copied into, moved out to.
fn scratch_databases(database: &str) -> (String, String) {
    let hash = hex::encode(Sha256::digest(database.as_bytes()));
    let base = format!("pressluft_pr_{}", &hash[..16]);
    (format!("{base}_in"), format!("{base}_out"))
}

/// Everything that changes the node (see the module doc).
pub fn apply(spec: &EnvPromoteSpec, checked: &Checked) -> anyhow::Result<PromoteResult> {
    let env_root = trimmed(&spec.go_live.env_root);
    let mut steps = Steps::default();

    // A retry after the switch: the promoted release is live; make sure it is, report it.
    if checked.current == spec.release_name {
        let went_live = switch::go_live(
            &spec.go_live,
            &spec.release_name,
            &[spec.current_release_name.as_str()],
            &checked.php_version,
        )?;
        return Ok(PromoteResult {
            release_name: spec.release_name.clone(),
            replaced_tables: Vec::new(),
            search_replace: String::new(),
            went_live,
            steps: vec!["already live (a retry)".into()],
        });
    }

    copy_release(spec, env_root).inspect_err(|_| {
        let _ = remove_release(env_root, &spec.release_name);
    })?;
    steps.done("release copied from the source");

    let (report, replaced) = match promote_database(spec, &checked.table_prefix) {
        Ok(done) => done,
        Err(e) => {
            let _ = remove_release(env_root, &spec.release_name);
            return Err(e);
        }
    };
    steps.done(&format!(
        "database: {} tables replaced, protected tables kept",
        replaced.len()
    ));

    let went_live = switch::go_live(
        &spec.go_live,
        &spec.release_name,
        &[checked.current.as_str()],
        &checked.php_version,
    )?;
    steps.done("switch, reload, purges");
    Ok(PromoteResult {
        release_name: spec.release_name.clone(),
        replaced_tables: replaced,
        search_replace: report,
        went_live,
        steps: steps.into_lines(),
    })
}

/// The source's release copied into the target's new release (reused when complete from an
/// earlier attempt), completed as the target's user.
fn copy_release(spec: &EnvPromoteSpec, env_root: &str) -> anyhow::Result<()> {
    let user = spec.go_live.env_user.as_str();
    let Some(build) = releases::start(env_root, &spec.release_name, user)? else {
        return Ok(());
    };
    let source = nofollow::open_dir(Path::new(&format!(
        "{}/releases/{}",
        trimmed(&spec.source.env_root),
        spec.source.release_name
    )))?;
    files::copy_tree(&source, &spec.source.env_user, &build.dir, user, false)
        .context("copying the source's release")?;
    build.complete(user, &spec.node.php_dir)
}

/// The source's database without the protected tables, rewritten, copied aside and swapped in;
/// returns the rewrite summary and the replaced tables.
fn promote_database(spec: &EnvPromoteSpec, prefix: &str) -> anyhow::Result<(String, Vec<String>)> {
    let (incoming, outgoing) = scratch_databases(&spec.db_name);
    let drop_scratch =
        format!("DROP DATABASE IF EXISTS `{incoming}`; DROP DATABASE IF EXISTS `{outgoing}`;");
    mysql_lines(
        None,
        &format!(
            "{drop_scratch} CREATE DATABASE `{incoming}` CHARACTER SET utf8mb4; \
             CREATE DATABASE `{outgoing}` CHARACTER SET utf8mb4;"
        ),
    )
    .context("preparing the scratch databases")?;
    let protected: Vec<String> = spec
        .protected_tables
        .iter()
        .map(|t| format!("{prefix}{t}"))
        .collect();
    let copied = db_copy::copy_excluding(
        &db_copy::Request {
            source_db: spec.source.db_name.clone(),
            target_db: incoming.clone(),
            from: spec.source.canonical_url.clone(),
            to: spec.canonical_url.clone(),
            connections: db_copy::default_connections(),
        },
        &protected,
    )
    .context("copying the source's database")
    .and_then(|report| {
        // Belt and braces: a protected table must never be swapped in, whatever the copy did.
        let leaked = mysql_lines(
            None,
            &format!(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{incoming}';"
            ),
        )?
        .into_iter()
        .find(|t| protected.contains(t));
        if let Some(t) = leaked {
            bail!("the copy holds the protected table {t}");
        }
        let replaced = replace_tables(&spec.db_name, &incoming, &outgoing)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok((report.to_string(), replaced))
    });
    let cleaned = mysql_lines(None, &drop_scratch);
    let done = copied?;
    cleaned.context("dropping the scratch databases")?;
    Ok(done)
}

/// Removes `releases/<name>` and `releases/<name>.build` (never following a link).
fn remove_release(env_root: &str, name: &str) -> anyhow::Result<()> {
    let dir = nofollow::open_dir(Path::new(&format!("{env_root}/releases")))?;
    for entry in [name.to_string(), format!("{name}.build")] {
        match nofollow::kind_at(dir.as_fd(), std::ffi::OsStr::new(&entry))? {
            None => {}
            // std's remove_dir_all never follows a link below the directory.
            Some(libc::S_IFDIR) => std::fs::remove_dir_all(nofollow::fd_path(&dir).join(&entry))?,
            Some(_) => std::fs::remove_file(nofollow::fd_path(&dir).join(&entry))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::drift::{DifferenceKind, TableChecksum};

    #[test]
    fn scratch_names_are_identifiers_and_differ_from_the_restores() {
        let (a, b) = scratch_databases("wp_12345678");
        assert!(is_identifier(&a) && is_identifier(&b) && a != b);
        let (r, _) = super::super::backup::restore::scratch_databases("wp_12345678");
        assert_ne!(a, r);
    }

    #[test]
    fn the_drift_refusal_names_rows_and_paths() {
        let table = Difference {
            kind: DifferenceKind::Table,
            name: "wp_posts".into(),
            baseline: Some(DriftValue::Table(TableChecksum {
                rows: 12,
                checksum: "1".into(),
            })),
            current: Some(DriftValue::Table(TableChecksum {
                rows: 13,
                checksum: "2".into(),
            })),
        };
        let path = Difference {
            kind: DifferenceKind::Path,
            name: "wp-content/uploads".into(),
            baseline: Some(DriftValue::Path("sha256:a".into())),
            current: Some(DriftValue::Path("sha256:b".into())),
        };
        assert_eq!(
            describe(&[table, path]),
            "wp_posts (rows 12 → 13), wp-content/uploads (changed)"
        );
    }
}
