//! Isolation between two environments on one node, end to end (security review, issue 9, items
//! 2 and 9), called by `e2e_sites` while a production environment (A) and its staging clone (B)
//! exist. Each check performs the attack against the real Redis, PHP-FPM and Nginx:
//!
//! - Redis: as A's Linux user, with A's own credentials (from A's wp-config.php), reading,
//!   writing or deleting B's keys, `EVAL` on them, `FLUSHDB`/`FLUSHALL`, `KEYS`, `CONFIG` and
//!   `ACL` are refused (`NOPERM`), and a client without credentials gets `NOAUTH`; B's value is
//!   unchanged. A's cache still works: its keys reappear after a page load over HTTP.
//! - PHP (through A's pool, over HTTP): A's PHP cannot read B's `wp-config.php` or release, nor
//!   list or write the shared `/tmp`; its temp, upload-temp and session directories are its own;
//!   `putenv` and `pcntl_fork` do not exist; a file upload still works and is served.
//! - Nginx: a link in A's uploads to B's `wp-config.php` or to a file of B's release that Nginx
//!   could read is not served; a link to A's own file is.

use serde_json::{json, Value};

use crate::helpers::{host, run, run_with_stdin, visitor};

const REDIS_ADMIN: &str = "/usr/local/lib/pressluft/redis-admin";

fn redis_admin(args: &[&str]) -> String {
    run(REDIS_ADMIN, args).trim().to_string()
}

/// The value of a PHP single-quoted string starting at `s` (after the opening quote).
fn php_string(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next().unwrap()),
            '\'' => return out,
            c => out.push(c),
        }
    }
    panic!("unterminated PHP string: {s}");
}

/// The first PHP string argument after `define('<name>', ` (and after `[` for an array).
fn php_define<'a>(config: &'a str, name: &str) -> &'a str {
    let marker = format!("define('{name}', ");
    let start = config
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} in wp-config.php"))
        + marker.len();
    &config[start..]
}

/// `(user, password)` of an environment's Redis ACL user and its DB password, from its wp-config.php.
fn credentials(env_root: &str) -> ((String, String), String) {
    let config = std::fs::read_to_string(format!("{env_root}/shared/wp-config.php")).unwrap();
    let redis = php_define(&config, "WP_REDIS_PASSWORD");
    let redis = redis
        .strip_prefix("['")
        .expect("WP_REDIS_PASSWORD is [user, password]");
    let user = php_string(redis);
    let rest = &redis[redis.find("', '").unwrap() + 4..];
    let password = php_string(rest);
    let db = php_define(&config, "DB_PASSWORD");
    let db_password = php_string(db.strip_prefix('\'').unwrap());
    ((user, password), db_password)
}

/// phpredis as environment A: each attempt's result or the Redis error (`ok`, `value`, `error`).
const REDIS_ATTACKS: &str = r#"
$in = json_decode(stream_get_contents(STDIN), true);
function attempt(Redis $r, callable $f): array {
    $r->clearLastError();
    try {
        $v = $f($r);
        return ['ok' => $v !== false, 'value' => $v, 'error' => (string) $r->getLastError()];
    } catch (Throwable $e) {
        return ['ok' => false, 'value' => null, 'error' => $e->getMessage()];
    }
}
$out = [];
$anon = new Redis();
$anon->connect('127.0.0.1', 6379, 1.0);
$out['anonymous ping'] = attempt($anon, fn ($r) => $r->ping());
$out['anonymous get B'] = attempt($anon, fn ($r) => $r->get($in['b_key']));
$out['anonymous set B'] = attempt($anon, fn ($r) => $r->set($in['b_key'], 'pwned'));
$r = new Redis();
$r->connect('127.0.0.1', 6379, 1.0);
$out['auth as A'] = attempt($r, fn ($r) => $r->auth([$in['user'], $in['password']]));
$out['own set'] = attempt($r, fn ($r) => $r->set($in['a_key'], 'mine', ['EX' => 60]));
$out['own get'] = attempt($r, fn ($r) => $r->get($in['a_key']));
$out['own mget'] = attempt($r, fn ($r) => $r->mget([$in['a_key']]));
$out['own unlink'] = attempt($r, fn ($r) => $r->unlink($in['a_key']));
$denied = [
    'get B' => fn ($r) => $r->get($in['b_key']),
    'set B' => fn ($r) => $r->set($in['b_key'], 'pwned'),
    'del B' => fn ($r) => $r->del($in['b_key']),
    'unlink B' => fn ($r) => $r->unlink($in['b_key']),
    'mget A and B' => fn ($r) => $r->mget([$in['a_key'], $in['b_key']]),
    'eval on B' => fn ($r) => $r->eval("return redis.call('get', KEYS[1])", [$in['b_key']], 1),
    'flushdb' => fn ($r) => $r->flushDB(),
    'flushall' => fn ($r) => $r->flushAll(),
    'keys' => fn ($r) => $r->keys('*'),
    'config get' => fn ($r) => $r->config('GET', 'maxmemory'),
    'acl list' => fn ($r) => $r->rawCommand('ACL', 'LIST'),
];
foreach ($denied as $name => $f) {
    $out[$name] = attempt($r, $f);
}
echo json_encode($out);
"#;

/// What A's PHP (through its FPM pool) can reach; `B_ROOT` is replaced.
const PHP_PROBE: &str = r#"<?php
header('Content-Type: application/json');
$b = 'B_ROOT';
if (isset($_FILES['f'])) {
    $f = $_FILES['f'];
    $moved = move_uploaded_file($f['tmp_name'], __DIR__ . '/wp-content/uploads/pl-e2e-upload.txt');
    echo json_encode(['error' => $f['error'], 'tmp_name' => $f['tmp_name'], 'moved' => $moved]);
    exit;
}
$tmp = @tempnam(sys_get_temp_dir(), 'pl');
session_start();
$_SESSION['x'] = 1;
session_write_close();
echo json_encode([
    'b_wp_config' => @file_get_contents("$b/shared/wp-config.php"),
    'b_release_file' => @file_get_contents("$b/current/wp-includes/version.php"),
    'tmp_listing' => @scandir('/tmp'),
    'tmp_write' => @file_put_contents('/tmp/pl-e2e-isolation-' . getmypid(), 'x'),
    'sys_temp_dir' => sys_get_temp_dir(),
    'tempnam' => $tmp,
    'tempnam_unlinked' => $tmp !== false && @unlink($tmp),
    'upload_tmp_dir' => ini_get('upload_tmp_dir'),
    'session_save_path' => session_save_path(),
    'session_file' => is_file(session_save_path() . '/sess_' . session_id()),
    'putenv' => function_exists('putenv'),
    'pcntl_fork' => function_exists('pcntl_fork'),
    'open_basedir' => ini_get('open_basedir'),
]);
"#;

/// A is the production environment, B its staging clone (both `active`).
pub async fn environments_are_isolated(
    site_id: &str,
    a_id: &str,
    b_id: &str,
    a_url: &str,
    b_url: &str,
) {
    let a_root = format!("/var/www/sites/{site_id}/{a_id}");
    let b_root = format!("/var/www/sites/{site_id}/{b_id}");
    let a_user = format!("pl_{}", &a_id[..8]);
    let ((a_redis_user, a_redis_password), _) = credentials(&a_root);
    let (_, b_db_password) = credentials(&b_root);
    assert_eq!(a_redis_user, format!("pressluft_{a_id}"));
    let web = visitor(&[host(a_url), host(b_url)]);

    // --- Redis ------------------------------------------------------------------------------
    let (a_prefix, b_prefix) = (format!("pressluft_{a_id}:"), format!("pressluft_{b_id}:"));
    let b_key = format!("{b_prefix}e2e:secret");
    assert_eq!(redis_admin(&["SET", &b_key, "b-only"]), "OK");
    let input = json!({"user": a_redis_user, "password": a_redis_password,
                       "a_key": format!("{a_prefix}e2e:own"), "b_key": b_key});
    // The password goes on stdin, never in argv.
    let out = run_with_stdin(
        "runuser",
        &["-u", &a_user, "--", "php", "-r", REDIS_ATTACKS],
        &input.to_string(),
    );
    let results: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    for name in ["anonymous ping", "anonymous get B", "anonymous set B"] {
        let r = &results[name];
        assert!(
            r["ok"] == false && r["error"].as_str().unwrap().contains("NOAUTH"),
            "without credentials, {name} must fail with NOAUTH: {r}"
        );
    }
    for name in ["auth as A", "own set", "own get", "own mget", "own unlink"] {
        assert_eq!(results[name]["ok"], true, "{name} as A: {}", results[name]);
    }
    assert_eq!(results["own get"]["value"], "mine");
    for name in [
        "get B",
        "set B",
        "del B",
        "unlink B",
        "mget A and B",
        "eval on B",
        "flushdb",
        "flushall",
        "keys",
        "config get",
        "acl list",
    ] {
        let r = &results[name];
        assert!(
            r["ok"] == false && r["error"].as_str().unwrap().contains("NOPERM"),
            "as A, {name} must be refused with NOPERM: {r}"
        );
    }
    assert_eq!(
        redis_admin(&["GET", &b_key]),
        "b-only",
        "B's value survived every attack"
    );
    redis_admin(&["UNLINK", &b_key]);

    // A's cache still works: after its keys are gone, one page load (past the page cache)
    // stores them again.
    let pattern = format!("{a_prefix}*");
    let keys = redis_admin(&["--scan", "--pattern", &pattern]);
    for key in keys.lines().filter(|k| !k.is_empty()) {
        redis_admin(&["UNLINK", key]);
    }
    let r = web
        .get(format!("{a_url}/?pl-e2e-isolation=redis"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let keys = redis_admin(&["--scan", "--pattern", &pattern]);
    assert!(
        keys.lines()
            .any(|k| k.starts_with(&format!("{a_prefix}1:options:"))
                || k.starts_with(&format!("{a_prefix}global:"))),
        "a page load stores A's object cache in Redis: {keys:?}"
    );

    // --- PHP through A's pool ------------------------------------------------------------------
    let probe = format!("{a_root}/current/pl-e2e-isolation.php");
    std::fs::write(&probe, PHP_PROBE.replace("B_ROOT", &b_root)).unwrap();
    run("chown", &[&format!("{a_user}:www-data"), &probe]);
    let r = web
        .get(format!("{a_url}/pl-e2e-isolation.php?run=1"))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    let boundary = "pl-e2e-boundary-7f3a";
    let upload = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"note.txt\"\r\n\
         Content-Type: text/plain\r\n\r\nuploaded through the pool\r\n--{boundary}--\r\n"
    );
    let uploaded = web
        .post(format!("{a_url}/pl-e2e-isolation.php?run=2"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(upload)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::fs::remove_file(&probe).unwrap();
    assert_eq!(status, 200, "{body}");
    let seen: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(
        seen["b_wp_config"], false,
        "A's PHP reads B's wp-config.php: {seen}"
    );
    assert_eq!(
        seen["b_release_file"], false,
        "A's PHP reads B's release: {seen}"
    );
    assert_eq!(
        seen["tmp_listing"], false,
        "A's PHP lists the shared /tmp: {seen}"
    );
    assert_eq!(
        seen["tmp_write"], false,
        "A's PHP writes the shared /tmp: {seen}"
    );
    assert!(
        !seen["open_basedir"].as_str().unwrap().contains("/tmp"),
        "{seen}"
    );
    assert_eq!(seen["sys_temp_dir"], format!("{a_root}/tmp").as_str());
    assert!(
        seen["tempnam"]
            .as_str()
            .is_some_and(|t| t.starts_with(&format!("{a_root}/tmp/"))),
        "temporary files go to A's own tmp: {seen}"
    );
    assert_eq!(seen["tempnam_unlinked"], true);
    assert_eq!(
        seen["upload_tmp_dir"],
        format!("{a_root}/upload-tmp").as_str()
    );
    assert_eq!(
        seen["session_save_path"],
        format!("{a_root}/sessions").as_str()
    );
    assert_eq!(seen["session_file"], true, "sessions work: {seen}");
    assert_eq!(seen["putenv"], false, "putenv is disabled: {seen}");
    assert_eq!(seen["pcntl_fork"], false, "pcntl_fork is disabled: {seen}");
    let up: Value = serde_json::from_str(&uploaded).unwrap_or_else(|e| panic!("{e}: {uploaded}"));
    assert_eq!(up["error"], 0, "{up}");
    assert!(
        up["tmp_name"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{a_root}/upload-tmp/")),
        "uploads are received in A's own upload-tmp: {up}"
    );
    assert_eq!(up["moved"], true, "{up}");
    let served = web
        .get(format!("{a_url}/wp-content/uploads/pl-e2e-upload.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 200, "the uploaded file is served");
    assert_eq!(served.text().await.unwrap(), "uploaded through the pool");
    std::fs::remove_file(format!("{a_root}/shared/uploads/pl-e2e-upload.txt")).unwrap();

    // --- Nginx and links in A's uploads ----------------------------------------------------------
    let uploads = format!("{a_root}/shared/uploads");
    let own_target = format!("{uploads}/pl-e2e-target.txt");
    std::fs::write(&own_target, "A's own file").unwrap();
    run("chown", &[&format!("{a_user}:www-data"), &own_target]);
    let links = [
        (
            "pl-e2e-b-config.txt",
            format!("{b_root}/shared/wp-config.php"),
        ),
        // Readable by Nginx (group www-data): only the owner rule stops this one.
        (
            "pl-e2e-b-core.txt",
            format!("{b_root}/current/wp-includes/version.php"),
        ),
        ("pl-e2e-own.txt", own_target.clone()),
    ];
    for (name, target) in &links {
        let link = format!("{uploads}/{name}");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).unwrap();
        // As if A's PHP had made it.
        run("chown", &["-h", &format!("{a_user}:www-data"), &link]);
    }
    let mut answers = Vec::new();
    for (name, _) in &links {
        let r = web
            .get(format!("{a_url}/wp-content/uploads/{name}"))
            .send()
            .await
            .unwrap();
        answers.push((r.status().as_u16(), r.text().await.unwrap()));
    }
    for (name, _) in &links {
        std::fs::remove_file(format!("{uploads}/{name}")).unwrap();
    }
    std::fs::remove_file(&own_target).unwrap();
    let (config, core, own) = (&answers[0], &answers[1], &answers[2]);
    assert!(
        matches!(config.0, 403 | 404) && !config.1.contains(&b_db_password),
        "a link to B's wp-config.php is not served: {} {:.300}",
        config.0,
        config.1
    );
    assert!(
        matches!(core.0, 403 | 404) && !core.1.contains("wp_version"),
        "a link to B's release is not served: {} {:.300}",
        core.0,
        core.1
    );
    assert_eq!(
        (own.0, own.1.as_str()),
        (200, "A's own file"),
        "a link to A's own file is"
    );

    // WordPress still works in both environments (past the page cache), as themselves.
    for url in [a_url, b_url] {
        for path in ["/?pl-e2e-isolation=after", "/wp-login.php"] {
            let r = web.get(format!("{url}{path}")).send().await.unwrap();
            assert_eq!(r.status(), 200, "{url}{path}");
        }
    }
}
