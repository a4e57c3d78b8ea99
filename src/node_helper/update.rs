//! `pressluft node env-update` and `pressluft node update-check`: WordPress core, plugin and
//! theme updates of an environment through WordPress's own update service and upgrader
//! classes, run by the PHP bridge (`update-check`, `update`) as the environment's user
//! (backups-restore-promotion.md §7).
//!
//! `env-update` never updates the live release in place: (a) the pre-update backup first
//! (the backup library, as `backup-create`), (b) a forced update check (nothing to update:
//! no release, no switch), (c) a new release copied from the current one, (d) the bridge's
//! `update` on that copy, (e) made live by [`switch::go_live`]. A failure of (b)–(d) removes
//! the started release and changes nothing live; the update service or a package download
//! failing exits [`EXIT_FETCH`] (`SOURCE_FETCH_FAILED`), the pre-update backup's storage
//! failing exits 4 (`BACKUP_STORAGE_UNREACHABLE`).
//!
//! The update source override (the `wordpress_update_source` setting) is checked here, on
//! the node, before WordPress sees it: http(s) only, no credentials, and its host must not
//! resolve to a link-local address (nor a loopback one unless the control plane allows
//! loopback sources) — the rule of fetch.rs.

use std::net::ToSocketAddrs;
use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{bail, Context};
use serde::Serialize;
use serde_json::Value;

use super::backup::create::CreateResult;
use super::process::as_user_command;
use super::spec::{self, AvailableUpdates, EnvUpdateSpec, UpdateCheckSpec};
use super::{backup, files, nofollow, releases, services, switch};
use crate::sources;

/// Exit code of a failed update-service request or package download (`SOURCE_FETCH_FAILED`;
/// the bridge uses the same code).
pub const EXIT_FETCH: i32 = 6;

/// What the pre-update backup produced (the `backup_create` result's fields).
#[derive(Debug, Serialize)]
pub struct PreBackup {
    pub checksum: String,
    pub size_bytes: u64,
    pub artifacts: Vec<backup::artifact::ArtifactInfo>,
}

/// One applied update.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Applied {
    pub id: String,
    pub from: String,
    pub to: String,
}

/// What the update applied, per kind.
#[derive(Debug, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct Updated {
    pub core: Vec<Applied>,
    pub plugins: Vec<Applied>,
    pub themes: Vec<Applied>,
}

/// What `env-update` prints (the result file of env-update.yml).
#[derive(Debug, Serialize)]
pub struct EnvUpdateResult {
    /// The new release, or `None` when there was nothing to update.
    pub release_name: Option<String>,
    pub pre_backup: Option<PreBackup>,
    pub updated: Updated,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub went_live: Option<switch::WentLive>,
}

/// A failed bridge call: its exit code and message.
#[derive(Debug)]
pub struct BridgeFailure {
    pub code: Option<i32>,
    pub message: String,
}

impl BridgeFailure {
    /// Whether the update service or a download failed (the bridge's exit 6).
    pub fn is_fetch(&self) -> bool {
        self.code == Some(EXIT_FETCH)
    }
}

/// Ends the command with `message` on stderr and exit `code` (before anything live changed).
fn exit_with(code: i32, message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(code);
}

/// Checks the update source override: `None`/empty is WordPress's normal source.
pub fn check_update_source(
    source: Option<&str>,
    allow_loopback: bool,
) -> anyhow::Result<Option<String>> {
    let Some(source) = source.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if !(source.starts_with("http://") || source.starts_with("https://")) {
        bail!("the update source must be an http(s) URL");
    }
    if sources::userinfo(source).is_some() {
        bail!("the update source must not hold credentials");
    }
    let host = sources::url_host(source).context("the update source has no host")?;
    sources::check_source_host(&host, allow_loopback)
        .map_err(|e| anyhow::anyhow!("the update source's host: {e}"))?;
    if let Ok(addresses) = (host.as_str(), 0).to_socket_addrs() {
        let refused: Vec<String> = addresses
            .map(|a| a.ip())
            .filter(|ip| {
                sources::is_link_local(*ip) || (!allow_loopback && sources::is_loopback(*ip))
            })
            .map(|ip| ip.to_string())
            .collect();
        if !refused.is_empty() {
            bail!(
                "the update source's host {host} resolves to {}: link-local addresses are \
                 never allowed, loopback addresses only with --allow-loopback-sources",
                refused.join(", ")
            );
        }
    }
    Ok(Some(source.trim_end_matches('/').to_string()))
}

/// Runs a bridge update command as `user` on `wp_root` with the override in its environment.
pub fn bridge_update_call(
    php_dir: &str,
    user: &str,
    wp_root: &str,
    update_source: Option<&str>,
    args: &[&str],
) -> Result<Value, BridgeFailure> {
    let mut command = as_user_command(user, None);
    command.arg(format!("PRESSLUFT_WP_ROOT={wp_root}"));
    if let Some(source) = update_source {
        command.arg(format!("PRESSLUFT_UPDATE_SOURCE={source}"));
    }
    let (out, answer) =
        super::bridge::answer(command, php_dir, args).map_err(|e| BridgeFailure {
            code: None,
            message: format!("starting the PHP bridge: {e}"),
        })?;
    match answer {
        Some(v) if out.status.success() => Ok(v),
        Some(v) => Err(BridgeFailure {
            code: out.status.code(),
            message: format!(
                "the PHP bridge ({}) failed: {}",
                args[0],
                v.get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("no message")
            ),
        }),
        None => Err(BridgeFailure {
            code: out.status.code(),
            message: format!(
                "the PHP bridge ({}) gave no answer ({})",
                args[0], out.status
            ),
        }),
    }
}

/// The bridge's `update-check` for `scope` on `wp_root`.
fn available(
    php_dir: &str,
    user: &str,
    wp_root: &str,
    source: Option<&str>,
    scope: &str,
) -> Result<AvailableUpdates, BridgeFailure> {
    let args = serde_json::json!({ "scope": scope }).to_string();
    let answer = bridge_update_call(php_dir, user, wp_root, source, &["update-check", &args])?;
    serde_json::from_value(answer).map_err(|e| BridgeFailure {
        code: None,
        message: format!("the PHP bridge's update-check answer is not understood: {e}"),
    })
}

/// Whether there is anything to update.
pub fn is_empty(a: &AvailableUpdates) -> bool {
    a.core.is_none() && a.plugins.is_empty() && a.themes.is_empty()
}

fn check_bridge(php_dir: &str) -> anyhow::Result<()> {
    let bridge_php = format!("{php_dir}/bridge.php");
    if php_dir.is_empty() || !Path::new(&bridge_php).is_file() {
        bail!("the PHP bridge {bridge_php} is missing: provision the node again");
    }
    Ok(())
}

fn check_scope(scope: &str) -> anyhow::Result<()> {
    if !["core", "plugins", "themes", "all"].contains(&scope) {
        bail!("scope must be one of core, plugins, themes, all");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// update-check
// ---------------------------------------------------------------------------------------------

/// `pressluft node update-check`.
pub fn run_check() -> anyhow::Result<()> {
    spec::run_command(
        check_query,
        |spec: &UpdateCheckSpec, source: &Option<String>| {
            let wp_root = format!("{}/current", spec.env_root.trim_end_matches('/'));
            available(
                &spec.php_dir,
                &spec.env_user,
                &wp_root,
                source.as_deref(),
                "all",
            )
            .map_err(|e| exit_with(if e.is_fetch() { EXIT_FETCH } else { 1 }, &e.message))
        },
    )
}

fn check_query(spec: &UpdateCheckSpec) -> anyhow::Result<Option<String>> {
    if releases::current(&spec.env_root)?.is_none() {
        bail!("the environment has no current release");
    }
    check_bridge(&spec.php_dir)?;
    check_update_source(spec.update_source.as_deref(), spec.allow_loopback_sources)
}

// ---------------------------------------------------------------------------------------------
// env-update
// ---------------------------------------------------------------------------------------------

/// What the check phase established.
pub struct Checked {
    php_version: String,
    source: Option<String>,
    /// The release `current` points to now.
    current: String,
}

/// `pressluft node env-update`.
pub fn run() -> anyhow::Result<()> {
    spec::run_command(check, apply)
}

fn check(spec: &EnvUpdateSpec) -> anyhow::Result<Checked> {
    check_scope(&spec.scope)?;
    check_bridge(&spec.node.php_dir)?;
    let php_version = services::php_version(&spec.node.supported_os)?;
    let source = check_update_source(spec.update_source.as_deref(), spec.allow_loopback_sources)?;
    let env_root = &spec.go_live.env_root;
    let current = releases::current(env_root)?.context("the environment has no current release")?;
    // A retry after the switch finds the new release live already.
    if current != spec.release_name && current != spec.current_release_name {
        bail!(
            "current is {current}, not the expected release {}: the environment changed",
            spec.current_release_name
        );
    }
    let current_dir = format!("{env_root}/releases/{current}");
    if !Path::new(&format!("{current_dir}/wp-includes/version.php")).is_file() {
        bail!("the current release {current} is not complete");
    }
    for name in [&spec.release_name, &spec.current_release_name] {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            bail!("invalid release name {name:?}");
        }
    }
    Ok(Checked {
        php_version,
        source,
        current,
    })
}

fn apply(spec: &EnvUpdateSpec, checked: &Checked) -> anyhow::Result<EnvUpdateResult> {
    let env_root = spec.go_live.env_root.as_str();
    let user = spec.go_live.env_user.as_str();
    let php_dir = spec.node.php_dir.as_str();
    let source = checked.source.as_deref();

    // (a) The pre-update backup, first.
    let pre_backup = match &spec.pre_backup {
        None => None,
        Some(_) => Some(pre_backup(spec)?),
    };

    // A retry after the switch: the new release is live; make sure it is, report it.
    if checked.current == spec.release_name {
        let went_live = switch::go_live(
            &spec.go_live,
            &spec.release_name,
            &[spec.current_release_name.as_str()],
            &checked.php_version,
        )?;
        return Ok(EnvUpdateResult {
            release_name: Some(spec.release_name.clone()),
            pre_backup,
            updated: Updated::default(),
            went_live: Some(went_live),
        });
    }

    // (b) Anything to update?
    let current_root = format!("{env_root}/current");
    let offered = available(php_dir, user, &current_root, source, &spec.scope)
        .unwrap_or_else(|e| exit_with(if e.is_fetch() { EXIT_FETCH } else { 1 }, &e.message));
    if is_empty(&offered) {
        return Ok(EnvUpdateResult {
            release_name: None,
            pre_backup,
            updated: Updated::default(),
            went_live: None,
        });
    }

    // (c) The new release, a copy of the current one.
    let release_path = format!("{env_root}/releases/{}", spec.release_name);
    remove_release(env_root, &spec.release_name)?;
    let build = releases::start(env_root, &spec.release_name, user)?
        .context("the new release exists already")?;
    let from = nofollow::open_dir(Path::new(&format!(
        "{env_root}/releases/{}",
        checked.current
    )))?;
    let built = files::copy_tree(&from, user, &build.dir, user, true)
        .context("copying the current release")
        .and_then(|()| build.complete(user, php_dir));
    if let Err(e) = built {
        let _ = remove_release(env_root, &spec.release_name);
        let _ = remove_release(env_root, &format!("{}.build", spec.release_name));
        return Err(e);
    }

    // (d) WordPress's upgraders on the copy.
    let args = serde_json::json!({ "scope": spec.scope }).to_string();
    let answer = match bridge_update_call(php_dir, user, &release_path, source, &["update", &args])
    {
        Ok(answer) => answer,
        Err(e) => {
            let _ = remove_release(env_root, &spec.release_name);
            exit_with(if e.is_fetch() { EXIT_FETCH } else { 1 }, &e.message)
        }
    };
    let updated: Updated = match serde_json::from_value(answer["updated"].clone()) {
        Ok(u) => u,
        Err(e) => {
            let _ = remove_release(env_root, &spec.release_name);
            bail!("the PHP bridge's update answer is not understood: {e}");
        }
    };

    // (e) Live, the previous release protected.
    let went_live = switch::go_live(
        &spec.go_live,
        &spec.release_name,
        &[checked.current.as_str()],
        &checked.php_version,
    )?;
    Ok(EnvUpdateResult {
        release_name: Some(spec.release_name.clone()),
        pre_backup,
        updated,
        went_live: Some(went_live),
    })
}

/// The pre-update backup through the backup library (as `backup-create`); a failure ends the
/// command with the backup's exit code (4: storage unreachable).
fn pre_backup(spec: &EnvUpdateSpec) -> anyhow::Result<PreBackup> {
    let create = spec.pre_backup.as_ref().context("the pre-backup spec")?;
    pre_operation_backup(create, &spec.node.php_dir, "the pre-update backup")
}

/// A pre-operation full backup (`env-update`, `site-import`) through the backup library, as
/// `backup-create`; a failure ends the command with the backup's exit code (4: storage
/// unreachable), `what` naming it in the message.
pub fn pre_operation_backup(
    create: &backup::create::CreateSpec,
    php_dir: &str,
    what: &str,
) -> anyhow::Result<PreBackup> {
    let json = serde_json::to_value(create).context("the pre-backup spec")?;
    let mut create: backup::create::CreateSpec =
        serde_json::from_value(json).context("the pre-backup spec")?;
    if create.php_dir.is_empty() {
        create.php_dir = php_dir.to_string();
    }
    let outcome = backup::on_runtime(move |handle| backup::create::create(create, handle))?;
    match outcome {
        Ok(CreateResult {
            checksum,
            size_bytes,
            artifacts,
            ..
        }) => Ok(PreBackup {
            checksum,
            size_bytes,
            artifacts,
        }),
        Err(e) => exit_with(e.exit_code(), &format!("{what}: {e}")),
    }
}

/// Removes `releases/<name>` (a directory, never followed if a link) when it exists.
fn remove_release(env_root: &str, name: &str) -> anyhow::Result<()> {
    let releases_dir = nofollow::open_dir(Path::new(&format!("{env_root}/releases")))?;
    match nofollow::kind_at(releases_dir.as_fd(), std::ffi::OsStr::new(name))? {
        None => Ok(()),
        // std's remove_dir_all never follows a link below the directory.
        Some(libc::S_IFDIR) => std::fs::remove_dir_all(nofollow::fd_path(&releases_dir).join(name))
            .with_context(|| format!("removing the release {name}")),
        Some(_) => std::fs::remove_file(nofollow::fd_path(&releases_dir).join(name))
            .with_context(|| format!("removing {name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_update_source_is_checked_like_a_source() {
        assert_eq!(check_update_source(None, false).unwrap(), None);
        assert_eq!(check_update_source(Some(" "), false).unwrap(), None);
        assert_eq!(
            check_update_source(Some("http://127.0.0.1:8099/"), true).unwrap(),
            Some("http://127.0.0.1:8099".to_string())
        );
        assert!(check_update_source(Some("http://127.0.0.1:8099"), false).is_err());
        assert!(check_update_source(Some("http://169.254.169.254/"), true).is_err());
        assert!(check_update_source(Some("ftp://example.org/"), true).is_err());
        assert!(check_update_source(Some("http://u:p@example.org/"), true).is_err());
    }
}
