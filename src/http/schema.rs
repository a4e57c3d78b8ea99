//! Schemas of input the OpenAPI document describes more precisely than a Rust type can: the
//! patterns, lengths and formats the server enforces. The server's checks follow these
//! constants (`parse_uuid`, `parse_limit`, `domain::parse_name`, `sites::is_slug`,
//! `nodes::is_dns_name`, …); `scripts/fuzz-api` generates valid and invalid requests from the
//! document and fails when the server refuses a valid one or accepts an invalid one.

use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::KnownFormat;

/// A UUID in its hyphenated form, either case (`PathId`, id filters).
pub const UUID: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// The same, or empty (a query parameter left empty means "not set").
pub const UUID_OR_EMPTY: &str =
    "^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$";

/// A page size from 1 to 500 in plain decimal, or empty (the default, 100).
pub const LIMIT_OR_EMPTY: &str = "^([1-9][0-9]?|[1-4][0-9]{2}|500)?$";

/// The slug pattern (api.md, sites).
pub const SLUG: &str = "^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$";

/// A display name: 1–100 characters, no control characters, not only whitespace. The class
/// lists Unicode's White_Space characters outside the control range, which is what Rust's
/// `str::trim` removes.
pub const NAME: &str = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$";
pub const NAME_MAX: usize = 100;

/// A DNS name (labels of letters, digits and inner hyphens, 1–63 each).
pub const DNS_NAME: &str =
    "^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$";
pub const DNS_NAME_MAX: usize = 253;

/// The SSH user pattern.
pub const SSH_USER: &str = "^[a-z_][a-z0-9_-]{0,31}$";

fn string(pattern: &str, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(pattern))
        .description(Some(description))
}

/// An id filter in a query (empty = not set).
pub fn query_uuid() -> Schema {
    string(UUID_OR_EMPTY, "UUID; empty = not set").into()
}

/// `limit` in a query.
pub fn query_limit() -> Schema {
    string(LIMIT_OR_EMPTY, "1–500, default 100; empty = default").into()
}

/// An enum filter in a query: one of `values`, or empty (not set).
pub fn query_enum(values: &[&str], description: &str) -> Schema {
    let mut all = vec![""];
    all.extend_from_slice(values);
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(all))
        .description(Some(description))
        .into()
}

/// `status` filter of `GET /api/jobs`.
pub fn query_job_status() -> Schema {
    query_enum(
        crate::domain::JobStatus::VALUES,
        "A job status; empty = not set",
    )
}

/// `job_type` filter of `GET /api/jobs`.
pub fn query_job_type() -> Schema {
    query_enum(
        crate::domain::JobType::VALUES,
        "A job type of the registry; empty = not set",
    )
}

/// `resource_type` filter of `GET /api/audit-logs`.
pub fn query_audit_resource_type() -> Schema {
    query_enum(
        crate::domain::AuditResourceType::VALUES,
        "A resource type; empty = not set",
    )
}

/// A name (site, environment, node).
pub fn name() -> Schema {
    string(
        NAME,
        "1–100 characters, no control characters, not only whitespace; stored trimmed",
    )
    .min_length(Some(1))
    .max_length(Some(NAME_MAX))
    .into()
}

/// A slug.
pub fn slug() -> Schema {
    string(
        SLUG,
        "1–40 lowercase letters, digits or inner hyphens; unique (per site for environments)",
    )
    .min_length(Some(1))
    .max_length(Some(40))
    .into()
}

/// A string holding an IP address of the given format.
fn ip_string(format: KnownFormat) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(format)))
}

/// A node's SSH target: an IP literal or a DNS name.
pub fn hostname() -> Schema {
    AnyOfBuilder::new()
        .item(ip_string(KnownFormat::Ipv4))
        .item(ip_string(KnownFormat::Ipv6))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(DNS_NAME))
                .max_length(Some(DNS_NAME_MAX)),
        )
        .description(Some(
            "IP address or DNS name the control plane connects to over SSH (stored lower-case)",
        ))
        .into()
}

/// A node's public IPv4, null or empty for none.
pub fn public_ip() -> Schema {
    AnyOfBuilder::new()
        .item(ip_string(KnownFormat::Ipv4))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(0)),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some("Public IPv4; null or empty = none"))
        .into()
}

/// An SSH port, null = 22.
pub fn ssh_port() -> Schema {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Integer,
            Type::Null,
        ]))
        .minimum(Some(1))
        .maximum(Some(65535))
        .description(Some("1–65535; null = 22"))
        .into()
}

/// A string or null, matching `pattern`.
fn nullable_string(pattern: &str, description: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .pattern(Some(pattern))
        .description(Some(description))
        .into()
}

/// An SSH user, null = `root`.
pub fn ssh_user() -> Schema {
    nullable_string(
        SSH_USER,
        "null = `root`; must be root or have passwordless sudo",
    )
}

/// `node_id` of `POST /api/sites`: a node's UUID, or null/empty for the placement rule.
pub fn node_id() -> Schema {
    nullable_string(
        UUID_OR_EMPTY,
        "Node to place the site on (UUID, active with a public IP); null or empty = the placement rule",
    )
}

/// `source_environment_id` of the create-environment body.
pub fn source_environment_id() -> Schema {
    nullable_string(
        UUID_OR_EMPTY,
        "Environment of this site to copy (UUID); null or empty = the production environment",
    )
}

/// A login e-mail: what `Email::parse` accepts, at most 254 characters.
pub fn login_email() -> Schema {
    string(LOGIN_EMAIL, "The admin's e-mail address (case-insensitive)")
        .max_length(Some(254))
        .into()
}

/// `local@domain` in printable ASCII, domain labels non-empty. `Email::parse` accepts more
/// (any non-space character); the document promises only what it surely accepts, and a login
/// with an address outside it answers 401 like any unknown address.
pub const LOGIN_EMAIL: &str = "^[!-?A-~]+@[!-\\-/-?A-~]+(\\.[!-\\-/-?A-~]+)*$";

/// A non-empty password.
pub fn password() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .description(Some("The password (at least 1 character)"))
        .into()
}

/// The `{id}` of a path: a UUID (malformed → 400, unknown → 404).
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct IdPath {
    /// The resource's id (UUID).
    #[param(
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    id: String,
}
