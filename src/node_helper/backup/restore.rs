//! Restoring an environment's database and uploads from one of its backups: the one
//! implementation `release-rollback` uses now and `env_restore` (issue 14) later.
//!
//! **Verify first.** [`open_verified`] hashes the stored manifest against the recorded checksum
//! and every artifact against the manifest (the same code as `backup-verify`): a mismatch is
//! `BACKUP_CHECKSUM_MISMATCH` (exit 5) before anything changes.
//!
//! **Database: import aside, then one `RENAME TABLE`.** The dump (`db.sql.zst`, made by
//! `backup-create` with one database argument: no `CREATE DATABASE`/`USE` in it) is streamed
//! age → zstd → `mysql --binary-mode` into a scratch database (`pressluft_rs_<hash>_in`). Only
//! when the whole import succeeded does one `RENAME TABLE` statement (atomic in MariaDB) move
//! every live base table except the skipped ones out to a second scratch database and every
//! imported base table except the skipped ones in; both scratch databases are then dropped.
//! So a failed or interrupted import leaves the live database as it was; tables created since
//! the backup (an update's activation) are gone; the skipped tables (names without prefix, the
//! prefix from the manifest) stay exactly as they are: they are imported aside like the others
//! and dropped with the scratch database, which needs no parsing of the dump's statements.
//! Views, routines, triggers and events of the live database are left alone (WordPress uses
//! none; a table with a trigger cannot change databases, so such a restore fails before the
//! swap, changing nothing). A retry after a crash starts again from a fresh scratch database.
//!
//! **Uploads: extract aside, then swap.** `files.tar.zst` holds `shared/uploads` as
//! `wp-content/uploads/…` (files_archive.rs). Those entries (regular files and directories
//! only; a link, device or a `..`/absolute path among them refuses the restore) are re-packed
//! and extracted by `tar` running as the environment's user into a fresh
//! `shared/uploads.restore`, which then trades places with `shared/uploads`
//! (`renameat2(RENAME_EXCHANGE)`); the old tree is removed. Root never follows a link: the
//! environment root and `shared` are opened without following one, and a `shared/uploads` that
//! is a link is refused (`PRECONDITION_FAILED`).

use std::collections::BTreeSet;
use std::ffi::{CString, OsStr};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;

use search_replace::{Replacements, Report, Rewriter};
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

use super::artifact::decoding;
use super::create::Manifest;
use super::files_archive::EXCLUDED;
use super::storage::{Storage, StorageSpec};
use super::verify::verified_manifest;
use super::{BackupError, DataKey, DB_ARTIFACT, FILES_ARTIFACT};
use crate::node_helper::database::{is_identifier, mysql_lines};
use crate::node_helper::db_copy;
use crate::node_helper::dump_import::Importer;
use crate::node_helper::nofollow;
use crate::node_helper::process::{as_user_command, spawn_in, wait_child};
use crate::node_helper::spec::RollbackRestore;
use crate::node_helper::users::env_ids;

/// Where the uploads are extracted before the swap (below `shared/`).
const UPLOADS_INCOMING: &str = "uploads.restore";

/// A backup whose manifest and artifacts matched their recorded hashes.
pub struct Verified {
    pub manifest: Manifest,
    storage: Storage,
    identity: age::x25519::Identity,
}

/// Opens the backup's storage and verifies it (see the module doc); changes nothing.
pub fn open_verified(restore: &RollbackRestore, handle: &Handle) -> Result<Verified, BackupError> {
    open(
        &restore.checksum,
        &restore.storage,
        &restore.data_key,
        handle,
    )
}

/// [`open_verified`] from the backup's parts (its recorded manifest checksum, storage and data
/// key): `env-restore` names a backup without the rollback's restore options.
pub fn open(
    checksum: &str,
    storage: &StorageSpec,
    data_key: &DataKey,
    handle: &Handle,
) -> Result<Verified, BackupError> {
    let identity = data_key.identity()?;
    let storage = Storage::open(storage, handle)?;
    let (manifest, _) = verified_manifest(&storage, checksum, &identity)?;
    Ok(Verified {
        manifest,
        storage,
        identity,
    })
}

impl Verified {
    /// Whether the backup holds the artifact `name`.
    pub fn has(&self, name: &str) -> bool {
        self.manifest.artifacts.iter().any(|a| a.name == name)
    }

    fn plaintext(&self, name: &str) -> Result<impl Read, BackupError> {
        decoding(self.storage.reader(name)?, &self.identity)
    }

    /// The live tables the database restore keeps as they are: `skip_tables` with the backup's
    /// table prefix. Refuses names that are no plain identifiers.
    pub fn skipped_tables(&self, skip_tables: &[String]) -> Result<BTreeSet<String>, BackupError> {
        let prefix = &self.manifest.backup.table_prefix;
        skip_tables
            .iter()
            .map(|t| {
                let full = format!("{prefix}{t}");
                if is_identifier(&full) {
                    Ok(full)
                } else {
                    Err(BackupError::Spec(format!(
                        "skip_tables: {t:?} is not a plain table name"
                    )))
                }
            })
            .collect()
    }

    /// Restores `database` from `db.sql.zst`, `skip_tables` (without prefix) left as they are.
    pub fn restore_database(
        &self,
        database: &str,
        skip_tables: &[String],
    ) -> Result<(), BackupError> {
        let skipped = self.skipped_tables(skip_tables)?;
        self.import_aside(database, None)?.swap(&skipped)
    }

    /// The first half of [`Self::restore_database`]: the dump imported into the scratch
    /// database (the live one untouched), with the serialized-safe URL rewrite `from → to`
    /// applied to the stream when `rewrite` is set. [`Aside::swap`] is the second half;
    /// dropping the [`Aside`] instead drops the scratch databases and changes nothing.
    pub fn import_aside(
        &self,
        database: &str,
        rewrite: Option<(&str, &str)>,
    ) -> Result<Aside, BackupError> {
        if !is_identifier(database) {
            return Err(BackupError::Spec(
                "database is not a valid database name".into(),
            ));
        }
        if !self.has(DB_ARTIFACT) {
            return Err(BackupError::Precondition(
                "the backup holds no database dump".into(),
            ));
        }
        let replacements =
            match rewrite {
                None => None,
                Some((from, to)) => Some(Replacements::url(from, to).map_err(|e| {
                    BackupError::Spec(format!("the URL rewrite {from} → {to}: {e}"))
                })?),
            };
        let (incoming, outgoing) = scratch_databases(database);
        let mut aside = Aside {
            database: database.to_string(),
            incoming,
            outgoing,
            report: None,
            dropped: false,
        };
        mysql_lines(
            None,
            &format!(
                "{} CREATE DATABASE `{}` CHARACTER SET utf8mb4; \
                 CREATE DATABASE `{}` CHARACTER SET utf8mb4;",
                aside.drop_sql(),
                aside.incoming,
                aside.outgoing
            ),
        )
        .map_err(|e| BackupError::Failed(format!("preparing the scratch databases: {e:#}")))?;
        aside.report = self.import(&aside.incoming, replacements)?;
        Ok(aside)
    }

    /// Streams the dump (rewritten when `replacements` is set) into the scratch database over
    /// several connections ([`dump_import`]: a table's rows in parallel, its schema before them,
    /// triggers and what follows them in the dump's order).
    fn import(
        &self,
        scratch: &str,
        replacements: Option<Replacements>,
    ) -> Result<Option<Report>, BackupError> {
        let mut dump = self.plaintext(DB_ARTIFACT)?;
        let mut importer = Importer::new(scratch, db_copy::default_connections());
        let copied = match replacements {
            None => io::copy(&mut dump, &mut importer).map(|_| None),
            Some(r) => Rewriter::new(r).rewrite(&mut dump, &mut importer).map(Some),
        };
        match copied {
            Ok(report) => importer.finish().map(|()| report).map_err(importing),
            // The client's error (with its stderr) says more than the broken pipe it caused.
            Err(e) => match importer.stop() {
                Err(client) => Err(importing(client)),
                Ok(()) => Err(BackupError::from_io(e, DB_ARTIFACT)),
            },
        }
    }

    /// Restores `<env_root>/shared/uploads` from `files.tar.zst` (see the module doc).
    pub fn restore_uploads(&self, env_root: &Path, env_user: &str) -> Result<(), BackupError> {
        if !self.has(FILES_ARTIFACT) {
            return Err(BackupError::Precondition(
                "the backup holds no files archive".into(),
            ));
        }
        let incoming = UploadsIncoming::prepare(env_root, env_user)?;
        let extracted = self.extract_files(None, Some(&incoming.dir), env_user);
        incoming.finish(extracted)
    }

    /// One pass over `files.tar.zst`: the release's entries re-packed and piped into `tar -x`
    /// run as `env_user` in the opened `release` directory, the `wp-content/uploads/` entries
    /// into another in `uploads` (either `None`: those entries are skipped). Only plain relative
    /// paths of files and directories pass (a link, device, `..` or absolute path refuses the
    /// restore); the archive's excluded paths ([`EXCLUDED`]) never reach the release.
    pub fn extract_files(
        &self,
        release: Option<&OwnedFd>,
        uploads: Option<&OwnedFd>,
        env_user: &str,
    ) -> Result<(), BackupError> {
        let start = |dir: Option<&OwnedFd>, what: &str| -> Result<_, BackupError> {
            let Some(dir) = dir else { return Ok(None) };
            let mut command = as_user_command(env_user, None);
            command.args(["tar", "-x", "-f", "-", "--no-same-owner"]);
            let mut child = spawn_in(command, dir, Stdio::piped(), Stdio::null(), "tar")
                .map_err(|e| BackupError::Failed(format!("{what}: {e:#}")))?;
            let stdin = child.stdin.take().expect("piped stdin");
            Ok(Some((child, io::BufWriter::with_capacity(1 << 20, stdin))))
        };
        let release_tar = start(release, "extracting the release")?;
        let uploads_tar = match start(uploads, "extracting the uploads") {
            Ok(tar) => tar,
            Err(e) => {
                if let Some((mut child, stdin)) = release_tar {
                    drop(stdin);
                    let _ = child.wait();
                }
                return Err(e);
            }
        };
        let (release_child, release_in) = release_tar.unzip();
        let (uploads_child, uploads_in) = uploads_tar.unzip();
        let repacked = self
            .plaintext(FILES_ARTIFACT)
            .and_then(|archive| repack(archive, release_in, uploads_in));
        let mut waited = Ok(());
        for (child, what) in [
            (release_child, "extracting the release"),
            (uploads_child, "extracting the uploads"),
        ] {
            if let Some(child) = child {
                let w = wait_child(child, what).map_err(|e| BackupError::Failed(format!("{e:#}")));
                waited = waited.and(w);
            }
        }
        repacked?;
        waited
    }
}

fn importing(e: anyhow::Error) -> BackupError {
    BackupError::Failed(format!("importing the database dump: {e:#}"))
}

/// `shared/uploads.restore` prepared for an extraction: created empty (the environment user's,
/// mode 2750), no link followed ([`Self::finish`] swaps it in).
pub struct UploadsIncoming {
    shared: OwnedFd,
    /// The opened `shared/uploads.restore`.
    pub dir: OwnedFd,
}

impl UploadsIncoming {
    /// Creates `<env_root>/shared/uploads.restore` (an earlier one removed first).
    pub fn prepare(env_root: &Path, env_user: &str) -> Result<Self, BackupError> {
        let shared = open_shared(env_root)?;
        let (uid, www) =
            env_ids(env_user).map_err(|e| BackupError::Precondition(format!("{e:#}")))?;
        let failed = |what: &str, e: io::Error| BackupError::Failed(format!("{what}: {e}"));
        remove_entry(&shared, UPLOADS_INCOMING)
            .map_err(|e| failed("removing an earlier shared/uploads.restore", e))?;
        let name = cstring(UPLOADS_INCOMING);
        // SAFETY: a valid descriptor and NUL-terminated name.
        if unsafe { libc::mkdirat(shared.as_raw_fd(), name.as_ptr(), 0o700) } < 0 {
            return Err(failed(
                "creating shared/uploads.restore",
                io::Error::last_os_error(),
            ));
        }
        let dir = nofollow::open_dir_at(shared.as_fd(), OsStr::new(UPLOADS_INCOMING))
            .map_err(|e| failed("opening shared/uploads.restore", e))?;
        nofollow::set_owner_mode(&dir, uid, www, 0o2750)
            .map_err(|e| failed("shared/uploads.restore", e))?;
        Ok(UploadsIncoming { shared, dir })
    }

    /// Removes the incoming tree (nothing live changed).
    pub fn discard(self) {
        let UploadsIncoming { shared, dir } = self;
        drop(dir);
        let _ = remove_entry(&shared, UPLOADS_INCOMING);
    }

    /// After the extraction (`extracted`): on success the incoming tree trades places with
    /// `shared/uploads` and the old tree is removed; on failure it is removed.
    pub fn finish(self, extracted: Result<(), BackupError>) -> Result<(), BackupError> {
        if let Err(e) = extracted {
            self.discard();
            return Err(e);
        }
        let UploadsIncoming { shared, dir } = self;
        drop(dir);
        let failed = |what: &str, e: io::Error| BackupError::Failed(format!("{what}: {e}"));
        // The kind is checked again right before the swap; whatever the user puts in place of
        // `uploads` meanwhile ends up as `uploads.restore` and is removed without following it.
        match nofollow::kind_at(shared.as_fd(), OsStr::new("uploads"))
            .map_err(|e| failed("shared/uploads", e))?
        {
            None => rename_at(&shared, UPLOADS_INCOMING, "uploads", 0),
            Some(libc::S_IFDIR) => {
                rename_at(&shared, UPLOADS_INCOMING, "uploads", libc::RENAME_EXCHANGE)
            }
            Some(_) => {
                let _ = remove_entry(&shared, UPLOADS_INCOMING);
                return Err(uploads_not_a_directory());
            }
        }
        .map_err(|e| failed("swapping shared/uploads", e))?;
        remove_entry(&shared, UPLOADS_INCOMING)
            .map_err(|e| failed("removing the previous shared/uploads", e))?;
        Ok(())
    }
}

/// The two scratch databases of a restore of `database`: imported into, moved out to.
pub fn scratch_databases(database: &str) -> (String, String) {
    let hash = hex::encode(Sha256::digest(database.as_bytes()));
    let base = format!("pressluft_rs_{}", &hash[..16]);
    (format!("{base}_in"), format!("{base}_out"))
}

/// A backup's database imported into a scratch database beside the live one
/// ([`Verified::import_aside`]); the scratch databases are dropped when this goes out of scope.
pub struct Aside {
    database: String,
    /// The scratch database holding the imported tables.
    pub incoming: String,
    outgoing: String,
    /// The URL rewrite's summary, when the import rewrote.
    pub report: Option<Report>,
    /// Whether [`Aside::swap`] dropped the scratch databases already.
    dropped: bool,
}

impl Aside {
    fn drop_sql(&self) -> String {
        format!(
            "DROP DATABASE IF EXISTS `{}`; DROP DATABASE IF EXISTS `{}`;",
            self.incoming, self.outgoing
        )
    }

    /// The one `RENAME TABLE` of the module doc (`skipped`: full names kept as they are), then
    /// the scratch databases dropped.
    pub fn swap(mut self, skipped: &BTreeSet<String>) -> Result<(), BackupError> {
        swap_tables(&self.database, &self.incoming, &self.outgoing, skipped)?;
        self.dropped = true;
        mysql_lines(None, &self.drop_sql())
            .map(|_| ())
            .map_err(|e| BackupError::Failed(format!("dropping the scratch databases: {e:#}")))
    }
}

impl Drop for Aside {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        if let Err(e) = mysql_lines(None, &self.drop_sql()) {
            eprintln!("warning: dropping the restore's scratch databases: {e:#}");
        }
    }
}

/// `name` quoted for MariaDB (backticks doubled).
fn quoted(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The base tables of `database`, read hex-encoded (a table name may hold any character).
pub(crate) fn base_tables(database: &str) -> Result<Vec<String>, BackupError> {
    let lines = mysql_lines(
        None,
        &format!(
            "SELECT HEX(TABLE_NAME) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = '{database}' AND TABLE_TYPE = 'BASE TABLE';"
        ),
    )
    .map_err(|e| BackupError::Failed(format!("listing the tables of {database}: {e:#}")))?;
    lines
        .iter()
        .map(|l| {
            hex::decode(l.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| BackupError::Failed(format!("unexpected table name in {database}")))
        })
        .collect()
}

/// The one `RENAME TABLE` of the module doc.
pub(crate) fn swap_tables(
    database: &str,
    incoming: &str,
    outgoing: &str,
    skipped: &BTreeSet<String>,
) -> Result<(), BackupError> {
    let mut pairs = Vec::new();
    for table in base_tables(database)? {
        if !skipped.contains(&table) {
            pairs.push(format!(
                "`{database}`.{t} TO `{outgoing}`.{t}",
                t = quoted(&table)
            ));
        }
    }
    for table in base_tables(incoming)? {
        if !skipped.contains(&table) {
            pairs.push(format!(
                "`{incoming}`.{t} TO `{database}`.{t}",
                t = quoted(&table)
            ));
        }
    }
    if pairs.is_empty() {
        return Ok(());
    }
    mysql_lines(None, &format!("RENAME TABLE {};", pairs.join(", ")))
        .map_err(|e| BackupError::Failed(format!("swapping in the restored tables: {e:#}")))?;
    Ok(())
}

/// Promotion's swap (backups-restore-promotion.md §5, "replaces only the tables in the dump"):
/// in one `RENAME TABLE`, every base table of `incoming` moves into `database`, the live table
/// of the same name (if any) out to `outgoing`; live tables the import does not hold stay.
/// Returns the names moved in.
pub(crate) fn replace_tables(
    database: &str,
    incoming: &str,
    outgoing: &str,
) -> Result<Vec<String>, BackupError> {
    let live: BTreeSet<String> = base_tables(database)?.into_iter().collect();
    let moved_in = base_tables(incoming)?;
    let mut pairs = Vec::new();
    for table in &moved_in {
        let t = quoted(table);
        if live.contains(table) {
            pairs.push(format!("`{database}`.{t} TO `{outgoing}`.{t}"));
        }
        pairs.push(format!("`{incoming}`.{t} TO `{database}`.{t}"));
    }
    if !pairs.is_empty() {
        mysql_lines(None, &format!("RENAME TABLE {};", pairs.join(", ")))
            .map_err(|e| BackupError::Failed(format!("swapping in the promoted tables: {e:#}")))?;
    }
    Ok(moved_in)
}

/// Fails (exit 3) unless `<env_root>/shared/uploads` can be replaced: no link on the way, and
/// `uploads` a directory or missing. Changes nothing.
pub fn check_uploads_target(env_root: &Path) -> Result<(), BackupError> {
    open_shared(env_root).map(|_| ())
}

fn uploads_not_a_directory() -> BackupError {
    BackupError::Precondition(
        "shared/uploads is not a directory (a symbolic link?): links are never followed as \
         root in environment trees"
            .into(),
    )
}

/// `<env_root>/shared`, opened without following a link, with `uploads` checked.
pub(crate) fn open_shared(env_root: &Path) -> Result<OwnedFd, BackupError> {
    let precondition = |m: String| BackupError::Precondition(m);
    let root = nofollow::open_dir(env_root).map_err(|e| precondition(e.to_string()))?;
    let shared = nofollow::open_dir_at(root.as_fd(), OsStr::new("shared"))
        .map_err(|e| precondition(format!("{}/shared: {e}", env_root.display())))?;
    match nofollow::kind_at(shared.as_fd(), OsStr::new("uploads"))
        .map_err(|e| precondition(format!("shared/uploads: {e}")))?
    {
        None | Some(libc::S_IFDIR) => Ok(shared),
        Some(_) => Err(uploads_not_a_directory()),
    }
}

fn cstring(name: &str) -> CString {
    CString::new(name).expect("a constant name")
}

/// Removes `name` in `dir` whatever it is, never following a link (absent: nothing to do).
pub(crate) fn remove_entry(dir: &OwnedFd, name: &str) -> io::Result<()> {
    match nofollow::kind_at(dir.as_fd(), OsStr::new(name))? {
        None => Ok(()),
        // std's remove_dir_all never follows a link below the directory.
        Some(libc::S_IFDIR) => std::fs::remove_dir_all(nofollow::fd_path(dir).join(name)),
        Some(_) => std::fs::remove_file(nofollow::fd_path(dir).join(name)),
    }
}

/// `renameat2(dir, from, dir, to, flags)`.
pub(crate) fn rename_at(
    dir: &OwnedFd,
    from: &str,
    to: &str,
    flags: libc::c_uint,
) -> io::Result<()> {
    let (from, to) = (cstring(from), cstring(to));
    // SAFETY: a valid descriptor and NUL-terminated names.
    let r = unsafe {
        libc::renameat2(
            dir.as_raw_fd(),
            from.as_ptr(),
            dir.as_raw_fd(),
            to.as_ptr(),
            flags,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The path below `wp-content/uploads/` of an archive entry (`None`: not an uploads entry, or
/// the uploads directory itself); an uploads entry with a `..`, `.` or root component is refused.
pub fn uploads_relative(path: &Path) -> Result<Option<PathBuf>, BackupError> {
    let mut components = path.components();
    let first_two = (components.next(), components.next());
    if first_two
        != (
            Some(Component::Normal(OsStr::new("wp-content"))),
            Some(Component::Normal(OsStr::new("uploads"))),
        )
    {
        return Ok(None);
    }
    let mut rel = PathBuf::new();
    for c in components {
        match c {
            Component::Normal(n) => rel.push(n),
            _ => {
                return Err(BackupError::Failed(format!(
                    "refusing the archive entry {}: not a plain relative path",
                    path.display()
                )))
            }
        }
    }
    Ok((!rel.as_os_str().is_empty()).then_some(rel))
}

/// The release-relative path of an archive entry outside `wp-content/uploads` (`None`: an
/// excluded path — [`EXCLUDED`] or below one — or the archive's root); anything but plain
/// relative components is refused.
pub fn release_relative(path: &Path) -> Result<Option<PathBuf>, BackupError> {
    let mut rel = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => rel.push(n),
            Component::CurDir => {}
            _ => {
                return Err(BackupError::Failed(format!(
                    "refusing the archive entry {}: not a plain relative path",
                    path.display()
                )))
            }
        }
    }
    if rel.as_os_str().is_empty() || EXCLUDED.iter().any(|x| rel.starts_with(x)) {
        return Ok(None);
    }
    Ok(Some(rel))
}

/// Copies the uploads entries of the tar stream `archive` into a new tar stream on `out`
/// (paths relative to the uploads directory, modes without set-ID bits).
#[cfg(test)]
fn repack_uploads(archive: impl Read, out: impl io::Write) -> Result<(), BackupError> {
    repack(archive, None, Some(out))
}

/// Splits the tar stream `archive` into two new ones: the release's entries on `release`, the
/// uploads entries (relative to the uploads directory) on `uploads`; either `None`: skipped.
/// Files and directories only, modes without set-ID bits.
fn repack<W: io::Write>(
    archive: impl Read,
    release: Option<W>,
    uploads: Option<W>,
) -> Result<(), BackupError> {
    let bad = |e: io::Error| BackupError::Failed(format!("{FILES_ARTIFACT}: {e}"));
    let mut archive = tar::Archive::new(archive);
    let mut release = release.map(tar::Builder::new);
    let mut uploads = uploads.map(tar::Builder::new);
    for entry in archive.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?.into_owned();
        let (builder, rel) = match uploads_relative(&path)? {
            Some(rel) => (uploads.as_mut(), rel),
            None => match release_relative(&path)? {
                Some(rel) => (release.as_mut(), rel),
                None => continue,
            },
        };
        let Some(builder) = builder else { continue };
        let kind = entry.header().entry_type();
        if !matches!(
            kind,
            tar::EntryType::Directory | tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            return Err(BackupError::Failed(format!(
                "refusing the archive entry {}: a {kind:?} entry (only files and directories \
                 are restored)",
                path.display()
            )));
        }
        let mode = entry.header().mode().map_err(bad)? & 0o777;
        let mtime = entry.header().mtime().unwrap_or(0);
        let mut header = tar::Header::new_gnu();
        header.set_mtime(mtime);
        if kind == tar::EntryType::Directory {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(mode | 0o700);
            header.set_size(0);
            builder
                .append_data(&mut header, &rel, io::empty())
                .map_err(bad)?;
        } else {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(mode | 0o600);
            header.set_size(entry.size());
            builder.append_data(&mut header, &rel, entry).map_err(bad)?;
        }
    }
    if let Some(builder) = release {
        builder.into_inner().map_err(bad)?.flush().map_err(bad)?;
    }
    if let Some(builder) = uploads {
        builder.into_inner().map_err(bad)?.flush().map_err(bad)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_uploads_paths_are_extracted() {
        let rel = |p: &str| uploads_relative(Path::new(p));
        assert_eq!(
            rel("wp-content/uploads/2024/a.jpg").unwrap(),
            Some(PathBuf::from("2024/a.jpg"))
        );
        assert_eq!(rel("wp-content/uploads").unwrap(), None);
        assert_eq!(rel("wp-content/plugins/x.php").unwrap(), None);
        assert_eq!(rel("/etc/passwd").unwrap(), None);
        assert!(rel("wp-content/uploads/../../../etc/cron.d/x").is_err());
    }

    #[test]
    fn a_link_in_the_archive_refuses_the_restore() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder
            .append_link(&mut header, "wp-content/uploads/evil", "/etc")
            .unwrap();
        let archive = builder.into_inner().unwrap();
        let err = repack_uploads(archive.as_slice(), Vec::new()).unwrap_err();
        assert!(err.to_string().contains("Symlink"), "{err}");
    }

    #[test]
    fn release_entries_are_plain_and_never_secrets_or_uploads() {
        let rel = |p: &str| release_relative(Path::new(p));
        assert_eq!(
            rel("wp-content/themes/t/style.css").unwrap(),
            Some(PathBuf::from("wp-content/themes/t/style.css"))
        );
        assert_eq!(
            rel("./index.php").unwrap(),
            Some(PathBuf::from("index.php"))
        );
        for excluded in [
            "wp-config.php",
            "wp-content/uploads/a.jpg",
            "wp-content/cache/x",
            "wp-content/object-cache.php",
        ] {
            assert_eq!(rel(excluded).unwrap(), None, "{excluded}");
        }
        assert!(rel("../etc/passwd").is_err());
        assert!(rel("/etc/passwd").is_err());
    }

    #[test]
    fn one_pass_splits_the_release_from_the_uploads() {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, data) in [
            ("index.php", &b"<?php"[..]),
            ("wp-config.php", b"secret"),
            ("wp-content/uploads/2024/a.txt", b"a"),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, path, data).unwrap();
        }
        let archive = builder.into_inner().unwrap();
        let (mut release, mut uploads) = (Vec::new(), Vec::new());
        repack(archive.as_slice(), Some(&mut release), Some(&mut uploads)).unwrap();
        let names = |bytes: &[u8]| -> Vec<String> {
            tar::Archive::new(bytes)
                .entries()
                .unwrap()
                .map(|e| e.unwrap().path().unwrap().display().to_string())
                .collect()
        };
        assert_eq!(names(&release), ["index.php"]);
        assert_eq!(names(&uploads), ["2024/a.txt"]);

        // A link among the release's entries refuses the restore.
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder
            .append_link(&mut header, "wp-content/themes/evil", "/etc")
            .unwrap();
        let archive = builder.into_inner().unwrap();
        let err = repack(archive.as_slice(), Some(Vec::new()), Some(Vec::new())).unwrap_err();
        assert!(err.to_string().contains("Symlink"), "{err}");
    }

    #[test]
    fn scratch_names_are_identifiers() {
        let (a, b) = scratch_databases(&"x".repeat(64));
        assert!(is_identifier(&a) && is_identifier(&b) && a != b);
    }
}
