//! `pressluft node site-import` (`site_import`, backups-restore-promotion.md §9): another
//! WordPress brought into an environment from an archive — `db.sql` (the database export),
//! `files/` (the contents of `wp-content`) and an optional `meta.json`
//! (`{"source_url": "https://old.example"}`), as `.tar.gz` or `.zip` (docs/decisions.md
//! "Operator toolkit (issue 13): import").
//!
//! Nothing in the environment changes until the archive has proven usable:
//! 1. Fetch ([`deploy::fetch_archive`], the deploy's `upload` sources) and unpack
//!    ([`deploy::archive::unpack`]: no `..`, absolute paths, hard links, special files, or links
//!    leaving the archive) into root's private temporary directory — `SOURCE_FETCH_FAILED`
//!    (exit 6) / `ARCHIVE_INVALID` (exit 7).
//! 2. Validate ([`validate`]): `db.sql` a non-empty regular text file, `files/` a directory whose
//!    links all stay inside it, `meta.json` (optional) small JSON with an http(s) `source_url`.
//! 3. Import `db.sql` into a scratch database **as the environment's database user** (granted
//!    that scratch database for the import only), so the dump's SQL can reach no other
//!    database and no server setting; `mysql --binary-mode` (no client commands). Detect the
//!    prefix `P` for which `Poptions` exists ([`detect_prefix`]); read the source URL
//!    (`meta.json`, else `home`, then `siteurl`). A dump that does not import or has no
//!    options table is `ARCHIVE_INVALID`: still nothing changed.
//!
//! Then: the pre-import backup (unless an earlier attempt completed it); the serialized-safe
//! rewrite into a second scratch database ([`db_copy::copy`], JSON-escaped forms and the other
//! scheme included); a new release (the current release's core, `files/` as `wp-content`);
//! `files/uploads` swapped in as `shared/uploads`; the rewritten tables swapped into the live
//! database in one `RENAME TABLE` (every old table goes); `$table_prefix` written to
//! `wp-config.php`; `home`/`siteurl` set; WordPress's database upgrade through the PHP bridge
//! (a failure is a warning: the health gate judges the site); the Redis drop-in per flag; and
//! [`switch::go_live`]. The health gate and its rollback (release, database, uploads and the
//! prefix from the pre-import backup) are the control plane's.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context;
use serde::Serialize;

use super::backup::restore::{
    open_shared, remove_entry, rename_at, scratch_databases, swap_tables,
};
use super::database::{is_identifier, mysql_lines, require_existing};
use super::db_copy::{self, CLIENT_ARGS};
use super::deploy::{self, archive, layout, DeployError};
use super::process::{as_user, wait_child};
use super::spec::{self, SiteImportSpec};
use super::switch::{self, WentLive};
use super::update::{pre_operation_backup, PreBackup};
use super::users::env_ids;
use super::{bridge, files, nofollow, releases, services, wp_config};
use crate::deploys::source::{self as source_ref, Source, UploadLocation};
use crate::domain::ReleaseSourceType;

/// The largest `meta.json` read.
const META_MAX: u64 = 64 * 1024;
/// The largest `db.sql` accepted (a sanity bound, not a quota).
pub const DB_SQL_MAX: u64 = 50 * 1024 * 1024 * 1024;
/// Where `shared/uploads` is assembled before the swap.
const UPLOADS_INCOMING: &str = "uploads.import";

/// What `site-import` prints (the result file of site-import.yml).
#[derive(Debug, Serialize)]
pub struct Imported {
    pub release_name: String,
    /// `sha256:<hex>` of the archive.
    pub archive_sha256: String,
    pub table_prefix: String,
    pub source_url: String,
    pub target_url: String,
    /// The rewrite's summary line.
    pub search_replace: String,
    pub pre_backup: Option<PreBackup>,
    pub warnings: Vec<String>,
    pub went_live: WentLive,
}

/// What the archive holds, validated.
#[derive(Debug, PartialEq)]
pub struct Validated {
    pub db_sql: PathBuf,
    pub files: PathBuf,
    /// `meta.json`'s `source_url`, without a trailing slash.
    pub source_url: Option<String>,
}

fn invalid(message: impl Into<String>) -> DeployError {
    DeployError::ArchiveInvalid(message.into())
}

fn failed(e: anyhow::Error) -> DeployError {
    DeployError::Failed(crate::sources::redact_userinfo(&format!("{e:#}")).into_owned())
}

/// `pressluft node site-import`: exit 6 / 7 / 3 / 4 on those failures (before anything live
/// changed), 1 otherwise.
pub fn run() -> anyhow::Result<()> {
    spec::run_command(check, |spec, checked: &Checked| {
        match apply(spec, checked) {
            Ok(done) => Ok(done),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(e.exit_code());
            }
        }
    })
}

/// What the check found.
pub struct Checked {
    pub location: UploadLocation,
    pub php_version: String,
    /// The release `current` points to now.
    pub current: String,
}

/// Preconditions (nothing changes).
pub fn check(spec: &SiteImportSpec) -> anyhow::Result<Checked> {
    let source = source_ref::parse(
        ReleaseSourceType::Upload,
        &spec.archive_url,
        spec.allow_loopback_sources,
    )
    .map_err(|e| {
        anyhow::anyhow!(
            "archive_url: {}",
            crate::sources::redact_userinfo(&e.to_string())
        )
    })?;
    let Source::Upload { location } = source else {
        anyhow::bail!("archive_url is not an archive");
    };
    if location == UploadLocation::S3 && spec.s3.is_none() {
        anyhow::bail!("an s3:// archive needs the backup storage's S3 access");
    }
    for name in [&spec.release_name, &spec.current_release_name] {
        if name.is_empty() || name.starts_with('.') || name.contains('/') {
            anyhow::bail!("invalid release name {name:?}");
        }
    }
    for name in [&spec.db_name, &spec.db_user] {
        if !is_identifier(name) {
            anyhow::bail!("{name:?} is not a plain database identifier");
        }
    }
    if !(spec.canonical_url.starts_with("http://") || spec.canonical_url.starts_with("https://")) {
        anyhow::bail!("canonical_url must be an http(s) URL");
    }
    let env_root = &spec.go_live.env_root;
    let current = releases::current(env_root)?.context("the environment has no current release")?;
    // A retry after the switch finds the new release live already.
    if current != spec.release_name && current != spec.current_release_name {
        anyhow::bail!(
            "current is {current}, not the expected release {}: the environment changed",
            spec.current_release_name
        );
    }
    let current_dir = format!("{env_root}/releases/{}", spec.current_release_name);
    let dir = nofollow::open_dir(Path::new(&current_dir))
        .map_err(|e| anyhow::anyhow!("the current release {current_dir}: {e}"))?;
    if !nofollow::has_file(dir.as_fd(), "wp-includes/version.php")? {
        anyhow::bail!("the current release {current_dir} is not complete");
    }
    let bridge_php = format!("{}/bridge.php", spec.node.php_dir);
    if spec.node.php_dir.is_empty() || !Path::new(&bridge_php).is_file() {
        anyhow::bail!("the PHP bridge {bridge_php} is missing: provision the node again");
    }
    require_existing(&[spec.db_name.as_str()])?;
    open_shared(Path::new(env_root)).map_err(|e| anyhow::anyhow!("{e}"))?;
    wp_config::read(env_root)?;
    let php_version = services::php_version(&spec.node.supported_os)?;
    Ok(Checked {
        location,
        php_version,
        current,
    })
}

/// Validates the unpacked archive at `root` (see the module doc); changes nothing.
pub fn validate(root: &Path) -> Result<Validated, DeployError> {
    let db_sql = root.join("db.sql");
    match std::fs::symlink_metadata(&db_sql) {
        Ok(m) if m.is_file() && m.len() > 0 && m.len() <= DB_SQL_MAX => {}
        Ok(m) if m.is_file() && m.len() == 0 => return Err(invalid("db.sql is empty")),
        Ok(m) if m.is_file() => return Err(invalid("db.sql is larger than 50 GiB")),
        Ok(_) => return Err(invalid("db.sql is not a regular file")),
        Err(_) => {
            return Err(invalid(
                "the archive has no db.sql (an import needs db.sql and files/)",
            ))
        }
    }
    let mut head = vec![0u8; 64 * 1024];
    let n = File::open(&db_sql)
        .and_then(|mut f| f.read(&mut head))
        .map_err(|e| invalid(format!("db.sql cannot be read: {e}")))?;
    if head[..n].contains(&0) {
        return Err(invalid(
            "db.sql is not a text SQL dump (it holds NUL bytes)",
        ));
    }
    let files = root.join("files");
    match std::fs::symlink_metadata(&files) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(invalid("files is not a directory")),
        Err(_) => {
            return Err(invalid(
                "the archive has no files/ directory (an import needs db.sql and files/)",
            ))
        }
    }
    links_stay_inside(&files)?;
    let meta = root.join("meta.json");
    let source_url = match std::fs::symlink_metadata(&meta) {
        Err(_) => None,
        Ok(m) if !m.is_file() => return Err(invalid("meta.json is not a regular file")),
        Ok(m) if m.len() > META_MAX => return Err(invalid("meta.json is larger than 64 KiB")),
        Ok(_) => {
            let text = std::fs::read_to_string(&meta)
                .map_err(|e| invalid(format!("meta.json cannot be read: {e}")))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| invalid(format!("meta.json is not JSON: {e}")))?;
            match value.get("source_url") {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(url)) => Some(check_source_url(url)?),
                Some(_) => return Err(invalid("meta.json: source_url must be a string")),
            }
        }
    };
    Ok(Validated {
        db_sql,
        files,
        source_url,
    })
}

/// A source URL: http(s), no whitespace or quotes, without its trailing slash.
pub fn check_source_url(url: &str) -> Result<String, DeployError> {
    let url = url.trim().trim_end_matches('/');
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or("");
    if host.is_empty()
        || url.len() > 2000
        || url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\'' || c == '"' || c == '\\')
    {
        return Err(invalid(format!(
            "the source URL {:?} is not an http(s) URL",
            url.chars().take(100).collect::<String>()
        )));
    }
    Ok(url.to_string())
}

/// Every link below `dir` resolves (lexically) inside `dir`: `files/` becomes `wp-content`, so
/// a link may not reach `db.sql` or anything else outside it.
pub fn links_stay_inside(dir: &Path) -> Result<(), DeployError> {
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let entries = std::fs::read_dir(dir.join(&rel))
            .map_err(|e| invalid(format!("reading files/{}: {e}", rel.display())))?;
        for entry in entries {
            let entry = entry.map_err(|e| invalid(format!("reading files/: {e}")))?;
            let child = rel.join(entry.file_name());
            let kind = entry
                .file_type()
                .map_err(|e| invalid(format!("files/{}: {e}", child.display())))?;
            if kind.is_symlink() {
                let target = std::fs::read_link(entry.path())
                    .map_err(|e| invalid(format!("files/{}: {e}", child.display())))?;
                if !archive::link_stays_inside(&child, &target) {
                    return Err(invalid(format!(
                        "files/{} is a link pointing outside files/ ({})",
                        child.display(),
                        target.display()
                    )));
                }
            } else if kind.is_dir() {
                stack.push(child);
            }
        }
    }
    Ok(())
}

/// The table prefix of an imported database: the `P` for which `Poptions` is a table (with
/// `Pposts` preferred when several match); `None` when none.
pub fn detect_prefix(tables: &[String]) -> Option<String> {
    let mut candidates: Vec<&str> = tables
        .iter()
        .filter_map(|t| t.strip_suffix("options"))
        .filter(|p| wp_config::is_table_prefix(p))
        .collect();
    candidates.sort_by_key(|p| {
        (
            !tables.iter().any(|t| *t == format!("{p}posts")),
            p.len(),
            p.to_string(),
        )
    });
    candidates.first().map(|p| p.to_string())
}

/// Fetches, validates, imports aside (see the module doc).
pub fn apply(spec: &SiteImportSpec, checked: &Checked) -> Result<Imported, DeployError> {
    let live = &spec.go_live;
    let env_root = live.env_root.trim_end_matches('/');
    let user = live.env_user.as_str();
    let php_dir = spec.node.php_dir.as_str();

    // A retry after the switch: the new release is live; make sure it is, report it.
    if checked.current == spec.release_name {
        let pre_backup = match &spec.pre_backup {
            Some(create) => Some(
                pre_operation_backup(create, php_dir, "the pre-import backup").map_err(failed)?,
            ),
            None => None,
        };
        let content = wp_config::read(env_root).map_err(failed)?;
        let went_live = switch::go_live(
            live,
            &spec.release_name,
            &[spec.current_release_name.as_str()],
            &checked.php_version,
        )
        .map_err(failed)?;
        return Ok(Imported {
            release_name: spec.release_name.clone(),
            archive_sha256: String::new(),
            table_prefix: wp_config::table_prefix_of(&content).unwrap_or_default(),
            source_url: String::new(),
            target_url: spec.canonical_url.clone(),
            search_replace: "already imported (retry after the switch)".into(),
            pre_backup,
            warnings: Vec::new(),
            went_live,
        });
    }

    let tmp = tempfile::Builder::new()
        .prefix("pressluft-import-")
        .tempdir_in("/var/tmp")
        .map_err(|e| DeployError::Failed(format!("creating the temporary directory: {e}")))?;

    // 1–2. Fetch, unpack, validate.
    let mut file = deploy::fetch_archive(
        &spec.archive_url,
        checked.location,
        spec.s3.as_ref(),
        spec.allow_loopback_sources,
    )?;
    let archive_sha256 = sha256_of(&mut file)?;
    let unpacked = tmp.path().join("archive");
    std::fs::create_dir(&unpacked).map_err(|e| DeployError::Failed(e.to_string()))?;
    let root = archive::unpack(file, &unpacked)?;
    let validated = validate(&root)?;

    // 3. The dump into a scratch database, as the environment's database user.
    let (incoming, rewritten) = scratch_databases(&format!("{}_import", spec.db_name));
    let scratch = Scratch {
        incoming: incoming.clone(),
        rewritten: rewritten.clone(),
        db_user: spec.db_user.clone(),
    };
    scratch.create().map_err(failed)?;
    let imported = import_dump(spec, &validated.db_sql, &incoming, tmp.path());
    if let Err(e) = imported {
        drop(scratch);
        return Err(e);
    }
    let tables = super::backup::restore::base_tables(&incoming)
        .map_err(|e| DeployError::Failed(e.to_string()))?;
    let Some(prefix) = detect_prefix(&tables) else {
        return Err(invalid(
            "db.sql holds no WordPress options table (no <prefix>options table was created)",
        ));
    };
    let source_url = match &validated.source_url {
        Some(url) => url.clone(),
        None => source_url_from_options(&incoming, &prefix)?,
    };
    let target_url = spec.canonical_url.trim_end_matches('/').to_string();

    // Nothing live has changed so far. The pre-import backup first.
    let pre_backup = match &spec.pre_backup {
        Some(create) => {
            Some(pre_operation_backup(create, php_dir, "the pre-import backup").map_err(failed)?)
        }
        None => None,
    };

    // The rewrite, aside.
    let report = db_copy::copy(&db_copy::Request {
        source_db: incoming.clone(),
        target_db: rewritten.clone(),
        from: source_url.clone(),
        to: target_url.clone(),
        connections: db_copy::default_connections(),
    })
    .map_err(|e| failed(e.context("rewriting the imported database")))?;
    set_site_urls(&rewritten, &prefix, &target_url).map_err(failed)?;
    // The raw import is no longer needed; its database receives the old live tables next.
    scratch.empty_incoming().map_err(failed)?;

    // The release: the current core with files/ as wp-content.
    layout::chown_tree(&validated.files, user)?;
    // An earlier attempt's release (not live: `current` is the previous one) is rebuilt from
    // this archive.
    remove_release(env_root, &spec.release_name);
    let build = releases::start(env_root, &spec.release_name, user)
        .map_err(failed)?
        .ok_or_else(|| DeployError::Failed("the new release could not be started".into()))?;
    let built = build_release(spec, &validated.files, &build.dir)
        .and_then(|()| build.complete(user, php_dir).map_err(failed));
    if let Err(e) = built {
        remove_release(env_root, &spec.release_name);
        return Err(e);
    }

    // From here on the environment changes: uploads, database, prefix, switch.
    replace_uploads(env_root, user, &validated.files.join("uploads"))?;
    swap_tables(&spec.db_name, &rewritten, &incoming, &Default::default())
        .map_err(|e| DeployError::Failed(e.to_string()))?;
    wp_config::set_table_prefix(env_root, user, &prefix).map_err(failed)?;
    drop(scratch);

    let mut warnings: Vec<String> = report
        .warnings
        .iter()
        .take(20)
        .map(|w| format!("rewrite warning at byte {}: {}", w.offset, w.message))
        .collect();
    let release_path = format!("{env_root}/releases/{}", spec.release_name);
    if let Err(e) = bridge::call(php_dir, user, &release_path, None, &["db-upgrade"]) {
        warnings.push(format!("WordPress's database upgrade: {e:#}"));
    }
    services::sync_object_cache(
        env_root,
        user,
        php_dir,
        spec.redis_cache_enabled,
        &live.redis_prefix,
    )
    .map_err(failed)?;
    let went_live = switch::go_live(
        live,
        &spec.release_name,
        &[spec.current_release_name.as_str()],
        &checked.php_version,
    )
    .map_err(failed)?;
    Ok(Imported {
        release_name: spec.release_name.clone(),
        archive_sha256,
        table_prefix: prefix,
        source_url,
        target_url,
        search_replace: report.to_string(),
        pre_backup,
        warnings,
        went_live,
    })
}

fn sha256_of(file: &mut File) -> Result<String, DeployError> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    std::io::copy(file, &mut hasher)
        .map_err(|e| invalid(format!("the archive cannot be read: {e}")))?;
    std::io::Seek::rewind(file).map_err(|e| DeployError::Failed(e.to_string()))?;
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// The two scratch databases of an import; the environment's database user may use the first
/// (the dump is imported as that user) while it exists. Dropped, with the grant revoked, when
/// this goes out of scope.
struct Scratch {
    incoming: String,
    rewritten: String,
    db_user: String,
}

impl Scratch {
    /// `name` as a grant's database pattern (`_` escaped: no wildcard).
    fn grant_name(name: &str) -> String {
        name.replace('_', "\\_")
    }

    fn drop_sql(&self) -> String {
        format!(
            "DROP DATABASE IF EXISTS `{}`; DROP DATABASE IF EXISTS `{}`;",
            self.incoming, self.rewritten
        )
    }

    fn create(&self) -> anyhow::Result<()> {
        self.revoke();
        mysql_lines(
            None,
            &format!(
                "{} CREATE DATABASE `{in_}` CHARACTER SET utf8mb4; \
                 CREATE DATABASE `{rw}` CHARACTER SET utf8mb4; \
                 GRANT ALL PRIVILEGES ON `{grant}`.* TO '{user}'@'localhost';",
                self.drop_sql(),
                in_ = self.incoming,
                rw = self.rewritten,
                grant = Self::grant_name(&self.incoming),
                user = self.db_user,
            ),
        )
        .context("preparing the scratch databases")?;
        Ok(())
    }

    /// The first scratch database emptied (the grant on it revoked): the swap moves the live
    /// tables there, and an imported table of the same name must not be in the way.
    fn empty_incoming(&self) -> anyhow::Result<()> {
        self.revoke();
        mysql_lines(
            None,
            &format!(
                "DROP DATABASE IF EXISTS `{0}`; CREATE DATABASE `{0}` CHARACTER SET utf8mb4;",
                self.incoming
            ),
        )
        .context("emptying the scratch database")?;
        Ok(())
    }

    fn revoke(&self) {
        let _ = mysql_lines(
            None,
            &format!(
                "REVOKE ALL PRIVILEGES ON `{}`.* FROM '{}'@'localhost';",
                Self::grant_name(&self.incoming),
                self.db_user
            ),
        );
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.revoke();
        if let Err(e) = mysql_lines(None, &self.drop_sql()) {
            eprintln!("warning: dropping the import's scratch databases: {e:#}");
        }
    }
}

/// Imports `db_sql` into `scratch` as the environment's database user (its password through a
/// root-only option file in the private temporary directory, never on a command line), the
/// client's own commands off (`--binary-mode`). A dump that does not import is `ARCHIVE_INVALID`.
fn import_dump(
    spec: &SiteImportSpec,
    db_sql: &Path,
    scratch: &str,
    tmp: &Path,
) -> Result<(), DeployError> {
    let option_file = tmp.join("client.cnf");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&option_file)
        .map_err(|e| DeployError::Failed(format!("writing the client option file: {e}")))?;
    // Option-file values are quoted; a password never holds a quote or backslash unescaped.
    let quoted = spec.db_password.replace('\\', "\\\\").replace('"', "\\\"");
    writeln!(
        f,
        "[client]\nuser={}\npassword=\"{quoted}\"\nhost=localhost",
        spec.db_user
    )
    .map_err(|e| DeployError::Failed(format!("writing the client option file: {e}")))?;
    drop(f);
    let dump = File::open(db_sql).map_err(|e| invalid(format!("db.sql cannot be read: {e}")))?;
    let child = std::process::Command::new("mysql")
        .arg(format!("--defaults-extra-file={}", option_file.display()))
        .args(CLIENT_ARGS)
        .arg("--database")
        .arg(scratch)
        .current_dir("/")
        .stdin(Stdio::from(dump))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| DeployError::Failed(format!("starting the mysql client: {e}")))?;
    let result = wait_child(child, "importing db.sql");
    let _ = std::fs::remove_file(&option_file);
    result.map_err(|e| {
        let message = format!("{e:#}");
        let short: String = message.chars().take(400).collect();
        invalid(format!("db.sql does not import: {short}"))
    })
}

/// `home`, else `siteurl`, of the imported options.
fn source_url_from_options(database: &str, prefix: &str) -> Result<String, DeployError> {
    let rows = mysql_lines(
        Some(database),
        &format!(
            "SELECT option_name, TO_BASE64(option_value) FROM `{prefix}options` \
             WHERE option_name IN ('home', 'siteurl');"
        ),
    )
    .map_err(|e| invalid(format!("reading home and siteurl from db.sql: {e:#}")))?;
    let value = |name: &str| {
        rows.iter().find_map(|r| {
            let (n, v) = r.split_once('\t')?;
            (n == name).then(|| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(v.replace("\\n", "").as_bytes())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
            })?
        })
    };
    let url = value("home")
        .filter(|u| !u.trim().is_empty())
        .or_else(|| value("siteurl"))
        .ok_or_else(|| {
            invalid("no source URL: meta.json has no source_url and the options hold no home or siteurl")
        })?;
    check_source_url(&url)
}

/// `home` and `siteurl` = `url` (base64 into SQL: no quoting of the value).
pub(crate) fn set_site_urls(database: &str, prefix: &str, url: &str) -> anyhow::Result<()> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(url.as_bytes());
    mysql_lines(
        Some(database),
        &format!(
            "UPDATE `{prefix}options` SET option_value = FROM_BASE64('{b64}') \
             WHERE option_name IN ('home', 'siteurl');"
        ),
    )
    .context("setting home and siteurl")?;
    Ok(())
}

/// Removes `releases/<name>` and `releases/<name>.build` (never following a link).
fn remove_release(env_root: &str, name: &str) {
    let Ok(releases) = nofollow::open_dir(Path::new(&format!("{env_root}/releases"))) else {
        return;
    };
    let dir = nofollow::fd_path(&releases);
    for n in [name.to_string(), format!("{name}.build")] {
        let _ = std::fs::remove_dir_all(dir.join(&n));
    }
}

/// Run as the environment's user in the build directory: an empty `wp-content` for `files/`.
const REPLACE_WP_CONTENT: &str = "set -eu\nrm -rf -- wp-content\nmkdir wp-content\n";

/// The current release copied, its `wp-content` replaced by `files/` (both copies as the
/// environment's user; `files/` is the user's already).
fn build_release(
    spec: &SiteImportSpec,
    files_dir: &Path,
    build: &std::os::fd::OwnedFd,
) -> Result<(), DeployError> {
    let user = spec.go_live.env_user.as_str();
    let current = nofollow::open_dir(Path::new(&format!(
        "{}/releases/{}",
        spec.go_live.env_root, spec.current_release_name
    )))
    .map_err(|e| DeployError::Failed(format!("opening the current release: {e}")))?;
    files::copy_tree(&current, user, build, user, true).map_err(failed)?;
    as_user(user, build, REPLACE_WP_CONTENT, b"").map_err(failed)?;
    let content = nofollow::open_dir_at(build.as_fd(), OsStr::new("wp-content"))
        .map_err(|e| DeployError::Failed(format!("opening wp-content: {e}")))?;
    let source = nofollow::open_dir(files_dir)
        .map_err(|e| DeployError::Failed(format!("opening files/: {e}")))?;
    files::copy_tree(&source, user, &content, user, true).map_err(failed)
}

/// `shared/uploads` replaced by `files/uploads` (empty when the archive has none): copied as
/// the user into `shared/uploads.import`, then swapped in (`RENAME_EXCHANGE`), the old tree
/// removed — no link followed (as the restore does).
fn replace_uploads(env_root: &str, user: &str, uploads: &Path) -> Result<(), DeployError> {
    let shared =
        open_shared(Path::new(env_root)).map_err(|e| DeployError::Failed(e.to_string()))?;
    let (uid, www) = env_ids(user).map_err(failed)?;
    let io_failed = |what: &str, e: std::io::Error| DeployError::Failed(format!("{what}: {e}"));
    remove_entry(&shared, UPLOADS_INCOMING)
        .map_err(|e| io_failed("removing an earlier shared/uploads.import", e))?;
    let name = std::ffi::CString::new(UPLOADS_INCOMING).expect("a constant name");
    // SAFETY: a valid descriptor and a NUL-terminated name.
    if unsafe {
        libc::mkdirat(
            std::os::fd::AsRawFd::as_raw_fd(&shared),
            name.as_ptr(),
            0o700,
        )
    } < 0
    {
        return Err(io_failed(
            "creating shared/uploads.import",
            std::io::Error::last_os_error(),
        ));
    }
    let incoming = nofollow::open_dir_at(shared.as_fd(), OsStr::new(UPLOADS_INCOMING))
        .map_err(|e| io_failed("opening shared/uploads.import", e))?;
    nofollow::set_owner_mode(&incoming, uid, www, 0o2750)
        .map_err(|e| io_failed("shared/uploads.import", e))?;
    if std::fs::symlink_metadata(uploads).is_ok_and(|m| m.is_dir()) {
        let from = nofollow::open_dir(uploads)
            .map_err(|e| DeployError::Failed(format!("opening files/uploads: {e}")))?;
        files::copy_tree(&from, user, &incoming, user, true).map_err(failed)?;
        nofollow::set_owner_mode(&incoming, uid, www, 0o2750)
            .map_err(|e| io_failed("shared/uploads.import", e))?;
    }
    drop(incoming);
    match nofollow::kind_at(shared.as_fd(), OsStr::new("uploads"))
        .map_err(|e| io_failed("shared/uploads", e))?
    {
        None => rename_at(&shared, UPLOADS_INCOMING, "uploads", 0),
        Some(libc::S_IFDIR) => {
            rename_at(&shared, UPLOADS_INCOMING, "uploads", libc::RENAME_EXCHANGE)
        }
        Some(_) => {
            return Err(DeployError::Precondition(
                "shared/uploads is not a directory (a link?)".into(),
            ))
        }
    }
    .map_err(|e| io_failed("swapping shared/uploads", e))?;
    remove_entry(&shared, UPLOADS_INCOMING)
        .map_err(|e| io_failed("removing the previous shared/uploads", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            if path.ends_with('/') {
                std::fs::create_dir_all(&p).unwrap();
            } else {
                std::fs::write(p, content).unwrap();
            }
        }
        dir
    }

    #[test]
    fn the_prefix_is_the_one_with_an_options_table() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            detect_prefix(&t(&["wpx_posts", "wpx_options", "wpx_wc_orders"])).as_deref(),
            Some("wpx_")
        );
        // A plugin's `…_options` table does not win over the one with posts.
        assert_eq!(
            detect_prefix(&t(&["wp_posts", "wp_options", "wp_wc_admin_options"])).as_deref(),
            Some("wp_")
        );
        assert_eq!(detect_prefix(&t(&["posts", "users"])), None);
        assert_eq!(detect_prefix(&t(&["x`y_options"])), None);
    }

    #[test]
    fn an_archive_needs_db_sql_and_files() {
        let ok = tree(&[
            ("db.sql", "CREATE TABLE t (a int);"),
            ("files/themes/t/style.css", ""),
        ]);
        let v = validate(ok.path()).unwrap();
        assert_eq!(v.source_url, None);
        let no_db = tree(&[("files/themes/t/style.css", "")]);
        assert!(
            matches!(validate(no_db.path()), Err(DeployError::ArchiveInvalid(m)) if m.contains("db.sql"))
        );
        let no_files = tree(&[("db.sql", "x")]);
        assert!(
            matches!(validate(no_files.path()), Err(DeployError::ArchiveInvalid(m)) if m.contains("files/"))
        );
        let empty = tree(&[("db.sql", ""), ("files/", "")]);
        assert!(validate(empty.path()).is_err());
        let binary = tree(&[("db.sql", "a\0b"), ("files/", "")]);
        assert!(validate(binary.path()).is_err());
    }

    #[test]
    fn meta_json_gives_the_source_url() {
        let t = tree(&[
            ("db.sql", "x"),
            ("files/", ""),
            ("meta.json", r#"{"source_url": "https://old.example/"}"#),
        ]);
        assert_eq!(
            validate(t.path()).unwrap().source_url.as_deref(),
            Some("https://old.example")
        );
        let bad = tree(&[
            ("db.sql", "x"),
            ("files/", ""),
            ("meta.json", r#"{"source_url": "ftp://x"}"#),
        ]);
        assert!(validate(bad.path()).is_err());
        let not_json = tree(&[("db.sql", "x"), ("files/", ""), ("meta.json", "{")]);
        assert!(validate(not_json.path()).is_err());
    }

    #[test]
    fn links_in_files_must_stay_in_files() {
        let t = tree(&[("db.sql", "x"), ("files/themes/t/style.css", "")]);
        let files = t.path().join("files");
        std::os::unix::fs::symlink("t/style.css", files.join("themes/link.css")).unwrap();
        assert!(validate(t.path()).is_ok());
        // Inside the archive, but outside files/: refused.
        std::os::unix::fs::symlink("../db.sql", files.join("db-link")).unwrap();
        assert!(
            matches!(validate(t.path()), Err(DeployError::ArchiveInvalid(m)) if m.contains("outside files/"))
        );
        std::fs::remove_file(files.join("db-link")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", files.join("themes/t/p")).unwrap();
        assert!(validate(t.path()).is_err());
    }

    #[test]
    fn db_sql_as_a_link_is_refused() {
        let t = tree(&[("files/", ""), ("real.sql", "x")]);
        std::os::unix::fs::symlink("real.sql", t.path().join("db.sql")).unwrap();
        assert!(
            matches!(validate(t.path()), Err(DeployError::ArchiveInvalid(m)) if m.contains("not a regular file"))
        );
    }

    #[test]
    fn source_urls_are_plain_http() {
        assert_eq!(
            check_source_url("http://a.example/x/").unwrap(),
            "http://a.example/x"
        );
        for bad in ["", "javascript:x", "https://", "https://a b", "https://a'b"] {
            assert!(check_source_url(bad).is_err(), "{bad:?}");
        }
    }
}
