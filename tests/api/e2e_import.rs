//! `site_import` for real on this machine (called from `e2e_sites.rs` with the site the browser
//! created), through `POST /api/sites/{id}/import`, the health gate and the dashboard.
//!
//! The archive is made from ANOTHER WordPress: the database of a real install on this node
//! (the browser site's production, dumped) moved to another URL
//! (`https://old-shop.example.test`, through the serialized-safe rewrite) and another table
//! prefix (`wpx_`), plus a serialized option and a nested serialized value holding the old
//! URL, a post with JSON-escaped URLs, WooCommerce-style rows (`wpx_wc_orders`, `_billing_*`
//! post meta), and `files/` with a theme (made active in the imported options) and uploads.
//!
//! Checked: the import serves at the preview URL with its theme, no old URL is left anywhere
//! in the database, serialized values unserialize with the new URL, the JSON-escaped form is
//! rewritten, `wpx_` is in `wp-config.php`, the WooCommerce rows are intact, the uploads are
//! `shared/uploads`; an archive without `db.sql` (a `.zip`) fails with `ARCHIVE_INVALID` and
//! changes nothing (same release, same database checksum); an archive whose theme fatals is
//! rolled back (previous release serving, its database back); last, the dashboard imports an
//! uploaded archive and the job succeeds.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{finished, gate_ended, post_job, run, run_with_stdin, wait_for_job, TestApp};

const WORK: &str = "/var/tmp/pressluft-e2e-import";
const OLD: &str = "https://old-shop.example.test";
const THEME: &str = "pl-import-theme";

fn sql(query: &str) -> String {
    run("mysql", &["--batch", "--skip-column-names", "-e", query])
        .trim()
        .to_string()
}

/// A PHP serialized string.
fn ser(s: &str) -> String {
    format!("s:{}:\"{}\";", s.len(), s)
}

/// `s` as an SQL string literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn page(host: &str) -> (String, String) {
    let out = Command::new("curl")
        .args([
            "--silent",
            "--max-time",
            "30",
            "--write-out",
            "\n%{http_code}",
            "--resolve",
            &format!("{host}:80:127.0.0.1"),
            &format!("http://{host}/?pl-import={}", uuid::Uuid::new_v4().simple()),
        ])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (code.to_string(), body.to_string())
}

fn current(env_root: &str) -> String {
    std::fs::read_link(format!("{env_root}/current"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

/// The database's checksum: every table's `CHECKSUM TABLE`, sorted.
fn db_checksum(db: &str) -> String {
    let tables = sql(&format!(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' ORDER BY 1"
    ));
    let list: Vec<String> = tables.lines().map(|t| format!("`{db}`.`{t}`")).collect();
    sql(&format!("CHECKSUM TABLE {}", list.join(", ")))
}

/// The theme of the imported site: prints `marker` and WordPress's home URL.
fn write_theme(files: &Path, marker: &str, fatal: bool) {
    let theme = files.join("themes").join(THEME);
    std::fs::create_dir_all(&theme).unwrap();
    std::fs::write(
        theme.join("style.css"),
        "/*\nTheme Name: Pressluft Import E2E\nVersion: 1.0\n*/\n",
    )
    .unwrap();
    std::fs::write(
        theme.join("index.php"),
        format!("<?php\necho '<html><body>{marker} home=' . home_url('/') . '</body></html>';\n"),
    )
    .unwrap();
    if fatal {
        std::fs::write(
            theme.join("functions.php"),
            "<?php\npl_import_this_function_does_not_exist();\n",
        )
        .unwrap();
    }
}

/// db.sql of "another WordPress": the real install in `source_db` (prefix `wp_`, URL
/// `source_url`) moved to `OLD` and `wpx_`, with the extra rows of the module doc.
fn another_wordpress(source_db: &str, source_url: &str, extra_option: &str) -> String {
    let dump = run(
        "mysqldump",
        &["--skip-comments", "--single-transaction", source_db],
    );
    let moved = run_with_stdin(
        "/usr/local/bin/pressluft",
        &["node", "search-replace", "--from", source_url, "--to", OLD],
        &dump,
    );
    let mut sql = moved
        .replace("`wp_", "`wpx_")
        .replace("'wp_user_roles'", "'wpx_user_roles'")
        .replace("'wp_capabilities'", "'wpx_capabilities'")
        .replace("'wp_user_level'", "'wpx_user_level'");
    let inner = format!(
        "a:1:{{{}{}}}",
        ser("logo"),
        ser(&format!("{OLD}/wp-content/uploads/logo.png"))
    );
    let serialized = format!(
        "a:3:{{{}{}{}{}{}i:42;}}",
        ser("url"),
        ser(&format!("{OLD}/shop/")),
        ser("nested"),
        ser(&inner),
        ser("count")
    );
    let json_content = format!(
        "<!-- wp:image {{\"url\":\"{}\\/wp-content\\/uploads\\/2024\\/01\\/pl.png\"}} /-->",
        OLD.replace('/', "\\/")
    );
    sql.push_str(&format!(
        "\nINSERT INTO `wpx_options` (option_name, option_value, autoload) VALUES \
         ('pl_import_serialized', {}, 'no'), ({}, 'yes', 'no');\n\
         UPDATE `wpx_options` SET option_value = '{THEME}' WHERE option_name IN ('template', 'stylesheet');\n\
         INSERT INTO `wpx_posts` (post_author, post_date, post_date_gmt, post_content, post_title, \
         post_excerpt, post_status, comment_status, ping_status, post_name, to_ping, pinged, \
         post_modified, post_modified_gmt, post_content_filtered, guid, post_type) VALUES \
         (1, NOW(), NOW(), {}, 'PL import JSON', '', 'publish', 'open', 'open', 'pl-import-json', \
         '', '', NOW(), NOW(), '', '{OLD}/?p=9999', 'post');\n\
         CREATE TABLE `wpx_wc_orders` (id bigint unsigned NOT NULL PRIMARY KEY, status varchar(20), \
         billing_email varchar(320), customer_note text) DEFAULT CHARSET=utf8mb4;\n\
         INSERT INTO `wpx_wc_orders` VALUES (1, 'wc-completed', 'buyer@example.test', 'deliver to {OLD}/track');\n\
         INSERT INTO `wpx_postmeta` (post_id, meta_key, meta_value) VALUES \
         (1, '_billing_first_name', 'Ada'), (1, '_billing_email', 'buyer@example.test'), \
         (1, '_billing_address_index', 'Ada Lovelace 1 Main St buyer@example.test');\n",
        lit(&serialized),
        lit(extra_option),
        lit(&json_content),
    ));
    sql
}

/// A `.tar.gz` of `dir`'s contents at `out`.
fn tar_gz(dir: &Path, out: &Path) {
    run(
        "tar",
        &[
            "-czf",
            out.to_str().unwrap(),
            "-C",
            dir.to_str().unwrap(),
            ".",
        ],
    );
}

/// An archive tree in `WORK/<name>`: db.sql (unless `None`), files/ with the theme and an
/// upload.
fn archive_tree(name: &str, db_sql: Option<&str>, marker: &str, fatal: bool) -> std::path::PathBuf {
    let dir = Path::new(WORK).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let files = dir.join("files");
    write_theme(&files, marker, fatal);
    let uploads = files.join("uploads/2024/01");
    std::fs::create_dir_all(&uploads).unwrap();
    std::fs::write(uploads.join("pl-import.txt"), marker).unwrap();
    if let Some(db) = db_sql {
        std::fs::write(dir.join("db.sql"), db).unwrap();
    }
    dir
}

async fn import(app: &TestApp, site_id: &str, url: &str) -> String {
    app.clock.advance(time::Duration::seconds(1));
    post_job(
        app,
        &format!("/api/sites/{site_id}/import"),
        json!({ "archive_url": url }),
    )
    .await
}

pub async fn imports(app: &TestApp, site_id: &str) {
    let (_, envs) = app
        .get_json(&format!("/api/sites/{site_id}/environments"))
        .await;
    let prod = envs
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["environment_type"] == "production")
        .expect("a production environment")
        .clone();
    let env_id = prod["id"].as_str().unwrap();
    let preview = prod["preview_url"].as_str().unwrap().trim_end_matches('/');
    let host = pressluft::sites::layout::url_host(preview).to_string();
    let env_root = format!("/var/www/sites/{site_id}/{env_id}");
    let db = format!("wp_{}", &env_id[..8]);
    let _ = std::fs::remove_dir_all(WORK);
    std::fs::create_dir_all(WORK).unwrap();

    // (1) A good import from a node path, the source URL read from the imported `home`.
    let source_sql = another_wordpress(&db, preview, "pl_import_good");
    let tree = archive_tree("good", Some(&source_sql), "PL-E2E-IMPORT-1", false);
    let good = Path::new(WORK).join("good.tar.gz");
    tar_gz(&tree, &good);
    let before = current(&env_root);
    let job = import(app, site_id, good.to_str().unwrap()).await;
    let (gate, rollback) = gate_ended(app, &job).await;
    assert!(rollback.is_none(), "the import passed its gate: {gate}");
    let (_, done) = app.get_json(&format!("/api/jobs/{job}")).await;
    assert_eq!(done["job_type"], "site_import");
    assert_ne!(current(&env_root), before, "a new release is live");
    let (code, body) = page(&host);
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("PL-E2E-IMPORT-1"), "{body}");
    assert!(
        body.contains(&format!("home={preview}/")),
        "home rewritten: {body}"
    );
    let dump = run("mysqldump", &["--skip-comments", &db]);
    assert!(
        !dump.contains("old-shop.example.test"),
        "an old URL is left in the database"
    );
    assert!(!dump.contains("`wp_"), "only the imported tables are left");
    let config = std::fs::read_to_string(format!("{env_root}/shared/wp-config.php")).unwrap();
    assert!(
        config.contains("$table_prefix = 'wpx_';"),
        "the prefix is in wp-config.php"
    );
    // Serialized values intact, with the new URL (PHP's own unserialize).
    let value = sql(&format!(
        "SELECT option_value FROM {db}.wpx_options WHERE option_name = 'pl_import_serialized'"
    ));
    let php = run_with_stdin(
        "php",
        &["-r", "$v = unserialize(stream_get_contents(STDIN)); if ($v === false) exit(1); $n = unserialize($v['nested']); if ($n === false) exit(2); echo json_encode([$v, $n]);"],
        &value,
    );
    let parsed: Value = serde_json::from_str(&php).unwrap();
    assert_eq!(parsed[0]["url"], format!("{preview}/shop/"), "{parsed}");
    assert_eq!(parsed[0]["count"], 42, "{parsed}");
    assert_eq!(
        parsed[1]["logo"],
        format!("{preview}/wp-content/uploads/logo.png"),
        "{parsed}"
    );
    let content = sql(&format!(
        "SELECT post_content FROM {db}.wpx_posts WHERE post_name = 'pl-import-json'"
    ));
    assert!(
        content.contains(&preview.replace('/', "\\\\/"))
            || content.contains(&preview.replace('/', "\\/")),
        "the JSON-escaped URL is rewritten: {content}"
    );
    assert_eq!(
        sql(&format!(
            "SELECT billing_email, status FROM {db}.wpx_wc_orders"
        )),
        "buyer@example.test\twc-completed"
    );
    assert_eq!(
        sql(&format!(
            "SELECT COUNT(*) FROM {db}.wpx_postmeta WHERE meta_key LIKE '\\_billing\\_%'"
        )),
        "3"
    );
    assert_eq!(
        std::fs::read_to_string(format!("{env_root}/shared/uploads/2024/01/pl-import.txt"))
            .unwrap(),
        "PL-E2E-IMPORT-1"
    );
    let (_, releases) = app
        .get_json(&format!("/api/environments/{env_id}/releases"))
        .await;
    assert_eq!(releases[0]["health_status"], "healthy", "{releases}");
    assert!(
        releases[0]["notes"]
            .as_str()
            .unwrap_or_default()
            .contains("wpx_"),
        "{releases}"
    );

    // (2) A broken archive (a .zip without db.sql): ARCHIVE_INVALID, nothing changed.
    let live = current(&env_root);
    let checksum = db_checksum(&db);
    let broken = Path::new(WORK).join("broken.zip");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&broken).unwrap());
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("files/themes/x/style.css", options).unwrap();
        zip.write_all(b"/* x */").unwrap();
        zip.finish().unwrap();
    }
    let job = import(app, site_id, &format!("file://{}", broken.display())).await;
    let failed = wait_for_job(app, &job, Duration::from_secs(600)).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error_code"], "ARCHIVE_INVALID", "{failed}");
    assert!(
        failed["error_message"]
            .as_str()
            .unwrap_or_default()
            .contains("db.sql"),
        "{failed}"
    );
    assert_eq!(current(&env_root), live, "same release");
    assert_eq!(db_checksum(&db), checksum, "same database");
    let (_, env) = app.get_json(&format!("/api/environments/{env_id}")).await;
    assert_eq!(env["status"], "active", "{env}");

    // (3) An import whose theme fatals: rolled back — the previous release serves again and
    // its database is back (the bad archive's option is gone, the good one's is there).
    let bad_sql = another_wordpress(&db_for_source(&db), preview, "pl_import_bad");
    let tree = archive_tree("fatal", Some(&bad_sql), "PL-E2E-IMPORT-BAD", true);
    let fatal = Path::new(WORK).join("fatal.tar.gz");
    tar_gz(&tree, &fatal);
    let job = import(app, site_id, fatal.to_str().unwrap()).await;
    let (gate, rollback) = gate_ended(app, &job).await;
    assert!(
        rollback.is_some(),
        "the fatal import was rolled back: {gate}"
    );
    assert_eq!(
        current(&env_root),
        live,
        "the previous release is current again"
    );
    let (code, body) = page(&host);
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("PL-E2E-IMPORT-1"), "{body}");
    assert_eq!(
        sql(&format!(
            "SELECT COUNT(*) FROM {db}.wpx_options WHERE option_name = 'pl_import_bad'"
        )),
        "0"
    );
    assert_eq!(
        sql(&format!(
            "SELECT COUNT(*) FROM {db}.wpx_options WHERE option_name = 'pl_import_good'"
        )),
        "1"
    );
    let config = std::fs::read_to_string(format!("{env_root}/shared/wp-config.php")).unwrap();
    assert!(config.contains("$table_prefix = 'wpx_';"));
    let (_, env) = app.get_json(&format!("/api/environments/{env_id}")).await;
    assert_eq!(env["status"], "active", "{env}");

    // (4) The dashboard: an uploaded archive (with meta.json naming the source URL).
    let tree = archive_tree("upload", Some(&source_sql), "PL-E2E-IMPORT-UPLOAD", false);
    std::fs::write(
        tree.join("meta.json"),
        json!({ "source_url": OLD }).to_string(),
    )
    .unwrap();
    let upload = Path::new(WORK).join("upload.tar.gz");
    tar_gz(&tree, &upload);
    let out = crate::e2e::browser_script(
        app,
        "import.mjs",
        &[
            ("PRESSLUFT_SITE_ID", site_id),
            ("PRESSLUFT_IMPORT_ARCHIVE", upload.to_str().unwrap()),
        ],
    )
    .await;
    let job = out
        .lines()
        .find_map(|l| l.strip_prefix("JOB "))
        .expect("the browser reported its job")
        .to_string();
    let (gate, rollback) = gate_ended(app, &job).await;
    assert!(
        rollback.is_none(),
        "the uploaded import passed its gate: {gate}"
    );
    let (code, body) = page(&host);
    assert_eq!(code, "200", "{body}");
    assert!(body.contains("PL-E2E-IMPORT-UPLOAD"), "{body}");
    let (job_row, _) = finished(app, &job).await;
    assert_eq!(job_row["status"], "succeeded");
    // The uploaded file is gone from the control plane and from the node.
    let imports = app.state.config.data_dir.join("imports");
    let left: Vec<_> = std::fs::read_dir(&imports)
        .map(|d| d.filter_map(Result::ok).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "uploads left on the control plane: {left:?}"
    );
    let on_node: Vec<_> = std::fs::read_dir("/var/lib/pressluft/imports")
        .map(|d| d.filter_map(Result::ok).collect())
        .unwrap_or_default();
    assert!(on_node.is_empty(), "uploads left on the node: {on_node:?}");
    sql("DROP DATABASE IF EXISTS pl_e2e_import_src");
    let _ = std::fs::remove_dir_all(WORK);
}

/// The database the fatal archive is made from: the same live one (now `wpx_`), dumped back as
/// `wp_` tables in a scratch copy, so [`another_wordpress`] moves it like the first.
fn db_for_source(db: &str) -> String {
    let scratch = "pl_e2e_import_src";
    sql(&format!(
        "DROP DATABASE IF EXISTS {scratch}; CREATE DATABASE {scratch}"
    ));
    let dump = run("mysqldump", &["--skip-comments", db])
        .replace("`wpx_", "`wp_")
        .replace("'wpx_user_roles'", "'wp_user_roles'")
        .replace("'wpx_capabilities'", "'wp_capabilities'")
        .replace("'wpx_user_level'", "'wp_user_level'");
    // Without the options the good import added (another_wordpress adds its own).
    let dump = format!(
        "{dump}\nDELETE FROM `wp_options` WHERE option_name IN ('pl_import_serialized', 'pl_import_good');\n\
         DELETE FROM `wp_posts` WHERE post_name = 'pl-import-json';\nDROP TABLE `wp_wc_orders`;\n\
         DELETE FROM `wp_postmeta` WHERE meta_key LIKE '\\_billing\\_%';\n"
    );
    run_with_stdin("mysql", &[scratch], &dump);
    scratch.to_string()
}
