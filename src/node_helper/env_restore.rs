//! `pressluft node env-restore` (`env_restore`, backups-restore-promotion.md §2): a completed
//! backup of the site restored into an existing environment — the same environment, another of
//! the site's environments (a production backup into staging), or a restore drill's temporary
//! environment. The one restore implementation: the job's command and the drill both call
//! [`restore`] (or [`check`] then [`apply`]).
//!
//! **Check (changes nothing).** The spec's names, the current release (the expected one, or the
//! new one on a retry after the switch), the database, `shared/uploads` and `wp-config.php`
//! (no links), the PHP bridge and version; then the backup is verified — the stored manifest
//! against the recorded checksum, every artifact against the manifest
//! ([`backup::restore::open`]): a mismatch exits 5 (`BACKUP_CHECKSUM_MISMATCH`) before anything
//! changes, the pre-restore backup included.
//!
//! **Aside (nothing live changes yet), side by side** (as `backup-create` runs dump and archive
//! side by side; the restore is bound by the database import):
//! - the pre-restore backup (the spec's `pre_backup`, the backup library of `backup-create`) of
//!   the live environment;
//! - `db.sql.zst` streamed into a scratch database, through the serialized-safe URL rewrite
//!   when the backup's canonical URL differs from the environment's
//!   ([`backup::restore::Verified::import_aside`]), `home`/`siteurl` then set to the
//!   environment's URL;
//! - one pass over `files.tar.zst`: the release's entries into a new release (completed like
//!   every release: `wp-config.php`, uploads and the drop-in linked from `shared/`), the uploads
//!   into `shared/uploads.restore` ([`backup::restore::Verified::extract_files`]); without a
//!   files artifact the new release is a copy of the current one and the uploads stay.
//!
//! A failure here removes what was built and leaves the environment as it was.
//!
//! **Live.** The tables swapped in with one `RENAME TABLE`, the uploads swapped in, the
//! backup's table prefix written to `wp-config.php` when it differs, the Redis drop-in per flag,
//! WordPress's database upgrade (a failure is a warning: the health gate judges), then
//! [`switch::go_live`] (switch, PHP-FPM reload, purges, pruning). The health gate and its
//! rollback (previous release, database and uploads from the pre-restore backup) are the
//! control plane's.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::Instant;

use serde::Serialize;
use tokio::runtime::Handle;

use super::backup::create::{create, ArtifactDurations, CreateResult, CreateSpec};
use super::backup::restore::{self, Aside, UploadsIncoming, Verified};
use super::backup::{self, BackupError, DB_ARTIFACT, FILES_ARTIFACT};
use super::database::{is_identifier, require_existing};
use super::process::millis_since;
use super::spec::EnvRestoreSpec;
use super::switch::{self, WentLive};
use super::update::PreBackup;
use super::{bridge, files, import, nofollow, process, releases, services, wp_config};

/// What was restored.
#[derive(Debug, Default, Serialize)]
pub struct Restored {
    /// The new release came from the files artifact (else: a copy of the current release).
    pub files: bool,
    pub uploads: bool,
    pub database: bool,
}

/// What `env-restore` prints (the result file of env-restore.yml).
#[derive(Debug, Serialize)]
pub struct EnvRestoreResult {
    pub backup_id: String,
    pub release_name: String,
    pub restored: Restored,
    /// The backup's table prefix (set in `wp-config.php` when the database was restored).
    pub table_prefix: String,
    /// The backup's canonical URL and the environment's: different → the database rewritten.
    pub source_url: String,
    pub target_url: String,
    /// The rewrite's summary line (`None`: no rewrite).
    pub search_replace: Option<String>,
    pub pre_backup: Option<PreBackup>,
    pub warnings: Vec<String>,
    pub went_live: WentLive,
    /// Where the time went, in milliseconds (the job's log shows it; the benchmark reads it).
    pub durations_ms: Durations,
}

/// The phases' wall times in milliseconds.
#[derive(Debug, Default, Serialize)]
pub struct Durations {
    /// The preconditions and the verification of every artifact.
    pub check: u64,
    /// The pre-restore backup, the import and the extraction, side by side.
    pub aside: u64,
    /// The swaps, the database upgrade and the switch.
    pub live: u64,
    /// Inside the aside phase, each part on its own (they overlap): the pre-restore backup
    /// (at a lower CPU priority), the database import, the release and uploads extraction.
    pub pre_backup: u64,
    /// The pre-restore backup's two artifacts, each on its own (side by side).
    pub pre_backup_db: u64,
    pub pre_backup_files: u64,
    pub import: u64,
    pub extract: u64,
}

/// A timed part's thread joined, a panic turned into an error.
fn joined<T>(
    thread: std::thread::ScopedJoinHandle<'_, (Result<T, BackupError>, u64)>,
    what: &str,
) -> (Result<T, BackupError>, u64) {
    thread
        .join()
        .unwrap_or_else(|_| (Err(BackupError::Failed(format!("{what} panicked"))), 0))
}

/// `work`'s result and how long it took (milliseconds).
fn timed<T>(work: impl FnOnce() -> T) -> (T, u64) {
    let started = Instant::now();
    let result = work();
    (result, millis_since(started))
}

/// What the check established.
pub struct Checked {
    pub verified: Verified,
    pub php_version: String,
    /// The release `current` points to now.
    pub current: String,
    /// How long the check took (milliseconds).
    pub check_ms: u64,
}

/// `pressluft node env-restore`: the spec on stdin, the result on stdout; a failure is one line
/// on stderr starting with its code, exit 5 (checksum mismatch) / 3 (spec or precondition) / 4
/// (the pre-restore backup's storage) with nothing live changed, 1 otherwise.
pub fn run() -> anyhow::Result<()> {
    backup::finish(backup::on_runtime(|handle| {
        let spec: EnvRestoreSpec = backup::read_spec()?;
        restore(&spec, handle)
    })?)
}

/// [`check`], then [`apply`].
pub fn restore(spec: &EnvRestoreSpec, handle: &Handle) -> Result<EnvRestoreResult, BackupError> {
    let checked = check(spec, handle)?;
    apply(spec, &checked, handle)
}

/// A release directory name: one plain path component.
fn is_release_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && !name.contains('/')
        && !name.contains('\0')
}

fn url_of(url: &str) -> String {
    url.trim().trim_end_matches('/').to_string()
}

/// The preconditions and the verification (see the module doc); changes nothing.
pub fn check(spec: &EnvRestoreSpec, handle: &Handle) -> Result<Checked, BackupError> {
    let started = Instant::now();
    let invalid = |m: &str| BackupError::Spec(m.to_string());
    let precondition = BackupError::Precondition;
    // An empty `current_release_name`: a new environment without any release yet (a restore
    // drill's temporary environment, src/node_helper/drill.rs); the backup must then hold the
    // files.
    let fresh = spec.current_release_name.is_empty();
    if !is_release_name(&spec.release_name)
        || (!fresh && !is_release_name(&spec.current_release_name))
    {
        return Err(invalid(
            "release_name and current_release_name must be release directory names",
        ));
    }
    if spec.release_name == spec.current_release_name {
        return Err(invalid(
            "release_name must differ from current_release_name",
        ));
    }
    if !is_identifier(&spec.db_name) {
        return Err(invalid("db_name is not a valid database name"));
    }
    let target = url_of(&spec.canonical_url);
    if !(target.starts_with("http://") || target.starts_with("https://")) {
        return Err(invalid("canonical_url must be an http(s) URL"));
    }
    let env_root = spec.go_live.env_root.trim_end_matches('/');
    if !Path::new(env_root).is_absolute() {
        return Err(invalid("go_live.env_root must be absolute"));
    }
    let current = match releases::current(env_root).map_err(|e| precondition(format!("{e:#}")))? {
        Some(current) => current,
        None if fresh => String::new(),
        None => {
            return Err(precondition(
                "the environment has no current release".into(),
            ))
        }
    };
    // A retry after the switch finds the new release live already.
    if current != spec.release_name && current != spec.current_release_name {
        return Err(precondition(format!(
            "current is {current}, not the expected release {}: the environment changed",
            spec.current_release_name
        )));
    }
    if !current.is_empty() {
        let current_dir = format!("{env_root}/releases/{current}");
        let dir = nofollow::open_dir(Path::new(&current_dir))
            .map_err(|e| precondition(format!("the current release {current_dir}: {e}")))?;
        if !nofollow::has_file(dir.as_fd(), "wp-includes/version.php").unwrap_or(false) {
            return Err(precondition(format!(
                "the current release {current_dir} is not complete"
            )));
        }
    }
    let php_dir = &spec.node.php_dir;
    if php_dir.is_empty() || !Path::new(&format!("{php_dir}/bridge.php")).is_file() {
        return Err(precondition(format!(
            "the PHP bridge {php_dir}/bridge.php is missing: provision the node again"
        )));
    }
    require_existing(&[spec.db_name.as_str()]).map_err(|e| precondition(format!("{e:#}")))?;
    restore::check_uploads_target(Path::new(env_root))?;
    wp_config::read(env_root).map_err(|e| precondition(format!("{e:#}")))?;
    let php_version = services::php_version(&spec.node.supported_os)
        .map_err(|e| precondition(format!("{e:#}")))?;

    let b = &spec.backup;
    let verified = restore::open(&b.checksum, &b.storage, &b.data_key, handle)?;
    let meta = &verified.manifest.backup;
    if meta.backup_id != b.backup_id {
        return Err(precondition(format!(
            "the stored manifest belongs to backup {}, not {}",
            meta.backup_id, b.backup_id
        )));
    }
    if fresh && !verified.has(FILES_ARTIFACT) {
        return Err(precondition(
            "the environment has no release yet: the backup must hold the files".into(),
        ));
    }
    if !verified.has(DB_ARTIFACT) && !verified.has(FILES_ARTIFACT) {
        return Err(precondition(
            "the backup holds no artifact to restore".into(),
        ));
    }
    if verified.has(DB_ARTIFACT) {
        if !wp_config::is_table_prefix(&meta.table_prefix) {
            return Err(precondition(
                "the backup's manifest names no plain table prefix".into(),
            ));
        }
        let source = url_of(&meta.canonical_url);
        if source != target && search_replace::Replacements::url(&source, &target).is_err() {
            return Err(precondition(format!(
                "the backup's canonical URL {source:?} cannot be rewritten to {target}"
            )));
        }
    }
    Ok(Checked {
        verified,
        php_version,
        current,
        check_ms: millis_since(started),
    })
}

/// The pre-restore backup through the backup library (as `backup-create`, on this runtime).
fn pre_backup(
    create_spec: &CreateSpec,
    php_dir: &str,
    handle: &Handle,
) -> Result<(PreBackup, ArtifactDurations), BackupError> {
    let json = serde_json::to_value(create_spec)
        .map_err(|e| BackupError::Spec(format!("pre_backup: {e}")))?;
    let mut create_spec: CreateSpec =
        serde_json::from_value(json).map_err(|e| BackupError::Spec(format!("pre_backup: {e}")))?;
    if create_spec.php_dir.is_empty() {
        create_spec.php_dir = php_dir.to_string();
    }
    create_spec.fast = true;
    let CreateResult {
        checksum,
        size_bytes,
        artifacts,
        durations_ms,
        ..
    } = create(create_spec, handle).map_err(|e| prefixed(e, "the pre-restore backup: "))?;
    Ok((
        PreBackup {
            checksum,
            size_bytes,
            artifacts,
        },
        durations_ms,
    ))
}

/// `e` with `prefix` before its message (same code).
fn prefixed(e: BackupError, prefix: &str) -> BackupError {
    match e {
        BackupError::Spec(m) => BackupError::Spec(format!("{prefix}{m}")),
        BackupError::Precondition(m) => BackupError::Precondition(format!("{prefix}{m}")),
        BackupError::Unreachable(m) => BackupError::Unreachable(format!("{prefix}{m}")),
        BackupError::Mismatch(m) => BackupError::Mismatch(format!("{prefix}{m}")),
        BackupError::Failed(m) => BackupError::Failed(format!("{prefix}{m}")),
    }
}

fn failed(what: &str) -> impl Fn(anyhow::Error) -> BackupError + '_ {
    move |e| BackupError::Failed(format!("{what}: {e:#}"))
}

/// Removes `releases/<name>` and `releases/<name>.build` (never following a link).
fn remove_release(env_root: &str, name: &str) {
    let Ok(dir) = nofollow::open_dir(Path::new(&format!("{env_root}/releases"))) else {
        return;
    };
    for n in [name.to_string(), format!("{name}.build")] {
        if nofollow::kind_at(dir.as_fd(), OsStr::new(&n))
            .ok()
            .flatten()
            == Some(libc::S_IFDIR)
        {
            // std's remove_dir_all never follows a link below the directory.
            let _ = std::fs::remove_dir_all(nofollow::fd_path(&dir).join(&n));
        }
    }
}

/// What the aside phase built.
struct Built {
    aside: Option<Aside>,
    uploads: Option<UploadsIncoming>,
}

/// Restores (see the module doc).
pub fn apply(
    spec: &EnvRestoreSpec,
    checked: &Checked,
    handle: &Handle,
) -> Result<EnvRestoreResult, BackupError> {
    let live = &spec.go_live;
    let env_root = live.env_root.trim_end_matches('/');
    let user = live.env_user.as_str();
    let php_dir = spec.node.php_dir.as_str();
    let verified = &checked.verified;
    let meta = &verified.manifest.backup;
    let source_url = url_of(&meta.canonical_url);
    let target_url = url_of(&spec.canonical_url);
    let has_db = verified.has(DB_ARTIFACT);
    let has_files = verified.has(FILES_ARTIFACT);
    let restored = Restored {
        files: has_files,
        uploads: has_files,
        database: has_db,
    };
    let rewrite =
        (has_db && source_url != target_url).then_some((source_url.as_str(), target_url.as_str()));

    // A retry after the switch: the restore is live; make sure it is, report it.
    if checked.current == spec.release_name {
        let went_live = switch::go_live(
            live,
            &spec.release_name,
            &[spec.current_release_name.as_str()],
            &checked.php_version,
        )
        .map_err(failed("going live"))?;
        return Ok(EnvRestoreResult {
            backup_id: spec.backup.backup_id.clone(),
            release_name: spec.release_name.clone(),
            restored,
            table_prefix: meta.table_prefix.clone(),
            source_url,
            target_url,
            search_replace: Some("already restored (retry after the switch)".into()),
            pre_backup: None,
            warnings: Vec::new(),
            went_live,
            durations_ms: Durations {
                check: checked.check_ms,
                ..Durations::default()
            },
        });
    }

    // Aside, side by side: the pre-restore backup, the database import, the release and uploads.
    let aside_started = Instant::now();
    let target = target_url.as_str();
    let (pre, db, built) = std::thread::scope(|scope| {
        let pre = spec.pre_backup.as_ref().map(|create_spec| {
            let handle = handle.clone();
            scope.spawn(move || {
                // The import is the critical path: the safety copy takes the spare cycles.
                process::lower_this_threads_priority();
                timed(|| pre_backup(create_spec, php_dir, &handle))
            })
        });
        let db = has_db.then(|| {
            let handle = handle.clone();
            scope.spawn(move || {
                timed(|| {
                    let _entered = handle.enter();
                    let aside = verified.import_aside(&spec.db_name, rewrite)?;
                    if rewrite.is_some() {
                        import::set_site_urls(&aside.incoming, &meta.table_prefix, target)
                            .map_err(failed("setting home and siteurl"))?;
                    }
                    Ok::<_, BackupError>(aside)
                })
            })
        });
        let built = timed(|| build_release(spec, checked, has_files));
        let pre = pre.map(|t| joined(t, "the pre-restore backup"));
        let db = db.map(|t| joined(t, "the database import"));
        (pre, db, built)
    });
    let (pre, pre_backup_ms) = pre.map_or((None, 0), |(r, ms)| (Some(r), ms));
    let (db, import_ms) = db.map_or((None, 0), |(r, ms)| (Some(r), ms));
    let (built, extract_ms) = built;
    // The pre-restore backup's error first (its storage: exit 4), then the others'; what was
    // built aside goes (the scratch databases with the `Aside`).
    let (pre_backup, built) = match (pre.transpose(), db.transpose(), built) {
        (Ok(pre), Ok(aside), Ok(uploads)) => (pre, Built { aside, uploads }),
        (pre, db, built) => {
            let pre_err = pre.err();
            let db_err = db.err(); // an imported `Aside` is dropped here: its scratch databases go
            let built_err = match built {
                Ok(Some(uploads)) => {
                    uploads.discard();
                    None
                }
                Ok(None) => None,
                Err(e) => Some(e),
            };
            remove_release(env_root, &spec.release_name);
            return Err(pre_err
                .or(db_err)
                .or(built_err)
                .expect("one of them failed"));
        }
    };
    let (pre_backup, pre_parts) = match pre_backup {
        Some((pre, parts)) => (Some(pre), parts),
        None => (None, ArtifactDurations::default()),
    };
    let search_replace = built
        .aside
        .as_ref()
        .and_then(|a| a.report.as_ref())
        .map(ToString::to_string);
    let mut warnings: Vec<String> = built
        .aside
        .as_ref()
        .and_then(|a| a.report.as_ref())
        .map(|r| {
            r.warnings
                .iter()
                .take(20)
                .map(|w| format!("rewrite warning at byte {}: {}", w.offset, w.message))
                .collect()
        })
        .unwrap_or_default();

    // Live: the tables, the uploads, the prefix, the drop-in, the switch.
    let aside_ms = millis_since(aside_started);
    let live_started = Instant::now();
    if let Some(aside) = built.aside {
        aside.swap(&BTreeSet::new())?;
    }
    if let Some(uploads) = built.uploads {
        uploads.finish(Ok(()))?;
    }
    if has_db {
        wp_config::set_table_prefix(env_root, user, &meta.table_prefix)
            .map_err(failed("writing the table prefix"))?;
    }
    services::sync_object_cache(
        env_root,
        user,
        php_dir,
        spec.redis_cache_enabled,
        &live.redis_prefix,
    )
    .map_err(failed("the Redis drop-in"))?;
    if has_db {
        let release_path = format!("{env_root}/releases/{}", spec.release_name);
        if let Err(e) = bridge::call(php_dir, user, &release_path, None, &["db-upgrade"]) {
            warnings.push(format!("WordPress's database upgrade: {e:#}"));
        }
    }
    let went_live = switch::go_live(
        live,
        &spec.release_name,
        &[spec.current_release_name.as_str()],
        &checked.php_version,
    )
    .map_err(failed("going live"))?;
    Ok(EnvRestoreResult {
        backup_id: spec.backup.backup_id.clone(),
        release_name: spec.release_name.clone(),
        restored,
        table_prefix: meta.table_prefix.clone(),
        source_url,
        target_url,
        search_replace,
        pre_backup,
        warnings,
        went_live,
        durations_ms: Durations {
            check: checked.check_ms,
            aside: aside_ms,
            live: millis_since(live_started),
            pre_backup: pre_backup_ms,
            pre_backup_db: pre_parts.db,
            pre_backup_files: pre_parts.files,
            import: import_ms,
            extract: extract_ms,
        },
    })
}

/// The new release (from the files artifact, else a copy of the current one) and, with a files
/// artifact, the uploads extracted aside; returns the prepared uploads (to swap in).
fn build_release(
    spec: &EnvRestoreSpec,
    checked: &Checked,
    has_files: bool,
) -> Result<Option<UploadsIncoming>, BackupError> {
    let env_root = spec.go_live.env_root.trim_end_matches('/');
    let user = spec.go_live.env_user.as_str();
    let build = releases::start(env_root, &spec.release_name, user)
        .map_err(failed("starting the new release"))?;
    let uploads = if has_files {
        Some(UploadsIncoming::prepare(Path::new(env_root), user)?)
    } else {
        None
    };
    let built = (|| {
        match (&build, has_files) {
            (Some(build), true) => checked.verified.extract_files(
                Some(&build.dir),
                uploads.as_ref().map(|u| &u.dir),
                user,
            )?,
            // An earlier attempt's complete release is reused; the uploads still come back.
            (None, true) => {
                checked
                    .verified
                    .extract_files(None, uploads.as_ref().map(|u| &u.dir), user)?
            }
            (Some(build), false) => {
                let from = nofollow::open_dir(Path::new(&format!(
                    "{env_root}/releases/{}",
                    checked.current
                )))
                .map_err(|e| BackupError::Failed(format!("opening the current release: {e}")))?;
                files::copy_tree(&from, user, &build.dir, user, true)
                    .map_err(failed("copying the current release"))?;
            }
            (None, false) => {}
        }
        if let Some(build) = build {
            build.complete(user, &spec.node.php_dir).map_err(failed(
                "completing the new release (does the backup hold WordPress?)",
            ))?;
        }
        Ok(())
    })();
    match built {
        Ok(()) => Ok(uploads),
        Err(e) => {
            if let Some(uploads) = uploads {
                uploads.discard();
            }
            remove_release(env_root, &spec.release_name);
            Err(e)
        }
    }
}
