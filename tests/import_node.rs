//! The archive side of `pressluft node site-import` (src/node_helper/import.rs) against real
//! `.tar.gz` and `.zip` archives in temporary directories: an import archive unpacks (with or
//! without a top directory) and validates; hostile ones — `..`, absolute paths, a link out of
//! the archive, a link from `files/` to `db.sql`, `db.sql` as a link — are refused as
//! `ARCHIVE_INVALID` before anything else runs. Nothing here touches an environment (the whole
//! command runs in the e2e flow, tests/api/e2e_import.rs).

use std::io::Write;
use std::path::PathBuf;

use pressluft::node_helper::deploy::{archive, DeployError};
use pressluft::node_helper::import::{detect_prefix, validate};

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

fn link<'a>(name: &'a str, target: &'a str) -> Entry<'a> {
    Entry {
        name,
        kind: tar::EntryType::Symlink,
        link: target,
        data: b"",
    }
}

fn tar_gz(entries: &[Entry<'_>]) -> Vec<u8> {
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
    let tar = builder.into_inner().unwrap();
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&tar).unwrap();
    enc.finish().unwrap()
}

fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut bytes = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut bytes);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, data) in files {
            zip.start_file(*name, options).unwrap();
            zip.write_all(data).unwrap();
        }
        zip.finish().unwrap();
    }
    bytes.into_inner()
}

/// Unpacks `bytes` and validates the result, as `site-import` does.
fn unpack_and_validate(bytes: &[u8]) -> (Result<PathBuf, DeployError>, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("archive");
    std::fs::write(&path, bytes).unwrap();
    let into = tmp.path().join("src");
    std::fs::create_dir(&into).unwrap();
    let result = archive::unpack(std::fs::File::open(&path).unwrap(), &into)
        .and_then(|root| validate(&root).map(|v| v.files));
    (result, tmp)
}

const DB: &[u8] = b"CREATE TABLE `wpx_options` (option_name varchar(191));\n";

#[test]
fn tar_gz_and_zip_import_archives_validate() {
    let tgz = tar_gz(&[
        file("export/db.sql", DB),
        file("export/files/themes/t/style.css", b"/* t */"),
        file("export/files/uploads/2024/01/a.txt", b"a"),
        link("export/files/themes/t/alias.css", "style.css"),
        file(
            "export/meta.json",
            br#"{"source_url": "https://old.example/"}"#,
        ),
    ]);
    let zip = zip_of(&[
        ("db.sql", DB),
        ("files/themes/t/style.css", b"/* t */"),
        ("files/uploads/2024/01/a.txt", b"a"),
    ]);
    for (what, bytes) in [("tar.gz", tgz), ("zip", zip)] {
        let (files, _tmp) = unpack_and_validate(&bytes);
        let files = files.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(files.join("themes/t/style.css").is_file(), "{what}");
        assert!(files.join("uploads/2024/01/a.txt").is_file(), "{what}");
    }
}

#[test]
fn hostile_or_incomplete_import_archives_are_archive_invalid() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("no db.sql", zip_of(&[("files/themes/t/style.css", b"x")])),
        ("no files/", zip_of(&[("db.sql", DB)])),
        (
            "empty db.sql",
            zip_of(&[("db.sql", b""), ("files/x", b"x")]),
        ),
        (
            "dotdot",
            tar_gz(&[file("db.sql", DB), file("files/../../x", b"x")]),
        ),
        (
            "absolute",
            tar_gz(&[file("db.sql", DB), file("/tmp/pl-import-abs", b"x")]),
        ),
        (
            "link out of the archive",
            tar_gz(&[file("db.sql", DB), link("files/passwd", "/etc/passwd")]),
        ),
        (
            "link from files/ to db.sql",
            tar_gz(&[
                file("db.sql", DB),
                file("files/themes/t/style.css", b"x"),
                link("files/themes/t/db.css", "../../../db.sql"),
            ]),
        ),
        (
            "db.sql as a link",
            tar_gz(&[
                file("real.sql", DB),
                link("db.sql", "real.sql"),
                file("files/x", b"x"),
            ]),
        ),
        ("not an archive", b"just text, no archive".to_vec()),
    ];
    for (what, bytes) in cases {
        let (result, _tmp) = unpack_and_validate(&bytes);
        assert!(
            matches!(result, Err(DeployError::ArchiveInvalid(_))),
            "{what}: {result:?}"
        );
    }
    assert!(!std::path::Path::new("/tmp/pl-import-abs").exists());
}

#[test]
fn the_prefix_comes_from_the_options_table() {
    let tables: Vec<String> = [
        "wpx_commentmeta",
        "wpx_options",
        "wpx_posts",
        "wpx_wc_orders",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(detect_prefix(&tables).as_deref(), Some("wpx_"));
}
