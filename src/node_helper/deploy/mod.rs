//! `pressluft node release-deploy` (`env_deploy`): a new release of an environment from a git
//! repository or an archive, validated before anything in the environment changes, then made
//! live with [`switch::go_live`] (docs/node-helper.md, docs/decisions.md "Deploys (issue 12):
//! fetching and building a release").
//!
//! 1. Fetch into root's private temporary directory under `/var/tmp` (0700, removed at the end;
//!    the directories of earlier runs that died are swept first):
//!    git ([`git`]) or an archive ([`archive`]: http(s) through [`fetch::download`], `s3://`
//!    with the backup storage's access, a node path). Failures: `SOURCE_FETCH_FAILED` (exit 6).
//! 2. Validate ([`layout`]): a full WordPress tree or the contents of `wp-content`; else
//!    `ARCHIVE_INVALID` (exit 7). `wp-config.php` and `wp-content/uploads` in it are dropped.
//! 3. Build `releases/<release_name>` as the environment's user: a full tree is copied; a
//!    `wp-content` source gets the current release's core and becomes the new `wp-content`.
//!    `composer install --no-dev --no-interaction` when `composer.json` is at the source root.
//! 4. Complete the release and go live, the previous release protected from pruning.
//!
//! Any failure before the switch removes the release this run started, so the release
//! directories stay the recorded ones.

pub mod archive;
pub mod git;
pub mod layout;

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::process::{as_user, as_user_command, spawn_in, wait_child};
use super::spec::{self, ReleaseDeploySpec};
use super::switch::{self, WentLive};
use super::users::WEB_GROUP;
use super::{fetch, files, nofollow, releases, services};
use crate::deploys::source::{self as source_ref, GitTransport, Source, UploadLocation};
use crate::domain::ReleaseSourceType;
pub use layout::Layout;

/// Exit code of `SOURCE_FETCH_FAILED`.
pub const EXIT_SOURCE_FETCH: i32 = 6;
/// Exit code of `ARCHIVE_INVALID`.
pub const EXIT_ARCHIVE_INVALID: i32 = 7;

/// Why a deploy failed; the exit code tells the playbook which error code to report.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The repository or archive could not be fetched (retryable).
    #[error("{0}")]
    SourceFetch(String),
    /// The archive is unreadable or hostile, or the source has no usable content.
    #[error("{0}")]
    ArchiveInvalid(String),
    /// Nothing changed; the node or the spec is not as required.
    #[error("{0}")]
    Precondition(String),
    #[error("{0}")]
    Failed(String),
}

impl DeployError {
    pub fn exit_code(&self) -> i32 {
        match self {
            DeployError::SourceFetch(_) => EXIT_SOURCE_FETCH,
            DeployError::ArchiveInvalid(_) => EXIT_ARCHIVE_INVALID,
            DeployError::Precondition(_) => spec::PRECONDITION_EXIT,
            DeployError::Failed(_) => 1,
        }
    }
}

fn failed(e: anyhow::Error) -> DeployError {
    DeployError::Failed(crate::sources::redact_userinfo(&format!("{e:#}")).into_owned())
}

/// What `release-deploy` prints (the result file of env-deploy.yml).
#[derive(Debug, Serialize)]
pub struct Deployed {
    pub release_name: String,
    pub release_path: String,
    /// The git commit id, or `sha256:<hex>` of the archive.
    pub source_revision: String,
    pub layout: Layout,
    pub composer: bool,
    pub went_live: WentLive,
}

/// Reads the spec, checks, deploys, prints the result; exits 6/7/3 on those failures.
pub fn run() -> anyhow::Result<()> {
    spec::run_command(check, |spec, checked: &Checked| {
        match apply(spec, checked, Path::new(git::KNOWN_HOSTS)) {
            Ok(done) => Ok(done),
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(e.exit_code());
            }
        }
    })
}

/// What the check found.
pub struct Checked {
    pub source: Source,
    pub php_version: String,
}

/// Preconditions (nothing changes): the source parses, the environment and its current
/// release exist, the PHP version is known.
pub fn check(spec: &ReleaseDeploySpec) -> anyhow::Result<Checked> {
    let source_type = match spec.source_type.as_str() {
        "git" => ReleaseSourceType::Git,
        "upload" => ReleaseSourceType::Upload,
        other => anyhow::bail!("unknown source_type {other:?}"),
    };
    let source = source_ref::parse(source_type, &spec.source_ref, spec.allow_loopback_sources)
        .map_err(|e| {
            anyhow::anyhow!(
                "source_ref: {}",
                crate::sources::redact_userinfo(&e.to_string())
            )
        })?;
    for name in [&spec.release_name, &spec.current_release_name] {
        if name.is_empty() || name.starts_with('.') || name.contains('/') {
            anyhow::bail!("invalid release name {name:?}");
        }
    }
    let current = format!(
        "{}/releases/{}",
        spec.go_live.env_root, spec.current_release_name
    );
    if nofollow::open_dir(Path::new(&current)).is_err() {
        anyhow::bail!("the current release {current} does not exist");
    }
    if source.needs_deploy_key() && spec.git_ssh_key.is_none() {
        anyhow::bail!("an SSH repository needs the site's deploy key");
    }
    if source.needs_s3() && spec.s3.is_none() {
        anyhow::bail!("an s3:// source needs the backup storage's S3 access");
    }
    let php_version = services::php_version(&spec.node.supported_os)?;
    Ok(Checked {
        source,
        php_version,
    })
}

/// A fetched source in root's private temporary directory.
pub struct Fetched {
    /// The source's root (a full tree or the contents of `wp-content`).
    pub root: PathBuf,
    pub revision: String,
    pub layout: Layout,
    pub composer: bool,
}

/// Fetches and validates the source into `tmp` (root's, private). Changes nothing else.
pub fn fetch_source(
    spec: &ReleaseDeploySpec,
    source: &Source,
    tmp: &Path,
    known_hosts: &Path,
) -> Result<Fetched, DeployError> {
    let (root, revision) = match source {
        Source::Git {
            repo,
            git_ref,
            transport,
        } => {
            if matches!(transport, GitTransport::Https | GitTransport::Git) {
                fetch::check_resolved(repo, spec.allow_loopback_sources)
                    .map_err(|e| DeployError::SourceFetch(format!("{e:#}")))?;
            }
            let dest = tmp.join("src");
            let sha = git::fetch(
                &git::Repo {
                    url: repo,
                    git_ref: git_ref.as_deref(),
                    transport: *transport,
                    ssh_key: spec.git_ssh_key.as_deref(),
                    known_hosts,
                },
                &dest,
                tmp,
            )?;
            // A repository's root is the source's root (never stripped).
            if std::fs::read_dir(&dest).map_or(true, |mut d| d.next().is_none()) {
                return Err(DeployError::ArchiveInvalid(
                    "the repository is empty at that ref".into(),
                ));
            }
            (dest, sha)
        }
        Source::Upload { location } => {
            let mut file = download(spec, *location)?;
            let revision = sha256_of(&mut file)?;
            let dest = tmp.join("src");
            std::fs::create_dir(&dest).map_err(|e| DeployError::Failed(e.to_string()))?;
            (archive::unpack(file, &dest)?, revision)
        }
    };
    let layout = layout::prepare(&root)?;
    let composer = std::fs::symlink_metadata(root.join("composer.json")).is_ok_and(|m| m.is_file());
    Ok(Fetched {
        root,
        revision,
        layout,
        composer,
    })
}

/// The archive as an open file (root's temporary file for a download).
fn download(spec: &ReleaseDeploySpec, location: UploadLocation) -> Result<File, DeployError> {
    fetch_archive(
        &spec.source_ref,
        location,
        spec.s3.as_ref(),
        spec.allow_loopback_sources,
    )
}

/// The archive at `url` (an `upload` source: http(s), `s3://bucket/key` with the backup
/// storage's access `s3`, or a node path) as an open file — root's temporary file for a
/// download. Shared by `release-deploy` and `site-import`.
pub fn fetch_archive(
    url: &str,
    location: UploadLocation,
    s3: Option<&super::backup::storage::StorageSpec>,
    allow_loopback_sources: bool,
) -> Result<File, DeployError> {
    let fetch_failed =
        |e: String| DeployError::SourceFetch(crate::sources::redact_userinfo(&e).into_owned());
    match location {
        UploadLocation::Http => fetch::download(url, "", allow_loopback_sources)
            .map_err(|e| fetch_failed(format!("{e:#}"))),
        UploadLocation::NodePath => {
            let path = url.strip_prefix("file://").unwrap_or(url);
            File::open(path).map_err(|e| fetch_failed(format!("opening {path}: {e}")))
        }
        UploadLocation::S3 => {
            use super::backup::storage::{Storage, StorageSpec};
            let rest = url.strip_prefix("s3://").unwrap_or(url);
            let (bucket, key) = rest
                .split_once('/')
                .ok_or_else(|| fetch_failed("the s3:// source has no key".into()))?;
            let (prefix, name) = key.rsplit_once('/').unwrap_or(("", key));
            let Some(StorageSpec::S3 {
                endpoint,
                region,
                access_key_id,
                secret_access_key,
                ..
            }) = s3.cloned()
            else {
                return Err(DeployError::Precondition(
                    "an s3:// source needs the backup storage's S3 access".into(),
                ));
            };
            let storage_spec = StorageSpec::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
                endpoint,
                region,
                access_key_id,
                secret_access_key,
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| DeployError::Failed(e.to_string()))?;
            let storage = Storage::open(&storage_spec, runtime.handle())
                .map_err(|e| fetch_failed(e.to_string()))?;
            let mut reader = storage
                .reader(name)
                .map_err(|e| fetch_failed(e.to_string()))?;
            let mut file = tempfile::tempfile_in("/var/tmp")
                .map_err(|e| DeployError::Failed(e.to_string()))?;
            std::io::copy(&mut reader, &mut file)
                .map_err(|e| fetch_failed(format!("reading s3://{bucket}/{key}: {e}")))?;
            std::io::Seek::rewind(&mut file).map_err(|e| DeployError::Failed(e.to_string()))?;
            Ok(file)
        }
    }
}

fn sha256_of(file: &mut File) -> Result<String, DeployError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| DeployError::ArchiveInvalid(format!("the archive cannot be read: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    std::io::Seek::rewind(file).map_err(|e| DeployError::Failed(e.to_string()))?;
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// Where a deploy fetches its source: root's private `<FETCH_PARENT>/<FETCH_PREFIX>…` directory.
const FETCH_PARENT: &str = "/var/tmp";
const FETCH_PREFIX: &str = "pressluft-deploy-";

/// Removes the fetch directories of earlier runs that died before they could clean up (a
/// helper killed mid-deploy, a crashed node). One job per node runs at a time, so any such
/// directory at the start of a deploy belongs to a dead run. `remove_dir_all` never follows
/// a link (the fetched tree belongs to the environment's user).
fn sweep_dead_fetches(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let is_fetch_dir = entry
            .file_name()
            .to_string_lossy()
            .starts_with(FETCH_PREFIX)
            && entry.file_type().is_ok_and(|t| t.is_dir());
        if is_fetch_dir {
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                eprintln!("warning: could not remove {}: {e}", entry.path().display());
            }
        }
    }
}

/// Fetches, builds and switches (see the module documentation).
pub fn apply(
    spec: &ReleaseDeploySpec,
    checked: &Checked,
    known_hosts: &Path,
) -> Result<Deployed, DeployError> {
    sweep_dead_fetches(Path::new(FETCH_PARENT));
    let tmp = tempfile::Builder::new()
        .prefix(FETCH_PREFIX)
        .tempdir_in(FETCH_PARENT)
        .map_err(|e| DeployError::Failed(format!("creating the temporary directory: {e}")))?;
    let fetched = fetch_source(spec, &checked.source, tmp.path(), known_hosts)?;
    if fetched.composer && !composer_installed() {
        return Err(DeployError::Precondition(
            "the source has a composer.json but composer is not installed on the node".into(),
        ));
    }
    let live = &spec.go_live;
    let started =
        releases::start(&live.env_root, &spec.release_name, &live.env_user).map_err(failed)?;
    let release_path = format!("{}/releases/{}", live.env_root, spec.release_name);
    if let Some(build) = started {
        let built = build_release(spec, &fetched, &build.dir).and_then(|()| {
            build
                .complete(&live.env_user, &spec.node.php_dir)
                .map_err(failed)
        });
        if let Err(e) = built {
            remove_release(&live.env_root, &spec.release_name);
            return Err(e);
        }
    }
    let went_live = switch::go_live(
        live,
        &spec.release_name,
        &[spec.current_release_name.as_str()],
        &checked.php_version,
    )
    .map_err(failed)?;
    Ok(Deployed {
        release_name: spec.release_name.clone(),
        release_path,
        source_revision: fetched.revision,
        layout: fetched.layout,
        composer: fetched.composer,
        went_live,
    })
}

/// Removes `releases/<name>` and `releases/<name>.build` (never following a link).
fn remove_release(env_root: &str, name: &str) {
    let Ok(releases) = nofollow::open_dir(Path::new(&format!("{env_root}/releases"))) else {
        return;
    };
    let dir = nofollow::fd_path(&releases);
    for n in [name.to_string(), format!("{name}.build")] {
        // std's remove_dir_all never follows a link below the directory.
        let _ = std::fs::remove_dir_all(dir.join(&n));
    }
}

fn composer_installed() -> bool {
    ["/usr/local/bin/composer", "/usr/bin/composer"]
        .iter()
        .any(|p| Path::new(p).is_file())
}

/// Fills the opened build directory as the environment's user.
fn build_release(
    spec: &ReleaseDeploySpec,
    fetched: &Fetched,
    build: &OwnedFd,
) -> Result<(), DeployError> {
    let user = &spec.go_live.env_user;
    // The source becomes the user's (no link followed): the copy then reads it as the user,
    // keeping links as links, so root never follows one.
    layout::chown_tree(&fetched.root, user)?;
    let source = nofollow::open_dir(&fetched.root)
        .map_err(|e| DeployError::Failed(format!("opening the source: {e}")))?;
    match fetched.layout {
        Layout::Full => {
            files::copy_tree(&source, user, build, user, true).map_err(failed)?;
            if fetched.composer {
                composer(user, &spec.go_live.env_root, build)?;
            }
        }
        Layout::WpContent => {
            let current = nofollow::open_dir(Path::new(&format!(
                "{}/releases/{}",
                spec.go_live.env_root, spec.current_release_name
            )))
            .map_err(|e| DeployError::Failed(format!("opening the current release: {e}")))?;
            files::copy_tree(&current, user, build, user, true).map_err(failed)?;
            as_user(user, build, REPLACE_WP_CONTENT, b"").map_err(failed)?;
            let content = nofollow::open_dir_at(build.as_fd(), "wp-content".as_ref())
                .map_err(|e| DeployError::Failed(format!("opening wp-content: {e}")))?;
            files::copy_tree(&source, user, &content, user, true).map_err(failed)?;
            if fetched.composer {
                composer(user, &spec.go_live.env_root, &content)?;
            }
        }
    }
    Ok(())
}

/// Run as the environment's user in the build directory: an empty `wp-content` for the source.
const REPLACE_WP_CONTENT: &str = "set -eu\nrm -rf -- wp-content\nmkdir wp-content\n";

/// `composer install --no-dev --no-interaction` as the user in `dir`, its home and temporary
/// files in the environment's own `tmp/` (never a shared, guessable path under /tmp).
fn composer(user: &str, env_root: &str, dir: &OwnedFd) -> Result<(), DeployError> {
    let tmp = format!("{}/tmp", env_root.trim_end_matches('/'));
    let mut command = as_user_command(user, Some(WEB_GROUP));
    command.args([
        &format!("COMPOSER_HOME={tmp}/composer"),
        &format!("TMPDIR={tmp}"),
        "COMPOSER_NO_INTERACTION=1",
        "composer",
        "install",
        "--no-dev",
        "--no-interaction",
        "--no-progress",
    ]);
    let child = spawn_in(
        command,
        dir,
        std::process::Stdio::null(),
        std::process::Stdio::null(),
        "composer",
    )
    .map_err(failed)?;
    wait_child(child, "composer install").map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sweep_removes_dead_fetches_only_and_never_follows_a_link() {
        let parent = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), "x").unwrap();
        let dead = parent.path().join(format!("{FETCH_PREFIX}abc"));
        std::fs::create_dir_all(dead.join("src/themes")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dead.join("src/escape")).unwrap();
        let other = parent.path().join("someone-else");
        std::fs::create_dir(&other).unwrap();
        let file = parent.path().join(format!("{FETCH_PREFIX}file"));
        std::fs::write(&file, "not a directory").unwrap();

        sweep_dead_fetches(parent.path());

        assert!(!dead.exists());
        assert!(other.exists() && file.exists());
        assert!(outside.path().join("keep").exists());
    }
}
