//! The cache controls of an environment (api.md Environments, domains-and-tls.md §6): turning
//! the FastCGI page cache and the Redis object cache on or off (`env_cache_toggle`) and purging
//! both (`cache_purge`). Part of the deploy service because they share its "env ok" rule and
//! its way of accepting a job; what runs on the node is `node_helper/cache.rs`.
//!
//! The flags are intent (data-model.md: "DB is truth; jobs converge"): a toggle writes them in
//! the transaction that enqueues its job, so the dashboard shows the new state at once and
//! the job, which reads them when it runs, converges the node to the latest.

use super::Deploys;
use crate::domain::JobType;
use crate::jobs::{CachePurgePayload, EnvCacheTogglePayload};
use crate::services::{JobRequest, ServiceError};
use crate::sites::Actor;
use crate::store::environments::set_cache_flags;

/// A cache toggle (`PATCH /api/environments/{id}/cache`): the flags to change; at least one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheFlags {
    pub fastcgi_cache_enabled: Option<bool>,
    pub redis_cache_enabled: Option<bool>,
}

/// The message of a toggle that changes nothing.
pub const NO_FLAG: &str =
    "at least one of fastcgi_cache_enabled and redis_cache_enabled (a boolean) is required";

impl CacheFlags {
    /// Whether no flag is given.
    pub fn is_empty(&self) -> bool {
        self.fastcgi_cache_enabled.is_none() && self.redis_cache_enabled.is_none()
    }

    /// The flags after the request: the given ones over `current` (fastcgi, redis).
    pub fn over(&self, current: (bool, bool)) -> (bool, bool) {
        (
            self.fastcgi_cache_enabled.unwrap_or(current.0),
            self.redis_cache_enabled.unwrap_or(current.1),
        )
    }
}

impl Deploys {
    /// `PATCH /api/environments/{id}/cache`: at least one flag (400 naming
    /// `fastcgi_cache_enabled` otherwise), "env ok", then the flags written and
    /// `env_cache_toggle` enqueued in one transaction.
    pub async fn set_cache(
        &self,
        actor: &Actor,
        environment_id: &str,
        flags: CacheFlags,
    ) -> Result<String, ServiceError> {
        if flags.is_empty() {
            return Err(ServiceError::invalid("fastcgi_cache_enabled", NO_FLAG));
        }
        let m = self.mutations.begin().await?;
        let (mut m, env) = self
            .env_ok(m, actor, JobType::EnvCacheToggle, environment_id)
            .await?;
        let (fastcgi, redis) = flags.over((env.fastcgi_cache_enabled, env.redis_cache_enabled));
        set_cache_flags(&mut m.tx, &env.id, fastcgi, redis, &m.now).await?;
        let job = JobRequest {
            job_type: JobType::EnvCacheToggle,
            site_id: Some(&env.site_id),
            environment_id: Some(&env.id),
            node_id: &env.node_id,
            payload: EnvCacheTogglePayload {
                fastcgi_cache_enabled: fastcgi,
                redis_cache_enabled: redis,
                ..Default::default()
            },
        };
        let audit = actor.audit(JobType::EnvCacheToggle, ("environment", &env.id));
        let job_id = self.mutations.accept(m, job, Some(audit)).await?;
        tracing::info!(environment = %env.id, fastcgi, redis, job = %job_id, "cache toggle accepted");
        Ok(job_id)
    }

    /// `POST /api/environments/{id}/cache/purge`: "env ok", then `cache_purge` of both caches.
    pub async fn purge_cache(
        &self,
        actor: &Actor,
        environment_id: &str,
    ) -> Result<String, ServiceError> {
        let m = self.mutations.begin().await?;
        let (m, env) = self
            .env_ok(m, actor, JobType::CachePurge, environment_id)
            .await?;
        let job = JobRequest {
            job_type: JobType::CachePurge,
            site_id: Some(&env.site_id),
            environment_id: Some(&env.id),
            node_id: &env.node_id,
            payload: CachePurgePayload::default(),
        };
        let audit = actor.audit(JobType::CachePurge, ("environment", &env.id));
        let job_id = self.mutations.accept(m, job, Some(audit)).await?;
        tracing::info!(environment = %env.id, job = %job_id, "cache purge accepted");
        Ok(job_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_requested_flags_go_over_the_current_ones() {
        let only_fastcgi = CacheFlags {
            fastcgi_cache_enabled: Some(false),
            redis_cache_enabled: None,
        };
        assert_eq!(only_fastcgi.over((true, true)), (false, true));
        assert_eq!(only_fastcgi.over((true, false)), (false, false));
        let both = CacheFlags {
            fastcgi_cache_enabled: Some(true),
            redis_cache_enabled: Some(false),
        };
        assert_eq!(both.over((false, true)), (true, false));
        assert!(CacheFlags::default().is_empty());
        assert!(!both.is_empty());
    }
}
