//! `pressluft node env-delete`: deleting environments (`env_delete`: one staging or clone
//! environment; `site_delete`: every environment of a site and the site directory) — what
//! tests/e2e/remove-site.sh did for the tests, owned by the product.
//!
//! First a final full backup of every environment the spec names one for (the backup library,
//! as `backup-create` and env-update's pre-update backup); a failed backup ends the command
//! before anything is removed (exit 4: storage unreachable, else 1). Then, per environment:
//! the PHP-FPM pool and the server blocks (its own and one per domain) go, PHP-FPM and Nginx
//! are reloaded, the environment user's leftover processes are waited for and then killed;
//! its domains' certificates (`certbot delete`), its database and database user (and a
//! restore's scratch databases), its Redis ACL user (fragment removed, ACL file reloaded), its
//! Redis keys and FastCGI cache entries, its Linux user and group, and its directory go.
//! `site_delete` removes the site directory last. Directories are removed through their opened
//! parent (a link is never followed: [`nofollow`]). Every step is idempotent: what is already
//! gone is skipped, so a retry after a partial run finishes the job.
//!
//! Output: one JSON line, [`DeleteResult`]. A removal failure after the backups prints the
//! same line (with `error`) before exiting 1, so the playbook can report the completed
//! backups and a retry does not need them again.

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;

use super::backup::{self, create::CreateResult};
use super::database::{is_identifier, mysql_lines};
use super::nofollow;
use super::process::run_cmd;
use super::services::{self, REDIS_ACL_APPLY};
use super::spec::{self, DeleteEnvironment, EnvDeleteSpec};
use super::switch::{purge_fastcgi, FASTCGI_CACHE_DIR};

/// Where environments live (`<SITES_ROOT>/<site id>/<environment id>`).
pub const SITES_ROOT: &str = "/var/www/sites";
const REDIS_ACL_DIR: &str = "/etc/redis/acl.d";
const NGINX_SITES: &str = "/etc/nginx/sites-enabled";
const LETSENCRYPT_RENEWAL: &str = "/etc/letsencrypt/renewal";
/// Exit code of a final backup whose storage could not be reached (`BACKUP_STORAGE_UNREACHABLE`).
pub const STORAGE_EXIT: i32 = 4;

/// A completed final backup (the `backup_create` result's fields).
#[derive(Debug, Serialize)]
pub struct FinalBackup {
    pub environment_id: String,
    pub backup_id: String,
    pub checksum: String,
    pub size_bytes: u64,
}

/// What `env-delete` prints.
#[derive(Debug, Default, Serialize)]
pub struct DeleteResult {
    pub final_backups: Vec<FinalBackup>,
    /// The environments removed.
    pub deleted: Vec<String>,
    /// What was found and removed, for the job log.
    pub removed: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `pressluft node env-delete`.
pub fn run() -> anyhow::Result<()> {
    spec::run_command(check, |spec, php_version: &String| apply(spec, php_version))
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
        })
}

/// A hostname as a certificate or cache-key name: lowercase letters, digits, `-` and `.`.
fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && !s.starts_with(['.', '-'])
        && !s.contains("..")
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// Every name is the one the control plane derives from the ids (sites/layout.rs): nothing
/// else on the node can be named by a spec.
pub(crate) fn check_environment(site_id: &str, e: &DeleteEnvironment) -> anyhow::Result<()> {
    let id = &e.environment_id;
    if !is_uuid(id) {
        bail!("invalid environment id {id:?}");
    }
    let u8 = &id[..8];
    let expected = [
        (&e.env_root, format!("{SITES_ROOT}/{site_id}/{id}")),
        (&e.env_user, format!("pl_{u8}")),
        (&e.database, format!("wp_{u8}")),
        (&e.db_user, format!("wp_{u8}")),
        (&e.redis_prefix, format!("pressluft_{id}:")),
    ];
    for (got, want) in expected {
        if *got != want {
            bail!("environment {id}: {got:?} is not the derived name {want:?}");
        }
    }
    if !is_identifier(&e.database) || !is_identifier(&e.db_user) {
        bail!("environment {id}: invalid database names");
    }
    if let Some(d) = e.domain_ids.iter().find(|d| !is_uuid(d)) {
        bail!("environment {id}: invalid domain id {d:?}");
    }
    if let Some(h) = e
        .hosts
        .iter()
        .chain(&e.certificates)
        .find(|h| !is_hostname(h))
    {
        bail!("environment {id}: invalid hostname {h:?}");
    }
    if let Some(b) = &e.final_backup {
        if b.backup.environment_id != *id || b.env_root != Path::new(&e.env_root) {
            bail!("environment {id}: the final backup is of another environment");
        }
    }
    Ok(())
}

/// Checks the spec; changes nothing. Returns the node's PHP version.
fn check(spec: &EnvDeleteSpec) -> anyhow::Result<String> {
    if !is_uuid(&spec.site_id) {
        bail!("invalid site id {:?}", spec.site_id);
    }
    if spec.environments.is_empty() && !spec.remove_site_dir {
        bail!("nothing to delete");
    }
    for e in &spec.environments {
        check_environment(&spec.site_id, e)?;
        // The backup reads the environment: it must still be whole.
        if e.final_backup.is_some() && !Path::new(&format!("{}/current", e.env_root)).exists() {
            bail!(
                "environment {}: no current release to make the final backup of",
                e.environment_id
            );
        }
    }
    services::php_version(&spec.node.supported_os)
}

fn apply(spec: &EnvDeleteSpec, php_version: &str) -> anyhow::Result<DeleteResult> {
    let mut result = DeleteResult::default();
    // (1) Every final backup first; a failure ends the command, nothing removed.
    for e in &spec.environments {
        if let Some(b) = &e.final_backup {
            let done = final_backup(b, &spec.node.php_dir)?;
            result.final_backups.push(FinalBackup {
                environment_id: e.environment_id.clone(),
                backup_id: done.backup_id,
                checksum: done.checksum,
                size_bytes: done.size_bytes,
            });
        }
    }
    // (2) The removal; a failure still reports the backups made.
    if let Err(e) = remove_all(spec, php_version, &mut result) {
        result.error = Some(format!("{e:#}"));
        println!("{}", serde_json::to_string(&result)?);
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
    Ok(result)
}

/// A final backup through the backup library; a failure ends the command with the backup's
/// exit code (4: storage unreachable).
fn final_backup(spec: &backup::create::CreateSpec, php_dir: &str) -> anyhow::Result<CreateResult> {
    let json = serde_json::to_value(spec).context("the final backup's spec")?;
    let mut create: backup::create::CreateSpec =
        serde_json::from_value(json).context("the final backup's spec")?;
    if create.php_dir.is_empty() {
        create.php_dir = php_dir.to_string();
    }
    let outcome = backup::on_runtime(move |handle| backup::create::create(create, handle))?;
    match outcome {
        Ok(done) => Ok(done),
        Err(e) => {
            eprintln!("error: the final backup: {e}");
            std::process::exit(e.exit_code());
        }
    }
}

pub(crate) fn remove_all(
    spec: &EnvDeleteSpec,
    php_version: &str,
    result: &mut DeleteResult,
) -> anyhow::Result<()> {
    let removed = &mut result.removed;
    // The pools and server blocks go first, so no PHP-FPM worker runs as an environment's
    // user when it is deleted and nothing serves a directory being removed.
    for e in &spec.environments {
        let id = &e.environment_id;
        for pool in pool_files(id)? {
            remove_file(&pool, removed)?;
        }
        remove_file(&format!("{NGINX_SITES}/pressluft-env-{id}.conf"), removed)?;
        for d in &e.domain_ids {
            remove_file(&format!("{NGINX_SITES}/pressluft-domain-{d}.conf"), removed)?;
        }
    }
    services::reload(php_version).context("reloading PHP-FPM and Nginx")?;
    for e in &spec.environments {
        stop_processes(&e.env_user)?;
        for cert in &e.certificates {
            delete_certificate(cert, removed)?;
        }
        drop_database(e, removed)?;
        let acl = format!("{REDIS_ACL_DIR}/env-{}.acl", e.environment_id);
        if remove_file(&acl, removed)? {
            run_cmd(REDIS_ACL_APPLY, &[]).context("reloading the Redis ACL file")?;
        }
        services::purge_redis(&e.redis_prefix)?;
        let purged = purge_fastcgi(Path::new(FASTCGI_CACHE_DIR), &e.hosts)?;
        if purged > 0 {
            removed.push(format!("{purged} FastCGI cache entries"));
        }
        delete_user(&e.env_user, removed)?;
        remove_dir_below(
            &format!("{SITES_ROOT}/{}", spec.site_id),
            &e.environment_id,
            removed,
        )?;
        result.deleted.push(e.environment_id.clone());
    }
    if spec.remove_site_dir {
        remove_dir_below(SITES_ROOT, &spec.site_id, removed)?;
    }
    Ok(())
}

/// The environment's pool file under every installed PHP version (`/etc/php/*/fpm/pool.d`).
fn pool_files(environment_id: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let Ok(versions) = std::fs::read_dir("/etc/php") else {
        return Ok(out);
    };
    for v in versions {
        let v = v?.file_name();
        let path = format!(
            "/etc/php/{}/fpm/pool.d/pressluft-{environment_id}.conf",
            v.to_string_lossy()
        );
        out.push(path);
    }
    Ok(out)
}

/// Removes a root-owned configuration file (in a directory only root writes) when present.
fn remove_file(path: &str, removed: &mut Vec<String>) -> anyhow::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => {
            std::fs::remove_file(path).with_context(|| format!("removing {path}"))?;
            removed.push(path.to_string());
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("reading {path}")),
    }
}

fn user_exists(user: &str) -> anyhow::Result<bool> {
    Ok(Command::new("getent")
        .args(["passwd", "--", user])
        .stdout(Stdio::null())
        .status()
        .context("running getent")?
        .success())
}

fn has_processes(user: &str) -> anyhow::Result<bool> {
    // pgrep exits 1 when nothing matches.
    Ok(Command::new("pgrep")
        .args(["-u", user])
        .stdout(Stdio::null())
        .status()
        .context("running pgrep")?
        .success())
}

/// A reloaded pool's workers finish their request first (5 s at most); anything left of the
/// user (a worker, a cron run) is killed.
fn stop_processes(user: &str) -> anyhow::Result<()> {
    if !user_exists(user)? {
        return Ok(());
    }
    for _ in 0..10 {
        if !has_processes(user)? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let _ = Command::new("pkill")
        .args(["-KILL", "-u", user])
        .status()
        .context("running pkill")?;
    for _ in 0..20 {
        if !has_processes(user)? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("processes of {user} are still running after SIGKILL")
}

/// `certbot delete --cert-name <hostname>` when the node holds that certificate.
fn delete_certificate(hostname: &str, removed: &mut Vec<String>) -> anyhow::Result<()> {
    let renewal = format!("{LETSENCRYPT_RENEWAL}/{hostname}.conf");
    if !Path::new(&renewal).exists() {
        return Ok(());
    }
    run_cmd(
        "certbot",
        &["delete", "--non-interactive", "--cert-name", hostname],
    )
    .with_context(|| format!("deleting the certificate {hostname}"))?;
    removed.push(format!("certificate {hostname}"));
    Ok(())
}

/// The database, its user and a restore's scratch databases (names checked: plain identifiers).
fn drop_database(e: &DeleteEnvironment, removed: &mut Vec<String>) -> anyhow::Result<()> {
    let (scratch_in, scratch_out) = backup::restore::scratch_databases(&e.database);
    let mut sql = String::new();
    for db in [&e.database, &scratch_in, &scratch_out] {
        if !is_identifier(db) {
            bail!("invalid database name {db:?}");
        }
        sql.push_str(&format!("DROP DATABASE IF EXISTS `{db}`;\n"));
    }
    sql.push_str(&format!(
        "DROP USER IF EXISTS '{}'@'localhost';\n",
        e.db_user
    ));
    let existing = mysql_lines(
        None,
        &format!(
            "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '{}';",
            e.database
        ),
    )?;
    mysql_lines(None, &sql).context("dropping the database and its user")?;
    if existing.first().map(String::as_str) == Some("1") {
        removed.push(format!("database {}", e.database));
    }
    Ok(())
}

/// The user (and its group, which `userdel` leaves when another user is in it).
fn delete_user(user: &str, removed: &mut Vec<String>) -> anyhow::Result<()> {
    if user_exists(user)? {
        run_cmd("userdel", &["--", user])?;
        removed.push(format!("user {user}"));
    }
    let group = Command::new("getent")
        .args(["group", "--", user])
        .stdout(Stdio::null())
        .status()
        .context("running getent")?
        .success();
    if group {
        run_cmd("groupdel", &["--", user])?;
    }
    Ok(())
}

/// Removes `<parent>/<name>` (a directory tree, or whatever else is there) through the opened
/// parent: no link in `parent` is followed, and `remove_dir_all` follows no link below it.
fn remove_dir_below(parent: &str, name: &str, removed: &mut Vec<String>) -> anyhow::Result<()> {
    let dir = match nofollow::open_dir(Path::new(parent)) {
        Ok(fd) => fd,
        Err(nofollow::OpenError::Missing(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let path = nofollow::fd_path(&dir).join(name);
    match nofollow::kind_at(dir.as_fd(), OsStr::new(name))? {
        None => return Ok(()),
        Some(libc::S_IFDIR) => {
            std::fs::remove_dir_all(&path).with_context(|| format!("removing {parent}/{name}"))?
        }
        Some(_) => {
            std::fs::remove_file(&path).with_context(|| format!("removing {parent}/{name}"))?
        }
    }
    removed.push(format!("{parent}/{name}"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: &str = "11111111-2222-4333-8444-555555555555";
    const ENV: &str = "a1b2c3d4-0000-4000-8000-000000000000";

    fn env() -> DeleteEnvironment {
        DeleteEnvironment {
            environment_id: ENV.into(),
            env_root: format!("/var/www/sites/{SITE}/{ENV}"),
            env_user: "pl_a1b2c3d4".into(),
            database: "wp_a1b2c3d4".into(),
            db_user: "wp_a1b2c3d4".into(),
            redis_prefix: format!("pressluft_{ENV}:"),
            hosts: vec!["a1b2c3d4.203-0-113-5.sslip.io".into()],
            domain_ids: vec![],
            certificates: vec!["shop.example.com".into()],
            final_backup: None,
        }
    }

    #[test]
    fn only_the_derived_names_are_accepted() {
        check_environment(SITE, &env()).unwrap();
        let cases: [fn(&mut DeleteEnvironment); 10] = [
            |e| e.env_root = "/".into(),
            |e| e.env_root = format!("/var/www/sites/{SITE}/../{ENV}"),
            |e| e.env_user = "root".into(),
            |e| e.database = "mysql".into(),
            |e| e.db_user = "root".into(),
            |e| e.redis_prefix = "".into(),
            |e| e.environment_id = "../../etc".into(),
            |e| e.domain_ids = vec!["../x".into()],
            |e| e.certificates = vec!["x; rm -rf /".into()],
            |e| e.hosts = vec!["-x".into()],
        ];
        for (i, change) in cases.iter().enumerate() {
            let mut e = env();
            change(&mut e);
            assert!(check_environment(SITE, &e).is_err(), "case {i}");
        }
    }

    #[test]
    fn ids_and_hostnames() {
        assert!(is_uuid(ENV));
        assert!(!is_uuid("A1B2C3D4-0000-4000-8000-000000000000"));
        assert!(!is_uuid("a1b2c3d4"));
        assert!(is_hostname("a.b-c.example"));
        for bad in ["", ".a", "a..b", "A.b", "a/b", "a b"] {
            assert!(!is_hostname(bad), "{bad}");
        }
    }

    #[test]
    fn a_directory_is_removed_through_its_parent_never_through_a_link() {
        let root = tempfile::tempdir().unwrap();
        let victim = root.path().join("victim");
        std::fs::create_dir_all(&victim).unwrap();
        std::fs::write(victim.join("keep"), "x").unwrap();
        let parent = root.path().join("sites");
        std::fs::create_dir_all(parent.join("env/releases")).unwrap();
        // A link inside the tree is removed as a link; its target stays.
        std::os::unix::fs::symlink(&victim, parent.join("env/releases/link")).unwrap();
        // A link as the environment's own directory is removed as a link too.
        std::os::unix::fs::symlink(&victim, parent.join("swapped")).unwrap();
        let mut removed = Vec::new();
        let p = parent.to_str().unwrap();
        remove_dir_below(p, "env", &mut removed).unwrap();
        remove_dir_below(p, "swapped", &mut removed).unwrap();
        remove_dir_below(p, "missing", &mut removed).unwrap();
        assert!(!parent.join("env").exists());
        assert!(std::fs::symlink_metadata(parent.join("swapped")).is_err());
        assert!(victim.join("keep").is_file());
        assert_eq!(removed.len(), 2);
        // A link as the parent is refused.
        let linked = root.path().join("linked");
        std::os::unix::fs::symlink(&parent, &linked).unwrap();
        std::fs::create_dir_all(parent.join("again")).unwrap();
        assert!(remove_dir_below(linked.to_str().unwrap(), "again", &mut removed).is_err());
        assert!(parent.join("again").is_dir());
    }
}
