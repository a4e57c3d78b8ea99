//! What a fetched deploy source is (api.md, "A source whose root has `wp-includes/version.php`
//! is a full WordPress tree; otherwise it is the contents of `wp-content`"), and preparing it
//! for the copy into a release: `wp-config.php` and `wp-content/uploads` in a source are
//! ignored (removed from root's temporary copy), and the tree is handed to the environment's
//! user so that the copy reads it as that user. Runs only inside root's private temporary
//! directory, never following a link.

use std::path::Path;

use serde::Serialize;

use super::DeployError;
use crate::node_helper::users::env_ids;

/// The directories of which a `wp-content` source must have at least one.
pub const WP_CONTENT_DIRS: &[&str] = &["themes", "plugins", "mu-plugins", "languages"];

/// The kind of source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Layout {
    /// A full WordPress tree.
    #[serde(rename = "full")]
    Full,
    /// The contents of `wp-content`.
    #[serde(rename = "wp-content")]
    WpContent,
}

fn is_dir(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir())
}

fn remove(path: &Path) -> Result<(), DeployError> {
    let result = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => return Ok(()),
    };
    result.map_err(|e| DeployError::Failed(format!("removing {}: {e}", path.display())))
}

/// Detects the source's layout at `root` and removes what a source may not bring.
pub fn detect(root: &Path) -> Result<Layout, DeployError> {
    let version = root.join("wp-includes/version.php");
    if is_dir(&root.join("wp-includes"))
        && std::fs::symlink_metadata(&version).is_ok_and(|m| m.is_file())
    {
        return Ok(Layout::Full);
    }
    if WP_CONTENT_DIRS.iter().any(|d| is_dir(&root.join(d))) {
        return Ok(Layout::WpContent);
    }
    Err(DeployError::ArchiveInvalid(format!(
        "the source is neither a WordPress tree (no wp-includes/version.php) nor the contents \
         of wp-content (none of {})",
        WP_CONTENT_DIRS.join(", ")
    )))
}

/// [`detect`], then removes `wp-config.php` and the uploads from the source.
pub fn prepare(root: &Path) -> Result<Layout, DeployError> {
    let layout = detect(root)?;
    remove(&root.join("wp-config.php"))?;
    match layout {
        Layout::Full => {
            if is_dir(&root.join("wp-content")) {
                remove(&root.join("wp-content/uploads"))?;
            }
        }
        Layout::WpContent => remove(&root.join("uploads"))?,
    }
    Ok(layout)
}

/// Gives the tree at `root` to `user` (group: the web group), links included, none followed.
pub fn chown_tree(root: &Path, user: &str) -> Result<(), DeployError> {
    let (uid, gid) = env_ids(user).map_err(|e| DeployError::Failed(format!("{e:#}")))?;
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path)
            .map_err(|e| DeployError::Failed(format!("{}: {e}", path.display())))?;
        std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
            .map_err(|e| DeployError::Failed(format!("{}: {e}", path.display())))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)
                .map_err(|e| DeployError::Failed(format!("{}: {e}", path.display())))?
            {
                let entry = entry.map_err(|e| DeployError::Failed(e.to_string()))?;
                stack.push(entry.path());
            }
        }
    }
    Ok(())
}
