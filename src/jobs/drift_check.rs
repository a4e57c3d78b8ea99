//! `drift_check`: has production changed since a non-production environment was cloned?
//! (jobs.md §11, backups-restore-promotion.md §3). `drift-check.yml` runs
//! `pressluft node drift-check` (src/node_helper/drift.rs) on production's node: the row counts
//! and `CHECKSUM TABLE` values of the source environment's preset's protected tables in
//! PRODUCTION's database and the listing digest of its protected paths in production's current
//! release. On success the control plane compares them with the environment's clone-time
//! baseline ([`crate::domain::drift::differences`]), inserts the immutable `drift_checks` row
//! (`is_baseline = 0`, `clean` or `drifted`) and sets the environment's `drift_status`,
//! `drift_checked_at` and `last_drift_check_id`. No site or environment status changes
//! (state-machines.md), so a failed or cancelled check leaves everything as it was.
//!
//! The job belongs to the source environment (its `environment_id`); its node is production's.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::AnyConnection;
use uuid::Uuid;

use super::kinds::{ResolvedVars, VarsContext, VarsError};
use super::lifecycle::{node_must_be_active, node_spec_vars, site_and_environment};
use super::payload::{self, Attempts};
use crate::domain::drift::{differences, status_of, Checksums};
use crate::domain::{EnvironmentType, PromotionPreset, SiteStatus};
use crate::node_helper::spec::{DriftCheckSpec, CONTRACT_VERSION};
use crate::sites::layout::EnvLayout;
use crate::store::drift::{
    fetch_baseline, fetch_drift_check, insert_drift_check, set_environment_drift, DriftCheckRecord,
    NewDriftCheck,
};
use crate::store::environments::fetch_environment;
use crate::store::{JobRecord, StoreError};

super::kinds::job_kind!(
    DriftCheck,
    "drift-check.yml",
    [validate_start, on_success, extra_vars]
);

/// The payload of `drift_check` (jobs.md §11), built by the deploy service.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DriftCheckPayload {
    /// The site's production environment, whose data is checked.
    pub production_environment_id: String,
    /// The source environment's clone-time baseline compared against.
    pub baseline_drift_check_id: String,
    /// The source environment's preset when the check was requested (decision: fixed at
    /// enqueue, so a preset changed while the job runs cannot mix two presets' tables).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub promotion_preset: Option<PromotionPreset>,
    #[serde(flatten)]
    pub attempts: Attempts,
}

/// The preset a check compares: the payload's, else the environment's current one.
fn preset(p: &DriftCheckPayload, env_preset: &str) -> PromotionPreset {
    p.promotion_preset
        .or_else(|| env_preset.parse().ok())
        .unwrap_or(PromotionPreset::ContentProtect)
}

async fn baseline(
    conn: &mut AnyConnection,
    p: &DriftCheckPayload,
    environment_id: &str,
) -> Result<Option<DriftCheckRecord>, StoreError> {
    match fetch_drift_check(conn, &p.baseline_drift_check_id).await? {
        Some(b) if b.environment_id == environment_id && b.is_baseline => Ok(Some(b)),
        _ => fetch_baseline(conn, environment_id).await,
    }
}

async fn validate_start(
    conn: &mut AnyConnection,
    job: &JobRecord,
) -> Result<Result<(), String>, StoreError> {
    let (_, env) = site_and_environment(conn, job).await?;
    if env.environment_type == EnvironmentType::Production.as_str() {
        return Ok(Err("production has no drift of its own".into()));
    }
    if env.status.is_deletion() {
        return Ok(Err(format!("the environment is {}", env.status)));
    }
    let p = payload::read::<DriftCheckPayload>(job);
    if baseline(conn, &p, &env.id).await?.is_none() {
        return Ok(Err("the environment has no drift baseline".into()));
    }
    match fetch_environment(conn, &p.production_environment_id).await? {
        Some(prod) if prod.site_id == env.site_id && prod.current_release_id.is_some() => {
            if prod.status != SiteStatus::Active && prod.status != SiteStatus::Deploying {
                return Ok(Err(format!("production is {}, not active", prod.status)));
            }
        }
        _ => {
            return Ok(Err(
                "the site's production environment has no release".into()
            ))
        }
    }
    node_must_be_active(conn, job).await
}

/// The drift of `current` (what the node reported: table prefix and checksums) against the
/// baseline, for `preset`.
pub(crate) fn compare(
    baseline: &Checksums,
    current: &Checksums,
    table_prefix: &str,
    preset: PromotionPreset,
) -> (Checksums, Vec<crate::domain::drift::Difference>) {
    let current = current.for_preset(preset, table_prefix);
    let baseline = baseline.for_preset(preset, table_prefix);
    let diffs = differences(&baseline, &current);
    (current, diffs)
}

async fn on_success(
    conn: &mut AnyConnection,
    job: &JobRecord,
    result: &Value,
    now: &str,
) -> Result<(), StoreError> {
    let (_, env) = site_and_environment(conn, job).await?;
    let p = payload::read::<DriftCheckPayload>(job);
    let preset = preset(&p, &env.promotion_preset);
    let prefix = result["table_prefix"].as_str().unwrap_or_default();
    // An unreadable report or baseline compares as empty: everything differs, so the
    // environment shows `drifted` (blocking promotion) rather than a false `clean`.
    let current: Checksums = serde_json::from_value(result.clone()).unwrap_or_else(|e| {
        tracing::error!(id = %job.id, error = %e, "unreadable drift report");
        Checksums::default()
    });
    let base = match baseline(conn, &p, &env.id).await? {
        Some(b) => b.checksums().unwrap_or_else(|e| {
            tracing::error!(id = %job.id, error = %e, "unreadable drift baseline");
            Checksums::default()
        }),
        None => Checksums::default(),
    };
    let (current, diffs) = compare(&base, &current, prefix, preset);
    let status = status_of(&diffs);
    let check_id = Uuid::new_v4().to_string();
    insert_drift_check(
        conn,
        &NewDriftCheck {
            id: &check_id,
            environment_id: &env.id,
            promotion_preset: preset.as_str(),
            status,
            db_checksums_json: &current.tables_json(),
            file_checksums_json: &current.paths_json(),
            is_baseline: false,
        },
        now,
    )
    .await?;
    set_environment_drift(conn, &env.id, status, &check_id, now).await?;
    let names: Vec<&str> = diffs.iter().map(|d| d.name.as_str()).collect();
    tracing::info!(environment = %env.id, drift_check = %check_id, %status, differences = ?names, "drift check recorded");
    Ok(())
}

/// Variables of `drift-check.yml` (docs/node-helper.md): `node_spec` ([`DriftCheckSpec`] of
/// production; the playbook adds `php_dir`), `environment_id` (production's, checked against
/// the spec). No secrets: the helper reaches the database as root over the unix socket.
async fn extra_vars(cx: &VarsContext<'_>, job: &JobRecord) -> Result<ResolvedVars, VarsError> {
    let mut conn = cx.store.pool().acquire().await.map_err(StoreError::from)?;
    let (site, env) = site_and_environment(&mut conn, job).await?;
    let p = payload::read::<DriftCheckPayload>(job);
    let prod = fetch_environment(&mut conn, &p.production_environment_id)
        .await?
        .ok_or(VarsError::Missing("the production environment"))?;
    let preset = preset(&p, &env.promotion_preset);
    let layout = EnvLayout::new(&site.id, &prod.id);
    let spec = DriftCheckSpec {
        contract_version: CONTRACT_VERSION,
        environment_id: prod.id.clone(),
        env_root: layout.env_root,
        env_user: layout.env_user,
        db_name: layout.db_name,
        tables: preset
            .protected_tables()
            .iter()
            .map(|t| t.to_string())
            .collect(),
        paths: preset
            .protected_paths()
            .iter()
            .map(|t| t.to_string())
            .collect(),
        php_dir: String::new(),
    };
    node_spec_vars(&prod.id, &spec, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::drift::TableChecksum;
    use crate::jobs::payload::to_json;

    #[test]
    fn the_payload_has_the_specified_fields() {
        let json: Value = serde_json::from_str(&to_json(&DriftCheckPayload {
            production_environment_id: "p".into(),
            baseline_drift_check_id: "b".into(),
            promotion_preset: Some(PromotionPreset::CommerceProtect),
            attempts: Attempts::default(),
        }))
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"production_environment_id": "p",
                "baseline_drift_check_id": "b", "promotion_preset": "commerce-protect"})
        );
    }

    #[test]
    fn the_comparison_covers_only_the_preset_against_the_union_baseline() {
        let t = |rows| {
            Some(TableChecksum {
                rows,
                checksum: format!("c{rows}"),
            })
        };
        // The clone-time baseline covers both presets' tables.
        let mut baseline = Checksums::default();
        for name in PromotionPreset::CommerceProtect.protected_table_names("wp_") {
            baseline.tables.insert(name, t(1));
        }
        baseline
            .paths
            .insert("wp-content/uploads".into(), "sha256:0".into());
        // Production now: an order more; content-protect does not look at orders.
        let mut now = baseline.clone();
        now.tables.insert("wp_wc_orders".into(), t(2));
        let (stored, diffs) = compare(&baseline, &now, "wp_", PromotionPreset::ContentProtect);
        assert!(diffs.is_empty(), "{diffs:?}");
        assert_eq!(stored.tables.len(), 7);
        let (stored, diffs) = compare(&baseline, &now, "wp_", PromotionPreset::CommerceProtect);
        assert_eq!(stored.tables.len(), 18);
        assert_eq!(diffs.len(), 1);
        assert_eq!(diffs[0].name, "wp_wc_orders");
        assert_eq!(diffs[0].rows(), (Some(1), Some(2)));
        // A node report without a table (content-protect only checked its 7) never makes
        // the commerce tables "absent now".
        let mut partial = Checksums::default();
        for name in PromotionPreset::ContentProtect.protected_table_names("wp_") {
            partial.tables.insert(name, t(1));
        }
        partial
            .paths
            .insert("wp-content/uploads".into(), "sha256:1".into());
        let (_, diffs) = compare(&baseline, &partial, "wp_", PromotionPreset::ContentProtect);
        assert_eq!(diffs.len(), 1);
        assert_eq!(diffs[0].name, "wp-content/uploads");
    }
}
