//! `pressluft node restore-drill` (`restore_drill`, issue 14 item 4; docs/decisions.md
//! "Restore and promotion (issue 14): restore drills"): proves a backup restores, without
//! touching production. In one call, so the job ends only after the temporary environment is
//! gone:
//!
//! 1. **Check** (changes nothing; exit 3, `PRECONDITION_FAILED`): every name is the one the
//!    control plane derives from the ids (the delete's own check, [`delete::check_environment`])
//!    and the spec's parts name the same environment; the rendered files are there; the node
//!    has the PHP bridge and a supported system; no link where the environment's directories go.
//! 2. **Create** the temporary environment exactly as `env-clone` creates one
//!    ([`environment::create_base`], [`environment::install_files`]: user, directories,
//!    database and user, Redis ACL user, `wp-config.php`, pool, server block with its preview
//!    host), without copying any data; PHP-FPM and Nginx reloaded.
//! 3. **Restore** the backup into it with the one restore implementation
//!    ([`env_restore::restore`]: verified first — a corrupted backup fails the drill with its
//!    reason —, a release from the files artifact, the database rewritten to the temporary
//!    preview URL, uploads, made live; no pre-restore backup).
//! 4. **Health checks** (src/node_helper/health.rs, the three checks of every health gate)
//!    against the temporary environment.
//! 5. **Remove** the temporary environment — ALWAYS, also when 2–4 failed — with the code
//!    `env-delete` uses ([`delete::remove_all`]; no final backup).
//!
//! Output: one JSON line, [`DrillReport`] (`passed`, `reason`, each step's milliseconds, the
//! checks, what was removed); exit 0 whether the drill passed or not (the playbook fails the job
//! with `DRILL_FAILED` when it did not). Only a failed removal exits 1 (after printing the
//! report with `error`): the job is retried and the retry converges (every step is idempotent).

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context};
use serde::Serialize;

use super::process::millis_since;
use super::spec::{self, EnvDeleteSpec, RestoreDrillSpec, TABLE_PREFIX_PLACEHOLDER};
use super::{delete, env_restore, environment, files, health, services};

/// The table prefix the temporary environment's `wp-config.php` starts with; the restore
/// writes the backup's own when it differs.
const INITIAL_TABLE_PREFIX: &str = "wp_";

/// What each step took, in milliseconds (`None`: the step did not run).
#[derive(Debug, Default, Serialize)]
pub struct Timings {
    pub create_ms: Option<u64>,
    pub restore_ms: Option<u64>,
    pub health_ms: Option<u64>,
    pub remove_ms: Option<u64>,
    pub total_ms: u64,
}

/// What `restore-drill` prints.
#[derive(Debug, Default, Serialize)]
pub struct DrillReport {
    pub backup_id: String,
    pub environment_id: String,
    pub passed: bool,
    /// Why the drill failed (`None` when it passed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub timings: Timings,
    /// The health checks, when they ran.
    pub checks: Vec<health::Check>,
    /// Whether the temporary environment was removed (always, unless the removal failed).
    pub removed: bool,
    /// What the removal found and removed, for the job log.
    pub removed_items: Vec<String>,
    /// The removal's failure (the command then exits 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What the check established.
pub struct Checked {
    php_version: String,
}

/// `pressluft node restore-drill`.
pub fn run() -> anyhow::Result<()> {
    spec::run_command(check, |spec, checked: &Checked| Ok(apply(spec, checked)))
}

fn trimmed(path: &str) -> &str {
    path.trim_end_matches('/')
}

/// The spec's parts name one environment, under the derived names (see the module doc).
fn check_names(spec: &RestoreDrillSpec) -> anyhow::Result<()> {
    let d = &spec.delete;
    delete::check_environment(&spec.site_id, d)?;
    if d.final_backup.is_some() || !d.domain_ids.is_empty() || !d.certificates.is_empty() {
        bail!("a drill's temporary environment has no final backup, domains or certificates");
    }
    let env = &spec.env;
    let r = &spec.restore;
    let h = &spec.health;
    let same = [
        (&env.environment_id, &d.environment_id),
        (&r.environment_id, &d.environment_id),
        (&h.environment_id, &d.environment_id),
        (&env.env_root, &d.env_root),
        (&r.go_live.env_root, &d.env_root),
        (&h.env_root, &d.env_root),
        (&env.env_user, &d.env_user),
        (&r.go_live.env_user, &d.env_user),
        (&h.env_user, &d.env_user),
        (&spec.db_name, &d.database),
        (&r.db_name, &d.database),
        (&spec.db_user, &d.db_user),
        (&env.redis_prefix, &d.redis_prefix),
        (&r.go_live.redis_prefix, &d.redis_prefix),
        (&env.release_name, &r.release_name),
        (&env.canonical_url, &r.canonical_url),
        (&h.canonical_url, &r.canonical_url),
    ];
    if let Some((a, b)) = same.iter().find(|(a, b)| a != b) {
        bail!("the spec's parts name different environments ({a:?} ≠ {b:?})");
    }
    if r.pre_backup.is_some() {
        bail!("a drill takes no pre-restore backup");
    }
    let expected = format!("{}/releases/{}", trimmed(&env.env_root), env.release_name);
    if env.release_path != expected || env.release_name.contains('/') {
        bail!(
            "release_path {} does not match the release name",
            env.release_path
        );
    }
    Ok(())
}

/// Read-only checks; returns the node's PHP version.
pub fn check(spec: &RestoreDrillSpec) -> anyhow::Result<Checked> {
    check_names(spec)?;
    let f = &spec.files;
    if [
        &f.wp_config,
        &f.pool,
        &f.database_sql,
        &f.vhost,
        &f.vhost_without_ipv6,
        &f.redis_acl,
    ]
    .iter()
    .any(|c| c.is_empty())
    {
        bail!("the playbook did not render every configuration file");
    }
    if f.wp_config.matches(TABLE_PREFIX_PLACEHOLDER).count() != 1 {
        bail!("the rendered wp-config.php must hold the table prefix placeholder exactly once");
    }
    let php_dir = &spec.node.php_dir;
    let required = [
        format!("{php_dir}/bridge.php"),
        format!("{php_dir}/pressluft-mu-plugin.php"),
        format!("{php_dir}/object-cache.php"),
        services::REDIS_ACL_APPLY.to_string(),
    ];
    let missing = files::missing(&required)?;
    if !missing.is_empty() {
        bail!(
            "missing on the node: {} (node_provision installs them: provision the node again)",
            missing.join(", ")
        );
    }
    let env_root = trimmed(&spec.env.env_root);
    for dir in [
        env_root.to_string(),
        format!("{env_root}/releases"),
        format!("{env_root}/shared"),
    ] {
        files::refuse_link(&dir)?;
    }
    Ok(Checked {
        php_version: services::php_version(&spec.node.supported_os)?,
    })
}

/// Steps 2–5 (see the module doc); never fails: a failed removal is `report.error`.
pub fn apply(spec: &RestoreDrillSpec, checked: &Checked) -> DrillReport {
    let started = Instant::now();
    let mut report = DrillReport {
        backup_id: spec.restore.backup.backup_id.clone(),
        environment_id: spec.env.environment_id.clone(),
        ..Default::default()
    };
    let outcome = drill(spec, checked, &mut report);
    report.passed = outcome.is_ok();
    report.reason = outcome.err();

    let removing = Instant::now();
    let removal = EnvDeleteSpec {
        contract_version: spec.contract_version,
        site_id: spec.site_id.clone(),
        remove_site_dir: false,
        environments: vec![clone_via_json(&spec.delete)],
        node: Default::default(),
    };
    let mut removed = delete::DeleteResult::default();
    match delete::remove_all(&removal, &checked.php_version, &mut removed) {
        Ok(()) => report.removed = true,
        Err(e) => report.error = Some(format!("removing the temporary environment: {e:#}")),
    }
    report.removed_items = removed.removed;
    report.timings.remove_ms = Some(millis_since(removing));
    report.timings.total_ms = millis_since(started);
    report
}

/// `value` through its JSON form (the spec's types are not `Clone`).
fn clone_via_json<T: Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
    serde_json::from_value(serde_json::to_value(value).expect("a spec serializes"))
        .expect("a spec deserializes")
}

/// Create, restore, check; `Err(reason)` at the first failure.
fn drill(
    spec: &RestoreDrillSpec,
    checked: &Checked,
    report: &mut DrillReport,
) -> Result<(), String> {
    let t = Instant::now();
    let created = create(spec, &checked.php_version);
    report.timings.create_ms = Some(millis_since(t));
    created.map_err(|e| format!("creating the temporary environment failed: {e:#}"))?;

    let t = Instant::now();
    let mut restore = clone_via_json(&spec.restore);
    restore.node = clone_via_json(&spec.node);
    let restored = super::backup::on_runtime(move |handle| env_restore::restore(&restore, handle));
    report.timings.restore_ms = Some(millis_since(t));
    match restored {
        Ok(Ok(_)) => {}
        Ok(Err(super::backup::BackupError::Mismatch(m))) => {
            return Err(format!("backup checksum mismatch: {m}"))
        }
        Ok(Err(e)) => return Err(format!("restore failed: {e}")),
        Err(e) => return Err(format!("restore failed: {e:#}")),
    }

    let t = Instant::now();
    let mut target = clone_via_json(&spec.health);
    target.php_dir = spec.node.php_dir.clone();
    let wp_root = health::check(&target).map_err(|e| format!("health check failed: {e:#}"))?;
    let checks = health::evaluate(&target, &wp_root);
    report.timings.health_ms = Some(millis_since(t));
    let failed: Vec<String> = checks
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| {
            format!(
                "{} ({})",
                c.name,
                c.detail.chars().take(160).collect::<String>()
            )
        })
        .collect();
    report.checks = checks.checks;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("health check failed: {}", failed.join("; ")))
    }
}

/// The temporary environment as `env-clone` creates one, without any data.
fn create(spec: &RestoreDrillSpec, php_version: &str) -> anyhow::Result<()> {
    environment::create_base(&spec.env, &spec.files)?;
    let wp_config = spec.files.wp_config.replacen(
        TABLE_PREFIX_PLACEHOLDER,
        &format!("'{INITIAL_TABLE_PREFIX}'"),
        1,
    );
    let vhost = if services::has_ipv6() {
        &spec.files.vhost
    } else {
        &spec.files.vhost_without_ipv6
    };
    environment::install_files(
        &spec.env,
        &spec.node,
        &spec.files,
        &wp_config,
        vhost,
        php_version,
    )?;
    services::reload(php_version).context("reloading PHP-FPM and Nginx")?;
    if !Path::new(&format!("{}/shared", trimmed(&spec.env.env_root))).is_dir() {
        bail!("the environment's shared directory was not created");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_says_why_and_what_was_removed() {
        let report = DrillReport {
            backup_id: "b".into(),
            passed: false,
            reason: Some("backup checksum mismatch: db.sql.zst".into()),
            removed: true,
            ..Default::default()
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["passed"], false);
        assert_eq!(json["removed"], true);
        assert_eq!(json["reason"], "backup checksum mismatch: db.sql.zst");
        assert!(json.get("error").is_none());
    }
}
