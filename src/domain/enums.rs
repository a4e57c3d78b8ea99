//! Enumerations of the data model with their stored string forms.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Declares a string-backed enum with `as_str`, `FromStr`, `Display`, `ALL` and its OpenAPI
/// schema. The schema is written here rather than derived: utoipa's derive does not see the
/// per-variant `serde(rename)` inside a macro and documented the Rust variant names instead of
/// the wire values; built from the same literals, the two cannot differ.
macro_rules! string_enum {
    ($(#[doc = $doc:literal])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The wire values, in declaration order.
            pub const VALUES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let doc: &[&str] = &[$($doc),*];
                let description = doc.iter().map(|l| l.trim()).collect::<Vec<_>>().join("\n");
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description((!description.is_empty()).then_some(description))
                    .enum_values(Some(Self::VALUES.iter().copied()))
                    .into()
            }
        }

        impl ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue { allowed: Self::VALUES }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl sqlx::Type<sqlx::Any> for $name {
            fn type_info() -> sqlx::any::AnyTypeInfo {
                <&str as sqlx::Type<sqlx::Any>>::type_info()
            }
            fn compatible(ty: &sqlx::any::AnyTypeInfo) -> bool {
                <&str as sqlx::Type<sqlx::Any>>::compatible(ty)
            }
        }

        impl<'r> sqlx::Decode<'r, sqlx::Any> for $name {
            fn decode(
                value: sqlx::any::AnyValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&str as sqlx::Decode<sqlx::Any>>::decode(value)?;
                text.parse().map_err(|e: UnknownValue| {
                    format!("{text:?} is not a {}: {e}", stringify!($name)).into()
                })
            }
        }

        impl<'q> sqlx::Encode<'q, sqlx::Any> for $name {
            fn encode_by_ref(
                &self,
                buf: &mut <sqlx::Any as sqlx::Database>::ArgumentBuffer<'q>,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&str as sqlx::Encode<sqlx::Any>>::encode(self.as_str(), buf)
            }
        }
    };
}

/// A string that is not one of an enum's values.
#[derive(Debug, Clone, thiserror::Error)]
#[error("must be one of: {}", allowed.join(", "))]
pub struct UnknownValue {
    pub allowed: &'static [&'static str],
}

string_enum!(
    /// Lifecycle state of a job (state-machines.md).
    JobStatus {
        Queued => "queued",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

impl JobStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Succeeded | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

string_enum!(
    /// The job type registry (jobs.md §11): one playbook per type.
    JobType {
        NodeProvision => "node_provision",
        SiteCreate => "site_create",
        SiteImport => "site_import",
        EnvCreate => "env_create",
        EnvDeploy => "env_deploy",
        EnvUpdate => "env_update",
        EnvRestore => "env_restore",
        EnvPromote => "env_promote",
        EnvCacheToggle => "env_cache_toggle",
        CachePurge => "cache_purge",
        BackupCreate => "backup_create",
        DomainAdd => "domain_add",
        DomainRemove => "domain_remove",
        DriftCheck => "drift_check",
        HealthCheck => "health_check",
        BackupCleanup => "backup_cleanup",
        ReleaseRollback => "release_rollback",
        BackupVerify => "backup_verify",
        EnvDelete => "env_delete",
        SiteDelete => "site_delete",
        RestoreDrill => "restore_drill",
        SafeUpdate => "safe_update",
    }
);

string_enum!(
    /// TLS state of a custom domain (`domains.tls_status`; domains-and-tls.md §3).
    TlsStatus {
        Pending => "pending",
        Active => "active",
        Failed => "failed",
        Disabled => "disabled",
    }
);

string_enum!(
    /// How often a site's restore drill runs by itself (issue 14; `sites.drill_schedule`).
    DrillSchedule {
        Off => "off",
        Weekly => "weekly",
        Monthly => "monthly",
    }
);

string_enum!(
    /// Outcome of a restore drill (issue 14; `restore_drills.status`).
    DrillStatus {
        Running => "running",
        Passed => "passed",
        Failed => "failed",
    }
);

string_enum!(
    /// How often a site's safe-update run starts by itself (issue 16;
    /// `sites.safe_updates_schedule`), inside the site's window.
    SafeUpdateSchedule {
        Off => "off",
        Daily => "daily",
        Weekly => "weekly",
    }
);

string_enum!(
    /// What started a safe-update run (issue 16).
    SafeUpdateTrigger {
        Manual => "manual",
        Schedule => "schedule",
    }
);

string_enum!(
    /// Outcome of a safe-update run (issue 16; `safe_update_runs.outcome`): `running` while its
    /// job runs; `no_updates`; `applied` (every page passed: the same versions enqueued on
    /// production); `held` (waits for a person) then `approved` or `dismissed`; `failed`.
    SafeUpdateOutcome {
        Running => "running",
        NoUpdates => "no_updates",
        Applied => "applied",
        Held => "held",
        Approved => "approved",
        Dismissed => "dismissed",
        Failed => "failed",
    }
);

string_enum!(
    /// State of a managed node.
    NodeStatus {
        Active => "active",
        Provisioning => "provisioning",
        Unreachable => "unreachable",
        Decommissioned => "decommissioned",
    }
);

string_enum!(
    /// State of a site or an environment (both share one set). `deleting` while its delete
    /// job is queued or running, `deleted` after it (the row is kept as history).
    SiteStatus {
        Active => "active",
        Cloning => "cloning",
        Deploying => "deploying",
        Restoring => "restoring",
        Failed => "failed",
        Deleting => "deleting",
        Deleted => "deleted",
    }
);

impl SiteStatus {
    /// `deleting` or `deleted`: nothing but its delete job changes such a site or environment.
    pub fn is_deletion(self) -> bool {
        matches!(self, SiteStatus::Deleting | SiteStatus::Deleted)
    }
}

string_enum!(
    /// What an environment is for; `staging` and `clone` behave the same (a label).
    EnvironmentType {
        Production => "production",
        Staging => "staging",
        Clone => "clone",
    }
);

string_enum!(
    /// Which production data a promotion never overwrites (backups-restore-promotion.md §4).
    PromotionPreset {
        ContentProtect => "content-protect",
        CommerceProtect => "commerce-protect",
    }
);

string_enum!(
    /// What a backup holds (backups-restore-promotion.md §1).
    BackupScope {
        Db => "db",
        Files => "files",
        Full => "full",
    }
);

impl BackupScope {
    pub fn has_db(self) -> bool {
        matches!(self, BackupScope::Db | BackupScope::Full)
    }
    pub fn has_files(self) -> bool {
        matches!(self, BackupScope::Files | BackupScope::Full)
    }
}

string_enum!(
    /// Lifecycle state of a backup (state-machines.md).
    BackupStatus {
        Pending => "pending",
        Running => "running",
        Completed => "completed",
        Failed => "failed",
        Expired => "expired",
    }
);

string_enum!(
    /// Where a backup's artifacts are kept, fixed at creation: an S3-compatible bucket
    /// (off-site) or a directory on the environment's node (not off-site).
    BackupStorageType {
        S3 => "s3",
        Local => "local",
    }
);

string_enum!(
    /// What the last Verify of a backup found.
    VerifyStatus {
        Ok => "ok",
        Mismatch => "mismatch",
    }
);

string_enum!(
    /// Role of a user; the MVP has admins only.
    UserRole {
        Admin => "admin",
    }
);

string_enum!(
    /// Whether an environment differs from its baseline.
    DriftStatus {
        Unknown => "unknown",
        Clean => "clean",
        Drifted => "drifted",
    }
);

string_enum!(
    /// Health of a release after its health check.
    HealthStatus {
        Unknown => "unknown",
        Healthy => "healthy",
        Unhealthy => "unhealthy",
    }
);

string_enum!(
    /// Where a release's code came from.
    ReleaseSourceType {
        Git => "git",
        Upload => "upload",
    }
);

string_enum!(
    /// What an update applies (backups-restore-promotion.md §7).
    UpdateScope {
        Core => "core",
        Plugins => "plugins",
        Themes => "themes",
        All => "all",
    }
);

string_enum!(
    /// What the last successful provisioning found about the firewall: `active`, `unavailable`
    /// (the kernel refused it) or `skipped` (`PRESSLUFT_MANAGE_FIREWALL=false`).
    FirewallStatus {
        Active => "active",
        Unavailable => "unavailable",
        Skipped => "skipped",
    }
);

string_enum!(
    /// Outcome recorded in an audit row.
    AuditResult {
        Accepted => "accepted",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
        Rejected => "rejected",
    }
);

string_enum!(
    /// Kind of resource an audit row names.
    AuditResourceType {
        Site => "site",
        Environment => "environment",
        Node => "node",
        Backup => "backup",
        Domain => "domain",
        Job => "job",
        Settings => "settings",
    }
);

string_enum!(
    /// Kind of resource a `resource` event describes.
    ResourceType {
        Site => "site",
        Environment => "environment",
        Node => "node",
        Backup => "backup",
        Domain => "domain",
        Release => "release",
    }
);

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::PartialSchema;

    #[test]
    fn round_trips_every_value() {
        for s in JobStatus::ALL {
            assert_eq!(s.as_str().parse::<JobStatus>().unwrap(), *s);
            assert_eq!(
                serde_json::to_string(s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        for t in JobType::ALL {
            assert_eq!(t.as_str().parse::<JobType>().unwrap(), *t);
        }
        assert_eq!(JobType::ALL.len(), 22);
    }

    /// The OpenAPI schema of every enum lists exactly its wire values (the review found
    /// `NodeProvision` documented while `node_provision` was sent).
    #[test]
    fn schemas_list_the_wire_values() {
        fn check<T: utoipa::PartialSchema + Serialize + 'static>(all: &[T]) {
            let schema = serde_json::to_value(T::schema()).unwrap();
            let wire: Vec<serde_json::Value> = all
                .iter()
                .map(|v| serde_json::to_value(v).unwrap())
                .collect();
            assert_eq!(schema["enum"], serde_json::Value::Array(wire), "{schema}");
            assert_eq!(schema["type"], "string");
        }
        check(JobStatus::ALL);
        check(JobType::ALL);
        check(NodeStatus::ALL);
        check(SiteStatus::ALL);
        check(EnvironmentType::ALL);
        check(PromotionPreset::ALL);
        check(UserRole::ALL);
        check(DriftStatus::ALL);
        check(HealthStatus::ALL);
        check(ReleaseSourceType::ALL);
        check(UpdateScope::ALL);
        check(FirewallStatus::ALL);
        check(AuditResult::ALL);
        check(AuditResourceType::ALL);
        check(ResourceType::ALL);
        let job_type = serde_json::to_value(JobType::schema()).unwrap();
        assert_eq!(job_type["enum"][0], "node_provision");
    }

    /// Stored values decode into the enums at the row boundary; an unknown one is a decode
    /// error naming the value and the enum, not a panic.
    #[tokio::test]
    async fn stored_values_decode_and_unknown_ones_are_errors() {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect("sqlite::memory:").await.unwrap();
        let (ok,): (JobStatus,) = crate::store::query_as("SELECT 'running'")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(ok, JobStatus::Running);
        let (back,): (String,) = crate::store::query_as("SELECT ?")
            .bind(SiteStatus::Deploying)
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(back, "deploying");
        let err = crate::store::query_as::<(JobStatus,)>("SELECT 'done'")
            .fetch_one(&pool)
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("\"done\" is not a JobStatus"),
            "{err}"
        );
    }

    #[test]
    fn unknown_values_list_the_allowed_ones() {
        let err = "done".parse::<JobStatus>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "must be one of: queued, running, succeeded, failed, cancelled"
        );
    }
}
