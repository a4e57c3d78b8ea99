//! The fetching, unpacking and validating of `pressluft node release-deploy`
//! (src/node_helper/deploy/) against real git repositories and real archives in temporary
//! directories: branches, tags and commits over `file://`, a missing ref, the three archive
//! formats, hostile archives, the two source layouts, and credentials kept out of errors.
//! Nothing here touches an environment (the whole command runs in the e2e flow,
//! tests/api/e2e_deploys.rs).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use pressluft::deploys::source::GitTransport;
use pressluft::node_helper::deploy::{archive, git, layout, DeployError, Layout};

fn run_git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.invalid",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A repository with `main` (two commits, tag `v1` on the first) and a branch `feature`.
struct TestRepo {
    _dir: tempfile::TempDir,
    path: PathBuf,
    first: String,
    main: String,
    feature: String,
}

fn test_repo() -> TestRepo {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("theme.git");
    std::fs::create_dir(&path).unwrap();
    run_git(&path, &["init", "--quiet"]);
    std::fs::create_dir_all(path.join("themes/t")).unwrap();
    std::fs::write(path.join("themes/t/style.css"), "/* v1 */").unwrap();
    run_git(&path, &["add", "."]);
    run_git(&path, &["commit", "--quiet", "-m", "one"]);
    let first = run_git(&path, &["rev-parse", "HEAD"]);
    run_git(&path, &["tag", "v1"]);
    std::fs::write(path.join("themes/t/style.css"), "/* v2 */").unwrap();
    run_git(&path, &["commit", "--quiet", "-am", "two"]);
    let main = run_git(&path, &["rev-parse", "HEAD"]);
    run_git(&path, &["checkout", "--quiet", "-b", "feature"]);
    std::fs::write(path.join("themes/t/feature.txt"), "feature").unwrap();
    run_git(&path, &["add", "."]);
    run_git(&path, &["commit", "--quiet", "-m", "feature"]);
    let feature = run_git(&path, &["rev-parse", "HEAD"]);
    run_git(&path, &["checkout", "--quiet", "main"]);
    TestRepo {
        _dir: dir,
        path,
        first,
        main,
        feature,
    }
}

fn fetch_git(
    url: &str,
    git_ref: Option<&str>,
    transport: GitTransport,
) -> (Result<String, DeployError>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let known = tmp.path().join("known_hosts");
    let result = git::fetch(
        &git::Repo {
            url,
            git_ref,
            transport,
            ssh_key: None,
            known_hosts: &known,
        },
        &tmp.path().join("src"),
        tmp.path(),
    );
    (result, tmp)
}

#[test]
fn git_branches_tags_and_commits_over_file_urls() {
    let repo = test_repo();
    let url = format!("file://{}", repo.path.display());
    let style = |tmp: &tempfile::TempDir| {
        std::fs::read_to_string(tmp.path().join("src/themes/t/style.css")).unwrap()
    };

    let (sha, tmp) = fetch_git(&url, None, GitTransport::File);
    assert_eq!(sha.unwrap(), repo.main, "the default branch");
    assert_eq!(style(&tmp), "/* v2 */");
    assert!(!tmp.path().join("src/.git").exists(), ".git is removed");

    let (sha, tmp) = fetch_git(&url, Some("feature"), GitTransport::File);
    assert_eq!(sha.unwrap(), repo.feature);
    assert!(tmp.path().join("src/themes/t/feature.txt").exists());

    let (sha, tmp) = fetch_git(&url, Some("v1"), GitTransport::File);
    assert_eq!(sha.unwrap(), repo.first, "a tag");
    assert_eq!(style(&tmp), "/* v1 */");

    let (sha, tmp) = fetch_git(&url, Some(&repo.first), GitTransport::File);
    assert_eq!(sha.unwrap(), repo.first, "a full commit id");
    assert_eq!(style(&tmp), "/* v1 */");

    let (sha, _tmp) = fetch_git(&url, Some(&repo.first[..10]), GitTransport::File);
    assert_eq!(sha.unwrap(), repo.first, "an abbreviated commit id");
}

#[test]
fn a_missing_ref_or_repository_is_a_source_fetch_failure() {
    let repo = test_repo();
    let url = format!("file://{}", repo.path.display());
    for missing in ["no-such-branch", "deadbeefdeadbeef"] {
        let (result, _tmp) = fetch_git(&url, Some(missing), GitTransport::File);
        match result {
            Err(DeployError::SourceFetch(m)) => {
                assert!(m.contains(missing) && m.contains("not found"), "{m}")
            }
            other => panic!("{missing}: {other:?}"),
        }
    }
    let (result, _tmp) = fetch_git("file:///nonexistent/repo.git", None, GitTransport::File);
    assert!(
        matches!(result, Err(DeployError::SourceFetch(_))),
        "{result:?}"
    );
}

#[test]
fn repository_hooks_never_run() {
    let repo = test_repo();
    let marker = repo.path.join("hook-ran");
    let hook = repo.path.join(".git/hooks/post-checkout");
    std::fs::write(&hook, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    Command::new("chmod")
        .args(["755"])
        .arg(&hook)
        .status()
        .unwrap();
    let url = format!("file://{}", repo.path.display());
    let (sha, _tmp) = fetch_git(&url, Some("main"), GitTransport::File);
    sha.unwrap();
    assert!(!marker.exists());
}

#[test]
fn credentials_never_appear_in_an_error() {
    // Nothing listens on port 1: the fetch fails; the password stays out of the message.
    let (result, _tmp) = fetch_git(
        "https://deployer:s3cretPassw0rd@127.0.0.1:1/theme.git",
        Some("main"),
        GitTransport::Https,
    );
    match result {
        Err(DeployError::SourceFetch(m)) => {
            assert!(!m.contains("s3cretPassw0rd"), "{m}");
            assert!(!m.contains("deployer:"), "{m}");
        }
        other => panic!("{other:?}"),
    }
}

/// One raw tar entry: name bytes written as they are (no checks of the tar crate's own).
struct Entry<'a> {
    name: &'a str,
    kind: tar::EntryType,
    link: &'a str,
    data: &'a [u8],
}

fn file<'a>(name: &'a str, data: &'a [u8]) -> Entry<'a> {
    Entry {
        name,
        kind: tar::EntryType::Regular,
        link: "",
        data,
    }
}

fn raw_tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for e in entries {
        let mut header = tar::Header::new_old();
        {
            let old = header.as_old_mut();
            old.name[..e.name.len()].copy_from_slice(e.name.as_bytes());
            old.linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
        }
        header.set_entry_type(e.kind);
        header.set_mode(0o644);
        header.set_size(e.data.len() as u64);
        header.set_cksum();
        builder.append(&header, e.data).unwrap();
    }
    builder.into_inner().unwrap()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn unpack(bytes: &[u8]) -> (Result<PathBuf, DeployError>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("archive");
    std::fs::write(&path, bytes).unwrap();
    let into = tmp.path().join("src");
    std::fs::create_dir(&into).unwrap();
    let result = archive::unpack(std::fs::File::open(&path).unwrap(), &into);
    (result, tmp)
}

fn wp_content_tar() -> Vec<u8> {
    raw_tar(&[
        Entry {
            name: "site/",
            kind: tar::EntryType::Directory,
            link: "",
            data: b"",
        },
        file("site/themes/t/style.css", b"/* theme */"),
        file("site/uploads/secret.txt", b"x"),
        file("site/wp-config.php", b"<?php"),
        Entry {
            name: "site/themes/t/alias.css",
            kind: tar::EntryType::Symlink,
            link: "style.css",
            data: b"",
        },
    ])
}

#[test]
fn tar_gz_tar_zst_and_zip_unpack_with_the_top_directory_stripped() {
    let tar = wp_content_tar();
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    let mut zip_bytes = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut zip_bytes);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.add_directory("site/", options).unwrap();
        zip.start_file("site/themes/t/style.css", options).unwrap();
        zip.write_all(b"/* theme */").unwrap();
        zip.start_file("site/uploads/secret.txt", options).unwrap();
        zip.write_all(b"x").unwrap();
        zip.finish().unwrap();
    }
    for (what, bytes) in [
        ("tar.gz", gz(&tar)),
        ("tar.zst", zst),
        ("zip", zip_bytes.into_inner()),
    ] {
        let (root, _tmp) = unpack(&bytes);
        let root = root.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(root.ends_with("site"), "{what}: {root:?}");
        assert_eq!(
            std::fs::read_to_string(root.join("themes/t/style.css")).unwrap(),
            "/* theme */",
            "{what}"
        );
        assert_eq!(layout::prepare(&root).unwrap(), Layout::WpContent, "{what}");
        assert!(!root.join("uploads").exists(), "{what}: uploads dropped");
        assert!(!root.join("wp-config.php").exists(), "{what}");
    }
}

#[test]
fn hostile_archives_are_refused() {
    let dev = Entry {
        name: "site/null",
        kind: tar::EntryType::Char,
        link: "",
        data: b"",
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("dotdot", gz(&raw_tar(&[file("site/../../x", b"x")]))),
        (
            "absolute",
            gz(&raw_tar(&[file("/tmp/pressluft-absolute", b"x")])),
        ),
        (
            "link out",
            gz(&raw_tar(&[Entry {
                name: "site/etc",
                kind: tar::EntryType::Symlink,
                link: "../../etc",
                data: b"",
            }])),
        ),
        (
            "absolute link",
            gz(&raw_tar(&[Entry {
                name: "site/etc",
                kind: tar::EntryType::Symlink,
                link: "/etc",
                data: b"",
            }])),
        ),
        (
            "through a link",
            gz(&raw_tar(&[
                Entry {
                    name: "site/d",
                    kind: tar::EntryType::Symlink,
                    link: ".",
                    data: b"",
                },
                file("site/d/x", b"x"),
            ])),
        ),
        (
            "hard link",
            gz(&raw_tar(&[
                file("site/a", b"x"),
                Entry {
                    name: "site/b",
                    kind: tar::EntryType::Link,
                    link: "/etc/shadow",
                    data: b"",
                },
            ])),
        ),
        ("device", gz(&raw_tar(&[dev]))),
        ("not an archive", b"hello world".to_vec()),
        ("empty", Vec::new()),
        ("empty tar", gz(&raw_tar(&[]))),
    ];
    for (what, bytes) in cases {
        let (result, tmp) = unpack(&bytes);
        match result {
            Err(DeployError::ArchiveInvalid(m)) => eprintln!("{what}: {m}"),
            other => panic!("{what}: {other:?}"),
        }
        assert!(!Path::new("/tmp/pressluft-absolute").exists());
        assert!(!tmp.path().join("x").exists(), "{what}");
    }
    // A zip entry with '..'.
    let mut zip_bytes = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut zip_bytes);
        zip.start_file("../evil.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(b"x").unwrap();
        zip.finish().unwrap();
    }
    let (result, _tmp) = unpack(&zip_bytes.into_inner());
    assert!(
        matches!(result, Err(DeployError::ArchiveInvalid(_))),
        "{result:?}"
    );
}

#[test]
fn links_inside_the_archive_are_kept() {
    assert!(archive::link_stays_inside(
        Path::new("a/b/l"),
        Path::new("../c")
    ));
    assert!(archive::link_stays_inside(
        Path::new("a/l"),
        Path::new("../c")
    ));
    assert!(!archive::link_stays_inside(
        Path::new("l"),
        Path::new("../c")
    ));
    assert!(!archive::link_stays_inside(
        Path::new("a/l"),
        Path::new("/etc")
    ));
    let (root, _tmp) = unpack(&gz(&wp_content_tar()));
    let root = root.unwrap();
    assert_eq!(
        std::fs::read_link(root.join("themes/t/alias.css")).unwrap(),
        Path::new("style.css")
    );
}

#[test]
fn full_trees_and_wp_content_sources_are_told_apart() {
    let full = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(full.path().join("wp-includes")).unwrap();
    std::fs::write(full.path().join("wp-includes/version.php"), "<?php").unwrap();
    std::fs::create_dir_all(full.path().join("wp-content/uploads")).unwrap();
    std::fs::write(full.path().join("wp-config.php"), "<?php").unwrap();
    assert_eq!(layout::prepare(full.path()).unwrap(), Layout::Full);
    assert!(!full.path().join("wp-content/uploads").exists());
    assert!(!full.path().join("wp-config.php").exists());

    let content = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(content.path().join("plugins/p")).unwrap();
    assert_eq!(layout::prepare(content.path()).unwrap(), Layout::WpContent);

    // A link named wp-includes does not make a full tree; nothing usable is ARCHIVE_INVALID.
    let neither = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        full.path().join("wp-includes"),
        neither.path().join("wp-includes"),
    )
    .unwrap();
    std::fs::write(neither.path().join("README"), "hi").unwrap();
    match layout::prepare(neither.path()) {
        Err(DeployError::ArchiveInvalid(m)) => assert!(m.contains("wp-content"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_lone_themes_directory_is_not_stripped() {
    let tar = raw_tar(&[file("themes/t/style.css", b"/* t */")]);
    let (root, tmp) = unpack(&gz(&tar));
    let root = root.unwrap();
    assert_eq!(root, tmp.path().join("src"));
    assert_eq!(layout::prepare(&root).unwrap(), Layout::WpContent);
}
