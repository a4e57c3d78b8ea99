//! Unpacking a deploy archive (`.tar.gz`/`.tgz`, `.tar.zst`, `.zip`, recognised by their
//! first bytes, not their name) into root's private temporary directory. An archive is hostile
//! input: an absolute path, a `..` component, a path through a link unpacked earlier, a link
//! whose target is absolute or leaves the archive, a hard link and a device, FIFO or socket are
//! all refused ([`DeployError::ArchiveInvalid`]); modes are kept without set-user/group-ID
//! bits. Nothing here follows a link: every parent of an entry is checked to be a real
//! directory before the entry is written, and files are created with `O_EXCL`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use super::DeployError;

fn invalid(message: impl Into<String>) -> DeployError {
    DeployError::ArchiveInvalid(message.into())
}

/// The archive formats accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    TarGz,
    TarZst,
    Zip,
}

/// The format of the archive by its first bytes.
pub fn detect(file: &mut File) -> Result<Format, DeployError> {
    let mut magic = [0u8; 4];
    let n = file
        .read(&mut magic)
        .map_err(|e| invalid(format!("the archive cannot be read: {e}")))?;
    file.rewind()
        .map_err(|e| invalid(format!("the archive cannot be read: {e}")))?;
    match &magic[..n] {
        [0x1f, 0x8b, ..] => Ok(Format::TarGz),
        [0x28, 0xb5, 0x2f, 0xfd] => Ok(Format::TarZst),
        [b'P', b'K', 3, 4] => Ok(Format::Zip),
        [] => Err(invalid("the archive is empty")),
        _ => Err(invalid(
            "the archive is not a .tar.gz, .tar.zst or .zip archive",
        )),
    }
}

/// Unpacks `file` into the empty directory `into` (root's own) and returns the source root:
/// `into`, or its single top directory.
pub fn unpack(mut file: File, into: &Path) -> Result<PathBuf, DeployError> {
    match detect(&mut file)? {
        Format::TarGz => unpack_tar(flate2::read::GzDecoder::new(file), into)?,
        Format::TarZst => {
            let decoder = zstd::Decoder::new(file)
                .map_err(|e| invalid(format!("the archive cannot be read: {e}")))?;
            unpack_tar(decoder, into)?
        }
        Format::Zip => unpack_zip(file, into)?,
    }
    source_root(into)
}

/// `dir`, or its only entry when that is a directory (a single top directory is stripped),
/// unless that directory is one a `wp-content` source has at its root (`themes`, `plugins`…).
pub fn source_root(dir: &Path) -> Result<PathBuf, DeployError> {
    let entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| invalid(format!("reading the unpacked archive: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| invalid(format!("reading the unpacked archive: {e}")))?;
    match entries.as_slice() {
        [] => Err(invalid("the source is empty")),
        // `themes/` alone is a wp-content source, not a wrapper directory.
        [only]
            if only.file_type().is_ok_and(|t| t.is_dir())
                && !super::layout::WP_CONTENT_DIRS
                    .iter()
                    .any(|d| only.file_name() == std::ffi::OsStr::new(d)) =>
        {
            let root = only.path();
            if std::fs::read_dir(&root).map_or(true, |mut d| d.next().is_none()) {
                return Err(invalid("the source is empty"));
            }
            Ok(root)
        }
        _ => Ok(dir.to_path_buf()),
    }
}

/// The entry's path relative to the root: plain components only.
fn relative(path: &Path) -> Result<PathBuf, DeployError> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(invalid(format!(
                    "the archive has an entry with '..' ({})",
                    path.display()
                )))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(invalid(format!(
                    "the archive has an entry with an absolute path ({})",
                    path.display()
                )))
            }
        }
    }
    Ok(out)
}

/// Whether a link at `rel` (relative to the root) with `target` stays inside the root when
/// resolved lexically: a relative target whose `..` never climb above the root.
pub fn link_stays_inside(rel: &Path, target: &Path) -> bool {
    if target.is_absolute() {
        return false;
    }
    let mut depth: i64 = rel.components().count() as i64 - 1; // the link's directory
    for c in target.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

/// Creates the parents of `rel` below `root` as real directories; a link or a file on the way
/// is refused.
fn parents(root: &Path, rel: &Path) -> Result<PathBuf, DeployError> {
    let mut at = root.to_path_buf();
    if let Some(parent) = rel.parent() {
        for c in parent.components() {
            at.push(c);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(invalid(format!(
                        "the archive has an entry below a link or a file ({})",
                        rel.display()
                    )))
                }
                Err(_) => std::fs::create_dir(&at)
                    .map_err(|e| invalid(format!("unpacking {}: {e}", rel.display())))?,
            }
        }
    }
    Ok(root.join(rel))
}

fn write_file(
    path: &Path,
    rel: &Path,
    mode: u32,
    mut content: impl Read,
) -> Result<(), DeployError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o600)
        .open(path)
        .map_err(|e| invalid(format!("unpacking {}: {e}", rel.display())))?;
    std::io::copy(&mut content, &mut file)
        .map_err(|e| invalid(format!("the archive cannot be read: {e}")))?;
    file.set_permissions(std::fs::Permissions::from_mode((mode & 0o777) | 0o600))
        .map_err(|e| invalid(format!("unpacking {}: {e}", rel.display())))?;
    Ok(())
}

fn make_dir(path: &Path, rel: &Path) -> Result<(), DeployError> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(invalid(format!(
            "the archive has a directory over another entry ({})",
            rel.display()
        ))),
        Err(_) => std::fs::create_dir(path)
            .map_err(|e| invalid(format!("unpacking {}: {e}", rel.display()))),
    }
}

fn make_link(path: &Path, rel: &Path, target: &Path) -> Result<(), DeployError> {
    if !link_stays_inside(rel, target) {
        return Err(invalid(format!(
            "the archive has a link pointing outside it ({} -> {})",
            rel.display(),
            target.display()
        )));
    }
    std::os::unix::fs::symlink(target, path)
        .map_err(|e| invalid(format!("unpacking {}: {e}", rel.display())))
}

fn unpack_tar(reader: impl Read, into: &Path) -> Result<(), DeployError> {
    use tar::EntryType;
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| invalid(format!("the archive cannot be read: {e}")))?;
    for entry in entries {
        let entry = entry.map_err(|e| invalid(format!("the archive cannot be read: {e}")))?;
        let kind = entry.header().entry_type();
        if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
            continue;
        }
        let raw = entry
            .path()
            .map_err(|e| invalid(format!("the archive cannot be read: {e}")))?
            .into_owned();
        let rel = relative(&raw)?;
        if rel.as_os_str().is_empty() {
            continue; // "./"
        }
        let path = parents(into, &rel)?;
        match kind {
            EntryType::Directory => make_dir(&path, &rel)?,
            EntryType::Regular | EntryType::Continuous => {
                let mode = entry.header().mode().unwrap_or(0o644);
                write_file(&path, &rel, mode, entry)?
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| invalid(format!("the archive cannot be read: {e}")))?
                    .ok_or_else(|| invalid("the archive has a link without a target"))?
                    .into_owned();
                make_link(&path, &rel, &target)?
            }
            EntryType::Link => {
                return Err(invalid(format!(
                    "the archive has a hard link ({})",
                    rel.display()
                )))
            }
            _ => {
                return Err(invalid(format!(
                    "the archive has a device, FIFO or other special entry ({})",
                    rel.display()
                )))
            }
        }
    }
    Ok(())
}

fn unpack_zip(file: File, into: &Path) -> Result<(), DeployError> {
    let mut archive = zip::ZipArchive::new(file)
        .map_err(|e| invalid(format!("the archive cannot be read: {e}")))?;
    for i in 0..archive.len() {
        let mut entry = archive
            .by_index(i)
            .map_err(|e| invalid(format!("the archive cannot be read: {e}")))?;
        let raw = PathBuf::from(entry.name());
        let rel = relative(&raw)?;
        if rel.as_os_str().is_empty() {
            continue;
        }
        let path = parents(into, &rel)?;
        let mode = entry.unix_mode();
        let file_type = mode.map(|m| m & libc::S_IFMT);
        if entry.is_dir() {
            make_dir(&path, &rel)?;
        } else if entry.is_symlink() {
            let mut target = String::new();
            entry
                .read_to_string(&mut target)
                .map_err(|e| invalid(format!("the archive cannot be read: {e}")))?;
            make_link(&path, &rel, Path::new(&target))?;
        } else if file_type.is_none_or(|t| t == libc::S_IFREG || t == 0) {
            write_file(&path, &rel, mode.unwrap_or(0o644), &mut entry)?;
        } else {
            return Err(invalid(format!(
                "the archive has a device, FIFO or other special entry ({})",
                rel.display()
            )));
        }
    }
    Ok(())
}
