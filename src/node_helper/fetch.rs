//! Fetching WordPress into a release being built, from the source the control plane fixed for
//! the job (src/sources.rs): `dir:/path` on the node (links in the operator's directory
//! followed, as `cp -L` did) or an `http(s)://` archive (its host resolved on the node and
//! refused when an address is link-local, or loopback unless allowed; no redirects; the
//! SHA-256 checked when given; the credentials in the URL never on a command line). Root only
//! reads the source; the release is written by the environment's user.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::net::ToSocketAddrs;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Stdio;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use super::files;
use super::process::{as_user_command, spawn_in, wait_child};
use super::users::WEB_GROUP;
use crate::sources;

/// Fetches `source` into the opened build directory `build` as `user`.
pub fn fetch(
    source: &str,
    sha256: &str,
    allow_loopback: bool,
    build: &OwnedFd,
    user: &str,
) -> anyhow::Result<()> {
    if let Some(dir) = source.strip_prefix("dir:") {
        from_directory(dir, build, user)
    } else if source.starts_with("http://") || source.starts_with("https://") {
        let archive = download(source, sha256, allow_loopback)?;
        unpack(archive, source, build, user)
    } else {
        bail!("unsupported source (dir:/… or http(s)://… only)")
    }
}

fn from_directory(dir: &str, build: &OwnedFd, user: &str) -> anyhow::Result<()> {
    if !std::path::Path::new(&format!("{dir}/wp-includes/version.php")).exists() {
        bail!(
            "The WordPress source directory {dir} does not contain WordPress (no wp-includes/version.php)."
        );
    }
    let source: OwnedFd = File::open(dir)
        .with_context(|| format!("opening {dir}"))?
        .into();
    // Read as root with links dereferenced (the operator's directory), written as the user.
    files::copy_tree_from_root(&source, build, user).with_context(|| format!("copying {dir}"))
}

/// The archive's host resolved on the node: every address must be allowed.
pub fn check_resolved(source: &str, allow_loopback: bool) -> anyhow::Result<()> {
    let host = sources::url_host(source).context("the source URL has no host")?;
    let Ok(addresses) = (host.as_str(), 0).to_socket_addrs() else {
        return Ok(()); // an unknown host is the download's error to report
    };
    let refused: Vec<String> = addresses
        .map(|a| a.ip())
        .filter(|ip| sources::is_link_local(*ip) || (!allow_loopback && sources::is_loopback(*ip)))
        .map(|ip| ip.to_string())
        .collect();
    if !refused.is_empty() {
        bail!(
            "The archive's host {host} resolves to {}: link-local addresses are never allowed, \
             loopback addresses only when the control plane runs with --allow-loopback-sources.",
            refused.join(", ")
        );
    }
    Ok(())
}

/// The archive at `source`, downloaded into root's own temporary file and checked.
pub fn download(source: &str, sha256: &str, allow_loopback: bool) -> anyhow::Result<File> {
    check_resolved(source, allow_loopback)?;
    // Root's own temporary file (0600), outside the environment's tree.
    let mut archive = tempfile::tempfile_in("/var/tmp").context("creating the download file")?;
    // The URL goes to curl through its configuration on stdin, never through argv.
    let mut curl = std::process::Command::new("curl")
        .args([
            "--config",
            "-",
            "--fail",
            "--silent",
            "--show-error",
            "--max-redirs",
            "0",
            "--proto",
            "=http,https",
            "--max-time",
            "60",
        ])
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::from(archive.try_clone()?))
        .stderr(Stdio::piped())
        .spawn()
        .context("starting curl")?;
    let config = format!(
        "url = \"{}\"\n",
        source.replace('\\', "\\\\").replace('"', "\\\"")
    );
    curl.stdin
        .take()
        .context("curl stdin")?
        .write_all(config.as_bytes())?;
    wait_child(curl, "the download")
        .map_err(|e| anyhow::anyhow!("{}", sources::redact_userinfo(&format!("{e:#}"))))?;
    archive.rewind()?;
    if !sha256.is_empty() {
        let mut hasher = Sha256::new();
        std::io::copy(&mut archive, &mut hasher)?;
        let found = hex::encode(hasher.finalize());
        if !found.eq_ignore_ascii_case(sha256) {
            bail!("the archive's SHA-256 is {found}, not the expected {sha256}");
        }
        archive.rewind()?;
    }
    Ok(archive)
}

/// Unpacks the archive (its top directory stripped) into `build` as `user`.
fn unpack(mut archive: File, source: &str, build: &OwnedFd, user: &str) -> anyhow::Result<()> {
    let mut magic = [0u8; 6];
    let n = archive.read(&mut magic)?;
    archive.rewind()?;
    let compression = match &magic[..n] {
        [0x1f, 0x8b, ..] => Some("--gzip"),
        [b'B', b'Z', b'h', ..] => Some("--bzip2"),
        [0xfd, b'7', b'z', b'X', b'Z', 0] => Some("--xz"),
        _ => None,
    };
    let mut command = as_user_command(user, Some(WEB_GROUP));
    command.args([
        "tar",
        "--extract",
        "--file=-",
        "--strip-components=1",
        "--no-same-owner",
    ]);
    command.args(compression);
    let tar = spawn_in(command, build, Stdio::from(archive), Stdio::null(), "tar")?;
    wait_child(tar, "unpacking the archive")?;
    let has_wordpress = super::nofollow::has_file(build.as_fd(), "wp-includes/version.php")?;
    if !has_wordpress {
        bail!(
            "The archive {} does not contain WordPress (no wp-includes/version.php under its top directory).",
            sources::redact_userinfo(source)
        );
    }
    Ok(())
}
