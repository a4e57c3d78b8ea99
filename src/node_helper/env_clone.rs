//! `pressluft node env-clone`: the node work of `env_create` (jobs.md §11) in one call, so
//! `env-create.yml` runs a handful of tasks instead of sixty (Ansible costs half a second to a
//! second per task; the clone benchmark in docs/benchmarks.md is the reason this exists).
//!
//! 1. **Probe** (changes nothing): checks the node (supported system, the source's and
//!    production's files and databases) and reads the table prefixes through the PHP bridge. A
//!    failure exits with [`PRECONDITION_EXIT`], so the playbook reports `PRECONDITION_FAILED`.
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

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::nofollow::{self, OpenError};
use super::{db_copy, drift, is_identifier, mysql_lines};

const WEB_GROUP: &str = "www-data";
const SITE_OWNER: &str = "pressluft";
const NGINX_VALIDATE: &str = "/usr/local/lib/pressluft/nginx-validate";
/// Installed by the redis-server role (node_provision).
const REDIS_ADMIN: &str = "/usr/local/lib/pressluft/redis-admin";
const REDIS_ACL_APPLY: &str = "/usr/local/lib/pressluft/redis-acl-apply";
const REDIS_ACL_DIR: &str = "/etc/redis/acl.d";
/// The PHP bridge runs with a clean environment.
const BRIDGE_PATH: &str = "PATH=/usr/local/bin:/usr/bin:/bin";

/// The job's variables (a subset of env-create.yml's extra-vars, see
/// docs/site-lifecycle-contract.md), plus what the playbook adds for `apply`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    pub environment_id: String,
    pub env_root: String,
    pub env_user: String,
    pub release_name: String,
    pub release_path: String,
    pub db_name: String,
    pub db_user: String,
    pub db_password: String,
    pub canonical_url: String,
    pub redis_cache_enabled: bool,
    pub redis_prefix: String,
    pub source_env_root: String,
    pub source_env_user: String,
    pub source_db_name: String,
    pub source_release_path: String,
    pub source_canonical_url: String,
    pub production_env_root: String,
    pub production_db_name: String,
    pub drift_tables: Vec<String>,
    pub drift_paths: Vec<String>,
    /// `"<distribution> <version>"` (lowercase) → PHP version, e.g. `"debian 12": "8.2"`.
    pub supported_os: BTreeMap<String, String>,
    /// Where node_provision installed the bridge, the mu-plugin and the drop-in.
    pub php_dir: String,
    /// The configuration files, rendered by the playbook from the roles' templates.
    pub files: Files,
}

/// In `files.wp_config`, the table prefix (known only on the node, read from the source) is
/// this placeholder, quoted as a PHP string; the helper puts the source's prefix in its place.
pub const TABLE_PREFIX_PLACEHOLDER: &str = "'__PRESSLUFT_TABLE_PREFIX__'";

/// Files rendered on the controller from the roles' templates.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Files {
    /// With [`TABLE_PREFIX_PLACEHOLDER`] as the table prefix.
    pub wp_config: String,
    pub pool: String,
    /// The env-database role's SQL (database, user, password, grant).
    pub database_sql: String,
    /// The server block for a kernel with IPv6 (`listen [::]:80` too) and for one without.
    pub vhost: String,
    pub vhost_without_ipv6: String,
    /// The environment's Redis ACL user (the redis-acl-user role's fragment).
    pub redis_acl: String,
}

/// What the read-only first phase found.
#[derive(Debug)]
pub struct Probe {
    pub os: String,
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

/// Step durations for the job log.
#[derive(Debug)]
struct Steps(Vec<String>, std::time::Instant);

impl Default for Steps {
    fn default() -> Self {
        Steps(Vec::new(), std::time::Instant::now())
    }
}

impl Steps {
    /// Records `what` with the time since the previous step.
    fn done(&mut self, what: &str) {
        let now = std::time::Instant::now();
        self.0
            .push(format!("{what}: {:.1} s", (now - self.1).as_secs_f64()));
        self.1 = now;
    }
}

/// Runs `f` and returns its value with its duration in seconds.
fn timed<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(T, f64)> {
    let start = std::time::Instant::now();
    f().map(|v| (v, start.elapsed().as_secs_f64()))
}

/// Exit code of a failed precondition (nothing changed; the playbook reports
/// `PRECONDITION_FAILED`). Other failures exit with 1.
pub const PRECONDITION_EXIT: i32 = 3;

/// Reads the spec from stdin, checks the node, creates the environment, prints the JSON result.
pub fn run() -> anyhow::Result<()> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the job variables from stdin")?;
    let spec: Spec = serde_json::from_str(&input).context("invalid job variables")?;
    let probed = match probe(&spec) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(PRECONDITION_EXIT);
        }
    };
    println!("{}", serde_json::to_string(&apply(&spec, &probed)?)?);
    Ok(())
}

fn trimmed(url: &str) -> &str {
    url.trim_end_matches('/')
}

fn run_cmd(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {} failed ({}): {}",
            args.first().copied().unwrap_or_default(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a PHP bridge command as `user` and returns its JSON answer (its last stdout line).
fn bridge(spec: &Spec, user: &str, wp_root: &str, args: &[&str]) -> anyhow::Result<Value> {
    let bridge = format!("{}/bridge.php", spec.php_dir);
    let wp_root = format!("PRESSLUFT_WP_ROOT={wp_root}");
    let mut argv = vec![
        "-u",
        user,
        "--",
        "env",
        "-i",
        BRIDGE_PATH,
        &wp_root,
        "php",
        &bridge,
    ];
    argv.extend_from_slice(args);
    let out = Command::new("runuser")
        .args(&argv)
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .context("starting the PHP bridge")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let answer: Option<Value> = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok());
    match answer {
        Some(v) if out.status.success() => Ok(v),
        Some(v) => bail!(
            "the PHP bridge ({}) failed: {}",
            args[0],
            v.get("error")
                .and_then(Value::as_str)
                .unwrap_or("no message")
        ),
        None => bail!(
            "the PHP bridge ({}) gave no answer ({}): {}",
            args[0],
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}

fn table_prefix(spec: &Spec, user: &str, wp_root: &str) -> anyhow::Result<String> {
    let answer = bridge(spec, user, wp_root, &["table-prefix"])
        .with_context(|| format!("reading the table prefix of {wp_root}"))?;
    answer
        .get("table_prefix")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .map(str::to_string)
        .with_context(|| format!("{wp_root}: the table prefix is missing or not plain"))
}

/// `"debian 12"` / `"ubuntu 24.04"` from /etc/os-release (Debian by major version, as the
/// playbooks' distribution facts do).
fn os_key(os_release: &str) -> String {
    let field = |name: &str| {
        os_release
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .map(|v| v.trim().trim_matches('"').to_lowercase())
            .unwrap_or_default()
    };
    let (id, version) = (field("ID"), field("VERSION_ID"));
    let version = if id == "debian" {
        version.split('.').next().unwrap_or_default().to_string()
    } else {
        version
    };
    format!("{id} {version}")
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
    let expected = format!("{}/releases/{}", trimmed(&spec.env_root), spec.release_name);
    if spec.release_path != expected || spec.release_name.contains('/') {
        bail!(
            "release_path {} does not match the release name",
            spec.release_path
        );
    }
    if spec.db_name == spec.source_db_name
        || spec.db_name == spec.production_db_name
        || spec.env_root == spec.source_env_root
        || spec.env_user == spec.source_env_user
    {
        bail!("the new environment's names equal the source's or production's");
    }
    Ok(())
}

/// Read-only checks and the table prefixes (before anything changes).
pub fn probe(spec: &Spec) -> anyhow::Result<Probe> {
    check_names(spec)?;
    let os_release = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    let os = os_key(&os_release);
    let Some(php_version) = spec.supported_os.get(&os).cloned() else {
        bail!("the node runs {os:?}; Pressluft needs Ubuntu 24.04 or Debian 12");
    };
    let required = [
        format!("{}/wp-includes/version.php", spec.source_release_path),
        format!("{}/shared/uploads", spec.source_env_root),
        format!("{}/current", spec.production_env_root),
        format!("{}/bridge.php", spec.php_dir),
        format!("{}/pressluft-mu-plugin.php", spec.php_dir),
        format!("{}/object-cache.php", spec.php_dir),
        REDIS_ACL_APPLY.to_string(),
    ];
    check_links(spec)?;
    let mut missing: Vec<&str> = Vec::new();
    for p in &required {
        if !exists_nofollow(p)? {
            missing.push(p);
        }
    }
    if !missing.is_empty() {
        bail!(
            "missing on the node: {} (the source or production environment is incomplete, or the node needs node_provision)",
            missing.join(", ")
        );
    }
    let sql = format!(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ('{}', '{}');",
        spec.source_db_name, spec.production_db_name
    );
    let databases = mysql_lines(None, &sql)?;
    for db in [&spec.source_db_name, &spec.production_db_name] {
        if !databases.contains(db) {
            bail!("the database {db} does not exist on the node");
        }
    }
    let table_prefix = table_prefix(spec, &spec.source_env_user, &spec.source_release_path)?;
    let production_table_prefix = if spec.production_env_root == spec.source_env_root {
        table_prefix.clone()
    } else {
        let root = trimmed(&spec.production_env_root);
        let owner = file_owner(&format!("{root}/shared/wp-config.php"))?;
        self::table_prefix(spec, &owner, &format!("{root}/current"))?
    };
    Ok(Probe {
        os,
        php_version,
        table_prefix,
        production_table_prefix,
        ipv6: Path::new("/proc/net/if_inet6").exists(),
    })
}

/// The user owning the regular file `path` (not a link, not root: the PHP bridge runs as it).
fn file_owner(path: &str) -> anyhow::Result<String> {
    let path = Path::new(path);
    let parent = nofollow::open_dir(path.parent().context("no parent")?)?;
    let name = path.file_name().context("no file name")?;
    match nofollow::stat_at(parent.as_fd(), name)? {
        Some((libc::S_IFREG, uid)) if uid != 0 => {
            let name = run_cmd("id", &["-nu", "--", &uid.to_string()])?;
            Ok(name.trim().to_string())
        }
        _ => bail!(
            "{} is not a regular file of the environment's user",
            path.display()
        ),
    }
}

/// Whether `path` exists (a link counts as itself), without following a link on the way; a
/// link in a parent directory is an error.
fn exists_nofollow(path: &str) -> anyhow::Result<bool> {
    let path = Path::new(path);
    let parent = path.parent().context("no parent")?;
    match nofollow::open_dir(parent) {
        Ok(dir) => {
            Ok(nofollow::kind_at(dir.as_fd(), path.file_name().context("no name")?)?.is_some())
        }
        Err(OpenError::Link(p)) => Err(OpenError::Link(p).into()),
        Err(_) => Ok(false),
    }
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
    ] {
        if let Err(OpenError::Link(p)) = nofollow::open_dir(Path::new(&dir)) {
            bail!("{}", OpenError::Link(p));
        }
    }
    for dir in [
        trimmed(&spec.env_root).to_string(),
        format!("{}/releases", trimmed(&spec.env_root)),
        format!("{}/shared", trimmed(&spec.env_root)),
    ] {
        // The new environment's own directories may not exist yet; links are refused.
        if let Err(OpenError::Link(p)) = nofollow::open_dir(Path::new(&dir)) {
            bail!("{}", OpenError::Link(p));
        }
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
    let env_root = trimmed(&spec.env_root);
    let baseline = drift::Request {
        root: PathBuf::from(format!("{}/current", trimmed(&spec.production_env_root))),
        table_prefix: production_table_prefix.to_string(),
        tables: spec.drift_tables.clone(),
        paths: spec.drift_paths.clone(),
    };

    let mut steps = Steps::default();
    ensure_user(&spec.env_user, env_root)?;
    ensure_directories(spec, env_root)?;
    ensure_php_directories(spec, env_root)?;
    ensure_database(spec)?;
    ensure_redis_user(spec)?;
    steps.done("user, directories, database");

    // Production's drift baseline is taken before the copies that could hide a change in it:
    // the tables before the database copy's snapshot, the paths before the uploads copy. A
    // production change made while the copies run is then seen as drift later (a false alarm at
    // worst) instead of being hidden in the baseline.
    let (release, uploads, database, installed) = std::thread::scope(|s| {
        let release = s.spawn(|| timed(|| copy_release(spec)));
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
                    to: spec.canonical_url.clone(),
                    connections: db_copy::default_connections(),
                })
            })?;
            Ok::<_, anyhow::Error>((tables, report, checksummed, copied))
        });
        let installed = timed(|| install_files(spec, &wp_config, vhost, php_version, env_root));
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
    switch_current(spec, env_root)?;
    reload(php_version)?;
    steps.done("switch and reloads");
    Ok(Applied {
        release_path: spec.release_path.clone(),
        table_prefix: table_prefix.to_string(),
        drift_baseline: drift::Checksums { tables, paths },
        search_replace: report.to_string(),
        warnings: report
            .warnings
            .iter()
            .take(20)
            .map(|w| format!("warning at byte {}: {}", w.offset, w.message))
            .collect(),
        steps: steps.0,
    })
}

/// `home` and `siteurl` = the canonical URL. The rewrite has normally set them already (read
/// with SQL, cheap); only an option that differs is set through the PHP bridge (which loads
/// WordPress, so caches and hooks see the change).
fn set_site_urls(spec: &Spec, table_prefix: &str) -> anyhow::Result<()> {
    let url = trimmed(&spec.canonical_url);
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
                    bridge(
                        spec,
                        &spec.env_user,
                        &spec.release_path,
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

fn join<T>(handle: std::thread::ScopedJoinHandle<'_, anyhow::Result<T>>) -> anyhow::Result<T> {
    handle
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("a copy thread panicked")))
}

fn ensure_user(user: &str, home: &str) -> anyhow::Result<()> {
    let exists = |db: &str| {
        Command::new("getent")
            .args([db, user])
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
    };
    if !exists("group").context("running getent")? {
        run_cmd("groupadd", &["--", user])?;
    }
    if !exists("passwd").context("running getent")? {
        run_cmd(
            "useradd",
            &[
                "--gid",
                user,
                "--shell",
                "/usr/sbin/nologin",
                "--home-dir",
                home,
                "--no-create-home",
                "--comment",
                "Pressluft environment",
                "--",
                user,
            ],
        )?;
    }
    Ok(())
}

/// Creates the directory when missing and sets owner, group and mode through its opened
/// descriptor (a link at `path` or in a parent is refused, never followed).
fn directory(path: &str, owner: &str, group: &str, mode: &str) -> anyhow::Result<()> {
    let (uid, _) = nofollow::user_ids(owner)?;
    let gid = nofollow::group_id(group)?;
    let mode = u32::from_str_radix(mode, 8).context("invalid mode")?;
    nofollow::ensure_dir(Path::new(path), uid, gid, mode)?;
    Ok(())
}

/// The new environment's user id and the web group's id.
fn env_ids(spec: &Spec) -> anyhow::Result<(u32, u32)> {
    Ok((
        nofollow::user_ids(&spec.env_user)?.0,
        nofollow::group_id(WEB_GROUP)?,
    ))
}

fn ensure_directories(spec: &Spec, env_root: &str) -> anyhow::Result<()> {
    let site_dir = Path::new(env_root)
        .parent()
        .and_then(Path::to_str)
        .context("env_root has no parent")?;
    directory(site_dir, SITE_OWNER, SITE_OWNER, "0711")?;
    for (path, mode) in [
        (env_root.to_string(), "0750"),
        (format!("{env_root}/releases"), "0750"),
        (format!("{env_root}/shared"), "0750"),
        (format!("{env_root}/shared/uploads"), "02750"),
    ] {
        directory(&path, &spec.env_user, WEB_GROUP, mode)?;
    }
    Ok(())
}

/// The environment's own PHP temp, upload-temp and session directories (the pool's
/// `sys_temp_dir`, `upload_tmp_dir`, `session.save_path`), as the env-user role creates them.
fn ensure_php_directories(spec: &Spec, env_root: &str) -> anyhow::Result<()> {
    for dir in PHP_PRIVATE_DIRS {
        directory(
            &format!("{env_root}/{dir}"),
            &spec.env_user,
            &spec.env_user,
            "0700",
        )?;
    }
    Ok(())
}

/// Directories of an environment only its PHP uses (see the env-user role).
pub const PHP_PRIVATE_DIRS: [&str; 3] = ["tmp", "upload-tmp", "sessions"];

/// The environment's Redis ACL user: its fragment (rendered by the playbook from the
/// redis-acl-user role's template) in `/etc/redis/acl.d`, then the ACL file rebuilt and loaded
/// as the redis-acl-user role does (`redis-acl-apply`).
fn ensure_redis_user(spec: &Spec) -> anyhow::Result<()> {
    let line = spec.files.redis_acl.trim();
    if line.lines().count() != 1 || !line.starts_with("user ") {
        bail!("the rendered Redis ACL fragment must be one user line");
    }
    install_file(
        &format!("{REDIS_ACL_DIR}/env-{}.acl", spec.environment_id),
        &format!("{line}\n"),
        "root:root",
        0o600,
        None,
    )?;
    run_cmd(REDIS_ACL_APPLY, &[]).context("loading the Redis ACL file")?;
    Ok(())
}

/// Database and user limited to it: the env-database role's SQL, rendered by the playbook
/// (the password travels base64-encoded inside it; fed through stdin, never argv).
fn ensure_database(spec: &Spec) -> anyhow::Result<()> {
    mysql_lines(None, &spec.files.database_sql).context("creating the database and its user")?;
    Ok(())
}

/// The source's current release copied to `release_path` (via a `.build` directory moved into
/// place when complete), with the shared links, the mu-plugin, owner and modes of the release
/// role. Root only creates the build directory (through descriptors); the copy reads as the
/// source's user and writes as the new environment's user, and the links, the mu-plugin and the
/// modes are set as that user too (issue 9: nothing follows a link as root in either tree).
fn copy_release(spec: &Spec) -> anyhow::Result<()> {
    let (uid, www) = env_ids(spec)?;
    let releases_path = format!("{}/releases", trimmed(&spec.env_root));
    let releases = nofollow::open_dir(Path::new(&releases_path))?;
    let in_releases = nofollow::fd_path(&releases);
    let name = OsStr::new(&spec.release_name);
    match nofollow::kind_at(releases.as_fd(), name)? {
        None => {}
        Some(libc::S_IFDIR) => {
            let existing = nofollow::open_dir_at(releases.as_fd(), name)?;
            if nofollow::has_file(existing.as_fd(), "wp-includes/version.php")? {
                return Ok(()); // complete from an earlier attempt
            }
            // std's remove_dir_all never follows a link below the directory.
            std::fs::remove_dir_all(in_releases.join(name))
                .context("removing an incomplete release")?;
        }
        Some(_) => bail!(
            "{} exists and is not a directory (a link?); refusing to use it",
            spec.release_path
        ),
    }
    let build_name = format!("{}.build", spec.release_name);
    match nofollow::kind_at(releases.as_fd(), OsStr::new(&build_name))? {
        None => {}
        Some(libc::S_IFDIR) => std::fs::remove_dir_all(in_releases.join(&build_name))
            .context("removing a half-built release")?,
        Some(_) => std::fs::remove_file(in_releases.join(&build_name))
            .context("removing a half-built release")?,
    }
    let build = nofollow::ensure_dir(
        &Path::new(&releases_path).join(&build_name),
        uid,
        www,
        0o2750,
    )?;
    let source = nofollow::open_dir(Path::new(&spec.source_release_path))?;
    copy_tree(
        &source,
        &spec.source_env_user,
        &build,
        &spec.env_user,
        false,
    )
    .context("copying the source's release")?;
    let mu_plugin = std::fs::read(format!("{}/pressluft-mu-plugin.php", spec.php_dir))
        .context("reading the mu-plugin")?;
    as_user(&spec.env_user, &build, COMPLETE_RELEASE, &mu_plugin)
        .context("completing the release")?;
    std::fs::rename(in_releases.join(&build_name), in_releases.join(name))
        .context("moving the release into place")?;
    Ok(())
}

/// Run as the new environment's user in the copied release: the release role's links to
/// `shared/`, the mu-plugin (from stdin), directories 0750 and files 0640 (links untouched; the
/// group www-data comes from the set-group-ID build directory). The same steps as the release
/// role's script (ansible/roles/release/tasks/main.yml).
const COMPLETE_RELEASE: &str = r#"set -eu
if [ -L wp-content ] || [ ! -d wp-content ]; then
  echo "wp-content is not a directory in the source release" >&2
  exit 1
fi
rm -rf -- wp-config.php wp-content/uploads wp-content/object-cache.php
if [ -L wp-content/mu-plugins ]; then rm -f -- wp-content/mu-plugins; fi
mkdir -p wp-content/mu-plugins
rm -f -- wp-content/mu-plugins/pressluft.php
ln -s ../../shared/wp-config.php wp-config.php
ln -s ../../../shared/uploads wp-content/uploads
ln -s ../../../shared/object-cache.php wp-content/object-cache.php
cat > wp-content/mu-plugins/pressluft.php
find . -type d -exec chmod 00750 {} +
find . -type f -exec chmod 0640 {} +
"#;

/// Runs the shell `script` (a constant: no data in it) as `user` with `dir` as its working
/// directory and `input` on stdin.
fn as_user(user: &str, dir: &OwnedFd, script: &str, input: &[u8]) -> anyhow::Result<()> {
    let mut child = Command::new("runuser")
        .args([
            "-u",
            user,
            "--",
            "env",
            "-i",
            BRIDGE_PATH,
            "sh",
            "-c",
            script,
        ])
        .current_dir(nofollow::fd_path(dir))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting runuser")?;
    let mut stdin = child.stdin.take().context("stdin")?;
    std::io::Write::write_all(&mut stdin, input)?;
    drop(stdin);
    super::wait_child(child, "the release script")
}

/// 1 MiB records: with tar's default 10 KiB the pipe took 5× the time of `cp -a` here; with
/// these it copies 300 MB about as fast as `cp -a`.
const TAR_RECORDS: &str = "--blocking-factor=2048";

/// Copies the contents of the opened directory `from` into the opened directory `to`: `tar`
/// reading as `from_user` piped into `tar` writing as `to_user`, each with its directory as
/// working directory. No root process reads or writes inside either tree, so a link there leads
/// only where its own user could go anyway; the written files belong to `to_user` from the
/// start (no recursive chown afterwards). `keep_modes`: the source's modes, else the umask's.
fn copy_tree(
    from: &OwnedFd,
    from_user: &str,
    to: &OwnedFd,
    to_user: &str,
    keep_modes: bool,
) -> anyhow::Result<()> {
    let mut reader = Command::new("runuser")
        .args(["-u", from_user, "--", "env", "-i", BRIDGE_PATH])
        .args([
            "tar",
            "--create",
            TAR_RECORDS,
            "--file=-",
            "--warning=no-file-changed",
            ".",
        ])
        .current_dir(nofollow::fd_path(from))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting tar (reading)")?;
    let archive = reader.stdout.take().context("tar stdout")?;
    // The writer's primary group is the web group: a non-member's tar clears the set-group-ID
    // bit when it restores a directory's mode, and everything created after that would get the
    // user's own group, which Nginx cannot read.
    let writer = Command::new("runuser")
        .args([
            "-u",
            to_user,
            "-g",
            WEB_GROUP,
            "--",
            "env",
            "-i",
            BRIDGE_PATH,
        ])
        .args([
            "tar",
            "--extract",
            TAR_RECORDS,
            "--read-full-records",
            "--file=-",
            "--no-same-owner",
            "--no-overwrite-dir",
            if keep_modes {
                "--same-permissions"
            } else {
                "--no-same-permissions"
            },
        ])
        .current_dir(nofollow::fd_path(to))
        .stdin(Stdio::from(archive))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting tar (writing)")?;
    let read = std::thread::spawn(move || reader.wait_with_output());
    let written = writer.wait_with_output().context("waiting for tar")?;
    let read = read
        .join()
        .map_err(|_| anyhow::anyhow!("a copy thread panicked"))?
        .context("waiting for tar")?;
    // tar --create exits 1 when a file changed while it was read (a live site's uploads).
    if !(read.status.success() || read.status.code() == Some(1)) {
        bail!(
            "reading as {from_user} failed ({}): {}",
            read.status,
            String::from_utf8_lossy(&read.stderr).trim()
        );
    }
    if !written.status.success() {
        bail!(
            "writing as {to_user} failed ({}): {}",
            written.status,
            String::from_utf8_lossy(&written.stderr).trim()
        );
    }
    Ok(())
}

fn copy_uploads(spec: &Spec, env_root: &str) -> anyhow::Result<()> {
    let (uid, www) = env_ids(spec)?;
    let from = format!("{}/shared/uploads", trimmed(&spec.source_env_root));
    let from = nofollow::open_dir(Path::new(&from))?;
    let to = nofollow::ensure_dir(
        Path::new(&format!("{env_root}/shared/uploads")),
        uid,
        www,
        0o2750,
    )?;
    copy_tree(&from, &spec.source_env_user, &to, &spec.env_user, true)?;
    nofollow::set_owner_mode(&to, uid, www, 0o2750)?;
    Ok(())
}

/// Checks a candidate file (by path) before it replaces the real one.
type Validate<'a> = &'a dyn Fn(&str) -> anyhow::Result<()>;

/// Writes `content` next to `dest`, sets owner and mode, optionally validates the candidate,
/// then renames it into place (readers never see a partial file).
fn install_file(
    dest: &str,
    content: &str,
    owner: &str,
    mode: u32,
    validate: Option<Validate<'_>>,
) -> anyhow::Result<()> {
    // The directory is opened without following links and the file created in it (O_EXCL),
    // owner and mode set through the open file, then renamed within that directory.
    let dest_path = Path::new(dest);
    let parent = dest_path.parent().context("no parent directory")?;
    let name = dest_path.file_name().context("no file name")?;
    let dir = nofollow::open_dir(parent)?;
    let in_dir = nofollow::fd_path(&dir);
    let mut file = tempfile::Builder::new()
        .prefix(".pressluft-")
        .tempfile_in(&in_dir)
        .with_context(|| format!("creating a file in {}", parent.display()))?;
    std::io::Write::write_all(&mut file, content.as_bytes())?;
    let (user, group) = owner.split_once(':').unwrap_or((owner, owner));
    std::os::unix::fs::fchown(
        file.as_file(),
        Some(nofollow::user_ids(user)?.0),
        Some(nofollow::group_id(group)?),
    )?;
    file.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    let temp_name = file.path().file_name().context("no temp name")?;
    let path = parent
        .join(temp_name)
        .to_str()
        .context("non-UTF-8 temp path")?
        .to_string();
    if let Some(check) = validate {
        check(&path).with_context(|| format!("{dest} did not validate"))?;
    }
    file.persist(in_dir.join(name))
        .with_context(|| format!("writing {dest}"))?;
    Ok(())
}

/// `wp_config` with the table prefix in place, `vhost` the variant for this kernel.
fn install_files(
    spec: &Spec,
    wp_config: &str,
    vhost: &str,
    php_version: &str,
    env_root: &str,
) -> anyhow::Result<()> {
    let user_owner = format!("{0}:{0}", spec.env_user);
    install_file(
        &format!("{env_root}/shared/wp-config.php"),
        wp_config,
        &user_owner,
        0o600,
        None,
    )?;
    // The Redis drop-in, and a purge of the environment's keys when it comes or goes (as the
    // redis-object-cache role's handler: a new drop-in must not read another life's entries).
    let drop_in = format!("{env_root}/shared/object-cache.php");
    // Read and removed through the opened shared/ directory, never through a link.
    let shared = nofollow::open_dir(Path::new(&format!("{env_root}/shared")))?;
    let in_shared = nofollow::fd_path(&shared).join("object-cache.php");
    let existing = match nofollow::kind_at(shared.as_fd(), OsStr::new("object-cache.php"))? {
        Some(libc::S_IFREG) => std::fs::read_to_string(&in_shared).ok(),
        Some(_) => Some(String::new()), // not ours: replaced below
        None => None,
    };
    if spec.redis_cache_enabled {
        let content = std::fs::read_to_string(format!("{}/object-cache.php", spec.php_dir))
            .context("reading the Redis drop-in")?;
        let owner = format!("{}:{WEB_GROUP}", spec.env_user);
        install_file(&drop_in, &content, &owner, 0o640, None)?;
        if existing.as_deref() != Some(content.as_str()) {
            purge_redis(&spec.redis_prefix)?;
        }
    } else if existing.is_some() {
        std::fs::remove_file(&in_shared)?;
        purge_redis(&spec.redis_prefix)?;
    }

    let php_fpm = format!("/usr/sbin/php-fpm{php_version}");
    let pool = format!(
        "/etc/php/{php_version}/fpm/pool.d/pressluft-{}.conf",
        spec.environment_id
    );
    let check_pool = |candidate: &str| run_cmd(&php_fpm, &["-t", "-y", candidate]).map(drop);
    install_file(
        &pool,
        &spec.files.pool,
        "root:root",
        0o644,
        Some(&check_pool),
    )?;
    let server_block = format!(
        "/etc/nginx/sites-enabled/pressluft-env-{}.conf",
        spec.environment_id
    );
    // The candidate sits in the same directory as the server block; nginx-validate copies it
    // to the destination for the test, so the temporary name is never included by nginx.
    let check_vhost =
        |candidate: &str| run_cmd(NGINX_VALIDATE, &[candidate, &server_block]).map(drop);
    install_file(&server_block, vhost, "root:root", 0o644, Some(&check_vhost))?;
    Ok(())
}

/// Deletes the environment's Redis keys (never FLUSHDB: Redis is shared by the node), as the
/// admin user.
fn purge_redis(prefix: &str) -> anyhow::Result<()> {
    let pattern = format!("{prefix}*");
    let keys = run_cmd(REDIS_ADMIN, &["--scan", "--pattern", &pattern])?;
    let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
    for batch in keys.chunks(500) {
        let mut args = vec!["unlink"];
        args.extend_from_slice(batch);
        run_cmd(REDIS_ADMIN, &args)?;
    }
    Ok(())
}

fn switch_current(spec: &Spec, env_root: &str) -> anyhow::Result<()> {
    let (uid, www) = env_ids(spec)?;
    let root = nofollow::open_dir(Path::new(env_root))?;
    let tmp = nofollow::fd_path(&root).join("current.tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("releases/{}", spec.release_name), &tmp)?;
    std::os::unix::fs::lchown(&tmp, Some(uid), Some(www))?;
    std::fs::rename(&tmp, nofollow::fd_path(&root).join("current")).context("switching current")?;
    Ok(())
}

/// Checks and reloads PHP-FPM and Nginx, both at once (`service` works with and without
/// systemd).
fn reload(php_version: &str) -> anyhow::Result<()> {
    std::thread::scope(|s| {
        let php = s.spawn(|| {
            run_cmd(&format!("/usr/sbin/php-fpm{php_version}"), &["-t"])?;
            run_cmd("service", &[&format!("php{php_version}-fpm"), "reload"]).map(drop)
        });
        let nginx = s.spawn(|| {
            run_cmd("nginx", &["-t", "-q"])?;
            run_cmd("service", &["nginx", "reload"]).map(drop)
        });
        join(php).and(join(nginx))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_keys_match_the_playbooks_distribution_facts() {
        let debian =
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n";
        assert_eq!(os_key(debian), "debian 12");
        let ubuntu = "NAME=\"Ubuntu\"\nVERSION_ID=\"24.04\"\nID=ubuntu\nID_LIKE=debian\n";
        assert_eq!(os_key(ubuntu), "ubuntu 24.04");
        assert_eq!(os_key(""), " ");
    }
}
