//! List filters and paging shared by the API and the dashboard (`JobsQuery`, `AuditQuery`):
//! validated here once, so a filter means the same on `/api/jobs` and on `/jobs`.

use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use super::extract::parse_uuid;
use crate::domain::{JobStatus, JobType};
use crate::store::{JobFilter, Store};

/// Filters and paging of `GET /api/jobs`. Lists are newest first; to get the next page pass
/// the last job's id as `before`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JobsQuery {
    #[param(schema_with = crate::http::schema::query_job_status)]
    pub status: Option<String>,
    #[param(schema_with = crate::http::schema::query_job_type)]
    pub job_type: Option<String>,
    #[param(schema_with = crate::http::schema::query_uuid)]
    pub site_id: Option<String>,
    #[param(schema_with = crate::http::schema::query_uuid)]
    pub environment_id: Option<String>,
    #[param(schema_with = crate::http::schema::query_uuid)]
    pub node_id: Option<String>,
    #[param(schema_with = crate::http::schema::query_uuid)]
    pub parent_job_id: Option<String>,
    #[param(schema_with = crate::http::schema::query_limit)]
    pub limit: Option<String>,
    /// Only jobs older than the job with this id (cursor of the next page); an id no job has
    /// is `404 not_found` naming `before`.
    #[param(schema_with = crate::http::schema::query_uuid)]
    pub before: Option<String>,
}

/// Default and maximum page size.
pub const DEFAULT_LIMIT: i64 = 100;
pub const MAX_LIMIT: i64 = 500;

impl JobsQuery {
    /// Validates every parameter, naming the first bad one.
    pub async fn into_filter(self, store: &Store) -> Result<JobFilter, ApiError> {
        fn id(name: &str, v: Option<String>) -> Result<Option<String>, ApiError> {
            v.filter(|s| !s.is_empty())
                .map(|s| parse_uuid(&s).ok_or_else(|| ApiError::field(name, "must be a UUID")))
                .transpose()
        }
        let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
        let status = nonempty(self.status)
            .map(|s| {
                s.parse::<JobStatus>()
                    .map_err(|e| ApiError::field("status", e.to_string()))
            })
            .transpose()?;
        let job_type = nonempty(self.job_type)
            .map(|s| {
                s.parse::<JobType>()
                    .map_err(|e| ApiError::field("job_type", e.to_string()))
            })
            .transpose()?;
        let limit = match nonempty(self.limit) {
            None => DEFAULT_LIMIT,
            Some(s) => parse_limit(&s)
                .ok_or_else(|| ApiError::field("limit", "must be an integer from 1 to 500"))?,
        };
        let before = match id("before", self.before)? {
            None => None,
            Some(job_id) => Some(store.job_position(&job_id).await?.ok_or_else(|| {
                ApiError::new(
                    super::error::ErrorCode::NotFound,
                    "before: no job has this id",
                )
                .with_details(serde_json::json!({ "fields": { "before": "no job has this id" } }))
            })?),
        };
        Ok(JobFilter {
            status,
            job_type,
            site_id: id("site_id", self.site_id)?,
            environment_id: id("environment_id", self.environment_id)?,
            node_id: id("node_id", self.node_id)?,
            parent_job_id: id("parent_job_id", self.parent_job_id)?,
            before,
            limit,
        })
    }
}

/// A page size as `api::schema::LIMIT_OR_EMPTY` states it: plain decimal digits without a
/// leading zero or sign, 1 to 500.
pub fn parse_limit(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 3 || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<i64>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
}

/// Resource types audit rows name.
pub const RESOURCE_TYPES: [&str; 7] = [
    "site",
    "environment",
    "node",
    "backup",
    "domain",
    "job",
    "settings",
];

/// Filters of the audit log.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    #[param(schema_with = crate::http::schema::query_audit_resource_type)]
    pub resource_type: Option<String>,
    /// The resource's id (or the settings group); empty = not set.
    pub resource_id: Option<String>,
    #[param(schema_with = crate::http::schema::query_limit)]
    pub limit: Option<String>,
}

impl AuditQuery {
    pub fn validate(self) -> Result<(Option<String>, Option<String>, i64), ApiError> {
        let resource_type = self.resource_type.filter(|s| !s.is_empty());
        if let Some(t) = &resource_type {
            if !RESOURCE_TYPES.contains(&t.as_str()) {
                return Err(ApiError::field(
                    "resource_type",
                    format!("must be one of: {}", RESOURCE_TYPES.join(", ")),
                ));
            }
        }
        let limit = match self.limit.filter(|s| !s.is_empty()) {
            None => 100,
            Some(s) => parse_limit(&s)
                .ok_or_else(|| ApiError::field("limit", "must be an integer from 1 to 500"))?,
        };
        Ok((
            resource_type,
            self.resource_id.filter(|s| !s.is_empty()),
            limit,
        ))
    }
}

#[cfg(test)]
mod tests {
    /// The filter's values are the documented enum's.
    #[test]
    fn resource_types_are_the_enum_values() {
        assert_eq!(
            super::RESOURCE_TYPES.as_slice(),
            crate::domain::AuditResourceType::VALUES
        );
    }
}
