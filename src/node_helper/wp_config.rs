//! The table prefix in an environment's `shared/wp-config.php`: an import brings a database
//! with its own prefix (`site-import`), and a rollback that restores the pre-import database
//! must put the backup's prefix back (`release-rollback`), or WordPress would look for tables
//! that are not there.
//!
//! The file is rendered by the wp-config role's template, which writes the prefix on one line
//! of its own, `$table_prefix = '<prefix>';`. Only that line changes: the file is read through
//! its opened directory without following a link (a link in its place is refused: root never
//! follows links in an environment's tree), exactly one such line must be there, the prefix
//! must be a plain identifier, and the result is installed atomically with the same owner and
//! mode 0600 ([`super::files::install`]).

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{bail, Context};

use super::{files, nofollow};

/// Whether `prefix` is a table prefix WordPress and the helpers accept: letters, digits and
/// `_`, at most 32 bytes.
pub fn is_table_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.len() <= 32
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `content` with its one `$table_prefix = '…';` line set to `prefix`.
pub fn with_table_prefix(content: &str, prefix: &str) -> anyhow::Result<String> {
    if !is_table_prefix(prefix) {
        bail!("{prefix:?} is not a plain table prefix");
    }
    let is_prefix_line = |l: &str| l.trim_start().starts_with("$table_prefix");
    let count = content.lines().filter(|l| is_prefix_line(l)).count();
    if count != 1 {
        bail!("wp-config.php must set $table_prefix on exactly one line (found {count})");
    }
    let mut out = String::with_capacity(content.len() + prefix.len());
    for line in content.split_inclusive('\n') {
        if is_prefix_line(line) {
            out.push_str(&format!("$table_prefix = '{prefix}';"));
            if line.ends_with('\n') {
                out.push('\n');
            }
        } else {
            out.push_str(line);
        }
    }
    Ok(out)
}

/// The table prefix `shared/wp-config.php` sets now (`None`: no such line, or not plain).
pub fn table_prefix_of(content: &str) -> Option<String> {
    let line = content
        .lines()
        .find(|l| l.trim_start().starts_with("$table_prefix"))?;
    let value = line.split_once('=')?.1.trim().trim_end_matches(';').trim();
    let value = value.strip_prefix('\'')?.strip_suffix('\'')?;
    is_table_prefix(value).then(|| value.to_string())
}

/// Reads `<env_root>/shared/wp-config.php` (a regular file, no link followed; at most 1 MiB).
pub fn read(env_root: &str) -> anyhow::Result<String> {
    let shared = nofollow::open_dir(&Path::new(env_root).join("shared"))?;
    let fd = nofollow::open_at(
        shared.as_fd(),
        OsStr::new("wp-config.php"),
        libc::O_RDONLY | libc::O_NOFOLLOW,
    )
    .context("opening shared/wp-config.php (a link is refused)")?;
    let mut file = std::fs::File::from(fd);
    if !file.metadata()?.is_file() {
        bail!("shared/wp-config.php is not a regular file");
    }
    let mut content = String::new();
    (&mut file)
        .take(1 << 20)
        .read_to_string(&mut content)
        .context("reading shared/wp-config.php")?;
    Ok(content)
}

/// Sets the table prefix of `<env_root>/shared/wp-config.php` (owned by `env_user`) to
/// `prefix`; true when the file changed.
pub fn set_table_prefix(env_root: &str, env_user: &str, prefix: &str) -> anyhow::Result<bool> {
    let content = read(env_root)?;
    if table_prefix_of(&content).as_deref() == Some(prefix) {
        return Ok(false);
    }
    let updated = with_table_prefix(&content, prefix)?;
    files::install(
        &format!("{}/shared/wp-config.php", env_root.trim_end_matches('/')),
        &updated,
        &format!("{0}:{0}", env_user),
        0o600,
        None,
    )?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RENDERED: &str = "<?php\ndefine('DB_NAME', 'x');\n$table_prefix = 'wp_';\nrequire_once ABSPATH . 'wp-settings.php';\n";

    #[test]
    fn only_the_prefix_line_changes() {
        let out = with_table_prefix(RENDERED, "wpx_").unwrap();
        assert_eq!(out, RENDERED.replace("'wp_'", "'wpx_'"));
        assert_eq!(table_prefix_of(&out).as_deref(), Some("wpx_"));
        assert_eq!(table_prefix_of(RENDERED).as_deref(), Some("wp_"));
    }

    #[test]
    fn a_hostile_prefix_or_an_odd_file_is_refused() {
        for bad in [
            "",
            "wp'; system('id'); //",
            "wp-x",
            "wp_\n",
            &"a".repeat(33),
        ] {
            assert!(with_table_prefix(RENDERED, bad).is_err(), "{bad:?}");
        }
        assert!(with_table_prefix("<?php\n", "wp_").is_err());
        let twice = format!("{RENDERED}$table_prefix = 'y_';\n");
        assert!(with_table_prefix(&twice, "wp_").is_err());
    }
}
