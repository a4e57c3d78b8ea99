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
pub const CONTRACT_VERSION: u32 = 2;

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

/// `pressluft node drift-check`: production's checksums of a preset's protected tables and
/// paths (src/node_helper/drift.rs); the control plane compares them with the baseline.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DriftCheckSpec {
    pub contract_version: u32,
    /// Production's environment id (checked against the playbook's variable).
    pub environment_id: String,
    /// Production's environment root; the paths are relative to `<env_root>/current`.
    pub env_root: String,
    /// Production's system user (the PHP bridge reads the table prefix as this user).
    pub env_user: String,
    /// Production's database.
    pub db_name: String,
    /// Table names without the prefix (the preset's protected tables).
    pub tables: Vec<String>,
    /// Paths relative to the release root (the preset's protected paths).
    pub paths: Vec<String>,
    /// Where node_provision installed the PHP bridge; added by the playbook.
    #[serde(default)]
    pub php_dir: String,
}

/// What every command that makes a release live shares (src/node_helper/switch.rs): the
/// atomic `current` switch, the PHP-FPM reload, the purge of the environment's FastCGI cache
/// entries (by its hosts) and Redis keys (by its prefix), and pruning to `release_keep`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoLive {
    pub env_root: String,
    pub env_user: String,
    /// The environment's own hosts (preview host, then its domains): its FastCGI cache keys.
    pub hosts: Vec<String>,
    /// The environment's Redis key prefix (`pressluft_<env id>:`).
    pub redis_prefix: String,
    /// How many releases the environment keeps (the current and the previous one always).
    pub release_keep: usize,
}

/// `pressluft node release-deploy` (`env_deploy`): a new release from a git repository or an
/// archive (api.md, `source_ref` formats), validated before anything changes, then made live.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseDeploySpec {
    pub contract_version: u32,
    pub environment_id: String,
    /// The new release's directory name (`<env_root>/releases/<release_name>`).
    pub release_name: String,
    /// The release live before this deploy: its WordPress core is combined with a
    /// `wp-content`-only source, and pruning keeps it.
    pub current_release_name: String,
    /// `git` or `upload`.
    pub source_type: String,
    /// As requested (credentials in it are secrets).
    pub source_ref: String,
    /// The site's deploy key (OpenSSH private key) for `ssh://` and `user@host:path` git
    /// repositories; a secret.
    #[serde(default)]
    pub git_ssh_key: Option<String>,
    /// The backup S3 storage's access (bucket and prefix empty) for an `s3://bucket/key` upload.
    #[serde(default)]
    pub s3: Option<crate::node_helper::backup::storage::StorageSpec>,
    /// Whether the source's host may resolve to a loopback address (link-local: never).
    pub allow_loopback_sources: bool,
    pub go_live: GoLive,
    /// Added by the playbook.
    #[serde(default)]
    pub node: NodeFacts,
}

/// `pressluft node env-update` (`env_update`): the pre-update backup (unless an earlier
/// attempt completed it), a new release copied from the current one, WordPress's own upgrader
/// classes run on it through the PHP bridge as the environment user, then made live.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvUpdateSpec {
    pub contract_version: u32,
    pub environment_id: String,
    pub release_name: String,
    pub current_release_name: String,
    /// `core`, `plugins`, `themes` or `all`.
    pub scope: String,
    /// Where WordPress looks for updates instead of api.wordpress.org (the `update_source`
    /// setting; tests point it at a local feed); `None`: WordPress's normal source.
    #[serde(default)]
    pub update_source: Option<String>,
    pub allow_loopback_sources: bool,
    /// The pre-update backup to produce first; `None` when an earlier attempt completed it.
    #[serde(default)]
    pub pre_backup: Option<crate::node_helper::backup::create::CreateSpec>,
    /// Exactly these items at exactly these versions (a safe-update run's tested updates,
    /// issue 16); every other offered update is left alone, and an item WordPress offers at
    /// another version (or not at all) refuses the run before anything live changes (exit 3).
    /// `None` or empty: every update of `scope`. Omitted when `None`, so a spec without it is
    /// the one an older helper knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versions: Option<Vec<UpdateVersion>>,
    pub go_live: GoLive,
    #[serde(default)]
    pub node: NodeFacts,
}

/// What kind of update an [`UpdateVersion`] is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum UpdateKind {
    Core,
    Plugin,
    Theme,
}

impl UpdateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateKind::Core => "core",
            UpdateKind::Plugin => "plugin",
            UpdateKind::Theme => "theme",
        }
    }
}

impl std::fmt::Display for UpdateKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One update at one exact version (`env_update`'s optional `versions`, issue 16): `id` is the
/// id `update-check` reports (`core` — `wordpress` is accepted too —, the plugin file
/// `dir/file.php`, the theme's stylesheet), `version` the `new_version` that was tested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVersion {
    pub kind: UpdateKind,
    pub id: String,
    pub version: String,
}

impl UpdateVersion {
    /// Every update of an `update-check` answer at the version it offers (what a safe-update
    /// run tries and then applies).
    pub fn from_available(available: &AvailableUpdates) -> Vec<UpdateVersion> {
        let item = |kind, u: &AvailableUpdate| UpdateVersion {
            kind,
            id: u.id.clone(),
            version: u.new_version.clone(),
        };
        available
            .core
            .iter()
            .map(|u| item(UpdateKind::Core, u))
            .chain(
                available
                    .plugins
                    .iter()
                    .map(|u| item(UpdateKind::Plugin, u)),
            )
            .chain(available.themes.iter().map(|u| item(UpdateKind::Theme, u)))
            .collect()
    }

    /// Checks the item's form (the API's and the helper's rule): `id` 1–200 characters without
    /// control characters (`core`/`wordpress` for core), `version` `^[0-9A-Za-z.+-]{1,64}$`.
    /// `Err` names the field.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let id = self.id.as_str();
        if id.is_empty() || id.chars().count() > 200 || id.chars().any(char::is_control) {
            return Err((
                "id",
                "must be 1 to 200 characters without control characters".into(),
            ));
        }
        if self.kind == UpdateKind::Core && !is_core_id(id) {
            return Err(("id", "must be core for a core update".into()));
        }
        let v = self.version.as_str();
        if v.is_empty()
            || v.len() > 64
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".+-".contains(&b))
        {
            return Err((
                "version",
                "must be 1 to 64 characters of letters, digits, '.', '+' and '-'".into(),
            ));
        }
        Ok(())
    }
}

/// Whether `id` names WordPress core in an [`UpdateVersion`] (`update-check` says `core`).
pub fn is_core_id(id: &str) -> bool {
    id == "core" || id == "wordpress"
}

/// `pressluft node php-fatals` (issue 16): the PHP fatal errors an environment logged since a
/// moment (a safe-update run's step 6). The log read is derived from `env_root`
/// (`<env_root>/logs/php-error.log`, the pool's `error_log`), never named by the spec.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhpFatalsSpec {
    pub contract_version: u32,
    pub environment_id: String,
    /// `/var/www/sites/<site id>/<environment id>`.
    pub env_root: String,
    /// `pl_<uuid8>`.
    pub env_user: String,
    /// RFC 3339: only lines logged at or after this moment count.
    pub since: String,
}

/// `pressluft node menu-paths` (issue 16): the same-host paths of an environment's primary
/// menu (a safe-update run's default check pages), read by the PHP bridge's `menu-paths` as
/// the environment's user.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MenuPathsSpec {
    pub contract_version: u32,
    pub environment_id: String,
    /// `/var/www/sites/<site id>/<environment id>`.
    pub env_root: String,
    /// `pl_<uuid8>`.
    pub env_user: String,
    /// Where node_provision installed the PHP bridge.
    pub php_dir: String,
}

/// `pressluft node site-import` (`site_import`): an archive of another WordPress (`db.sql`,
/// `files/`, optional `meta.json`) fetched and validated before anything changes, the
/// pre-import backup, a new release of the current core with `files/` as `wp-content`, the
/// database imported (the environment's database user, through a scratch database swapped in
/// whole) and rewritten to the canonical URL, then made live (docs/node-helper.md).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteImportSpec {
    pub contract_version: u32,
    pub environment_id: String,
    pub release_name: String,
    /// The release live before the import: its WordPress core is the new release's.
    pub current_release_name: String,
    /// An `upload` source (http(s), `s3://bucket/key`, `file:///abs` or `/abs` on the node);
    /// credentials in it are secrets.
    pub archive_url: String,
    /// The backup S3 storage's access (bucket and prefix empty) for an `s3://` archive.
    #[serde(default)]
    pub s3: Option<crate::node_helper::backup::storage::StorageSpec>,
    pub allow_loopback_sources: bool,
    /// The environment's database and its user (the import runs as that user; the password
    /// is a secret).
    pub db_name: String,
    pub db_user: String,
    pub db_password: String,
    /// The rewrite's target: the primary domain's URL, else the preview URL.
    pub canonical_url: String,
    pub redis_cache_enabled: bool,
    /// The pre-import backup to produce first; `None` when an earlier attempt completed it.
    #[serde(default)]
    pub pre_backup: Option<crate::node_helper::backup::create::CreateSpec>,
    pub go_live: GoLive,
    #[serde(default)]
    pub node: NodeFacts,
}

/// The environment a promotion copies from (read only; backups-restore-promotion.md §5).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromoteSource {
    pub env_root: String,
    pub env_user: String,
    /// The directory name of its current release (copied into the target's new release).
    pub release_name: String,
    pub db_name: String,
    /// Rewritten to the target's canonical URL in every copied string.
    pub canonical_url: String,
}

/// `pressluft node env-promote` (`env_promote`): a non-production environment's code and
/// unprotected tables made production's (backups-restore-promotion.md §5), after the drift
/// comparison re-run against the clone-time baseline and the table prefixes checked (both
/// before anything changes).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvPromoteSpec {
    pub contract_version: u32,
    /// The target (production) environment.
    pub environment_id: String,
    pub release_name: String,
    /// The target's release live before the promotion (rollback target, kept from pruning).
    pub current_release_name: String,
    pub source: PromoteSource,
    /// The target's database and canonical URL.
    pub db_name: String,
    pub canonical_url: String,
    /// The preset: its protected tables (without prefix) are neither dumped nor replaced,
    /// its protected paths (relative to a release root) never copied.
    pub promotion_preset: String,
    pub protected_tables: Vec<String>,
    pub protected_paths: Vec<String>,
    /// The clone-time drift baseline of production (`drift_checks` row, `is_baseline = 1`):
    /// `{"<prefixed table>": {"rows", "checksum"} | null}` and `{"<path>": "sha256:…"}`.
    pub baseline_tables: serde_json::Value,
    pub baseline_paths: serde_json::Value,
    pub go_live: GoLive,
    #[serde(default)]
    pub node: NodeFacts,
}

/// What `release-rollback` restores from the pre-operation backup.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RollbackRestore {
    /// The backup's recorded `sha256:<hex>` manifest checksum (verified before anything changes:
    /// `BACKUP_CHECKSUM_MISMATCH`).
    pub checksum: String,
    pub storage: crate::node_helper::backup::storage::StorageSpec,
    pub data_key: crate::node_helper::backup::DataKey,
    /// The environment's database.
    pub database: String,
    /// Tables (without prefix) left as they are (promotion's protected tables).
    #[serde(default)]
    pub skip_tables: Vec<String>,
    /// Restore `shared/uploads` from the files artifact too.
    pub uploads: bool,
}

/// The backup `env-restore` restores: its id, recorded manifest checksum (verified before
/// anything changes: `BACKUP_CHECKSUM_MISMATCH`), storage and data key (secrets).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreBackup {
    pub backup_id: String,
    pub checksum: String,
    pub storage: crate::node_helper::backup::storage::StorageSpec,
    pub data_key: crate::node_helper::backup::DataKey,
}

/// `pressluft node env-restore` (`env_restore`, and the restore drill's temporary environment):
/// a completed backup of the site restored into an existing environment — verified first, the
/// optional pre-restore backup, a new release from the files artifact (else a copy of the
/// current release), `shared/uploads` and the database (rewritten to `canonical_url` when the
/// backup's differs) swapped in, then made live (src/node_helper/env_restore.rs).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvRestoreSpec {
    pub contract_version: u32,
    pub environment_id: String,
    /// The new release's directory name.
    pub release_name: String,
    /// The release live before the restore (protected from pruning; copied when the backup has
    /// no files artifact).
    pub current_release_name: String,
    pub backup: RestoreBackup,
    /// The environment's database.
    pub db_name: String,
    /// The environment's canonical URL (primary domain, else preview URL): the rewrite's target.
    pub canonical_url: String,
    pub redis_cache_enabled: bool,
    /// The pre-restore backup, made after the verification and before anything live changes;
    /// `None` when an earlier attempt completed it, or for a drill's temporary environment.
    #[serde(default)]
    pub pre_backup: Option<crate::node_helper::backup::create::CreateSpec>,
    pub go_live: GoLive,
    #[serde(default)]
    pub node: NodeFacts,
}

/// `pressluft node release-rollback` (`release_rollback`): `current` back to the target
/// release, the database (and uploads) from the pre-operation backup when set, made live.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRollbackSpec {
    pub contract_version: u32,
    pub environment_id: String,
    /// The release switched back to (it must exist complete).
    pub target_release_name: String,
    /// The release that failed its health gate (kept, not pruned by this run).
    pub failed_release_name: String,
    #[serde(default)]
    pub restore: Option<RollbackRestore>,
    pub go_live: GoLive,
    #[serde(default)]
    pub node: NodeFacts,
}

/// `pressluft node update-check`: the updates WordPress reports for an environment, asked
/// through the PHP bridge as the environment user (a node query over one SSH command, for the
/// dashboard's Apply updates list). Changes no files; WordPress caches the answer in its own
/// update transients, as its dashboard does.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateCheckSpec {
    pub contract_version: u32,
    pub environment_id: String,
    pub env_root: String,
    pub env_user: String,
    /// As [`EnvUpdateSpec::update_source`].
    #[serde(default)]
    pub update_source: Option<String>,
    pub allow_loopback_sources: bool,
    /// Where node_provision installed the PHP bridge.
    pub php_dir: String,
}

/// One available update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AvailableUpdate {
    /// What it is called (`WordPress`, the plugin's or theme's name).
    pub name: String,
    /// `core`, the plugin's file (`akismet/akismet.php`) or the theme's directory.
    pub id: String,
    pub current_version: String,
    pub new_version: String,
}

/// What `update-check` prints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AvailableUpdates {
    pub core: Option<AvailableUpdate>,
    pub plugins: Vec<AvailableUpdate>,
    pub themes: Vec<AvailableUpdate>,
}

/// A server block as the playbook rendered it from the env-vhost role's template.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerBlock {
    /// For a kernel with IPv6 (`listen [::]:80` too) and for one without.
    pub vhost: String,
    pub vhost_without_ipv6: String,
}

/// One custom domain's server block (`pressluft-domain-<domain_id>.conf`), rewritten with the
/// environment's cache flags (and by `domain-apply` when domains come, go or change primary).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainBlock {
    pub domain_id: String,
    #[serde(flatten)]
    pub block: ServerBlock,
}

/// `pressluft node env-cache` (`env_cache_toggle`): the environment's server blocks rewritten
/// with or without the FastCGI page cache, the Redis drop-in added or removed, Nginx reloaded,
/// the environment's FastCGI entries and Redis keys purged (domains-and-tls.md §6).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvCacheSpec {
    pub contract_version: u32,
    pub environment_id: String,
    pub env_root: String,
    pub env_user: String,
    /// The flags as the database holds them when the job runs (they win over the payload).
    pub fastcgi_cache_enabled: bool,
    pub redis_cache_enabled: bool,
    /// The environment's own hosts (preview host, then its domains): its FastCGI cache keys.
    pub hosts: Vec<String>,
    /// The environment's Redis key prefix (`pressluft_<env id>:`).
    pub redis_prefix: String,
    /// Added by the playbook: the preview server block rendered with the flags.
    #[serde(default)]
    pub server_block: ServerBlock,
    /// Added by the playbook: the active custom domains' blocks.
    #[serde(default)]
    pub domain_blocks: Vec<DomainBlock>,
    /// Added by the playbook.
    #[serde(default)]
    pub node: NodeFacts,
}

/// `pressluft node cache-purge` (`cache_purge`): the environment's FastCGI entries (by its
/// hosts) and Redis keys (by its prefix) deleted, nobody else's.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CachePurgeSpec {
    pub contract_version: u32,
    pub environment_id: String,
    /// The environment's own hosts (preview host, then its domains).
    pub hosts: Vec<String>,
    pub redis_prefix: String,
    /// What to purge (the payload's `fastcgi`, `redis`).
    pub fastcgi: bool,
    pub redis: bool,
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
        let err = parse::<NodeFacts>(&format!(r#"{{"contract_version": {CONTRACT_VERSION}}}"#))
            .unwrap_err();
        assert!(err.starts_with("invalid job variables"), "{err}");
    }
}

/// `pressluft node env-delete`: what to delete.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvDeleteSpec {
    pub contract_version: u32,
    pub site_id: String,
    /// Remove `<SITES_ROOT>/<site id>` after the environments (`site_delete`).
    pub remove_site_dir: bool,
    pub environments: Vec<DeleteEnvironment>,
    /// Added by the playbook.
    #[serde(default)]
    pub node: NodeFacts,
}

/// One environment to delete (names derived by the control plane, checked here).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteEnvironment {
    pub environment_id: String,
    pub env_root: String,
    pub env_user: String,
    pub database: String,
    pub db_user: String,
    pub redis_prefix: String,
    /// Its hosts (preview host, then its domains): its FastCGI cache keys.
    pub hosts: Vec<String>,
    /// Its domains' ids (`pressluft-domain-<id>.conf` server blocks).
    #[serde(default)]
    pub domain_ids: Vec<String>,
    /// Its domains' hostnames (certificate names).
    #[serde(default)]
    pub certificates: Vec<String>,
    /// The final backup to make first; `None` when there is none to make (an earlier attempt
    /// completed it, or the environment never had a release).
    #[serde(default)]
    pub final_backup: Option<crate::node_helper::backup::create::CreateSpec>,
}

/// `pressluft node restore-drill` (`restore_drill`, issue 14): a temporary environment created
/// as `env-clone` creates one (without copying anything), the backup restored into it, the
/// health checks run against it, and the environment removed again as `env-delete` removes
/// one — whatever the restore or the checks found.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestoreDrillSpec {
    pub contract_version: u32,
    pub site_id: String,
    /// The temporary environment (names derived by the control plane).
    pub env: NewEnvironment,
    pub db_name: String,
    pub db_user: String,
    /// The restore of the production backup into the temporary environment (`env-restore`'s
    /// spec: no current release, no pre-restore backup; its `node` is this spec's).
    pub restore: EnvRestoreSpec,
    /// The health checks' target (the temporary environment's preview URL and host).
    pub health: HealthCheckSpec,
    /// The removal of the temporary environment (no final backup).
    pub delete: DeleteEnvironment,
    /// Added by the playbook (node facts and rendered files).
    #[serde(default)]
    pub node: NodeFacts,
    #[serde(default)]
    pub files: Files,
}

/// `pressluft node domain-apply` (`domain_add`, `domain_remove`; issue 15): an environment's
/// custom-domain server blocks installed or removed, Nginx reloaded, then, when the canonical
/// URL changes, the serialized-safe rewrite of its database (domains-and-tls.md §7) and its
/// caches purged.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainApplySpec {
    pub contract_version: u32,
    pub environment_id: String,
    pub env_root: String,
    pub env_user: String,
    /// The environment's database (rewritten in place).
    pub db_name: String,
    /// The environment's own hosts (preview host, then its domains, the removed one included):
    /// its FastCGI cache keys.
    pub hosts: Vec<String>,
    pub redis_prefix: String,
    /// The canonical URL's change, when there is one.
    #[serde(default)]
    pub rewrite: Option<UrlRewrite>,
    /// Purge the environment's FastCGI entries and Redis keys after the reload.
    #[serde(default)]
    pub purge: bool,
    /// Domains whose `pressluft-domain-<id>.conf` is deleted.
    #[serde(default)]
    pub remove_domain_ids: Vec<String>,
    /// Added by the playbook: the domain blocks to install, rendered from the env-vhost role.
    #[serde(default)]
    pub domain_blocks: Vec<DomainBlock>,
    /// Added by the playbook.
    #[serde(default)]
    pub node: NodeFacts,
}

/// A canonical-URL change: every occurrence of `from` in the database becomes `to`
/// (serialized-safe), and `home`/`siteurl` are `to` afterwards.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlRewrite {
    pub from: String,
    pub to: String,
}
