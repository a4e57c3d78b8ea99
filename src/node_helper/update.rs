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
//! With `versions` (a safe-update run's tested updates, issue 16) exactly those items are
//! updated, each only at exactly its version: the offered versions are compared before the
//! pre-update backup (a difference exits 3, `PRECONDITION_FAILED`, naming the item and both
//! versions), and the bridge compares them again after its own forced check, before any
//! upgrader runs (the feed may change in between).
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
use super::spec::{
    self, AvailableUpdates, EnvUpdateSpec, UpdateCheckSpec, UpdateKind, UpdateVersion,
};
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
        Some(v) => {
            let error = v
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("no message");
            Err(BridgeFailure {
                code: out.status.code(),
                // Exit 3 (an offered version is not the tested one): the bridge's sentence as
                // is, the message of the job's PRECONDITION_FAILED.
                message: if out.status.code() == Some(spec::PRECONDITION_EXIT) {
                    error.to_string()
                } else {
                    format!("the PHP bridge ({}) failed: {error}", args[0])
                },
            })
        }
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

/// Whether `scope` covers updates of `kind`.
fn in_scope(scope: &str, kind: UpdateKind) -> bool {
    scope == "all"
        || matches!(
            (scope, kind),
            ("core", UpdateKind::Core)
                | ("plugins", UpdateKind::Plugin)
                | ("themes", UpdateKind::Theme)
        )
}

/// The form of a `versions` list: each item valid, within the scope, listed once.
pub fn check_versions_form(scope: &str, versions: &[UpdateVersion]) -> anyhow::Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for (i, v) in versions.iter().enumerate() {
        v.validate()
            .map_err(|(field, rule)| anyhow::anyhow!("versions[{i}].{field} {rule}"))?;
        if !in_scope(scope, v.kind) {
            bail!(
                "versions[{i}]: a {} update is outside the scope {scope}",
                v.kind
            );
        }
        let key = (
            v.kind,
            if v.kind == UpdateKind::Core {
                "core"
            } else {
                v.id.as_str()
            },
        );
        if !seen.insert(key) {
            bail!("versions[{i}]: {} {} is listed twice", v.kind, v.id);
        }
    }
    Ok(())
}

/// Compares the tested `versions` with what WordPress offers now: `Err` names the first item
/// whose offered version differs (or that is not offered at all) and both versions.
pub fn check_offered(offered: &AvailableUpdates, versions: &[UpdateVersion]) -> Result<(), String> {
    for v in versions {
        let now = match v.kind {
            UpdateKind::Core => offered.core.as_ref(),
            UpdateKind::Plugin => offered.plugins.iter().find(|u| u.id == v.id),
            UpdateKind::Theme => offered.themes.iter().find(|u| u.id == v.id),
        };
        let id = if v.kind == UpdateKind::Core {
            "core"
        } else {
            v.id.as_str()
        };
        match now {
            Some(u) if u.new_version == v.version => {}
            Some(u) => {
                return Err(format!(
                    "{} {id}: {} is offered now, {} was tested",
                    v.kind, u.new_version, v.version
                ))
            }
            None => {
                return Err(format!(
                    "{} {id}: no update is offered now, {} was tested",
                    v.kind, v.version
                ))
            }
        }
    }
    Ok(())
}

/// The exit code for a failed bridge update call: 6 (fetch), 3 (the bridge found an offered
/// version other than the tested one: nothing was updated) or 1.
fn bridge_exit(e: &BridgeFailure) -> i32 {
    match e.code {
        Some(EXIT_FETCH) => EXIT_FETCH,
        Some(spec::PRECONDITION_EXIT) => spec::PRECONDITION_EXIT,
        _ => 1,
    }
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
    check_versions_form(&spec.scope, spec.versions.as_deref().unwrap_or_default())?;
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
    let current_root = format!("{env_root}/current");
    let versions = spec.versions.as_deref().filter(|v| !v.is_empty());

    // Exact versions: compared before anything (the backup included) happens.
    let offered_first = match versions {
        Some(versions) if checked.current != spec.release_name => {
            let offered = available(php_dir, user, &current_root, source, &spec.scope)
                .unwrap_or_else(|e| exit_with(bridge_exit(&e), &e.message));
            if let Err(message) = check_offered(&offered, versions) {
                spec::refuse(&message);
            }
            Some(offered)
        }
        _ => None,
    };

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
    let offered = match offered_first {
        Some(offered) => offered,
        None => available(php_dir, user, &current_root, source, &spec.scope)
            .unwrap_or_else(|e| exit_with(bridge_exit(&e), &e.message)),
    };
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
    let mut args = serde_json::json!({ "scope": spec.scope });
    if let Some(versions) = versions {
        args["versions"] = serde_json::to_value(versions)?;
    }
    let args = args.to_string();
    let answer = match bridge_update_call(php_dir, user, &release_path, source, &["update", &args])
    {
        Ok(answer) => answer,
        Err(e) => {
            let _ = remove_release(env_root, &spec.release_name);
            exit_with(bridge_exit(&e), &e.message)
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

    const FIXTURE: &str = "pressluft-fixture/pressluft-fixture.php";

    fn offer(id: &str, from: &str, to: &str) -> spec::AvailableUpdate {
        spec::AvailableUpdate {
            name: id.into(),
            id: id.into(),
            current_version: from.into(),
            new_version: to.into(),
        }
    }

    fn version(kind: UpdateKind, id: &str, v: &str) -> UpdateVersion {
        UpdateVersion {
            kind,
            id: id.into(),
            version: v.into(),
        }
    }

    #[test]
    fn exact_versions_must_be_the_offered_ones() {
        let offered = AvailableUpdates {
            core: Some(offer("core", "6.4", "6.5")),
            plugins: vec![offer(FIXTURE, "1.0", "1.3")],
            themes: vec![offer("twentytwentythree", "1.0", "1.1")],
        };
        assert_eq!(
            check_offered(&offered, &[version(UpdateKind::Plugin, FIXTURE, "1.3")]),
            Ok(())
        );
        assert_eq!(
            check_offered(&offered, &[version(UpdateKind::Plugin, FIXTURE, "1.2")]),
            Err(format!(
                "plugin {FIXTURE}: 1.3 is offered now, 1.2 was tested"
            ))
        );
        assert_eq!(
            check_offered(
                &offered,
                &[
                    version(UpdateKind::Core, "wordpress", "6.5"),
                    version(UpdateKind::Theme, "twentytwentythree", "1.1"),
                ]
            ),
            Ok(())
        );
        assert_eq!(
            check_offered(&offered, &[version(UpdateKind::Theme, "other", "1.1")]),
            Err("theme other: no update is offered now, 1.1 was tested".into())
        );
        // A plugin id is not a theme's.
        assert!(check_offered(&offered, &[version(UpdateKind::Theme, FIXTURE, "1.3")]).is_err());
        let none = AvailableUpdates::default();
        assert_eq!(
            check_offered(&none, &[version(UpdateKind::Core, "core", "6.5")]),
            Err("core core: no update is offered now, 6.5 was tested".into())
        );
    }

    #[test]
    fn a_versions_list_is_checked_before_anything() {
        let ok = [
            version(UpdateKind::Plugin, FIXTURE, "1.1"),
            version(UpdateKind::Core, "core", "6.5.2-RC1+build"),
        ];
        assert!(check_versions_form("all", &ok).is_ok());
        assert!(check_versions_form("all", &[]).is_ok());
        for (scope, bad, needle) in [
            (
                "plugins",
                version(UpdateKind::Theme, "t", "1"),
                "outside the scope",
            ),
            (
                "all",
                version(UpdateKind::Plugin, "", "1"),
                "versions[0].id",
            ),
            (
                "all",
                version(UpdateKind::Plugin, "a\nb", "1"),
                "versions[0].id",
            ),
            (
                "all",
                version(UpdateKind::Plugin, &"a".repeat(201), "1"),
                "versions[0].id",
            ),
            (
                "all",
                version(UpdateKind::Plugin, "p/p.php", ""),
                "versions[0].version",
            ),
            (
                "all",
                version(UpdateKind::Plugin, "p/p.php", "1.0; rm"),
                "versions[0].version",
            ),
            (
                "all",
                version(UpdateKind::Plugin, "p/p.php", &"1".repeat(65)),
                "versions[0].version",
            ),
            (
                "all",
                version(UpdateKind::Core, "akismet", "6.5"),
                "versions[0].id",
            ),
        ] {
            let err = check_versions_form(scope, &[bad]).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
        let twice = [
            version(UpdateKind::Plugin, FIXTURE, "1.1"),
            version(UpdateKind::Plugin, FIXTURE, "1.2"),
        ];
        assert!(check_versions_form("all", &twice)
            .unwrap_err()
            .to_string()
            .contains("listed twice"));
        // The same id as a plugin and as a theme is two items.
        assert!(check_versions_form(
            "all",
            &[
                version(UpdateKind::Plugin, "x", "1"),
                version(UpdateKind::Theme, "x", "1")
            ]
        )
        .is_ok());
    }

    #[test]
    fn the_available_updates_become_versions() {
        let offered = AvailableUpdates {
            core: Some(offer("core", "6.4", "6.5")),
            plugins: vec![offer(FIXTURE, "1.0", "1.1")],
            themes: vec![],
        };
        let versions = UpdateVersion::from_available(&offered);
        assert_eq!(
            versions,
            vec![
                version(UpdateKind::Core, "core", "6.5"),
                version(UpdateKind::Plugin, FIXTURE, "1.1")
            ]
        );
        assert_eq!(check_offered(&offered, &versions), Ok(()));
        assert_eq!(
            serde_json::to_value(&versions[1]).unwrap(),
            serde_json::json!({"kind": "plugin", "id": FIXTURE, "version": "1.1"})
        );
    }
}
