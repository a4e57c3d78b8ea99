//! `files.tar.zst`'s content: the current release tree with `wp-content/uploads` taken from
//! `shared/uploads`, without `wp-config.php` (it holds the DB password and salts; restore writes
//! its own), drop-ins and cache directories (backups-restore-promotion.md §1).
//!
//! The environment's user owns these trees and can swap any entry for a link while root reads
//! them, so the walk never resolves a name: directories are opened with `O_NOFOLLOW` relative to
//! their opened parent (`nofollow`), files are opened `O_NOFOLLOW | O_NONBLOCK` and checked with
//! `fstat` after opening, and symbolic links are skipped (counted, never stored or followed).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::node_helper::nofollow::{fd_path, open_at, open_dir_at, open_dir_confined, stat_at};

/// Release-relative paths never archived: secrets, generated drop-ins, caches.
pub const EXCLUDED: &[&str] = &[
    "wp-config.php",
    "wp-content/object-cache.php",
    "wp-content/advanced-cache.php",
    "wp-content/cache",
    "wp-content/et-cache",
    "wp-content/litespeed",
    "wp-content/upgrade",
    "wp-content/uploads",
];

/// What the walk archived and skipped.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct ArchiveStats {
    pub files: u64,
    pub directories: u64,
    pub skipped_links: u64,
    pub skipped_other: u64,
}

/// Writes the tar stream of the release `release` (confined to `env_root`) with
/// `<env_root>/shared/uploads` as `wp-content/uploads` into `out`.
pub fn write_archive<W: Write>(
    env_root: &Path,
    release: &Path,
    out: W,
) -> anyhow::Result<(W, ArchiveStats)> {
    let release_fd = open_dir_confined(release, env_root)?
        .ok_or_else(|| anyhow::anyhow!("release {} does not exist", release.display()))?;
    let mut builder = tar::Builder::new(out);
    let mut stats = ArchiveStats::default();
    walk(&mut builder, &release_fd, PathBuf::new(), true, &mut stats)?;
    if let Some(uploads) = open_dir_confined(&env_root.join("shared/uploads"), env_root)? {
        append_dir(&mut builder, &uploads, Path::new("wp-content/uploads"))?;
        stats.directories += 1;
        walk(
            &mut builder,
            &uploads,
            PathBuf::from("wp-content/uploads"),
            false,
            &mut stats,
        )?;
    }
    let out = builder.into_inner()?;
    Ok((out, stats))
}

fn walk<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &OwnedFd,
    rel: PathBuf,
    in_release: bool,
    stats: &mut ArchiveStats,
) -> anyhow::Result<()> {
    let mut names: Vec<OsString> = std::fs::read_dir(fd_path(dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for name in names {
        let path = rel.join(&name);
        if in_release && EXCLUDED.iter().any(|x| Path::new(x) == path) {
            continue;
        }
        match stat_at(dir.as_fd(), &name)?.map(|(kind, _)| kind) {
            None => continue, // removed meanwhile
            Some(libc::S_IFDIR) => {
                let child = match open_dir_at(dir.as_fd(), &name) {
                    Ok(fd) => fd,
                    // Swapped for a link (ELOOP) or removed since the stat: not followed.
                    Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                        stats.skipped_links += 1;
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                append_dir(builder, &child, &path)?;
                stats.directories += 1;
                walk(builder, &child, path, in_release, stats)?;
            }
            Some(libc::S_IFREG) => match open_file_at(dir.as_fd(), &name)? {
                Some(file) => {
                    append_file(builder, file, &path)?;
                    stats.files += 1;
                }
                None => stats.skipped_links += 1,
            },
            Some(libc::S_IFLNK) => stats.skipped_links += 1,
            Some(_) => stats.skipped_other += 1,
        }
    }
    Ok(())
}

/// Opens a regular file without following a link (`None`: it is a link or no regular file now).
fn open_file_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<File>> {
    let file = match open_at(dir, name, libc::O_NONBLOCK) {
        Ok(fd) => File::from(fd),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOENT)) => {
            return Ok(None)
        }
        Err(e) => return Err(e),
    };
    Ok(file.metadata()?.is_file().then_some(file))
}

fn header_from(meta: &std::fs::Metadata, kind: tar::EntryType, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(meta.mode() & 0o7777);
    header.set_uid(meta.uid().into());
    header.set_gid(meta.gid().into());
    header.set_mtime(meta.mtime().max(0) as u64);
    header
}

fn append_dir<W: Write>(
    builder: &mut tar::Builder<W>,
    dir: &OwnedFd,
    path: &Path,
) -> anyhow::Result<()> {
    if path.as_os_str().is_empty() {
        return Ok(());
    }
    let meta = std::fs::metadata(fd_path(dir))?;
    let mut header = header_from(&meta, tar::EntryType::Directory, 0);
    builder.append_data(&mut header, path, io::empty())?;
    Ok(())
}

/// Appends exactly the size `fstat` reported: a file growing meanwhile is cut, a shrinking one
/// padded with zeros, so the archive stays well-formed.
fn append_file<W: Write>(
    builder: &mut tar::Builder<W>,
    file: File,
    path: &Path,
) -> anyhow::Result<()> {
    let meta = file.metadata()?;
    let size = meta.len();
    let mut header = header_from(&meta, tar::EntryType::Regular, size);
    let data = file.take(size).chain(io::repeat(0)).take(size);
    builder.append_data(&mut header, path, data)?;
    Ok(())
}
