//! `pressluft node env-clone`: the node work of `env_create` (jobs.md §11) in one call, so
//! `env-create.yml` runs a handful of tasks instead of sixty (Ansible costs half a second to a
//! second per task; the clone benchmark in docs/benchmarks.md is the reason this exists).
//!
//! 1. **Probe** (changes nothing): checks the node (supported system, the source's and
//!    production's files and databases) and reads the table prefixes through the PHP bridge. A
//!    failure exits with [`spec::PRECONDITION_EXIT`], so the playbook reports `PRECONDITION_FAILED`.
//! 2. **Apply**: user, directories, database and grant, Redis ACL user; then, concurrently, the release copy, the
//!    uploads copy and the database copy (`db_copy`, rewritten to the new URL), each preceded by
//!    its part of production's drift baseline (paths before the uploads copy, tables before the
//!    database copy, so a production change made during a copy shows as drift later instead of
//!    hiding in the baseline); meanwhile it installs the files the playbook rendered from the
//!    roles' templates (`wp-config.php` with the source's table prefix put in, the PHP-FPM pool,
//!    the server block for this kernel — each validated before it is put in place) and the Redis
//!    drop-in; finally `home`/`siteurl`, the `current` switch and the reloads. Prints JSON.
//!    Idempotent: a complete release is reused, a half-built one replaced, uploads and database
//!    copied again.
//!
//! The job's variables arrive as one JSON object on stdin (it holds secrets, so never on the
//! command line). Every external program gets its arguments as a vector: no shell, no
//! interpolation.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Serialize;

use super::database::{self, is_identifier, mysql_lines};
use super::process::{join, timed, Steps};
use super::services::{self, REDIS_ACL_APPLY};
use super::spec::{self, EnvCloneSpec, TABLE_PREFIX_PLACEHOLDER};
use super::users::env_ids;
use super::{bridge, db_copy, drift, environment, files, nofollow, releases};

/// What `env-clone` reads on stdin.
pub type Spec = EnvCloneSpec;

/// What the read-only first phase found.
#[derive(Debug)]
pub struct Probe {
    pub php_version: String,
    pub table_prefix: String,
    pub production_table_prefix: String,
    /// Whether the kernel has IPv6 (the server block listens on `[::]:80` only then).
    pub ipv6: bool,
}

/// `apply`'s output.
#[derive(Debug, Serialize)]
pub struct Applied {
    pub release_path: String,
    /// The source's table prefix, now also the new environment's.
    pub table_prefix: String,
    /// Production's drift baseline, taken before the copies.
    pub drift_baseline: drift::Checksums,
    /// The rewrite summary (`search-replace: … values changed …`).
    pub search_replace: String,
    pub warnings: Vec<String>,
    /// What took how long (`"copies (…) 4.1 s"`), for the job log.
    pub steps: Vec<String>,
}

/// Reads the spec from stdin, checks the node, creates the environment, prints the JSON result.
pub fn run() -> anyhow::Result<()> {
    spec::run_command(probe, apply)
}

fn trimmed(url: &str) -> &str {
    url.trim_end_matches('/')
}

fn check_names(spec: &Spec) -> anyhow::Result<()> {
    for db in [
        &spec.db_name,
        &spec.db_user,
        &spec.source_db_name,
        &spec.production_db_name,
    ] {
        if !is_identifier(db) {
            bail!("{db:?} is not a plain database identifier");
        }
    }
    let expected = format!(
        "{}/releases/{}",
        trimmed(&spec.env.env_root),
        spec.env.release_name
    );
    if spec.env.release_path != expected || spec.env.release_name.contains('/') {
        bail!(
            "release_path {} does not match the release name",
            spec.env.release_path
        );
    }
    if spec.db_name == spec.source_db_name
        || spec.db_name == spec.production_db_name
        || spec.env.env_root == spec.source_env_root
        || spec.env.env_user == spec.source_env_user
    {
        bail!("the new environment's names equal the source's or production's");
    }
    Ok(())
}

/// Read-only checks and the table prefixes (before anything changes).
pub fn probe(spec: &Spec) -> anyhow::Result<Probe> {
    check_names(spec)?;
    let php_version = services::php_version(&spec.node.supported_os)?;
    let required = [
        format!("{}/wp-includes/version.php", spec.source_release_path),
        format!("{}/shared/uploads", spec.source_env_root),
        format!("{}/current", spec.production_env_root),
        format!("{}/bridge.php", spec.node.php_dir),
        format!("{}/pressluft-mu-plugin.php", spec.node.php_dir),
        format!("{}/object-cache.php", spec.node.php_dir),
        REDIS_ACL_APPLY.to_string(),
    ];
    check_links(spec)?;
    let missing = files::missing(&required)?;
    if !missing.is_empty() {
        bail!(
            "missing on the node: {} (the source or production environment is incomplete, or the node needs node_provision)",
            missing.join(", ")
        );
    }
    database::require_existing(&[&spec.source_db_name, &spec.production_db_name])?;
    let table_prefix = bridge::table_prefix(
        &spec.node.php_dir,
        &spec.source_env_user,
        &spec.source_release_path,
    )?;
    let production_table_prefix = if spec.production_env_root == spec.source_env_root {
        table_prefix.clone()
    } else {
        let root = trimmed(&spec.production_env_root);
        let owner = files::file_owner(&format!("{root}/shared/wp-config.php"))?;
        bridge::table_prefix(&spec.node.php_dir, &owner, &format!("{root}/current"))?
    };
    Ok(Probe {
        php_version,
        table_prefix,
        production_table_prefix,
        ipv6: services::has_ipv6(),
    })
}

/// No link where the clone reads or writes as root (issue 9): the source's release and
/// uploads, the environment roots and `releases/` are real directories (no link in any
/// component), and production's `current` is a link to one of its own `releases/<name>`.
fn check_links(spec: &Spec) -> anyhow::Result<()> {
    let source_root = trimmed(&spec.source_env_root);
    let production_root = trimmed(&spec.production_env_root);
    for dir in [
        spec.source_release_path.clone(),
        format!("{source_root}/shared/uploads"),
        format!("{production_root}/releases"),
        // The new environment's own directories may not exist yet; links are refused.
        trimmed(&spec.env.env_root).to_string(),
        format!("{}/releases", trimmed(&spec.env.env_root)),
        format!("{}/shared", trimmed(&spec.env.env_root)),
    ] {
        files::refuse_link(&dir)?;
    }
    if let Ok(root) = nofollow::open_dir(Path::new(production_root)) {
        if nofollow::kind_at(root.as_fd(), OsStr::new("current"))? == Some(libc::S_IFLNK) {
            let target = nofollow::read_link_at(root.as_fd(), OsStr::new("current"))?;
            let target = target.to_string_lossy();
            let absolute = format!("{production_root}/releases/");
            let name = target
                .strip_prefix("releases/")
                .or_else(|| target.strip_prefix(absolute.as_str()))
                .filter(|n| !n.is_empty() && !n.contains('/') && *n != "." && *n != "..")
                .with_context(|| {
                    format!(
                        "{production_root}/current points to {target}, not to one of its releases"
                    )
                })?;
            if let Err(e) =
                nofollow::open_dir(Path::new(&format!("{production_root}/releases/{name}")))
            {
                bail!("{production_root}/current: {e}");
            }
        }
    }
    Ok(())
}

/// Everything that changes the node, and production's drift baseline.
pub fn apply(spec: &Spec, probed: &Probe) -> anyhow::Result<Applied> {
    let php_version = probed.php_version.as_str();
    let table_prefix = probed.table_prefix.as_str();
    let production_table_prefix = probed.production_table_prefix.as_str();
    let placeholders = spec
        .files
        .wp_config
        .matches(TABLE_PREFIX_PLACEHOLDER)
        .count();
    if placeholders != 1 {
        bail!("the rendered wp-config.php must hold the table prefix placeholder exactly once");
    }
    let wp_config =
        spec.files
            .wp_config
            .replacen(TABLE_PREFIX_PLACEHOLDER, &format!("'{table_prefix}'"), 1);
    let vhost = if probed.ipv6 {
        &spec.files.vhost
    } else {
        &spec.files.vhost_without_ipv6
    };
    let env_root = trimmed(&spec.env.env_root);
    let baseline = drift::Request {
        root: PathBuf::from(format!("{}/current", trimmed(&spec.production_env_root))),
        table_prefix: production_table_prefix.to_string(),
        tables: spec.drift_tables.clone(),
        paths: spec.drift_paths.clone(),
    };

    let mut steps = Steps::default();
    environment::create_base(&spec.env, &spec.files)?;
    steps.done("user, directories, database");

    // Production's drift baseline is taken before the copies that could hide a change in it:
    // the tables before the database copy's snapshot, the paths before the uploads copy. A
    // production change made while the copies run is then seen as drift later (a false alarm at
    // worst) instead of being hidden in the baseline.
    let (release, uploads, database, installed) = std::thread::scope(|s| {
        let release = s.spawn(|| timed(|| copy_release(spec, env_root)));
        let uploads = s.spawn(|| {
            timed(|| {
                let paths = drift::path_digests(&baseline)?;
                copy_uploads(spec, env_root)?;
                Ok(paths)
            })
        });
        let database = s.spawn(|| {
            let (tables, checksummed) = timed(|| {
                drift::table_checksums(
                    &spec.production_db_name,
                    &baseline.table_prefix,
                    &baseline.tables,
                )
            })?;
            let (report, copied) = timed(|| {
                db_copy::copy(&db_copy::Request {
                    source_db: spec.source_db_name.clone(),
                    target_db: spec.db_name.clone(),
                    from: spec.source_canonical_url.clone(),
                    to: spec.env.canonical_url.clone(),
                    connections: db_copy::default_connections(),
                })
            })?;
            Ok::<_, anyhow::Error>((tables, report, checksummed, copied))
        });
        let installed = timed(|| {
            environment::install_files(
                &spec.env,
                &spec.node,
                &spec.files,
                &wp_config,
                vhost,
                php_version,
            )
        });
        (join(release), join(uploads), join(database), installed)
    });
    let ((), release) = release.context("copying the release")?;
    let (paths, uploads) = uploads.context("copying the uploads")?;
    let (tables, report, checksummed, copied) = database.context("copying the database")?;
    let ((), installed) = installed?;
    steps.done(&format!(
        "copies (release {release:.1} s; uploads {uploads:.1} s; drift baseline of the tables \
         {checksummed:.1} s, then database {copied:.1} s; configuration files {installed:.1} s)"
    ));

    set_site_urls(spec, table_prefix)?;
    steps.done("home and siteurl");
    releases::switch_current(env_root, &spec.env.release_name, &spec.env.env_user)?;
    services::reload(php_version)?;
    steps.done("switch and reloads");
    Ok(Applied {
        release_path: spec.env.release_path.clone(),
        table_prefix: table_prefix.to_string(),
        drift_baseline: drift::Checksums { tables, paths },
        search_replace: report.to_string(),
        warnings: report
            .warnings
            .iter()
            .take(20)
            .map(|w| format!("warning at byte {}: {}", w.offset, w.message))
            .collect(),
        steps: steps.into_lines(),
    })
}

/// `home` and `siteurl` = the canonical URL. The rewrite has normally set them already (read
/// with SQL, cheap); only an option that differs is set through the PHP bridge (which loads
/// WordPress, so caches and hooks see the change).
fn set_site_urls(spec: &Spec, table_prefix: &str) -> anyhow::Result<()> {
    let url = trimmed(&spec.env.canonical_url);
    let rows = mysql_lines(
        Some(&spec.db_name),
        &format!(
            "SELECT option_name, option_value FROM `{table_prefix}options` \
             WHERE option_name IN ('home', 'siteurl');"
        ),
    )
    .context("reading home and siteurl")?;
    let differs = |name: &str| !rows.iter().any(|r| *r == format!("{name}\t{url}"));
    let pending: Vec<&'static str> = ["home", "siteurl"]
        .into_iter()
        .filter(|n| differs(n))
        .collect();
    // Both at once when both differ (each bridge call loads WordPress).
    std::thread::scope(|s| {
        let handles: Vec<_> = pending
            .iter()
            .map(|&option| {
                s.spawn(move || {
                    let value = serde_json::json!({"name": option, "value": url});
                    bridge::call(
                        &spec.node.php_dir,
                        &spec.env.env_user,
                        &spec.env.release_path,
                        None,
                        &["option-set", &value.to_string()],
                    )
                    .map(drop)
                    .with_context(|| format!("setting {option}"))
                })
            })
            .collect();
        handles.into_iter().try_for_each(join)
    })
}

/// The source's current release copied into a new release (reused when complete from an
/// earlier attempt): the copy reads as the source's user and writes as the new environment's
/// user, then the release is completed as that user (issue 9: nothing follows a link as root
/// in either tree).
fn copy_release(spec: &Spec, env_root: &str) -> anyhow::Result<()> {
    let Some(build) = releases::start(env_root, &spec.env.release_name, &spec.env.env_user)? else {
        return Ok(());
    };
    let source = nofollow::open_dir(Path::new(&spec.source_release_path))?;
    files::copy_tree(
        &source,
        &spec.source_env_user,
        &build.dir,
        &spec.env.env_user,
        false,
    )
    .context("copying the source's release")?;
    build.complete(&spec.env.env_user, &spec.node.php_dir)
}

fn copy_uploads(spec: &Spec, env_root: &str) -> anyhow::Result<()> {
    let (uid, www) = env_ids(&spec.env.env_user)?;
    let from = format!("{}/shared/uploads", trimmed(&spec.source_env_root));
    let from = nofollow::open_dir(Path::new(&from))?;
    let to = nofollow::ensure_dir(
        Path::new(&format!("{env_root}/shared/uploads")),
        uid,
        www,
        0o2750,
    )?;
    files::copy_tree(&from, &spec.source_env_user, &to, &spec.env.env_user, true)?;
    nofollow::set_owner_mode(&to, uid, www, 0o2750)?;
    Ok(())
}
