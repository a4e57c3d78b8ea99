//! An environment's Unix user and its directories (what the env-user role did for
//! `site_create` before the node helper took over): the user and group, the site directory, the
//! environment root with `releases/`, `shared/`, `shared/uploads` and the PHP-private
//! directories. Idempotent; every directory is created and set through an opened descriptor (a
//! link is refused, never followed).

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context;

use super::nofollow;
use super::process::run_cmd;

/// The group Nginx runs as: it reads an environment's static files.
pub const WEB_GROUP: &str = "www-data";
/// Owns the site directories above the environment roots.
const SITE_OWNER: &str = "pressluft";

/// Directories of an environment only its PHP uses (the pool's `sys_temp_dir`,
/// `upload_tmp_dir`, `session.save_path`, and `logs` for its `error_log`).
pub const PHP_PRIVATE_DIRS: [&str; 4] = ["tmp", "upload-tmp", "sessions", "logs"];

/// The environment's user and group (`home` is its root, never created by `useradd`).
pub fn ensure_user(user: &str, home: &str) -> anyhow::Result<()> {
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
fn directory(path: &str, owner: &str, group: &str, mode: u32) -> anyhow::Result<()> {
    let (uid, _) = nofollow::user_ids(owner)?;
    let gid = nofollow::group_id(group)?;
    nofollow::ensure_dir(Path::new(path), uid, gid, mode)?;
    Ok(())
}

/// `user`'s id and the web group's id.
pub fn env_ids(user: &str) -> anyhow::Result<(u32, u32)> {
    Ok((nofollow::user_ids(user)?.0, nofollow::group_id(WEB_GROUP)?))
}

/// The site directory (0711, the site owner's), the environment root, `releases/`, `shared/`
/// (0750), `shared/uploads` (02750: what WordPress creates there gets the web group) and the
/// PHP-private directories (0700, the user's own group). `env_root` without a trailing `/`.
pub fn ensure_directories(user: &str, env_root: &str) -> anyhow::Result<()> {
    let site_dir = Path::new(env_root)
        .parent()
        .and_then(Path::to_str)
        .context("env_root has no parent")?;
    directory(site_dir, SITE_OWNER, SITE_OWNER, 0o711)?;
    for (path, mode) in [
        (env_root.to_string(), 0o750),
        (format!("{env_root}/releases"), 0o750),
        (format!("{env_root}/shared"), 0o750),
        (format!("{env_root}/shared/uploads"), 0o2750),
    ] {
        directory(&path, user, WEB_GROUP, mode)?;
    }
    for dir in PHP_PRIVATE_DIRS {
        directory(&format!("{env_root}/{dir}"), user, user, 0o700)?;
    }
    Ok(())
}
