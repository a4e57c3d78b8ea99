//! Enumerations of the data model with their stored string forms.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Declares a string-backed enum with `as_str`, `FromStr`, `Display` and `ALL`.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue { allowed: &[$($text),+] }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
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
    /// State of a site or an environment (both share one set).
    SiteStatus {
        Active => "active",
        Cloning => "cloning",
        Deploying => "deploying",
        Restoring => "restoring",
        Failed => "failed",
    }
);

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
    /// Role of a user; the MVP has admins only.
    UserRole {
        Admin => "admin",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(JobType::ALL.len(), 17);
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
