//! What the node helper's environment commands read on stdin, defined once: the control plane
//! builds and serializes these structs (the job kinds' `extra_vars`, one variable in the vars
//! file), the playbook passes them through to the helper with the files it rendered from the
//! roles' templates added, and the helper deserializes the same types.
//!
//! Versioned: every spec carries [`CONTRACT_VERSION`]. A helper that gets a version it does not
//! know refuses before anything changes (exit 3, `PRECONDITION_FAILED`): the node runs a helper
//! older (or newer) than the control plane and must be provisioned again. Bump the version
//! whenever a field is added, removed or changes meaning.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The version of the stdin contract this build speaks.
pub const CONTRACT_VERSION: u32 = 1;

/// Exit code of a failed precondition (nothing changed; the playbook reports
/// `PRECONDITION_FAILED`). Other failures exit with 1.
pub const PRECONDITION_EXIT: i32 = 3;

/// The refusal of a spec whose version this helper does not know.
pub fn version_refusal(found: Option<u64>) -> String {
    format!(
        "the node helper is older than the control plane: provision the node again \
         (it speaks contract version {CONTRACT_VERSION}, the job sent {})",
        found.map_or_else(|| "none".to_string(), |v| v.to_string())
    )
}

/// Reads the spec from `input`: the version first (so a spec from a newer control plane is
/// refused with the clear message, whatever its fields), then the whole struct. `Err` holds
/// the message for a precondition failure.
pub fn parse<T: serde::de::DeserializeOwned>(input: &str) -> Result<T, String> {
    let value: serde_json::Value =
        serde_json::from_str(input).map_err(|e| format!("invalid job variables: {e}"))?;
    let version = value.get("contract_version").and_then(|v| v.as_u64());
    if version != Some(u64::from(CONTRACT_VERSION)) {
        return Err(version_refusal(version));
    }
    serde_json::from_value(value).map_err(|e| format!("invalid job variables: {e}"))
}

/// Ends the command with a failed precondition: the message on stderr, exit
/// [`PRECONDITION_EXIT`] (nothing has changed).
pub fn refuse(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(PRECONDITION_EXIT);
}

/// An environment command: reads and parses the spec from stdin (a spec this helper cannot
/// take is refused with [`refuse`]), runs `check` (changes nothing; a failure is refused too),
/// then `apply`, and prints its output as JSON.
pub fn run_command<S, P, O>(
    check: impl FnOnce(&S) -> anyhow::Result<P>,
    apply: impl FnOnce(&S, &P) -> anyhow::Result<O>,
) -> anyhow::Result<()>
where
    S: serde::de::DeserializeOwned,
    O: Serialize,
{
    use anyhow::Context;
    use std::io::Read;
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the job variables from stdin")?;
    let spec: S = parse(&input).unwrap_or_else(|e| refuse(&e));
    let checked = check(&spec).unwrap_or_else(|e| refuse(&format!("{e:#}")));
    println!("{}", serde_json::to_string(&apply(&spec, &checked)?)?);
    Ok(())
}

/// What the playbook adds to every spec: the node facts it knows from node_provision and the
/// files it rendered from the roles' templates.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Files {
    /// `wp-config.php`; for `env-clone` with [`TABLE_PREFIX_PLACEHOLDER`] as the table prefix.
    pub wp_config: String,
    pub pool: String,
    /// The env-database role's SQL (database, user, password, grant).
    pub database_sql: String,
    /// The server block for a kernel with IPv6 (`listen [::]:80` too) and for one without.
    pub vhost: String,
    pub vhost_without_ipv6: String,
    /// The environment's Redis ACL user (the redis-acl-user role's fragment).
    pub redis_acl: String,
}

/// In `files.wp_config` of `env-clone`, the table prefix (known only on the node, read from
/// the source) is this placeholder, quoted as a PHP string; the helper puts the source's
/// prefix in its place.
pub const TABLE_PREFIX_PLACEHOLDER: &str = "'__PRESSLUFT_TABLE_PREFIX__'";

/// The environment an environment command creates (names derived by the control plane).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEnvironment {
    pub environment_id: String,
    pub env_root: String,
    pub env_user: String,
    pub release_name: String,
    /// `<env_root>/releases/<release_name>`.
    pub release_path: String,
    /// WordPress's `home` and `siteurl`.
    pub canonical_url: String,
    pub redis_cache_enabled: bool,
    pub redis_prefix: String,
}

/// `pressluft node site-create`: a new site's production environment with WordPress installed.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteCreateSpec {
    pub contract_version: u32,
    pub env: NewEnvironment,
    pub site_title: String,
    pub admin_email: String,
    /// `dir:/path` on the node or an `http(s)://` archive (credentials in it are secrets).
    pub wordpress_source: String,
    /// Hex SHA-256 of the archive, or empty (not checked).
    pub wordpress_source_sha256: String,
    /// Whether the source's host may resolve to a loopback address (link-local: never).
    pub allow_loopback_sources: bool,
    /// How many releases the environment keeps (the current and the previous one always).
    pub release_keep: usize,
    /// Added by the playbook (node facts and rendered files).
    #[serde(default)]
    pub node: NodeFacts,
    #[serde(default)]
    pub files: Files,
}

/// `pressluft node env-clone`: a new environment (staging or clone) copied from another one
/// of the same site.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvCloneSpec {
    pub contract_version: u32,
    pub env: NewEnvironment,
    pub db_name: String,
    pub db_user: String,
    pub source_env_root: String,
    pub source_env_user: String,
    pub source_db_name: String,
    pub source_release_path: String,
    pub source_canonical_url: String,
    pub production_env_root: String,
    pub production_db_name: String,
    /// Table names without prefix.
    pub drift_tables: Vec<String>,
    /// Paths relative to a release root.
    pub drift_paths: Vec<String>,
    /// Added by the playbook (node facts and rendered files).
    #[serde(default)]
    pub node: NodeFacts,
    #[serde(default)]
    pub files: Files,
}

/// What the playbook knows about the node from node_provision.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFacts {
    /// `"<distribution> <version>"` (lowercase) → PHP version, e.g. `"debian 12": "8.2"`.
    pub supported_os: BTreeMap<String, String>,
    /// Where node_provision installed the bridge, the mu-plugin and the drop-in.
    pub php_dir: String,
}

/// `pressluft node health-check`: the three checks of backups-restore-promotion.md §6 against
/// an existing environment. Reads only: it changes nothing on the node.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSpec {
    pub contract_version: u32,
    pub environment_id: String,
    pub env_root: String,
    pub env_user: String,
    /// The URL checked (primary domain, else preview URL).
    pub canonical_url: String,
    /// The environment's own hosts (preview host, then its domains): redirects may go only to
    /// these.
    pub hosts: Vec<String>,
    /// Where node_provision installed the PHP bridge; added by the playbook.
    #[serde(default)]
    pub php_dir: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_contract_version_is_refused_clearly() {
        let err =
            parse::<SiteCreateSpec>(r#"{"contract_version": 99, "new_field": 1}"#).unwrap_err();
        assert!(
            err.contains("the node helper is older than the control plane"),
            "{err}"
        );
        assert!(err.contains("provision the node again"), "{err}");
        let err = parse::<SiteCreateSpec>(r#"{"environment_id": "e"}"#).unwrap_err();
        assert!(err.contains("sent none"), "{err}");
    }

    #[test]
    fn a_known_version_parses_strictly() {
        let err = parse::<NodeFacts>(r#"{"contract_version": 1}"#).unwrap_err();
        assert!(err.starts_with("invalid job variables"), "{err}");
    }
}
