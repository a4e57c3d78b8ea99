//! Files on the node without following links as root (issue 9): atomic installation of a
//! rendered configuration file (validated before it replaces the real one), existence and
//! owner checks through opened directories, and tree copies that run as the trees' own users.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;

use anyhow::{bail, Context};

use super::nofollow::{self, OpenError};
use super::process::{as_user_command, run_cmd, spawn_in, CLEAN_PATH};
use super::users::WEB_GROUP;

/// Checks a candidate file (by path) before it replaces the real one.
pub type Validate<'a> = &'a dyn Fn(&str) -> anyhow::Result<()>;

/// Writes `content` next to `dest`, sets owner (`user[:group]`) and mode, optionally validates
/// the candidate, then renames it into place (readers never see a partial file).
pub fn install(
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

/// Whether `path` exists (a link counts as itself), without following a link on the way; a
/// link in a parent directory is an error.
pub fn exists_nofollow(path: &str) -> anyhow::Result<bool> {
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

/// Which of `paths` are missing (checked with [`exists_nofollow`]).
pub fn missing(paths: &[String]) -> anyhow::Result<Vec<&str>> {
    let mut missing = Vec::new();
    for p in paths {
        if !exists_nofollow(p)? {
            missing.push(p.as_str());
        }
    }
    Ok(missing)
}

/// Fails when `dir` is reached through a link (a missing directory is fine: it may be created
/// later).
pub fn refuse_link(dir: &str) -> anyhow::Result<()> {
    if let Err(OpenError::Link(p)) = nofollow::open_dir(Path::new(dir)) {
        bail!("{}", OpenError::Link(p));
    }
    Ok(())
}

/// The user owning the regular file `path` (not a link, not root: the PHP bridge runs as it).
pub fn file_owner(path: &str) -> anyhow::Result<String> {
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

/// 1 MiB records: with tar's default 10 KiB the pipe took 5× the time of `cp -a` here; with
/// these it copies 300 MB about as fast as `cp -a`.
const TAR_RECORDS: &str = "--blocking-factor=2048";

/// Copies the contents of the opened directory `from` into the opened directory `to`: `tar`
/// reading as `from_user` piped into `tar` writing as `to_user`, each with its directory as
/// working directory. No root process reads or writes inside either tree, so a link there leads
/// only where its own user could go anyway; the written files belong to `to_user` from the
/// start (no recursive chown afterwards). `keep_modes`: the source's modes, else the umask's.
pub fn copy_tree(
    from: &OwnedFd,
    from_user: &str,
    to: &OwnedFd,
    to_user: &str,
    keep_modes: bool,
) -> anyhow::Result<()> {
    copy(from, Some(from_user), to, to_user, keep_modes)
}

/// As [`copy_tree`], but read as root with links dereferenced (an operator's directory, such
/// as a `dir:` WordPress source), the umask's modes.
pub fn copy_tree_from_root(from: &OwnedFd, to: &OwnedFd, to_user: &str) -> anyhow::Result<()> {
    copy(from, None, to, to_user, false)
}

/// `from_user`: `None` reads as root, following links.
fn copy(
    from: &OwnedFd,
    from_user: Option<&str>,
    to: &OwnedFd,
    to_user: &str,
    keep_modes: bool,
) -> anyhow::Result<()> {
    let mut command = match from_user {
        Some(user) => as_user_command(user, None),
        None => {
            let mut c = std::process::Command::new("env");
            c.args(["-i", CLEAN_PATH]);
            c
        }
    };
    command.args(["tar", "--create", TAR_RECORDS, "--file=-"]);
    if from_user.is_none() {
        command.arg("--dereference");
    }
    command.args(["--warning=no-file-changed", "."]);
    let mut reader = spawn_in(
        command,
        from,
        Stdio::null(),
        Stdio::piped(),
        "tar (reading)",
    )?;
    let archive = reader.stdout.take().context("tar stdout")?;
    // The writer's primary group is the web group: a non-member's tar clears the set-group-ID
    // bit when it restores a directory's mode, and everything created after that would get the
    // user's own group, which Nginx cannot read.
    let mut command = as_user_command(to_user, Some(WEB_GROUP));
    command.args([
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
    ]);
    let writer = spawn_in(
        command,
        to,
        Stdio::from(archive),
        Stdio::null(),
        "tar (writing)",
    )?;
    let read = std::thread::spawn(move || reader.wait_with_output());
    let written = writer.wait_with_output().context("waiting for tar")?;
    let read = read
        .join()
        .map_err(|_| anyhow::anyhow!("a copy thread panicked"))?
        .context("waiting for tar")?;
    // tar --create exits 1 when a file changed while it was read (a live site's uploads).
    if !(read.status.success() || read.status.code() == Some(1)) {
        bail!(
            "reading as {} failed ({}): {}",
            from_user.unwrap_or("root"),
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
