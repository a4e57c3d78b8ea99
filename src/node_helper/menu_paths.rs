//! `pressluft node menu-paths` (issue 16): the default check pages of a safe-update run — `/` and
//! the same-host paths of the environment's primary menu, at most 10 — read by the PHP bridge's
//! `menu-paths` as the environment's user (a node query over one SSH command, as `magic-login`;
//! the bridge picks the menu: theme location `primary`/`menu-1`, else the first nav menu, else a
//! block theme's navigation menu, else the published pages). The helper checks the names and the
//! answer: every path starts with one `/`, holds no control character and is at most 200
//! characters, at most [`MAX_PATHS`] of them.

use anyhow::bail;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::spec::{self, MenuPathsSpec};
use super::{magic_login, php_fatals, releases};

/// How many paths are reported at most (the home page included).
pub const MAX_PATHS: usize = 10;

/// What `menu-paths` prints.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct MenuPaths {
    pub paths: Vec<String>,
}

/// `pressluft node menu-paths`.
pub fn run() -> anyhow::Result<()> {
    spec::run_command(check, |spec: &MenuPathsSpec, _: &()| {
        parse_answer(magic_login::bridge_query(
            &spec.env_root,
            &spec.env_user,
            &spec.php_dir,
            "menu-paths",
        )?)
    })
}

fn check(spec: &MenuPathsSpec) -> anyhow::Result<()> {
    php_fatals::check_names(&spec.environment_id, &spec.env_root, &spec.env_user)?;
    let php_dir_ok = spec.php_dir.starts_with('/')
        && !spec.php_dir.contains("..")
        && spec
            .php_dir
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-".contains(&b));
    if !php_dir_ok {
        bail!("php_dir is not a plain absolute path");
    }
    if releases::current(&spec.env_root)?.is_none() {
        bail!("the environment has no current release");
    }
    let bridge = format!("{}/bridge.php", spec.php_dir);
    if !std::path::Path::new(&bridge).is_file() {
        bail!("the PHP bridge {bridge} is missing: provision the node again");
    }
    Ok(())
}

/// Whether `path` is a path on the site's own host as a check page: one leading `/` (not `//`),
/// 1–200 characters, no control characters, spaces or backslashes.
pub fn is_check_path(path: &str) -> bool {
    path.starts_with('/')
        && !path.starts_with("//")
        && path.len() <= 200
        && !path
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
}

/// The bridge's answer, checked: a path that is not a same-host path is dropped, at most
/// [`MAX_PATHS`], duplicates once.
pub fn parse_answer(answer: Value) -> anyhow::Result<MenuPaths> {
    let Some(list) = answer.get("paths").and_then(Value::as_array) else {
        bail!("the PHP bridge's menu-paths answer is not understood");
    };
    let mut paths: Vec<String> = Vec::new();
    for p in list.iter().filter_map(Value::as_str) {
        if is_check_path(p) && !paths.iter().any(|q| q == p) && paths.len() < MAX_PATHS {
            paths.push(p.to_string());
        }
    }
    Ok(MenuPaths { paths })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_checked() {
        let answer = serde_json::json!({"paths": [
            "/", "/about/", "/about/", "//evil.example/", "https://evil.example/", "/a b",
            "/x\u{7f}", "/\\evil", "", "/?page_id=2", 7
        ]});
        assert_eq!(
            parse_answer(answer).unwrap().paths,
            vec!["/", "/about/", "/?page_id=2"]
        );
        let many: Vec<String> = (0..30).map(|i| format!("/p{i}/")).collect();
        let answer = serde_json::json!({ "paths": many });
        assert_eq!(parse_answer(answer).unwrap().paths.len(), MAX_PATHS);
        assert!(parse_answer(serde_json::json!({"error": "x"})).is_err());
        assert!(!is_check_path(&format!("/{}", "a".repeat(200))));
    }
}
