//! A deploy's `source_ref` (api.md, `source_ref` formats), parsed and checked when the request
//! arrives so that a bad one is a 400 naming the field and nothing is enqueued. The node
//! checks again what only it can see (the addresses a host resolves to, the repository and the
//! archive themselves) before anything changes.
//!
//! Beyond the formats, every part that reaches a command line on the node is refused when it
//! could read as an option (a leading `-`) or leave its place (`..` in a ref, control
//! characters, whitespace): git and tar get these values as arguments.

use crate::domain::ReleaseSourceType;
use crate::services::ServiceError;
use crate::sources;

/// How a git repository is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitTransport {
    Https,
    /// `ssh://…` or scp-like `user@host:path`: with the site's deploy key.
    Ssh,
    Git,
    /// `file:///…` on the node.
    File,
}

/// Where an archive comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadLocation {
    Http,
    /// `s3://bucket/key`, read with the backup storage's credentials.
    S3,
    /// `file:///abs` or `/abs` on the node.
    NodePath,
}

/// A parsed source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Git {
        repo: String,
        /// Branch, tag or commit; `None`: the default branch.
        git_ref: Option<String>,
        transport: GitTransport,
    },
    Upload {
        location: UploadLocation,
    },
}

impl Source {
    /// Whether the site's deploy key goes to the node with this source.
    pub fn needs_deploy_key(&self) -> bool {
        matches!(
            self,
            Source::Git {
                transport: GitTransport::Ssh,
                ..
            }
        )
    }

    /// Whether the backup storage's S3 access goes to the node with this source.
    pub fn needs_s3(&self) -> bool {
        matches!(
            self,
            Source::Upload {
                location: UploadLocation::S3
            }
        )
    }
}

/// Archive endings an `upload` source may have.
pub const ARCHIVE_ENDINGS: &[&str] = &[".tar.gz", ".tgz", ".tar.zst", ".zip"];

fn bad(message: &str) -> ServiceError {
    ServiceError::invalid("source_ref", message)
}

/// Parses `source_ref` for `source_type`; `allow_loopback`: whether a host may be a loopback
/// address (`--allow-loopback-sources`; link-local never).
pub fn parse(
    source_type: ReleaseSourceType,
    source_ref: &str,
    allow_loopback: bool,
) -> Result<Source, ServiceError> {
    if source_ref.is_empty() {
        return Err(bad("is required"));
    }
    if source_ref.len() > 2048 {
        return Err(bad("is longer than 2048 characters"));
    }
    if source_ref
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(bad("must not contain spaces or control characters"));
    }
    if source_ref.starts_with('-') {
        return Err(bad("must not start with '-'"));
    }
    match source_type {
        ReleaseSourceType::Git => parse_git(source_ref, allow_loopback),
        ReleaseSourceType::Upload => parse_upload(source_ref, allow_loopback),
    }
}

fn parse_git(source_ref: &str, allow_loopback: bool) -> Result<Source, ServiceError> {
    // `#` separates the ref; a repository URL has no fragment of its own.
    let (repo, git_ref) = match source_ref.split_once('#') {
        Some((repo, r)) => (repo, Some(r)),
        None => (source_ref, None),
    };
    if let Some(r) = git_ref {
        let plain = !r.is_empty()
            && r.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'));
        if !plain {
            return Err(bad("the ref after '#' must match [A-Za-z0-9._/-]+"));
        }
        if r.starts_with('-') || r.starts_with('/') || r.ends_with('/') || r.contains("..") {
            return Err(bad(
                "the ref after '#' must not start with '-' or '/', end with '/' or contain '..'",
            ));
        }
    }
    let transport = if let Some(path) = repo.strip_prefix("file://") {
        if !path.starts_with('/') || path.len() < 2 {
            return Err(bad(
                "a file:// repository needs an absolute path (file:///…)",
            ));
        }
        GitTransport::File
    } else if let Some((scheme, _)) = repo.split_once("://") {
        let transport = match scheme {
            "https" => GitTransport::Https,
            "ssh" => GitTransport::Ssh,
            "git" => GitTransport::Git,
            _ => {
                return Err(bad(
                    "a git repository is https://, ssh://, git://, file:///… or user@host:path",
                ))
            }
        };
        check_host(repo, allow_loopback)?;
        transport
    } else if let Some((user_host, path)) = repo.split_once(':') {
        // scp-like `user@host:path`.
        let Some((user, host)) = user_host.split_once('@') else {
            return Err(bad(
                "a git repository is https://, ssh://, git://, file:///… or user@host:path",
            ));
        };
        if user.is_empty() || host.is_empty() || path.is_empty() || host.starts_with('-') {
            return Err(bad("user@host:path needs a user, a host and a path"));
        }
        sources::check_source_host(&host.to_ascii_lowercase(), allow_loopback).map_err(bad)?;
        GitTransport::Ssh
    } else {
        return Err(bad(
            "a git repository is https://, ssh://, git://, file:///… or user@host:path",
        ));
    };
    Ok(Source::Git {
        repo: repo.to_string(),
        git_ref: git_ref.map(str::to_string),
        transport,
    })
}

fn parse_upload(source_ref: &str, allow_loopback: bool) -> Result<Source, ServiceError> {
    let lower = source_ref.to_ascii_lowercase();
    let path_part = lower.split(['?', '#']).next().unwrap_or_default();
    if !ARCHIVE_ENDINGS.iter().any(|e| path_part.ends_with(e)) {
        return Err(bad(
            "an archive must end in .tar.gz, .tgz, .tar.zst or .zip",
        ));
    }
    let location = if lower.starts_with("https://") || lower.starts_with("http://") {
        check_host(source_ref, allow_loopback)?;
        UploadLocation::Http
    } else if let Some(rest) = source_ref.strip_prefix("s3://") {
        match rest.split_once('/') {
            Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => UploadLocation::S3,
            _ => return Err(bad("an S3 archive is s3://bucket/key")),
        }
    } else if let Some(path) = source_ref.strip_prefix("file://") {
        node_path(path)?;
        UploadLocation::NodePath
    } else if source_ref.starts_with('/') {
        node_path(source_ref)?;
        UploadLocation::NodePath
    } else {
        return Err(bad(
            "an archive is https://…, http://…, s3://bucket/key, file:///… or an absolute path on the node",
        ));
    };
    Ok(Source::Upload { location })
}

fn node_path(path: &str) -> Result<(), ServiceError> {
    if !path.starts_with('/') || path.split('/').any(|part| part == "..") {
        return Err(bad("a path on the node must be absolute and without '..'"));
    }
    Ok(())
}

fn check_host(url: &str, allow_loopback: bool) -> Result<(), ServiceError> {
    let host = sources::url_host(url).ok_or_else(|| bad("the URL has no host"))?;
    sources::check_source_host(&host, allow_loopback).map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(s: &str) -> Result<Source, ServiceError> {
        parse(ReleaseSourceType::Git, s, true)
    }

    fn upload(s: &str) -> Result<Source, ServiceError> {
        parse(ReleaseSourceType::Upload, s, true)
    }

    #[test]
    fn git_sources_in_every_accepted_form() {
        let s = git("https://git.example/theme.git#v1.2").unwrap();
        assert_eq!(
            s,
            Source::Git {
                repo: "https://git.example/theme.git".into(),
                git_ref: Some("v1.2".into()),
                transport: GitTransport::Https
            }
        );
        assert!(git("ssh://git@127.0.0.1/srv/theme.git#main")
            .unwrap()
            .needs_deploy_key());
        assert!(git("git@git.example:agency/theme.git")
            .unwrap()
            .needs_deploy_key());
        assert!(matches!(
            git("file:///srv/repos/theme.git#feature/x").unwrap(),
            Source::Git {
                transport: GitTransport::File,
                ..
            }
        ));
        assert!(git("git://git.example/theme.git").is_ok());
    }

    #[test]
    fn bad_git_sources_name_the_field() {
        for s in [
            "",
            "ftp://x/y.git",
            "theme.git",
            "file://relative",
            "https://x/y.git#",
            "https://x/y.git#--upload-pack=touch",
            "https://x/y.git#a..b",
            "https://x/y.git#a b",
            "https://x/y.git#$(id)",
            "-oProxyCommand=x:y",
            "git@-oProxyCommand=x:y",
            "https://169.254.169.254/x.git",
        ] {
            let e = git(s).unwrap_err();
            assert_eq!(e.field(), Some("source_ref"), "{s}");
        }
        let e = parse(ReleaseSourceType::Git, "https://127.0.0.1/x.git", false).unwrap_err();
        assert_eq!(e.field(), Some("source_ref"));
    }

    #[test]
    fn upload_sources_in_every_accepted_form() {
        for (s, loc) in [
            ("https://cdn.example/theme.tar.gz", UploadLocation::Http),
            ("http://127.0.0.1:8000/t.zip?sig=1", UploadLocation::Http),
            ("s3://bucket/releases/t.tgz", UploadLocation::S3),
            ("file:///srv/t.tar.zst", UploadLocation::NodePath),
            ("/srv/t.tar.gz", UploadLocation::NodePath),
        ] {
            assert_eq!(upload(s).unwrap(), Source::Upload { location: loc }, "{s}");
        }
        assert!(upload("s3://bucket/t.tgz").unwrap().needs_s3());
    }

    #[test]
    fn bad_upload_sources_name_the_field() {
        for s in [
            "https://x/theme.rar",
            "relative/t.tar.gz",
            "/srv/../etc/t.tar.gz",
            "s3://bucket",
            "s3:///t.zip",
            "ftp://x/t.zip",
            "https://[fe80::1]/t.zip",
        ] {
            assert_eq!(upload(s).unwrap_err().field(), Some("source_ref"), "{s}");
        }
    }
}
