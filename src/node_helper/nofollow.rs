//! File-system work inside environment trees without following links (issue 9, "no link
//! following as root in environment trees"). An environment's user owns most of its tree and can
//! swap any entry for a symbolic link at any moment, so root never resolves a path there by name:
//! directories are opened one component at a time from `/` with `O_NOFOLLOW | O_DIRECTORY`
//! (a link anywhere is refused, and what was opened stays the same directory whatever is renamed
//! later), and ownership and modes are changed through the opened descriptor (`fchown`,
//! `fchmod`), never by path. Other programs reach an opened directory as `/proc/self/fd/<n>`
//! (`fd_path`), e.g. as their working directory.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};

/// Why a directory could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// A component is missing.
    Missing(PathBuf),
    /// A component is a symbolic link.
    Link(PathBuf),
    /// A component is neither a directory nor a link (or another error).
    Other(PathBuf, io::Error),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Missing(p) => write!(f, "{} does not exist", p.display()),
            OpenError::Link(p) => write!(
                f,
                "{} is a symbolic link where a directory is expected (links are never followed \
                 as root in environment trees)",
                p.display()
            ),
            OpenError::Other(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for OpenError {}

fn cstr(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// `openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | flags)`: a link as the last component
/// fails with `ELOOP`.
pub fn open_at(dir: BorrowedFd<'_>, name: &OsStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    let c = cstr(name)?;
    // SAFETY: a valid descriptor and NUL-terminated name; the result is checked.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC | flags,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `openat(dir, name, O_NOFOLLOW | O_DIRECTORY)`.
pub fn open_dir_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OwnedFd> {
    open_at(dir, name, libc::O_DIRECTORY)
}

/// What `name` in `dir` is, without following it (`None` when absent).
pub fn kind_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<libc::mode_t>> {
    Ok(stat_at(dir, name)?.map(|(kind, _)| kind))
}

/// File type and owner of `name` in `dir`, without following it (`None` when absent).
pub fn stat_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<(libc::mode_t, u32)>> {
    let c = cstr(name)?;
    // SAFETY: zeroed `stat` is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: valid descriptor, NUL-terminated name, valid out-pointer.
    let r = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::NotFound {
            Ok(None)
        } else {
            Err(e)
        };
    }
    Ok(Some((st.st_mode & libc::S_IFMT, st.st_uid)))
}

/// `readlinkat(dir, name)`.
pub fn read_link_at(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<OsString> {
    let c = cstr(name)?;
    let mut buf = vec![0u8; libc::PATH_MAX as usize];
    // SAFETY: valid descriptor, name and buffer of the given length.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            c.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(OsString::from_vec(buf))
}

/// Opens the directory at the absolute `path`, refusing a symbolic link in any component.
pub fn open_dir(path: &Path) -> Result<OwnedFd, OpenError> {
    let mut dir = std::fs::File::open("/")
        .map(OwnedFd::from)
        .map_err(|e| OpenError::Other(PathBuf::from("/"), e))?;
    let mut walked = PathBuf::from("/");
    for component in path.components() {
        let name = match component {
            Component::RootDir => continue,
            Component::Normal(n) => n,
            _ => {
                return Err(OpenError::Other(
                    path.to_path_buf(),
                    io::Error::new(io::ErrorKind::InvalidInput, "not a plain absolute path"),
                ))
            }
        };
        walked.push(name);
        dir = match open_dir_at(dir.as_fd(), name) {
            Ok(fd) => fd,
            Err(e) => {
                return Err(match kind_at(dir.as_fd(), name) {
                    Ok(None) => OpenError::Missing(walked),
                    Ok(Some(libc::S_IFLNK)) => OpenError::Link(walked),
                    _ => OpenError::Other(walked, e),
                })
            }
        };
    }
    if !path.is_absolute() {
        return Err(OpenError::Other(
            path.to_path_buf(),
            io::Error::new(io::ErrorKind::InvalidInput, "not an absolute path"),
        ));
    }
    Ok(dir)
}

/// Whether the regular file `rel` (relative, plain components) exists below `dir`, no link
/// followed on the way.
pub fn has_file(dir: BorrowedFd<'_>, rel: &str) -> io::Result<bool> {
    let mut parts: Vec<&str> = rel.split('/').collect();
    let last = parts.pop().unwrap_or_default();
    let mut current: Option<OwnedFd> = None;
    for part in parts {
        let at = current.as_ref().map_or(dir, |f| f.as_fd());
        match open_dir_at(at, OsStr::new(part)) {
            Ok(fd) => current = Some(fd),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::ELOOP | libc::ENOTDIR)
                ) =>
            {
                return Ok(false)
            }
            Err(e) => return Err(e),
        }
    }
    let at = current.as_ref().map_or(dir, |f| f.as_fd());
    Ok(kind_at(at, OsStr::new(last))? == Some(libc::S_IFREG))
}

/// `/proc/self/fd/<n>`: the opened directory for programs and std APIs (as a working directory
/// or a parent; a name below it is then resolved in that very directory).
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `fchown` + `fchmod` on an opened directory.
pub fn set_owner_mode(fd: &OwnedFd, uid: u32, gid: u32, mode: u32) -> io::Result<()> {
    std::os::unix::fs::fchown(fd, Some(uid), Some(gid))?;
    // SAFETY: a valid descriptor.
    if unsafe { libc::fchmod(fd.as_raw_fd(), mode as libc::mode_t) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The directory `path` with owner, group and mode set, created when missing; its parents must
/// exist. No component may be a link (the directory is opened, then changed through its
/// descriptor). Returns the opened directory.
pub fn ensure_dir(path: &Path, uid: u32, gid: u32, mode: u32) -> anyhow::Result<OwnedFd> {
    let parent = path.parent().context("no parent directory")?;
    let name = path.file_name().context("no directory name")?;
    let parent = open_dir(parent)?;
    let c = cstr(name)?;
    // SAFETY: valid descriptor and NUL-terminated name.
    if unsafe { libc::mkdirat(parent.as_raw_fd(), c.as_ptr(), 0o700) } < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EEXIST) {
            return Err(e).with_context(|| format!("creating {}", path.display()));
        }
    }
    let fd = match open_dir_at(parent.as_fd(), name) {
        Ok(fd) => fd,
        Err(e) => {
            if kind_at(parent.as_fd(), name)? == Some(libc::S_IFLNK) {
                return Err(OpenError::Link(path.to_path_buf()).into());
            }
            return Err(e).with_context(|| format!("opening {}", path.display()));
        }
    };
    set_owner_mode(&fd, uid, gid, mode)
        .with_context(|| format!("setting owner and mode of {}", path.display()))?;
    Ok(fd)
}

/// Numeric user and group id of a user (`getent passwd`), and the id of a group.
pub fn user_ids(user: &str) -> anyhow::Result<(u32, u32)> {
    let line = getent("passwd", user)?;
    let fields: Vec<&str> = line.split(':').collect();
    match (
        fields.get(2).and_then(|f| f.parse().ok()),
        fields.get(3).and_then(|f| f.parse().ok()),
    ) {
        (Some(uid), Some(gid)) => Ok((uid, gid)),
        _ => bail!("unexpected passwd entry for {user}"),
    }
}

/// Numeric id of a group (`getent group`).
pub fn group_id(group: &str) -> anyhow::Result<u32> {
    getent("group", group)?
        .split(':')
        .nth(2)
        .and_then(|f| f.parse().ok())
        .with_context(|| format!("unexpected group entry for {group}"))
}

fn getent(db: &str, name: &str) -> anyhow::Result<String> {
    let out = std::process::Command::new("getent")
        .args([db, "--", name])
        .output()
        .context("running getent")?;
    if !out.status.success() {
        bail!("no {db} entry {name:?}");
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Opens `path` as a directory, following links only while every link's target stays inside
/// `confine` (lexically, resolved component by component with `O_NOFOLLOW`, at most 16 links):
/// the release layout's own relative links (`current`, `wp-content/uploads`) resolve, a link
/// leading out of the environment is refused. `Ok(None)` when something on the way is missing.
pub fn open_dir_confined(path: &Path, confine: &Path) -> anyhow::Result<Option<OwnedFd>> {
    let mut pending: Vec<OsString> = components(path)?;
    pending.reverse(); // a stack: next component last
    let mut walked: Vec<OsString> = Vec::new();
    let mut hops = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            walked.pop();
            continue;
        }
        let dir = open_dir(&absolute(&walked)).map_err(anyhow::Error::from)?;
        match kind_at(dir.as_fd(), &name)? {
            None => return Ok(None),
            Some(libc::S_IFLNK) => {
                hops += 1;
                if hops > 16 {
                    bail!("{}: too many links", path.display());
                }
                let target = PathBuf::from(read_link_at(dir.as_fd(), &name)?);
                if target.is_absolute() {
                    walked.clear();
                }
                let mut more = components(&target)?;
                more.reverse();
                pending.extend(more);
            }
            Some(_) => walked.push(name),
        }
    }
    let resolved = absolute(&walked);
    if !resolved.starts_with(confine) {
        bail!(
            "{} leads to {}, outside {} (links are never followed out of an environment)",
            path.display(),
            resolved.display(),
            confine.display()
        );
    }
    match open_dir(&resolved) {
        Ok(fd) => Ok(Some(fd)),
        Err(OpenError::Missing(_)) => Ok(None),
        // Swapped while resolving: refuse rather than retry.
        Err(e) => Err(e.into()),
    }
}

fn components(path: &Path) -> anyhow::Result<Vec<OsString>> {
    Ok(path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect())
}

fn absolute(walked: &[OsString]) -> PathBuf {
    let mut p = PathBuf::from("/");
    p.extend(walked);
    p
}

/// An environment's layout below `root` (returned: `root/env`): `current` links to
/// `releases/r1`, whose `wp-content/uploads` links to the empty `shared/uploads`.
#[cfg(test)]
pub fn release_layout(root: &Path) -> PathBuf {
    use std::os::unix::fs::symlink;
    let env = root.join("env");
    std::fs::create_dir_all(env.join("releases/r1/wp-content")).unwrap();
    std::fs::create_dir_all(env.join("shared/uploads")).unwrap();
    symlink("releases/r1", env.join("current")).unwrap();
    symlink(
        "../../../shared/uploads",
        env.join("releases/r1/wp-content/uploads"),
    )
    .unwrap();
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn open_dir_refuses_a_link_in_any_component() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("env/releases/r1")).unwrap();
        symlink("/etc", root.join("env/releases/r2")).unwrap();
        symlink(root.join("env"), root.join("linked-env")).unwrap();
        assert!(open_dir(&root.join("env/releases/r1")).is_ok());
        for linked in [
            root.join("env/releases/r2"),
            root.join("linked-env/releases/r1"),
        ] {
            match open_dir(&linked) {
                Err(OpenError::Link(_)) => {}
                other => panic!("{}: {other:?}", linked.display()),
            }
        }
        assert!(matches!(
            open_dir(&root.join("env/missing")),
            Err(OpenError::Missing(_))
        ));
    }

    #[test]
    fn ensure_dir_changes_the_directory_never_a_link_target() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::set_permissions(
            &outside,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        symlink(&outside, dir.path().join("uploads")).unwrap();
        let (uid, gid) = (unsafe { libc::getuid() }, unsafe { libc::getgid() });
        let err = ensure_dir(&dir.path().join("uploads"), uid, gid, 0o700).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err:#}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&outside).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o755, "the link's target is untouched");
        let made = ensure_dir(&dir.path().join("made"), uid, gid, 0o2750).unwrap();
        drop(made);
        let mode = std::fs::metadata(dir.path().join("made"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o2750);
    }

    #[test]
    fn confined_resolution_follows_the_layouts_links_only_inside() {
        let dir = tempfile::tempdir().unwrap();
        let env = release_layout(dir.path());
        symlink("/etc", env.join("releases/r1/wp-content/etc")).unwrap();
        symlink("../../../../..", env.join("releases/r1/wp-content/up")).unwrap();
        let fd = open_dir_confined(&env.join("current/wp-content/uploads"), &env)
            .unwrap()
            .unwrap();
        assert_eq!(
            std::fs::read_link(fd_path(&fd)).unwrap(),
            env.join("shared/uploads")
        );
        for outside in ["current/wp-content/etc", "current/wp-content/up"] {
            let err = open_dir_confined(&env.join(outside), &env).unwrap_err();
            assert!(err.to_string().contains("outside"), "{err:#}");
        }
        assert!(open_dir_confined(&env.join("current/missing"), &env)
            .unwrap()
            .is_none());
    }
}
