//! The WordPress facts a backup records that only the node knows: the table prefix (through the
//! PHP bridge's `table-prefix`, which parses `wp-config.php` without running WordPress) and the
//! WordPress version (`$wp_version` in the release's `wp-includes/version.php`, read without
//! following a link). The control plane sends them empty; `backup-create` fills them in here
//! before anything is written, so the manifest always carries what a restore needs. When they
//! cannot be read the environment is not in a state to be backed up: `PRECONDITION_FAILED`
//! (exit 3), not retried.

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::AsFd;

use super::create::CreateSpec;
use super::BackupError;
use crate::node_helper::{bridge, nofollow};

/// Fills `table_prefix` and `wordpress_version` of `spec` when they are empty.
pub fn fill(spec: &mut CreateSpec) -> Result<(), BackupError> {
    let release = spec.release.to_string_lossy().into_owned();
    if spec.backup.table_prefix.is_empty() {
        if spec.php_dir.is_empty() || spec.env_user.is_empty() {
            return Err(BackupError::Spec(
                "table_prefix is empty and php_dir/env_user are missing to read it".into(),
            ));
        }
        spec.backup.table_prefix = bridge::table_prefix(&spec.php_dir, &spec.env_user, &release)
            .map_err(|e| BackupError::Precondition(format!("{e:#}")))?;
    }
    if spec.backup.wordpress_version.is_empty() {
        spec.backup.wordpress_version = wordpress_version(spec)?;
    }
    Ok(())
}

/// `$wp_version` of the release, read through descriptors opened without following links.
fn wordpress_version(spec: &CreateSpec) -> Result<String, BackupError> {
    let failed =
        |m: String| BackupError::Precondition(format!("reading the WordPress version: {m}"));
    let release = nofollow::open_dir_confined(&spec.release, &spec.env_root)
        .map_err(|e| failed(format!("{e:#}")))?
        .ok_or_else(|| failed(format!("{} does not exist", spec.release.display())))?;
    let includes = nofollow::open_dir_at(release.as_fd(), OsStr::new("wp-includes"))
        .map_err(|e| failed(format!("wp-includes: {e}")))?;
    let file = nofollow::open_at(
        includes.as_fd(),
        OsStr::new("version.php"),
        libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK,
    )
    .map_err(|e| failed(format!("wp-includes/version.php: {e}")))?;
    let mut text = String::new();
    std::fs::File::from(file)
        .take(64 * 1024)
        .read_to_string(&mut text)
        .map_err(|e| failed(format!("wp-includes/version.php: {e}")))?;
    parse_version(&text).ok_or_else(|| failed("no plain $wp_version in version.php".into()))
}

/// `$wp_version = '6.7.1';` → `6.7.1` (letters, digits, `.`, `-` only; at most 32 characters).
pub fn parse_version(php: &str) -> Option<String> {
    php.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix("$wp_version")?;
        let rest = rest.trim_start().strip_prefix('=')?.trim_start();
        let quote = rest.chars().next().filter(|q| *q == '\'' || *q == '"')?;
        let value = rest[1..].split(quote).next()?;
        let plain = !value.is_empty()
            && value.len() <= 32
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        plain.then(|| value.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn the_version_is_read_plainly() {
        let php = "<?php\n/** doc */\n$wp_version = '6.7.1';\n$wp_db_version = 58975;\n";
        assert_eq!(parse_version(php).as_deref(), Some("6.7.1"));
        assert_eq!(
            parse_version("$wp_version = \"6.8-RC1\";").as_deref(),
            Some("6.8-RC1")
        );
        assert_eq!(parse_version("$wp_version = '6.7; rm -rf /';"), None);
        assert_eq!(parse_version("$wp_db_version = 1;"), None);
    }
}
