//! An environment's releases (`<env_root>/releases/<name>`): a release is built in
//! `<name>.build` and renamed into place when complete, so an existing release directory is
//! always complete and a retry rebuilds only a half-built one. Completing a release (links to
//! `shared/`, the mu-plugin, modes) runs as the environment's user; `current` is switched
//! atomically.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use anyhow::{bail, Context};

use super::nofollow;
use super::process::as_user;
use super::users::env_ids;

/// How many releases an environment keeps (the current and the previous one always).
pub const RELEASE_KEEP: usize = 5;

/// A release being built: its opened `.build` directory, or `None` when the release is
/// complete from an earlier attempt (reused as it is).
pub struct Build {
    pub dir: OwnedFd,
    /// The opened `releases/` directory (kept open: the rename happens inside it).
    releases: OwnedFd,
    name: String,
}

/// Prepares `<env_root>/releases/<name>.build` (empty, the user's, web group, set-group-ID)
/// unless the release exists complete already (`None`). An incomplete release directory or a
/// half-built one is removed first; a link in their place is refused.
pub fn start(env_root: &str, name: &str, user: &str) -> anyhow::Result<Option<Build>> {
    let (uid, www) = env_ids(user)?;
    let releases_path = format!("{env_root}/releases");
    let releases = nofollow::open_dir(Path::new(&releases_path))?;
    let in_releases = nofollow::fd_path(&releases);
    let os_name = OsStr::new(name);
    match nofollow::kind_at(releases.as_fd(), os_name)? {
        None => {}
        Some(libc::S_IFDIR) => {
            let existing = nofollow::open_dir_at(releases.as_fd(), os_name)?;
            if nofollow::has_file(existing.as_fd(), "wp-includes/version.php")? {
                return Ok(None); // complete from an earlier attempt
            }
            // std's remove_dir_all never follows a link below the directory.
            std::fs::remove_dir_all(in_releases.join(os_name))
                .context("removing an incomplete release")?;
        }
        Some(_) => bail!(
            "{releases_path}/{name} exists and is not a directory (a link?); refusing to use it"
        ),
    }
    let build_name = format!("{name}.build");
    match nofollow::kind_at(releases.as_fd(), OsStr::new(&build_name))? {
        None => {}
        Some(libc::S_IFDIR) => std::fs::remove_dir_all(in_releases.join(&build_name))
            .context("removing a half-built release")?,
        Some(_) => std::fs::remove_file(in_releases.join(&build_name))
            .context("removing a half-built release")?,
    }
    let dir = nofollow::ensure_dir(
        &Path::new(&releases_path).join(&build_name),
        uid,
        www,
        0o2750,
    )?;
    Ok(Some(Build {
        dir,
        releases,
        name: name.to_string(),
    }))
}

impl Build {
    /// Completes the build as `user` (see [`COMPLETE_RELEASE`]) and renames it into place.
    pub fn complete(self, user: &str, php_dir: &str) -> anyhow::Result<()> {
        let mu_plugin = std::fs::read(format!("{php_dir}/pressluft-mu-plugin.php"))
            .context("reading the mu-plugin")?;
        as_user(user, &self.dir, COMPLETE_RELEASE, &mu_plugin).context("completing the release")?;
        let in_releases = nofollow::fd_path(&self.releases);
        std::fs::rename(
            in_releases.join(format!("{}.build", self.name)),
            in_releases.join(&self.name),
        )
        .context("moving the release into place")?;
        Ok(())
    }
}

/// Run as the environment's user in the build directory: WordPress must be there, the links
/// to `shared/`, the mu-plugin (from stdin), directories 0750 and files 0640 (links untouched;
/// the group www-data comes from the set-group-ID build directory).
const COMPLETE_RELEASE: &str = r#"set -eu
if [ ! -f wp-includes/version.php ] || [ -L wp-includes ]; then
  echo "the release holds no WordPress (no wp-includes/version.php)" >&2
  exit 1
fi
if [ -L wp-content ] || [ ! -d wp-content ]; then
  echo "wp-content is not a directory in the release" >&2
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

/// Points `<env_root>/current` at `releases/<name>` (a new link renamed over the old one).
pub fn switch_current(env_root: &str, name: &str, user: &str) -> anyhow::Result<()> {
    let (uid, www) = env_ids(user)?;
    let root = nofollow::open_dir(Path::new(env_root))?;
    let tmp = nofollow::fd_path(&root).join("current.tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(format!("releases/{name}"), &tmp)?;
    std::os::unix::fs::lchown(&tmp, Some(uid), Some(www))?;
    std::fs::rename(&tmp, nofollow::fd_path(&root).join("current")).context("switching current")?;
    Ok(())
}

/// The release `current` points to (`releases/<name>` or the absolute form), if any.
pub fn current(env_root: &str) -> anyhow::Result<Option<String>> {
    let root = match nofollow::open_dir(Path::new(env_root)) {
        Ok(root) => root,
        Err(nofollow::OpenError::Link(p)) => bail!("{}", nofollow::OpenError::Link(p)),
        Err(_) => return Ok(None),
    };
    if nofollow::kind_at(root.as_fd(), OsStr::new("current"))? != Some(libc::S_IFLNK) {
        return Ok(None);
    }
    let target = nofollow::read_link_at(root.as_fd(), OsStr::new("current"))?;
    let target = target.to_string_lossy();
    let absolute = format!("{env_root}/releases/");
    Ok(target
        .strip_prefix("releases/")
        .or_else(|| target.strip_prefix(absolute.as_str()))
        .map(str::to_string))
}

/// Which of `names` (the release directories) pruning removes: all but the `keep` newest
/// (names start with their UTC creation time, so name order is age order), never a
/// `protected` one (the current release and the previous one).
pub fn to_prune(mut names: Vec<String>, keep: usize, protected: &[&str]) -> Vec<String> {
    names.sort_unstable_by(|a, b| b.cmp(a));
    names
        .into_iter()
        .skip(keep)
        .filter(|n| !protected.contains(&n.as_str()))
        .collect()
}

/// Removes the oldest releases of the environment, keeping `keep` and never a `protected` one;
/// half-built (`*.build`) and other entries are left alone. Returns the removed names. The one
/// implementation of pruning for every job type that switches releases.
pub fn prune(env_root: &str, keep: usize, protected: &[&str]) -> anyhow::Result<Vec<String>> {
    let releases = nofollow::open_dir(Path::new(&format!("{env_root}/releases")))?;
    let in_releases = nofollow::fd_path(&releases);
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&in_releases).context("listing the releases")? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".build") || name.starts_with('.') {
            continue;
        }
        if nofollow::kind_at(releases.as_fd(), &entry.file_name())? == Some(libc::S_IFDIR) {
            names.push(name);
        }
    }
    let doomed = to_prune(names, keep, protected);
    for name in &doomed {
        // std's remove_dir_all never follows a link below the directory.
        std::fs::remove_dir_all(in_releases.join(name))
            .with_context(|| format!("pruning the release {name}"))?;
    }
    Ok(doomed)
}

#[cfg(test)]
mod tests {
    use super::to_prune;

    #[test]
    fn pruning_keeps_the_newest_and_the_protected_releases() {
        let names = ["20260101-a", "20260301-c", "20260201-b", "20260401-d"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            to_prune(names.clone(), 2, &["20260101-a"]),
            vec!["20260201-b".to_string()]
        );
        assert_eq!(to_prune(names.clone(), 5, &[]), Vec::<String>::new());
        assert_eq!(to_prune(names, 0, &["20260401-d"]).len(), 3);
    }
}
