//! Typed job payloads. Each implemented job type declares one payload struct in its module
//! (`NodeProvisionPayload`, `SiteCreatePayload`, `EnvCreatePayload`), built by the service that
//! enqueues it and read by the kind that runs it; this module holds the parts they share and the
//! one way to read and update a stored payload.
//!
//! The stored JSON keeps the keys of the rows written before the structs existed: fields written
//! after the enqueue (at the first start, at a retry) are `#[serde(default)]` and skipped while
//! unset, so an old row reads and a new row looks the same. Updates merge into the stored object,
//! keeping keys a struct does not name (the payload is also the base of the playbook's variables).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::AnyConnection;

use crate::store::queue::set_payload;
use crate::store::{JobRecord, StoreError};

/// The part of every payload the engine writes: whether an earlier attempt may have changed the
/// node (set once at a retry, never cleared; jobs.md §3, §8). Job types without a payload struct
/// of their own carry it too.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Attempts {
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub earlier_attempt_ran: bool,
}

/// The run-stable release name of a job that builds a release: `null` at the enqueue, fixed at
/// the first start so retries reuse it (jobs.md §3).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Release {
    pub release_name: Option<String>,
}

/// The JSON object of a payload (`{}` when it is not one).
fn object(payload_json: &str) -> Map<String, Value> {
    match serde_json::from_str(payload_json) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// The payload of `job` as `P`; a payload that does not fit reads as `P::default()` (logged),
/// as reading by key with defaults did.
pub fn read<P: DeserializeOwned + Default>(job: &JobRecord) -> P {
    parse(&job.id, &job.payload_json)
}

fn parse<P: DeserializeOwned + Default>(job_id: &str, payload_json: &str) -> P {
    serde_json::from_value(Value::Object(object(payload_json))).unwrap_or_else(|e| {
        tracing::warn!(job = job_id, error = %e, "job payload does not fit its type; using defaults");
        P::default()
    })
}

/// The payload `P` as the JSON stored in `jobs.payload_json`.
pub fn to_json<P: Serialize>(payload: &P) -> String {
    serde_json::to_string(payload).expect("payload structs serialize")
}

/// Applies `change` to the payload of `job` as `P` and stores the result when it differs (the
/// in-memory `job` follows). Keys `P` does not name are kept.
pub async fn update<P>(
    conn: &mut AnyConnection,
    job: &mut JobRecord,
    change: impl FnOnce(&mut P),
) -> Result<P, StoreError>
where
    P: Serialize + DeserializeOwned + Default + PartialEq + Clone,
{
    let before: P = read(job);
    let mut after = before.clone();
    change(&mut after);
    if after != before {
        let mut stored = object(&job.payload_json);
        if let Value::Object(fields) =
            serde_json::to_value(&after).expect("payload structs serialize")
        {
            stored.extend(fields);
        }
        job.payload_json = Value::Object(stored).to_string();
        set_payload(conn, &job.id, &job.payload_json).await?;
    }
    Ok(after)
}

/// Like [`update`], on the payload as stored now (it may hold fields fixed since `job` was
/// read), for a job the caller holds only by reference.
pub async fn update_stored<P>(
    conn: &mut AnyConnection,
    job: &JobRecord,
    change: impl FnOnce(&mut P),
) -> Result<(), StoreError>
where
    P: Serialize + DeserializeOwned + Default + PartialEq + Clone,
{
    let mut current = crate::store::queue::fetch_job(conn, &job.id)
        .await?
        .unwrap_or_else(|| job.clone());
    update(conn, &mut current, change).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_engine_fields_are_not_written() {
        assert_eq!(to_json(&Attempts::default()), "{}");
        assert_eq!(to_json(&Release::default()), r#"{"release_name":null}"#);
        let a: Attempts = parse("j", r#"{"earlier_attempt_ran": true, "other": 1}"#);
        assert!(a.earlier_attempt_ran);
        let a: Attempts = parse("j", "not json");
        assert!(!a.earlier_attempt_ran);
    }

    #[test]
    fn payloads_keep_the_keys_of_stored_rows() {
        use crate::jobs::{EnvCreatePayload, NodeProvisionPayload, SiteCreatePayload};
        assert_eq!(to_json(&NodeProvisionPayload::default()), "{}");
        let site: Value = serde_json::from_str(&to_json(&SiteCreatePayload {
            site_title: "Shop".into(),
            wp_admin_email: "a@b.test".into(),
            ..Default::default()
        }))
        .unwrap();
        assert_eq!(
            site,
            serde_json::json!({"site_title": "Shop", "wp_admin_email": "a@b.test", "release_name": null})
        );
        let env: Value = serde_json::from_str(&to_json(&EnvCreatePayload {
            source_environment_id: "e".into(),
            ..Default::default()
        }))
        .unwrap();
        assert_eq!(
            env,
            serde_json::json!({"source_environment_id": "e", "release_name": null})
        );
        let old: SiteCreatePayload = parse(
            "j",
            r#"{"site_title": "S", "release_name": "r", "earlier_attempt_ran": true}"#,
        );
        assert_eq!(old.release.release_name.as_deref(), Some("r"));
        assert!(old.attempts.earlier_attempt_ran);
        assert_eq!(old.wordpress_source, None);
    }
}
